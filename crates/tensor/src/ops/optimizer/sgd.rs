//! [`Tensor::sgd_update`]: one fused SGD step (PyTorch's `torch.optim.SGD`,
//! single-tensor path) for one F32 parameter and its momentum buffer, in place.

use super::{check_in, check_operands};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use mixprec_dtype::F32;

/// The numbers of one SGD step for one parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdStep {
    /// Learning rate (finite, >= 0).
    pub lr: f32,
    /// Momentum factor in [0, 1); 0 means no momentum buffer.
    pub momentum: f32,
    /// Dampening of the gradient added to the momentum buffer, in [0, 1].
    pub dampening: f32,
    /// L2 penalty added to the gradient (finite, >= 0).
    pub weight_decay: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// The parameter's first step: the momentum buffer is set to the (decayed) gradient
    /// rather than decayed into (PyTorch's rule).
    pub first_step: bool,
}

impl SgdStep {
    fn check(&self, op: &'static str, has_buffer: bool) -> Result<()> {
        check_in(op, "learning rate", self.lr, 0.0..f32::INFINITY)?;
        check_in(op, "momentum", self.momentum, 0.0..1.0)?;
        check_in(op, "dampening", self.dampening, 0.0..1.0 + f32::EPSILON)?;
        check_in(op, "weight_decay", self.weight_decay, 0.0..f32::INFINITY)?;
        if has_buffer != (self.momentum != 0.0) {
            return Err(Error::invalid(
                op,
                format!(
                    "a momentum buffer goes with momentum > 0: momentum {}, buffer {}",
                    self.momentum,
                    if has_buffer { "given" } else { "missing" }
                ),
            ));
        }
        Ok(())
    }
}

impl Tensor<F32> {
    /// One SGD step in place on this parameter (and its momentum buffer when momentum is
    /// non-zero), with gradient `grad` (all the parameter's shape):
    /// `d = g + wd p`; with momentum `buf = d` on the first step, else
    /// `buf = momentum buf + (1 - dampening) d`, then `d = d + momentum buf` (Nesterov)
    /// or `buf`; `p -= lr d`.
    ///
    /// Precision: every operation is one f32 operation rounded to nearest even (no fused
    /// multiply-adds).
    ///
    /// Errors (changing nothing) on shapes or devices that differ, hyperparameters out of
    /// range, a buffer without momentum or momentum without a buffer, or when a shared
    /// parameter or buffer cannot be copied to be written ([`Tensor::try_make_owned`]).
    ///
    /// ```
    /// use mixprec_tensor::{SgdStep, Tensor};
    /// use mixprec_dtype::F32;
    /// let mut p = Tensor::<F32>::from_f32(&[1.0, 2.0], &[2]).unwrap();
    /// let g = Tensor::<F32>::from_f32(&[0.5, -1.0], &[2]).unwrap();
    /// let h = SgdStep { lr: 0.5, momentum: 0.0, dampening: 0.0, weight_decay: 0.0,
    ///                   nesterov: false, first_step: true };
    /// p.sgd_update(&g, None, h).unwrap();
    /// assert_eq!(p.to_f32_vec(), vec![0.75, 2.5]);
    /// ```
    pub fn sgd_update(
        &mut self,
        grad: &Tensor<F32>,
        momentum_buffer: Option<&mut Tensor<F32>>,
        h: SgdStep,
    ) -> Result<()> {
        const OP: &str = "sgd_update";
        h.check(OP, momentum_buffer.is_some())?;
        let state: Vec<(&str, &Tensor<F32>)> = momentum_buffer
            .iter()
            .map(|b| ("momentum buffer", &**b))
            .collect();
        check_operands(OP, self, grad, &state)?;
        let g = grad.try_elements(OP)?;
        self.try_make_owned(OP)?;
        let Some(p) = self.owned_elements_mut() else {
            unreachable!("try_make_owned made the parameter the owner of its elements")
        };
        match momentum_buffer {
            None => sgd_plain_cpu(p, &g, h),
            Some(buf) => {
                buf.try_make_owned(OP)?;
                let Some(buf) = buf.owned_elements_mut() else {
                    unreachable!("try_make_owned made the buffer the owner of its elements")
                };
                sgd_momentum_cpu(p, &g, buf, h)
            }
        }
        Ok(())
    }
}

/// The CPU kernel without momentum: `p -= lr (g + wd p)`.
fn sgd_plain_cpu(p: &mut [F32], g: &[F32], h: SgdStep) {
    for (pj, &F32(gj)) in p.iter_mut().zip(g) {
        let d = gj + h.weight_decay * pj.0;
        pj.0 -= h.lr * d;
    }
}

