//! `GradAccumulator::finished` inside `GradScaler::backward_with_leaf_hook`: each
//! parameter's gradient, finished while the last micro-batch's backward runs, has the
//! bits the accumulate-then-unscale path gives afterwards.

use mixprec_amp::{GradAccumulator, GradScaler, GradScalerConfig};
use mixprec_autograd::{LeafGrad, Tape, Var};
use mixprec_dtype::F32;
use mixprec_tensor::{Rng, Tensor};
use std::collections::HashMap;

/// Micro-batch `k`'s loss over three parameters: `w1` only before the last micro-batch,
/// `w2` never (no gradient at all).
fn loss(tape: &Tape, w: &[Var<F32>], k: usize, last: bool) -> Var<F32> {
    let mut rng = Rng::seed(k as u64 + 11);
    let x = tape.constant(Tensor::<F32>::randn(&[3, 4], 0.0, 1.7, &mut rng).unwrap());
    let h = x.matmul(&w[0]).unwrap().tanh();
    let h = if last { h } else { h.mul(&w[1]).unwrap() };
    h.mul(&h).unwrap().sum_all()
}

fn params(tape: &Tape) -> Vec<Var<F32>> {
    let mut rng = Rng::seed(5);
    [vec![4, 2], vec![3, 2], vec![7]]
        .iter()
        .map(|s| tape.leaf(Tensor::<F32>::randn(s, 0.0, 0.9, &mut rng).unwrap()))
        .collect()
}

type Bits = Option<Vec<u32>>;

fn bits(g: Option<&Tensor<F32>>) -> Bits {
    g.map(|t| t.to_f32_vec().into_iter().map(f32::to_bits).collect())
}

/// Runs `m` micro-batches (scaled by `scaler` when given); returns the gradients
/// finished during the last backward (by position) and the accumulate-then-unscale ones.
fn run(m: usize, mut scaler: Option<GradScaler>) -> (Vec<Bits>, Vec<Bits>) {
    let mut acc = GradAccumulator::new();
    let scale = scaler.as_ref().map(GradScaler::scale);
    let mut early: Vec<Option<Bits>> = vec![None; 3];
    for k in 0..m {
        let tape = Tape::new();
        let w = params(&tape);
        let refs: Vec<&Var<F32>> = w.iter().collect();
        let last = k + 1 == m;
        let l = loss(&tape, &w, k, last);
        let position: HashMap<_, _> = w.iter().enumerate().map(|(i, v)| (v.id(), i)).collect();
        let mut hook = |g: LeafGrad<'_>| {
            let i = position[&g.id()];
            assert!(early[i].is_none(), "parameter {i} reported twice");
            early[i] = Some(bits(
                acc.finished(i, g.get::<F32>(), scale).unwrap().as_ref(),
            ));
        };
        let mut ignore = |_: LeafGrad<'_>| {};
        let hook: &mut dyn FnMut(LeafGrad<'_>) = if last { &mut hook } else { &mut ignore };
        let (scaled, plain) = match &scaler {
            Some(s) => (Some(s.backward_with_leaf_hook(&l, hook).unwrap()), None),
            None => (None, Some(l.backward_with_leaf_hook(hook).unwrap())),
        };
        if last {
            // Parameters the last backward did not reach finish from the sums alone
            // (before the micro-batch is added).
            for (i, e) in early.iter_mut().enumerate().filter(|(_, e)| e.is_none()) {
                *e = Some(bits(acc.finished(i, None, scale).unwrap().as_ref()));
            }
        }
        match (scaled, plain) {
            (Some(g), _) => acc.add_scaled(&g, &refs).unwrap(),
            (_, Some(g)) => acc.add(&g, &refs).unwrap(),
            _ => unreachable!("one of the two"),
        }
    }
    let unscaled = match &mut scaler {
        Some(s) => s.unscale_accumulated(acc).unwrap(),
        None => acc.into_unscaled().unwrap(),
    };
    let after = (0..3).map(|i| bits(unscaled.get(i))).collect();
    (early.into_iter().map(Option::unwrap).collect(), after)
}

#[test]
fn finished_during_backward_equals_unscale_accumulated_bit_for_bit() {
    // A scale whose reciprocal is not exact in f32, and a micro-batch count whose is not
    // either: any change in the order of the sum, mean and unscale would show.
    let scaler = || {
        GradScaler::new(GradScalerConfig {
            init_scale: 3000.0,
            ..GradScalerConfig::default()
        })
        .unwrap()
    };
    for m in [1, 3] {
        for scaled in [false, true] {
            let (early, after) = run(m, scaled.then(scaler));
            assert_eq!(early, after, "{m} micro-batches, scaled: {scaled}");
            assert!(early[0].is_some(), "w0 has a gradient");
            assert_eq!(early[1].is_some(), m > 1, "w1 only before the last");
            assert!(early[2].is_none(), "w2 never has one");
        }
    }
}

#[test]
fn finished_refuses_another_scale_and_unknown_positions() {
    let tape = Tape::new();
    let w = params(&tape);
    let refs: Vec<&Var<F32>> = w.iter().collect();
    let s = GradScaler::new(GradScalerConfig::default()).unwrap();
    let mut acc = GradAccumulator::new();
    acc.add_scaled(&s.backward(&loss(&tape, &w, 0, false)).unwrap(), &refs)
        .unwrap();
    let g = Tensor::<F32>::zeros(&[4, 2]);
    let e = acc.finished(0, Some(&g), Some(8.0)).unwrap_err();
    assert!(e.to_string().contains("loss scale"), "{e}");
    let e = acc.finished(0, Some(&g), None).unwrap_err();
    assert!(e.to_string().contains("GradAccumulator::finished"), "{e}");
    let e = acc.finished(3, Some(&g), Some(s.scale())).unwrap_err();
    assert!(e.to_string().contains("parameter 3 of 3"), "{e}");
}
