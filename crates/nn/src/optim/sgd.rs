//! [`Sgd`]: stochastic gradient descent with momentum, dampening, Nesterov and (L2)
//! weight decay, exactly PyTorch's `torch.optim.SGD` update, element-wise in f32:
//! `g += wd p`; `buf = g` on the first step, else `buf = momentum buf + (1 - dampening) g`;
//! `g = g + momentum buf` (Nesterov) or `buf`; `p -= lr g`.

use super::{Optimizer, check_hyper, check_step, into_param, step_buffers, try_state_zeros};
use mixprec_amp::{MasterWeights, OptimizerKind, UnscaledGrads};
use mixprec_autograd::Result;

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
    buffers: Vec<Option<Vec<f32>>>,
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
    pub fn momentum_buffer(&self, index: usize) -> Option<&[f32]> {
        self.buffers.get(index)?.as_deref()
    }

    /// Lets steps take gradients that hold an inf or NaN (refused by default).
    pub fn allow_non_finite(mut self, allow: bool) -> Sgd {
        self.allow_non_finite = allow;
        self
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, master: &mut MasterWeights, grads: &UnscaledGrads, lr: f32) -> Result<()> {
        // Every check and every allocation happens first (phase 1); after it nothing can
        // fail, so the buffers are updated in place and the parameters replaced together
        // (the step is atomic).
        check_step("Sgd", master, grads, lr, self.allow_non_finite)?;
        let c = self.cfg;
        let work = step_buffers("Sgd", master, grads, |i, shape, n| {
            Ok(match self.buffers.get(i) {
                _ if c.momentum == 0.0 => None,
                Some(Some(_)) => None,
                _ => Some(try_state_zeros("Sgd", shape, n)?),
            })
        })?;
        // Phase 2: no allocation that can fail, no error.
        if self.buffers.len() < master.len() {
            self.buffers.resize(master.len(), None);
        }
        let mut new_params = Vec::with_capacity(master.len());
        for (i, ((_, p), item)) in master.iter().zip(work).enumerate() {
            let Some((mut w, mut d, fresh)) = item else {
                new_params.push(None);
                continue;
            };
            // The (decayed) gradient; with momentum, the buffer update folds it in.
            for (dj, &wj) in d.iter_mut().zip(&w) {
                *dj += c.weight_decay * wj;
            }
            if c.momentum != 0.0 {
                let buf = match fresh {
                    // First step: the buffer is the decayed gradient itself.
                    Some(mut b) => {
                        b.copy_from_slice(&d);
                        self.buffers[i].insert(b)
                    }
                    None => {
                        let b = self.buffers[i]
                            .as_mut()
                            .expect("buffer kept from earlier steps");
                        for (bj, &dj) in b.iter_mut().zip(&d) {
                            *bj = c.momentum * *bj + (1.0 - c.dampening) * dj;
                        }
                        b
                    }
                };
                for (dj, &bj) in d.iter_mut().zip(buf.iter()) {
                    *dj = if c.nesterov {
                        *dj + c.momentum * bj
                    } else {
                        bj
                    };
                }
            }
            for (wj, dj) in w.iter_mut().zip(&d) {
                *wj -= lr * dj;
            }
            new_params.push(Some(into_param(w, p.shape())));
        }
        master.apply(grads, |i, _, _| {
            Ok(new_params[i].take().expect("computed for every gradient"))
        })
    }

    fn state_bytes(&self) -> usize {
        self.buffers.iter().flatten().map(|b| 4 * b.len()).sum()
    }

    fn kind(&self) -> OptimizerKind {
        if self.cfg.momentum != 0.0 {
            OptimizerKind::SgdMomentum
        } else {
            OptimizerKind::Sgd
        }
    }
}
