//! [`Trainer`]: the mixed-precision training step — micro-batches accumulated under one
//! loss scale, one unscale, clipping of the unscaled gradients, one optimizer step on the
//! F32 master weights (skipped on inf/NaN), one scaler update, FP8 scale updates — and
//! what each step measured ([`StepRecord`]).

use crate::models::Model;
use crate::optim::{Optimizer, WarmupCosine};
use crate::step::Step;
use mixprec_amp::{
    GradAccumulator, GradScaler, MasterWeights, MemorySummary, NumericsMonitor, StepOutcome,
    StepStats, UnscaledGrads, clip_grad_norm,
};
use mixprec_autograd::Result;
use std::time::Instant;

/// How to train.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainConfig {
    /// Learning-rate schedule.
    pub schedule: WarmupCosine,
    /// Clip the global gradient norm to this (PyTorch's usual 1.0); `None`: no clipping.
    pub clip_norm: Option<f32>,
    /// Seed of the dropout masks (mixed with the step and micro-batch numbers).
    pub seed: u64,
    /// The loss is multiplied by this before backward (1 normally). A small weight stands
    /// for a small loss — a loss averaged over very many tokens, an auxiliary loss with a
    /// small coefficient — whose gradients FP16 cannot hold without loss scaling.
    /// Records report the unweighted loss.
    pub loss_weight: f32,
}

/// What one optimizer step measured.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRecord {
    /// Step number (0-based).
    pub step: u64,
    /// Mean loss of the micro-batches.
    pub loss: f64,
    /// Learning rate used.
    pub lr: f32,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Loss scale used (dynamic scaling only).
    pub loss_scale: Option<f32>,
    /// True when the update was skipped (inf/NaN gradients).
    pub skipped: bool,
    /// Largest underflow fraction among the step's cast points (forward and backward).
    pub worst_underflow: f64,
    /// Largest underflow fraction among the casts of gradients.
    pub grad_underflow: f64,
    /// Cast points recorded (all micro-batches).
    pub casts: usize,
    /// Wall time of the step, seconds.
    pub seconds: f64,
}

/// Trains a model's master weights with an optimizer, an optional loss scaler and a
/// numerics monitor.
pub struct Trainer<O: Optimizer> {
    /// The F32 master weights.
    pub master: MasterWeights,
    /// The optimizer.
    pub optimizer: O,
    /// The loss scaler (dynamic loss scaling) or `None`.
    pub scaler: Option<GradScaler>,
    /// The numerics monitor, fed every step.
    pub monitor: NumericsMonitor,
    cfg: TrainConfig,
    memory: Option<MemorySummary>,
}

impl<O: Optimizer> Trainer<O> {
    /// A trainer over `master`.
    pub fn new(
        master: MasterWeights,
        optimizer: O,
        scaler: Option<GradScaler>,
        cfg: TrainConfig,
    ) -> Self {
        Trainer {
            master,
            optimizer,
            scaler,
            monitor: NumericsMonitor::new(Default::default()),
            cfg,
            memory: None,
        }
    }

    /// Memory of the last step, by role (peak saved activations of its last micro-batch).
    pub fn memory(&self) -> Option<&MemorySummary> {
        self.memory.as_ref()
    }

    /// One optimizer step over `micro_batches` (at least one), each on its own tape.
    /// On error nothing was updated.
    pub fn step<M: Model>(
        &mut self,
        model: &M,
        index: u64,
        micro_batches: &[M::Batch],
    ) -> Result<StepRecord> {
        if micro_batches.is_empty() {
            return Err(mixprec_autograd::Error::invalid(
                "Trainer",
                "a step needs at least one micro-batch",
            ));
        }
        let start = Instant::now();
        let mut acc = GradAccumulator::new();
        let mut loss_sum = 0.0;
        let mut casts = 0;
        let mut last = None;
        let mut report = None;
        let mut fp8 = Vec::new();
        for (i, batch) in micro_batches.iter().enumerate() {
            let seed = self.cfg.seed ^ (index << 16) ^ i as u64;
            let step = Step::new(&self.master, true, seed);
            let loss = model.loss(&step, batch)?;
            loss_sum += f64::from(loss.value().to_f32_vec()[0]);
            let loss = if self.cfg.loss_weight == 1.0 {
                loss
            } else {
                loss.mul_scalar(f64::from(self.cfg.loss_weight))
            };
            match &self.scaler {
                Some(s) => acc.add_scaled(&s.backward(&loss)?, &step.params())?,
                None => acc.add(&loss.backward()?, &step.params())?,
            }
            fp8 = step.finish_fp8();
            let r = step.tape().report();
            casts += r.casts.len();
            report = Some(r);
            last = Some(step);
        }
        let step = last.expect("at least one micro-batch");
        let loss_scale = self.scaler.as_ref().map(GradScaler::scale);
        let mut grads = match &mut self.scaler {
            Some(s) => s.unscale_accumulated(acc)?,
            None => acc.into_unscaled()?,
        };
        let norm = clip_grad_norm(&mut grads, self.cfg.clip_norm.unwrap_or(f32::INFINITY));
        let lr = self.cfg.schedule.lr(index);
        let skipped = self.apply(&grads, lr)?;
        self.memory = Some(step.memory_summary(
            &self.master,
            &grads,
            self.optimizer.state_bytes(),
            model.fp8_state_bytes(),
        ));
        let loss = loss_sum / micro_batches.len() as f64;
        let report = report.expect("at least one micro-batch");
        let stats =
            StepStats::from_report(index, loss, f64::from(norm), loss_scale, skipped, &report)
                .with_fp8(fp8);
        let worst_underflow = stats
            .casts
            .iter()
            .map(|c| c.underflow_fraction())
            .fold(0.0, f64::max);
        let grad_underflow = stats.worst_gradient_underflow();
        self.monitor.record(stats);
        Ok(StepRecord {
            step: index,
            loss,
            lr,
            grad_norm: f64::from(norm),
            loss_scale,
            skipped,
            worst_underflow,
            grad_underflow,
            casts,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// The optimizer step through the scaler (skipped on inf/NaN, also without a scaler),
    /// then the scaler's update. Returns whether the step was skipped.
    fn apply(&mut self, grads: &UnscaledGrads, lr: f32) -> Result<bool> {
        let (master, opt) = (&mut self.master, &mut self.optimizer);
        let mut result = Ok(());
        let skipped = match &mut self.scaler {
            Some(s) => {
                let outcome = s.step(grads, |g| result = opt.step(master, g, lr));
                s.update();
                outcome == StepOutcome::Skipped
            }
            None if grads.found_inf() => true,
            None => {
                result = opt.step(master, grads, lr);
                false
            }
        };
        result.map(|()| skipped)
    }

    /// Accuracy of `model` over `batches` in evaluation mode (no dropout, nothing saved).
    pub fn accuracy<M: Model>(&self, model: &M, batches: &[M::Batch]) -> Result<f64> {
        let (mut right, mut total) = (0, 0);
        for b in batches {
            let step = Step::new(&self.master, false, 0);
            let (r, t) = step.tape().no_grad(|| model.correct(&step, b))?;
            right += r;
            total += t;
        }
        Ok(right as f64 / total.max(1) as f64)
    }
}
