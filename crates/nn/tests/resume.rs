//! Exact resume: N steps, save the whole training state, load it into a freshly built
//! trainer and model (initialised from another seed, so everything must come from the
//! file), M more steps — bit-identical losses and final state (weights, optimizer state,
//! loss scaler, FP8 scales and histories, step counter) to N + M steps in one run, under
//! every built-in policy. The model is a small GPT with dropout (masks depend on the step
//! index) trained on two micro-batches per step drawn through `Batches` (data order
//! saved with the state).

use mixprec_amp::{
    AmaxCompute, Bf16Mixed, DelayedScalingConfig, F16Mixed, F16Unscaled, Fp8Hybrid, Fp8Recipe,
    Fp32, GradScaler, GradScalerConfig, LossScaling, MasterWeights, Policy, Scaler,
};
use mixprec_nn::checkpoint::TensorFile;
use mixprec_nn::data::{Batches, SortBatch, SortTask};
use mixprec_nn::models::{Gpt, GptConfig};
use mixprec_nn::optim::{AdamW, AdamWConfig, Optimizer, Sgd, SgdConfig, WarmupCosine};
use mixprec_nn::{Init, TrainConfig, TrainPolicy, Trainer};

type ScalerOf<P> = <<P as Policy>::Scaling as LossScaling>::Scaler;

const TASK: SortTask = SortTask { n: 4 };
/// Steps before the save, and after it.
const N: u64 = 4;
const M: u64 = 4;

struct Run<P: TrainPolicy, O: Optimizer> {
    trainer: Trainer<O, ScalerOf<P>>,
    model: Gpt<P>,
    data: Batches,
}

/// A GPT run whose weights come from `init_seed`; data order, dropout and settings are
/// the same for every seed. FP16's scaler grows every 3 clean steps, so its growth
/// tracker matters; FP8 keeps a 3-step amax history, so its rolling matters.
fn build<P: TrainPolicy, O: Optimizer>(init_seed: u64, recipe: Fp8Recipe, opt: O) -> Run<P, O> {
    let mut master = MasterWeights::new();
    let cfg = GptConfig {
        vocab: SortTask::VOCAB,
        context: TASK.context(),
        dim: 16,
        heads: 2,
        layers: 1,
        dropout: 0.2,
    };
    let model =
        Gpt::<P>::new(&mut Init::new(&mut master, init_seed).with_fp8(recipe), cfg).unwrap();
    let mut scaler = ScalerOf::<P>::with_defaults().unwrap();
    if let Some(s) = scaler.grad_scaler_mut() {
        *s = GradScaler::new(GradScalerConfig {
            growth_interval: 3,
            ..GradScalerConfig::default()
        })
        .unwrap();
    }
    let train = TrainConfig {
        schedule: WarmupCosine {
            base: 3e-3,
            min: 1e-4,
            warmup: 2,
            total: N + M,
        }
        .into(),
        clip_norm: Some(1.0),
        seed: 11,
        loss_weight: 1.0,
    };
    Run {
        trainer: Trainer::new(master, opt, scaler, train).unwrap(),
        model,
        data: Batches::new(64, 2, 5).unwrap(),
    }
}

/// Steps `from .. from + count`; the bits of each step's loss and loss scale.
fn steps<P: TrainPolicy, O: Optimizer>(
    run: &mut Run<P, O>,
    from: u64,
    count: u64,
) -> Vec<(u64, Option<u32>)> {
    (from..from + count)
        .map(|i| {
            let micro: Vec<SortBatch> = run
                .data
                .next_batch()
                .into_iter()
                .map(|s| TASK.batch(3, s as u64))
                .collect();
            let r = run.trainer.step(&run.model, i, &micro).unwrap();
            (r.loss.to_bits(), r.loss_scale.map(f32::to_bits))
        })
        .collect()
}

/// The whole state, data order included.
fn state<P: TrainPolicy, O: Optimizer>(run: &Run<P, O>) -> TensorFile {
    let mut file = run.trainer.state_file(&run.model).unwrap();
    run.data.write_state(&mut file, "train");
    file
}

fn resume_is_exact<P: TrainPolicy, O: Optimizer + Clone>(recipe: Fp8Recipe, opt: O) {
    let mut straight = build::<P, O>(1, recipe, opt.clone());
    let want = steps(&mut straight, 0, N + M);

    let mut first = build::<P, O>(1, recipe, opt.clone());
    let mut got = steps(&mut first, 0, N);
    let saved = state(&first).to_bytes().unwrap();
    drop(first);

    let mut resumed = build::<P, O>(99, recipe, opt);
    let file = TensorFile::from_bytes(&saved, "saved state").unwrap();
    assert_eq!(file.metadata("mixprec.policy"), Some(P::name()));
    resumed
        .trainer
        .load_state_file(&resumed.model, &file)
        .unwrap();
    resumed.data.read_state(&file, "train").unwrap();
    assert_eq!(resumed.trainer.next_step(), N);
    got.extend(steps(&mut resumed, N, M));

    assert_eq!(
        got,
        want,
        "{}: losses and loss scales, bit for bit",
        P::name()
    );
    assert!(
        state(&resumed).to_bytes().unwrap() == state(&straight).to_bytes().unwrap(),
        "{}: the final training state file differs from the one-run one",
        P::name()
    );
}

fn adamw() -> AdamW {
    AdamW::new(AdamWConfig {
        amsgrad: true,
        ..AdamWConfig::default()
    })
    .unwrap()
}

fn delayed() -> Fp8Recipe {
    Fp8Recipe::Delayed(DelayedScalingConfig {
        margin: 0,
        history_len: 3,
        amax_compute: AmaxCompute::Max,
    })
}

