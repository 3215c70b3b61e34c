//! `Var::backward_with_leaf_hook`: each leaf's gradient is reported once, when it is
//! final (equal to what `backward` returns for it), in the reverse order of first use,
//! with the tape unlocked.

use mixprec_autograd::{NodeId, Tape};
use mixprec_dtype::{Bf16, F32};
use mixprec_tensor::Tensor;

fn t32(v: &[f32], shape: &[usize]) -> Tensor<F32> {
    Tensor::from_f32(v, shape).unwrap()
}

/// A three-layer chain whose first weight is used again at the end (a tied weight): its
/// gradient is final only after the last use's contribution, so it must be reported
/// last, with both contributions in it.
fn tied_chain(tape: &Tape) -> (Vec<mixprec_autograd::Var<F32>>, mixprec_autograd::Var<F32>) {
    let w0 = tape.leaf_f32_grad(t32(&[0.5, -1.0, 0.25, 2.0], &[2, 2]));
    let w1 = tape.leaf(t32(&[1.5, 0.1, -0.3, 0.7], &[2, 2]));
    let w2 = tape.leaf(t32(&[0.2, -0.4, 1.1, 0.9], &[2, 2]));
    let x = tape.constant(t32(&[1.0, 2.0, -1.0, 0.5], &[2, 2]));
    let h = x.matmul(&w0).unwrap().tanh();
    let h = h.matmul(&w1).unwrap().tanh();
    let h = h.matmul(&w2).unwrap();
    // The tied use: w0 again, in BF16 (its gradient comes back through the cast).
    let h = h
        .cast::<Bf16>()
        .matmul(&w0.cast::<Bf16>())
        .unwrap()
        .cast::<F32>();
    (vec![w0, w1, w2], h.mul(&h).unwrap().sum_all())
}

#[test]
fn each_leaf_is_reported_once_final_and_equal_to_backward() {
    let reference = {
        let tape = Tape::new();
        let (w, loss) = tied_chain(&tape);
        let g = loss.backward().unwrap();
        w.iter()
            .map(|w| g.get(w).unwrap().to_f32_vec())
            .collect::<Vec<_>>()
    };
    let tape = Tape::new();
    let (w, loss) = tied_chain(&tape);
    let mut seen: Vec<(NodeId, Vec<f32>)> = Vec::new();
    let grads = loss
        .backward_with_leaf_hook(&mut |g| seen.push((g.id(), g.get::<F32>().unwrap().to_f32_vec())))
        .unwrap();
    // Reverse order of first use: w2, w1, then w0 (first used before both).
    let ids: Vec<NodeId> = seen.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![w[2].id(), w[1].id(), w[0].id()]);
    for (i, w) in w.iter().enumerate() {
        let reported = &seen.iter().find(|(id, _)| *id == w.id()).unwrap().1;
        // Bit-equal: the same gradient, reported when final.
        assert_eq!(reported, &reference[i], "leaf {i}");
        assert_eq!(&grads.get(w).unwrap().to_f32_vec(), reported, "leaf {i}");
    }
}

#[test]
fn the_hook_runs_with_the_tape_unlocked_and_skips_leaves_without_gradient() {
    let tape = Tape::new();
    let a = tape.leaf(t32(&[2.0], &[1]));
    let unused = tape.leaf(t32(&[9.0], &[1]));
    let detached = tape.leaf(t32(&[4.0], &[1]));
    let loss = a.mul(&detached.detach()).unwrap().sum_all();
    let mut reported = Vec::new();
    loss.backward_with_leaf_hook(&mut |g| {
        // Reading (and recording on) the tape from the hook must not deadlock.
        let _ = tape.len();
        let _ = tape.constant(t32(&[1.0], &[1]));
        reported.push(g.id());
    })
    .unwrap();
    assert_eq!(reported, vec![a.id()]);
    assert!(!reported.contains(&unused.id()) && !reported.contains(&detached.id()));
}

#[test]
fn a_non_scalar_value_is_an_error_and_a_constant_reports_nothing() {
    let tape = Tape::new();
    let a = tape.leaf(t32(&[1.0, 2.0], &[2]));
    let mut calls = 0;
    let e = a.backward_with_leaf_hook(&mut |_| calls += 1).unwrap_err();
    assert!(e.to_string().contains("scalar"), "{e}");
    let c = tape.constant(t32(&[1.0], &[1]));
    assert!(
        c.backward_with_leaf_hook(&mut |_| calls += 1)
            .unwrap()
            .is_empty()
    );
    assert_eq!(calls, 0);
}

/// Parameters made first (as a training step makes them), used layer by layer: the last
/// layer's gradient is reported while backward still has the first layer to run, which
/// is what lets a data-parallel exchange overlap backward.
#[test]
fn gradients_are_reported_before_backward_reaches_earlier_layers() {
    use mixprec_autograd::{InputGrad, Saved};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let tape = Tape::new();
    let w: Vec<_> = (0..3)
        .map(|i| tape.leaf(t32(&[0.5 + i as f32, -0.25, 1.0, 0.75], &[2, 2])))
        .collect();
    let x = tape.leaf(t32(&[1.0, -2.0, 0.5, 3.0], &[2, 2]));
    // The first op: an identity whose backward rule notes that it ran.
    let first_rule_ran = Arc::new(AtomicBool::new(false));
    let flag = first_rule_ran.clone();
    let hx = x.handle();
    let h = tape.custom(
        "probe",
        x.value().clone(),
        &[hx.into()],
        Vec::<Saved>::new(),
        move |g| {
            flag.store(true, Ordering::SeqCst);
            Ok(vec![InputGrad::new(hx, g)])
        },
    );
    let mut h = h;
    for wi in &w {
        h = h.matmul(wi).unwrap().tanh();
    }
    let loss = h.sum_all();
    let mut seen = Vec::new();
    loss.backward_with_leaf_hook(&mut |g| {
        seen.push((g.id(), first_rule_ran.load(Ordering::SeqCst)));
    })
    .unwrap();
    let expect = vec![
        (w[2].id(), false),
        (w[1].id(), false),
        (w[0].id(), false),
        (x.id(), true),
    ];
    assert_eq!(seen, expect);
}

#[test]
fn a_rule_sending_to_an_undeclared_input_is_an_error() {
    use mixprec_autograd::{InputGrad, Saved};
    let tape = Tape::new();
    let a = tape.leaf(t32(&[1.0], &[1]));
    let b = tape.leaf(t32(&[2.0], &[1]));
    let hb = b.handle();
    let y = tape.custom(
        "liar",
        a.value().clone(),
        &[a.handle().into()],
        Vec::<Saved>::new(),
        move |g| Ok(vec![InputGrad::new(hb, g)]),
    );
    let e = y.sum_all().backward().unwrap_err();
    assert!(e.to_string().contains("did not declare"), "{e}");
}
