//! [`F32`]: IEEE binary32, the accumulation and master-weight precision.

use crate::DType;
use crate::dtype::{Dtype, FullPrecision, sealed::Sealed};
use crate::slice::{EncodeMode, encode_f32_slice};
use crate::types::F64;

/// IEEE binary32 as a precision type. Every op accumulates in at least this precision.
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, PartialOrd)]
pub struct F32(pub f32);

impl Sealed for F32 {}
impl FullPrecision for F32 {}

impl Dtype for F32 {
    type Acc = f32;
    type Bits = u32;
    const DTYPE: DType = DType::F32;
    const NAME: &'static str = "f32";
    const BYTES: usize = 4;
    const MAX: Self = F32(f32::MAX);
    const MIN_POSITIVE: Self = F32(f32::MIN_POSITIVE);
    const MIN_SUBNORMAL: Self = F32(f32::from_bits(1));
    const EPSILON: Self = F32(f32::EPSILON);
    const HAS_INF: bool = true;
    const ZERO: Self = F32(0.0);
    const ONE: Self = F32(1.0);

    #[inline]
    fn from_f32(x: f32) -> Self {
        F32(x)
    }

    /// ±inf become ±`f32::MAX`; everything else is unchanged.
    #[inline]
    fn from_f32_saturating(x: f32) -> Self {
        F32(if x.is_infinite() {
            f32::MAX.copysign(x)
        } else {
            x
        })
    }

    #[inline]
    fn from_f32_stochastic(x: f32, _random: u32) -> Self {
        F32(x)
    }

    #[inline]
    fn from_f64(x: f64) -> Self {
        F32(x as f32)
    }

    #[inline]
    fn to_f32(self) -> f32 {
        self.0
    }

    #[inline]
    fn to_f64(self) -> f64 {
        f64::from(self.0)
    }

    #[inline]
    fn to_acc(self) -> f32 {
        self.0
    }

    #[inline]
    fn from_acc(x: f32) -> Self {
        F32(x)
    }

    #[inline]
    fn from_acc_saturating(x: f32) -> Self {
        Self::from_f32_saturating(x)
    }

    fn to_acc_slice(src: &[Self], dst: &mut [f32]) {
        dst.iter_mut().zip(src).for_each(|(d, s)| *d = s.0);
    }

    fn from_acc_slice(src: &[f32], dst: &mut [Self]) {
        dst.iter_mut().zip(src).for_each(|(d, &s)| *d = F32(s));
    }

    #[inline]
    fn to_bits(self) -> u32 {
        self.0.to_bits()
    }

    #[inline]
    fn from_bits(bits: u32) -> Self {
        F32(f32::from_bits(bits))
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
        encode_f32_slice(src, dst, mode)
    }

    fn decode_slice(src: &[Self], dst: &mut [f32], scale: Option<f32>) {
        match scale {
            None => dst.iter_mut().zip(src).for_each(|(d, s)| *d = s.0),
            Some(scale) => dst.iter_mut().zip(src).for_each(|(d, s)| *d = s.0 / scale),
        }
    }
}

impl From<F64> for F32 {
    /// Rounds to nearest even.
    fn from(v: F64) -> Self {
        F32(v.0 as f32)
    }
}

impl std::fmt::Display for F32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::fmt::Debug for F32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "f32({:?})", self.0)
    }
}

// SAFETY: a repr(transparent) wrapper of `f32`, whose every bit pattern is a valid value;
// all bits zero is +0.
unsafe impl crate::ZeroBits for F32 {}
