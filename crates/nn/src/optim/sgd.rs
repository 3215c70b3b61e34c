//! [`Sgd`]: stochastic gradient descent with momentum, dampening, Nesterov, (L2) weight
//! decay and `maximize`, PyTorch's `torch.optim.SGD` update bit for bit, one fused
//! in-place tensor op per parameter ([`Tensor::sgd_update`]):
//! `g += wd p`; `buf = g` on the first step, else `buf = momentum buf + (1 - dampening) g`;
//! `g = g + momentum buf` (Nesterov) or `buf`; `p -= lr g`.

use super::{
    Optimizer, check_state_shape, check_step, own_for_update, param_named, saved, try_state_zeros,
};
use crate::checkpoint::TensorFile;
use mixprec_amp::{MasterWeights, OptimizerKind, ParamUpdate, UnscaledGrads};
use mixprec_autograd::{Error, Result};
use mixprec_dtype::F32;
use mixprec_tensor::{SgdStep, Tensor};

/// SGD settings; `Default` is PyTorch's (no momentum, no decay, minimising).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct SgdConfig {
    /// Momentum factor.
    pub momentum: f64,
    /// Dampening of the gradient added to the momentum buffer.
    pub dampening: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Maximise the objective instead of minimising it.
    pub maximize: bool,
}

impl SgdConfig {
    /// The tensor op's numbers for one step of one parameter.
    fn at(&self, lr: f64, first_step: bool) -> SgdStep {
        SgdStep {
            lr,
            momentum: self.momentum,
            dampening: self.dampening,
            weight_decay: self.weight_decay,
            nesterov: self.nesterov,
            maximize: self.maximize,
            first_step,
        }
    }
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
        cfg.at(0.0, true).check("Sgd")?;
        Ok(Sgd {
            cfg,
            buffers: Vec::new(),
            allow_non_finite: false,
        })
    }

    /// The settings.
    pub fn config(&self) -> &SgdConfig {
        &self.cfg
    }

    /// The momentum buffer of parameter `index` (`None` before its first step or without
    /// momentum).
    pub fn momentum_buffer(&self, index: usize) -> Option<&Tensor<F32>> {
        self.buffers.get(index)?.as_ref()
    }

    /// The momentum buffer of the parameter called `name` in `master` (PyTorch's
    /// `momentum_buffer`; `None` before its first step or without momentum); an error
    /// when no parameter has that name.
    pub fn momentum_buffer_of(
        &self,
        master: &MasterWeights,
        name: &str,
    ) -> Result<Option<&Tensor<F32>>> {
        Ok(self.momentum_buffer(param_named("Sgd::momentum_buffer_of", master, name)?.0))
    }

    /// Sets the momentum buffer of the parameter called `name` in `master` (the next
    /// step decays into it). Errors, changing nothing, when no parameter has that name,
    /// the shape is not the parameter's, or the optimizer has no momentum.
    pub fn load_momentum_buffer(
        &mut self,
        master: &MasterWeights,
        name: &str,
        buffer: Tensor<F32>,
    ) -> Result<()> {
        const OP: &str = "Sgd::load_momentum_buffer";
        let (i, param) = param_named(OP, master, name)?;
        check_state_shape(OP, name, param, "momentum_buffer", &buffer)?;
        if self.cfg.momentum == 0.0 {
            return Err(Error::invalid(
                OP,
                format!("SGD without momentum keeps no buffer (for {name:?})"),
            ));
        }
        if self.buffers.len() < master.len() {
            self.buffers.resize(master.len(), None);
        }
        self.buffers[i] = Some(buffer);
        Ok(())
    }

    /// Lets steps take gradients that hold an inf or NaN (refused by default).
    pub fn allow_non_finite(mut self, allow: bool) -> Sgd {
        self.allow_non_finite = allow;
        self
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, master: &mut MasterWeights, grads: &UnscaledGrads, lr: f64) -> Result<()> {
        self.cfg.at(lr, true).check("Sgd")?;
        check_step("Sgd", master, grads, self.allow_non_finite)?;
        if self.buffers.len() < master.len() {
            self.buffers.resize(master.len(), None);
        }
        let fresh = vec![None; master.len()];
        master.apply(
            grads,
            &mut SgdUpdate {
                opt: self,
                lr,
                fresh,
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

    fn write_state(&self, master: &MasterWeights, file: &mut TensorFile) -> Result<()> {
        saved::write_header(file, "SGD", &self.cfg);
        for (i, (name, _)) in master.iter().enumerate() {
            if let Some(b) = self.momentum_buffer(i) {
                saved::write_tensor(file, name, "momentum_buffer", b)?;
            }
        }
        Ok(())
    }

    fn read_state(&mut self, master: &MasterWeights, file: &TensorFile) -> Result<()> {
        const OP: &str = "Sgd::read_state";
        saved::check_header(OP, file, "SGD", &self.cfg)?;
        let mut fresh = Sgd {
            buffers: Vec::new(),
            ..self.clone()
        };
        let mut read = 0;
        for (name, _) in master.iter() {
            if let Some(b) = saved::read_tensor(file, name, "momentum_buffer")? {
                fresh.load_momentum_buffer(master, name, b)?;
                read += 1;
            }
        }
        saved::check_all_read(OP, file, master, read)?;
        *self = fresh;
        Ok(())
    }
}

/// One SGD step over the master weights: phase 1 makes each parameter and its momentum
/// buffer writable in place (first-step buffers are made here and kept aside, by
/// parameter index, so a failed step leaves no state behind); phase 2 runs the fused
/// update.
struct SgdUpdate<'a> {
    opt: &'a mut Sgd,
    lr: f64,
    fresh: Vec<Option<Tensor<F32>>>,
}

impl ParamUpdate for SgdUpdate<'_> {
    fn prepare(&mut self, i: usize, param: &mut Tensor<F32>, _grad: &Tensor<F32>) -> Result<()> {
        const OP: &str = "Sgd";
        match &mut self.opt.buffers[i] {
            _ if self.opt.cfg.momentum == 0.0 => own_for_update(OP, param, &mut []),
            Some(b) => own_for_update(OP, param, &mut [b]),
            None => {
                self.fresh[i] = Some(try_state_zeros(OP, param)?);
                own_for_update(OP, param, &mut [])
            }
        }
    }

    fn commit(&mut self, i: usize, param: &mut Tensor<F32>, grad: &Tensor<F32>) {
        let first_step = match self.fresh[i].take() {
            Some(buffer) => {
                self.opt.buffers[i] = Some(buffer);
                true
            }
            None => false,
        };
        let h = self.opt.cfg.at(self.lr, first_step);
        let buffer = self.opt.buffers[i].as_mut().filter(|_| h.momentum != 0.0);
        // Every check and allocation passed in prepare; nothing here can fail.
        if let Err(e) = param.sgd_update(grad, buffer, h) {
            panic!("Sgd: the update failed after its checks passed: {e}")
        }
    }
}
