//! [`E4M3`]: OCP FP8 E4M3FN, the forward-pass FP8 format.

use super::narrow_dtype;
use crate::format::{self, Format};

/// OCP FP8 E4M3 in its "FN" variant: 1 sign, 4 exponent (bias 7) and 3 mantissa bits.
///
/// There is no infinity: exponent field 15 holds finite values 256..448 and only
/// `S.1111.111` is NaN. Largest finite value 448, smallest normal 2^-6, smallest
/// subnormal 2^-9. Non-saturating conversion of |x| > 464 (and of ±inf) gives NaN,
/// as in ml_dtypes; FP8 scaling uses the saturating conversion instead.
#[repr(transparent)]
#[derive(Clone, Copy, Default)]
pub struct E4M3(u8);

impl E4M3 {
    pub(crate) const FORMAT: Format = format::E4M3;
    const TABLE: [f32; 256] = format::decode_table_8bit(&format::E4M3);

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
    E4M3, bits: u8, tag: E4M3, name: "e4m3", has_inf: false,
    max: 0x7E, min_positive: 0x08, min_subnormal: 0x01, epsilon: 0x20, one: 0x38,
    to_f32: |v| E4M3::TABLE[usize::from(v.0)],
);

// SAFETY: a repr(transparent) wrapper of `u8`, whose every bit pattern is a valid value;
// all bits zero is +0.
unsafe impl crate::ZeroBits for E4M3 {}
