//! FP8 GEMMs with Transformer Engine's delayed scaling wired through `Autocast`: the scale
//! a step quantises with comes from the amax history of earlier steps, E4M3 for the
//! forward operands and E5M2 for the gradient, saturation is counted, unused GEMMs keep
//! their history, and the gradients stay close to F32's.

use mixprec_amp::{
    AmaxCompute, Autocast, DelayedScalingConfig, Fp8Hybrid, Fp8Recipe, Fp8Role, Fp8Scaling, Fp32,
    NumericsMonitor, StepStats,
};
use mixprec_autograd::Tape;
use mixprec_dtype::{Bf16, Dtype, E4M3, E5M2, F32};
use mixprec_tensor::{Rng, Tensor};

fn recipe(len: usize) -> Fp8Recipe {
    Fp8Recipe::Delayed(DelayedScalingConfig {
        margin: 0,
        history_len: len,
        amax_compute: AmaxCompute::Max,
    })
}

/// One step of `sum(x @ w^T * seed)` (the seed sets the output gradient) under delayed
/// scaling; returns the gradient of `w`.
fn step(fp8: &Fp8Scaling, x: &Tensor<F32>, w: &Tensor<F32>, seed: f32) -> Tensor<F32> {
    let tape = Tape::new();
    let ac = Autocast::<Fp8Hybrid>::with_fp8(&tape, fp8);
    let wv = tape.leaf(w.clone());
    let y = ac.linear(&tape.constant(x.clone()), &wv, None).unwrap();
    let loss = y.cast::<F32>().mul_scalar(f64::from(seed)).sum_all();
    loss.backward().unwrap().get(&wv).unwrap().clone()
}

#[test]
fn delayed_scales_come_from_earlier_steps() {
    let fp8 = Fp8Scaling::new(recipe(4));
    let x = Tensor::<F32>::from_f32(&[1.0, -2.0, 0.5, 4.0], &[2, 2]).unwrap();
    let w = Tensor::<F32>::from_f32(&[0.25, -0.5, 1.0, 0.125], &[2, 2]).unwrap();

    // Step 1: every scale starts at 1 (TE's initial scale).
    step(&fp8, &x, &w, 1e-3);
    let s1 = fp8.update();
    assert_eq!(s1.len(), 3, "input, weight, gradient of one GEMM");
    for t in &s1 {
        assert_eq!(t.scale, 1.0, "{t:?}");
    }
    let amax = |role| s1.iter().find(|t| t.role == role).unwrap().amax;
    assert_eq!(amax(Fp8Role::Input), 4.0);
    assert_eq!(amax(Fp8Role::Weight), 1.0);
    // d(loss)/dy = seed everywhere, rounded to the BF16 activation precision.
    let seed = Bf16::from_f32(1e-3).to_f32();
    assert_eq!(amax(Fp8Role::Grad), seed);
    // Gradient 1e-3 with scale 1 in E5M2 (min subnormal 2^-16 ~ 1.5e-5) is representable.
    assert_eq!(s1.iter().map(|t| t.underflowed).sum::<usize>(), 0);

    // The next step's scales: fp8_max / amax (E4M3 448, E5M2 57344).
    assert_eq!(fp8.scale(0, Fp8Role::Input), Some(448.0 / 4.0));
    assert_eq!(fp8.scale(0, Fp8Role::Weight), Some(448.0));
    let g_scale = (f64::from(E5M2::MAX.to_f32()) / f64::from(seed)) as f32;
    assert_eq!(fp8.scale(0, Fp8Role::Grad), Some(g_scale));
    assert_eq!(
        fp8.history(0, Fp8Role::Input).unwrap(),
        vec![0.0, 0.0, 0.0, 4.0]
    );

    // Step 2 quantises with those scales.
    step(&fp8, &x, &w, 1e-3);
    let s2 = fp8.update();
    let scale = |role| s2.iter().find(|t| t.role == role).unwrap().scale;
    assert_eq!(scale(Fp8Role::Input), 112.0);
    assert_eq!(scale(Fp8Role::Weight), 448.0);
    assert_eq!(scale(Fp8Role::Grad), g_scale);
}

#[test]
fn saturation_is_counted_and_a_larger_amax_lowers_the_scale() {
    let fp8 = Fp8Scaling::new(recipe(2));
    let w = Tensor::<F32>::from_f32(&[1.0, 1.0], &[1, 2]).unwrap();
    let small = Tensor::<F32>::from_f32(&[1.0, 2.0], &[1, 2]).unwrap();
    let large = Tensor::<F32>::from_f32(&[1000.0, 2.0], &[1, 2]).unwrap();
    step(&fp8, &small, &w, 1.0);
    fp8.update();
    assert_eq!(fp8.scale(0, Fp8Role::Input), Some(224.0));
    // 1000 * 224 is far above 448: saturates (not inf/NaN).
    let g = step(&fp8, &large, &w, 1.0);
    assert!(g.to_f32_vec().iter().all(|v| v.is_finite()));
    let s = fp8.update();
    let input = s.iter().find(|t| t.role == Fp8Role::Input).unwrap();
    assert_eq!(input.saturated, 1);
    assert_eq!(input.amax, 1000.0);
    assert_eq!(fp8.scale(0, Fp8Role::Input), Some(0.448));
}

