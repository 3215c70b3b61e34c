//! Picks the kernel build for the running CPU and loops over the slice.

use super::EncodeMode;
use crate::cpu::CpuLevel;
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

// The same loops on 16 lanes: the level's AVX-512 F + DQ (the narrowing moves
// `vpmovdw`/`vpmovdb` and the masked selects are AVX-512 F).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
fn encode_loop_avx512<T: FastKernel>(src: &[f32], dst: &mut [T], mode: EncodeMode) {
    encode_loop(src, dst, mode)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
fn decode_loop_avx512<T: FastKernel>(src: &[T], dst: &mut [f32], scale: Option<f32>) {
    decode_loop(src, dst, scale)
}

/// True when the AVX2 builds may run ([`crate::cpu::level`] decides).
#[cfg(test)]
fn has_avx2() -> bool {
    crate::cpu::level().has_avx2_fma()
}

/// True when the AVX-512 builds may run ([`crate::cpu::level`] decides).
#[cfg(test)]
fn has_avx512() -> bool {
    crate::cpu::level().has_avx512()
}

/// Encodes with the widest build of the generic loop the CPU runs (AVX-512, AVX2,
/// portable: the same bits). Inlined into the caller: one load of the detected level
/// and a tail jump, no saved registers (the GEMM's packing converts short rows millions
/// of times per training run); the first call, and portable CPUs, go the out-of-line way.
#[inline(always)]
pub(crate) fn encode_dispatch<T: FastKernel>(src: &[f32], dst: &mut [T], mode: EncodeMode) {
    #[cfg(target_arch = "x86_64")]
    match crate::cpu::known_level() {
        // SAFETY: the level says the CPU supports AVX-512 F + DQ, AVX2 and FMA.
        Some(CpuLevel::Avx512) => unsafe { encode_loop_avx512(src, dst, mode) },
        // SAFETY: the level says the CPU supports AVX2 (and FMA, F16C).
        Some(CpuLevel::Avx2Fma) => unsafe { encode_loop_avx2(src, dst, mode) },
        _ => encode_first_or_portable(src, dst, mode),
    }
    #[cfg(not(target_arch = "x86_64"))]
    encode_first_or_portable(src, dst, mode)
}

/// [`encode_dispatch`]'s out-of-line way: detects the level, then runs its build.
#[inline(never)]
fn encode_first_or_portable<T: FastKernel>(src: &[f32], dst: &mut [T], mode: EncodeMode) {
    #[cfg(target_arch = "x86_64")]
    match crate::cpu::level() {
        // SAFETY: the level says the CPU supports AVX-512 F + DQ, AVX2 and FMA.
        CpuLevel::Avx512 => unsafe { encode_loop_avx512(src, dst, mode) },
        // SAFETY: the level says the CPU supports AVX2 (and FMA, F16C).
        CpuLevel::Avx2Fma => unsafe { encode_loop_avx2(src, dst, mode) },
        CpuLevel::Portable => encode_loop(src, dst, mode),
    }
    #[cfg(not(target_arch = "x86_64"))]
    encode_loop(src, dst, mode)
}

/// Decodes with the widest build of the generic loop the CPU runs (AVX-512, AVX2,
/// portable: the same bits); inlined like [`encode_dispatch`].
#[inline(always)]
pub(crate) fn decode_dispatch<T: FastKernel>(src: &[T], dst: &mut [f32], scale: Option<f32>) {
    #[cfg(target_arch = "x86_64")]
    match crate::cpu::known_level() {
        // SAFETY: the level says the CPU supports AVX-512 F + DQ, AVX2 and FMA.
        Some(CpuLevel::Avx512) => unsafe { decode_loop_avx512(src, dst, scale) },
        // SAFETY: the level says the CPU supports AVX2 (and FMA, F16C).
        Some(CpuLevel::Avx2Fma) => unsafe { decode_loop_avx2(src, dst, scale) },
        _ => decode_first_or_portable(src, dst, scale),
    }
    #[cfg(not(target_arch = "x86_64"))]
    decode_first_or_portable(src, dst, scale)
}

/// [`decode_dispatch`]'s out-of-line way: detects the level, then runs its build.
#[inline(never)]
fn decode_first_or_portable<T: FastKernel>(src: &[T], dst: &mut [f32], scale: Option<f32>) {
    #[cfg(target_arch = "x86_64")]
    match crate::cpu::level() {
        // SAFETY: the level says the CPU supports AVX-512 F + DQ, AVX2 and FMA.
        CpuLevel::Avx512 => unsafe { decode_loop_avx512(src, dst, scale) },
        // SAFETY: the level says the CPU supports AVX2 (and FMA, F16C).
        CpuLevel::Avx2Fma => unsafe { decode_loop_avx2(src, dst, scale) },
        CpuLevel::Portable => decode_loop(src, dst, scale),
    }
    #[cfg(not(target_arch = "x86_64"))]
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

/// Each vector build of the loops gives the portable loop's bits, for every type, mode
/// and decode scale, on inputs that reach every rounding case (every upper half of the
/// f32 bits with the lower halves at and next to BF16's ties, plus random patterns) and
/// on every code. Builds the CPU lacks are skipped (said on stderr).
#[cfg(all(test, target_arch = "x86_64"))]
mod build_tests {
    use super::*;
    use crate::{Bf16, E4M3, E5M2, F16};

    fn inputs() -> Vec<f32> {
        let mut v = Vec::new();
        for hi in 0u32..1 << 16 {
            for lo in [0, 1, 0x7fff, 0x8000, 0x8001, 0xffff] {
                v.push(f32::from_bits(hi << 16 | lo));
            }
        }
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            v.push(f32::from_bits(state as u32));
        }
        v
    }

    fn same_bits<T: Dtype>(a: &[T], b: &[T]) -> bool {
        a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    type Encode<T> = unsafe fn(&[f32], &mut [T], EncodeMode);
    type Decode<T> = unsafe fn(&[T], &mut [f32], Option<f32>);

    fn builds<T: FastKernel>() -> Vec<(&'static str, Encode<T>, Decode<T>)> {
        let mut out: Vec<(&'static str, Encode<T>, Decode<T>)> = Vec::new();
        if has_avx2() {
            out.push(("avx2", encode_loop_avx2::<T>, decode_loop_avx2::<T>));
        } else {
            eprintln!("skipped: this CPU has no AVX2 (its build is not tested here)");
        }
        if has_avx512() {
            out.push(("avx512", encode_loop_avx512::<T>, decode_loop_avx512::<T>));
        } else {
            eprintln!("skipped: this CPU has no AVX-512 (its build is not tested here)");
        }
        out
    }

    fn every_build_matches_portable<T: FastKernel>() {
        let src = inputs();
        let codes: Vec<T> = (0..1u32 << (8 * T::BYTES))
            .map(|b| {
                T::from_bits(crate::LeBits::from_le_slice(&b.to_le_bytes()[..T::BYTES]).unwrap())
            })
            .collect();
        for (name, encode, decode) in builds::<T>() {
            for saturate in [false, true] {
                for scale in [None, Some(0.75f32), Some(1.0 / 3.0)] {
                    let mode = EncodeMode { saturate, scale };
                    let (mut want, mut got) = (vec![T::ZERO; src.len()], vec![T::ZERO; src.len()]);
                    encode_loop(&src, &mut want, mode);
                    // SAFETY: `builds` lists only the builds this CPU supports.
                    unsafe { encode(&src, &mut got, mode) };
                    assert!(same_bits(&want, &got), "{} {name} encode {mode:?}", T::NAME);
                }
            }
            for scale in [None, Some(3.0f32)] {
                let (mut want, mut got) = (vec![0.0f32; codes.len()], vec![0.0f32; codes.len()]);
                decode_loop(&codes, &mut want, scale);
                // SAFETY: `builds` lists only the builds this CPU supports.
                unsafe { decode(&codes, &mut got, scale) };
                let same = want
                    .iter()
                    .zip(&got)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{} {name} decode {scale:?}", T::NAME);
            }
        }
    }

    #[test]
    fn bf16_builds_agree() {
        every_build_matches_portable::<Bf16>();
    }

    #[test]
    fn f16_builds_agree() {
        every_build_matches_portable::<F16>();
    }

    #[test]
    fn e4m3_builds_agree() {
        every_build_matches_portable::<E4M3>();
    }

    #[test]
    fn e5m2_builds_agree() {
        every_build_matches_portable::<E5M2>();
    }
}
