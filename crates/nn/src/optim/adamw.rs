//! [`AdamW`]: Adam with decoupled weight decay, PyTorch's `torch.optim.AdamW` update
//! (single-tensor path), element-wise in f32 with the bias corrections in f64:
//! `p *= 1 - lr wd`; `m = b1 m + (1 - b1) g`; `v = b2 v + (1 - b2) g^2`;
//! `p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.

use super::{Optimizer, check_hyper, check_step, into_param, step_buffers, try_state_zeros};
use mixprec_amp::{MasterWeights, OptimizerKind, UnscaledGrads};
use mixprec_autograd::Result;

/// AdamW settings; `Default` is PyTorch's (betas 0.9 / 0.999, eps 1e-8, decay 0.01).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    /// Decay of the first moment.
    pub beta1: f32,
    /// Decay of the second moment.
    pub beta2: f32,
    /// Added to the denominator.
    pub eps: f32,
    /// Decoupled weight decay (multiplied by the learning rate).
    pub weight_decay: f32,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// One parameter's state.
#[derive(Clone, Debug)]
struct Moments {
    m: Vec<f32>,
    v: Vec<f32>,
    /// Steps taken for this parameter.
    t: u64,
}

/// AdamW with two F32 moments per parameter.
#[derive(Clone, Debug)]
pub struct AdamW {
    cfg: AdamWConfig,
    state: Vec<Option<Moments>>,
    allow_non_finite: bool,
}

impl AdamW {
    /// An optimizer with `cfg`. Errors unless both betas are in [0, 1), `eps` is finite
    /// and > 0, and the weight decay is finite and >= 0.
    pub fn new(cfg: AdamWConfig) -> Result<AdamW> {
        check_hyper("AdamW", "beta1", cfg.beta1, 0.0..1.0)?;
        check_hyper("AdamW", "beta2", cfg.beta2, 0.0..1.0)?;
        check_hyper("AdamW", "eps", cfg.eps, f32::MIN_POSITIVE..f32::INFINITY)?;
        check_hyper(
            "AdamW",
            "weight_decay",
            cfg.weight_decay,
            0.0..f32::INFINITY,
        )?;
        Ok(AdamW {
            cfg,
            state: Vec::new(),
            allow_non_finite: false,
        })
    }

    /// The state of parameter `index`: first moments, second moments and the steps
    /// taken (`None` before its first step).
    pub fn moments(&self, index: usize) -> Option<(&[f32], &[f32], u64)> {
        let s = self.state.get(index)?.as_ref()?;
        Some((&s.m, &s.v, s.t))
    }

    /// Lets steps take gradients that hold an inf or NaN (refused by default).
    pub fn allow_non_finite(mut self, allow: bool) -> AdamW {
        self.allow_non_finite = allow;
        self
    }
}

impl Optimizer for AdamW {
    fn step(&mut self, master: &mut MasterWeights, grads: &UnscaledGrads, lr: f32) -> Result<()> {
        // Every check and every allocation happens first (phase 1); after it nothing can
        // fail, so the moments are updated in place and the parameters replaced together
        // (the step is atomic).
        check_step("AdamW", master, grads, lr, self.allow_non_finite)?;
        let c = self.cfg;
        let work = step_buffers("AdamW", master, grads, |i, shape, n| {
            Ok(match self.state.get(i) {
                Some(Some(_)) => None,
                _ => Some(Moments {
                    m: try_state_zeros("AdamW", shape, n)?,
                    v: try_state_zeros("AdamW", shape, n)?,
                    t: 0,
                }),
            })
        })?;
        // Phase 2: no allocation that can fail, no error.
        if self.state.len() < master.len() {
            self.state.resize(master.len(), None);
        }
        let mut new_params = Vec::with_capacity(master.len());
        for (i, ((_, p), item)) in master.iter().zip(work).enumerate() {
            let Some((mut w, gv, fresh)) = item else {
                new_params.push(None);
                continue;
            };
            let s = match fresh {
                Some(m) => self.state[i].insert(m),
                None => self.state[i]
                    .as_mut()
                    .expect("state kept from earlier steps"),
            };
            s.t += 1;
            let bc1 = 1.0 - f64::from(c.beta1).powi(s.t as i32);
            let bc2 = 1.0 - f64::from(c.beta2).powi(s.t as i32);
            let step_size = (f64::from(lr) / bc1) as f32;
            let bc2_sqrt = bc2.sqrt() as f32;
            let decay = 1.0 - lr * c.weight_decay;
            for (((wj, &gj), mj), vj) in w.iter_mut().zip(&gv).zip(&mut s.m).zip(&mut s.v) {
                *wj *= decay;
                *mj = c.beta1 * *mj + (1.0 - c.beta1) * gj;
                *vj = c.beta2 * *vj + (1.0 - c.beta2) * gj * gj;
                let denom = vj.sqrt() / bc2_sqrt + c.eps;
                *wj -= step_size * *mj / denom;
            }
            new_params.push(Some(into_param(w, p.shape())));
        }
        master.apply(grads, |i, _, _| {
            Ok(new_params[i].take().expect("computed for every gradient"))
        })
    }

    fn state_bytes(&self) -> usize {
        self.state
            .iter()
            .flatten()
            .map(|s| 4 * (s.m.len() + s.v.len()))
            .sum()
    }

    fn kind(&self) -> OptimizerKind {
        OptimizerKind::Adam
    }
}
