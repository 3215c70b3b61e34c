//! GradScaler against PyTorch's algorithm (trajectories written out by hand), the
//! skip-step guarantee, the never-zero scale, hysteresis, limits, checkpoints, clipping.

use mixprec_amp::{
    GradAccumulator, GradScaler, GradScalerConfig, GradScalerState, MasterWeights, StepOutcome,
    UnscaledGrads, clip_grad_norm, clip_grad_value,
};
use mixprec_autograd::Tape;
use mixprec_dtype::F32;
use mixprec_tensor::Tensor;

fn cfg(init: f32, interval: u32) -> GradScalerConfig {
    GradScalerConfig {
        init_scale: init,
        growth_interval: interval,
        ..GradScalerConfig::default()
    }
}

/// Runs one step whose gradients are finite or not, through the public API.
fn step(scaler: &mut GradScaler, finite: bool) -> StepOutcome {
    let tape = Tape::new();
    let w = tape.leaf(Tensor::<F32>::from_f32(&[1.0, 2.0], &[2]).unwrap());
    let x = tape.constant(
        Tensor::<F32>::from_f32(&[if finite { 0.5 } else { f32::INFINITY }, 0.25], &[2]).unwrap(),
    );
    let loss = w.mul(&x).unwrap().sum_all();
    let scaled = scaler.backward(&loss).unwrap();
    let grads = scaler.unscale(scaled, &[&w]);
    let outcome = scaler.step(&grads, |_| {});
    scaler.update();
    outcome
}

#[test]
fn defaults_are_pytorchs() {
    let c = GradScalerConfig::default();
    assert_eq!(
        (
            c.init_scale,
            c.growth_factor,
            c.backoff_factor,
            c.growth_interval,
            c.hysteresis
        ),
        (65536.0, 2.0, 0.5, 2000, 1)
    );
}

#[test]
fn scripted_trajectory_matches_pytorchs_update_rule() {
    // interval 3, init 8. PyTorch's _amp_update_scale_: inf -> scale * 0.5, tracker 0;
    // clean -> tracker + 1, and at 3 -> scale * 2, tracker 0.
    let mut s = GradScaler::new(cfg(8.0, 3)).unwrap();
    let script = [
        true, true, true, false, true, true, true, true, false, false,
    ];
    let expected = [8.0, 8.0, 16.0, 8.0, 8.0, 8.0, 16.0, 16.0, 8.0, 4.0];
    let outcomes: Vec<StepOutcome> = script.iter().map(|&f| step(&mut s, f)).collect();
    let mut got = Vec::new();
    let mut s2 = GradScaler::new(cfg(8.0, 3)).unwrap();
    for &f in &script {
        step(&mut s2, f);
        got.push(s2.scale());
    }
    assert_eq!(got, expected);
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == StepOutcome::Skipped)
            .count(),
        3
    );
    assert_eq!(s.skipped_steps(), 3);
}

#[test]
fn growth_to_infinity_is_refused() {
    let mut s = GradScaler::new(cfg(2f32.powi(127), 1)).unwrap();
    step(&mut s, true);
    assert_eq!(
        s.scale(),
        2f32.powi(127),
        "2^128 is not finite: keep the scale"
    );
}

#[test]
fn nan_gradient_skips_the_step_and_changes_nothing() {
    let mut s = GradScaler::new(GradScalerConfig::default()).unwrap();
    let weights = Tensor::<F32>::from_f32(&[0.1, -0.2, 0.3], &[3]).unwrap();
    let before: Vec<u32> = weights.to_f32_vec().iter().map(|v| v.to_bits()).collect();
    let tape = Tape::new();
    let w = tape.leaf(weights.clone());
    let x = tape.constant(Tensor::<F32>::from_f32(&[1.0, f32::NAN, 1.0], &[3]).unwrap());
    let loss = w.mul(&x).unwrap().sum_all();
    let grads = s.unscale(s.backward(&loss).unwrap(), &[&w]);
    assert!(grads.found_inf());
    let mut updated = weights.clone();
    let outcome = s.step(&grads, |g| {
        updated = updated.sub(g.get(0).unwrap()).unwrap()
    });
    assert_eq!(outcome, StepOutcome::Skipped);
    let after: Vec<u32> = updated.to_f32_vec().iter().map(|v| v.to_bits()).collect();
    assert_eq!(before, after, "weights bit-for-bit unchanged");
    s.update();
    assert_eq!(s.scale(), 32768.0);
}

