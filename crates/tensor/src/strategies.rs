//! [proptest](https://docs.rs/proptest) strategies for users' property tests (feature
//! `proptest`): values and tensors of every precision that reach the hard cases — signed
//! zeros, subnormals, the smallest normal, values next to the largest finite one,
//! infinities, NaN — and `f32` inputs exactly halfway between two values of a precision
//! (the ties of a rounding).
//!
//! A property test of a custom op (here: `x * 2 / 2 == x` for every finite BF16 value
//! that does not overflow, checked on whole tensors):
//!
//! ```
//! use mixprec_dtype::{Bf16, Dtype};
//! use mixprec_tensor::strategies::{finite_tensor, shape};
//! use proptest::prelude::*;
//!
//! fn double_then_halve(x: &mixprec_tensor::Tensor<Bf16>) -> mixprec_tensor::Tensor<Bf16> {
//!     x * 2.0 / 2.0
//! }
//!
//! proptest!(|(x in finite_tensor::<Bf16>(shape(3, 5)))| {
//!     let y = double_then_halve(&x);
//!     let big = Bf16::MAX.to_f64() / 2.0;
//!     for (a, b) in x.to_f64_vec().into_iter().zip(y.to_f64_vec()) {
//!         if a.abs() <= big {
//!             prop_assert_eq!(a.to_bits(), b.to_bits(), "signed zeros and subnormals too");
//!         }
//!     }
//! });
//! ```

use crate::tensor::Tensor;
use mixprec_dtype::{Dtype, LeBits};
use proptest::prelude::*;

/// The hard values of `D`: ±0, ±smallest subnormal, ±largest subnormal, ±smallest
/// normal, ±1, ±largest finite and its neighbour below, ±infinity (for formats that have
/// it) and NaN.
pub fn special_values<D: Dtype>() -> Vec<D> {
    let max = D::MAX.to_f64();
    let below_max = {
        // One step below MAX: the largest value less than MAX.
        let ulp = max * D::EPSILON.to_f64() / 2.0;
        D::from_f64(max - ulp)
    };
    let largest_subnormal = D::from_f64(D::MIN_POSITIVE.to_f64() - D::MIN_SUBNORMAL.to_f64());
    let mut out = Vec::new();
    for v in [
        D::ZERO,
        D::MIN_SUBNORMAL,
        largest_subnormal,
        D::MIN_POSITIVE,
        D::ONE,
        below_max,
        D::MAX,
    ] {
        out.push(v);
        out.push(D::from_f64(-v.to_f64()));
    }
    if D::HAS_INF {
        out.push(D::from_f64(f64::INFINITY));
        out.push(D::from_f64(f64::NEG_INFINITY));
    }
    out.push(D::from_f64(f64::NAN));
    out
}

/// Any value of `D`: a special value (a quarter of the draws), any bit pattern (a
/// quarter: NaN payloads, subnormals), or a normal value of moderate size (half).
pub fn value<D: Dtype>() -> impl Strategy<Value = D> + Clone {
    let specials = special_values::<D>();
    prop_oneof![
        1 => proptest::sample::select(specials),
        1 => any::<u64>().prop_map(from_any_bits::<D>),
        2 => (-1e4f64..1e4).prop_map(D::from_f64),
    ]
}

/// Any finite value of `D` (the specials without infinities and NaN included).
pub fn finite_value<D: Dtype>() -> impl Strategy<Value = D> + Clone {
    value::<D>().prop_filter("finite", |v| v.is_finite())
}

/// An `f32` exactly halfway between two adjacent finite values of `D` (a tie of rounding
/// into `D`), signs and magnitudes from subnormal to largest. `D` must be narrower than
/// F32 (BF16, F16, E4M3, E5M2), so that the midpoint is an `f32`.
pub fn tie<D: Dtype>() -> impl Strategy<Value = f32> {
    finite_value::<D>().prop_filter_map("a value below the largest", |v| {
        let a = v.to_f64().abs();
        if a >= D::MAX.to_f64() {
            return None;
        }
        // The next value up, found by rounding a point just above `a` up and away.
        let up = next_up::<D>(a)?;
        let mid = (a + up) / 2.0;
        let sign = if v.is_sign_negative() { -1.0 } else { 1.0 };
        Some((sign * mid) as f32).filter(|m| f64::from(*m) == sign * mid)
    })
}

/// A shape of rank 0..=`max_rank` with extents 0..=`max_dim`.
pub fn shape(max_rank: usize, max_dim: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0..=max_dim, 0..=max_rank)
}

