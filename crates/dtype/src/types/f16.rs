//! [`F16`]: IEEE binary16 over the `half` crate's `f16`.

use super::narrow_dtype;
use crate::format::{self, Format};

/// IEEE binary16: 1 sign, 5 exponent (bias 15) and 10 mantissa bits. Largest finite value
/// 65504, smallest normal 2^-14, smallest subnormal 2^-24. Overflow (|x| >= 65520) gives
/// ±inf. Encoded NaNs are quiet (`0x7E00` with the sign), as F16C hardware writes them.
#[repr(transparent)]
#[derive(Clone, Copy, Default)]
pub struct F16(half::f16);

impl F16 {
    pub(crate) const FORMAT: Format = format::F16;

    /// The value with these bits (any pattern is valid).
    pub const fn from_bits(bits: u16) -> Self {
        Self(half::f16::from_bits(bits))
    }

    /// The raw bits.
    pub const fn to_bits(self) -> u16 {
        self.0.to_bits()
    }

    /// The `half` crate's value with the same bits.
    pub const fn to_half(self) -> half::f16 {
        self.0
    }

    /// Wraps a `half` crate value (same bits).
    pub const fn from_half(value: half::f16) -> Self {
        Self(value)
    }
}

narrow_dtype!(
    F16, bits: u16, tag: F16, name: "f16", has_inf: true,
    max: 0x7BFF, min_positive: 0x0400, min_subnormal: 0x0001, epsilon: 0x1400, one: 0x3C00,
    // Exact; `half` uses F16C where the build enables it.
    to_f32: |v| v.0.to_f32(),
);

// SAFETY: a repr(transparent) wrapper of `half::f16`, whose every bit pattern is a valid value;
// all bits zero is +0.
unsafe impl crate::ZeroBits for F16 {}
