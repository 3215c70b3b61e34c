//! Faults injected into training under every built-in policy: NaN/inf in the loss, in an
//! input (an FP8 operand under the FP8 policies) and in one gradient. Each asserts the
//! documented outcome and compares every weight, every optimizer state tensor, the loss
//! scaler and the FP8 state bit for bit before and after.

use mixprec_amp::{Alert, Bf16Mixed, F16Mixed, Fp8Hybrid, Fp32, MasterWeights};
use mixprec_amp::{LossScaling, NoScaler, Policy, Scaler, UnscaledGrads};
use mixprec_autograd::{Result, Tape, Var};
use mixprec_dtype::F32;
use mixprec_nn::checkpoint::TensorFile;
use mixprec_nn::data::Digits;
use mixprec_nn::models::{DigitsMlp, Model};
use mixprec_nn::optim::{AdamW, AdamWConfig, Optimizer, Sgd, SgdConfig, WarmupCosine};
use mixprec_nn::{Init, SkipReason, Step, TrainConfig, TrainPolicy, Trainer};
use mixprec_tensor::{Indices, Tensor};

/// What to break in a step.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Inject {
    Nothing,
    LossNan,
    LossInf,
    InputInf,
    InputNan,
}

/// The digits MLP with a fault switch.
struct Probe<B: TrainPolicy, E: TrainPolicy> {
    mlp: DigitsMlp<B, E>,
    inject: std::cell::Cell<Inject>,
}

impl<B: TrainPolicy, E: TrainPolicy> Model for Probe<B, E> {
    type Batch = (Tensor<F32>, Indices);
    type Policy = B;

    fn loss(&self, step: &Step, (x, y): &Self::Batch) -> Result<Var<F32>> {
        let mut pixels = x.to_f32_vec();
        match self.inject.get() {
            Inject::InputInf => pixels[5] = f32::INFINITY,
            Inject::InputNan => pixels[5] = f32::NAN,
            _ => {}
        }
        let x = Tensor::<F32>::from_f32(&pixels, x.shape())?;
        let loss = self.mlp.loss(step, &(x, y.clone()))?;
        let bad = match self.inject.get() {
            Inject::LossNan => f32::NAN,
            Inject::LossInf => f32::INFINITY,
            _ => return Ok(loss),
        };
        // A constant: the loss is not finite, the gradients stay finite.
        loss.add(&step.input(Tensor::<F32>::from_f32(&[bad], &[])?))
    }

    fn correct(&self, step: &Step, batch: &Self::Batch) -> Result<(usize, usize)> {
        self.mlp.correct(step, batch)
    }

    fn fp8_states(&self) -> Vec<(String, mixprec_amp::Fp8Scaling)> {
        self.mlp.fp8_states()
    }
}

/// One parameter's AdamW state as bits: first moments, second moments, steps.
type MomentBits = (Vec<u32>, Vec<u32>, u64);