#[test]
fn resume_is_exact_fp32() {
    resume_is_exact::<Fp32, _>(delayed(), adamw());
}

#[test]
fn resume_is_exact_bf16() {
    resume_is_exact::<Bf16Mixed, _>(delayed(), adamw());
}

#[test]
fn resume_is_exact_f16_with_loss_scaling() {
    resume_is_exact::<F16Mixed, _>(delayed(), adamw());
}

#[test]
fn resume_is_exact_f16_unscaled() {
    resume_is_exact::<F16Unscaled, _>(delayed(), adamw());
}

#[test]
fn resume_is_exact_fp8_delayed_scaling() {
    resume_is_exact::<Fp8Hybrid, _>(delayed(), adamw());
}

#[test]
fn resume_is_exact_fp8_current_scaling() {
    resume_is_exact::<Fp8Hybrid, _>(Fp8Recipe::Current, adamw());
}

#[test]
fn resume_is_exact_with_sgd_momentum() {
    let sgd = Sgd::new(SgdConfig {
        momentum: 0.9,
        nesterov: true,
        weight_decay: 1e-2,
        ..SgdConfig::default()
    })
    .unwrap();
    resume_is_exact::<Bf16Mixed, _>(delayed(), sgd);
}

/// A state file with one fault, loaded into a trainer that has taken two steps: each is
/// an error naming the fault, and the trainer (weights, optimizer, scaler, FP8 state,
/// step counter) is unchanged.
fn refused<P: TrainPolicy>(opt: AdamW, fault: impl Fn(&mut TensorFile), want: &str) {
    let mut donor = build::<P, AdamW>(1, delayed(), adamw());
    steps(&mut donor, 0, 3);
    let mut file = donor.trainer.state_file(&donor.model).unwrap();
    fault(&mut file);
    let mut target = build::<P, AdamW>(2, delayed(), opt);
    steps(&mut target, 0, 2);
    let before = state(&target);
    let err = target
        .trainer
        .load_state_file(&target.model, &file)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(want),
        "{}: expected {want:?} in: {err}",
        P::name()
    );
    assert!(
        state(&target) == before,
        "{}: changed by a refused load ({err})",
        P::name()
    );
    assert_eq!(target.trainer.next_step(), 2);
}

/// The first tensor whose name starts with `prefix`.
fn first(file: &TensorFile, prefix: &str) -> String {
    file.iter()
        .find(|(n, _)| n.starts_with(prefix))
        .unwrap()
        .0
        .to_string()
}

#[test]
fn bad_state_files_are_refused_and_change_nothing() {
    use mixprec_nn::checkpoint::StoredTensor;
    use mixprec_tensor::Tensor;
    let one = |v: f32| {
        StoredTensor::from_tensor(&Tensor::<mixprec_dtype::F32>::from_f32(&[v], &[1]).unwrap())
    };
    refused::<Fp8Hybrid>(
        adamw(),
        |f| f.set_metadata("mixprec.policy", "bf16-mixed"),
        "mixprec.policy",
    );
    refused::<Fp8Hybrid>(
        adamw(),
        |f| f.set_metadata("mixprec.format", "other"),
        "mixprec.format",
    );
    refused::<Fp8Hybrid>(
        adamw(),
        |f| f.set_metadata("mixprec.seed", "12"),
        "mixprec.seed",
    );
    refused::<Fp8Hybrid>(
        adamw(),
        |f| f.set_metadata("mixprec.next_step", "x"),
        "next_step",
    );
    refused::<Fp8Hybrid>(
        adamw(),
        |f| {
            let name = first(f, "master.");
            f.remove(&name);
        },
        "master.",
    );
    refused::<Fp8Hybrid>(
        adamw(),
        |f| {
            let name = first(f, "master.");
            f.remove(&name);
            f.insert_stored(&name, one(0.5)).unwrap();
        },
        "has shape [1]",
    );
    refused::<Fp8Hybrid>(
        adamw(),
        |f| f.insert_stored("master.extra", one(1.0)).unwrap(),
        "master weights",
    );
    refused::<Fp8Hybrid>(
        AdamW::new(AdamWConfig::default()).unwrap(),
        |_| {},
        "saved under",
    );
    refused::<Fp8Hybrid>(
        adamw(),
        |f| {
            let name = first(f, "optim.");
            f.remove(&name);
        },
        "incomplete state",
    );
    refused::<Fp8Hybrid>(
        adamw(),
        |f| f.insert_stored("optim.nowhere.exp_avg", one(1.0)).unwrap(),
        "no place",
    );
    refused::<Fp8Hybrid>(
        adamw(),
        |f| {
            let name = first(f, "fp8.");
            let history = name.rsplit_once('.').unwrap().0.to_string() + ".amax_history";
            f.remove(&history);
            f.insert_stored(&history, one(1.0)).unwrap();
        },
        "expected a history of 3",
    );
    refused::<Fp8Hybrid>(
        adamw(),
        |f| {
            f.insert_stored("fp8.ghost.0.input.scale", one(1.0))
                .unwrap()
        },
        "FP8 tensors",
    );
    refused::<Bf16Mixed>(
        adamw(),
        |f| f.insert_stored("scaler.scale", one(8.0)).unwrap(),
        "loss scaler",
    );
    refused::<F16Mixed>(
        adamw(),
        |f| {
            let c = f
                .metadata("scaler.config")
                .unwrap()
                .replace("growth_interval: 3", "growth_interval: 4");
            f.set_metadata("scaler.config", c);
        },
        "scaler.config",
    );
    refused::<F16Mixed>(
        adamw(),
        |f| {
            f.remove("scaler.scale");
            f.insert_stored("scaler.scale", one(f32::INFINITY)).unwrap();
        },
        "does not fit",
    );
}
