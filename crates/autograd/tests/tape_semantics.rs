//! Tape behaviour: cast points and their reports, gradient precision, detach, no-grad,
//! reuse, seeds, errors, memory release, and a two-layer MLP against hand-derived numbers.

use mixprec_autograd::{Error, Gradients, Tape, Var};
use mixprec_dtype::{Bf16, DType, Dtype, F16, F32, F64};
use mixprec_tensor::{CastOptions, Indices, Tensor};

fn t32(v: &[f32], shape: &[usize]) -> Tensor<F32> {
    Tensor::from_f32(v, shape).unwrap()
}

#[test]
fn cast_backward_returns_the_source_precision() {
    let tape = Tape::new();
    let w = tape.leaf(t32(&[0.1, 0.2, 0.3], &[3]));
    let loss = w
        .cast::<Bf16>()
        .mul(&tape.constant(Tensor::<Bf16>::from_f64(&[1.0, 2.0, 4.0], &[3]).unwrap()))
        .unwrap()
        .sum_all();
    let grads = loss.backward().unwrap();
    let g: &Tensor<F32> = grads.get(&w).expect("an F32 gradient for the F32 master");
    assert_eq!(g.to_f32_vec(), vec![1.0, 2.0, 4.0]);
}

#[test]
fn cast_report_counts_match_direct_counts() {
    // Values below half of F16's smallest subnormal (2^-25) underflow to zero.
    let values = [1e-9f32, 2e-8, 1e-7, 0.5, 7e4, -3e-8, 0.0];
    let direct_underflow = values
        .iter()
        .filter(|v| **v != 0.0 && f64::from(v.abs()) <= 2f64.powi(-25))
        .count();
    let direct_overflow = values.iter().filter(|v| v.abs() >= 65520.0).count();
    let tape = Tape::new();
    let x = tape.leaf(t32(&values, &[7]));
    let (h, report) = x.cast_with::<F16>(CastOptions::default()).unwrap();
    assert_eq!(report.underflowed, direct_underflow);
    assert_eq!(report.overflowed, direct_overflow);
    let r = tape.report();
    assert_eq!(r.casts.len(), 1);
    assert_eq!(r.casts[0].report, report);
    assert_eq!(r.casts[0].node, h.id());
    let table = r.to_string();
    assert!(table.contains("f32->f16"), "{table}");
    assert!(table.contains("cast points (1)"), "{table}");
}

#[test]
fn backward_casts_report_gradient_underflow_at_the_cast_point() {
    // An F16 activation feeds an F32 loss; the loss gradient (weights * 1) is cast back to
    // F16 at the cast point. Gradients at or below 2^-25 flush to zero there.
    let weights = [1e-9f32, 2e-8, 1e-7, 1e-3, -4e-9, 0.0];
    let expected_underflow = weights
        .iter()
        .filter(|v| **v != 0.0 && f64::from(v.abs()) <= 2f64.powi(-25))
        .count();
    assert_eq!(expected_underflow, 3);
    let tape = Tape::new();
    let h = tape.leaf(Tensor::<F16>::ones(&[6]));
    let up = h.cast::<F32>();
    assert_eq!(tape.report().casts[0].grad, None, "no backward yet");
    let loss = up
        .mul(&tape.constant(t32(&weights, &[6])))
        .unwrap()
        .sum_all();
    let grads = loss.backward().unwrap();
    let r = tape.report();
    let g = r.casts[0].grad.expect("backward ran through the cast");
    assert_eq!((g.from, g.to), (DType::F32, DType::F16));
    assert_eq!(g.elements, 6);
    assert_eq!(g.underflowed, expected_underflow);
    let zeros = grads
        .get(&h)
        .unwrap()
        .to_f32_vec()
        .iter()
        .filter(|v| **v == 0.0)
        .count();
    assert_eq!(
        zeros,
        expected_underflow + 1,
        "the flushed values and the true zero"
    );
    assert!(r.to_string().contains("f32->f16"), "{r}");
}