#[test]
fn scale_never_reaches_zero_or_a_subnormal() {
    // PyTorch: 65536 * 0.5^k reaches exactly 0 at k = 166 (below 2^-149 / 2), and the
    // next clean step multiplies every gradient by 1/0 = inf, writing NaN.
    let mut s = GradScaler::new(GradScalerConfig::default()).unwrap();
    for _ in 0..300 {
        step(&mut s, false);
    }
    assert_eq!(s.scale(), f32::MIN_POSITIVE);
    let tape = Tape::new();
    let w = tape.leaf(Tensor::<F32>::from_f32(&[1.0], &[1]).unwrap());
    let loss = w.mul_scalar(3.0).sum_all();
    let grads = s.unscale(s.backward(&loss).unwrap(), &[&w]);
    assert!(!grads.found_inf());
    assert_eq!(
        grads.get(0).unwrap().to_f32_vec(),
        vec![3.0],
        "a clean step unscales to finite values"
    );
}

#[test]
fn min_max_and_hysteresis() {
    let mut s = GradScaler::new(GradScalerConfig {
        init_scale: 8.0,
        growth_interval: 1,
        max_scale: Some(32.0),
        min_scale: Some(2.0),
        hysteresis: 2,
        ..Default::default()
    })
    .unwrap();
    step(&mut s, true);
    step(&mut s, true);
    step(&mut s, true);
    assert_eq!(s.scale(), 32.0, "clamped at max");
    step(&mut s, false);
    assert_eq!(s.scale(), 32.0, "first overflow tolerated (hysteresis 2)");
    step(&mut s, false);
    assert_eq!(s.scale(), 16.0);
    step(&mut s, false);
    assert_eq!(s.scale(), 8.0, "hysteresis is only refilled by growth");
    for _ in 0..5 {
        step(&mut s, false);
    }
    assert_eq!(s.scale(), 2.0, "clamped at min");
}

#[test]
fn state_round_trips_and_bad_state_changes_nothing() {
    let mut s = GradScaler::new(cfg(1024.0, 10)).unwrap();
    step(&mut s, true);
    step(&mut s, false);
    step(&mut s, true);
    let saved = s.state();
    // Hysteresis 1: the overflow used up the allowance; only growth refills it.
    assert_eq!(
        saved,
        GradScalerState {
            config: cfg(1024.0, 10),
            scale: 512.0,
            growth_tracker: 1,
            hysteresis_tracker: 0
        }
    );
    let mut t = GradScaler::new(cfg(1024.0, 10)).unwrap();
    t.load_state(saved).unwrap();
    assert_eq!(t.state(), saved);
    let bad = GradScalerState {
        scale: f32::NAN,
        ..saved
    };
    assert!(t.load_state(bad).is_err());
    assert_eq!(t.state(), saved);
    assert!(
        t.load_state(GradScalerState {
            growth_tracker: 10,
            ..saved
        })
        .is_err()
    );
    // The settings travel with the state: a default-built scaler (interval 2000) refuses
    // it instead of silently continuing under other settings; from_state takes them.
    let mut default_built = GradScaler::new(GradScalerConfig::default()).unwrap();
    let before = default_built.state();
    let e = default_built.load_state(saved).unwrap_err().to_string();
    assert!(e.contains("from_state"), "{e}");
    assert_eq!(default_built.state(), before);
    let resumed = GradScaler::from_state(saved).unwrap();
    assert_eq!(resumed.state(), saved);
    assert_eq!(resumed.config().growth_interval, 10);
}

