//! [`AdamW`]: Adam with decoupled weight decay, PyTorch's `torch.optim.AdamW` update
//! (single-tensor path, with `amsgrad` and `maximize`), bit for bit, one fused in-place
//! tensor op per parameter ([`Tensor::adamw_update`]):
//! `p *= 1 - lr wd`; `m = lerp(m, g, 1 - b1)`; `v = b2 v + (1 - b2) g^2`;
//! `p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.

use super::{
    Optimizer, check_state_shape, check_step, own_for_update, param_named, saved, try_state_zeros,
};
use crate::checkpoint::TensorFile;
use mixprec_amp::{MasterWeights, OptimizerKind, ParamUpdate, UnscaledGrads};
use mixprec_autograd::{Error, Result};
use mixprec_dtype::F32;
use mixprec_tensor::{AdamWStep, Tensor};

/// AdamW settings; `Default` is PyTorch's (betas 0.9 / 0.999, eps 1e-8, decay 0.01, no
/// AMSGrad, minimising).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// Decoupled weight decay (multiplied by the learning rate).
    pub weight_decay: f64,
    /// AMSGrad: normalise by the running maximum of the second moment.
    pub amsgrad: bool,
    /// Maximise the objective instead of minimising it.
    pub maximize: bool,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            amsgrad: false,
            maximize: false,
        }
    }
}

impl AdamWConfig {
    /// The tensor op's numbers for one step of one parameter.
    fn at(&self, lr: f64, step: u64) -> AdamWStep {
        AdamWStep {
            lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            amsgrad: self.amsgrad,
            maximize: self.maximize,
            step,
        }
    }
}

/// One parameter's AdamW state, under PyTorch's names.
#[derive(Clone, Debug)]
pub struct AdamWParamState {
    /// First moment (`exp_avg`).
    pub exp_avg: Tensor<F32>,
    /// Second moment (`exp_avg_sq`).
    pub exp_avg_sq: Tensor<F32>,
    /// Running maximum of the second moment (`max_exp_avg_sq`), under AMSGrad only.
    pub max_exp_avg_sq: Option<Tensor<F32>>,
    /// Steps taken for this parameter (`step`).
    pub step: u64,
}

impl AdamWParamState {
    /// Zeros shaped like `param`, before the first step.
    fn zeros(op: &'static str, param: &Tensor<F32>, amsgrad: bool) -> Result<Self> {
        Ok(AdamWParamState {
            exp_avg: try_state_zeros(op, param)?,
            exp_avg_sq: try_state_zeros(op, param)?,
            max_exp_avg_sq: amsgrad.then(|| try_state_zeros(op, param)).transpose()?,
            step: 0,
        })
    }

    fn bytes(&self) -> usize {
        let max = self.max_exp_avg_sq.as_ref().map_or(0, Tensor::nbytes);
        self.exp_avg.nbytes() + self.exp_avg_sq.nbytes() + max
    }
}

/// AdamW with two F32 moments per parameter (three under AMSGrad).
#[derive(Clone, Debug)]
pub struct AdamW {
    cfg: AdamWConfig,
    state: Vec<Option<AdamWParamState>>,
    allow_non_finite: bool,
}

impl AdamW {
    /// An optimizer with `cfg`. Errors unless both betas are in [0, 1), `eps` is finite
    /// and > 0, and the weight decay is finite and >= 0.
    pub fn new(cfg: AdamWConfig) -> Result<AdamW> {
        cfg.at(0.0, 1).check("AdamW")?;
        Ok(AdamW {
            cfg,
            state: Vec::new(),
            allow_non_finite: false,
        })
    }

    /// The settings.
    pub fn config(&self) -> &AdamWConfig {
        &self.cfg
    }

    /// The state of parameter `index` (`None` before its first step).
    pub fn state(&self, index: usize) -> Option<&AdamWParamState> {
        self.state.get(index)?.as_ref()
    }

    /// The state of the parameter called `name` in `master` (`None` before its first
    /// step); an error when no parameter has that name.
    pub fn state_of(&self, master: &MasterWeights, name: &str) -> Result<Option<&AdamWParamState>> {
        Ok(self.state(param_named("AdamW::state_of", master, name)?.0))
    }

    /// Sets the state of the parameter called `name` in `master` (as a resumed run, or
    /// one ported from PyTorch, needs). Errors, changing nothing, when no parameter has
    /// that name, a tensor's shape is not the parameter's, the step is 0, or
    /// `max_exp_avg_sq` is missing under AMSGrad or given without it.
    pub fn load_state(
        &mut self,
        master: &MasterWeights,
        name: &str,
        state: AdamWParamState,
    ) -> Result<()> {
        const OP: &str = "AdamW::load_state";
        let (i, param) = param_named(OP, master, name)?;
        check_state_shape(OP, name, param, "exp_avg", &state.exp_avg)?;
        check_state_shape(OP, name, param, "exp_avg_sq", &state.exp_avg_sq)?;
        match (&state.max_exp_avg_sq, self.cfg.amsgrad) {
            (Some(t), true) => check_state_shape(OP, name, param, "max_exp_avg_sq", t)?,
            (None, false) => {}
            (given, _) => {
                return Err(Error::invalid(
                    OP,
                    format!(
                        "max_exp_avg_sq for {name:?} {} (amsgrad is {})",
                        if given.is_some() { "given" } else { "missing" },
                        self.cfg.amsgrad
                    ),
                ));
            }
        }
        if state.step == 0 {
            return Err(Error::invalid(
                OP,
                format!("state for {name:?} has step 0; a parameter without steps has no state"),
            ));
        }
        if self.state.len() < master.len() {
            self.state.resize(master.len(), None);
        }
        self.state[i] = Some(state);
        Ok(())
    }

