//! Optimizers against their update rules written out in f64 (PyTorch's formulas), atomic
//! steps, and the schedule.

use mixprec_amp::{MasterWeights, UnscaledGrads};
use mixprec_autograd::Tape;
use mixprec_dtype::F32;
use mixprec_nn::optim::{AdamW, AdamWConfig, Optimizer, Sgd, SgdConfig, WarmupCosine};
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
    let tape = Tape::new();
    let w = tape.leaf(Tensor::<F32>::zeros(&[2, 2]));
    let c = tape.constant(Tensor::<F32>::from_f32(g, &[2, 2]).unwrap());
    let loss = w.mul(&c).unwrap().sum_all();
    UnscaledGrads::from_gradients(&loss.backward().unwrap(), &[&w])
}

fn run(opt: &mut dyn Optimizer, lr: f32) -> Vec<f64> {
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
            p[j] *= 1.0 - f64::from(lr) * wd;
            m[j] = b1 * m[j] + (1.0 - b1) * gj;
            v[j] = b2 * v[j] + (1.0 - b2) * gj * gj;
            let mhat = m[j] / (1.0 - b1.powi(t));
            let vhat = v[j] / (1.0 - b2.powi(t));
            p[j] -= f64::from(lr) * mhat / (vhat.sqrt() + eps);
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
        };
        let lr = 0.1;
        let got = run(&mut Sgd::new(c).unwrap(), lr);
        let mut p: Vec<f64> = P0.iter().map(|&v| f64::from(v)).collect();
        let mut buf: Option<Vec<f64>> = None;
        for g in GRADS {
            let d: Vec<f64> = (0..4)
                .map(|j| f64::from(g[j]) + f64::from(c.weight_decay) * p[j])
                .collect();
            let b = match buf.take() {
                None => d.clone(),
                Some(b) => (0..4)
                    .map(|j| f64::from(c.momentum) * b[j] + (1.0 - f64::from(c.dampening)) * d[j])
                    .collect(),
            };
            for j in 0..4 {
                let step = if nesterov {
                    d[j] + f64::from(c.momentum) * b[j]
                } else {
                    b[j]
                };
                p[j] -= f64::from(lr) * step;
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
    let lrs: Vec<f32> = (0..16).map(|i| s.lr(i)).collect();
    assert_eq!(&lrs[..4], &[0.25, 0.5, 0.75, 1.0]);
    assert_eq!(lrs[4], 1.0, "cosine starts at the base");
    assert!(
        (lrs[9] - 0.55).abs() < 1e-6,
        "half way: (1 + 0.1) / 2, got {}",
        lrs[9]
    );
    assert_eq!(lrs[14], 0.1);
    assert_eq!(lrs[15], 0.1, "stays at the floor");
    assert!(lrs[4..15].windows(2).all(|w| w[1] <= w[0]));
}