/// Everything a step may change, as bits (FP8 state as its exact Debug text).
#[derive(Debug, PartialEq)]
struct State {
    weights: Vec<Vec<u32>>,
    moments: Vec<Option<MomentBits>>,
    scaler: Option<(u32, u32, u32)>,
    fp8: Vec<String>,
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The scaler type policy `B` trains with.
type ScalerOf<B> = <<B as Policy>::Scaling as LossScaling>::Scaler;

fn state<B: TrainPolicy, E: TrainPolicy>(
    t: &Trainer<AdamW, ScalerOf<B>>,
    m: &Probe<B, E>,
) -> State {
    State {
        weights: t
            .master
            .iter()
            .map(|(_, w)| bits(&w.to_f32_vec()))
            .collect(),
        moments: (0..t.master.len())
            .map(|i| {
                t.optimizer.state(i).map(|s| {
                    (
                        bits(&s.exp_avg.to_f32_vec()),
                        bits(&s.exp_avg_sq.to_f32_vec()),
                        s.step,
                    )
                })
            })
            .collect(),
        scaler: t.scaler.grad_scaler().map(|s| {
            let st = s.state();
            (st.scale.to_bits(), st.growth_tracker, st.hysteresis_tracker)
        }),
        fp8: m
            .mlp
            .fp8_states()
            .iter()
            .map(|(_, f)| format!("{:?}", f.snapshot()))
            .collect(),
    }
}

fn trainer<B: TrainPolicy, E: TrainPolicy>() -> (Trainer<AdamW, ScalerOf<B>>, Probe<B, E>) {
    let mut master = MasterWeights::new();
    let mlp = DigitsMlp::<B, E>::new(&mut Init::new(&mut master, 3), 32).unwrap();
    let schedule = WarmupCosine {
        base: 1e-3,
        min: 1e-4,
        warmup: 2,
        total: 20,
    };
    let cfg = TrainConfig {
        schedule: schedule.into(),
        clip_norm: Some(1.0),
        seed: 1,
        loss_weight: 1.0,
    };
    let scaler = ScalerOf::<B>::with_defaults().unwrap();
    let opt = AdamW::new(AdamWConfig::default()).unwrap();
    let t = Trainer::new(master, opt, scaler, cfg).unwrap();
    let probe = Probe {
        mlp,
        inject: std::cell::Cell::new(Inject::Nothing),
    };
    (t, probe)
}

/// Three clean steps, one step with `inject`, one clean step: returns the faulty step's
/// record after checking that it changed nothing but the scaler (backed off) and that
/// training then goes on.
fn fault<B: TrainPolicy, E: TrainPolicy>(inject: Inject) -> mixprec_nn::StepRecord {
    let digits = Digits::load().unwrap();
    let batch = digits.train.batch(&(0..32).collect::<Vec<_>>()).unwrap();
    let (mut t, m) = trainer::<B, E>();
    for s in 0..3 {
        assert!(!t.step(&m, s, std::slice::from_ref(&batch)).unwrap().skipped);
    }
    let before = state(&t, &m);
    m.inject.set(inject);
    let r = t.step(&m, 3, std::slice::from_ref(&batch)).unwrap();
    let after = state(&t, &m);
    assert!(r.skipped, "{inject:?}: the step is skipped");
    assert_eq!(after.weights, before.weights, "{inject:?}: weights");
    assert_eq!(after.moments, before.moments, "{inject:?}: AdamW state");
    if let (Some(b), Some(a)) = (before.scaler, after.scaler) {
        assert_eq!(
            f32::from_bits(a.0),
            f32::from_bits(b.0) / 2.0,
            "{inject:?}: the scaler backs off"
        );
    }
    assert!(
        r.alerts.iter().any(|a| matches!(
            a,
            Alert::NonFinite { step: 3 } | Alert::Fp8NonFinite { step: 3, .. }
        )),
        "{inject:?}: an alert in the record: {:?}",
        r.alerts
    );
    assert!(
        t.monitor.alerts().iter().any(|a| r.alerts.contains(a)),
        "and in the monitor"
    );
    m.inject.set(Inject::Nothing);
    let next = t.step(&m, 4, std::slice::from_ref(&batch)).unwrap();
    assert!(!next.skipped, "{inject:?}: training goes on");
    assert_ne!(state(&t, &m).weights, before.weights);
    r
}

/// The documented outcome of each injection under one policy.
fn every_fault<B: TrainPolicy, E: TrainPolicy>(fp8_input: bool) {
    for inject in [Inject::LossNan, Inject::LossInf] {
        let r = fault::<B, E>(inject);
        assert_eq!(r.skip_reason, Some(SkipReason::NonFiniteLoss), "{inject:?}");
        assert!(!r.loss.is_finite());
    }
    for inject in [Inject::InputInf, Inject::InputNan] {
        let r = fault::<B, E>(inject);
        if fp8_input {
            // The input is an FP8 operand: quantisation clamps an infinity to a finite
            // value, so the FP8 check is what catches it.
            assert!(
                r.alerts
                    .iter()
                    .any(|a| matches!(a, Alert::Fp8NonFinite { gemm: 0, .. })),
                "{inject:?}: {:?}",
                r.alerts
            );
        } else {
            assert_eq!(
                r.skip_reason,
                Some(SkipReason::NonFiniteGradients),
                "{inject:?}"
            );
        }
    }
}

#[test]
fn faults_under_fp32() {
    every_fault::<Fp32, Fp32>(false);
}

#[test]
fn faults_under_bf16() {
    every_fault::<Bf16Mixed, Bf16Mixed>(false);
}

#[test]
fn faults_under_f16_with_a_scaler() {
    every_fault::<F16Mixed, F16Mixed>(false);
}

#[test]
fn faults_under_fp8() {
    every_fault::<Fp8Hybrid, Fp8Hybrid>(true);
}

#[test]
fn faults_under_fp8_with_fp32_edges() {
    every_fault::<Fp8Hybrid, Fp32>(false);
}

#[test]
fn fp8_quantisation_of_an_infinity_is_counted_and_keeps_the_scale() {
    let digits = Digits::load().unwrap();
    let batch = digits.train.batch(&(0..32).collect::<Vec<_>>()).unwrap();
    let (mut t, m) = trainer::<Fp8Hybrid, Fp8Hybrid>();
    t.step(&m, 0, std::slice::from_ref(&batch)).unwrap();
    let fc_in = m.mlp.fp8_states()[0].1.clone();
    let scale = fc_in.scale(0, mixprec_amp::Fp8Role::Input);
    m.inject.set(Inject::InputInf);
    let r = t.step(&m, 1, std::slice::from_ref(&batch)).unwrap();
    assert_eq!(r.skip_reason, Some(SkipReason::NonFiniteFp8));
    let stats = t.monitor.last().unwrap();
    let input = stats
        .fp8
        .iter()
        .find(|s| s.gemm == 0 && s.role == mixprec_amp::Fp8Role::Input)
        .unwrap();
    assert_eq!(input.non_finite, 1, "the infinity is counted");
    assert_eq!(input.amax, f32::INFINITY);
    assert_eq!(
        fc_in.scale(0, mixprec_amp::Fp8Role::Input),
        scale,
        "TE keeps the previous scale on an infinite amax"
    );
}

/// An optimizer that fails on demand, to check that a failed step changes nothing.
struct Failing(AdamW, bool);
impl Optimizer for Failing {
    fn step(&mut self, m: &mut MasterWeights, g: &UnscaledGrads, lr: f64) -> Result<()> {
        if self.1 {
            return Err(mixprec_autograd::Error::invalid("Failing", "injected"));
        }
        self.0.step(m, g, lr)
    }
    fn state_bytes(&self) -> usize {
        self.0.state_bytes()
    }
    fn kind(&self) -> mixprec_amp::OptimizerKind {
        self.0.kind()
    }
    fn write_state(&self, m: &MasterWeights, f: &mut TensorFile) -> Result<()> {
        self.0.write_state(m, f)
    }
    fn read_state(&mut self, m: &MasterWeights, f: &TensorFile) -> Result<()> {
        self.0.read_state(m, f)
    }
}

fn failed_step_changes_nothing<B: TrainPolicy, E: TrainPolicy>() {
    let digits = Digits::load().unwrap();
    let batch = digits.train.batch(&(0..32).collect::<Vec<_>>()).unwrap();
    let (t, m) = trainer::<B, E>();
    let mut t = Trainer::new(
        t.master,
        Failing(t.optimizer, false),
        t.scaler,
        TrainConfig {
            schedule: WarmupCosine {
                base: 1e-3,
                min: 1e-4,
                warmup: 2,
                total: 20,
            }
            .into(),
            clip_norm: None,
            seed: 1,
            loss_weight: 1.0,
        },
    )
    .unwrap();
    for s in 0..2 {
        t.step(&m, s, std::slice::from_ref(&batch)).unwrap();
    }
    let snap = |t: &Trainer<Failing, ScalerOf<B>>| {
        (
            t.master
                .iter()
                .map(|(_, w)| bits(&w.to_f32_vec()))
                .collect::<Vec<_>>(),
            t.scaler.grad_scaler().map(|s| s.state()),
            m.mlp
                .fp8_states()
                .iter()
                .map(|(_, f)| format!("{:?}", f.snapshot()))
                .collect::<Vec<_>>(),
            format!("{:?}", t.optimizer.0),
        )
    };
    let before = snap(&t);
    t.optimizer.1 = true;
    let e = t.step(&m, 2, std::slice::from_ref(&batch)).unwrap_err();
    assert!(e.to_string().contains("Failing"), "{e}");
    assert_eq!(snap(&t), before, "a failed step changed state");
}

#[test]
fn a_failed_optimizer_step_changes_nothing_under_every_policy() {
    failed_step_changes_nothing::<Fp32, Fp32>();
    failed_step_changes_nothing::<Bf16Mixed, Bf16Mixed>();
    failed_step_changes_nothing::<F16Mixed, F16Mixed>();
    failed_step_changes_nothing::<Fp8Hybrid, Fp8Hybrid>();
    failed_step_changes_nothing::<Fp8Hybrid, Fp32>();
}

fn one_param() -> (MasterWeights, Vec<Var<F32>>, Tape) {
    let mut m = MasterWeights::new();
    m.add(
        "w",
        Tensor::<F32>::from_f32(&[1.0, -2.0, 0.5], &[3]).unwrap(),
    );
    let tape = Tape::new();
    let leaves = m.leaves(&tape);
    (m, leaves, tape)
}

#[test]
fn optimizers_refuse_a_non_finite_gradient_unless_allowed() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let (mut m, leaves, _tape) = one_param();
        let loss = leaves[0]
            .mul(
                &leaves[0]
                    .tape()
                    .constant(Tensor::<F32>::from_f32(&[1.0, bad, 1.0], &[3]).unwrap()),
            )
            .unwrap()
            .sum_all();
        let g = UnscaledGrads::from_gradients(&loss.backward().unwrap(), &[&leaves[0]]);
        assert!(g.found_inf());
        let w0 = bits(&m.get(0).unwrap().to_f32_vec());
        let mut adam = AdamW::new(AdamWConfig::default()).unwrap();
        let e = adam.step(&mut m, &g, 0.1).unwrap_err();
        assert!(e.to_string().starts_with("AdamW:"), "{e}");
        assert!(adam.state(0).is_none(), "no state was made");
        let mut sgd = Sgd::new(SgdConfig {
            momentum: 0.9,
            ..Default::default()
        })
        .unwrap();
        let e = sgd.step(&mut m, &g, 0.1).unwrap_err();
        assert!(e.to_string().starts_with("Sgd:"), "{e}");
        assert!(sgd.momentum_buffer(0).is_none());
        assert_eq!(
            bits(&m.get(0).unwrap().to_f32_vec()),
            w0,
            "weights unchanged"
        );
        // The explicit opt-in lets the values through, as PyTorch does.
        let mut sgd = Sgd::new(SgdConfig::default())
            .unwrap()
            .allow_non_finite(true);
        sgd.step(&mut m, &g, 0.1).unwrap();
        assert!(!m.get(0).unwrap().all_finite());
    }
}

