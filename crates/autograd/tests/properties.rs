//! Properties: random compositions of ops on random shapes pass gradcheck, and
//! gradients of broadcast ops have their input's shape.

use mixprec_autograd::{Result, Tape, Var, gradcheck};
use mixprec_dtype::F64;
use mixprec_tensor::Tensor;
use proptest::prelude::*;

/// One smooth unary step, chosen by `k`.
fn step(v: &Var<F64>, k: u8) -> Result<Var<F64>> {
    Ok(match k % 7 {
        0 => v.tanh(),
        1 => v.sigmoid(),
        2 => v.square().add_scalar(1.0).log(),
        3 => v.gelu(),
        4 => v.mul_scalar(0.5).exp(),
        5 => v.softmax(-1)?,
        _ => v.silu(),
    })
}

fn values(n: usize, seed: u64) -> Vec<f64> {
    (0..n)
        .map(|i| (((i as u64 * 2654435761 + seed * 97) % 1000) as f64 / 500.0) - 1.0)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// A chain of random unary steps, a broadcast binary op and a matmul, on random shapes.
    #[test]
    fn random_compositions_pass_gradcheck(rows in 1usize..4, cols in 1usize..5, ops in prop::collection::vec(any::<u8>(), 1..4), bin in 0u8..3, seed in 0u64..1000) {
        let a = Tensor::<F64>::from_f64(&values(rows * cols, seed), &[rows, cols]).unwrap();
        let b = Tensor::<F64>::from_f64(&values(cols, seed + 1), &[cols]).unwrap();
        let w = Tensor::<F64>::from_f64(&values(cols * 2, seed + 2), &[cols, 2]).unwrap();
        let f = |v: &[Var<F64>]| -> Result<Var<F64>> {
            let mut h = v[0].clone();
            for &k in &ops {
                h = step(&h, k)?;
            }
            h = match bin {
                0 => h.add(&v[1])?,
                1 => h.mul(&v[1])?,
                _ => h.sub(&v[1])?,
            };
            Ok(h.matmul(&v[2])?.tanh().sum_all())
        };
        let r = gradcheck(f, &[a, b, w], 1e-6, 1e-7, 1e-6).unwrap();
        prop_assert!(r.passed(), "{:?}", r);
    }

    /// The gradient of each operand of a broadcast op has that operand's shape.
    #[test]
    fn broadcast_gradients_have_input_shapes(shape in prop::collection::vec(1usize..4, 1..4), mask in prop::collection::vec(any::<bool>(), 4), drop in 0usize..3) {
        let tape = Tape::new();
        let n: usize = shape.iter().product();
        let b_shape: Vec<usize> = shape.iter().enumerate().skip(drop.min(shape.len() - 1)).map(|(i, &d)| if mask[i] { 1 } else { d }).collect();
        let m: usize = b_shape.iter().product();
        let a = tape.leaf(Tensor::<F64>::from_f64(&values(n, 3), &shape).unwrap());
        let b = tape.leaf(Tensor::<F64>::from_f64(&values(m, 4), &b_shape).unwrap());
        let y = a.mul(&b).unwrap().add(&b).unwrap().div(&b.square().add_scalar(1.0)).unwrap().sum_all();
        let g = y.backward().unwrap();
        prop_assert_eq!(g.get(&a).unwrap().shape(), &shape[..]);
        prop_assert_eq!(g.get(&b).unwrap().shape(), &b_shape[..]);
    }
}
