//! [`E5M2`]: OCP FP8 E5M2, the backward-pass (gradient) FP8 format.

use super::narrow_dtype;
use crate::format::{self, Format};

/// OCP FP8 E5M2: 1 sign, 5 exponent (bias 15) and 2 mantissa bits, with IEEE-like
/// infinities (`0x7C`) and NaNs (`0x7D..=0x7F`). Largest finite value 57344, smallest
/// normal 2^-14, smallest subnormal 2^-16. Non-saturating conversion of |x| >= 61440
/// gives ±inf (61440 is a tie that rounds to the even would-be 2^16).
#[repr(transparent)]
#[derive(Clone, Copy, Default)]
pub struct E5M2(u8);

impl E5M2 {
    pub(crate) const FORMAT: Format = format::E5M2;
    const TABLE: [f32; 256] = format::decode_table_8bit(&format::E5M2);

    /// The value with these bits (any pattern is valid).
    pub const fn from_bits(bits: u8) -> Self {
        Self(bits)
    }

    /// The raw bits.
    pub const fn to_bits(self) -> u8 {
        self.0
    }
}

narrow_dtype!(
    E5M2, bits: u8, tag: E5M2, name: "e5m2", has_inf: true,
    max: 0x7B, min_positive: 0x04, min_subnormal: 0x01, epsilon: 0x34, one: 0x3C,
    to_f32: |v| E5M2::TABLE[usize::from(v.0)],
);

// SAFETY: a repr(transparent) wrapper of `u8`, whose every bit pattern is a valid value;
// all bits zero is +0.
unsafe impl crate::ZeroBits for E5M2 {}
