//! [`Tensor::adamw_update`]: one fused AdamW step (PyTorch's `torch.optim.AdamW`,
//! single-tensor path, with `amsgrad` and `maximize`) for one F32 parameter and its
//! moments, in place.

use super::{check_in, check_operands, check_state_given, flip_sign_if, update_piece_len};
use crate::backend::on_device;
use crate::cpu::pool::{Pool, locked_pieces, piece_of};
use crate::cpu::simd::multiversioned;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use mixprec_dtype::F32;

/// The numbers of one AdamW step for one parameter. Hyperparameters are f64, as
/// PyTorch's (Python floats) are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWStep {
    /// Learning rate (finite, >= 0).
    pub lr: f64,
    /// Decay of the first moment, in [0, 1).
    pub beta1: f64,
    /// Decay of the second moment, in [0, 1).
    pub beta2: f64,
    /// Added to the denominator (finite, > 0).
    pub eps: f64,
    /// Decoupled weight decay, multiplied by the learning rate (finite, >= 0).
    pub weight_decay: f64,
    /// AMSGrad: normalise by the running maximum of the second moment (a third state
    /// tensor).
    pub amsgrad: bool,
    /// Maximise the objective: step along the gradient instead of against it.
    pub maximize: bool,
    /// This parameter's step number, from 1, for the bias corrections.
    pub step: u64,
}

impl AdamWStep {
    /// Checks the hyperparameters and the step number; the error names `op` and the bad
    /// value. (The optimizer checks its settings with this when it is built.)
    pub fn check(&self, op: &'static str) -> Result<()> {
        check_in(op, "learning rate", self.lr, 0.0..f64::INFINITY)?;
        check_in(op, "beta1", self.beta1, 0.0..1.0)?;
        check_in(op, "beta2", self.beta2, 0.0..1.0)?;
        check_in(op, "eps", self.eps, f64::MIN_POSITIVE..f64::INFINITY)?;
        check_in(op, "weight_decay", self.weight_decay, 0.0..f64::INFINITY)?;
        if self.step == 0 {
            return Err(Error::invalid(op, "the step number counts from 1, got 0"));
        }
        Ok(())
    }

    /// The f32 scalars of the element loop, derived in f64 and rounded once, as PyTorch
    /// derives them from Python floats.
    fn scalars(&self) -> AdamWScalars {
        let t = self.step as f64;
        let bias_correction1 = 1.0 - self.beta1.powf(t);
        let bias_correction2 = 1.0 - self.beta2.powf(t);
        AdamWScalars {
            // `param.mul_(1 - lr * weight_decay)`, skipped when the decay is 0.
            decay: if self.weight_decay != 0.0 {
                (1.0 - self.lr * self.weight_decay) as f32
            } else {
                1.0
            },
            // `exp_avg.lerp_(grad, 1 - beta1)`.
            lerp_weight: (1.0 - self.beta1) as f32,
            beta2: self.beta2 as f32,
            // `exp_avg_sq.addcmul_(grad, grad, value=1 - beta2)`.
            one_minus_beta2: (1.0 - self.beta2) as f32,
            // `bias_correction2 ** 0.5` (Python's pow).
            bias_correction2_sqrt: bias_correction2.powf(0.5) as f32,
            eps: self.eps as f32,
            // `param.addcdiv_(exp_avg, denom, value=-step_size)`.
            neg_step_size: (-(self.lr / bias_correction1)) as f32,
            amsgrad: self.amsgrad,
            maximize: self.maximize,
        }
    }
}

/// The f32 scalars of one AdamW step (see [`AdamWStep::scalars`]).
#[derive(Clone, Copy)]
struct AdamWScalars {
    decay: f32,
    lerp_weight: f32,
    beta2: f32,
    one_minus_beta2: f32,
    bias_correction2_sqrt: f32,
    eps: f32,
    neg_step_size: f32,
    amsgrad: bool,
    maximize: bool,
}

