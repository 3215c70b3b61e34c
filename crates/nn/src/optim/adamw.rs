//! [`AdamW`]: Adam with decoupled weight decay, PyTorch's `torch.optim.AdamW` update
//! (single-tensor path), one fused in-place tensor op per parameter
//! ([`Tensor::adamw_update`]: element-wise in f32 with the bias corrections in f64):
//! `p *= 1 - lr wd`; `m = b1 m + (1 - b1) g`; `v = b2 v + (1 - b2) g^2`;
//! `p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.

use super::{Optimizer, check_hyper, check_step, own_for_update, try_state_zeros};
use mixprec_amp::{MasterWeights, OptimizerKind, ParamUpdate, UnscaledGrads};
use mixprec_autograd::Result;
use mixprec_dtype::F32;
use mixprec_tensor::{AdamWStep, Tensor};

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
    m: Tensor<F32>,
    v: Tensor<F32>,
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
    pub fn moments(&self, index: usize) -> Option<(&Tensor<F32>, &Tensor<F32>, u64)> {
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
        check_step("AdamW", master, grads, lr, self.allow_non_finite)?;
        if self.state.len() < master.len() {
            self.state.resize(master.len(), None);
        }
        master.apply(
            grads,
            &mut AdamWUpdate {
                opt: self,
                lr,
                fresh: Vec::new(),
            },
        )
    }

    fn state_bytes(&self) -> usize {
        self.state
            .iter()
            .flatten()
            .map(|s| s.m.nbytes() + s.v.nbytes())
            .sum()
    }

    fn kind(&self) -> OptimizerKind {
        OptimizerKind::Adam
    }
}

/// One AdamW step over the master weights: phase 1 makes each parameter and its moments
/// writable in place (first-step moments are made here and kept aside, so a failed step
/// leaves no state behind); phase 2 runs the fused update.
struct AdamWUpdate<'a> {
    opt: &'a mut AdamW,
    lr: f32,
    fresh: Vec<(usize, Moments)>,
}

impl ParamUpdate for AdamWUpdate<'_> {
    fn prepare(&mut self, i: usize, param: &mut Tensor<F32>, _grad: &Tensor<F32>) -> Result<()> {
        const OP: &str = "AdamW";
        match &mut self.opt.state[i] {
            Some(s) => own_for_update(OP, param, &mut [&mut s.m, &mut s.v]),
            None => {
                let fresh = Moments {
                    m: try_state_zeros(OP, param)?,
                    v: try_state_zeros(OP, param)?,
                    t: 0,
                };
                self.fresh.push((i, fresh));
                own_for_update(OP, param, &mut [])
            }
        }
    }

    fn commit(&mut self, i: usize, param: &mut Tensor<F32>, grad: &Tensor<F32>) {
        if let Some(at) = self.fresh.iter().position(|(j, _)| *j == i) {
            self.opt.state[i] = Some(self.fresh.swap_remove(at).1);
        }
        let c = self.opt.cfg;
        let s = self.opt.state[i].as_mut().expect("state made in prepare");
        s.t += 1;
        let h = AdamWStep {
            lr: self.lr,
            beta1: c.beta1,
            beta2: c.beta2,
            eps: c.eps,
            weight_decay: c.weight_decay,
            step: s.t,
        };
        // Every check and allocation passed in prepare; nothing here can fail.
        if let Err(e) = param.adamw_update(grad, &mut s.m, &mut s.v, h) {
            panic!("AdamW: the update failed after its checks passed: {e}")
        }
    }
}