/// A tensor of `D` of a shape drawn from `shape`, values from [`value`].
pub fn tensor<D: Dtype>(
    shape: impl Strategy<Value = Vec<usize>>,
) -> impl Strategy<Value = Tensor<D>> {
    tensor_of(shape, value::<D>())
}

/// A tensor of `D` whose values are all finite ([`finite_value`]).
pub fn finite_tensor<D: Dtype>(
    shape: impl Strategy<Value = Vec<usize>>,
) -> impl Strategy<Value = Tensor<D>> {
    tensor_of(shape, finite_value::<D>())
}

/// A tensor of a shape from `shape` with values from `values`.
pub fn tensor_of<D: Dtype>(
    shape: impl Strategy<Value = Vec<usize>>,
    values: impl Strategy<Value = D> + Clone,
) -> impl Strategy<Value = Tensor<D>> {
    shape.prop_flat_map(move |s| {
        let n: usize = s.iter().product();
        proptest::collection::vec(values.clone(), n).prop_map(move |v| {
            Tensor::from_vec(v, &s).unwrap_or_else(|e| panic!("a generated shape fits: {e}"))
        })
    })
}

/// `D`'s value of the low bits of `bits`.
fn from_any_bits<D: Dtype>(bits: u64) -> D {
    let bytes = bits.to_le_bytes();
    let bits = LeBits::from_le_slice(&bytes[..D::BYTES]);
    bits.map_or(D::ZERO, D::from_bits)
}

/// The smallest value of `D` above `a` (a finite, `>= 0`, below the largest): the next
/// encoding up, since positive values are ordered as their bits.
fn next_up<D: Dtype>(a: f64) -> Option<f64> {
    let mut bytes = Vec::with_capacity(8);
    D::from_f64(a).to_bits().push_le_bytes(&mut bytes);
    bytes.resize(8, 0);
    let bits = u64::from_le_bytes(bytes.try_into().ok()?);
    let up = from_any_bits::<D>(bits + 1);
    up.is_finite().then(|| up.to_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::{Bf16, E4M3, E5M2, F16, F32};
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    /// Draws `n` values and returns them.
    fn draw<T: std::fmt::Debug>(s: impl Strategy<Value = T>, n: usize) -> Vec<T> {
        let mut runner = TestRunner::deterministic();
        (0..n)
            .map(|_| s.new_tree(&mut runner).unwrap().current())
            .collect()
    }

    fn reaches_every_hard_case<D: Dtype>() {
        let values = draw(value::<D>(), 4000);
        let has = |f: &dyn Fn(D) -> bool| values.iter().any(|&v| f(v));
        assert!(has(&|v| v.is_nan()), "NaN");
        assert!(has(&|v| v.to_f64() == 0.0 && v.is_sign_negative()), "-0");
        assert!(
            has(&|v| v.to_f64() != 0.0 && v.to_f64().abs() < D::MIN_POSITIVE.to_f64()),
            "subnormal"
        );
        assert!(has(&|v| v.to_f64() == D::MAX.to_f64()), "MAX");
        assert!(has(&|v| v.to_f64() == -D::MAX.to_f64()), "-MAX");
        if D::HAS_INF {
            assert!(has(&|v| v.is_infinite()), "inf");
        }
        assert!(draw(finite_value::<D>(), 500).iter().all(|v| v.is_finite()));
    }
    mixprec_testing::for_each_dtype!(reaches_every_hard_case);

    /// Ties are exactly halfway: rounding to nearest even lands on the neighbour with
    /// the even encoding, and a nudge either way picks the nearer neighbour.
    fn ties_are_midpoints<D: Dtype>() {
        for t in draw(tie::<D>(), 300) {
            let (lo, hi) = (
                D::from_f32(t - t.abs() * 1e-7 - 1e-45),
                D::from_f32(t + t.abs() * 1e-7 + 1e-45),
            );
            let r = D::from_f32(t);
            assert!(
                r.to_f64() == lo.to_f64() || r.to_f64() == hi.to_f64(),
                "{t}"
            );
            assert_ne!(lo.to_f64(), hi.to_f64(), "{t} lies between two values");
        }
    }

    #[test]
    fn ties_of_narrow_types() {
        ties_are_midpoints::<Bf16>();
        ties_are_midpoints::<F16>();
        ties_are_midpoints::<E4M3>();
        ties_are_midpoints::<E5M2>();
    }

    #[test]
    fn tensors_have_their_shapes() {
        for t in draw(tensor::<F32>(shape(3, 4)), 50) {
            assert_eq!(t.numel(), t.shape().iter().product::<usize>());
            assert!(t.shape().len() <= 3);
        }
    }
}
