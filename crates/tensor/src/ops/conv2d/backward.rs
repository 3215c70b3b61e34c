//! [`Tensor::conv2d_backward`]: the gradients of `conv2d`, for the autograd layer: direct
//! loops in `D::Acc` over the same windows as the forward op, each gradient rounded once
//! into `D`. (Correct and simple; the GEMM formulation of the convolution gradients is a
//! later optimisation.)

use super::{Conv2dParams, ConvGeometry};
use crate::backend::on_device;
use crate::cpu::alloc::try_zeroed_acc;
use crate::error::{Error, Result};
use crate::storage::one_device;
use crate::tensor::Tensor;
use mixprec_dtype::Dtype;

impl<D: Dtype> Tensor<D> {
    /// Gradients of `self.conv2d(weight, bias, p)` given the output gradient `grad`:
    /// `(d_input, d_weight, d_bias)`.
    pub fn conv2d_backward(
        &self,
        weight: &Tensor<D>,
        grad: &Tensor<D>,
        p: Conv2dParams,
    ) -> Result<(Tensor<D>, Tensor<D>, Tensor<D>)> {
        let device = one_device("conv2d_backward", [self, weight, grad].map(|t| t.device()))?;
        let op = "conv2d_backward";
        let ConvGeometry { n, o, ho, wo, .. } =
            ConvGeometry::new(op, self.shape(), weight.shape(), &p)?;
        if grad.shape() != [n, o, ho, wo] {
            return Err(Error::shapes(
                op,
                grad.shape(),
                &[n, o, ho, wo],
                "the gradient must have the convolution's output shape",
            ));
        }
        on_device!(device, b => b.conv2d_backward(self, weight, grad, p))
    }

    /// The CPU kernel of [`Tensor::conv2d_backward`], after its front's checks.
    pub(crate) fn conv2d_backward_on_cpu(
        &self,
        weight: &Tensor<D>,
        grad: &Tensor<D>,
        p: Conv2dParams,
    ) -> Result<(Tensor<D>, Tensor<D>, Tensor<D>)> {
        let op = "conv2d_backward";
        let ConvGeometry {
            n,
            c,
            h,
            w,
            o,
            cg,
            kh,
            kw,
            ho,
            wo,
        } = ConvGeometry::new(op, self.shape(), weight.shape(), &p)?;
        let g = p.groups;
        let (x, wt, gy) = (
            self.try_to_acc_vec(op)?,
            weight.try_to_acc_vec(op)?,
            grad.try_to_acc_vec(op)?,
        );
        let mut dx = try_zeroed_acc::<D>(op, self.shape(), x.len())?;
        let mut dw = try_zeroed_acc::<D>(op, weight.shape(), wt.len())?;
        let mut db = try_zeroed_acc::<D>(op, &[o], o)?;
        let og = o / g;
        for img in 0..n {
            for oc in 0..o {
                let grp = oc / og;
                for oy in 0..ho {
                    for ox in 0..wo {
                        let gv = gy[((img * o + oc) * ho + oy) * wo + ox];
                        db[oc] += gv;
                        for ci in 0..cg {
                            let chan = img * c + grp * cg + ci;
                            for ki in 0..kh {
                                let iy = (oy * p.stride.0 + ki * p.dilation.0) as isize
                                    - p.padding.0 as isize;
                                if iy < 0 || iy >= h as isize {
                                    continue;
                                }
                                for kj in 0..kw {
                                    let ix = (ox * p.stride.1 + kj * p.dilation.1) as isize
                                        - p.padding.1 as isize;
                                    if ix < 0 || ix >= w as isize {
                                        continue;
                                    }
                                    let xi = (chan * h + iy as usize) * w + ix as usize;
                                    let wi = ((oc * cg + ci) * kh + ki) * kw + kj;
                                    dx[xi] += gv * wt[wi];
                                    dw[wi] += gv * x[xi];
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok((
            Tensor::from_acc_vec(op, &dx, self.shape())?,
            Tensor::from_acc_vec(op, &dw, weight.shape())?,
            Tensor::from_acc_vec(op, &db, &[o])?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::F32;

    #[test]
    fn conv2d_backward_checks_shapes() {
        let x = Tensor::<F32>::zeros(&[1, 2, 4, 4]);
        let w = Tensor::<F32>::zeros(&[3, 2, 3, 3]);
        let bad = Tensor::<F32>::zeros(&[1, 3, 3, 3]);
        let e = x
            .conv2d_backward(&w, &bad, Conv2dParams::default())
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("conv2d_backward: shapes [1, 3, 3, 3] and [1, 3, 2, 2]"),
            "{e}"
        );
        assert!(
            x.conv2d_backward(&Tensor::zeros(&[3, 3, 3, 3]), &bad, Conv2dParams::default())
                .is_err()
        );
    }
}