#[test]
fn gradients_accumulate_in_the_leaf_type_or_in_f32_on_request() {
    // A BF16 value used 200 times with weight 1/256 each: the true gradient is 200/256.
    // Accumulating in BF16 rounds each partial sum to 8 bits; F32 accumulation does not.
    let build = |f32_grad: bool| -> (f64, bool) {
        let tape = Tape::new();
        let x = Tensor::<Bf16>::ones(&[1]);
        let leaf = if f32_grad {
            tape.leaf_f32_grad(x)
        } else {
            tape.leaf(x)
        };
        let c = tape.constant(Tensor::<Bf16>::full(&[1], 1.0 / 256.0));
        let mut total = leaf.mul(&c).unwrap();
        for _ in 1..200 {
            total = total.add(&leaf.mul(&c).unwrap()).unwrap();
        }
        let grads = total.sum_all().backward().unwrap();
        if f32_grad {
            (
                grads.get_f32(&leaf).unwrap().to_f64_vec()[0],
                grads.get(&leaf).is_none(),
            )
        } else {
            (grads.get(&leaf).unwrap().to_f64_vec()[0], true)
        }
    };
    let exact = 200.0 / 256.0;
    let (g16, _) = build(false);
    let (g32, only_f32) = build(true);
    assert_eq!(g32, exact, "F32 accumulation of 200 exact terms is exact");
    assert!(only_f32);
    assert!(
        (g16 - exact).abs() <= exact * 2f64.powi(-8),
        "BF16 accumulation: one BF16 rounding of the sum, {g16}"
    );
}

#[test]
fn detach_and_no_grad_stop_gradients() {
    let tape = Tape::new();
    let x = tape.leaf(t32(&[1.0, 2.0], &[2]));
    let y = x.square().detach().mul(&x).unwrap().sum_all();
    let g = y.backward().unwrap();
    assert_eq!(
        g.get(&x).unwrap().to_f32_vec(),
        vec![1.0, 4.0],
        "d/dx (c * x) with c = x^2 detached"
    );
    let before = tape.len();
    let saved_before = tape.saved_bytes();
    let z = tape.no_grad(|| x.exp().sum_all());
    assert!(!z.requires_grad());
    assert_eq!(tape.saved_bytes(), saved_before, "no-grad ops save nothing");
    assert_eq!(
        tape.len(),
        before + 2,
        "nodes still appear (for reports) but save nothing"
    );
    assert!(z.backward().unwrap().is_empty());
}

#[test]
fn reuse_adds_gradients_and_seeds_work() {
    let tape = Tape::new();
    let x = tape.leaf(t32(&[3.0], &[1]));
    let y = x.mul(&x).unwrap().add(&x).unwrap(); // x^2 + x
    assert_eq!(
        y.backward().unwrap().get(&x).unwrap().to_f32_vec(),
        vec![7.0]
    );
    let tape = Tape::new();
    let v = tape.leaf(t32(&[1.0, 2.0, 3.0], &[3]));
    let w = v.square();
    assert!(matches!(w.backward(), Err(Error::NotScalar { .. })));
    let g = w.backward_with(t32(&[1.0, 0.0, -1.0], &[3])).unwrap();
    assert_eq!(g.get(&v).unwrap().to_f32_vec(), vec![2.0, 0.0, -6.0]);
    let e = v.square().backward_with(t32(&[1.0], &[1])).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("backward_with: seed gradient has shape [1]")
    );
}

#[test]
fn backward_twice_and_mixed_tapes_are_errors() {
    let tape = Tape::new();
    let x = tape.leaf(t32(&[1.0, 2.0], &[2]));
    let y = x.exp().sum_all();
    y.backward().unwrap();
    let e = y.backward().unwrap_err();
    assert!(matches!(e, Error::BackwardTwice { .. }), "{e}");
    assert!(e.to_string().contains("freed by an earlier backward pass"));
    let other = Tape::new();
    let z = other.leaf(t32(&[1.0, 2.0], &[2]));
    let e = x.add(&z).unwrap_err();
    assert_eq!(e.to_string(), "add: the operands belong to different tapes");
}

