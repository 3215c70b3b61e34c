//! Throughput of the slice conversions f32 -> each narrow type and back, at 1M and 64M
//! elements, against a plain per-element loop over the scalar functions, the integer
//! reference rounding, and the `half`
//! crate's own slice conversions for bf16 and f16.
//!
//! Run: `cargo bench -p mixprec --bench dtype_convert` (add `-- 1M` for the small size
//! only). Criterion reports elements per second; `benches/compare/dtype_convert.py` runs
//! ml_dtypes on the same sizes.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use half::slice::HalfFloatSliceExt;
use mixprec::dtype::reference::encode_slice_reference;
use mixprec::prelude::*;
use std::hint::black_box;
use std::time::Duration;

const SIZES: [(usize, &str); 2] = [(1 << 20, "1M"), (1 << 26, "64M")];

/// Deterministic inputs spread over several binades, with signs, like activations.
fn inputs(n: usize) -> Vec<f32> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
            (unit - 0.5) * 8.0 * (1.0 + (state & 0xF) as f32)
        })
        .collect()
}

fn encode_group<T: Dtype>(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("encode_f32_to_{}", T::NAME));
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    for (n, label) in SIZES {
        let src = inputs(n);
        let mut dst = vec![T::ZERO; n];
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("mixprec_slice", label), |b| {
            b.iter(|| convert_slice(black_box(&src), black_box(&mut dst)).unwrap())
        });
        group.bench_function(
            BenchmarkId::new("mixprec_slice_scaled_saturating", label),
            |b| {
                b.iter(|| {
                    convert_slice_scaled_saturating(black_box(&src), black_box(&mut dst), 0.75)
                        .unwrap()
                })
            },
        );
        group.bench_function(BenchmarkId::new("per_element_loop", label), |b| {
            b.iter(|| {
                for (d, &s) in black_box(&mut dst).iter_mut().zip(black_box(&src)) {
                    *d = T::from_f32(s);
                }
            })
        });
        group.bench_function(BenchmarkId::new("integer_reference_loop", label), |b| {
            b.iter(|| encode_slice_reference(black_box(&src), black_box(&mut dst), false, None))
        });
    }
    group.finish();
}

fn decode_group<T: Dtype>(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("decode_{}_to_f32", T::NAME));
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    for (n, label) in SIZES {
        let mut src = vec![T::ZERO; n];
        convert_slice_saturating(&inputs(n), &mut src).unwrap();
        let mut dst = vec![0.0f32; n];
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("mixprec_slice", label), |b| {
            b.iter(|| convert_slice_to_f32(black_box(&src), black_box(&mut dst)).unwrap())
        });
        group.bench_function(BenchmarkId::new("per_element_loop", label), |b| {
            b.iter(|| {
                for (d, s) in black_box(&mut dst).iter_mut().zip(black_box(&src)) {
                    *d = s.to_f32();
                }
            })
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    encode_group::<Bf16>(c);
    encode_group::<F16>(c);
    encode_group::<E4M3>(c);
    encode_group::<E5M2>(c);
    decode_group::<Bf16>(c);
    decode_group::<F16>(c);
    decode_group::<E4M3>(c);
    decode_group::<E5M2>(c);
    half_crate(c);
}

/// The `half` crate's slice conversions, on its own types (same sizes, same inputs).
fn half_crate(c: &mut Criterion) {
    for (n, label) in SIZES {
        let src = inputs(n);
        let mut group = c.benchmark_group("half_crate");
        group
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .sample_size(10);
        group.throughput(Throughput::Elements(n as u64));
        let mut f16s = vec![half::f16::ZERO; n];
        let mut bf16s = vec![half::bf16::ZERO; n];
        let mut back = vec![0.0f32; n];
        group.bench_function(BenchmarkId::new("encode_f32_to_f16", label), |b| {
            b.iter(|| black_box(&mut f16s).convert_from_f32_slice(black_box(&src)))
        });
        group.bench_function(BenchmarkId::new("encode_f32_to_bf16", label), |b| {
            b.iter(|| black_box(&mut bf16s).convert_from_f32_slice(black_box(&src)))
        });
        group.bench_function(BenchmarkId::new("decode_f16_to_f32", label), |b| {
            b.iter(|| black_box(&f16s).convert_to_f32_slice(black_box(&mut back)))
        });
        group.bench_function(BenchmarkId::new("decode_bf16_to_f32", label), |b| {
            b.iter(|| black_box(&bf16s).convert_to_f32_slice(black_box(&mut back)))
        });
        group.finish();
    }
}

criterion_group!(dtype_convert, benches);
criterion_main!(dtype_convert);
