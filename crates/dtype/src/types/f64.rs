//! [`F64`]: IEEE binary64, for reference computations and gradient checks.

use crate::DType;
use crate::dtype::{Dtype, FullPrecision, sealed::Sealed};
use crate::slice::EncodeMode;
use crate::types::F32;

/// IEEE binary64 as a precision type: the reference precision of tests and gradient
/// checks. Its `to_f32` rounds to nearest even (the only non-exact `to_f32`).
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, PartialOrd)]
pub struct F64(pub f64);

impl Sealed for F64 {}
impl FullPrecision for F64 {}

impl Dtype for F64 {
    type Acc = f64;
    type Bits = u64;
    const DTYPE: DType = DType::F64;
    const NAME: &'static str = "f64";
    const BYTES: usize = 8;
    const MAX: Self = F64(f64::MAX);
    const MIN_POSITIVE: Self = F64(f64::MIN_POSITIVE);
    const MIN_SUBNORMAL: Self = F64(f64::from_bits(1));
    const EPSILON: Self = F64(f64::EPSILON);
    const HAS_INF: bool = true;
    const ZERO: Self = F64(0.0);
    const ONE: Self = F64(1.0);

    /// Exact.
    #[inline]
    fn from_f32(x: f32) -> Self {
        F64(f64::from(x))
    }

    /// Exact for finite values; ±inf become ±`f64::MAX`.
    #[inline]
    fn from_f32_saturating(x: f32) -> Self {
        F64(if x.is_infinite() {
            f64::MAX.copysign(f64::from(x))
        } else {
            f64::from(x)
        })
    }

    #[inline]
    fn from_f32_stochastic(x: f32, _random: u32) -> Self {
        F64(f64::from(x))
    }

    #[inline]
    fn from_f64(x: f64) -> Self {
        F64(x)
    }

    #[inline]
    fn to_f32(self) -> f32 {
        self.0 as f32
    }

    #[inline]
    fn to_f64(self) -> f64 {
        self.0
    }

    #[inline]
    fn to_acc(self) -> f64 {
        self.0
    }

    #[inline]
    fn from_acc(x: f64) -> Self {
        F64(x)
    }

    /// ±inf become ±`f64::MAX`.
    #[inline]
    fn from_acc_saturating(x: f64) -> Self {
        F64(if x.is_infinite() {
            f64::MAX.copysign(x)
        } else {
            x
        })
    }

    fn to_acc_slice(src: &[Self], dst: &mut [f64]) {
        dst.iter_mut().zip(src).for_each(|(d, s)| *d = s.0);
    }

    fn from_acc_slice(src: &[f64], dst: &mut [Self]) {
        dst.iter_mut().zip(src).for_each(|(d, &s)| *d = F64(s));
    }

    #[inline]
    fn to_bits(self) -> u64 {
        self.0.to_bits()
    }

    #[inline]
    fn from_bits(bits: u64) -> Self {
        F64(f64::from_bits(bits))
    }

    #[inline]
    fn is_nan(self) -> bool {
        self.0.is_nan()
    }

    #[inline]
    fn is_finite(self) -> bool {
        self.0.is_finite()
    }

    #[inline]
    fn is_sign_negative(self) -> bool {
        self.0.is_sign_negative()
    }

    fn from_f32_reference(x: f32, saturate: bool) -> Self {
        if saturate {
            Self::from_f32_saturating(x)
        } else {
            Self::from_f32(x)
        }
    }

    fn encode_slice(src: &[f32], dst: &mut [Self], mode: EncodeMode) {
        let scale = mode.scale.unwrap_or(1.0);
        for (d, &s) in dst.iter_mut().zip(src) {
            // The product is rounded to f32 first, as for every other type.
            let x = if mode.scale.is_some() { s * scale } else { s };
            *d = if mode.saturate {
                F64::from_f32_saturating(x)
            } else {
                F64::from_f32(x)
            };
        }
    }

    fn decode_slice(src: &[Self], dst: &mut [f32], scale: Option<f32>) {
        match scale {
            None => dst.iter_mut().zip(src).for_each(|(d, s)| *d = s.0 as f32),
            Some(scale) => dst
                .iter_mut()
                .zip(src)
                .for_each(|(d, s)| *d = (s.0 as f32) / scale),
        }
    }
}

impl From<F32> for F64 {
    /// Exact.
    fn from(v: F32) -> Self {
        F64(f64::from(v.0))
    }
}

impl std::fmt::Display for F64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::fmt::Debug for F64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "f64({:?})", self.0)
    }
}

// SAFETY: a repr(transparent) wrapper of `f64`, whose every bit pattern is a valid value;
// all bits zero is +0.
unsafe impl crate::ZeroBits for F64 {}
