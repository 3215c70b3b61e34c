//! Bit layouts of the formats narrower than f32, and the scalar reference conversions.
//!
//! This is the one place where rounding is spelled out, in integer arithmetic on the
//! f32 bits, so it can be read against the format definitions. Every narrow type's
//! `from_f32*` goes through [`encode`]; the golden tables test it for all four formats.

/// Layout of a binary floating-point format with fewer bits than f32.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Format {
    /// Mantissa (fraction) bits.
    pub man_bits: u32,
    /// Exponent bias.
    pub bias: i32,
    /// Magnitude code (sign bit clear) of the largest finite value.
    pub max_code: u32,
    /// Magnitude code of +infinity, if the format has one.
    pub inf_code: Option<u32>,
    /// Magnitude code written for NaN.
    pub nan_code: u32,
    /// Position of the sign bit.
    pub sign_shift: u32,
}

impl Format {
    /// Magnitude code that [`encode`] writes on overflow when not saturating.
    pub const fn overflow_code(&self) -> u32 {
        match self.inf_code {
            Some(inf) => inf,
            None => self.nan_code,
        }
    }

    /// True when the code (sign included) is a NaN.
    pub const fn is_nan(&self, code: u32) -> bool {
        let mag = code & ((1 << self.sign_shift) - 1);
        mag > self.max_code && !matches!(self.inf_code, Some(inf) if inf == mag)
    }

    /// True when the code (sign included) is neither infinite nor NaN.
    pub const fn is_finite(&self, code: u32) -> bool {
        code & ((1 << self.sign_shift) - 1) <= self.max_code
    }

    /// Smallest exponent of a normal value (1 - bias).
    pub const fn emin(&self) -> i32 {
        1 - self.bias
    }
}

/// bfloat16: 1 sign, 8 exponent, 7 mantissa bits.
pub(crate) const BF16: Format = Format {
    man_bits: 7,
    bias: 127,
    max_code: 0x7F7F,
    inf_code: Some(0x7F80),
    nan_code: 0x7FC0,
    sign_shift: 15,
};

/// IEEE binary16: 1 sign, 5 exponent, 10 mantissa bits.
pub(crate) const F16: Format = Format {
    man_bits: 10,
    bias: 15,
    max_code: 0x7BFF,
    inf_code: Some(0x7C00),
    nan_code: 0x7E00,
    sign_shift: 15,
};

/// OCP E4M3FN: 1 sign, 4 exponent, 3 mantissa bits, no infinity, S.1111.111 is NaN.
pub(crate) const E4M3: Format = Format {
    man_bits: 3,
    bias: 7,
    max_code: 0x7E,
    inf_code: None,
    nan_code: 0x7F,
    sign_shift: 7,
};

/// OCP E5M2: 1 sign, 5 exponent, 2 mantissa bits, IEEE-like specials.
pub(crate) const E5M2: Format = Format {
    man_bits: 2,
    bias: 15,
    max_code: 0x7B,
    inf_code: Some(0x7C),
    nan_code: 0x7E,
    sign_shift: 7,
};

/// How [`encode`] rounds a value that falls between two representable values.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Rounding {
    /// To nearest, ties to even.
    NearestEven,
    /// Up with probability equal to the remainder's fraction of a quantum, decided by
    /// comparing 32 random bits with that fraction.
    Stochastic(u32),
}

/// What [`encode`] does with a value beyond the largest finite value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Overflow {
    /// As the format defines: infinity where it has one, NaN otherwise.
    Format,
    /// Clamp to the largest finite value (±inf too). NaN stays NaN.
    Saturate,
}

/// Encodes `x` into `fmt`, returning the code with the sign at `fmt.sign_shift`.
///
/// The f32 value is `mant * 2^(e - 23)` with `mant` holding the implicit bit for normal
/// inputs. The target's quantum at that magnitude is `2^(max(e, emin) - man_bits)`, so
/// the target's integer significand is `mant >> shift` with
/// `shift = 23 - man_bits + max(0, emin - e)`, rounded by the chosen mode. Adding
/// `(max(e, emin) + bias - 1) << man_bits` turns that significand into the code: the
/// implicit bit lands in the exponent field, a rounding carry moves to the next binade,
/// and subnormals (exponent field 0) fall out with no special case.
pub(crate) fn encode(fmt: &Format, x: f32, rounding: Rounding, overflow: Overflow) -> u32 {
    let bits = x.to_bits();
    let sign = (bits >> 31) << fmt.sign_shift;
    let abs = bits & 0x7FFF_FFFF;
    if abs > 0x7F80_0000 {
        return sign | fmt.nan_code;
    }
    let overflowed = |sign: u32| match overflow {
        Overflow::Format => sign | fmt.overflow_code(),
        Overflow::Saturate => sign | fmt.max_code,
    };
    if abs == 0x7F80_0000 {
        return overflowed(sign);
    }
    let f32_exp = (abs >> 23) as i32;
    let (mant, e) = if f32_exp == 0 {
        (u64::from(abs), -126)
    } else {
        (u64::from(abs & 0x007F_FFFF | 0x0080_0000), f32_exp - 127)
    };
    let et = e.max(fmt.emin());
    // The shift can exceed the significand width for values far below the smallest
    // subnormal; 63 keeps the u64 shifts defined and still rounds such values to zero.
    let shift = (23 - fmt.man_bits as i32 + (et - e)).min(63) as u32;
    let significand = round_shifted(mant, shift, rounding);
    let code = (((et + fmt.bias - 1) as u64) << fmt.man_bits) + significand;
    if code > u64::from(fmt.max_code) {
        return overflowed(sign);
    }
    sign | code as u32
}

