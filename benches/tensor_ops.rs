//! Criterion benchmarks of the tensor ops: matmul (squares and transformer linear
//! shapes) in F32, Bf16 and F16, and memory-bound ops on 16M elements.
//!
//! Run: `cargo bench -p mixprec --bench tensor_ops` (filter with `-- matmul` or
//! `-- elementwise`). Side-by-side ratios against numpy come from
//! `benches/compare/matmul.py`; GB/s against memcpy from `examples/ops_throughput.rs`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mixprec::prelude::*;
use std::hint::black_box;
use std::time::Duration;

fn matmul_group<D: Dtype>(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("matmul_{}", D::NAME));
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    let shapes = [
        (128, 128, 128),
        (512, 512, 512),
        (1024, 1024, 1024),
        (2048, 768, 3072),
        (2048, 3072, 768),
    ];
    for (m, k, n) in shapes {
        let mut rng = Rng::seed(1);
        let a = Tensor::<D>::randn(&[m, k], 0.0, 1.0, &mut rng).expect("valid");
        let b = Tensor::<D>::randn(&[k, n], 0.0, 1.0, &mut rng).expect("valid");
        // Throughput in multiply-adds, so criterion's elem/s reads as MAC/s (x2 = FLOP/s).
        group.throughput(Throughput::Elements((m * k * n) as u64));
        group.bench_function(
            BenchmarkId::from_parameter(format!("{m}x{k}x{n}")),
            |bench| bench.iter(|| black_box(a.matmul(black_box(&b)).expect("shapes match"))),
        );
    }
    group.finish();
}

fn elementwise_group<D: Dtype>(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("elementwise_{}", D::NAME));
    group
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    let n = 1 << 24;
    let mut rng = Rng::seed(2);
    let a = Tensor::<D>::randn(&[n / 1024, 1024], 0.0, 1.0, &mut rng).expect("valid");
    let b = Tensor::<D>::randn(&[n / 1024, 1024], 0.0, 1.0, &mut rng).expect("valid");
    group.throughput(Throughput::Bytes((2 * n * D::BYTES) as u64));
    group.bench_function("exp", |bench| bench.iter(|| black_box(a.exp())));
    group.bench_function("softmax", |bench| {
        bench.iter(|| black_box(a.softmax(-1).expect("valid")))
    });
    group.bench_function("layer_norm", |bench| {
        bench.iter(|| black_box(a.layer_norm(&[1024], None, None, 1e-5).expect("valid")))
    });
    group.throughput(Throughput::Bytes((3 * n * D::BYTES) as u64));
    group.bench_function("add", |bench| {
        bench.iter(|| black_box(a.add(&b).expect("same shape")))
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    matmul_group::<F32>(c);
    matmul_group::<Bf16>(c);
    matmul_group::<F16>(c);
    elementwise_group::<F32>(c);
    elementwise_group::<Bf16>(c);
    elementwise_group::<F16>(c);
}

criterion_group!(tensor_ops, benches);
criterion_main!(tensor_ops);
