//! [`Bf16`]: bfloat16 over the `half` crate's `bf16`.

use super::narrow_dtype;
use crate::format::{self, Format};

/// bfloat16: 1 sign, 8 exponent (bias 127) and 7 mantissa bits; f32's range with 8 bits
/// of precision. Largest finite value about 3.39e38, smallest normal 2^-126, smallest
/// subnormal 2^-133. Overflow (|x| >= 0x7F7F8000 as f32 bits) gives ±inf.
#[repr(transparent)]
#[derive(Clone, Copy, Default)]
pub struct Bf16(half::bf16);

impl Bf16 {
    pub(crate) const FORMAT: Format = format::BF16;

    /// The value with these bits (any pattern is valid).
    pub const fn from_bits(bits: u16) -> Self {
        Self(half::bf16::from_bits(bits))
    }

    /// The raw bits.
    pub const fn to_bits(self) -> u16 {
        self.0.to_bits()
    }

    /// The `half` crate's value with the same bits.
    pub const fn to_half(self) -> half::bf16 {
        self.0
    }

    /// Wraps a `half` crate value (same bits).
    pub const fn from_half(value: half::bf16) -> Self {
        Self(value)
    }
}

narrow_dtype!(
    Bf16, bits: u16, tag: Bf16, name: "bf16", has_inf: true,
    max: 0x7F7F, min_positive: 0x0080, min_subnormal: 0x0001, epsilon: 0x3C00, one: 0x3F80,
    // Exact: bf16 is the top half of an f32.
    to_f32: |v| f32::from_bits(u32::from(v.to_bits()) << 16),
);

// SAFETY: a repr(transparent) wrapper of `half::bf16`, whose every bit pattern is a valid value;
// all bits zero is +0.
unsafe impl crate::ZeroBits for Bf16 {}