#[test]
fn a_gemm_unused_in_a_step_keeps_its_history_and_scale() {
    let fp8 = Fp8Scaling::new(recipe(3));
    let x = Tensor::<F32>::from_f32(&[2.0, 1.0], &[1, 2]).unwrap();
    let w = Tensor::<F32>::from_f32(&[1.0, 1.0], &[1, 2]).unwrap();
    // Step 1: two GEMMs.
    let tape = Tape::new();
    let ac = Autocast::<Fp8Hybrid>::with_fp8(&tape, &fp8);
    let wv = tape.leaf(w.clone());
    let xv = tape.constant(x.clone());
    let y = ac.linear(&xv, &wv, None).unwrap();
    let z = ac.linear(&xv.mul_scalar(4.0), &wv, None).unwrap();
    y.add(&z)
        .unwrap()
        .cast::<F32>()
        .sum_all()
        .backward()
        .unwrap();
    fp8.update();
    assert_eq!(fp8.gemms(), 2);
    let before = (fp8.history(1, Fp8Role::Input), fp8.scale(1, Fp8Role::Input));
    assert_eq!(before.1, Some(56.0), "448 / 8");
    // Step 2: only the first GEMM runs.
    step(&fp8, &x, &w, 1.0);
    fp8.update();
    assert_eq!(
        (fp8.history(1, Fp8Role::Input), fp8.scale(1, Fp8Role::Input)),
        before
    );
    assert_eq!(
        fp8.history(0, Fp8Role::Input).unwrap(),
        vec![0.0, 2.0, 2.0],
        "the used GEMM rolled"
    );
}

#[test]
fn current_recipe_uses_power_of_two_scales_from_the_tensor_itself() {
    let fp8 = Fp8Scaling::new(Fp8Recipe::Current);
    let x = Tensor::<F32>::from_f32(&[3.0, -1.0], &[1, 2]).unwrap();
    let w = Tensor::<F32>::from_f32(&[0.5, 0.25], &[1, 2]).unwrap();
    step(&fp8, &x, &w, 1.0);
    let s = fp8.update();
    let scale = |role| s.iter().find(|t| t.role == role).unwrap().scale;
    assert_eq!(
        scale(Fp8Role::Input),
        128.0,
        "largest 2^k with 3 * 2^k <= 448"
    );
    assert_eq!(
        scale(Fp8Role::Weight),
        512.0,
        "0.5 * 2^9 = 256 <= 448 < 512"
    );
    assert_eq!(scale(Fp8Role::Grad), 32768.0, "1 * 2^15 <= 57344");
    assert_eq!(fp8.nbytes(), 3 * 4, "one f32 scale per tensor, no history");
}

#[test]
fn delayed_fp8_gradients_track_f32_and_feed_the_monitor() {
    let mut rng = Rng::seed(11);
    let x = Tensor::<F32>::randn(&[32, 64], 0.0, 1.0, &mut rng).unwrap();
    let w = Tensor::<F32>::randn(&[16, 64], 0.0, 0.1, &mut rng).unwrap();
    let reference = {
        let tape = Tape::new();
        let ac = Autocast::<Fp32>::new(&tape);
        let wv = tape.leaf(w.clone());
        let y = ac.linear(&tape.constant(x.clone()), &wv, None).unwrap();
        let loss = y.mul(&y).unwrap().sum_all();
        loss.backward().unwrap().get(&wv).unwrap().clone()
    };
    let fp8 = Fp8Scaling::default();
    let mut monitor = NumericsMonitor::new(Default::default());
    let mut last = None;
    for i in 0..3 {
        let tape = Tape::new();
        let ac = Autocast::<Fp8Hybrid>::with_fp8(&tape, &fp8);
        let wv = tape.leaf(w.clone());
        let y = ac.linear(&tape.constant(x.clone()), &wv, None).unwrap();
        let y = y.cast::<F32>();
        let loss = y.mul(&y).unwrap().sum_all();
        let g = loss.backward().unwrap().get(&wv).unwrap().clone();
        let stats = StepStats::from_tape(i, 1.0, 1.0, None, false, &tape).with_fp8(fp8.update());
        monitor.record(stats);
        last = Some(g);
    }
    assert_eq!(monitor.fp8().len(), 3);
    assert!(monitor.fp8().iter().all(|t| t.scale > 1.0 && t.amax > 0.0));
    // E4M3 operands (3 significant bits, relative step 2^-3 at worst, 2^-4 on average)
    // and an E5M2 gradient (2^-2 worst): the summed gradient's relative L2 error stays
    // within a few times E5M2's unit roundoff 2^-3 = 0.125 over the K=32 reduction.
    let g = last.unwrap();
    let diff = g.sub(&reference).unwrap().norm_l2() / reference.norm_l2();
    assert!(diff < 0.125, "relative error {diff}");
    assert!(E4M3::MAX.to_f32() == 448.0);
}