#[test]
fn saved_tensors_are_released_by_backward_and_counted_by_dtype() {
    let tape = Tape::new();
    let w = tape.leaf(Tensor::<F32>::ones(&[64, 64]));
    let x = tape.constant(Tensor::<F32>::ones(&[8, 64]));
    let h = x.cast::<Bf16>().matmul(&w.cast::<Bf16>()).unwrap(); // saves two BF16 operands
    let a = h.gelu(); // saves its BF16 input
    let loss = a.cast::<F32>().sum_all();
    let saved = tape.saved_bytes();
    let bf16 = saved
        .iter()
        .find(|(d, _)| *d == DType::Bf16)
        .map(|x| x.1)
        .unwrap();
    assert_eq!(
        bf16,
        (8 * 64 + 64 * 64 + 8 * 64) * 2,
        "matmul operands and the gelu input, 2 bytes each"
    );
    loss.backward().unwrap();
    assert!(
        tape.saved_bytes().is_empty(),
        "everything freed after backward"
    );
    let report = tape.report();
    assert!(report.peak_saved_bytes.contains(&(DType::Bf16, bf16)));
    assert!(
        report
            .ops
            .iter()
            .any(|o| o.op == "matmul" && o.dtype == DType::Bf16)
    );
}

#[test]
fn shared_storages_are_counted_once_and_excluded_ones_not_at_all() {
    let bf16_saved = |tape: &Tape| {
        tape.saved_bytes()
            .iter()
            .find(|(d, _)| *d == DType::Bf16)
            .map_or(0, |x| x.1)
    };
    let tape = Tape::new();
    let w = tape.leaf(Tensor::<F32>::ones(&[16, 16]));
    let wb = w.cast::<Bf16>();
    let x = tape.constant(Tensor::<Bf16>::ones(&[4, 16]));
    // Two GEMMs save the same BF16 weight (one through a transposed view) and x twice.
    let y1 = x.matmul(&wb).unwrap();
    let y2 = x.matmul(&wb.transpose(0, 1).unwrap()).unwrap();
    assert_eq!(
        bf16_saved(&tape),
        (16 * 16 + 4 * 16) * 2,
        "w and x once each"
    );
    let loss = y1.add(&y2).unwrap().cast::<F32>().sum_all();
    loss.backward().unwrap();
    assert!(tape.saved_bytes().is_empty());

    // The same with the weight copy excluded (accounted as a compute copy elsewhere).
    let tape = Tape::new();
    let w = tape.leaf(Tensor::<F32>::ones(&[16, 16]));
    let wb = w.cast::<Bf16>();
    tape.exclude_from_saved(wb.value());
    let x = tape.constant(Tensor::<Bf16>::ones(&[4, 16]));
    let y = x.matmul(&wb).unwrap();
    assert_eq!(bf16_saved(&tape), 4 * 16 * 2, "only x");
    y.cast::<F32>().sum_all().backward().unwrap();
    assert!(tape.saved_bytes().is_empty());
}