/// The CPU kernel with a momentum buffer.
fn sgd_momentum_cpu(p: &mut [F32], g: &[F32], buf: &mut [F32], h: SgdStep) {
    for ((pj, &F32(gj)), F32(bj)) in p.iter_mut().zip(g).zip(buf) {
        let d = gj + h.weight_decay * pj.0;
        *bj = if h.first_step {
            d
        } else {
            h.momentum * *bj + (1.0 - h.dampening) * d
        };
        let d = if h.nesterov {
            d + h.momentum * *bj
        } else {
            *bj
        };
        pj.0 -= h.lr * d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32]) -> Tensor<F32> {
        Tensor::from_f32(v, &[v.len()]).unwrap()
    }

    const H: SgdStep = SgdStep {
        lr: 0.1,
        momentum: 0.9,
        dampening: 0.25,
        weight_decay: 0.5,
        nesterov: false,
        first_step: true,
    };

    /// PyTorch's SGD written out in f64.
    fn reference(steps: usize, p: f64, g: f64, h: SgdStep) -> f64 {
        let (lr, mu, damp, wd) = (
            f64::from(h.lr),
            f64::from(h.momentum),
            f64::from(h.dampening),
            f64::from(h.weight_decay),
        );
        let (mut p, mut buf) = (p, 0.0);
        for s in 0..steps {
            let d = g + wd * p;
            buf = if s == 0 {
                d
            } else {
                mu * buf + (1.0 - damp) * d
            };
            let d = if h.nesterov { d + mu * buf } else { buf };
            p -= lr * d;
        }
        p
    }

    #[test]
    fn momentum_and_nesterov_match_the_f64_definition() {
        for nesterov in [false, true] {
            let base = SgdStep {
                nesterov,
                dampening: if nesterov { 0.0 } else { 0.25 },
                ..H
            };
            let (p0, g) = ([0.5f32, -1.5, 3.0], [0.25f32, -0.75, 2.0]);
            let (mut p, mut buf) = (t(&p0), Tensor::zeros(&[3]));
            for s in 0..4 {
                let h = SgdStep {
                    first_step: s == 0,
                    ..base
                };
                p.sgd_update(&t(&g), Some(&mut buf), h).unwrap();
            }
            for j in 0..3 {
                let want = reference(4, f64::from(p0[j]), f64::from(g[j]), base);
                let got = f64::from(p.to_f32_vec()[j]);
                // A few f32 roundings per step on values of order 1: 1e-6 absolute.
                assert!(
                    (got - want).abs() < 1e-6,
                    "nesterov {nesterov} p[{j}] {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn plain_sgd_is_exact_on_dyadic_values() {
        let mut p = t(&[1.0, -2.0]);
        let h = SgdStep {
            momentum: 0.0,
            weight_decay: 0.5,
            lr: 0.5,
            ..H
        };
        p.sgd_update(&t(&[0.5, 1.0]), None, h).unwrap();
        // d = g + 0.5 p = [1.0, 0.0]; p -= 0.5 d.
        assert_eq!(p.to_f32_vec(), vec![0.5, -2.0]);
    }

    #[test]
    fn bad_inputs_are_errors_that_change_nothing() {
        let mut p = t(&[1.0, 2.0]);
        let mut buf = t(&[3.0, 4.0]);
        let g = t(&[1.0, 1.0]);
        let e = p.sgd_update(&g, None, H).unwrap_err().to_string();
        assert!(e.starts_with("sgd_update") && e.contains("missing"), "{e}");
        let no_momentum = SgdStep { momentum: 0.0, ..H };
        let e = p.sgd_update(&g, Some(&mut buf), no_momentum).unwrap_err();
        assert!(e.to_string().contains("given"), "{e}");
        let e = p
            .sgd_update(&g, Some(&mut buf), SgdStep { lr: -1.0, ..H })
            .unwrap_err();
        assert!(e.to_string().contains("learning rate"), "{e}");
        let e = p.sgd_update(&g, Some(&mut t(&[0.0; 3])), H).unwrap_err();
        assert!(e.to_string().contains("state"), "{e}");
        let e = p.sgd_update(&t(&[1.0]), Some(&mut buf), H).unwrap_err();
        assert!(e.to_string().contains("gradient"), "{e}");
        assert_eq!(p.to_f32_vec(), vec![1.0, 2.0]);
        assert_eq!(buf.to_f32_vec(), vec![3.0, 4.0]);
    }
}
