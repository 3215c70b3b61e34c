//! [`Tensor::adamw_update`]: one fused AdamW step (PyTorch's `torch.optim.AdamW`,
//! single-tensor path) for one F32 parameter and its two moments, in place.

use super::{check_in, check_operands};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use mixprec_dtype::F32;

/// The numbers of one AdamW step for one parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWStep {
    /// Learning rate (finite, >= 0).
    pub lr: f32,
    /// Decay of the first moment, in [0, 1).
    pub beta1: f32,
    /// Decay of the second moment, in [0, 1).
    pub beta2: f32,
    /// Added to the denominator (finite, > 0).
    pub eps: f32,
    /// Decoupled weight decay, multiplied by the learning rate (finite, >= 0).
    pub weight_decay: f32,
    /// This parameter's step number, from 1, for the bias corrections.
    pub step: u64,
}

impl AdamWStep {
    fn check(&self, op: &'static str) -> Result<()> {
        check_in(op, "learning rate", self.lr, 0.0..f32::INFINITY)?;
        check_in(op, "beta1", self.beta1, 0.0..1.0)?;
        check_in(op, "beta2", self.beta2, 0.0..1.0)?;
        check_in(op, "eps", self.eps, f32::MIN_POSITIVE..f32::INFINITY)?;
        check_in(op, "weight_decay", self.weight_decay, 0.0..f32::INFINITY)?;
        if self.step == 0 {
            return Err(Error::invalid(op, "the step number counts from 1, got 0"));
        }
        Ok(())
    }
}

impl Tensor<F32> {
    /// One AdamW step in place on this parameter and its moments `m` and `v`, with
    /// gradient `grad` (all the parameter's shape):
    /// `p *= 1 - lr wd`; `m = b1 m + (1 - b1) g`; `v = b2 v + (1 - b2) g^2`;
    /// `p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
    ///
    /// Precision: every element operation is one f32 operation rounded to nearest even
    /// (no fused multiply-adds); the bias corrections `1 - b^t` and `lr / (1 - b1^t)`
    /// are computed in f64 and rounded once to f32.
    ///
    /// Errors (changing nothing) on shapes or devices that differ, hyperparameters out of
    /// range, step 0, or when a shared parameter or moment cannot be copied to be written
    /// ([`Tensor::try_make_owned`]).
    ///
    /// ```
    /// use mixprec_tensor::{AdamWStep, Tensor};
    /// use mixprec_dtype::F32;
    /// let mut p = Tensor::<F32>::from_f32(&[1.0, -1.0], &[2]).unwrap();
    /// let g = Tensor::<F32>::from_f32(&[0.5, -0.5], &[2]).unwrap();
    /// let (mut m, mut v) = (Tensor::zeros(&[2]), Tensor::zeros(&[2]));
    /// let h = AdamWStep { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, step: 1 };
    /// p.adamw_update(&g, &mut m, &mut v, h).unwrap();
    /// // The first step moves each weight by about lr against its gradient's sign.
    /// assert!((p.to_f32_vec()[0] - 0.9).abs() < 1e-6);
    /// assert!((p.to_f32_vec()[1] + 0.9).abs() < 1e-6);
    /// ```
    pub fn adamw_update(
        &mut self,
        grad: &Tensor<F32>,
        m: &mut Tensor<F32>,
        v: &mut Tensor<F32>,
        h: AdamWStep,
    ) -> Result<()> {
        const OP: &str = "adamw_update";
        h.check(OP)?;
        check_operands(OP, self, grad, &[("m", m), ("v", v)])?;
        let g = grad.try_elements(OP)?;
        self.try_make_owned(OP)?;
        m.try_make_owned(OP)?;
        v.try_make_owned(OP)?;
        let (Some(p), Some(m), Some(v)) = (
            self.owned_elements_mut(),
            m.owned_elements_mut(),
            v.owned_elements_mut(),
        ) else {
            unreachable!("try_make_owned made each tensor the owner of its elements")
        };
        adamw_cpu(p, &g, m, v, h);
        Ok(())
    }
}

