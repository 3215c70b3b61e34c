//! Memory-bound ops on 16M elements in F32, Bf16 and F16: milliseconds and GB/s (bytes
//! read + written at the storage width), next to a plain memcpy of the same bytes.
//! Median of several runs.
//!
//! Run: `cargo run --release --example ops_throughput [-- ELEMENTS]`

use mixprec::prelude::*;
use mixprec::tensor::{Rng, Tensor};
use std::time::Instant;

fn median_secs(mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..9)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[4]
}

/// memcpy of `bytes` bytes (read + write), one thread and both threads.
fn memcpy_gbs(bytes: usize) -> (f64, f64) {
    let src = vec![1u8; bytes];
    let mut dst = vec![0u8; bytes];
    let one = median_secs(|| dst.copy_from_slice(&src));
    let two = median_secs(|| {
        let half = bytes / 2;
        let (d0, d1) = dst.split_at_mut(half);
        rayon::join(
            || d0.copy_from_slice(&src[..half]),
            || d1.copy_from_slice(&src[half..]),
        );
    });
    (
        2.0 * bytes as f64 / one / 1e9,
        2.0 * bytes as f64 / two / 1e9,
    )
}

fn row(op: &str, name: &str, secs: f64, bytes: usize, f32_secs: Option<f64>) {
    let ratio = f32_secs.map_or(String::from("1.00"), |f| format!("{:.2}", f / secs));
    println!(
        "{op:<11} {name:<5} {:>8.2} ms {:>7.1} GB/s  speed vs f32 {ratio}x",
        secs * 1e3,
        bytes as f64 / secs / 1e9
    );
}

/// An op to time: name, bytes it moves, and the call.
type Case<'a> = (&'static str, usize, Box<dyn Fn() + 'a>);

fn bench<D: Dtype>(n: usize, f32_times: &mut Vec<f64>) {
    let mut rng = Rng::seed(3);
    let a = Tensor::<D>::randn(&[n / 1024, 1024], 0.0, 1.0, &mut rng).expect("valid");
    let b = Tensor::<D>::randn(&[n / 1024, 1024], 0.0, 1.0, &mut rng).expect("valid");
    let w = Tensor::<D>::ones(&[1024]);
    let bytes = n * D::BYTES;
    let cases: Vec<Case> = vec![
        ("exp", 2 * bytes, Box::new(|| drop(a.exp()))),
        (
            "add",
            3 * bytes,
            Box::new(|| drop(a.add(&b).expect("same shape"))),
        ),
        ("gelu", 2 * bytes, Box::new(|| drop(a.gelu()))),
        (
            "softmax",
            2 * bytes,
            Box::new(|| drop(a.softmax(-1).expect("valid axis"))),
        ),
        (
            "layer_norm",
            2 * bytes,
            Box::new(|| {
                drop(
                    a.layer_norm(&[1024], Some(&w), Some(&w), 1e-5)
                        .expect("valid"),
                )
            }),
        ),
    ];
    for (i, (op, moved, f)) in cases.iter().enumerate() {
        let t = median_secs(f);
        let base = if D::DTYPE == DType::F32 {
            f32_times.push(t);
            None
        } else {
            Some(f32_times[i])
        };
        row(op, D::NAME, t, *moved, base);
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(1 << 24, |a| a.parse().expect("element count"));
    let n = n / 1024 * 1024;
    println!(
        "{n} elements ({} MiB as f32), {} threads",
        (n * 4) >> 20,
        rayon::current_num_threads()
    );
    for width in [4usize, 2] {
        let (one, two) = memcpy_gbs(n * width);
        println!(
            "memcpy of {} MiB: {one:.1} GB/s one thread, {two:.1} GB/s two threads",
            (n * width) >> 20
        );
    }
    let mut f32_times = Vec::new();
    bench::<F32>(n, &mut f32_times);
    bench::<Bf16>(n, &mut f32_times);
    bench::<F16>(n, &mut f32_times);
}
