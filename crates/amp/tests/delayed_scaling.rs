//! Delayed scaling against Transformer Engine's rules, with amax sequences and the
//! expected scales and histories written out by hand.

use mixprec_amp::{AmaxCompute, DelayedScaling, DelayedScalingConfig};
use mixprec_dtype::{E4M3, E5M2};

fn cfg(len: usize, margin: i32, algo: AmaxCompute) -> DelayedScalingConfig {
    DelayedScalingConfig {
        margin,
        history_len: len,
        amax_compute: algo,
    }
}

#[test]
fn defaults_are_te() {
    let c = DelayedScalingConfig::default();
    assert_eq!(
        (c.margin, c.history_len, c.amax_compute),
        (0, 1024, AmaxCompute::Max)
    );
    let d = DelayedScaling::new::<E4M3>(c);
    assert_eq!(d.scale(), 1.0);
    assert!(d.history().iter().all(|&v| v == 0.0));
}

#[test]
fn max_over_the_window_and_the_roll() {
    let mut d = DelayedScaling::new::<E4M3>(cfg(3, 0, AmaxCompute::Max));
    // (amax recorded, expected scale after update, expected history after update)
    let script: [(f32, f32, [f32; 3]); 5] = [
        (2.0, 224.0, [0.0, 0.0, 2.0]),
        (4.0, 112.0, [0.0, 2.0, 4.0]),
        (1.0, 112.0, [0.0, 4.0, 1.0]),
        (0.5, 112.0, [0.0, 1.0, 0.5]),
        (0.25, 448.0, [0.0, 0.5, 0.25]),
    ];
    for (amax, scale, history) in script {
        d.record_amax(amax);
        d.update();
        assert_eq!(d.scale(), scale, "after amax {amax}");
        assert_eq!(d.history(), &history, "after amax {amax}");
    }
}

#[test]
fn most_recent_margin_and_e5m2() {
    let mut d = DelayedScaling::new::<E5M2>(cfg(4, 1, AmaxCompute::MostRecent));
    d.record_amax(100.0);
    d.update();
    assert_eq!(d.scale(), 57344.0 / 100.0 / 2.0);
    d.record_amax(1.0);
    d.update();
    assert_eq!(
        d.scale(),
        28672.0,
        "most recent amax 1, not the window's 100"
    );
}

#[test]
fn unused_step_zero_nan_and_overflow_cases() {
    let mut d = DelayedScaling::new::<E4M3>(cfg(3, 0, AmaxCompute::Max));
    d.record_amax(8.0);
    d.update();
    assert_eq!(d.scale(), 56.0);
    let before = d.clone();
    d.update(); // tensor not used this step: history and scale stay
    assert_eq!(d, before);
    d.record_amax(f32::NAN);
    d.update();
    assert_eq!(d.scale(), 56.0, "NaN amax keeps the previous scale");
    assert!(d.history()[2].is_nan(), "and enters the history, as in TE");
    let mut t = DelayedScaling::new::<E4M3>(cfg(1, 0, AmaxCompute::Max));
    t.record_amax(1e-45);
    t.update();
    assert_eq!(t.scale(), f32::MAX, "448 / 1e-45 overflows: FLT_MAX");
    t.record_amax(f32::INFINITY);
    t.update();
    assert_eq!(t.scale(), f32::MAX, "inf amax keeps the previous scale");
    let mut z = DelayedScaling::new::<E4M3>(cfg(2, 0, AmaxCompute::Max));
    z.record_amax(-3.0);
    z.update();
    assert_eq!(z.scale(), 448.0 / 3.0 * 1.0, "amax is a magnitude");
}
