//! [`Trainer`]: the mixed-precision training step — micro-batches accumulated under one
//! loss scale, one unscale, clipping of the unscaled gradients, one optimizer step on the
//! F32 master weights (skipped on inf/NaN), one scaler update, FP8 scale updates — and
//! what each step measured ([`StepRecord`]).
//!
//! A step is all or nothing: when any part of it fails (the model's forward, backward,
//! the optimizer), the master weights, the optimizer state, the loss scaler and the FP8
//! scaling state are as they were before it.

mod display;
mod parallel;
mod state;

pub use parallel::DataParallel;

use crate::models::Model;
use crate::optim::{Optimizer, Schedule, WarmupCosine};
use crate::step::Step;
use mixprec_amp::{
    Alert, Fp8Scaling, Fp8Snapshot, GradAccumulator, GradScaler, LossScaling, MasterWeights,
    MemoryRole, MemorySummary, NoScaler, NumericsMonitor, Policy, Scaler, StepOutcome, StepStats,
    UnscaledGrads, clip_grad_norm, grad_norm,
};
use mixprec_autograd::{Error, Result};
use std::time::Instant;

/// How to train.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Learning-rate schedule (any [`crate::optim::LrSchedule`], with `.into()`).
    pub schedule: Schedule,
    /// Clip the global gradient norm to this (PyTorch's usual 1.0; finite and > 0);
    /// `None`: no clipping.
    pub clip_norm: Option<f32>,
    /// Seed of the dropout masks (mixed with the step and micro-batch numbers).
    pub seed: u64,
    /// The loss is multiplied by this before backward (1 normally; finite and > 0). A
    /// small weight stands for a small loss — a loss averaged over very many tokens, an
    /// auxiliary loss with a small coefficient — whose gradients FP16 cannot hold without
    /// loss scaling. Records report the unweighted loss.
    pub loss_weight: f32,
}

impl Default for TrainConfig {
    /// Warmup-cosine from 1e-3 to 1e-4 over 1000 steps (50 of warmup), clipping at 1.0,
    /// seed 0, loss weight 1.
    fn default() -> Self {
        TrainConfig {
            schedule: WarmupCosine::default().into(),
            clip_norm: Some(1.0),
            seed: 0,
            loss_weight: 1.0,
        }
    }
}

impl TrainConfig {
    /// Checks every setting; the error names the setting and its value.
    pub fn check(&self) -> Result<()> {
        self.schedule.check()?;
        if let Some(c) = self.clip_norm
            && !(c.is_finite() && c > 0.0)
        {
            return Err(Error::invalid(
                "TrainConfig",
                format!("clip_norm must be finite and > 0, got {c}"),
            ));
        }
        if !(self.loss_weight.is_finite() && self.loss_weight > 0.0) {
            return Err(Error::invalid(
                "TrainConfig",
                format!(
                    "loss_weight must be finite and > 0, got {}",
                    self.loss_weight
                ),
            ));
        }
        Ok(())
    }
}

/// Why a step was skipped (nothing was updated but the loss scaler and the FP8 scales).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// Some gradient held an inf or NaN (an FP16 overflow, usually).
    NonFiniteGradients,
    /// The loss was inf or NaN although the gradients were finite.
    NonFiniteLoss,
    /// An FP8 GEMM operand held an inf or NaN, which quantisation would have clamped to a
    /// finite value.
    NonFiniteFp8,
}

/// What one optimizer step measured.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRecord {
    /// Step number (0-based).
    pub step: u64,
    /// Mean loss of the micro-batches.
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Loss scale used (dynamic scaling only).
    pub loss_scale: Option<f32>,
    /// True when the update was skipped (see `skip_reason`).
    pub skipped: bool,
    /// Why the update was skipped, when it was.
    pub skip_reason: Option<SkipReason>,
    /// Largest underflow fraction among the step's cast points (forward and backward).
    pub worst_underflow: f64,
    /// Largest underflow fraction among the casts of gradients.
    pub grad_underflow: f64,
    /// Cast points recorded (all micro-batches).
    pub casts: usize,
    /// Alerts the numerics monitor raised for this step.
    pub alerts: Vec<Alert>,
    /// Wall time of the step, seconds.
    pub seconds: f64,
}

