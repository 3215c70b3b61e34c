//! The policy comparison behind `examples/compare_policies`: the same model, data, seed
//! and optimizer under each [`PolicyChoice`], with what each run measured
//! ([`RunSummary`]); its tables, legend and CSV files ([`results_table`],
//! [`memory_table`], [`legend`], [`summary_csv`]) and its loss plot ([`svg_loss_plot`]).

use crate::data::{Digits, SortTask};
use crate::init::Init;
use crate::models::{DigitsMlp, Gpt, GptConfig, Model};
use crate::optim::{AdamW, AdamWConfig, WarmupCosine};
use crate::policy::TrainPolicy;
use crate::train::{StepRecord, TrainConfig, Trainer};
pub use mixprec_amp::F16Unscaled;
use mixprec_amp::{
    Bf16Mixed, F16Mixed, Fp8Hybrid, Fp32, GradScaler, LossScaling, MasterWeights, MemoryRole,
    MemorySummary, Scaler,
};
use mixprec_autograd::Result;
use std::fmt;

mod plot;
mod report;

pub use plot::{smoothing_window, svg_loss_plot};
pub use report::{
    MEMORY_COLUMNS, RESULT_COLUMNS, human_bytes, legend, memory_table, metrics_csv, results_table,
    role_bytes, summary_csv,
};

/// The policies compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyChoice {
    /// Everything in F32.
    Fp32,
    /// BF16 mixed precision.
    Bf16,
    /// FP16 mixed precision with dynamic loss scaling.
    F16Scaled,
    /// FP16 mixed precision without loss scaling.
    F16Unscaled,
    /// FP8 GEMMs (E4M3 / E5M2, delayed scaling), BF16 elsewhere.
    Fp8,
    /// FP8 body with the first and last layers (embedding, output projection) in F32.
    Fp8Fp32Edges,
}

impl PolicyChoice {
    /// All of them, in table order.
    pub const ALL: [PolicyChoice; 6] = [
        PolicyChoice::Fp32,
        PolicyChoice::Bf16,
        PolicyChoice::F16Scaled,
        PolicyChoice::F16Unscaled,
        PolicyChoice::Fp8,
        PolicyChoice::Fp8Fp32Edges,
    ];

    /// Short name (also accepted by [`PolicyChoice::parse`]).
    pub fn name(self) -> &'static str {
        match self {
            PolicyChoice::Fp32 => "fp32",
            PolicyChoice::Bf16 => "bf16",
            PolicyChoice::F16Scaled => "fp16-scaled",
            PolicyChoice::F16Unscaled => "fp16-unscaled",
            PolicyChoice::Fp8 => "fp8",
            PolicyChoice::Fp8Fp32Edges => "fp8+fp32-edges",
        }
    }

    /// The choice named `s`.
    pub fn parse(s: &str) -> Option<PolicyChoice> {
        PolicyChoice::ALL.into_iter().find(|p| p.name() == s)
    }
}

impl fmt::Display for PolicyChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Settings shared by both tasks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunConfig {
    /// Optimizer steps.
    pub steps: u64,
    /// Rows per micro-batch.
    pub batch: usize,
    /// Micro-batches per optimizer step (gradient accumulation).
    pub micro_batches: usize,
    /// Peak learning rate (AdamW, warmup 5% then cosine to 10%).
    pub lr: f64,
    /// Seed of initialisation, data order and dropout.
    pub seed: u64,
    /// Weight of the loss in backward (see [`TrainConfig::loss_weight`]).
    pub loss_weight: f32,
}

/// The digits MLP's size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DigitsSize {
    /// Hidden width.
    pub hidden: usize,
}

/// The sorting transformer's size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SortSize {
    /// Digits per sequence.
    pub n: usize,
    /// Model width.
    pub dim: usize,
    /// Heads.
    pub heads: usize,
    /// Blocks.
    pub layers: usize,
}

impl Default for RunConfig {
    /// The comparison's defaults: 600 steps, batch 64, one micro-batch, peak learning
    /// rate 3e-3, seed 1, loss weight 1 (the sorting task runs 300 steps by default in
    /// `examples/compare_policies`).
    fn default() -> Self {
        RunConfig {
            steps: 600,
            batch: 64,
            micro_batches: 1,
            lr: 3e-3,
            seed: 1,
            loss_weight: 1.0,
        }
    }
}

