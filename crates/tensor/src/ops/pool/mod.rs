//! `max_pool2d` and `avg_pool2d` over NCHW tensors. Max copies a value (exact); average
//! sums in `D::Acc` and rounds once.

mod backward;

use super::conv2d::out_size;
use crate::backend::on_device;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use mixprec_dtype::{Acc, Dtype};
use num_traits::{Float, Zero};

/// Pooling window: kernel size, stride and zero/-inf padding, (rows, columns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dParams {
    /// Window size.
    pub kernel: (usize, usize),
    /// Step between windows (PyTorch's default is the kernel size).
    pub stride: (usize, usize),
    /// Padding on each side (at most half the kernel, as in PyTorch).
    pub padding: (usize, usize),
}

impl Pool2dParams {
    /// A `k x k` window with stride `k` and no padding.
    pub fn square(k: usize) -> Self {
        Pool2dParams {
            kernel: (k, k),
            stride: (k, k),
            padding: (0, 0),
        }
    }
}

/// A pooling over windows, as data: what [`Tensor::pool2d`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolOp {
    /// The maximum ([`Tensor::max_pool2d`]).
    Max,
    /// The mean, padding counted as zeros ([`Tensor::avg_pool2d`]).
    Avg,
}

impl PoolOp {
    /// Every variant.
    pub const ALL: [PoolOp; 2] = [PoolOp::Max, PoolOp::Avg];

    /// The op's name (the public method's), used in errors.
    pub const fn name(self) -> &'static str {
        match self {
            PoolOp::Max => "max_pool2d",
            PoolOp::Avg => "avg_pool2d",
        }
    }

    /// The backward op's name.
    pub const fn backward_name(self) -> &'static str {
        match self {
            PoolOp::Max => "max_pool2d_backward",
            PoolOp::Avg => "avg_pool2d_backward",
        }
    }

    /// A device's kernels for the op: (forward, backward).
    pub const fn kernel(self) -> (&'static str, &'static str) {
        match self {
            PoolOp::Max => ("pool2d_max", "pool2d_max_backward"),
            PoolOp::Avg => ("pool2d_avg", "pool2d_avg_backward"),
        }
    }
}

/// The output shape of pooling an input of `shape`, after the checks of a pooling front
/// (`op` names it): an `[N, C, H, W]` input, a non-zero kernel and stride, padding at
/// most half the kernel, windows that fit the padded input.
pub(crate) fn pool_out_shape(
    op: &'static str,
    shape: &[usize],
    p: &Pool2dParams,
) -> Result<[usize; 4]> {
    if shape.len() != 4 {
        return Err(Error::bad_shape(op, shape, "rank 4 ([N, C, H, W])"));
    }
    let (kh, kw) = p.kernel;
    if kh == 0
        || kw == 0
        || p.stride.0 == 0
        || p.stride.1 == 0
        || 2 * p.padding.0 > kh
        || 2 * p.padding.1 > kw
    {
        return Err(Error::invalid(
            op,
            format!(
                "kernel {:?} and stride {:?} must be non-zero and padding {:?} at most half the kernel",
                p.kernel, p.stride, p.padding
            ),
        ));
    }
    let (Some(ho), Some(wo)) = (
        out_size(shape[2], kh, p.stride.0, p.padding.0, 1),
        out_size(shape[3], kw, p.stride.1, p.padding.1, 1),
    ) else {
        return Err(Error::bad_shape(
            op,
            shape,
            format!(
                "spatial size at least the kernel {:?} (after padding)",
                p.kernel
            ),
        ));
    };
    Ok([shape[0], shape[1], ho, wo])
}

impl<D: Dtype> Tensor<D> {
    /// `op` over each window of an `[N, C, H, W]` tensor ([`Tensor::max_pool2d`],
    /// [`Tensor::avg_pool2d`]). Errors on another rank, a zero kernel or stride, or
    /// padding over half the kernel.
    pub fn pool2d(&self, op: PoolOp, p: Pool2dParams) -> Result<Tensor<D>> {
        pool_out_shape(op.name(), self.shape(), &p)?;
        on_device!(self.device(), b => b.pool2d(op, self, p))
    }

    /// Maximum over each window of an `[N, C, H, W]` tensor; padding never wins (it is
    /// `-inf`). NaN in a window gives NaN.
    pub fn max_pool2d(&self, p: Pool2dParams) -> Result<Tensor<D>> {
        self.pool2d(PoolOp::Max, p)
    }

    /// The CPU kernel of [`Tensor::max_pool2d`], after its front's checks.
    pub(crate) fn max_pool2d_on_cpu(&self, p: Pool2dParams) -> Result<Tensor<D>> {
        self.pool("max_pool2d", p, |vals, _| {
            vals.iter().fold(D::Acc::neg_infinity(), |m, &v| {
                if v.is_nan() || m.is_nan() {
                    D::Acc::nan()
                } else {
                    m.max(v)
                }
            })
        })
    }

