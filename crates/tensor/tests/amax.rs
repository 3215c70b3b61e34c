//! The amax (largest magnitude) that FP8 scaling reads: `Tensor::abs_max`, the `amax`
//! every cast reports and `Tensor::all_finite` (the same pass), against an F64 reference
//! over the decoded values, on inputs that reach the hard cases (NaN, ±inf, ±0,
//! subnormals, the largest finite values), on strided views, and on tensors large enough
//! to run on both cores.
//!
//! Tolerance: none. The maximum of magnitudes is exact, then rounded once into the
//! accumulator (f32 but for F64; a report's amax is always f32) as the reference rounds
//! it, so values are compared by their bits, with any NaN equal to any NaN.

use mixprec_dtype::{Acc, Bf16, Dtype, E4M3, E5M2, F16, F32};
use mixprec_tensor::{CastOptions, CastOverflow, CastScale, Tensor};
use mixprec_testing::for_each_dtype;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Max |x| over `values`, NaN when any is NaN, 0 when empty.
fn reference(values: &[f64]) -> f64 {
    if values.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    values.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Equal bits, or both NaN.
fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// `D`'s hard values: ±0, ±smallest subnormal, ±smallest normal, ±largest finite, ±inf
/// (where the format has it), NaN.
fn specials<D: Dtype>() -> Vec<f64> {
    let mut v = Vec::new();
    for x in [
        0.0,
        D::MIN_SUBNORMAL.to_f64(),
        D::MIN_POSITIVE.to_f64(),
        D::MAX.to_f64(),
    ] {
        v.extend([x, -x]);
    }
    if D::HAS_INF {
        v.extend([f64::INFINITY, f64::NEG_INFINITY]);
    }
    v.push(f64::NAN);
    v
}

/// One value: a hard value of `D` (a third of the draws), any f32 bit pattern rounded
/// into `D` (NaN payloads, subnormals, huge values), or a moderate value.
fn value<D: Dtype>() -> impl Strategy<Value = f64> {
    prop_oneof![
        proptest::sample::select(specials::<D>()),
        any::<u32>().prop_map(|b| f64::from(f32::from_bits(b))),
        -100.0f64..100.0,
    ]
}

/// The tensor of `values` in `D`. FP8 tensors get a power-of-two scale, so a decoded
/// value is the stored one divided by it.
fn tensor<D: Dtype>(values: &[f64], shape: &[usize]) -> Tensor<D> {
    Tensor::<D>::from_f64(values, shape).expect("the shape fits")
}

/// The amax of `t` as every route reports it equals the reference over its values.
fn check_every_route<D: Dtype>(t: &Tensor<D>) -> Result<(), TestCaseError> {
    let want = reference(&t.to_f64_vec());
    let want32 = f64::from(want as f32);
    // abs_max is in `D::Acc`: f64 for F64, else f32 (where an FP8 value decoded with a
    // tiny scale can exceed f32's range and round to inf, as the reference does).
    let want_acc = if D::DTYPE == mixprec_dtype::DType::F64 {
        want
    } else {
        want32
    };
    let got = t.abs_max().to_f64();
    prop_assert!(same(got, want_acc), "abs_max {got} vs {want_acc}");
    // all_finite shares the amax's pass; it judges the stored values (an FP8 code over a
    // tiny scale may exceed f32's range and still be finite).
    let finite = t.to_f64_vec().iter().all(|v| v.is_finite());
    prop_assert_eq!(t.all_finite(), finite, "all_finite");
    let report = |r: mixprec_tensor::CastReport| f64::from(r.amax);
    let plain = CastOptions::default();
    let saturating = CastOptions {
        overflow: CastOverflow::Saturate,
        scale: CastScale::Fixed(0.5),
        ..CastOptions::default()
    };
    let casts = [
        ("F32", report(t.cast_with::<F32>(plain).unwrap().1)),
        ("Bf16", report(t.cast_with::<Bf16>(plain).unwrap().1)),
        ("F16", report(t.cast_with::<F16>(plain).unwrap().1)),
        ("E4M3", report(t.cast_with::<E4M3>(saturating).unwrap().1)),
        ("E5M2 auto", report(t.cast_with::<E5M2>(plain).unwrap().1)),
    ];
    for (target, amax) in casts {
        prop_assert!(
            same(amax, want32),
            "cast to {target}: amax {amax} vs {want32}"
        );
    }
    Ok(())
}

fn amax_equals_the_reference<D: Dtype>() {
    let cases = (1usize..6, 1usize..6)
        .prop_flat_map(|(r, c)| (proptest::collection::vec(value::<D>(), r * c), Just((r, c))));
    TestRunner::new(Config::with_cases(256))
        .run(&cases, |(values, (r, c))| {
            let t = tensor::<D>(&values, &[r, c]);
            check_every_route(&t)?;
            // A transposed view is gathered first; its amax is the same.
            check_every_route(&t.transpose(0, 1).unwrap())
        })
        .unwrap();
}
for_each_dtype!(amax_equals_the_reference);

/// Above the parallel threshold: one hard value at any position of a large tensor of
/// small values is the amax (or makes it NaN), whichever piece holds it.
fn amax_of_large_tensors<D: Dtype>() {
    const N: usize = 150_000;
    let cases = (0..N, proptest::sample::select(specials::<D>()));
    TestRunner::new(Config::with_cases(24))
        .run(&cases, |(at, special)| {
            let mut values: Vec<f64> = (0..N).map(|i| ((i % 7) as f64) * 0.125).collect();
            values[at] = special;
            check_every_route(&tensor::<D>(&values, &[N]))
        })
        .unwrap();
}
for_each_dtype!(amax_of_large_tensors);

#[test]
fn empty_tensors_have_amax_zero() {
    let t = Tensor::<Bf16>::zeros(&[0, 3]);
    assert_eq!(t.abs_max(), 0.0);
    let (_, r) = t.cast_with::<E4M3>(CastOptions::default()).unwrap();
    assert_eq!(r.amax.to_bits(), 0.0f32.to_bits());
}