/// `mant / 2^shift` rounded to an integer by `rounding` (`1 <= shift <= 63`).
fn round_shifted(mant: u64, shift: u32, rounding: Rounding) -> u64 {
    let quotient = mant >> shift;
    let remainder = mant & ((1u64 << shift) - 1);
    let round_up = match rounding {
        Rounding::NearestEven => {
            let half = 1u64 << (shift - 1);
            remainder > half || (remainder == half && quotient & 1 == 1)
        }
        Rounding::Stochastic(random) => {
            // remainder / 2^shift as a 32-bit fixed-point fraction (truncated below 2^-32).
            let threshold = if shift <= 32 {
                remainder << (32 - shift)
            } else {
                remainder >> (shift - 32)
            };
            u64::from(random) < threshold
        }
    };
    quotient + u64::from(round_up)
}

/// The f32 bits of a code of `fmt`, exactly (every value of these formats is an f32).
/// NaN codes give a quiet f32 NaN with the code's sign and mantissa bits.
pub(crate) const fn decode_bits(fmt: &Format, code: u32) -> u32 {
    let sign = ((code >> fmt.sign_shift) & 1) << 31;
    let mag = code & ((1 << fmt.sign_shift) - 1);
    let man_mask = (1 << fmt.man_bits) - 1;
    let to_f32_man = 23 - fmt.man_bits;
    if fmt.is_nan(code) {
        return sign | 0x7FC0_0000 | ((mag & man_mask) << to_f32_man);
    }
    if let Some(inf) = fmt.inf_code
        && mag == inf
    {
        return sign | 0x7F80_0000;
    }
    let exp_field = mag >> fmt.man_bits;
    let mut man = mag & man_mask;
    if exp_field != 0 {
        let f32_field = (exp_field as i32 - fmt.bias + 127) as u32;
        return sign | (f32_field << 23) | (man << to_f32_man);
    }
    if man == 0 {
        return sign;
    }
    if fmt.emin() == -126 {
        // bf16: its subnormals are f32 subnormals with the low bits cleared.
        return sign | (man << to_f32_man);
    }
    // A subnormal of a narrower range is a normal f32: shift the leading one into place.
    let mut e = fmt.emin();
    while man < (1 << fmt.man_bits) {
        man <<= 1;
        e -= 1;
    }
    sign | (((e + 127) as u32) << 23) | ((man & man_mask) << to_f32_man)
}

/// Decodes a code of `fmt` to f32, exactly (see [`decode_bits`]).
#[cfg(test)]
pub(crate) fn decode(fmt: &Format, code: u32) -> f32 {
    f32::from_bits(decode_bits(fmt, code))
}

/// All 256 values of an 8-bit format, decoded at compile time.
pub(crate) const fn decode_table_8bit(fmt: &Format) -> [f32; 256] {
    let mut table = [0.0f32; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = f32::from_bits(decode_bits(fmt, code as u32));
        code += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [(&str, Format); 4] = [("bf16", BF16), ("f16", F16), ("e4m3", E4M3), ("e5m2", E5M2)];

    #[test]
    fn max_codes_decode_to_the_documented_maxima() {
        // Values from the golden README's format table (ml_dtypes.finfo).
        let expected = [3.389_531_4e38_f32, 65504.0, 448.0, 57344.0];
        for ((name, fmt), max) in ALL.iter().zip(expected) {
            assert_eq!(decode(fmt, fmt.max_code), max, "{name}");
        }
    }

    #[test]
    fn half_the_smallest_subnormal_is_a_tie_to_zero() {
        for (name, fmt) in ALL {
            let s = decode(&fmt, 1);
            assert_eq!(
                encode(&fmt, s / 2.0, Rounding::NearestEven, Overflow::Format),
                0,
                "{name}"
            );
            let above = f32::from_bits((s / 2.0).to_bits() + 1);
            assert_eq!(
                encode(&fmt, above, Rounding::NearestEven, Overflow::Format),
                1,
                "{name}"
            );
        }
    }

    #[test]
    fn stochastic_rounding_with_extreme_random_bits_picks_the_neighbours() {
        // 1 + eps/4 lies between 1 and 1 + eps: random 0 rounds up (0 < 1/4 * 2^32),
        // random u32::MAX rounds down.
        for (name, fmt) in ALL {
            let one = encode(&fmt, 1.0, Rounding::NearestEven, Overflow::Format);
            let eps = 2f32.powi(-(fmt.man_bits as i32));
            let x = 1.0 + eps / 4.0;
            assert_eq!(
                encode(&fmt, x, Rounding::Stochastic(0), Overflow::Format),
                one + 1,
                "{name}"
            );
            assert_eq!(
                encode(&fmt, x, Rounding::Stochastic(u32::MAX), Overflow::Format),
                one,
                "{name}"
            );
        }
    }
}
