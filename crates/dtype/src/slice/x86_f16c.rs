//! F16 slice conversions with the F16C instructions (`vcvtps2ph` rounding to nearest
//! even, `vcvtph2ps`), eight elements at a time; the tail goes through the generic kernel.

use std::arch::x86_64::{
    __m128i, _mm_loadu_si128, _mm_storeu_si128, _mm256_cvtph_ps, _mm256_cvtps_ph, _mm256_div_ps,
    _mm256_loadu_ps, _mm256_max_ps, _mm256_min_ps, _mm256_mul_ps, _mm256_set1_ps, _mm256_storeu_ps,
};

use super::EncodeMode;
use super::dispatch::FastKernel;
use crate::types::F16;

/// `vcvtps2ph` immediate: round to nearest even, ignore MXCSR.
const ROUND_NEAREST_EVEN: i32 = 0;

/// True when the CPU has AVX2 and F16C ([`crate::cpu::level`] decides).
pub(crate) fn available() -> bool {
    crate::cpu::level().has_avx2_fma()
}

/// Encodes with F16C. `max` is F16's largest finite value.
pub(crate) fn encode(src: &[f32], dst: &mut [F16], mode: EncodeMode, max: f32) {
    // SAFETY: callers check `available()` first.
    unsafe { encode_f16c(src, dst, mode, max) }
}

/// Decodes with F16C.
pub(crate) fn decode(src: &[F16], dst: &mut [f32], scale: Option<f32>) {
    // SAFETY: callers check `available()` first.
    unsafe { decode_f16c(src, dst, scale) }
}

#[target_feature(enable = "avx2,f16c")]
fn encode_f16c(src: &[f32], dst: &mut [F16], mode: EncodeMode, max: f32) {
    let n = src.len().min(dst.len());
    let body = n - n % 8;
    let scale = _mm256_set1_ps(mode.scale.unwrap_or(1.0));
    let hi = _mm256_set1_ps(max);
    let lo = _mm256_set1_ps(-max);
    for i in (0..body).step_by(8) {
        // SAFETY: i + 8 <= n, within both slices; F16 is repr(transparent) over u16, and
        // unaligned loads and stores are used.
        unsafe {
            let mut v = _mm256_loadu_ps(src.as_ptr().add(i));
            if mode.scale.is_some() {
                v = _mm256_mul_ps(v, scale);
            }
            if mode.saturate {
                // min/max return their second operand when either is NaN: NaN survives.
                v = _mm256_max_ps(lo, _mm256_min_ps(hi, v));
            }
            let h = _mm256_cvtps_ph::<ROUND_NEAREST_EVEN>(v);
            _mm_storeu_si128(dst.as_mut_ptr().add(i).cast::<__m128i>(), h);
        }
    }
    for (d, &s) in dst[body..n].iter_mut().zip(&src[body..n]) {
        let x = match mode.scale {
            Some(k) => s * k,
            None => s,
        };
        *d = F16::encode_fast(x, mode.saturate);
    }
}

#[target_feature(enable = "avx2,f16c")]
fn decode_f16c(src: &[F16], dst: &mut [f32], scale: Option<f32>) {
    let n = src.len().min(dst.len());
    let body = n - n % 8;
    let k = _mm256_set1_ps(scale.unwrap_or(1.0));
    for i in (0..body).step_by(8) {
        // SAFETY: i + 8 <= n, within both slices; unaligned loads and stores.
        unsafe {
            let h = _mm_loadu_si128(src.as_ptr().add(i).cast::<__m128i>());
            let mut v = _mm256_cvtph_ps(h);
            if scale.is_some() {
                v = _mm256_div_ps(v, k);
            }
            _mm256_storeu_ps(dst.as_mut_ptr().add(i), v);
        }
    }
    for (d, &s) in dst[body..n].iter_mut().zip(&src[body..n]) {
        let v = s.decode_fast();
        *d = match scale {
            Some(k) => v / k,
            None => v,
        };
    }
}
