//! Picks the kernel build for the running CPU and loops over the slice.

use super::EncodeMode;
use crate::dtype::Dtype;

/// Branch-free per-element conversions of a narrow type, plus its slice loops. The
/// default loops are the generic ones below; a type with special instructions (F16 with
/// F16C) overrides them.
pub(crate) trait FastKernel: Dtype {
    /// Nearest-even rounding, without branches; the same bits as the integer reference.
    fn encode_fast(x: f32, saturate: bool) -> Self;

    /// Same bits as `to_f32`, without branches.
    fn decode_fast(self) -> f32;

    /// Encodes a slice (lengths already checked).
    fn encode_slice_impl(src: &[f32], dst: &mut [Self], mode: EncodeMode) {
        encode_dispatch(src, dst, mode)
    }

    /// Decodes a slice (lengths already checked).
    fn decode_slice_impl(src: &[Self], dst: &mut [f32], scale: Option<f32>) {
        decode_dispatch(src, dst, scale)
    }
}

#[inline(always)]
fn encode_loop<T: FastKernel>(src: &[f32], dst: &mut [T], mode: EncodeMode) {
    // One monomorphic loop per mode so each vectorises without a per-element branch.
    let pairs = dst.iter_mut().zip(src);
    match (mode.scale, mode.saturate) {
        (None, false) => pairs.for_each(|(d, &s)| *d = T::encode_fast(s, false)),
        (None, true) => pairs.for_each(|(d, &s)| *d = T::encode_fast(s, true)),
        (Some(k), false) => pairs.for_each(|(d, &s)| *d = T::encode_fast(s * k, false)),
        (Some(k), true) => pairs.for_each(|(d, &s)| *d = T::encode_fast(s * k, true)),
    }
}

#[inline(always)]
fn decode_loop<T: FastKernel>(src: &[T], dst: &mut [f32], scale: Option<f32>) {
    let pairs = dst.iter_mut().zip(src);
    match scale {
        None => pairs.for_each(|(d, &s)| *d = s.decode_fast()),
        Some(k) => pairs.for_each(|(d, &s)| *d = s.decode_fast() / k),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn encode_loop_avx2<T: FastKernel>(src: &[f32], dst: &mut [T], mode: EncodeMode) {
    encode_loop(src, dst, mode)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn decode_loop_avx2<T: FastKernel>(src: &[T], dst: &mut [f32], scale: Option<f32>) {
    decode_loop(src, dst, scale)
}

/// True when the AVX2 builds may run ([`crate::cpu::level`] decides).
#[inline]
pub(crate) fn has_avx2() -> bool {
    crate::cpu::level().has_avx2_fma()
}

/// Encodes with the AVX2 build of the generic loop where the CPU has AVX2.
pub(crate) fn encode_dispatch<T: FastKernel>(src: &[f32], dst: &mut [T], mode: EncodeMode) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { encode_loop_avx2(src, dst, mode) };
    }
    encode_loop(src, dst, mode)
}

/// Decodes with the AVX2 build of the generic loop where the CPU has AVX2.
pub(crate) fn decode_dispatch<T: FastKernel>(src: &[T], dst: &mut [f32], scale: Option<f32>) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { decode_loop_avx2(src, dst, scale) };
    }
    decode_loop(src, dst, scale)
}

/// The portable loops, for tests that compare them with the dispatched ones.
#[cfg(test)]
pub(crate) fn encode_portable<T: FastKernel>(src: &[f32], dst: &mut [T], mode: EncodeMode) {
    encode_loop(src, dst, mode)
}

/// The portable loops, for tests that compare them with the dispatched ones.
#[cfg(test)]
pub(crate) fn decode_portable<T: FastKernel>(src: &[T], dst: &mut [f32], scale: Option<f32>) {
    decode_loop(src, dst, scale)
}
