//! The `approx` crate's comparisons for tensors: `assert_relative_eq!(a, b)` on two
//! `Tensor<Bf16>`s compares shapes, then every element, with the precision's
//! one-rounding preset as the default tolerance
//! ([`mixprec_dtype::approx_eq::rounding_tolerance`]).
//!
//! Elements are compared as their logical values (FP8 decoded and unscaled, in f64).
//! `ulps_eq` counts steps of `D`'s encoding, so it compares tensors of one scale only
//! (tensors whose scales differ are not `ulps_eq`). Tensors of different shapes are never
//! equal (no broadcasting). A NaN equals nothing.
//!
//! ```
//! use approx::{assert_relative_eq, assert_ulps_eq};
//! use mixprec_dtype::{Bf16, F32};
//! use mixprec_tensor::Tensor;
//! let x = Tensor::<F32>::from_f32(&[0.1, 0.2, 0.3], &[3]).unwrap();
//! let y = x.cast::<Bf16>();
//! let z = (x.clone() * 3.0).cast::<Bf16>() / 3.0; // other roundings, same BF16 values within 1 ulp
//! assert_relative_eq!(y, z);
//! assert_ulps_eq!(y, z, max_ulps = 1);
//! assert_relative_eq!(x, y.cast::<F32>(), max_relative = 2f64.powi(-8));
//! ```

use crate::tensor::Tensor;
use approx::{AbsDiffEq, RelativeEq, UlpsEq};
use mixprec_dtype::Dtype;
use mixprec_dtype::approx_eq::{DEFAULT_MAX_ULPS, rounding_tolerance, ulps_within};

impl<D: Dtype> Tensor<D> {
    /// True when both have one shape and `same(a, b)` holds for every pair of logical
    /// values.
    fn all_pairs(&self, other: &Tensor<D>, same: impl Fn(f64, f64) -> bool) -> bool {
        self.shape() == other.shape()
            && (0..self.numel()).all(|i| same(self.value_at(i), other.value_at(i)))
    }
}

/// Equal shapes and equal logical values, element by element (IEEE equality: `-0 == 0`,
/// NaN equals nothing; FP8 tensors of different scales are equal when their values are).
/// `approx`'s comparisons build on it.
impl<D: Dtype> PartialEq for Tensor<D> {
    fn eq(&self, other: &Tensor<D>) -> bool {
        self.all_pairs(other, |a, b| a == b)
    }
}

impl<D: Dtype> AbsDiffEq for Tensor<D> {
    type Epsilon = f64;

    fn default_epsilon() -> f64 {
        rounding_tolerance(D::DTYPE).abs
    }

    fn abs_diff_eq(&self, other: &Self, epsilon: f64) -> bool {
        self.all_pairs(other, |a, b| a.abs_diff_eq(&b, epsilon))
    }
}

impl<D: Dtype> RelativeEq for Tensor<D> {
    fn default_max_relative() -> f64 {
        rounding_tolerance(D::DTYPE).rel
    }

    fn relative_eq(&self, other: &Self, epsilon: f64, max_relative: f64) -> bool {
        self.all_pairs(other, |a, b| a.relative_eq(&b, epsilon, max_relative))
    }
}

impl<D: Dtype> UlpsEq for Tensor<D> {
    fn default_max_ulps() -> u32 {
        DEFAULT_MAX_ULPS
    }

    fn ulps_eq(&self, other: &Self, epsilon: f64, max_ulps: u32) -> bool {
        if self.shape() != other.shape() || self.scale() != other.scale() {
            return false;
        }
        let data = (self.storage.as_slice(), other.storage.as_slice());
        (0..self.numel()).all(|i| {
            let (a, b) = (
                data.0[self.layout.offset_of(i)],
                data.1[other.layout.offset_of(i)],
            );
            self.value_at(i).abs_diff_eq(&other.value_at(i), epsilon) || ulps_within(a, b, max_ulps)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;
    use approx::{abs_diff_eq, relative_eq, ulps_eq};
    use mixprec_dtype::{Bf16, E4M3, F32};

    #[test]
    fn shapes_values_and_nan_decide() {
        let a = Tensor::<F32>::from_f32(&[1.0, 2.0], &[2]).unwrap();
        let b = Tensor::<F32>::from_f32(&[1.0, 2.0], &[1, 2]).unwrap();
        assert!(!relative_eq!(a, b), "shapes differ");
        let c = Tensor::<F32>::from_f32(&[1.0, 2.0 * (1.0 + 1e-7)], &[2]).unwrap();
        assert!(relative_eq!(a, c) && ulps_eq!(a, c) && !abs_diff_eq!(a, c));
        let n = Tensor::<F32>::from_f32(&[1.0, f32::NAN], &[2]).unwrap();
        assert!(!relative_eq!(n, n.clone()));
        assert!(n != n.clone() && a == a.clone() && a != b);
        let wide = Tensor::<Bf16>::from_f32(&[1.0, 2.1], &[2]).unwrap();
        assert!(!relative_eq!(
            wide,
            Tensor::<Bf16>::from_f32(&[1.0, 2.0], &[2]).unwrap()
        ));
    }

    #[test]
    fn scaled_fp8_compares_logical_values() {
        let x = Tensor::<F32>::from_f32(&[100.0, -3.0], &[2]).unwrap();
        let q = x.cast::<E4M3>(); // scaled per tensor
        assert!(q.scale() != 1.0);
        assert!(relative_eq!(q.cast::<F32>(), x, max_relative = 0.07));
        let broadcast = Tensor::<F32>::from_f32(&[2.0], &[1])
            .unwrap()
            .broadcast_to(&[3])
            .unwrap();
        assert!(relative_eq!(
            broadcast,
            Tensor::<F32>::from_f32(&[2.0; 3], &[3]).unwrap()
        ));
    }
}