/// Trains a model's master weights with an optimizer, the loss scaler its policy names
/// and a numerics monitor.
///
/// The scaler's type is the policy's ([`LossScaling::Scaler`]): [`NoScaler`] for FP32,
/// BF16 and FP8, a [`GradScaler`] for FP16. Forgetting the scaler of an FP16 model does
/// not compile:
///
/// ```compile_fail,E0271
/// use mixprec_amp::{F16Mixed, MasterWeights, NoScaler};
/// use mixprec_nn::data::Digits;
/// use mixprec_nn::models::DigitsMlp;
/// use mixprec_nn::optim::{AdamW, AdamWConfig};
/// use mixprec_nn::{Init, TrainConfig, Trainer};
/// let digits = Digits::load().unwrap();
/// let mut master = MasterWeights::new();
/// let model = DigitsMlp::<F16Mixed>::new(&mut Init::new(&mut master, 1), 16).unwrap();
/// let opt = AdamW::new(AdamWConfig::default()).unwrap();
/// let mut t = Trainer::new(master, opt, NoScaler, TrainConfig::default()).unwrap();
/// let b = digits.train.batch(&[0, 1]).unwrap();
/// t.step(&model, 0, &[b]); // error: F16Mixed needs a GradScaler, not NoScaler
/// ```
///
/// An unscaled FP16 experiment uses the policy that says so: `DigitsMlp::<F16Unscaled>`.
pub struct Trainer<O: Optimizer, S: Scaler = NoScaler> {
    /// The F32 master weights.
    pub master: MasterWeights,
    /// The optimizer.
    pub optimizer: O,
    /// The loss scaler: [`NoScaler`], or a [`GradScaler`] for dynamic loss scaling.
    pub scaler: S,
    /// The numerics monitor, fed every step.
    pub monitor: NumericsMonitor,
    cfg: TrainConfig,
    memory: Option<MemorySummary>,
    /// The index after the last completed step (0 before any).
    next_step: u64,
    /// The data-parallel group, when training on several ranks.
    parallel: Option<DataParallel>,
}