#[test]
fn bad_hyperparameters_are_refused_with_the_value() {
    let adam = |c: AdamWConfig| AdamW::new(c).unwrap_err().to_string();
    let d = AdamWConfig::default();
    assert!(adam(AdamWConfig { beta1: 1.0, ..d }).contains("beta1"));
    assert!(adam(AdamWConfig { beta2: 1.5, ..d }).contains("1.5"));
    assert!(adam(AdamWConfig { eps: 0.0, ..d }).contains("eps"));
    assert!(adam(AdamWConfig { eps: f64::NAN, ..d }).contains("eps"));
    assert!(
        adam(AdamWConfig {
            weight_decay: -0.1,
            ..d
        })
        .contains("weight_decay")
    );
    let sgd = |c: SgdConfig| Sgd::new(c).unwrap_err().to_string();
    assert!(
        sgd(SgdConfig {
            momentum: 1.0,
            ..Default::default()
        })
        .contains("momentum")
    );
    assert!(
        sgd(SgdConfig {
            nesterov: true,
            ..Default::default()
        })
        .contains("Nesterov")
    );
    assert!(
        sgd(SgdConfig {
            dampening: f64::NAN,
            ..Default::default()
        })
        .contains("dampening")
    );
    // The learning rate is checked at every step.
    let (mut m, leaves, _tape) = one_param();
    let g = UnscaledGrads::from_gradients(&leaves[0].sum_all().backward().unwrap(), &[&leaves[0]]);
    let mut adam = AdamW::new(d).unwrap();
    for lr in [f64::NAN, -1.0, f64::INFINITY] {
        let e = adam.step(&mut m, &g, lr).unwrap_err().to_string();
        assert!(e.contains("learning rate"), "{e}");
    }
    assert!(adam.state(0).is_none());
}

