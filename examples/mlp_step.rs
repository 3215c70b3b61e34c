//! Forward + backward of an MLP (64-256-256-10, batch 256, cross-entropy) on the tape, in
//! F32 and in BF16 mixed precision (F32 master weights cast to BF16 each step, the loss in
//! F32). Prints the median step time; `benches/compare/mlp_jax.py` runs the same model in
//! JAX (jitted) beside it. Also prints the tape's precision report of one BF16 step.
//!
//! Run: `cargo run --release --example mlp_step`

use mixprec::autograd::{Result, Tape, Var};
use mixprec::prelude::*;
use std::time::Instant;

const SIZES: [usize; 4] = [64, 256, 256, 10];
const BATCH: usize = 256;

struct Params {
    w: Vec<Tensor<F32>>,
    b: Vec<Tensor<F32>>,
}

fn params(rng: &mut Rng) -> Params {
    let mut w = Vec::new();
    let mut b = Vec::new();
    for pair in SIZES.windows(2) {
        let std = (2.0 / pair[0] as f64).sqrt();
        w.push(Tensor::randn(&[pair[0], pair[1]], 0.0, std, rng).expect("valid"));
        b.push(Tensor::zeros(&[pair[1]]));
    }
    Params { w, b }
}

/// One forward + backward; `D` is the compute precision of the layers.
fn step<D: Dtype>(p: &Params, x: &Tensor<F32>, labels: &Indices) -> Result<(f32, Tape)> {
    let tape = Tape::new();
    let ws: Vec<Var<F32>> = p.w.iter().map(|w| tape.leaf(w.clone())).collect();
    let bs: Vec<Var<F32>> = p.b.iter().map(|b| tape.leaf(b.clone())).collect();
    let mut h: Var<D> = tape.constant(x.clone()).cast::<D>();
    for (i, (w, b)) in ws.iter().zip(&bs).enumerate() {
        h = h.matmul(&w.cast::<D>())?.add(&b.cast::<D>())?;
        if i + 1 < ws.len() {
            h = h.relu();
        }
    }
    let loss = h.cast::<F32>().cross_entropy(labels)?;
    let grads = loss.backward()?;
    assert_eq!(grads.len(), 6, "every weight and bias has an F32 gradient");
    Ok((loss.value().to_f32_vec()[0], tape))
}

fn median_ms(mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut t: Vec<f64> = (0..31)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[15]
}

fn main() -> Result<()> {
    let mut rng = Rng::seed(0);
    let p = params(&mut rng);
    let x = Tensor::<F32>::randn(&[BATCH, SIZES[0]], 0.0, 1.0, &mut rng)?;
    let labels = Indices::from_slice(&(0..BATCH).map(|i| (i * 7) % 10).collect::<Vec<_>>());
    let f32_ms = median_ms(|| drop(step::<F32>(&p, &x, &labels).expect("step")));
    let bf16_ms = median_ms(|| drop(step::<Bf16>(&p, &x, &labels).expect("step")));
    println!(
        "mlp 64-256-256-10 batch {BATCH}: f32 {f32_ms:.3} ms/step, bf16 {bf16_ms:.3} ms/step (forward + backward)"
    );
    let (loss, tape) = step::<Bf16>(&p, &x, &labels)?;
    println!(
        "bf16 loss {loss:.4}; precision report of the step:\n{}",
        tape.report()
    );
    Ok(())
}