#[test]
fn bad_configs_are_refused() {
    for c in [
        GradScalerConfig {
            init_scale: 0.0,
            ..Default::default()
        },
        GradScalerConfig {
            growth_factor: 1.0,
            ..Default::default()
        },
        GradScalerConfig {
            backoff_factor: 1.0,
            ..Default::default()
        },
        GradScalerConfig {
            growth_interval: 0,
            ..Default::default()
        },
        GradScalerConfig {
            hysteresis: 0,
            ..Default::default()
        },
        GradScalerConfig {
            min_scale: Some(4.0),
            max_scale: Some(2.0),
            ..Default::default()
        },
        // An initial scale below the floor: the first back-off would have *raised* it.
        GradScalerConfig {
            init_scale: 1.0,
            min_scale: Some(8.0),
            ..Default::default()
        },
        GradScalerConfig {
            init_scale: 1024.0,
            max_scale: Some(256.0),
            ..Default::default()
        },
        GradScalerConfig {
            min_scale: Some(f32::NAN),
            ..Default::default()
        },
        GradScalerConfig {
            growth_factor: f64::NAN,
            ..Default::default()
        },
    ] {
        let e = GradScaler::new(c).unwrap_err();
        assert!(e.to_string().starts_with("GradScaler:"), "{e}");
    }
}

#[test]
fn unscale_uses_the_f64_reciprocal_and_clipping_works() {
    let mut s = GradScaler::new(cfg(3.0, 2000)).unwrap();
    let tape = Tape::new();
    let w = tape.leaf(Tensor::<F32>::from_f32(&[0.0, 0.0], &[2]).unwrap());
    let x = tape.constant(Tensor::<F32>::from_f32(&[1.0, 7.0], &[2]).unwrap());
    let loss = w.mul(&x).unwrap().sum_all();
    let scaled = s.backward(&loss).unwrap();
    assert_eq!(scaled.scale(), 3.0);
    let mut g = s.unscale(scaled, &[&w]);
    let inv = (1.0f64 / 3.0) as f32;
    assert_eq!(g.get(0).unwrap().to_f32_vec(), vec![3.0 * inv, 21.0 * inv]);
    let norm = clip_grad_norm(&mut g, 1.0).unwrap();
    let want = ((3.0 * inv).powi(2) + (21.0 * inv).powi(2)).sqrt();
    assert!((norm - want).abs() <= want * 1e-6, "{norm} vs {want}");
    let clipped = g.get(0).unwrap().to_f32_vec();
    let new_norm = (clipped[0].powi(2) + clipped[1].powi(2)).sqrt();
    assert!((new_norm - 1.0).abs() < 1e-5, "{new_norm}");
    clip_grad_value(&mut g, 0.5).unwrap();
    assert!(
        g.get(0)
            .unwrap()
            .to_f32_vec()
            .iter()
            .all(|v| v.abs() <= 0.5)
    );
}

/// Mean-squared error of a linear model on rows `rows` of a fixed batch of 8.
fn micro_batch_loss(
    tape: &Tape,
    w: &mixprec_autograd::Var<F32>,
    rows: std::ops::Range<usize>,
) -> mixprec_autograd::Var<F32> {
    let xs: Vec<f32> = (0..16).map(|i| (i as f32 * 0.37).sin()).collect();
    let ys: Vec<f32> = (0..8).map(|i| (i as f32 * 0.11).cos()).collect();
    let n = rows.len();
    let x = Tensor::<F32>::from_f32(&xs[rows.start * 2..rows.end * 2], &[n, 2]).unwrap();
    let y = Tensor::<F32>::from_f32(&ys[rows.clone()], &[n, 1]).unwrap();
    let pred = tape.constant(x).matmul(w).unwrap();
    let err = pred.sub(&tape.constant(y)).unwrap();
    err.mul(&err).unwrap().mean_all().unwrap()
}