impl Default for DigitsSize {
    /// The comparison's MLP: hidden width 128 (64-128-128-10).
    fn default() -> Self {
        DigitsSize { hidden: 128 }
    }
}

impl Default for SortSize {
    /// The comparison's transformer: 6 digits, width 64, 4 heads, 2 blocks.
    fn default() -> Self {
        SortSize {
            n: 6,
            dim: 64,
            heads: 4,
            layers: 2,
        }
    }
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// `"digits-mlp"` or `"sort-gpt"`, with `" loss x w"` appended for a loss weight
    /// other than 1.
    pub task: String,
    /// The policy.
    pub policy: PolicyChoice,
    /// Every step.
    pub records: Vec<StepRecord>,
    /// Mean training loss over the last 10% of steps (at least one).
    pub final_loss: f64,
    /// Test accuracy (digits: images; sorting: digits at the scored positions).
    pub accuracy: f64,
    /// Optimizer steps per second (training only).
    pub steps_per_s: f64,
    /// Memory of the last step by role (the workspace measured from empty: each run
    /// starts by releasing it).
    pub memory: MemorySummary,
    /// Skipped steps.
    pub skipped: u64,
    /// Loss scale at the end (dynamic scaling only).
    pub final_scale: Option<f32>,
    /// Cast points per optimizer step (mean).
    pub casts_per_step: f64,
    /// Largest underflow fraction of any cast point in any step.
    pub worst_underflow: f64,
    /// Mean over steps of the largest gradient-cast underflow fraction.
    pub mean_grad_underflow: f64,
}

impl RunSummary {
    /// Peak saved-activation bytes.
    pub fn saved_activation_bytes(&self) -> usize {
        self.memory.role(MemoryRole::SavedActivations)
    }
}

fn schedule(cfg: &RunConfig) -> WarmupCosine {
    WarmupCosine {
        base: cfg.lr,
        min: cfg.lr / 10.0,
        warmup: (cfg.steps / 20).max(1),
        total: cfg.steps,
    }
}

