//! Branch-free element conversions (the bodies of the vectorised slice loops) and the
//! [`FastKernel`] implementations of the narrow types.
//!
//! Rounding to nearest even uses the hardware adder: for `a = |x|` with exponent `e`,
//! `c = 2^(max(e, emin) + 23 - man_bits)` makes `(a + c) - c` round `a` to a multiple of
//! the target's quantum `2^(max(e, emin) - man_bits)`, because `a + c` lies in `[c, 2c)`
//! where the f32 spacing is exactly that quantum. Parity of the sum's last bit is parity
//! of the target code, so ties go to even codes. The rounded value is then re-biased
//! (normal range) or scaled to an integer significand (subnormal range).

use super::EncodeMode;
use super::dispatch::{FastKernel, decode_dispatch, encode_dispatch};
use crate::format::{self, Format};
use crate::types::{Bf16, E4M3, E5M2, F16};

/// Values of a [`Format`] that the fast kernels need as f32, computed at compile time.
struct FastConsts {
    fmt: Format,
    max: f32,
    min_normal: f32,
    /// f32 exponent-field bounds that keep `c` finite and at least the subnormal quantum.
    field_lo: u32,
    field_hi: u32,
    /// 2^(man_bits - emin): turns a subnormal value into its integer significand.
    subnormal_to_int: f32,
    /// 2^(127 - bias): turns the format's bits placed in an f32 into the value.
    rebias: f32,
}

impl FastConsts {
    const fn new(fmt: Format) -> Self {
        let emin = fmt.emin();
        let emax = fmt.bias; // top finite binade exponent of every format here
        Self {
            fmt,
            max: f32::from_bits(format::decode_bits(&fmt, fmt.max_code)),
            min_normal: f32::from_bits(((emin + 127) as u32) << 23),
            field_lo: (emin + 127) as u32,
            field_hi: (emax + 1 + 127) as u32,
            subnormal_to_int: f32::from_bits(((fmt.man_bits as i32 - emin + 127) as u32) << 23),
            rebias: f32::from_bits(((127 - fmt.bias + 127) as u32) << 23),
        }
    }
}

const F16_FAST: FastConsts = FastConsts::new(format::F16);
const E4M3_FAST: FastConsts = FastConsts::new(format::E4M3);
const E5M2_FAST: FastConsts = FastConsts::new(format::E5M2);

/// f32 -> code of a format with at most 15 exponent... (F16, E4M3, E5M2), branch-free RNE.
#[inline(always)]
fn encode_minifloat(k: &FastConsts, x: f32, saturate: bool) -> u32 {
    let fmt = &k.fmt;
    let bits = x.to_bits();
    let sign = (bits >> 31) << fmt.sign_shift;
    let abs_bits = bits & 0x7FFF_FFFF;
    let a = f32::from_bits(abs_bits);
    // For NaN, `min` returns MAX; the NaN select below overrides that lane.
    let a = if saturate { a.min(k.max) } else { a };
    let field = (a.to_bits() >> 23).clamp(k.field_lo, k.field_hi);
    let c = f32::from_bits((field + 23 - fmt.man_bits) << 23);
    let r = (a + c) - c;
    let subnormal_code = ((r * k.subnormal_to_int) + 8_388_608.0)
        .to_bits()
        .wrapping_sub(0x4B00_0000);
    let normal_code = (r.to_bits() >> (23 - fmt.man_bits))
        .wrapping_sub(((127 - fmt.bias) as u32) << fmt.man_bits);
    let code = if r < k.min_normal {
        subnormal_code
    } else {
        normal_code
    };
    let code = if r > k.max { fmt.overflow_code() } else { code };
    let code = if abs_bits > 0x7F80_0000 {
        fmt.nan_code
    } else {
        code
    };
    sign | code
}

/// Code of a format narrower than f32 -> f32, branch-free and exact.
#[inline(always)]
fn decode_minifloat(k: &FastConsts, code: u32) -> f32 {
    let fmt = &k.fmt;
    let to_f32_man = 23 - fmt.man_bits;
    let sign = ((code >> fmt.sign_shift) & 1) << 31;
    let mag = code & ((1 << fmt.sign_shift) - 1);
    // The magnitude bits read as an f32 (subnormals included) times 2^(127 - bias).
    let finite = (f32::from_bits(mag << to_f32_man) * k.rebias).to_bits();
    let man = (mag & ((1 << fmt.man_bits) - 1)) << to_f32_man;
    let special = match fmt.inf_code {
        Some(inf) if mag == inf => 0x7F80_0000,
        _ => 0x7FC0_0000 | man,
    };
    let out = if mag > fmt.max_code { special } else { finite };
    f32::from_bits(sign | out)
}

/// f32 -> bf16 bits, branch-free RNE by integer rounding of the top half.
#[inline(always)]
fn encode_bf16(x: f32, saturate: bool) -> u16 {
    let bits = x.to_bits();
    let rounded = bits.wrapping_add(0x7FFF + ((bits >> 16) & 1)) >> 16;
    let sign = (bits >> 16) & 0x8000;
    let rounded = if saturate && (rounded & 0x7FFF) > 0x7F7F {
        sign | 0x7F7F
    } else {
        rounded
    };
    let out = if bits & 0x7FFF_FFFF > 0x7F80_0000 {
        sign | 0x7FC0
    } else {
        rounded
    };
    out as u16
}

impl FastKernel for Bf16 {
    #[inline(always)]
    fn encode_fast(x: f32, saturate: bool) -> Self {
        Bf16::from_bits(encode_bf16(x, saturate))
    }

    #[inline(always)]
    fn decode_fast(self) -> f32 {
        f32::from_bits(u32::from(self.to_bits()) << 16)
    }
}

impl FastKernel for E4M3 {
    #[inline(always)]
    fn encode_fast(x: f32, saturate: bool) -> Self {
        E4M3::from_bits(encode_minifloat(&E4M3_FAST, x, saturate) as u8)
    }

    #[inline(always)]
    fn decode_fast(self) -> f32 {
        decode_minifloat(&E4M3_FAST, u32::from(self.to_bits()))
    }
}

impl FastKernel for E5M2 {
    #[inline(always)]
    fn encode_fast(x: f32, saturate: bool) -> Self {
        E5M2::from_bits(encode_minifloat(&E5M2_FAST, x, saturate) as u8)
    }

    #[inline(always)]
    fn decode_fast(self) -> f32 {
        decode_minifloat(&E5M2_FAST, u32::from(self.to_bits()))
    }
}

impl FastKernel for F16 {
    #[inline(always)]
    fn encode_fast(x: f32, saturate: bool) -> Self {
        F16::from_bits(encode_minifloat(&F16_FAST, x, saturate) as u16)
    }

    #[inline(always)]
    fn decode_fast(self) -> f32 {
        decode_minifloat(&F16_FAST, u32::from(self.to_bits()))
    }

    fn encode_slice_impl(src: &[f32], dst: &mut [Self], mode: EncodeMode) {
        #[cfg(target_arch = "x86_64")]
        if super::x86_f16c::available() {
            return super::x86_f16c::encode(src, dst, mode, F16_FAST.max);
        }
        encode_dispatch(src, dst, mode)
    }

    fn decode_slice_impl(src: &[Self], dst: &mut [f32], scale: Option<f32>) {
        #[cfg(target_arch = "x86_64")]
        if super::x86_f16c::available() {
            return super::x86_f16c::decode(src, dst, scale);
        }
        decode_dispatch(src, dst, scale)
    }
}
