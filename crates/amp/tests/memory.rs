//! Memory accounting: the prediction of every role (master weights, compute copies,
//! gradients, optimizer state, saved activations, FP8 scaling state) equals what a real
//! step holds, byte for byte, under every policy; a failed master update changes nothing.

use mixprec_amp::{
    Autocast, Bf16Mixed, DelayedScalingConfig, F16Mixed, Fp8Hybrid, Fp8Recipe, Fp8Scaling, Fp32,
    MasterWeights, MemoryRole, ModelShape, OptimizerKind, Policy, UnscaledGrads, memory_summary,
    predict_memory,
};
use mixprec_autograd::Tape;
use mixprec_dtype::F32;
use mixprec_tensor::{Indices, Rng, Tensor};

fn master() -> MasterWeights {
    let mut rng = Rng::seed(2);
    let mut m = MasterWeights::new();
    m.add(
        "fc1.weight",
        Tensor::randn(&[32, 16], 0.0, 0.2, &mut rng).unwrap(),
    );
    m.add(
        "fc2.weight",
        Tensor::randn(&[4, 32], 0.0, 0.2, &mut rng).unwrap(),
    );
    m
}

/// The MLP below: 8 x 16 input -> linear 32 -> gelu -> linear 4 -> cross-entropy.
/// Saved: the two GEMM inputs (x and the gelu output), gelu's input, the F32 logits.
const MODEL: ModelShape = ModelShape {
    params: 32 * 16 + 4 * 32,
    gemms: 2,
    gemm_inputs: 8 * 16 + 8 * 32,
    elementwise_inputs: 8 * 32,
    sensitive_inputs: 8 * 4,
};

fn check<P: Policy<Param = F32, Sensitive = F32>>(fp8: Option<Fp8Recipe>) {
    let mut m = master();
    let tape = Tape::new();
    let state = fp8.map(Fp8Scaling::new);
    let ac = match &state {
        Some(s) => Autocast::<P>::with_fp8(&tape, s),
        None => Autocast::<P>::new(&tape),
    };
    let p = m.leaves(&tape);
    let x = tape.constant(Tensor::<F32>::ones(&[8, 16]));
    let h = ac.gelu(&ac.linear(&x, &p[0], None).unwrap());
    let logits = ac.linear(&h, &p[1], None).unwrap();
    let loss = ac
        .cross_entropy(&logits, &Indices::from_slice(&[0, 1, 2, 3, 0, 1, 2, 3]))
        .unwrap();
    let grads = UnscaledGrads::from_gradients(&loss.backward().unwrap(), &[&p[0], &p[1]]);
    // An Adam-like optimizer state: two F32 moments per parameter.
    let moments: Vec<Tensor<F32>> = m
        .iter()
        .flat_map(|(_, t)| [Tensor::<F32>::zeros(t.shape()), Tensor::zeros(t.shape())])
        .collect();
    let state_bytes: usize = moments.iter().map(|t| t.nbytes()).sum();
    let measured = memory_summary(&m, &ac, &grads, state_bytes, &tape);
    assert_eq!(m.count(), MODEL.params);
    let predicted = predict_memory::<P>(&MODEL, OptimizerKind::Adam, fp8);
    // Every predicted role and precision, byte for byte (the workspace is measured only:
    // it holds GEMM packing buffers and reusable buffers, bounded but history-dependent).
    let mut rows: Vec<_> = measured
        .rows
        .iter()
        .copied()
        .filter(|r| r.0 != MemoryRole::Workspace)
        .collect();
    let mut expected = predicted.rows.clone();
    rows.sort();
    expected.sort();
    assert_eq!(
        rows,
        expected,
        "{}\nmeasured:\n{measured}\npredicted:\n{predicted}",
        P::name()
    );
    assert!(measured.role(MemoryRole::SavedActivations) > 0);
    // A failing update leaves every parameter as it was.
    let before: Vec<Vec<f32>> = m.iter().map(|(_, t)| t.to_f32_vec()).collect();
    let r = m.apply_with(&grads, |i, w, g| {
        if i == 0 {
            w.sub(g).map_err(Into::into)
        } else {
            w.sub(&Tensor::zeros(&[3])).map_err(Into::into)
        }
    });
    assert!(r.is_err());
    let after: Vec<Vec<f32>> = m.iter().map(|(_, t)| t.to_f32_vec()).collect();
    assert_eq!(before, after, "no half-updated weights");
    m.apply_with(&grads, |_, w, g| {
        w.sub(&g.mul_scalar(0.1)).map_err(Into::into)
    })
    .unwrap();
    assert_ne!(
        before,
        m.iter().map(|(_, t)| t.to_f32_vec()).collect::<Vec<_>>()
    );
}

#[test]
fn prediction_matches_measurement_under_every_policy() {
    check::<Fp32>(None);
    check::<Bf16Mixed>(None);
    check::<F16Mixed>(None);
    check::<Fp8Hybrid>(None);
    check::<Fp8Hybrid>(Some(Fp8Recipe::Current));
    check::<Fp8Hybrid>(Some(Fp8Recipe::Delayed(DelayedScalingConfig {
        history_len: 16,
        ..Default::default()
    })));
}

#[test]
fn classic_formulas() {
    let p = 1000;
    let params = |params| ModelShape {
        params,
        ..ModelShape::default()
    };
    assert_eq!(
        predict_memory::<Fp32>(&params(p), OptimizerKind::Adam, None).total(),
        16 * p,
        "FP32 + Adam: 16P"
    );
    assert_eq!(
        predict_memory::<Bf16Mixed>(&params(p), OptimizerKind::Adam, None).total(),
        18 * p,
        "BF16 mixed + Adam: 18P"
    );
    assert_eq!(
        predict_memory::<Fp8Hybrid>(&params(p), OptimizerKind::Adam, None).total(),
        17 * p,
        "FP8 + Adam: 17P"
    );
    assert_eq!(
        predict_memory::<Bf16Mixed>(
            &ModelShape {
                elementwise_inputs: 500,
                sensitive_inputs: 10,
                ..params(p)
            },
            OptimizerKind::Sgd,
            None
        )
        .role(MemoryRole::SavedActivations),
        1000 + 40,
        "500 BF16 activations and 10 F32 logits"
    );
}
