//! Properties of the scalers over random settings and random step sequences whose
//! generators reach the hard values (inf, NaN, zero, subnormal and near-overflow amaxes).

use mixprec_amp::{
    AmaxCompute, DelayedScaling, DelayedScalingConfig, GradScaler, GradScalerConfig,
};
use mixprec_dtype::{Dtype, E4M3, E5M2};
use proptest::prelude::*;

fn scaler_config() -> impl Strategy<Value = GradScalerConfig> {
    (
        -100i32..100,
        1.01f64..8.0,
        0.01f64..0.99,
        1u32..6,
        1u32..4,
        proptest::option::of(-60i32..0),
        proptest::option::of(0i32..60),
    )
        .prop_map(
            |(e, growth, backoff, interval, hyst, lo, hi)| GradScalerConfig {
                // Within [min_scale, max_scale]: the scaler refuses anything else.
                init_scale: 2f32.powi(e.clamp(lo.unwrap_or(-126), hi.unwrap_or(127))),
                growth_factor: growth,
                backoff_factor: backoff,
                growth_interval: interval,
                min_scale: lo.map(|k| 2f32.powi(k)),
                max_scale: hi.map(|k| 2f32.powi(k)),
                hysteresis: hyst,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the settings and the sequence of clean and overflowing steps, the scale
    /// stays finite and at least the smallest normal f32 (PyTorch's reaches 0), never
    /// goes below `min_scale`, and never grows past `max_scale`.
    #[test]
    fn loss_scale_stays_finite_normal_and_within_limits(
        cfg in scaler_config(),
        steps in proptest::collection::vec(any::<bool>(), 1..400),
    ) {
        let mut s = GradScaler::new(cfg).unwrap();
        for (i, finite) in steps.into_iter().enumerate() {
            let before = s.scale();
            // Drive the public API with a one-element gradient.
            let tape = mixprec_autograd::Tape::new();
            let w = tape.leaf(mixprec_tensor::Tensor::<mixprec_dtype::F32>::ones(&[1]));
            let x = if finite { 1.0 } else { f32::INFINITY };
            let loss = w.mul_scalar(f64::from(x)).sum_all();
            let grads = s.unscale(s.backward(&loss).unwrap(), &[&w]);
            s.step(&grads, |_| {});
            s.update();
            let after = s.scale();
            prop_assert!(after.is_finite() && after >= f32::MIN_POSITIVE, "step {i}: {after}");
            if let Some(lo) = cfg.min_scale {
                prop_assert!(after >= lo.min(before), "step {i}: {after} < min {lo}");
            }
            if let Some(hi) = cfg.max_scale && after > before {
                prop_assert!(after <= hi, "step {i}: grew to {after} > max {hi}");
            }
        }
    }
}

fn amax() -> impl Strategy<Value = f32> {
    prop_oneof![
        Just(0.0f32),
        Just(f32::NAN),
        Just(f32::INFINITY),
        Just(f32::MAX),
        Just(f32::from_bits(1)), // smallest subnormal: 448 / amax overflows
        Just(f32::MIN_POSITIVE),
        (-40i32..40).prop_map(|e| 2f32.powi(e)),
        1e-30f32..1e30,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Delayed scaling's scale is always finite and positive, equals
    /// `fp8_max / amax / 2^margin` (rounded once) for the window's amax when that amax is
    /// finite and positive with a finite quotient, and is kept otherwise.
    #[test]
    fn delayed_scale_is_finite_positive_and_follows_the_window(
        amaxes in proptest::collection::vec(amax(), 1..60),
        len in 1usize..8,
        margin in 0i32..3,
        most_recent in any::<bool>(),
        e5m2 in any::<bool>(),
    ) {
        let cfg = DelayedScalingConfig {
            margin,
            history_len: len,
            amax_compute: if most_recent { AmaxCompute::MostRecent } else { AmaxCompute::Max },
        };
        let (mut d, max) = if e5m2 {
            (DelayedScaling::new::<E5M2>(cfg), E5M2::MAX.to_f32())
        } else {
            (DelayedScaling::new::<E4M3>(cfg), E4M3::MAX.to_f32())
        };
        for a in amaxes {
            let before = d.scale();
            let window_before: Vec<f32> = d.history()[1..].to_vec();
            d.record_amax(a);
            d.update();
            let s = d.scale();
            prop_assert!(s.is_finite() && s > 0.0, "{s}");
            if a == 0.0 {
                prop_assert_eq!(s, before, "unused step keeps the scale");
                continue;
            }
            let used = if most_recent {
                a
            } else {
                window_before.iter().copied().chain([a]).fold(0.0f32, |m, v| {
                    if v.is_nan() || m.is_nan() { f32::NAN } else { m.max(v) }
                })
            };
            if used.is_finite() && used > 0.0 {
                let q = (f64::from(max) / 2f64.powi(margin) / f64::from(used)) as f32;
                prop_assert_eq!(s, if q.is_finite() { q } else { f32::MAX });
            } else {
                prop_assert_eq!(s, before, "non-finite amax keeps the scale");
            }
        }
    }
}
