//! Property-testing a user's model with the gradient checker: write the model once,
//! generic over the precision, then let proptest draw shapes and values and check every
//! gradient against central differences in F64. The same code then runs in F32.
//!
//! Run: `cargo run --release --example gradcheck_model`.

use mixprec::autograd::gradcheck;
use mixprec::prelude::*;
use mixprec::tensor::Rng;
use proptest::prelude::{any, prop_assert};
use proptest::test_runner::{Config, TestRunner};

/// The user's model: a residual tanh block, a layer norm, a linear head and the mean
/// cross-entropy. Inputs: `x` `[b, d]`, `w1` `[d, d]`, `w2` `[d, c]`.
fn model<D: FullPrecision>(
    x: &Var<D>,
    w1: &Var<D>,
    w2: &Var<D>,
    labels: &Indices,
) -> Result<Var<D>> {
    let h = x.add(&x.matmul(w1)?.tanh())?; // residual
    let d = *h.shape().last().unwrap_or(&1);
    let n = h.layer_norm(&[d], None, None, 1e-5)?;
    n.matmul(w2)?.cross_entropy(labels)
}

fn main() {
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let shapes = (1usize..5, 2usize..7, 2usize..5, any::<u64>(), 0.1f64..3.0);
    let outcome = runner.run(&shapes, |(b, d, c, seed, scale)| {
        let mut rng = Rng::seed(seed);
        let x = Tensor::<F64>::randn(&[b, d], 0.0, scale, &mut rng).unwrap();
        let w1 = Tensor::<F64>::randn(&[d, d], 0.0, 1.0 / (d as f64).sqrt(), &mut rng).unwrap();
        let w2 = Tensor::<F64>::randn(&[d, c], 0.0, 1.0, &mut rng).unwrap();
        let labels =
            Indices::from_slice(&(0..b).map(|i| (i + seed as usize) % c).collect::<Vec<_>>());
        let report = gradcheck(
            |v| model(&v[0], &v[1], &v[2], &labels),
            &[x, w1, w2],
            1e-6,
            1e-7,
            1e-5,
        )
        .unwrap();
        // F64 central differences with eps 1e-6: truncation ~1e-12, rounding ~1e-10.
        prop_assert!(report.passed(), "b={b} d={d} c={c}: {report:?}");
        Ok(())
    });
    match outcome {
        Ok(()) => {
            println!("gradcheck passed on 64 random models (shapes and values drawn by proptest)")
        }
        Err(e) => {
            eprintln!("gradcheck failed: {e}");
            std::process::exit(1);
        }
    }

    // The same model in F32 (what training would run), compared with F64.
    let mut rng = Rng::seed(5);
    let x = Tensor::<F64>::randn(&[4, 6], 0.0, 1.0, &mut rng).unwrap();
    let w1 = Tensor::<F64>::randn(&[6, 6], 0.0, 0.4, &mut rng).unwrap();
    let w2 = Tensor::<F64>::randn(&[6, 3], 0.0, 1.0, &mut rng).unwrap();
    let labels = Indices::from_slice(&[0, 1, 2, 0]);
    let grad_of_w1 = |tape: &Tape, cast: bool| -> Vec<f64> {
        if cast {
            let [a, b, c] = [&x, &w1, &w2].map(|t| tape.leaf(t.cast::<F32>()));
            let g = model(&a, &b, &c, &labels).unwrap().backward().unwrap();
            g.get(&b).unwrap().to_f64_vec()
        } else {
            let [a, b, c] = [&x, &w1, &w2].map(|t| tape.leaf(t.clone()));
            let g = model(&a, &b, &c, &labels).unwrap().backward().unwrap();
            g.get(&b).unwrap().to_f64_vec()
        }
    };
    let (g32, g64) = (
        grad_of_w1(&Tape::new(), true),
        grad_of_w1(&Tape::new(), false),
    );
    let err = g32
        .iter()
        .zip(&g64)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    println!("largest difference of the F32 gradient of w1 from F64: {err:.2e}");
}
