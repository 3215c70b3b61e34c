//! [`Tensor::sgd_update`]: one fused SGD step (PyTorch's `torch.optim.SGD`,
//! single-tensor path, with `maximize`) for one F32 parameter and its momentum buffer,
//! in place.

use super::{check_in, check_operands, check_state_given, flip_sign_if, update_piece_len};
use crate::backend::on_device;
use crate::cpu::pool::{Pool, locked_pieces, piece_of};
use crate::cpu::simd::multiversioned;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use mixprec_dtype::F32;

/// The numbers of one SGD step for one parameter. Hyperparameters are f64, as
/// PyTorch's (Python floats) are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdStep {
    /// Learning rate (finite, >= 0).
    pub lr: f64,
    /// Momentum factor in [0, 1); 0 means no momentum buffer.
    pub momentum: f64,
    /// Dampening of the gradient added to the momentum buffer, in [0, 1].
    pub dampening: f64,
    /// L2 penalty added to the gradient (finite, >= 0).
    pub weight_decay: f64,
    /// Nesterov momentum (needs momentum > 0 and dampening 0, PyTorch's rule).
    pub nesterov: bool,
    /// Maximise the objective: step along the gradient instead of against it.
    pub maximize: bool,
    /// The parameter's first step: the momentum buffer is set to the (decayed) gradient
    /// rather than decayed into (PyTorch's rule).
    pub first_step: bool,
}

impl SgdStep {
    /// Checks the hyperparameters; the error names `op` and the bad value. (The
    /// optimizer checks its settings with this when it is built.)
    pub fn check(&self, op: &'static str) -> Result<()> {
        check_in(op, "learning rate", self.lr, 0.0..f64::INFINITY)?;
        check_in(op, "momentum", self.momentum, 0.0..1.0)?;
        check_in(op, "dampening", self.dampening, 0.0..1.0 + f64::EPSILON)?;
        check_in(op, "weight_decay", self.weight_decay, 0.0..f64::INFINITY)?;
        if self.nesterov && (self.momentum == 0.0 || self.dampening != 0.0) {
            return Err(Error::invalid(
                op,
                format!(
                    "Nesterov momentum needs momentum > 0 and dampening 0, got {} and {}",
                    self.momentum, self.dampening
                ),
            ));
        }
        Ok(())
    }

    /// The f32 scalars of the element loop, derived in f64 and rounded once, as PyTorch
    /// derives them from Python floats.
    fn scalars(&self) -> SgdScalars {
        SgdScalars {
            weight_decay: self.weight_decay as f32,
            decays: self.weight_decay != 0.0,
            momentum: self.momentum as f32,
            // `buf.mul_(momentum).add_(grad, alpha=1 - dampening)`.
            one_minus_dampening: (1.0 - self.dampening) as f32,
            // `param.add_(grad, alpha=-lr)`.
            neg_lr: (-self.lr) as f32,
            nesterov: self.nesterov,
            maximize: self.maximize,
            first_step: self.first_step,
        }
    }
}

/// The f32 scalars of one SGD step (see [`SgdStep::scalars`]).
#[derive(Clone, Copy)]
struct SgdScalars {
    weight_decay: f32,
    decays: bool,
    momentum: f32,
    one_minus_dampening: f32,
    neg_lr: f32,
    nesterov: bool,
    maximize: bool,
    first_step: bool,
}

