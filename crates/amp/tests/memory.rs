//! Memory accounting: the prediction for master weights, compute copies, gradients and
//! optimizer state equals what a real step holds, under every policy; a failed master
//! update changes nothing.

use mixprec_amp::{
    Autocast, Bf16Mixed, F16Mixed, Fp8Hybrid, Fp32, MasterWeights, MemoryRole, OptimizerKind,
    Policy, UnscaledGrads, memory_summary, predict_memory,
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

fn check<P: Policy<Param = F32, Sensitive = F32>>() {
    let mut m = master();
    let tape = Tape::new();
    let ac = Autocast::<P>::new(&tape);
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
    let predicted = predict_memory::<P>(m.count(), 0, OptimizerKind::Adam);
    for role in [
        MemoryRole::MasterWeights,
        MemoryRole::ComputeCopies,
        MemoryRole::Gradients,
        MemoryRole::OptimizerState,
    ] {
        assert_eq!(
            measured.role(role),
            predicted.role(role),
            "{} {role:?}\nmeasured:\n{measured}\npredicted:\n{predicted}",
            P::name()
        );
    }
    assert!(measured.role(MemoryRole::SavedActivations) > 0);
    // A failing update leaves every parameter as it was.
    let before: Vec<Vec<f32>> = m.iter().map(|(_, t)| t.to_f32_vec()).collect();
    let r = m.apply(&grads, |i, w, g| {
        if i == 0 {
            w.sub(g).map_err(Into::into)
        } else {
            w.sub(&Tensor::zeros(&[3])).map_err(Into::into)
        }
    });
    assert!(r.is_err());
    let after: Vec<Vec<f32>> = m.iter().map(|(_, t)| t.to_f32_vec()).collect();
    assert_eq!(before, after, "no half-updated weights");
    m.apply(&grads, |_, w, g| {
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
    check::<Fp32>();
    check::<Bf16Mixed>();
    check::<F16Mixed>();
    check::<Fp8Hybrid>();
}

#[test]
fn classic_formulas() {
    let p = 1000;
    assert_eq!(
        predict_memory::<Fp32>(p, 0, OptimizerKind::Adam).total(),
        16 * p,
        "FP32 + Adam: 16P"
    );
    assert_eq!(
        predict_memory::<Bf16Mixed>(p, 0, OptimizerKind::Adam).total(),
        18 * p,
        "BF16 mixed + Adam: 18P"
    );
    assert_eq!(
        predict_memory::<Fp8Hybrid>(p, 0, OptimizerKind::Adam).total(),
        17 * p,
        "FP8 + Adam: 17P"
    );
    assert_eq!(
        predict_memory::<Bf16Mixed>(p, 500, OptimizerKind::Sgd).role(MemoryRole::SavedActivations),
        1000,
        "500 BF16 activations"
    );
}