    /// Lets steps take gradients that hold an inf or NaN (refused by default).
    pub fn allow_non_finite(mut self, allow: bool) -> AdamW {
        self.allow_non_finite = allow;
        self
    }
}

impl Optimizer for AdamW {
    fn step(&mut self, master: &mut MasterWeights, grads: &UnscaledGrads, lr: f64) -> Result<()> {
        self.cfg.at(lr, 1).check("AdamW")?;
        check_step("AdamW", master, grads, self.allow_non_finite)?;
        if self.state.len() < master.len() {
            self.state.resize(master.len(), None);
        }
        let fresh = vec![None; master.len()];
        master.apply(
            grads,
            &mut AdamWUpdate {
                opt: self,
                lr,
                fresh,
            },
        )
    }

    fn state_bytes(&self) -> usize {
        self.state
            .iter()
            .flatten()
            .map(AdamWParamState::bytes)
            .sum()
    }

    fn kind(&self) -> OptimizerKind {
        OptimizerKind::Adam
    }

    fn write_state(&self, master: &MasterWeights, file: &mut TensorFile) -> Result<()> {
        saved::write_header(file, "AdamW", &self.cfg);
        for (i, (name, _)) in master.iter().enumerate() {
            let Some(s) = self.state(i) else { continue };
            saved::write_tensor(file, name, "exp_avg", &s.exp_avg)?;
            saved::write_tensor(file, name, "exp_avg_sq", &s.exp_avg_sq)?;
            if let Some(m) = &s.max_exp_avg_sq {
                saved::write_tensor(file, name, "max_exp_avg_sq", m)?;
            }
            saved::write_count(file, name, "step", s.step);
        }
        Ok(())
    }

    fn read_state(&mut self, master: &MasterWeights, file: &TensorFile) -> Result<()> {
        const OP: &str = "AdamW::read_state";
        saved::check_header(OP, file, "AdamW", &self.cfg)?;
        let mut fresh = AdamW {
            state: Vec::new(),
            ..self.clone()
        };
        let mut read = 0;
        for (name, _) in master.iter() {
            let exp_avg = saved::read_tensor(file, name, "exp_avg")?;
            let exp_avg_sq = saved::read_tensor(file, name, "exp_avg_sq")?;
            let max_exp_avg_sq = saved::read_tensor(file, name, "max_exp_avg_sq")?;
            let step = saved::read_count(OP, file, name, "step")?;
            let (exp_avg, exp_avg_sq, step) = match (exp_avg, exp_avg_sq, step) {
                (None, None, None) if max_exp_avg_sq.is_none() => continue,
                (Some(a), Some(b), Some(s)) => (a, b, s),
                _ => {
                    return Err(Error::invalid(
                        OP,
                        format!("incomplete state for {name:?} (needs exp_avg, exp_avg_sq, step)"),
                    ));
                }
            };
            read += 2 + usize::from(max_exp_avg_sq.is_some());
            let state = AdamWParamState {
                exp_avg,
                exp_avg_sq,
                max_exp_avg_sq,
                step,
            };
            fresh.load_state(master, name, state)?;
        }
        saved::check_all_read(OP, file, master, read)?;
        *self = fresh;
        Ok(())
    }
}

/// One AdamW step over the master weights: phase 1 makes each parameter and its moments
/// writable in place (first-step moments are made here and kept aside, by parameter
/// index, so a failed step leaves no state behind); phase 2 runs the fused update.
struct AdamWUpdate<'a> {
    opt: &'a mut AdamW,
    lr: f64,
    fresh: Vec<Option<AdamWParamState>>,
}

impl ParamUpdate for AdamWUpdate<'_> {
    fn prepare(&mut self, i: usize, param: &mut Tensor<F32>, _grad: &Tensor<F32>) -> Result<()> {
        const OP: &str = "AdamW";
        match &mut self.opt.state[i] {
            Some(s) => {
                let mut state = vec![&mut s.exp_avg, &mut s.exp_avg_sq];
                state.extend(s.max_exp_avg_sq.as_mut());
                own_for_update(OP, param, &mut state)
            }
            None => {
                self.fresh[i] = Some(AdamWParamState::zeros(OP, param, self.opt.cfg.amsgrad)?);
                own_for_update(OP, param, &mut [])
            }
        }
    }

    fn commit(&mut self, i: usize, param: &mut Tensor<F32>, grad: &Tensor<F32>) {
        if let Some(fresh) = self.fresh[i].take() {
            self.opt.state[i] = Some(fresh);
        }
        let s = self.opt.state[i].as_mut().expect("state made in prepare");
        s.step += 1;
        let h = self.opt.cfg.at(self.lr, s.step);
        let max = s.max_exp_avg_sq.as_mut();
        // Every check and allocation passed in prepare; nothing here can fail.
        if let Err(e) = param.adamw_update(grad, &mut s.exp_avg, &mut s.exp_avg_sq, max, h) {
            panic!("AdamW: the update failed after its checks passed: {e}")
        }
    }
}