#[test]
fn accumulation_unscales_once_and_matches_the_full_batch() {
    let w0 = Tensor::<F32>::from_f32(&[0.3, -0.2], &[2, 1]).unwrap();
    let full = {
        let tape = Tape::new();
        let w = tape.leaf(w0.clone());
        let g = micro_batch_loss(&tape, &w, 0..8).backward().unwrap();
        g.get(&w).unwrap().to_f32_vec()
    };
    let mut scaler = GradScaler::new(cfg(1024.0, 2000)).unwrap();
    let mut acc = GradAccumulator::new();
    for k in 0..4 {
        let tape = Tape::new();
        let w = tape.leaf(w0.clone());
        let scaled = scaler
            .backward(&micro_batch_loss(&tape, &w, 2 * k..2 * k + 2))
            .unwrap();
        acc.add_scaled(&scaled, &[&w]).unwrap();
    }
    assert_eq!(acc.micro_batches(), 4);
    let grads = scaler.unscale_accumulated(acc).unwrap();
    let got = grads.get(0).unwrap().to_f32_vec();
    // Power-of-two scale and count: the only differences are the f32 roundings of the
    // partial sums, a few ulps of values near 1.
    for (g, f) in got.iter().zip(&full) {
        assert!(
            (g - f).abs() <= 4.0 * f32::EPSILON * f.abs().max(1.0),
            "{g} vs {f}"
        );
    }
    assert_eq!(scaler.step(&grads, |_| {}), StepOutcome::Stepped);
    scaler.update();

    // A scale change inside the effective batch is refused; so is mixing kinds.
    let mut acc = GradAccumulator::new();
    let tape = Tape::new();
    let w = tape.leaf(w0.clone());
    let a = scaler.backward(&micro_batch_loss(&tape, &w, 0..2)).unwrap();
    acc.add_scaled(&a, &[&w]).unwrap();
    let other = GradScaler::new(cfg(8.0, 2000)).unwrap();
    let tape = Tape::new();
    let w = tape.leaf(w0.clone());
    let b = other.backward(&micro_batch_loss(&tape, &w, 2..4)).unwrap();
    let e = acc.add_scaled(&b, &[&w]).unwrap_err();
    assert!(e.to_string().contains("loss scale changed"), "{e}");
    assert_eq!(
        acc.micro_batches(),
        1,
        "the refused micro-batch added nothing"
    );
    let plain = micro_batch_loss(&tape, &w, 4..6).backward();
    assert!(acc.add(&plain.unwrap(), &[&w]).is_err());
    assert!(
        acc.clone().into_unscaled().is_err(),
        "scaled sums need the scaler"
    );

    // One non-finite micro-batch skips the whole effective batch and backs off once.
    let mut scaler = GradScaler::new(cfg(1024.0, 2000)).unwrap();
    let mut acc = GradAccumulator::new();
    for finite in [true, false, true] {
        let tape = Tape::new();
        let w = tape.leaf(w0.clone());
        let x = if finite { 1.0 } else { f32::INFINITY };
        let loss = w
            .mul(&tape.constant(Tensor::<F32>::from_f32(&[x, 1.0], &[2, 1]).unwrap()))
            .unwrap()
            .sum_all();
        acc.add_scaled(&scaler.backward(&loss).unwrap(), &[&w])
            .unwrap();
    }
    let grads = scaler.unscale_accumulated(acc).unwrap();
    assert_eq!(
        scaler.step(&grads, |_| panic!("must skip")),
        StepOutcome::Skipped
    );
    scaler.update();
    assert_eq!(scaler.scale(), 512.0);
}

/// A data-parallel mean replaces the present gradients and is checked for inf/NaN again;
/// a wrong count or shape changes nothing.
#[test]
fn replacing_present_gradients_rechecks_them() {
    let mut master = MasterWeights::new();
    master.add("w", Tensor::zeros(&[2]));
    master.add("unused", Tensor::zeros(&[3]));
    master.add("b", Tensor::zeros(&[1]));
    let w = Tensor::<F32>::from_f32(&[1.0, 2.0], &[2]).unwrap();
    let b = Tensor::<F32>::from_f32(&[3.0], &[1]).unwrap();
    let mut g = UnscaledGrads::from_named(&master, [("w", w), ("b", b)]).unwrap();
    assert_eq!(g.present().len(), 2);
    assert!(!g.found_inf());
    let big = Tensor::<F32>::from_f32(&[f32::INFINITY, 0.5], &[2]).unwrap();
    let b2 = Tensor::<F32>::from_f32(&[4.0], &[1]).unwrap();
    let e = g.replace_present(vec![big.clone()]).unwrap_err();
    assert!(e.to_string().contains("1 gradients for 2 present"), "{e}");
    let e = g
        .replace_present(vec![b2.clone(), big.clone()])
        .unwrap_err();
    assert!(e.to_string().contains("shape"), "{e}");
    assert_eq!(g.get(0).unwrap().to_f32_vec(), vec![1.0, 2.0], "unchanged");
    g.replace_present(vec![big, b2]).unwrap();
    assert!(g.get(1).is_none(), "absent gradients stay absent");
    assert_eq!(g.get(2).unwrap().to_f32_vec(), vec![4.0]);
    assert!(g.found_inf(), "the replacement is checked again");
}