#[test]
fn bad_training_settings_are_refused() {
    let sched = WarmupCosine {
        base: 1e-3,
        min: 1e-4,
        warmup: 2,
        total: 20,
    };
    let ok = TrainConfig {
        schedule: sched.into(),
        clip_norm: Some(1.0),
        seed: 0,
        loss_weight: 1.0,
    };
    let with = |schedule: WarmupCosine| TrainConfig {
        schedule: schedule.into(),
        ..ok.clone()
    };
    let bad = [
        TrainConfig {
            clip_norm: Some(-1.0),
            ..ok.clone()
        },
        TrainConfig {
            clip_norm: Some(f32::NAN),
            ..ok.clone()
        },
        TrainConfig {
            loss_weight: 0.0,
            ..ok.clone()
        },
        with(WarmupCosine {
            base: f64::NAN,
            ..sched
        }),
        with(WarmupCosine { min: 1.0, ..sched }),
        with(WarmupCosine {
            warmup: 30,
            ..sched
        }),
        TrainConfig {
            schedule: mixprec_nn::optim::ConstantLr(-1.0).into(),
            ..ok.clone()
        },
    ];
    for cfg in bad {
        let opt = Sgd::new(SgdConfig::default()).unwrap();
        let e = Trainer::new(MasterWeights::new(), opt, NoScaler, cfg).expect_err("refused");
        let text = e.to_string();
        assert!(
            ["TrainConfig:", "WarmupCosine:", "ConstantLr:"]
                .iter()
                .any(|p| text.starts_with(p)),
            "{text}"
        );
    }
    // clip_grad_norm itself refuses a negative maximum (it would flip every gradient).
    let (_m, leaves, _tape) = one_param();
    let mut g =
        UnscaledGrads::from_gradients(&leaves[0].sum_all().backward().unwrap(), &[&leaves[0]]);
    let e = mixprec_amp::clip_grad_norm(&mut g, -1.0).unwrap_err();
    assert!(e.to_string().contains("-1"), "{e}");
    assert_eq!(g.get(0).unwrap().to_f32_vec(), vec![1.0; 3], "unchanged");
}

