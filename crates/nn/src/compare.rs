//! The policy comparison behind `examples/compare_policies`: the same model, data, seed
//! and optimizer under each [`PolicyChoice`], with what each run measured
//! ([`RunSummary`]).

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
use mixprec_dtype::DType;
use std::fmt;

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
    /// Memory of the last step by role.
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
    let all: Vec<usize> = (0..data.test.len()).collect();
    let test = vec![data.test.batch(&all)?];
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

/// Bytes of `role` in `summary` rendered with its precisions, e.g. `"12.0K bf16+3.1K f32"`.
pub fn role_bytes(summary: &MemorySummary, role: MemoryRole) -> String {
    let parts: Vec<String> = summary
        .rows
        .iter()
        .filter(|(r, _, _)| *r == role)
        .map(|(_, d, b)| format!("{} {}", human_bytes(*b), dtype_label(*d)))
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join("+")
    }
}

fn dtype_label(d: DType) -> &'static str {
    d.name()
}

/// `1536` -> `"1.5K"`, `3_200_000` -> `"3.1M"` (binary units).
pub fn human_bytes(b: usize) -> String {
    let b = b as f64;
    if b < 1024.0 {
        format!("{b:.0}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1}K", b / 1024.0)
    } else {
        format!("{:.1}M", b / (1024.0 * 1024.0))
    }
}

/// The loss curves of `runs` as an SVG: one panel per task, one line per policy, loss on a
/// log scale (a moving average over 2% of the steps smooths the batch noise).
pub fn svg_loss_plot(runs: &[RunSummary]) -> String {
    const COLORS: [&str; 6] = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    ];
    let mut tasks: Vec<&str> = Vec::new();
    for r in runs {
        if !tasks.contains(&r.task.as_str()) {
            tasks.push(&r.task);
        }
    }
    let (pw, ph, margin) = (520.0, 340.0, 60.0);
    let width = pw * tasks.len().max(1) as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        ph + 40.0
    );
    for (ti, task) in tasks.iter().enumerate() {
        let x0 = ti as f64 * pw;
        let series: Vec<(&RunSummary, Vec<f64>)> = runs
            .iter()
            .filter(|r| r.task == *task)
            .map(|r| {
                (
                    r,
                    smooth(&r.records.iter().map(|s| s.loss).collect::<Vec<_>>()),
                )
            })
            .collect();
        let finite = series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .filter(|v| v.is_finite() && *v > 0.0);
        let (lo, hi) = finite.fold((f64::INFINITY, 0.0f64), |(l, h), v| (l.min(v), h.max(v)));
        let (lo, hi) = if lo.is_finite() && hi > lo {
            (lo.log10().floor(), hi.log10().ceil())
        } else {
            (-3.0, 1.0)
        };
        let steps = series
            .iter()
            .map(|(_, v)| v.len())
            .max()
            .unwrap_or(1)
            .max(2);
        let (left, top, w, h) = (x0 + margin, 30.0, pw - margin - 20.0, ph - 70.0);
        let px = |i: usize| left + w * i as f64 / (steps - 1) as f64;
        let py = |v: f64| top + h * (hi - v.log10().clamp(lo, hi)) / (hi - lo);
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"18\" font-size=\"14\" font-weight=\"bold\">{task}: training loss</text>\n<rect x=\"{left}\" y=\"{top}\" width=\"{w}\" height=\"{h}\" fill=\"none\" stroke=\"#888\"/>\n",
            left
        ));
        let mut e = lo as i32;
        while f64::from(e) <= hi {
            let y = py(10f64.powi(e));
            svg.push_str(&format!(
                "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">1e{e}</text>\n",
                left + w,
                left - 6.0,
                y + 4.0
            ));
            e += 1;
        }
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">step (0..{})</text>\n",
            left + w / 2.0,
            top + h + 20.0,
            steps - 1
        ));
        for (k, (r, v)) in series.iter().enumerate() {
            let color = COLORS[PolicyChoice::ALL
                .iter()
                .position(|p| *p == r.policy)
                .unwrap_or(k)
                % COLORS.len()];
            let pts: Vec<String> = v
                .iter()
                .enumerate()
                .filter(|(_, x)| x.is_finite() && **x > 0.0)
                .map(|(i, x)| format!("{:.1},{:.1}", px(i), py(*x)))
                .collect();
            svg.push_str(&format!(
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>\n",
                pts.join(" ")
            ));
            let ly = top + h + 38.0 + 0.0 * k as f64;
            let lx = left + (k % 3) as f64 * (w / 3.0);
            let ly = ly - if k < 3 { 0.0 } else { -14.0 } - 14.0;
            svg.push_str(&format!(
                "<line x1=\"{lx}\" x2=\"{}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"3\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
                lx + 18.0,
                lx + 22.0,
                ly + 4.0,
                r.policy.name()
            ));
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// Trailing moving average over 2% of the points (at least 1).
fn smooth(v: &[f64]) -> Vec<f64> {
    let k = (v.len() / 50).max(1);
    let mut out = Vec::with_capacity(v.len());
    let mut sum = 0.0;
    for i in 0..v.len() {
        sum += v[i];
        if i >= k {
            sum -= v[i - k];
        }
        out.push(sum / (i + 1).min(k) as f64);
    }
    out
}
