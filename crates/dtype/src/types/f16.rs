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
    // Exact, and branch-free (the compiler vectorises loops over it).
    to_f32: |v| decode(v.to_bits()),
);

/// The f32 with `h`'s value, exactly: normals rebias the exponent (a multiply by 2^112,
/// exact), subnormals `m * 2^-24` (exact in f32), infinities stay infinite and NaNs come
/// out quiet with their payload (as F16C's `vcvtph2ps` writes them). Selects instead of
/// branches, so loops over it vectorise. The one product with a subnormal operand (the
/// normal path's, for a subnormal code) is never the one selected, so a CPU that flushes
/// denormal inputs to zero gets the same bits.
#[inline(always)]
fn decode(h: u16) -> f32 {
    const TWO_POW_112: f32 = f32::from_bits((112 + 127) << 23);
    const TWO_POW_MINUS_24: f32 = f32::from_bits((127 - 24) << 23);
    let h = u32::from(h);
    let sign = (h & 0x8000) << 16;
    let em = h & 0x7fff;
    let normal = (f32::from_bits(em << 13) * TWO_POW_112).to_bits();
    let subnormal = (em as f32 * TWO_POW_MINUS_24).to_bits();
    let special = 0x7f80_0000 | ((em & 0x3ff) << 13) | if em > 0x7c00 { 0x0040_0000 } else { 0 };
    let magnitude = if em >= 0x7c00 {
        special
    } else if em < 0x0400 {
        subnormal
    } else {
        normal
    };
    f32::from_bits(sign | magnitude)
}

// SAFETY: a repr(transparent) wrapper of `half::f16`, whose every bit pattern is a valid value;
// all bits zero is +0.
unsafe impl crate::ZeroBits for F16 {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code against the `half` crate's conversion (NaNs: quiet, same sign and
    /// payload).
    #[test]
    fn decode_matches_half_for_every_code() {
        for bits in 0..=u16::MAX {
            let want = half::f16::from_bits(bits).to_f32();
            let got = decode(bits);
            if want.is_nan() {
                assert!(got.is_nan(), "{bits:04x}");
                let payload = u32::from(bits & 0x3ff) << 13;
                let quiet = 0x7fc0_0000 | payload | (u32::from(bits & 0x8000) << 16);
                assert_eq!(got.to_bits(), quiet, "{bits:04x}");
            } else {
                assert_eq!(got.to_bits(), want.to_bits(), "{bits:04x}");
            }
        }
    }
}