    /// Mean over each window of an `[N, C, H, W]` tensor, counting padded positions as
    /// zeros (PyTorch's default `count_include_pad=True`).
    pub fn avg_pool2d(&self, p: Pool2dParams) -> Result<Tensor<D>> {
        self.pool2d(PoolOp::Avg, p)
    }

    /// The CPU kernel of [`Tensor::avg_pool2d`], after its front's checks.
    pub(crate) fn avg_pool2d_on_cpu(&self, p: Pool2dParams) -> Result<Tensor<D>> {
        let area = D::Acc::from_usize(p.kernel.0 * p.kernel.1);
        self.pool("avg_pool2d", p, |vals, _| {
            super::reduce::sum_acc(vals) / area
        })
    }

    fn pool(
        &self,
        op: &'static str,
        p: Pool2dParams,
        f: impl Fn(&[D::Acc], usize) -> D::Acc,
    ) -> Result<Tensor<D>> {
        let (kh, kw) = p.kernel;
        let [n, c, h, w] = [
            self.shape()[0],
            self.shape()[1],
            self.shape()[2],
            self.shape()[3],
        ];
        let [_, _, ho, wo] = pool_out_shape(op, self.shape(), &p)?;
        let x = self.try_to_acc_vec(op)?;
        let out_shape = [n, c, ho, wo];
        let mut out = crate::cpu::alloc::try_with_capacity(op, &out_shape, n * c * ho * wo)?;
        let mut window = crate::cpu::alloc::try_with_capacity(op, &[kh, kw], kh * kw)?;
        for plane in x.chunks(h * w) {
            for oy in 0..ho {
                for ox in 0..wo {
                    window.clear();
                    for ki in 0..kh {
                        for kj in 0..kw {
                            let iy = (oy * p.stride.0 + ki) as isize - p.padding.0 as isize;
                            let ix = (ox * p.stride.1 + kj) as isize - p.padding.1 as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                window.push(plane[iy as usize * w + ix as usize]);
                            } else if op == "avg_pool2d" {
                                window.push(D::Acc::zero());
                            }
                        }
                    }
                    out.push(f(&window, window.len()));
                }
            }
        }
        Tensor::from_acc_vec(op, &out, &out_shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::F32;
    use mixprec_testing::{Tolerance, assert_close, for_each_dtype};

    fn pools_match_f64<D: Dtype>() {
        // A 1x1x4x4 image with values exact in every type.
        let vals = [
            1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, -1.0, -2.0, -3.0, -4.0, 0.5, 0.25, 1.5, 2.0,
        ];
        let x = Tensor::<D>::from_f64(&vals, &[1, 1, 4, 4]).unwrap();
        let m = x.max_pool2d(Pool2dParams::square(2)).unwrap();
        assert_eq!(m.to_f64_vec(), vec![6.0, 8.0, 0.5, 2.0]);
        let a = x.avg_pool2d(Pool2dParams::square(2)).unwrap();
        assert_close(
            &format!("avg_pool2d<{}>", D::NAME),
            &a.to_f64_vec(),
            &[3.5, 5.5, -0.5625, -0.875],
            Tolerance::rounded_once::<D>(),
        );
        let pad = Pool2dParams {
            kernel: (3, 3),
            stride: (2, 2),
            padding: (1, 1),
        };
        let mp = x.max_pool2d(pad).unwrap();
        assert_eq!(mp.shape(), &[1, 1, 2, 2]);
        assert_eq!(mp.to_f64_vec(), vec![6.0, 8.0, 6.0, 8.0]);
        let ap = x.avg_pool2d(pad).unwrap().to_f64_vec();
        assert_close(
            "avg_pool2d padded",
            &ap[..1],
            &[(1.0 + 2.0 + 5.0 + 6.0) / 9.0],
            Tolerance::rounded_once::<D>(),
        );
    }
    for_each_dtype!(pools_match_f64);

    #[test]
    fn pool_errors() {
        let x = Tensor::<F32>::zeros(&[1, 1, 2, 2]);
        assert!(
            x.max_pool2d(Pool2dParams::square(3))
                .unwrap_err()
                .to_string()
                .starts_with("max_pool2d: shape [1, 1, 2, 2]")
        );
        assert!(
            x.avg_pool2d(Pool2dParams {
                kernel: (2, 2),
                stride: (0, 1),
                padding: (0, 0)
            })
            .is_err()
        );
        assert!(
            x.avg_pool2d(Pool2dParams {
                kernel: (2, 2),
                stride: (1, 1),
                padding: (2, 0)
            })
            .is_err()
        );
        assert!(
            Tensor::<F32>::zeros(&[2, 2])
                .max_pool2d(Pool2dParams::square(1))
                .is_err()
        );
    }
}