/// Trains `model` for `cfg.steps`, feeding `next` micro-batches, then measures accuracy
/// on `test`; `progress` sees every step.
fn train<B: TrainPolicy, M: Model<Policy = B>>(
    (task, policy): (&'static str, PolicyChoice),
    model: &M,
    master: MasterWeights,
    cfg: &RunConfig,
    mut next: impl FnMut(u64, usize) -> Result<M::Batch>,
    test: &[M::Batch],
    progress: &mut dyn FnMut(&StepRecord),
) -> Result<RunSummary> {
    let scaler = <B::Scaling as LossScaling>::Scaler::with_defaults()?;
    let opt = AdamW::new(AdamWConfig::default())?;
    let tc = TrainConfig {
        schedule: schedule(cfg).into(),
        clip_norm: Some(1.0),
        seed: cfg.seed,
        loss_weight: cfg.loss_weight,
    };
    // Each run's workspace starts empty (buffers kept for reuse by an earlier run would
    // otherwise count in this one's memory).
    mixprec_tensor::release_workspace();
    let mut trainer = Trainer::new(master, opt, scaler, tc)?;
    let mut records = Vec::with_capacity(cfg.steps as usize);
    for s in 0..cfg.steps {
        let micro = (0..cfg.micro_batches.max(1))
            .map(|m| next(s, m))
            .collect::<Result<Vec<_>>>()?;
        let r = trainer.step(model, s, &micro)?;
        progress(&r);
        records.push(r);
    }
    let accuracy = trainer.accuracy(model, test)?;
    let seconds: f64 = records.iter().map(|r| r.seconds).sum();
    let tail = (records.len() / 10).max(1).min(records.len().max(1));
    let final_loss = records.iter().rev().take(tail).map(|r| r.loss).sum::<f64>() / tail as f64;
    let n = records.len().max(1) as f64;
    let task = if cfg.loss_weight == 1.0 {
        task.to_string()
    } else {
        format!("{task} loss x {}", weight_label(cfg.loss_weight))
    };
    Ok(RunSummary {
        task,
        policy,
        final_loss,
        accuracy,
        steps_per_s: records.len() as f64 / seconds.max(1e-9),
        memory: trainer.memory().cloned().unwrap_or_default(),
        skipped: records.iter().filter(|r| r.skipped).count() as u64,
        final_scale: trainer.scaler.grad_scaler().map(GradScaler::scale),
        casts_per_step: records.iter().map(|r| r.casts as f64).sum::<f64>() / n,
        worst_underflow: records
            .iter()
            .map(|r| r.worst_underflow)
            .fold(0.0, f64::max),
        mean_grad_underflow: records.iter().map(|r| r.grad_underflow).sum::<f64>() / n,
        records,
    })
}

fn digits_with<B: TrainPolicy, E: TrainPolicy>(
    policy: PolicyChoice,
    cfg: &RunConfig,
    size: DigitsSize,
    progress: &mut dyn FnMut(&StepRecord),
) -> Result<RunSummary> {
    let data = Digits::load()?;
    let mut master = MasterWeights::new();
    let model = DigitsMlp::<B, E>::new(&mut Init::new(&mut master, cfg.seed), size.hidden)?;
    let mut batches = data.train.batches(cfg.batch, cfg.seed)?;
    let test = vec![data.test.all()?];
    train::<B, _>(
        ("digits-mlp", policy),
        &model,
        master,
        cfg,
        |_, _| data.train.batch(&batches.next_batch()),
        &test,
        progress,
    )
}

fn sort_with<B: TrainPolicy, E: TrainPolicy>(
    policy: PolicyChoice,
    cfg: &RunConfig,
    size: SortSize,
    progress: &mut dyn FnMut(&StepRecord),
) -> Result<RunSummary> {
    let task = SortTask { n: size.n };
    let mut master = MasterWeights::new();
    let gpt = GptConfig {
        vocab: SortTask::VOCAB,
        context: task.context(),
        dim: size.dim,
        heads: size.heads,
        layers: size.layers,
        dropout: 0.0,
    };
    let model = Gpt::<B, E>::new(&mut Init::new(&mut master, cfg.seed), gpt)?;
    let test = vec![task.batch(512, 0x7e57)];
    let micro = cfg.micro_batches.max(1) as u64;
    train::<B, _>(
        ("sort-gpt", policy),
        &model,
        master,
        cfg,
        |s, m| {
            Ok(task.batch(
                cfg.batch,
                cfg.seed.wrapping_mul(1_000_003) ^ (s * micro + m as u64),
            ))
        },
        &test,
        progress,
    )
}

macro_rules! dispatch {
    ($f:ident, $choice:expr, $($arg:expr),*) => {
        match $choice {
            PolicyChoice::Fp32 => $f::<Fp32, Fp32>($choice, $($arg),*),
            PolicyChoice::Bf16 => $f::<Bf16Mixed, Bf16Mixed>($choice, $($arg),*),
            PolicyChoice::F16Scaled => $f::<F16Mixed, F16Mixed>($choice, $($arg),*),
            PolicyChoice::F16Unscaled => $f::<F16Unscaled, F16Unscaled>($choice, $($arg),*),
            PolicyChoice::Fp8 => $f::<Fp8Hybrid, Fp8Hybrid>($choice, $($arg),*),
            PolicyChoice::Fp8Fp32Edges => $f::<Fp8Hybrid, Fp32>($choice, $($arg),*),
        }
    };
}

/// Trains the digits MLP under `policy`.
pub fn run_digits(
    policy: PolicyChoice,
    cfg: &RunConfig,
    size: DigitsSize,
    progress: &mut dyn FnMut(&StepRecord),
) -> Result<RunSummary> {
    dispatch!(digits_with, policy, cfg, size, progress)
}

/// Trains the sorting transformer under `policy`.
pub fn run_sort(
    policy: PolicyChoice,
    cfg: &RunConfig,
    size: SortSize,
    progress: &mut dyn FnMut(&StepRecord),
) -> Result<RunSummary> {
    dispatch!(sort_with, policy, cfg, size, progress)
}

/// `2^-16` for powers of two, the number otherwise.
fn weight_label(w: f32) -> String {
    let e = w.log2();
    if e.fract() == 0.0 && e.abs() >= 2.0 {
        format!("2^{e}")
    } else {
        format!("{w}")
    }
}
