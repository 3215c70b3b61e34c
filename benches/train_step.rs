//! Criterion benchmarks of one training step (forward, backward, unscale, clip, AdamW on
//! the F32 master weights, scaler update) of the policy comparison's two models under each
//! policy: the digits MLP (64-128-128-10, batch 64) and the sorting GPT (width 64, 2
//! blocks, 4 heads, 12 positions, batch 64).
//!
//! Run: `cargo bench -p mixprec --bench train_step` (filter with `-- mlp` or `-- gpt`).
//! The side-by-side with JAX is `benches/compare/train_jax.py`.

use criterion::{Criterion, criterion_group, criterion_main};
use mixprec::amp::{
    Bf16Mixed, F16Mixed, F16Unscaled, Fp8Hybrid, Fp32, LossScaling, Policy, Scaler,
};
use mixprec::nn::data::{Digits, SortTask};
use mixprec::nn::models::{DigitsMlp, Gpt, GptConfig, Model};
use mixprec::nn::optim::{AdamW, AdamWConfig, ConstantLr};
use mixprec::nn::{Init, TrainConfig, TrainPolicy, Trainer};
use mixprec::prelude::MasterWeights;
use std::time::Duration;

/// The scaler type policy `B` trains with.
type ScalerOf<B> = <<B as Policy>::Scaling as LossScaling>::Scaler;

fn trainer<B: TrainPolicy>(master: MasterWeights) -> Trainer<AdamW, ScalerOf<B>> {
    let scaler = ScalerOf::<B>::with_defaults().expect("defaults");
    let cfg = TrainConfig {
        schedule: ConstantLr(1e-3).into(),
        clip_norm: Some(1.0),
        seed: 1,
        loss_weight: 1.0,
    };
    Trainer::new(
        master,
        AdamW::new(AdamWConfig::default()).expect("defaults"),
        scaler,
        cfg,
    )
    .expect("valid config")
}

fn bench_model<M: Model<Policy = B>, B: TrainPolicy>(
    c: &mut Criterion,
    name: &str,
    model: &M,
    master: MasterWeights,
    batch: M::Batch,
) {
    let mut t = trainer::<B>(master);
    let mut step = 0;
    c.bench_function(name, |b| {
        b.iter(|| {
            step += 1;
            t.step(model, step, std::slice::from_ref(&batch))
                .expect("step")
        })
    });
}

fn mlp<B: TrainPolicy, E: TrainPolicy>(c: &mut Criterion, policy: &str) {
    let digits = Digits::load().expect("embedded data");
    let batch = digits
        .train
        .batch(&(0..64).collect::<Vec<_>>())
        .expect("batch");
    let mut master = MasterWeights::new();
    let model = DigitsMlp::<B, E>::new(&mut Init::new(&mut master, 1), 128).expect("model");
    bench_model::<_, B>(
        c,
        &format!("train_step/mlp/{policy}"),
        &model,
        master,
        batch,
    );
}

fn gpt<B: TrainPolicy, E: TrainPolicy>(c: &mut Criterion, policy: &str) {
    let task = SortTask { n: 6 };
    let cfg = GptConfig {
        vocab: SortTask::VOCAB,
        context: task.context(),
        dim: 64,
        heads: 4,
        layers: 2,
        dropout: 0.0,
    };
    let mut master = MasterWeights::new();
    let model = Gpt::<B, E>::new(&mut Init::new(&mut master, 1), cfg).expect("model");
    bench_model::<_, B>(
        c,
        &format!("train_step/gpt/{policy}"),
        &model,
        master,
        task.batch(64, 1),
    );
}

fn all(c: &mut Criterion) {
    mlp::<Fp32, Fp32>(c, "fp32");
    mlp::<Bf16Mixed, Bf16Mixed>(c, "bf16");
    mlp::<F16Mixed, F16Mixed>(c, "fp16-scaled");
    mlp::<F16Unscaled, F16Unscaled>(c, "fp16-unscaled");
    mlp::<Fp8Hybrid, Fp8Hybrid>(c, "fp8");
    mlp::<Fp8Hybrid, Fp32>(c, "fp8+fp32-edges");
    gpt::<Fp32, Fp32>(c, "fp32");
    gpt::<Bf16Mixed, Bf16Mixed>(c, "bf16");
    gpt::<F16Mixed, F16Mixed>(c, "fp16-scaled");
    gpt::<F16Unscaled, F16Unscaled>(c, "fp16-unscaled");
    gpt::<Fp8Hybrid, Fp8Hybrid>(c, "fp8");
    gpt::<Fp8Hybrid, Fp32>(c, "fp8+fp32-edges");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = all
}
criterion_main!(benches);
