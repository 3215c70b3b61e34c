//! Optimizers against their update rules written out in f64 (PyTorch's formulas), atomic
//! steps, and the schedule.

use mixprec_amp::{MasterWeights, UnscaledGrads};
use mixprec_autograd::Tape;
use mixprec_dtype::F32;
use mixprec_nn::optim::{
    AdamW, AdamWConfig, AdamWParamState, Optimizer, Sgd, SgdConfig, WarmupCosine,
};
use mixprec_tensor::Tensor;

const P0: [f32; 4] = [0.5, -1.25, 2.0, 0.0];
const GRADS: [[f32; 4]; 3] = [
    [0.1, -0.2, 0.3, 1e-3],
    [-0.05, 0.4, 0.3, -2.0],
    [0.2, 0.0, -0.1, 0.5],
];

fn master() -> MasterWeights {
    let mut m = MasterWeights::new();
    m.add("w", Tensor::from_f32(&P0, &[2, 2]).unwrap());
    m
}

fn grads(g: &[f32]) -> UnscaledGrads {
    let g = Tensor::<F32>::from_f32(g, &[2, 2]).unwrap();
    UnscaledGrads::from_named(&master(), [("w", g)]).unwrap()
}

fn run(opt: &mut dyn Optimizer, lr: f64) -> Vec<f64> {
    let mut m = master();
    for g in GRADS {
        opt.step(&mut m, &grads(&g), lr).unwrap();
    }
    m.get(0).unwrap().to_f64_vec()
}

/// Rounding differences between the f32 implementation and the f64 formula: a few f32
/// ulps of values of order 1 per step.
fn close(got: &[f64], want: &[f64]) {
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{g} vs {w}");
    }
}

#[test]
fn adamw_follows_pytorchs_update() {
    let c = AdamWConfig::default();
    let lr = 0.01;
    let mut opt = AdamW::new(c).unwrap();
    let got = run(&mut opt, lr);
    let (b1, b2, eps, wd) = (0.9f64, 0.999f64, 1e-8f64, 0.01f64);
    let mut p: Vec<f64> = P0.iter().map(|&v| f64::from(v)).collect();
    let (mut m, mut v) = (vec![0.0; 4], vec![0.0; 4]);
    for (t, g) in GRADS.iter().enumerate() {
        let t = t as i32 + 1;
        for j in 0..4 {
            let gj = f64::from(g[j]);
            p[j] *= 1.0 - lr * wd;
            m[j] = b1 * m[j] + (1.0 - b1) * gj;
            v[j] = b2 * v[j] + (1.0 - b2) * gj * gj;
            let mhat = m[j] / (1.0 - b1.powi(t));
            let vhat = v[j] / (1.0 - b2.powi(t));
            p[j] -= lr * mhat / (vhat.sqrt() + eps);
        }
    }
    close(&got, &p);
    assert_eq!(
        opt.state_bytes(),
        2 * 4 * 4,
        "two F32 moments of 4 elements"
    );
}

#[test]
fn sgd_momentum_nesterov_and_weight_decay_follow_pytorch() {
    for nesterov in [false, true] {
        let c = SgdConfig {
            momentum: 0.9,
            dampening: if nesterov { 0.0 } else { 0.1 },
            weight_decay: 0.05,
            nesterov,
            maximize: false,
        };
        let lr = 0.1;
        let got = run(&mut Sgd::new(c).unwrap(), lr);
        let mut p: Vec<f64> = P0.iter().map(|&v| f64::from(v)).collect();
        let mut buf: Option<Vec<f64>> = None;
        for g in GRADS {
            let d: Vec<f64> = (0..4)
                .map(|j| f64::from(g[j]) + c.weight_decay * p[j])
                .collect();
            let b = match buf.take() {
                None => d.clone(),
                Some(b) => (0..4)
                    .map(|j| c.momentum * b[j] + (1.0 - c.dampening) * d[j])
                    .collect(),
            };
            for j in 0..4 {
                let step = if nesterov {
                    d[j] + c.momentum * b[j]
                } else {
                    b[j]
                };
                p[j] -= lr * step;
            }
            buf = Some(b);
        }
        close(&got, &p);
    }
}

#[test]
fn a_failed_step_changes_neither_weights_nor_state() {
    let mut m = master();
    let mut opt = AdamW::new(AdamWConfig::default()).unwrap();
    opt.step(&mut m, &grads(&GRADS[0]), 0.1).unwrap();
    let (before, state) = (m.get(0).unwrap().to_f32_vec(), opt.state_bytes());
    // A gradient of the wrong shape.
    let tape = Tape::new();
    let w = tape.leaf(Tensor::<F32>::zeros(&[3]));
    let bad = UnscaledGrads::from_gradients(&w.sum_all().backward().unwrap(), &[&w]);
    let e = opt.step(&mut m, &bad, 0.1).unwrap_err();
    assert!(
        e.to_string().contains("AdamW") && e.to_string().contains("shape"),
        "{e}"
    );
    assert_eq!(m.get(0).unwrap().to_f32_vec(), before);
    assert_eq!(opt.state_bytes(), state);
    // The next good step continues from the same state as an uninterrupted run.
    opt.step(&mut m, &grads(&GRADS[1]), 0.1).unwrap();
    let mut m2 = master();
    let mut opt2 = AdamW::new(AdamWConfig::default()).unwrap();
    opt2.step(&mut m2, &grads(&GRADS[0]), 0.1).unwrap();
    opt2.step(&mut m2, &grads(&GRADS[1]), 0.1).unwrap();
    assert_eq!(
        m.get(0).unwrap().to_f32_vec(),
        m2.get(0).unwrap().to_f32_vec()
    );
    let e = Sgd::new(SgdConfig::default())
        .unwrap()
        .step(&mut m, &bad, 0.1)
        .unwrap_err();
    assert!(e.to_string().contains("Sgd"), "{e}");
}