impl<O: Optimizer, S: Scaler> std::fmt::Debug for Trainer<O, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("next_step", &self.next_step)
            .field("parameters", &self.master.count())
            .field("optimizer", &self.optimizer.kind())
            .field(
                "loss_scale",
                &self.scaler.grad_scaler().map(GradScaler::scale),
            )
            .field("config", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// What the micro-batch loop of a step produced.
struct Forward {
    acc: GradAccumulator,
    loss_sum: f64,
    casts: usize,
    step: Step,
    report: mixprec_autograd::TapeReport,
    /// FP8 numbers of the last micro-batch.
    fp8: Vec<mixprec_amp::Fp8TensorStats>,
    /// Whether any micro-batch quantised an inf or NaN.
    fp8_non_finite: bool,
    /// The data-parallel exchange, when it overlapped the last backward.
    exchanged: Option<parallel::Exchanged>,
}

impl<O: Optimizer, S: Scaler> Trainer<O, S> {
    /// A trainer over `master`. Errors when a setting of `cfg` is out of range
    /// ([`TrainConfig::check`]).
    pub fn new(master: MasterWeights, optimizer: O, scaler: S, cfg: TrainConfig) -> Result<Self> {
        cfg.check()?;
        Ok(Trainer {
            master,
            optimizer,
            scaler,
            monitor: NumericsMonitor::new(Default::default()),
            cfg,
            memory: None,
            next_step: 0,
            parallel: None,
        })
    }

    /// Trains as one rank of `parallel`'s group: every step averages the gradients over
    /// the ranks (after unscaling, before clipping) and skips on every rank when any rank
    /// found an inf or NaN. Each rank passes its own shard of the batch to
    /// [`Trainer::step`]; all ranks must start from the same weights (the same init
    /// seed, or a loaded state) and call `step` equally often.
    pub fn with_data_parallel(mut self, parallel: DataParallel) -> Self {
        self.parallel = Some(parallel);
        self
    }

    /// The data-parallel group, when there is one.
    pub fn data_parallel(&self) -> Option<&DataParallel> {
        self.parallel.as_ref()
    }

    /// The index after that of the last completed step (skipped steps count; 0 before
    /// any step): where a resumed run continues ([`Trainer::load_state_file`]).
    pub fn next_step(&self) -> u64 {
        self.next_step
    }

    /// Memory of the last step, by role (peak saved activations of its last micro-batch).
    pub fn memory(&self) -> Option<&MemorySummary> {
        self.memory.as_ref()
    }

    /// [`Trainer::step`] at index [`Trainer::next_step`]: the trainer counts the steps
    /// (from 0, or from where a loaded state left off).
    pub fn step_next<M: Model>(
        &mut self,
        model: &M,
        micro_batches: &[M::Batch],
    ) -> Result<StepRecord>
    where
        <M::Policy as Policy>::Scaling: LossScaling<Scaler = S>,
    {
        self.step(model, self.next_step, micro_batches)
    }

    /// One optimizer step over `micro_batches` (at least one), each on its own tape.
    /// On error nothing changed: weights, optimizer state, loss scaler and FP8 state are
    /// as before. A step whose gradients, loss or FP8 operands are not finite is skipped
    /// (recorded with its [`SkipReason`]); the loss scaler then backs off.
    pub fn step<M: Model>(
        &mut self,
        model: &M,
        index: u64,
        micro_batches: &[M::Batch],
    ) -> Result<StepRecord>
    where
        <M::Policy as Policy>::Scaling: LossScaling<Scaler = S>,
    {
        if micro_batches.is_empty() {
            return Err(Error::invalid(
                "Trainer",
                "a step needs at least one micro-batch",
            ));
        }
        let scaler_before = self.scaler.clone();
        let mut undo = Vec::new();
        let out = self.try_step(model, index, micro_batches, &mut undo);
        match &out {
            Ok(_) => self.next_step = index.saturating_add(1),
            Err(_) => {
                self.scaler = scaler_before;
                for (state, snapshot) in &undo {
                    state.restore(snapshot);
                }
            }
        }
        out
    }

    fn try_step<M: Model>(
        &mut self,
        model: &M,
        index: u64,
        micro_batches: &[M::Batch],
        undo: &mut Vec<(Fp8Scaling, Fp8Snapshot)>,
    ) -> Result<StepRecord> {
        let start = Instant::now();
        let fwd = self.forward_backward(model, index, micro_batches, undo)?;
        let loss_scale = self.scaler.grad_scaler().map(GradScaler::scale);
        let mut grads = match self.scaler.grad_scaler_mut() {
            Some(s) => s.unscale_accumulated(fwd.acc)?,
            None => fwd.acc.into_unscaled()?,
        };
        let loss = fwd.loss_sum / micro_batches.len() as f64;
        let (mut loss_non_finite, mut fp8_non_finite) = (!loss.is_finite(), fwd.fp8_non_finite);
        let mut other_rank_inf = false;
        if let Some(dp) = &mut self.parallel {
            [loss_non_finite, fp8_non_finite] = dp.any_rank([loss_non_finite, fp8_non_finite])?;
            other_rank_inf = dp.average(&mut grads, fwd.exchanged)?;
        }
        let norm = match self.cfg.clip_norm {
            Some(max) => clip_grad_norm(&mut grads, max)?,
            None => grad_norm(&grads),
        };
        let skip_reason = if grads.found_inf() || other_rank_inf {
            Some(SkipReason::NonFiniteGradients)
        } else if loss_non_finite {
            Some(SkipReason::NonFiniteLoss)
        } else if fp8_non_finite {
            Some(SkipReason::NonFiniteFp8)
        } else {
            None
        };
        let lr = self.cfg.schedule.lr(index);
        // Measure what the step holds, then let it go before the update: its tape's
        // leaves share the master weights' storage, and an update of shared storage
        // copies every parameter first. The optimizer's state is counted after the
        // update (the first step creates it).
        let mut memory = fwd.step.memory_summary(
            &self.master,
            &grads,
            0,
            model.fp8_states().iter().map(|(_, s)| s.nbytes()).sum(),
        );
        drop(fwd.step);
        self.apply(&grads, lr, skip_reason)?;
        memory.add(
            MemoryRole::OptimizerState,
            mixprec_dtype::DType::F32,
            self.optimizer.state_bytes(),
        );
        self.memory = Some(memory);
        let skipped = skip_reason.is_some();
        let stats = StepStats::from_report(
            index,
            loss,
            f64::from(norm),
            loss_scale,
            skipped,
            &fwd.report,
        )
        .with_fp8(fwd.fp8);
        let worst_underflow = stats
            .casts
            .iter()
            .map(|c| c.underflow_fraction())
            .fold(0.0, f64::max);
        let grad_underflow = stats.worst_gradient_underflow();
        let alerts = self.monitor.record(stats);
        Ok(StepRecord {
            step: index,
            loss,
            lr,
            grad_norm: f64::from(norm),
            loss_scale,
            skipped,
            skip_reason,
            worst_underflow,
            grad_underflow,
            casts: fwd.casts,
            alerts,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// Forward and backward of every micro-batch, gradients accumulated under one loss
    /// scale; FP8 states are updated after each micro-batch and their prior states kept
    /// in `undo`.
    fn forward_backward<M: Model>(
        &self,
        model: &M,
        index: u64,
        micro_batches: &[M::Batch],
        undo: &mut Vec<(Fp8Scaling, Fp8Snapshot)>,
    ) -> Result<Forward> {
        let mut acc = GradAccumulator::new();
        let (mut loss_sum, mut casts) = (0.0, 0);
        let mut fp8_non_finite = false;
        let mut last = None;
        let mut exchanged = None;
        for (i, batch) in micro_batches.iter().enumerate() {
            // Rank r's micro-batch i draws as micro-batch r * m + i of one process.
            let rank = self.parallel.as_ref().map_or(0, DataParallel::rank);
            let seed = self.cfg.seed ^ (index << 16) ^ (rank * micro_batches.len() + i) as u64;
            let step = Step::new(&self.master, true, seed).with_fp8_undo();
            let loss = model.loss(&step, batch);
            // Keep the states from before this step's first use, also when it failed.
            for (state, snapshot) in step.take_fp8_snapshots() {
                if !undo.iter().any(|(s, _)| s.same(&state)) {
                    undo.push((state, snapshot));
                }
            }
            let loss = loss?;
            loss_sum += f64::from(loss.value().item()?);
            let loss = if self.cfg.loss_weight == 1.0 {
                loss
            } else {
                loss.try_mul_scalar(f64::from(self.cfg.loss_weight))?
            };
            let overlap = self.parallel.as_ref().filter(|dp| dp.overlaps());
            match (overlap, self.scaler.grad_scaler()) {
                (Some(dp), s) if i + 1 == micro_batches.len() => {
                    exchanged = Some(dp.backward_overlapped(s, &loss, &step.params(), &mut acc)?);
                }
                (_, Some(s)) => acc.add_scaled(&s.backward(&loss)?, &step.params())?,
                (_, None) => acc.add(&loss.backward()?, &step.params())?,
            }
            let fp8 = match &self.parallel {
                Some(dp) => step.finish_fp8_across(|amaxes| dp.max_over_ranks(amaxes))?,
                None => step.finish_fp8(),
            };
            fp8_non_finite |= fp8.iter().any(|t| t.is_non_finite());
            let report = step.tape().report();
            casts += report.casts.len();
            last = Some((step, report, fp8));
        }
        let (step, report, fp8) = last.expect("at least one micro-batch (checked)");
        Ok(Forward {
            acc,
            loss_sum,
            casts,
            step,
            report,
            fp8,
            fp8_non_finite,
            exchanged,
        })
    }

    /// The optimizer step unless `skip` says why not, then the scaler's update (an
    /// overflow when the step was skipped). Nothing is updated when the optimizer fails.
    fn apply(&mut self, grads: &UnscaledGrads, lr: f64, skip: Option<SkipReason>) -> Result<()> {
        let (master, opt) = (&mut self.master, &mut self.optimizer);
        let mut result = Ok(());
        match self.scaler.grad_scaler_mut() {
            Some(s) if skip.is_some() && !grads.found_inf() => s.record_overflow(),
            Some(s) => {
                let outcome = s.step(grads, |g| result = opt.step(master, g, lr));
                debug_assert_eq!(outcome == StepOutcome::Skipped, skip.is_some());
            }
            None if skip.is_some() => {}
            None => result = opt.step(master, grads, lr),
        }
        // On an optimizer error the caller restores the scaler: no update happens.
        result?;
        if let Some(s) = self.scaler.grad_scaler_mut() {
            s.update();
        }
        Ok(())
    }

    /// Accuracy of `model` over `batches` in evaluation mode (no dropout, nothing saved).
    /// Errors when the batches hold no rows (an accuracy of nothing is undefined).
    pub fn accuracy<M: Model>(&self, model: &M, batches: &[M::Batch]) -> Result<f64> {
        let (mut right, mut total) = (0, 0);
        for b in batches {
            let step = Step::new(&self.master, false, 0);
            let (r, t) = step.tape().no_grad(|| model.correct(&step, b))?;
            right += r;
            total += t;
        }
        if total == 0 {
            return Err(Error::invalid(
                "Trainer::accuracy",
                "no rows to evaluate (empty batches)",
            ));
        }
        Ok(right as f64 / total as f64)
    }
}
