//! [`Sgd`]: stochastic gradient descent with momentum, dampening, Nesterov and (L2)
//! weight decay, exactly PyTorch's `torch.optim.SGD` update, one fused in-place tensor op
//! per parameter ([`Tensor::sgd_update`], element-wise in f32):
//! `g += wd p`; `buf = g` on the first step, else `buf = momentum buf + (1 - dampening) g`;
//! `g = g + momentum buf` (Nesterov) or `buf`; `p -= lr g`.

use super::{Optimizer, check_hyper, check_step, own_for_update, try_state_zeros};
use mixprec_amp::{MasterWeights, OptimizerKind, ParamUpdate, UnscaledGrads};
use mixprec_autograd::Result;
use mixprec_dtype::F32;
use mixprec_tensor::{SgdStep, Tensor};

/// SGD settings; `Default` is PyTorch's (no momentum, no decay).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct SgdConfig {
    /// Momentum factor.
    pub momentum: f32,
    /// Dampening of the gradient added to the momentum buffer.
    pub dampening: f32,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
}

/// SGD with a momentum buffer per parameter (when momentum is non-zero).
#[derive(Clone, Debug)]
pub struct Sgd {
    cfg: SgdConfig,
    buffers: Vec<Option<Tensor<F32>>>,
    allow_non_finite: bool,
}

impl Sgd {
    /// An optimizer with `cfg`. Errors unless momentum is in [0, 1), dampening in
    /// [0, 1], the weight decay finite and >= 0, and Nesterov comes with momentum and no
    /// dampening (PyTorch's rule).
    pub fn new(cfg: SgdConfig) -> Result<Sgd> {
        check_hyper("Sgd", "momentum", cfg.momentum, 0.0..1.0)?;
        check_hyper("Sgd", "dampening", cfg.dampening, 0.0..1.0 + f32::EPSILON)?;
        check_hyper("Sgd", "weight_decay", cfg.weight_decay, 0.0..f32::INFINITY)?;
        if cfg.nesterov && (cfg.momentum == 0.0 || cfg.dampening != 0.0) {
            return Err(mixprec_autograd::Error::invalid(
                "Sgd",
                format!(
                    "Nesterov momentum needs momentum > 0 and dampening 0, got {} and {}",
                    cfg.momentum, cfg.dampening
                ),
            ));
        }
        Ok(Sgd {
            cfg,
            buffers: Vec::new(),
            allow_non_finite: false,
        })
    }

    /// The momentum buffer of parameter `index` (`None` before its first step or without
    /// momentum).
    pub fn momentum_buffer(&self, index: usize) -> Option<&Tensor<F32>> {
        self.buffers.get(index)?.as_ref()
    }

    /// Lets steps take gradients that hold an inf or NaN (refused by default).
    pub fn allow_non_finite(mut self, allow: bool) -> Sgd {
        self.allow_non_finite = allow;
        self
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, master: &mut MasterWeights, grads: &UnscaledGrads, lr: f32) -> Result<()> {
        check_step("Sgd", master, grads, lr, self.allow_non_finite)?;
        if self.buffers.len() < master.len() {
            self.buffers.resize(master.len(), None);
        }
        master.apply(
            grads,
            &mut SgdUpdate {
                opt: self,
                lr,
                fresh: Vec::new(),
            },
        )
    }

    fn state_bytes(&self) -> usize {
        self.buffers.iter().flatten().map(|b| b.nbytes()).sum()
    }

    fn kind(&self) -> OptimizerKind {
        if self.cfg.momentum != 0.0 {
            OptimizerKind::SgdMomentum
        } else {
            OptimizerKind::Sgd
        }
    }
}

/// One SGD step over the master weights: phase 1 makes each parameter and its momentum
/// buffer writable in place (first-step buffers are made here and kept aside, so a failed
/// step leaves no state behind); phase 2 runs the fused update.
struct SgdUpdate<'a> {
    opt: &'a mut Sgd,
    lr: f32,
    fresh: Vec<(usize, Tensor<F32>)>,
}

impl ParamUpdate for SgdUpdate<'_> {
    fn prepare(&mut self, i: usize, param: &mut Tensor<F32>, _grad: &Tensor<F32>) -> Result<()> {
        const OP: &str = "Sgd";
        match &mut self.opt.buffers[i] {
            _ if self.opt.cfg.momentum == 0.0 => own_for_update(OP, param, &mut []),
            Some(b) => own_for_update(OP, param, &mut [b]),
            None => {
                self.fresh.push((i, try_state_zeros(OP, param)?));
                own_for_update(OP, param, &mut [])
            }
        }
    }

    fn commit(&mut self, i: usize, param: &mut Tensor<F32>, grad: &Tensor<F32>) {
        let c = self.opt.cfg;
        let first_step = match self.fresh.iter().position(|(j, _)| *j == i) {
            Some(at) => {
                self.opt.buffers[i] = Some(self.fresh.swap_remove(at).1);
                true
            }
            None => false,
        };
        let h = SgdStep {
            lr: self.lr,
            momentum: c.momentum,
            dampening: c.dampening,
            weight_decay: c.weight_decay,
            nesterov: c.nesterov,
            first_step,
        };
        let buffer = self.opt.buffers[i].as_mut().filter(|_| c.momentum != 0.0);
        // Every check and allocation passed in prepare; nothing here can fail.
        if let Err(e) = param.sgd_update(grad, buffer, h) {
            panic!("Sgd: the update failed after its checks passed: {e}")
        }
    }
}
