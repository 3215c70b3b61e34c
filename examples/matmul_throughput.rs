//! Measures matmul throughput (median of several runs) for square sizes and transformer
//! linear-layer shapes, in F32, Bf16 and F16, and prints `dtype m k n gflops` lines. The
//! comparison harness `benches/compare/matmul.py` runs it beside numpy (OpenBLAS sgemm).
//!
//! Run: `cargo run --release --example matmul_throughput [-- M K N ...]` (triples; default
//! squares 128..2048 and linear-layer shapes).

use mixprec::prelude::*;
use mixprec::tensor::{Rng, Tensor};
use std::time::Instant;

fn median_secs(mut f: impl FnMut(), budget: f64) -> f64 {
    f();
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 5 || (start.elapsed().as_secs_f64() < budget && times.len() < 101) {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn measure<D: Dtype>(m: usize, k: usize, n: usize) {
    let mut rng = Rng::seed(1);
    let a = Tensor::<D>::randn(&[m, k], 0.0, 1.0, &mut rng).expect("valid");
    let b = Tensor::<D>::randn(&[k, n], 0.0, 1.0, &mut rng).expect("valid");
    let t = median_secs(|| drop(a.matmul(&b).expect("shapes match")), 1.0);
    println!(
        "{} {m} {k} {n} {:.1}",
        D::NAME,
        2.0 * (m * k * n) as f64 / t / 1e9
    );
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("integers"))
        .collect();
    let shapes: Vec<(usize, usize, usize)> = if args.is_empty() {
        let mut s: Vec<_> = [128, 256, 512, 1024, 2048]
            .iter()
            .map(|&d| (d, d, d))
            .collect();
        // A GPT-style block at d_model 768, 2048 tokens: qkv, out proj, MLP up, MLP down.
        s.extend([
            (2048, 768, 2304),
            (2048, 768, 768),
            (2048, 768, 3072),
            (2048, 3072, 768),
        ]);
        s
    } else {
        args.chunks_exact(3).map(|c| (c[0], c[1], c[2])).collect()
    };
    for (m, k, n) in shapes {
        measure::<F32>(m, k, n);
        measure::<Bf16>(m, k, n);
        measure::<F16>(m, k, n);
    }
}