impl Tensor<F32> {
    /// One SGD step in place on this parameter (and its momentum buffer when momentum is
    /// non-zero), with gradient `grad` (all the parameter's shape). With `g` negated
    /// under `maximize`: `d = g + wd p`; with momentum `buf = d` on the first step, else
    /// `buf = momentum buf + (1 - dampening) d`, then `d = d + momentum buf` (Nesterov)
    /// or `buf`; `p = p - lr d`.
    ///
    /// Precision: bit for bit PyTorch's single-tensor CPU update (see the module docs):
    /// the scalars rounded once to f32, every `x + alpha y` one fused multiply-add
    /// (`fma(p, wd, g)`, `fma(d, 1 - dampening, momentum buf)`, `fma(buf, momentum, d)`,
    /// `fma(d, -lr, p)`), the product `momentum buf` rounded on its own.
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
    ///                   nesterov: false, maximize: false, first_step: true };
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
        h.check(OP)?;
        check_state_given(
            OP,
            "a momentum buffer (momentum > 0)",
            h.momentum != 0.0,
            momentum_buffer.is_some(),
        )?;
        let state: Vec<(&str, &Tensor<F32>)> = momentum_buffer
            .as_deref()
            .map(|b| ("momentum buffer", b))
            .into_iter()
            .collect();
        check_operands(OP, self, grad, &state)?;
        on_device!(self.device(), b => b.sgd_update(self, grad, momentum_buffer, h))
    }

    /// The CPU kernel of [`Tensor::sgd_update`], after its front's checks.
    pub(crate) fn sgd_update_on_cpu(
        &mut self,
        grad: &Tensor<F32>,
        mut momentum_buffer: Option<&mut Tensor<F32>>,
        h: SgdStep,
    ) -> Result<()> {
        const OP: &str = "sgd_update";
        let g = grad.try_elements(OP)?;
        // Every copy first, then the writes: an error in any copy changes no value.
        self.try_make_owned(OP)?;
        if let Some(b) = momentum_buffer.as_deref_mut() {
            b.try_make_owned(OP)?;
        }
        let p = self.try_owned_elements_mut(OP)?;
        let (k, per) = (h.scalars(), update_piece_len(p.len()));
        let ps = locked_pieces(p, per);
        match momentum_buffer {
            None => Pool::global().run(ps.len(), &|i| {
                let mut p = piece_of(&ps, i);
                let n = p.len();
                sgd_plain_cpu(&mut p, &g[i * per..][..n], k);
            }),
            Some(buf) => {
                let bs = locked_pieces(buf.try_owned_elements_mut(OP)?, per);
                Pool::global().run(ps.len(), &|i| {
                    let (mut p, mut b) = (piece_of(&ps, i), piece_of(&bs, i));
                    let n = p.len();
                    sgd_momentum_cpu(&mut p, &g[i * per..][..n], &mut b, k);
                });
            }
        }
        Ok(())
    }
}

/// `-g` under `maximize`, then `+ wd p` (one fused multiply-add) when the decay is
/// non-zero (PyTorch skips the add at 0, which matters for an infinite parameter).
#[inline(always)]
fn decayed_gradient(g: f32, p: f32, k: &SgdScalars) -> f32 {
    let g = flip_sign_if(g, k.maximize);
    if k.decays {
        p.mul_add(k.weight_decay, g)
    } else {
        g
    }
}

multiversioned! {
    /// The CPU kernel without momentum: `p = fma(d, -lr, p)`.
    fn sgd_plain_cpu(p: &mut [F32], g: &[F32], k: SgdScalars) {
        for (pj, gj) in p.iter_mut().zip(g) {
            let d = decayed_gradient(gj.0, pj.0, &k);
            pj.0 = d.mul_add(k.neg_lr, pj.0);
        }
    }
}

multiversioned! {
    /// The CPU kernel with a momentum buffer.
    fn sgd_momentum_cpu(p: &mut [F32], g: &[F32], buf: &mut [F32], k: SgdScalars) {
        for ((pj, gj), bj) in p.iter_mut().zip(g).zip(buf) {
            let d = decayed_gradient(gj.0, pj.0, &k);
            bj.0 = if k.first_step {
                d
            } else {
                d.mul_add(k.one_minus_dampening, bj.0 * k.momentum)
            };
            let d = if k.nesterov {
                bj.0.mul_add(k.momentum, d)
            } else {
                bj.0
            };
            pj.0 = d.mul_add(k.neg_lr, pj.0);
        }
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
        maximize: false,
        first_step: true,
    };

    /// PyTorch's SGD written out in f64.
    fn reference(steps: usize, p: f64, g: f64, h: SgdStep) -> f64 {
        let (lr, mu, damp, wd) = (h.lr, h.momentum, h.dampening, h.weight_decay);
        let g = if h.maximize { -g } else { g };
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
        for (nesterov, maximize) in [(false, false), (true, false), (false, true)] {
            let base = SgdStep {
                nesterov,
                maximize,
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
                    "nesterov {nesterov} maximize {maximize} p[{j}] {got} vs {want}"
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
    fn zero_decay_leaves_an_infinite_parameter_out_of_the_gradient() {
        // PyTorch skips `grad.add(param, alpha=0)`; a fused 0 * inf would make NaN.
        let mut p = t(&[f32::INFINITY, 1.0]);
        let h = SgdStep {
            momentum: 0.0,
            weight_decay: 0.0,
            ..H
        };
        p.sgd_update(&t(&[1.0, 1.0]), None, h).unwrap();
        assert_eq!(p.to_f32_vec(), vec![f32::INFINITY, 0.9]);
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
        let damped_nesterov = SgdStep {
            nesterov: true,
            ..H
        };
        let e = p
            .sgd_update(&g, Some(&mut buf), damped_nesterov)
            .unwrap_err();
        assert!(e.to_string().contains("Nesterov"), "{e}");
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