/// Two-layer MLP (3 -> 2 relu -> 2 classes), cross-entropy, SGD lr 0.5, three steps on a
/// batch of two; expected numbers from an independent plain-Python f64 derivation of
/// the same network (formulas written out by hand, no autodiff).
#[test]
fn mlp_matches_hand_derivation() {
    let x = Tensor::<F64>::from_f64(&[0.5, -1.0, 2.0, 1.5, 0.25, -0.5], &[2, 3]).unwrap();
    let labels = Indices::from_slice(&[1, 0]);
    let mut w1 = Tensor::<F64>::from_f64(&[0.1, -0.2, 0.3, 0.4, -0.5, 0.6], &[3, 2]).unwrap();
    let mut b1 = Tensor::<F64>::from_f64(&[0.05, -0.1], &[2]).unwrap();
    let mut w2 = Tensor::<F64>::from_f64(&[0.7, -0.3, -0.8, 0.9], &[2, 2]).unwrap();
    let mut b2 = Tensor::<F64>::from_f64(&[0.01, -0.02], &[2]).unwrap();
    let mut losses = Vec::new();
    for _ in 0..3 {
        let tape = Tape::new();
        let (pw1, pb1, pw2, pb2) = (
            tape.leaf(w1.clone()),
            tape.leaf(b1.clone()),
            tape.leaf(w2.clone()),
            tape.leaf(b2.clone()),
        );
        let xv = tape.constant(x.clone());
        let h = xv.matmul(&pw1).unwrap().add(&pb1).unwrap().relu();
        let logits = h.matmul(&pw2).unwrap().add(&pb2).unwrap();
        let loss = logits.cross_entropy(&labels).unwrap();
        losses.push(loss.value().to_f64_vec()[0]);
        let g = loss.backward().unwrap();
        let sgd = |p: &Tensor<F64>, v: &Var<F64>, g: &Gradients| {
            p.sub(&g.get(v).unwrap().mul_scalar(0.5)).unwrap()
        };
        (w1, b1, w2, b2) = (
            sgd(&w1, &pw1, &g),
            sgd(&b1, &pb1, &g),
            sgd(&w2, &pw2, &g),
            sgd(&b2, &pb2, &g),
        );
    }
    let close = |got: Vec<f64>, want: &[f64], what: &str| {
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= 1e-13, "{what}: {got:?} vs {want:?}");
        }
    };
    close(
        losses,
        &[0.3848135028358002, 0.2045348397019938, 0.13114166590994747],
        "losses",
    );
    close(
        w1.to_f64_vec(),
        &[
            0.42886925087854905,
            -0.10776585418299822,
            0.35481154181309155,
            0.21553170836599644,
            -0.6096230836261831,
            0.9689365832680071,
        ],
        "W1",
    );
    close(
        b1.to_f64_vec(),
        &[0.26924616725236605, 0.08446829163400359],
        "b1",
    );
    close(
        w2.to_f64_vec(),
        &[
            0.8550292885712638,
            -0.45502928857126373,
            -0.8952254859623977,
            0.9952254859623975,
        ],
        "W2",
    );
    close(
        b2.to_f64_vec(),
        &[0.10722685413750097, -0.11722685413750097],
        "b2",
    );
}

#[test]
fn report_counts_ops_by_dtype() {
    let tape = Tape::new();
    let x = tape.leaf(Tensor::<F32>::ones(&[4, 4]));
    let h = x.cast::<F16>();
    let y = h.matmul(&h).unwrap().cast::<F32>().softmax(-1).unwrap();
    let _ = y.sum_all();
    let r = tape.report();
    let count = |op: &str, d: DType| {
        r.ops
            .iter()
            .find(|o| o.op == op && o.dtype == d)
            .map_or(0, |o| o.count)
    };
    assert_eq!(count("cast", DType::F16), 1);
    assert_eq!(count("cast", DType::F32), 1);
    assert_eq!(count("matmul", DType::F16), 1);
    assert_eq!(count("softmax", DType::F32), 1);
    assert_eq!(r.casts.len(), 2);
    assert_eq!(F16::NAME, "f16");
}

/// F32 GELU keeps its derivative (computed in the forward pass) instead of its input:
/// the same saved bytes, and a gradient within one extra f32 rounding of the exactly
/// rounded `g * gelu'(x)` (checked against the derivative written out in f64 with libm's
/// `erfc`), over values that reach both tails.
#[test]
fn f32_gelu_saves_its_derivative_and_stays_within_two_roundings() {
    let tape = Tape::new();
    let n = 5000;
    let xs: Vec<f32> = (0..n).map(|i| -9.0 + 15.0 * i as f32 / n as f32).collect();
    let gs: Vec<f32> = (0..n)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
        .collect();
    let x = tape.leaf(t32(&xs, &[n]));
    let y = x.gelu();
    assert_eq!(tape.saved_bytes(), vec![(DType::F32, 4 * n)]);
    let loss = y.mul(&tape.constant(t32(&gs, &[n]))).unwrap().sum_all();
    let grads = loss.backward().unwrap();
    let dx = grads.get(&x).unwrap().to_f64_vec();
    for i in 0..n {
        let v = f64::from(xs[i]);
        let d = 0.5 * libm::erfc(-v * std::f64::consts::FRAC_1_SQRT_2)
            + v * (-0.5 * v * v).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let want = f64::from(gs[i]) * d;
        // Two roundings to f32: 2 * 2^-24 relative (plus the smallest subnormal).
        let tol = 2.0 * f64::from(f32::EPSILON) / 2.0 * want.abs() + 1e-45;
        assert!((dx[i] - want).abs() <= tol, "x = {v}: {} vs {want}", dx[i]);
    }
}