#[test]
fn data_and_layers_refuse_empty_sizes_by_name() {
    use mixprec_nn::data::Batches;
    use mixprec_nn::layers::{Conv2d, LayerNorm, Linear};
    assert!(Batches::new(0, 4, 0).is_err());
    assert!(Batches::new(10, 0, 0).is_err());
    assert!(Batches::new(3, 4, 0).is_err());
    let mut b = Batches::new(5, 2, 0).unwrap();
    assert_eq!(b.next_batch().len(), 2);
    let mut master = MasterWeights::new();
    let mut init = Init::new(&mut master, 0);
    let conv = Conv2d::<Fp32>::new(&mut init, "c", 0, 4, 3, Default::default(), true);
    let e = conv.expect_err("refused").to_string();
    assert!(e.starts_with("Conv2d:") && e.contains("in_channels"), "{e}");
    let e = Linear::<Fp32>::new(&mut init, "l", 4, 0, true)
        .err()
        .unwrap();
    assert!(e.to_string().starts_with("Linear:"), "{e}");
    let e = LayerNorm::<Fp32>::new(&mut init, "n", 0).err().unwrap();
    assert!(e.to_string().starts_with("LayerNorm:"), "{e}");
    assert_eq!(master.len(), 0, "refused layers made no parameters");
    // Accuracy of nothing is an error, not 0.
    let (t, m) = trainer::<Fp32, Fp32>();
    let empty = (Tensor::<F32>::zeros(&[0, 64]), Indices::from_slice(&[]));
    assert!(t.accuracy(&m, &[empty]).is_err());
    assert!(t.accuracy(&m, &[]).is_err());
}

#[test]
fn an_fp8_infinity_in_an_earlier_micro_batch_skips_the_step() {
    let digits = Digits::load().unwrap();
    let clean = digits.train.batch(&(0..16).collect::<Vec<_>>()).unwrap();
    let mut px = clean.0.to_f32_vec();
    px[7] = f32::INFINITY;
    let bad = (
        Tensor::<F32>::from_f32(&px, clean.0.shape()).unwrap(),
        clean.1.clone(),
    );
    let (mut t, m) = trainer::<Fp8Hybrid, Fp8Hybrid>();
    t.step(&m, 0, std::slice::from_ref(&clean)).unwrap();
    let before: Vec<Vec<u32>> = t
        .master
        .iter()
        .map(|(_, w)| bits(&w.to_f32_vec()))
        .collect();
    let r = t.step(&m, 1, &[bad, clean]).unwrap();
    assert_eq!(r.skip_reason, Some(SkipReason::NonFiniteFp8));
    let after: Vec<Vec<u32>> = t
        .master
        .iter()
        .map(|(_, w)| bits(&w.to_f32_vec()))
        .collect();
    assert_eq!(before, after);
}
