//! The `approx` crate's comparisons for the precision types, so `assert_relative_eq!`,
//! `assert_abs_diff_eq!` and `assert_ulps_eq!` work on `Bf16`, `F16`, `E4M3`, ...
//!
//! Values are compared as the f64 numbers they are (exact for every type). The defaults
//! are the precision's tolerance preset for a result rounded once
//! ([`rounding_tolerance`]): relative one unit in the last place of the type (two for
//! F32, where libm's error adds to the rounding), absolute its smallest subnormal, and 2
//! ulps counted in the type's own encoding. NaN equals nothing; infinities of one sign
//! are equal.
//!
//! ```
//! use approx::{assert_relative_eq, assert_ulps_eq};
//! use mixprec_dtype::{Bf16, Dtype};
//! let a = Bf16::from_f32(1.0);
//! let b = Bf16::from_f32(1.0078125); // the next BF16 after 1
//! assert_relative_eq!(a, b);         // within BF16's one-rounding preset (2^-7)
//! assert_ulps_eq!(a, b, max_ulps = 1);
//! assert!(approx::relative_ne!(a, Bf16::from_f32(1.03125)));
//! ```

use crate::dtype::{DType, Dtype};
use crate::le_bits::LeBits;
use crate::types::{Bf16, E4M3, E5M2, F16, F32, F64};
use approx::{AbsDiffEq, RelativeEq, UlpsEq};

/// A result rounded once into a precision: `|got - want| <= abs + abs_of_max * max|want| +
/// rel * |want|`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RoundingTolerance {
    /// Relative bound.
    pub rel: f64,
    /// Absolute floor.
    pub abs: f64,
    /// Absolute bound as a fraction of the largest magnitude compared (what FP8's
    /// per-tensor scaling needs).
    pub abs_of_max: f64,
}

/// The tolerance preset of a result computed in f32 (f64 for F64) and rounded once into
/// `d`:
///
/// | dtype | rel (1 ulp) | abs (smallest subnormal) | abs of max (FP8 subnormal step after power-of-two scaling) |
/// |---|---|---|---|
/// | F64 | 1e-12 (libm slack) | 0 | 0 |
/// | F32 | 2.4e-7 (2 ulp) | 2^-149 | 0 |
/// | Bf16 | 2^-7 | 2^-133 | 0 |
/// | F16 | 2^-10 | 2^-24 | 0 |
/// | E4M3 | 2^-3 | 0 | 2^-17 (2^-9 / 224 < 2^-16.8) |
/// | E5M2 | 2^-2 | 0 | 2^-31 (2^-16 / 28672 < 2^-30.8) |
pub fn rounding_tolerance(d: DType) -> RoundingTolerance {
    let (rel, abs, abs_of_max) = match d {
        DType::F64 => (1e-12, 0.0, 0.0),
        DType::F32 => (2.4e-7, 2f64.powi(-149), 0.0),
        DType::Bf16 => (2f64.powi(-7), 2f64.powi(-133), 0.0),
        DType::F16 => (2f64.powi(-10), 2f64.powi(-24), 0.0),
        DType::E4M3 => (2f64.powi(-3), 0.0, 2f64.powi(-17)),
        DType::E5M2 => (2f64.powi(-2), 0.0, 2f64.powi(-31)),
    };
    RoundingTolerance {
        rel,
        abs,
        abs_of_max,
    }
}

/// Default ulps of `ulps_eq` for every precision: one rounding on each side.
pub const DEFAULT_MAX_ULPS: u32 = 2;

/// The position of `x` in the type's ordering of finite and infinite values (adjacent
/// representable values differ by 1; `+0` and `-0` are both 0).
pub fn ordinal<D: Dtype>(x: D) -> i64 {
    let mut bytes = Vec::with_capacity(8);
    x.to_bits().push_le_bytes(&mut bytes);
    bytes.resize(8, 0);
    let bits = u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8]));
    let sign = 1u64 << (8 * D::BYTES - 1);
    let magnitude = (bits & (sign - 1)) as i64;
    if bits & sign != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// `a` and `b` within `max_ulps` steps of the type's encoding (never for NaN).
pub fn ulps_within<D: Dtype>(a: D, b: D, max_ulps: u32) -> bool {
    !a.is_nan() && !b.is_nan() && ordinal(a).abs_diff(ordinal(b)) <= u64::from(max_ulps)
}

macro_rules! approx_for {
    ($($t:ty),*) => {$(
        impl AbsDiffEq for $t {
            type Epsilon = f64;
            fn default_epsilon() -> f64 {
                rounding_tolerance(<$t as Dtype>::DTYPE).abs
            }
            fn abs_diff_eq(&self, other: &Self, epsilon: f64) -> bool {
                self.to_f64().abs_diff_eq(&other.to_f64(), epsilon)
            }
        }

        impl RelativeEq for $t {
            fn default_max_relative() -> f64 {
                rounding_tolerance(<$t as Dtype>::DTYPE).rel
            }
            fn relative_eq(&self, other: &Self, epsilon: f64, max_relative: f64) -> bool {
                self.to_f64().relative_eq(&other.to_f64(), epsilon, max_relative)
            }
        }

        impl UlpsEq for $t {
            fn default_max_ulps() -> u32 {
                DEFAULT_MAX_ULPS
            }
            fn ulps_eq(&self, other: &Self, epsilon: f64, max_ulps: u32) -> bool {
                self.abs_diff_eq(other, epsilon) || ulps_within(*self, *other, max_ulps)
            }
        }
    )*};
}

approx_for!(F64, F32, Bf16, F16, E4M3, E5M2);

#[cfg(test)]
mod tests {
    use super::*;
    use approx::{abs_diff_eq, relative_eq, ulps_eq};

    #[test]
    fn ordinals_count_representable_values() {
        assert_eq!(ordinal(Bf16::from_f32(0.0)), 0);
        assert_eq!(ordinal(Bf16::from_f32(-0.0)), 0);
        assert_eq!(ordinal(Bf16::MIN_SUBNORMAL), 1);
        assert_eq!(
            ordinal(Bf16::from_f32(1.0)) - ordinal(Bf16::from_f32(0.5)),
            128
        );
        assert_eq!(ordinal(E4M3::MAX) - ordinal(E4M3::from_f32(416.0)), 1);
        assert_eq!(ordinal(E5M2::from_f32(-1.0)), -ordinal(E5M2::from_f32(1.0)));
    }

    #[test]
    fn defaults_are_one_rounding_of_the_type() {
        let one = F16::from_f32(1.0);
        let up = F16::from_f32(1.0 + 2f32.powi(-10));
        assert!(relative_eq!(one, up));
        assert!(!relative_eq!(one, F16::from_f32(1.0 + 2f32.powi(-8))));
        assert!(ulps_eq!(one, up));
        assert!(ulps_eq!(F16::from_f32(0.0), F16::from_f32(-0.0)));
        assert!(!ulps_eq!(F16::from_f32(f32::NAN), F16::from_f32(f32::NAN)));
        assert!(relative_eq!(F32(f32::INFINITY), F32(f32::INFINITY)));
        assert!(!abs_diff_eq!(E4M3::from_f32(1.0), E4M3::from_f32(1.125)));
        assert!(relative_eq!(E4M3::from_f32(1.0), E4M3::from_f32(1.125)));
        // Subnormals: within the absolute floor of one smallest subnormal.
        assert!(abs_diff_eq!(Bf16::MIN_SUBNORMAL, Bf16::from_f32(0.0)));
    }
}