/// The CPU kernel: one pass over the elements.
fn adamw_cpu(p: &mut [F32], g: &[F32], m: &mut [F32], v: &mut [F32], h: AdamWStep) {
    let t = i32::try_from(h.step).unwrap_or(i32::MAX);
    let bc1 = 1.0 - f64::from(h.beta1).powi(t);
    let bc2 = 1.0 - f64::from(h.beta2).powi(t);
    let step_size = (f64::from(h.lr) / bc1) as f32;
    let bc2_sqrt = bc2.sqrt() as f32;
    let decay = 1.0 - h.lr * h.weight_decay;
    let (b1, b2, eps) = (h.beta1, h.beta2, h.eps);
    for (((pj, &F32(gj)), F32(mj)), F32(vj)) in p.iter_mut().zip(g).zip(m).zip(v) {
        let mut w = pj.0 * decay;
        *mj = b1 * *mj + (1.0 - b1) * gj;
        *vj = b2 * *vj + (1.0 - b2) * gj * gj;
        let denom = vj.sqrt() / bc2_sqrt + eps;
        w -= step_size * *mj / denom;
        pj.0 = w;
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
        step: 1,
    };

    /// The update written out in f64 from its definition; f32 rounding of each
    /// operation keeps the result within a few ulp of it.
    fn reference(p: f64, g: f64, m: f64, v: f64, h: AdamWStep) -> (f64, f64, f64) {
        let (b1, b2) = (f64::from(h.beta1), f64::from(h.beta2));
        let (lr, wd, eps) = (f64::from(h.lr), f64::from(h.weight_decay), f64::from(h.eps));
        let m = b1 * m + (1.0 - b1) * g;
        let v = b2 * v + (1.0 - b2) * g * g;
        let t = h.step as i32;
        let mhat = m / (1.0 - b1.powi(t));
        let vhat = v / (1.0 - b2.powi(t));
        (p * (1.0 - lr * wd) - lr * mhat / (vhat.sqrt() + eps), m, v)
    }

    #[test]
    fn three_steps_match_the_f64_definition() {
        let (p0, g) = ([0.5f32, -1.25, 3.0, 1e-3], [0.1f32, -0.7, 2.0, -1e-4]);
        let (mut p, mut m, mut v) = (t(&p0), Tensor::zeros(&[4]), Tensor::zeros(&[4]));
        let mut want: Vec<(f64, f64, f64)> = p0.iter().map(|&x| (f64::from(x), 0.0, 0.0)).collect();
        for step in 1..=3 {
            let h = AdamWStep { step, ..H };
            p.adamw_update(&t(&g), &mut m, &mut v, h).unwrap();
            for (w, &gj) in want.iter_mut().zip(&g) {
                *w = reference(w.0, f64::from(gj), w.1, w.2, h);
            }
        }
        for (j, w) in want.iter().enumerate() {
            // f32 arithmetic, a dozen roundings per step: 1e-5 relative to the moved
            // amount (lr = 1e-2) separates the update from a wrong one.
            let got = f64::from(p.to_f32_vec()[j]);
            assert!(
                (got - w.0).abs() <= 1e-6 + 1e-5 * w.0.abs(),
                "p[{j}] {got} vs {}",
                w.0
            );
            let (gm, gv) = (f64::from(m.to_f32_vec()[j]), f64::from(v.to_f32_vec()[j]));
            assert!((gm - w.1).abs() <= 1e-6 * w.1.abs().max(1e-6), "m[{j}]");
            assert!((gv - w.2).abs() <= 1e-6 * w.2.abs().max(1e-12), "v[{j}]");
        }
    }

    #[test]
    fn shared_state_is_copied_not_written_through() {
        let mut p = t(&[1.0, 2.0]);
        let p_clone = p.clone();
        let (mut m, mut v) = (Tensor::zeros(&[2]), Tensor::zeros(&[2]));
        let m_seen = m.clone();
        p.adamw_update(&t(&[1.0, 1.0]), &mut m, &mut v, H).unwrap();
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
        p.adamw_update(&g, &mut m, &mut v, h).unwrap();
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
        let cases: [(AdamWStep, &str); 6] = [
            (AdamWStep { step: 0, ..H }, "step number"),
            (AdamWStep { lr: f32::NAN, ..H }, "learning rate"),
            (AdamWStep { beta1: 1.0, ..H }, "beta1"),
            (AdamWStep { beta2: -0.1, ..H }, "beta2"),
            (AdamWStep { eps: 0.0, ..H }, "eps"),
            (
                AdamWStep {
                    weight_decay: f32::INFINITY,
                    ..H
                },
                "weight_decay",
            ),
        ];
        for (h, what) in cases {
            let e = p
                .adamw_update(&g, &mut m, &mut v, h)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("adamw_update") && e.contains(what), "{e}");
        }
        let e = p.adamw_update(&t(&[1.0]), &mut m, &mut v, H).unwrap_err();
        assert!(e.to_string().contains("gradient"), "{e}");
        let mut short = Tensor::zeros(&[3]);
        let e = p.adamw_update(&g, &mut short, &mut v, H).unwrap_err();
        assert!(e.to_string().contains("state"), "{e}");
        assert_eq!(p.to_f32_vec(), vec![1.0, 2.0]);
        assert_eq!(m.to_f32_vec(), vec![0.0, 0.0]);
    }
}
