//! Criterion benchmarks of the tape: overhead per recorded op on tiny tensors (the tensor
//! op's own cost measured beside it, so the difference is the tape's), and one
//! forward + backward of an MLP (64-256-256-10, batch 256) in F32 and BF16.
//!
//! Run: `cargo bench -p mixprec --bench autograd`. The side-by-side with JAX is
//! `benches/compare/mlp_jax.py`.

use criterion::{Criterion, criterion_group, criterion_main};
use mixprec::autograd::{Tape, Var};
use mixprec::prelude::*;
use std::hint::black_box;
use std::time::Duration;

const OPS: usize = 100;

fn tape_overhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("tape_overhead_100_ops");
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    let x = Tensor::<F32>::from_f32(&[0.5, -0.25, 1.0, 2.0], &[4]).expect("shape");
    group.bench_function("tensor_only", |b| {
        b.iter(|| {
            let mut h = x.clone();
            for _ in 0..OPS {
                h = h.tanh();
            }
            black_box(h)
        })
    });
    group.bench_function("recorded", |b| {
        b.iter(|| {
            let tape = Tape::new();
            let mut h: Var<F32> = tape.leaf(x.clone());
            for _ in 0..OPS {
                h = h.tanh();
            }
            black_box(h)
        })
    });
    group.bench_function("recorded_and_backward", |b| {
        b.iter(|| {
            let tape = Tape::new();
            let leaf = tape.leaf(x.clone());
            let mut h = leaf.clone();
            for _ in 0..OPS {
                h = h.tanh();
            }
            black_box(h.sum_all().backward().expect("scalar"))
        })
    });
    group.finish();
}

fn mlp<D: Dtype>(c: &mut Criterion) {
    let mut rng = Rng::seed(0);
    let sizes = [64, 256, 256, 10];
    let ws: Vec<Tensor<F32>> = sizes
        .windows(2)
        .map(|p| {
            Tensor::randn(&[p[0], p[1]], 0.0, (2.0 / p[0] as f64).sqrt(), &mut rng).expect("valid")
        })
        .collect();
    let bs: Vec<Tensor<F32>> = sizes.windows(2).map(|p| Tensor::zeros(&[p[1]])).collect();
    let x = Tensor::<F32>::randn(&[256, 64], 0.0, 1.0, &mut rng).expect("valid");
    let labels = Indices::from_slice(&(0..256).map(|i| i % 10).collect::<Vec<_>>());
    c.bench_function(&format!("mlp_64_256_256_10_b256_step_{}", D::NAME), |b| {
        b.iter(|| {
            let tape = Tape::new();
            let mut h: Var<D> = tape.constant(x.clone()).cast::<D>();
            for (i, (w, bias)) in ws.iter().zip(&bs).enumerate() {
                h = h
                    .matmul(&tape.leaf(w.clone()).cast::<D>())
                    .expect("shapes")
                    .add(&tape.leaf(bias.clone()).cast::<D>())
                    .expect("shapes");
                if i < 2 {
                    h = h.relu();
                }
            }
            black_box(
                h.cast::<F32>()
                    .cross_entropy(&labels)
                    .expect("labels")
                    .backward()
                    .expect("scalar"),
            )
        })
    });
}

fn benches(c: &mut Criterion) {
    tape_overhead(c);
    mlp::<F32>(c);
    mlp::<Bf16>(c);
}

criterion_group!(autograd, benches);
criterion_main!(autograd);