impl Tensor<F32> {
    /// One AdamW step in place on this parameter and its moments `m` and `v` (and the
    /// running maximum `max_v` of `v` under AMSGrad), with gradient `grad` (all the
    /// parameter's shape). With `g` negated under `maximize`:
    /// `p *= 1 - lr wd`; `m = lerp(m, g, 1 - b1)`; `v = b2 v + (1 - b2) g^2`;
    /// `max_v = max(max_v, v)` (AMSGrad); `p += (-lr / (1 - b1^t)) m / (sqrt(v') /
    /// sqrt(1 - b2^t) + eps)` with `v'` = `max_v` under AMSGrad, else `v`.
    ///
    /// Precision: bit for bit PyTorch's single-tensor CPU update (see the module docs):
    /// the scalars in f64 rounded once to f32; per element f32 operations with fused
    /// multiply-adds in `lerp` (`fma(w, g - m, m)`, or `fma(w - 1, g - m, g)` when
    /// `w >= 0.5`) and in the second moment (`fma((1 - b2) g, g, b2 v)`); a correctly
    /// rounded square root (PyTorch's CPU build takes Intel MKL's, which is within 0.75
    /// ulp but not always correctly rounded: see `docs/nn.md`).
    ///
    /// Errors (changing nothing) on shapes or devices that differ, hyperparameters out of
    /// range, step 0, `max_v` given without AMSGrad or missing with it, or when a shared
    /// parameter or state tensor cannot be copied to be written
    /// ([`Tensor::try_make_owned`]).
    ///
    /// ```
    /// use mixprec_tensor::{AdamWStep, Tensor};
    /// use mixprec_dtype::F32;
    /// let mut p = Tensor::<F32>::from_f32(&[1.0, -1.0], &[2]).unwrap();
    /// let g = Tensor::<F32>::from_f32(&[0.5, -0.5], &[2]).unwrap();
    /// let (mut m, mut v) = (Tensor::zeros(&[2]), Tensor::zeros(&[2]));
    /// let h = AdamWStep { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0,
    ///                     amsgrad: false, maximize: false, step: 1 };
    /// p.adamw_update(&g, &mut m, &mut v, None, h).unwrap();
    /// // The first step moves each weight by about lr against its gradient's sign.
    /// assert!((p.to_f32_vec()[0] - 0.9).abs() < 1e-6);
    /// assert!((p.to_f32_vec()[1] + 0.9).abs() < 1e-6);
    /// ```
    pub fn adamw_update(
        &mut self,
        grad: &Tensor<F32>,
        m: &mut Tensor<F32>,
        v: &mut Tensor<F32>,
        max_v: Option<&mut Tensor<F32>>,
        h: AdamWStep,
    ) -> Result<()> {
        const OP: &str = "adamw_update";
        h.check(OP)?;
        check_state_given(OP, "max_v (AMSGrad)", h.amsgrad, max_v.is_some())?;
        let mut state = vec![("m", &*m), ("v", &*v)];
        state.extend(max_v.as_deref().map(|t| ("max_v", t)));
        check_operands(OP, self, grad, &state)?;
        on_device!(self.device(), b => b.adamw_update(self, grad, m, v, max_v, h))
    }

    /// The CPU kernel of [`Tensor::adamw_update`], after its front's checks.
    pub(crate) fn adamw_update_on_cpu(
        &mut self,
        grad: &Tensor<F32>,
        m: &mut Tensor<F32>,
        v: &mut Tensor<F32>,
        mut max_v: Option<&mut Tensor<F32>>,
        h: AdamWStep,
    ) -> Result<()> {
        const OP: &str = "adamw_update";
        let g = grad.try_elements(OP)?;
        // Every copy first, then the writes: an error in any copy changes no value.
        self.try_make_owned(OP)?;
        m.try_make_owned(OP)?;
        v.try_make_owned(OP)?;
        if let Some(t) = max_v.as_deref_mut() {
            t.try_make_owned(OP)?;
        }
        let p = self.try_owned_elements_mut(OP)?;
        let (k, per) = (h.scalars(), update_piece_len(p.len()));
        let ps = locked_pieces(p, per);
        let ms = locked_pieces(m.try_owned_elements_mut(OP)?, per);
        let vs = locked_pieces(v.try_owned_elements_mut(OP)?, per);
        let max_vs = match max_v {
            Some(t) => locked_pieces(t.try_owned_elements_mut(OP)?, per),
            None => Vec::new(),
        };
        Pool::global().run(ps.len(), &|i| {
            let (mut p, mut m, mut v) = (piece_of(&ps, i), piece_of(&ms, i), piece_of(&vs, i));
            let n = p.len();
            // Empty without AMSGrad.
            let mut max_v = (!max_vs.is_empty()).then(|| piece_of(&max_vs, i));
            let max_v: &mut [F32] = match &mut max_v {
                Some(piece) => piece,
                None => &mut [],
            };
            adamw_cpu(&mut p, &g[i * per..][..n], &mut m, &mut v, max_v, k);
        });
        Ok(())
    }
}

