//! [`Tensor::max_pool2d_backward`] and [`Tensor::avg_pool2d_backward`]: the gradients of
//! the pooling ops, for the autograd layer: direct loops in `D::Acc` over the same windows
//! as the forward ops, each gradient rounded once into `D`.

use super::{Pool2dParams, PoolOp, pool_out_shape};
use crate::backend::on_device;
use crate::cpu::alloc::try_zeroed_acc;
use crate::error::{Error, Result};
use crate::storage::one_device;
use crate::tensor::Tensor;
use mixprec_dtype::{Acc, Dtype};

impl<D: Dtype> Tensor<D> {
    /// The gradient of `self.pool2d(op, p)` given the output gradient `grad`
    /// ([`Tensor::max_pool2d_backward`], [`Tensor::avg_pool2d_backward`]). Errors on the
    /// forward op's bad inputs or a gradient of another shape than its output.
    pub fn pool2d_backward(
        &self,
        op: PoolOp,
        grad: &Tensor<D>,
        p: Pool2dParams,
    ) -> Result<Tensor<D>> {
        let device = one_device(op.backward_name(), [self.device(), grad.device()])?;
        let op_name = op.backward_name();
        let expected = pool_out_shape(op_name, self.shape(), &p)?;
        if grad.shape() != expected {
            return Err(Error::shapes(
                op_name,
                grad.shape(),
                &expected,
                "the gradient must have the pooling's output shape",
            ));
        }
        on_device!(device, b => b.pool2d_backward(op, self, grad, p))
    }

    /// Gradient of `self.max_pool2d(p)` given the output gradient: each window's
    /// gradient goes to its (first) maximal element.
    pub fn max_pool2d_backward(&self, grad: &Tensor<D>, p: Pool2dParams) -> Result<Tensor<D>> {
        self.pool2d_backward(PoolOp::Max, grad, p)
    }

    /// Gradient of `self.avg_pool2d(p)` given the output gradient: spread evenly over the
    /// window (padding included in the count, as in the forward op).
    pub fn avg_pool2d_backward(&self, grad: &Tensor<D>, p: Pool2dParams) -> Result<Tensor<D>> {
        self.pool2d_backward(PoolOp::Avg, grad, p)
    }

    /// The CPU kernel of [`Tensor::max_pool2d_backward`] and
    /// [`Tensor::avg_pool2d_backward`], after their fronts' checks.
    pub(crate) fn pool_backward_on_cpu(
        &self,
        pool: PoolOp,
        grad: &Tensor<D>,
        p: Pool2dParams,
    ) -> Result<Tensor<D>> {
        let op = pool.backward_name();
        let max = pool == PoolOp::Max;
        let [_, _, h, w] = [
            self.shape()[0],
            self.shape()[1],
            self.shape()[2],
            self.shape()[3],
        ];
        let [_, _, ho, wo] = pool_out_shape(op, self.shape(), &p)?;
        let (x, gy) = (self.try_to_acc_vec(op)?, grad.try_to_acc_vec(op)?);
        let mut dx = try_zeroed_acc::<D>(op, self.shape(), x.len())?;
        let area = D::Acc::from_usize(p.kernel.0 * p.kernel.1);
        for (plane, (xp, gp)) in x.chunks(h * w).zip(gy.chunks(ho * wo)).enumerate() {
            let base = plane * h * w;
            for oy in 0..ho {
                for ox in 0..wo {
                    let gv = gp[oy * wo + ox];
                    let mut best: Option<(usize, D::Acc)> = None;
                    for ki in 0..p.kernel.0 {
                        for kj in 0..p.kernel.1 {
                            let iy = (oy * p.stride.0 + ki) as isize - p.padding.0 as isize;
                            let ix = (ox * p.stride.1 + kj) as isize - p.padding.1 as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            let i = iy as usize * w + ix as usize;
                            if max {
                                if best.is_none_or(|(_, b)| xp[i] > b) {
                                    best = Some((i, xp[i]));
                                }
                            } else {
                                dx[base + i] += gv / area;
                            }
                        }
                    }
                    if let Some((i, _)) = best {
                        dx[base + i] += gv;
                    }
                }
            }
        }
        Tensor::from_acc_vec(op, &dx, self.shape())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::F32;

    #[test]
    fn pool_backward_checks_shapes() {
        let x = Tensor::<F32>::zeros(&[1, 2, 4, 4]);
        let e = x
            .max_pool2d_backward(&Tensor::zeros(&[1, 2, 3, 3]), Pool2dParams::square(2))
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("max_pool2d_backward: shapes [1, 2, 3, 3] and [1, 2, 2, 2]")
        );
        assert!(
            x.avg_pool2d_backward(&Tensor::zeros(&[1, 2, 2, 2]), Pool2dParams::square(5))
                .is_err()
        );
    }
}