/// A state saved between steps and loaded into a fresh `Fp8Scaling` quantises the next
/// steps exactly as the original: same gradients, scales and histories, bit for bit.
#[test]
fn saved_tensor_states_resume_exactly() {
    let mut rng = Rng::seed(7);
    let x = Tensor::<F32>::randn(&[3, 4], 0.0, 2.0, &mut rng).unwrap();
    let w = Tensor::<F32>::randn(&[2, 4], 0.0, 1.0, &mut rng).unwrap();
    let original = Fp8Scaling::new(recipe(3));
    for seed in [1e-3, 2.0, 0.5] {
        step(&original, &x, &w, seed);
        original.update();
    }
    let saved = original.tensor_states();
    assert_eq!(saved.len(), 3);
    assert_eq!(saved[2].fp8_max, E5M2::MAX.to_f32(), "gradients are E5M2");
    assert_eq!(saved[0].fp8_max, E4M3::MAX.to_f32(), "inputs are E4M3");
    let resumed = Fp8Scaling::new(recipe(3));
    resumed.load_tensor_states(&saved).unwrap();
    assert_eq!(resumed.tensor_states(), saved);
    for seed in [4.0, 1e-2] {
        let a = step(&original, &x, &w, seed);
        let b = step(&resumed, &x, &w, seed);
        assert_eq!(a.to_f32_vec(), b.to_f32_vec(), "same gradient bits");
        assert_eq!(original.update(), resumed.update());
    }
    assert_eq!(resumed.tensor_states(), original.tensor_states());
}

/// Bad saved states are refused, naming the tensor, and change nothing.
#[test]
fn bad_tensor_states_are_refused_and_change_nothing() {
    let x = Tensor::<F32>::from_f32(&[1.0, -2.0], &[1, 2]).unwrap();
    let w = Tensor::<F32>::from_f32(&[0.25, -0.5], &[1, 2]).unwrap();
    let fp8 = Fp8Scaling::new(recipe(2));
    step(&fp8, &x, &w, 1.0);
    fp8.update();
    let good = fp8.tensor_states();
    let broken = |f: &dyn Fn(&mut Vec<mixprec_amp::Fp8TensorState>)| {
        let mut s = good.clone();
        f(&mut s);
        s
    };
    let cases = [
        (broken(&|s| s[0].amax_history.push(0.0)), "history of 2"),
        (broken(&|s| s[1].scale = f32::NAN), "GEMM 0 weight"),
        (broken(&|s| s[1].scale = 0.0), "scale 0"),
        (broken(&|s| s[2].fp8_max = f32::INFINITY), "maximum inf"),
        (broken(&|s| s[2].role = Fp8Role::Input), "given twice"),
        (broken(&|s| s[0].gemm = 1 << 40), "out of range"),
    ];
    for (states, want) in cases {
        let err = fp8.load_tensor_states(&states).unwrap_err().to_string();
        assert!(
            err.contains(want) && err.contains("load_tensor_states"),
            "{err}"
        );
        assert_eq!(fp8.tensor_states(), good, "unchanged after {err}");
    }
}

/// Data-parallel ranks reduce the staging amaxes before the update: recording a larger
/// amax from another rank sets the next scale from it; a smaller one changes nothing; a
/// NaN sticks; a wrong count records nothing.
#[test]
fn staging_amaxes_from_other_ranks_set_the_next_scales() {
    let x = Tensor::<F32>::from_f32(&[1.0, -2.0, 0.5, 4.0], &[2, 2]).unwrap();
    let w = Tensor::<F32>::from_f32(&[0.25, -0.5, 1.0, 0.125], &[2, 2]).unwrap();
    let fp8 = Fp8Scaling::new(recipe(4));
    step(&fp8, &x, &w, 1e-3);
    let local = fp8.staging_amaxes();
    assert_eq!(local.len(), 3, "input, weight, gradient");
    assert_eq!(&local[..2], &[4.0, 1.0]);
    let e = fp8.record_staging_amaxes(&[8.0]).unwrap_err();
    assert!(e.to_string().contains("1 amaxes for 3 tensors"), "{e}");
    assert_eq!(fp8.staging_amaxes(), local, "nothing recorded");
    // Another rank saw 8 as the input's amax and less for the rest.
    fp8.record_staging_amaxes(&[8.0, 0.5, 0.0]).unwrap();
    assert_eq!(fp8.staging_amaxes(), vec![8.0, 1.0, local[2]]);
    fp8.update();
    assert_eq!(fp8.scale(0, Fp8Role::Input), Some(448.0 / 8.0));
    assert_eq!(fp8.scale(0, Fp8Role::Weight), Some(448.0));
    step(&fp8, &x, &w, 1e-3);
    fp8.record_staging_amaxes(&[f32::NAN, 0.0, 0.0]).unwrap();
    assert!(fp8.staging_amaxes()[0].is_nan());
}
