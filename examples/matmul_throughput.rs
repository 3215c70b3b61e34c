//! Measures matmul throughput (median of several runs) for square sizes and transformer
//! linear-layer shapes, in F32, Bf16 and F16, and prints `dtype m k n gflops` lines. The
//! comparison harness `benches/compare/matmul.py` runs it beside numpy (OpenBLAS sgemm).
//!
//! Run: `cargo run --release --example matmul_throughput [-- [--layout L] M K N ...]`
//! (triples; default squares 128..2048 and linear-layer shapes). `--layout` picks the
//! operands' storage as a training step has them: `nn` (`x W`, default), `nt` (`x W^T`,
//! PyTorch's linear forward; B stored `[n, k]`), `tn` (`x^T g`, the weight gradient; A
//! stored `[k, m]`); the transposed operand is a view, as autograd passes it.

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

fn measure<D: Dtype>(layout: &str, m: usize, k: usize, n: usize) {
    let mut rng = Rng::seed(1);
    let mut randn = |shape: &[usize]| Tensor::<D>::randn(shape, 0.0, 1.0, &mut rng).expect("valid");
    let (a, b) = match layout {
        "nt" => (randn(&[m, k]), randn(&[n, k]).transpose(0, 1).expect("2-D")),
        "tn" => (randn(&[k, m]).transpose(0, 1).expect("2-D"), randn(&[k, n])),
        _ => (randn(&[m, k]), randn(&[k, n])),
    };
    let t = median_secs(|| drop(a.matmul(&b).expect("shapes match")), 1.0);
    println!(
        "{} {m} {k} {n} {:.1}",
        D::NAME,
        2.0 * (m * k * n) as f64 / t / 1e9
    );
}

fn main() {
    let mut raw: Vec<String> = std::env::args().skip(1).collect();
    let mut layout = "nn".to_string();
    if raw.first().is_some_and(|a| a == "--layout") {
        if raw.len() < 2 || !["nn", "nt", "tn"].contains(&raw[1].as_str()) {
            eprintln!("error: --layout takes nn, nt or tn");
            std::process::exit(2);
        }
        layout = raw[1].clone();
        raw.drain(..2);
    }
    let args: Vec<usize> = match raw.iter().map(|a| a.parse()).collect() {
        Ok(v) => v,
        Err(_) => {
            eprintln!("error: shapes are integers M K N ...");
            std::process::exit(2);
        }
    };
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
        measure::<F32>(&layout, m, k, n);
        measure::<Bf16>(&layout, m, k, n);
        measure::<F16>(&layout, m, k, n);
    }
}