multiversioned! {
    /// The CPU kernel: one pass over the elements (`max_v` is empty without AMSGrad).
    fn adamw_cpu(
        p: &mut [F32],
        g: &[F32],
        m: &mut [F32],
        v: &mut [F32],
        max_v: &mut [F32],
        k: AdamWScalars
    ) {
        let lerp_small = k.lerp_weight.abs() < 0.5;
        // Slices of one length, so the loop runs without bounds checks.
        let n = p.len();
        let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
        for j in 0..n {
            let gj = flip_sign_if(g[j].0, k.maximize);
            let pj = p[j].0 * k.decay;
            // PyTorch's vectorised lerp: the weight or the weight - 1, from the nearer end.
            let mj = m[j].0;
            let diff = gj - mj;
            let mj = if lerp_small {
                k.lerp_weight.mul_add(diff, mj)
            } else {
                (k.lerp_weight - 1.0).mul_add(diff, gj)
            };
            let vj = (k.one_minus_beta2 * gj).mul_add(gj, v[j].0 * k.beta2);
            let second = if k.amsgrad {
                let top = max_propagating_nan(max_v[j].0, vj);
                max_v[j] = F32(top);
                top
            } else {
                vj
            };
            let denom = second.sqrt() / k.bias_correction2_sqrt + k.eps;
            (m[j], v[j]) = (F32(mj), F32(vj));
            p[j] = F32(pj + k.neg_step_size * mj / denom);
        }
    }
}

