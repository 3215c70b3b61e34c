//! Training on short seeded runs: bit-identical losses for the same seed, the expected
//! outcome of the policy comparison (BF16 and scaled FP16 match FP32, FP16 without
//! scaling underflows and stalls on a small loss, FP8 trains), gradient accumulation,
//! and skipped steps that change nothing.

use mixprec_amp::{Fp32, MasterWeights, NoScaler};
use mixprec_dtype::F32;
use mixprec_nn::compare::{
    DigitsSize, PolicyChoice, RunConfig, RunSummary, SortSize, run_digits, run_sort,
};
use mixprec_nn::data::Digits;
use mixprec_nn::models::DigitsMlp;
use mixprec_nn::optim::{Sgd, SgdConfig, WarmupCosine};
use mixprec_nn::{Init, TrainConfig, Trainer};
use mixprec_tensor::{Indices, Tensor};

fn cfg(steps: u64, loss_weight: f32) -> RunConfig {
    RunConfig {
        steps,
        batch: 64,
        micro_batches: 1,
        lr: 3e-3,
        seed: 1,
        loss_weight,
    }
}

fn digits(policy: PolicyChoice, steps: u64, loss_weight: f32) -> RunSummary {
    run_digits(
        policy,
        &cfg(steps, loss_weight),
        DigitsSize { hidden: 64 },
        &mut |_| {},
    )
    .unwrap()
}

fn losses(r: &RunSummary) -> Vec<u64> {
    r.records.iter().map(|s| s.loss.to_bits()).collect()
}

#[test]
fn the_same_seed_gives_bit_identical_losses() {
    for policy in [
        PolicyChoice::Bf16,
        PolicyChoice::F16Scaled,
        PolicyChoice::Fp8,
    ] {
        let (a, b) = (digits(policy, 25, 1.0), digits(policy, 25, 1.0));
        assert_eq!(losses(&a), losses(&b), "{policy}");
    }
    let size = SortSize {
        n: 3,
        dim: 16,
        heads: 2,
        layers: 1,
    };
    let run = || run_sort(PolicyChoice::Fp8Fp32Edges, &cfg(8, 1.0), size, &mut |_| {}).unwrap();
    assert_eq!(losses(&run()), losses(&run()));
}

/// The comparison's expected outcome on a short run (200 steps of the digits MLP).
#[test]
fn policies_behave_as_the_comparison_expects() {
    let runs: Vec<RunSummary> = PolicyChoice::ALL
        .iter()
        .map(|&p| digits(p, 200, 1.0))
        .collect();
    let get = |p: PolicyChoice| runs.iter().find(|r| r.policy == p).unwrap();
    let fp32 = get(PolicyChoice::Fp32);
    assert!(fp32.accuracy > 0.9, "FP32 learns digits: {}", fp32.accuracy);
    // Stated margin: BF16 and scaled FP16 within 2 points of FP32's test accuracy (360
    // test images: 7 images).
    for p in [PolicyChoice::Bf16, PolicyChoice::F16Scaled] {
        let r = get(p);
        assert!(
            (r.accuracy - fp32.accuracy).abs() <= 0.02,
            "{p}: {} vs FP32 {}",
            r.accuracy,
            fp32.accuracy
        );
    }
    // FP8 trains: loss well below its start, accuracy within 5 points.
    for p in [PolicyChoice::Fp8, PolicyChoice::Fp8Fp32Edges] {
        let r = get(p);
        let first = r.records[0].loss;
        assert!(
            r.final_loss < first / 4.0,
            "{p}: {first} -> {}",
            r.final_loss
        );
        assert!(r.accuracy >= fp32.accuracy - 0.05, "{p}: {}", r.accuracy);
    }
    // FP16 without scaling flushes far more gradient values to zero.
    let (scaled, unscaled) = (get(PolicyChoice::F16Scaled), get(PolicyChoice::F16Unscaled));
    assert!(
        unscaled.mean_grad_underflow > 2.0 * scaled.mean_grad_underflow,
        "unscaled {} vs scaled {}",
        unscaled.mean_grad_underflow,
        scaled.mean_grad_underflow
    );
    assert_eq!(
        fp32.mean_grad_underflow, 0.0,
        "F32 casts nothing into a narrower range"
    );
    assert_eq!(scaled.final_scale, Some(65536.0));
    assert_eq!(unscaled.final_scale, None);

    // A small loss (times 2^-16): FP16 without scaling stalls, the scaler keeps FP16 on
    // par with FP32.
    let small = |p| digits(p, 200, 1.0 / 65536.0);
    let (f32_small, scaled_small, unscaled_small) = (
        small(PolicyChoice::Fp32),
        small(PolicyChoice::F16Scaled),
        small(PolicyChoice::F16Unscaled),
    );
    assert!(
        (scaled_small.final_loss - f32_small.final_loss).abs() <= 0.1 * f32_small.final_loss,
        "scaled {} vs fp32 {}",
        scaled_small.final_loss,
        f32_small.final_loss
    );
    assert!(
        unscaled_small.final_loss > 5.0 * scaled_small.final_loss,
        "unscaled {} vs scaled {}",
        unscaled_small.final_loss,
        scaled_small.final_loss
    );
    assert!(unscaled_small.accuracy < f32_small.accuracy - 0.2);
}