#[test]
fn warmup_then_cosine() {
    let s = WarmupCosine {
        base: 1.0,
        min: 0.1,
        warmup: 4,
        total: 14,
    };
    let lrs: Vec<f64> = (0..16).map(|i| s.lr(i)).collect();
    assert_eq!(&lrs[..4], &[0.25, 0.5, 0.75, 1.0]);
    assert_eq!(lrs[4], 1.0, "cosine starts at the base");
    assert!(
        (lrs[9] - 0.55).abs() < 1e-12,
        "half way: (1 + 0.1) / 2, got {}",
        lrs[9]
    );
    assert_eq!(lrs[14], 0.1);
    assert_eq!(lrs[15], 0.1, "stays at the floor");
    assert!(lrs[4..15].windows(2).all(|w| w[1] <= w[0]));
}

#[test]
fn gradients_from_named_pairs_check_names_and_shapes() {
    let m = master();
    let two = || Tensor::<F32>::zeros(&[2, 2]);
    let e = UnscaledGrads::from_named(&m, [("v", two())]).unwrap_err();
    assert!(
        e.to_string().contains("no parameter is called \"v\""),
        "{e}"
    );
    let e = UnscaledGrads::from_named(&m, [("w", two()), ("w", two())]).unwrap_err();
    assert!(e.to_string().contains("twice"), "{e}");
    let e = UnscaledGrads::from_named(&m, [("w", Tensor::zeros(&[4]))]).unwrap_err();
    assert!(e.to_string().contains("shape [4]"), "{e}");
    let inf = Tensor::<F32>::from_f32(&[f32::INFINITY, 0.0, 0.0, 0.0], &[2, 2]).unwrap();
    assert!(
        UnscaledGrads::from_named(&m, [("w", inf)])
            .unwrap()
            .found_inf()
    );
    let none = UnscaledGrads::from_named(&m, []).unwrap();
    assert!(none.get(0).is_none());
}

#[test]
fn state_is_read_and_loaded_by_name() {
    let mut m = master();
    let cfg = AdamWConfig {
        amsgrad: true,
        ..AdamWConfig::default()
    };
    let mut a = AdamW::new(cfg).unwrap();
    assert!(
        a.state_of(&m, "w").unwrap().is_none(),
        "no state before a step"
    );
    a.step(&mut m, &grads(&GRADS[0]), 0.01).unwrap();
    let s = a.state_of(&m, "w").unwrap().unwrap().clone();
    assert_eq!(s.step, 1);
    assert!(s.max_exp_avg_sq.is_some());
    assert!(a.state_of(&m, "nope").is_err());
    // Loading the saved state into a fresh optimizer continues the same run.
    let (mut m2, mut b) = (m.clone(), AdamW::new(cfg).unwrap());
    b.load_state(&m2, "w", s.clone()).unwrap();
    a.step(&mut m, &grads(&GRADS[1]), 0.01).unwrap();
    b.step(&mut m2, &grads(&GRADS[1]), 0.01).unwrap();
    assert_eq!(
        m.get(0).unwrap().to_f32_vec(),
        m2.get(0).unwrap().to_f32_vec()
    );
    // Bad state: wrong shape, AMSGrad's maximum missing, step 0, unknown name.
    let bad_shape = AdamWParamState {
        exp_avg: Tensor::zeros(&[4]),
        ..s.clone()
    };
    let e = b.load_state(&m2, "w", bad_shape).unwrap_err();
    assert!(
        e.to_string().contains("exp_avg for \"w\" has shape [4]"),
        "{e}"
    );
    let no_max = AdamWParamState {
        max_exp_avg_sq: None,
        ..s.clone()
    };
    assert!(
        b.load_state(&m2, "w", no_max)
            .unwrap_err()
            .to_string()
            .contains("missing")
    );
    let step0 = AdamWParamState {
        step: 0,
        ..s.clone()
    };
    assert!(
        b.load_state(&m2, "w", step0)
            .unwrap_err()
            .to_string()
            .contains("step 0")
    );
    assert!(b.load_state(&m2, "x", s).is_err());
    assert_eq!(b.state(0).unwrap().step, 2, "failed loads changed nothing");

    // SGD's momentum buffer.
    let mut sgd = Sgd::new(SgdConfig {
        momentum: 0.9,
        ..SgdConfig::default()
    })
    .unwrap();
    sgd.step(&mut m, &grads(&GRADS[0]), 0.1).unwrap();
    let buf = sgd.momentum_buffer_of(&m, "w").unwrap().unwrap().clone();
    assert_eq!(
        buf.to_f32_vec(),
        GRADS[0].to_vec(),
        "the first buffer is the gradient"
    );
    sgd.load_momentum_buffer(&m, "w", Tensor::zeros(&[2, 2]))
        .unwrap();
    assert_eq!(sgd.momentum_buffer(0).unwrap().to_f32_vec(), vec![0.0; 4]);
    let mut plain = Sgd::new(SgdConfig::default()).unwrap();
    let e = plain.load_momentum_buffer(&m, "w", buf).unwrap_err();
    assert!(e.to_string().contains("without momentum"), "{e}");
}