/// `torch.maximum`: the larger, NaN when either is NaN.
#[inline(always)]
fn max_propagating_nan(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32]) -> Tensor<F32> {
        Tensor::from_f32(v, &[v.len()]).unwrap()
    }

    const H: AdamWStep = AdamWStep {
        lr: 1e-2,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.1,
        amsgrad: false,
        maximize: false,
        step: 1,
    };

    /// The update written out in f64 from its definition; f32 rounding of each
    /// operation keeps the result within a few ulp of it.
    /// One element's state in the f64 reference: parameter, moments, running maximum.
    #[derive(Clone, Copy)]
    struct Ref {
        p: f64,
        m: f64,
        v: f64,
        max_v: f64,
    }

    /// The update written out in f64 from its definition; f32 rounding of each
    /// operation keeps the result within a few ulp of it.
    fn reference(r: Ref, g: f64, h: AdamWStep) -> Ref {
        let (b1, b2, lr) = (h.beta1, h.beta2, h.lr);
        let g = if h.maximize { -g } else { g };
        let m = b1 * r.m + (1.0 - b1) * g;
        let v = b2 * r.v + (1.0 - b2) * g * g;
        let max_v = r.max_v.max(v);
        let t = h.step as i32;
        let mhat = m / (1.0 - b1.powi(t));
        let vhat = if h.amsgrad { max_v } else { v } / (1.0 - b2.powi(t));
        let p = r.p * (1.0 - lr * h.weight_decay) - lr * mhat / (vhat.sqrt() + h.eps);
        Ref { p, m, v, max_v }
    }

    #[test]
    fn three_steps_match_the_f64_definition() {
        let p0 = [0.5f32, -1.25, 3.0, 1e-3];
        // The gradients shrink, so AMSGrad's maximum differs from the second moment.
        let grads = [[0.1f32, -0.7, 2.0, -1e-4], [0.01, -0.07, 0.2, -1e-5]];
        for (amsgrad, maximize, beta1) in [
            (false, false, 0.9),
            (true, false, 0.9),
            (false, true, 0.9),
            (true, true, 0.3),
        ] {
            let base = AdamWStep {
                amsgrad,
                maximize,
                beta1,
                ..H
            };
            let (mut p, mut m, mut v) = (t(&p0), Tensor::zeros(&[4]), Tensor::zeros(&[4]));
            let mut max_v = Tensor::zeros(&[4]);
            let mut want: Vec<Ref> = p0
                .iter()
                .map(|&x| Ref {
                    p: f64::from(x),
                    m: 0.0,
                    v: 0.0,
                    max_v: 0.0,
                })
                .collect();
            for step in 1..=3 {
                let h = AdamWStep { step, ..base };
                let g = grads[(step as usize - 1).min(1)];
                let max_v = amsgrad.then_some(&mut max_v);
                p.adamw_update(&t(&g), &mut m, &mut v, max_v, h).unwrap();
                for (w, &gj) in want.iter_mut().zip(&g) {
                    *w = reference(*w, f64::from(gj), h);
                }
            }
            let case = format!("amsgrad {amsgrad} maximize {maximize} beta1 {beta1}");
            for (j, w) in want.iter().enumerate() {
                // f32 arithmetic, a dozen roundings per step: 1e-5 relative to the moved
                // amount (lr = 1e-2) separates the update from a wrong one.
                let got = f64::from(p.to_f32_vec()[j]);
                assert!(
                    (got - w.p).abs() <= 1e-6 + 1e-5 * w.p.abs(),
                    "{case}: p[{j}] {got} vs {}",
                    w.p
                );
                let (gm, gv) = (f64::from(m.to_f32_vec()[j]), f64::from(v.to_f32_vec()[j]));
                assert!(
                    (gm - w.m).abs() <= 1e-6 * w.m.abs().max(1e-6),
                    "{case}: m[{j}]"
                );
                assert!(
                    (gv - w.v).abs() <= 1e-6 * w.v.abs().max(1e-12),
                    "{case}: v[{j}]"
                );
                if amsgrad {
                    let gx = f64::from(max_v.to_f32_vec()[j]);
                    assert!(
                        (gx - w.max_v).abs() <= 1e-6 * w.max_v.abs().max(1e-12),
                        "{case}: max_v[{j}]"
                    );
                }
            }
        }
    }

    #[test]
    fn amsgrad_maximum_propagates_nan() {
        let mut p = t(&[1.0]);
        let (mut m, mut v) = (Tensor::zeros(&[1]), Tensor::zeros(&[1]));
        let mut max_v = t(&[f32::NAN]);
        let h = AdamWStep { amsgrad: true, ..H };
        p.adamw_update(&t(&[1.0]), &mut m, &mut v, Some(&mut max_v), h)
            .unwrap();
        assert!(max_v.to_f32_vec()[0].is_nan() && p.to_f32_vec()[0].is_nan());
    }

    #[test]
    fn shared_state_is_copied_not_written_through() {
        let mut p = t(&[1.0, 2.0]);
        let p_clone = p.clone();
        let (mut m, mut v) = (Tensor::zeros(&[2]), Tensor::zeros(&[2]));
        let m_seen = m.clone();
        p.adamw_update(&t(&[1.0, 1.0]), &mut m, &mut v, None, H)
            .unwrap();
        assert_eq!(
            p_clone.to_f32_vec(),
            vec![1.0, 2.0],
            "the clone keeps its values"
        );
        assert_eq!(m_seen.to_f32_vec(), vec![0.0, 0.0]);
        assert_ne!(p.to_f32_vec(), vec![1.0, 2.0]);
        assert_ne!(m.to_f32_vec(), vec![0.0, 0.0]);
    }

    #[test]
    fn views_update_to_contiguous_tensors() {
        // A transposed parameter and a broadcast gradient.
        let base = Tensor::<F32>::from_f32(&[1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
        let mut p = base.transpose(0, 1).unwrap();
        let g = Tensor::<F32>::from_f32(&[1.0], &[1])
            .unwrap()
            .broadcast_to(&[2, 2])
            .unwrap();
        let (mut m, mut v) = (Tensor::zeros(&[2, 2]), Tensor::zeros(&[2, 2]));
        let h = AdamWStep {
            weight_decay: 0.0,
            ..H
        };
        p.adamw_update(&g, &mut m, &mut v, None, h).unwrap();
        assert!(p.is_contiguous());
        let got = p.to_f32_vec();
        for (a, b) in got.iter().zip([1.0, 3.0, 2.0, 4.0]) {
            assert!((a - (b - 1e-2)).abs() < 1e-6, "{got:?}");
        }
        assert_eq!(base.to_f32_vec(), vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn bad_inputs_are_errors_that_change_nothing() {
        let mut p = t(&[1.0, 2.0]);
        let (mut m, mut v) = (Tensor::zeros(&[2]), Tensor::zeros(&[2]));
        let g = t(&[1.0, 1.0]);
        let cases: [(AdamWStep, &str); 7] = [
            (AdamWStep { step: 0, ..H }, "step number"),
            (AdamWStep { amsgrad: true, ..H }, "max_v (AMSGrad): missing"),
            (AdamWStep { lr: f64::NAN, ..H }, "learning rate"),
            (AdamWStep { beta1: 1.0, ..H }, "beta1"),
            (AdamWStep { beta2: -0.1, ..H }, "beta2"),
            (AdamWStep { eps: 0.0, ..H }, "eps"),
            (
                AdamWStep {
                    weight_decay: f64::INFINITY,
                    ..H
                },
                "weight_decay",
            ),
        ];
        for (h, what) in cases {
            let e = p
                .adamw_update(&g, &mut m, &mut v, None, h)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("adamw_update") && e.contains(what), "{e}");
        }
        let e = p
            .adamw_update(&t(&[1.0]), &mut m, &mut v, None, H)
            .unwrap_err();
        assert!(e.to_string().contains("gradient"), "{e}");
        let mut short = Tensor::zeros(&[3]);
        let e = p.adamw_update(&g, &mut short, &mut v, None, H).unwrap_err();
        assert!(e.to_string().contains("state"), "{e}");
        let e = p
            .adamw_update(&g, &mut m, &mut v, Some(&mut Tensor::zeros(&[2])), H)
            .unwrap_err();
        assert!(e.to_string().contains("given but not used"), "{e}");
        assert_eq!(p.to_f32_vec(), vec![1.0, 2.0]);
        assert_eq!(m.to_f32_vec(), vec![0.0, 0.0]);
    }
}