#[test]
fn accumulating_two_halves_equals_one_batch() {
    let data = Digits::load().unwrap();
    let step_with = |micro: Vec<Vec<usize>>| -> Vec<f32> {
        let mut master = MasterWeights::new();
        let model = DigitsMlp::<Fp32>::new(&mut Init::new(&mut master, 5), 32).unwrap();
        let cfg = TrainConfig {
            schedule: WarmupCosine {
                base: 0.5,
                min: 0.5,
                warmup: 0,
                total: 1,
            }
            .into(),
            clip_norm: None,
            seed: 0,
            loss_weight: 1.0,
        };
        let mut t = Trainer::new(
            master,
            Sgd::new(SgdConfig::default()).unwrap(),
            NoScaler,
            cfg,
        )
        .unwrap();
        let batches: Vec<_> = micro
            .iter()
            .map(|ids| data.train.batch(ids).unwrap())
            .collect();
        t.step(&model, 0, &batches).unwrap();
        t.master.iter().flat_map(|(_, p)| p.to_f32_vec()).collect()
    };
    let whole = step_with(vec![(0..64).collect()]);
    let halves = step_with(vec![(0..32).collect(), (32..64).collect()]);
    // The mean of two half-batch means equals the batch mean up to f32 rounding of the
    // partial sums; times lr 0.5, differences stay at a few ulps of the weights.
    for (a, b) in whole.iter().zip(&halves) {
        assert!((a - b).abs() <= 1e-6 * a.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn a_nan_batch_is_skipped_and_changes_nothing() {
    let mut master = MasterWeights::new();
    let model = DigitsMlp::<Fp32>::new(&mut Init::new(&mut master, 5), 16).unwrap();
    let before: Vec<f32> = master.iter().flat_map(|(_, p)| p.to_f32_vec()).collect();
    let cfg = TrainConfig {
        schedule: WarmupCosine {
            base: 0.1,
            min: 0.1,
            warmup: 0,
            total: 1,
        }
        .into(),
        clip_norm: Some(1.0),
        seed: 0,
        loss_weight: 1.0,
    };
    let mut t = Trainer::new(
        master,
        Sgd::new(SgdConfig::default()).unwrap(),
        NoScaler,
        cfg,
    )
    .unwrap();
    let mut px = vec![0.5f32; 2 * 64];
    px[3] = f32::NAN;
    let batch = (
        Tensor::<F32>::from_f32(&px, &[2, 64]).unwrap(),
        Indices::from_slice(&[1, 2]),
    );
    let r = t.step(&model, 0, &[batch]).unwrap();
    assert!(r.skipped && r.loss.is_nan());
    let after: Vec<f32> = t.master.iter().flat_map(|(_, p)| p.to_f32_vec()).collect();
    assert_eq!(
        before.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        after.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert!(
        t.step(&model, 1, &[]).is_err(),
        "a step needs a micro-batch"
    );
}

#[test]
fn the_transformer_learns_to_sort_under_fp8_with_fp32_edges() {
    let size = SortSize {
        n: 4,
        dim: 32,
        heads: 2,
        layers: 1,
    };
    let r = run_sort(
        PolicyChoice::Fp8Fp32Edges,
        &cfg(120, 1.0),
        size,
        &mut |_| {},
    )
    .unwrap();
    let first = r.records[0].loss;
    assert!(r.final_loss < first / 3.0, "{first} -> {}", r.final_loss);
    assert!(r.accuracy > 0.6, "accuracy {}", r.accuracy);
    assert!(r.saved_activation_bytes() > 0);
}

/// A small CNN on the 8x8 digits (conv 3x3 -> max pool 2 -> conv 3x3 -> avg pool 2 ->
/// linear) trains under BF16 mixed precision: the convolution and pooling layers learn.
#[test]
fn a_small_cnn_learns_digits_under_bf16() {
    use mixprec_amp::Bf16Mixed;
    use mixprec_autograd::{Result, Var};
    use mixprec_nn::Step;
    use mixprec_nn::layers::{AvgPool2d, Conv2d, Linear, MaxPool2d};
    use mixprec_nn::models::Model;
    use mixprec_nn::optim::{AdamW, AdamWConfig};
    use mixprec_tensor::{Conv2dParams, Pool2dParams};

    struct Cnn {
        c1: Conv2d<Bf16Mixed>,
        c2: Conv2d<Bf16Mixed>,
        fc: Linear<Bf16Mixed>,
    }
    impl Cnn {
        fn logits(&self, step: &Step, x: &Tensor<F32>) -> Result<Var<F32>> {
            let b = x.shape()[0];
            let img = step.input(x.reshape(&[b, 1, 8, 8])?);
            let h = self.c1.forward(step, &img)?.relu();
            let h = MaxPool2d(Pool2dParams::square(2)).forward(&h)?; // [b, 8, 4, 4]
            let h = self.c2.forward(step, &h)?.relu();
            let h = AvgPool2d(Pool2dParams::square(2)).forward(&h)?; // [b, 8, 2, 2]
            let h = h.reshape(&[b, 32])?;
            Ok(self.fc.forward(step, &h)?.cast::<F32>())
        }
    }
    impl Model for Cnn {
        type Batch = (Tensor<F32>, Indices);
        type Policy = Bf16Mixed;
        fn loss(&self, step: &Step, (x, y): &Self::Batch) -> Result<Var<F32>> {
            self.logits(step, x)?.cross_entropy(y)
        }
        fn correct(&self, step: &Step, (x, y): &Self::Batch) -> Result<(usize, usize)> {
            mixprec_nn::models::count_correct(&self.logits(step, x)?, y)
        }
    }

    let data = Digits::load().unwrap();
    let mut master = MasterWeights::new();
    let mut init = Init::new(&mut master, 3);
    let same = Conv2dParams {
        padding: (1, 1),
        ..Conv2dParams::default()
    };
    let cnn = Cnn {
        c1: Conv2d::new(&mut init, "c1", 1, 8, 3, same, true).unwrap(),
        c2: Conv2d::new(&mut init, "c2", 8, 8, 3, same, true).unwrap(),
        fc: Linear::new(&mut init, "fc", 32, 10, true).unwrap(),
    };
    let cfg = TrainConfig {
        schedule: WarmupCosine {
            base: 1e-2,
            min: 1e-3,
            warmup: 5,
            total: 150,
        }
        .into(),
        clip_norm: Some(1.0),
        seed: 0,
        loss_weight: 1.0,
    };
    let mut t = Trainer::new(
        master,
        AdamW::new(AdamWConfig::default()).unwrap(),
        NoScaler,
        cfg,
    )
    .unwrap();
    let mut batches = data.train.batches(64, 2).unwrap();
    let mut first = None;
    for s in 0..150 {
        let b = data.train.batch(&batches.next_batch()).unwrap();
        let r = t.step(&cnn, s, &[b]).unwrap();
        first.get_or_insert(r.loss);
    }
    let test = data
        .test
        .batch(&(0..data.test.len()).collect::<Vec<_>>())
        .unwrap();
    let acc = t.accuracy(&cnn, &[test]).unwrap();
    assert!(acc > 0.85, "CNN test accuracy {acc} (first loss {first:?})");
}
