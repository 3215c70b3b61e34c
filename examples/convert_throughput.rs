//! Measures the slice conversions' throughput (median of several runs) and prints one
//! line per case: `direction dtype elements gelem_per_s`. The comparison harness
//! `benches/compare/dtype_convert.py` runs it beside ml_dtypes; criterion benchmarks
//! live in `benches/dtype_convert.rs`.
//!
//! Run: `cargo run --release --example convert_throughput [-- SIZE ...]`
//! (sizes in elements; default 1048576 and 67108864).

use mixprec::prelude::*;
use std::time::Instant;

fn inputs(n: usize) -> Vec<f32> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32;
            (unit - 0.5) * 8.0 * (1.0 + (state & 0xF) as f32)
        })
        .collect()
}

/// Median seconds of `runs` calls of `f` (after one warm-up call).
fn median_secs(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

fn measure<T: Dtype>(n: usize, src: &[f32]) {
    let runs = if n <= 1 << 22 { 101 } else { 7 };
    let mut dst = vec![T::ZERO; n];
    let t = median_secs(runs, || {
        convert_slice(src, &mut dst).expect("equal lengths")
    });
    println!("encode {} {n} {:.3}", T::NAME, n as f64 / t / 1e9);
    let mut back = vec![0.0f32; n];
    let t = median_secs(runs, || {
        convert_slice_to_f32(&dst, &mut back).expect("equal lengths")
    });
    println!("decode {} {n} {:.3}", T::NAME, n as f64 / t / 1e9);
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .unwrap_or_else(|_| panic!("size must be an integer, got {a:?}"))
        })
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1 << 20, 1 << 26]
    } else {
        sizes
    };
    for n in sizes {
        let src = inputs(n);
        measure::<Bf16>(n, &src);
        measure::<F16>(n, &src);
        measure::<E4M3>(n, &src);
        measure::<E5M2>(n, &src);
    }
}
