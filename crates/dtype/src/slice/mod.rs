//! Whole-slice conversions between `f32` and every precision type.
//!
//! The scalar functions of [`Dtype`] are the reference; these kernels must give the same
//! bits (tests check every golden record through both). They are branch-free per element
//! so the compiler vectorises them; on x86-64 an AVX2 build of the same loop (and F16C
//! instructions for `F16`) is picked at run time, so a default build is fast too.
//!
//! Scaled variants multiply in f32 first (`x * scale`, rounded to nearest even) and then
//! round into the target: two roundings, the documented FP8 quantisation convention.
//! Scaled decoding divides (`decode(bits) / scale`, one rounding in f32).

mod dispatch;
mod kernels;
pub mod reference;
#[cfg(target_arch = "x86_64")]
mod x86_f16c;

use crate::dtype::Dtype;
use crate::error::DtypeError;
use crate::types::F32;

pub(crate) use dispatch::FastKernel;

/// How a slice encode treats each element (kernel hook argument; not stable API).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EncodeMode {
    /// Clamp overflow and ±inf to ±MAX instead of the format's overflow value.
    pub saturate: bool,
    /// Multiply by this (in f32) before rounding.
    pub scale: Option<f32>,
}

fn check_lengths(op: &'static str, src: usize, dst: usize) -> Result<(), DtypeError> {
    if src == dst {
        Ok(())
    } else {
        Err(DtypeError::LengthMismatch { op, src, dst })
    }
}

fn check_scale(op: &'static str, scale: f32) -> Result<(), DtypeError> {
    if scale.is_finite() && scale > 0.0 {
        Ok(())
    } else {
        Err(DtypeError::InvalidScale { op, scale })
    }
}

/// Rounds every `src[i]` into `dst[i]` exactly as [`Dtype::from_f32`] does (nearest even,
/// format overflow). Errors if the lengths differ.
pub fn convert_slice<T: Dtype>(src: &[f32], dst: &mut [T]) -> Result<(), DtypeError> {
    check_lengths("convert_slice", src.len(), dst.len())?;
    T::encode_slice(
        src,
        dst,
        EncodeMode {
            saturate: false,
            scale: None,
        },
    );
    Ok(())
}

/// Rounds every `src[i]` into `dst[i]` exactly as [`Dtype::from_f32_saturating`] does
/// (nearest even; overflow and ±inf clamp to ±MAX; NaN stays NaN).
pub fn convert_slice_saturating<T: Dtype>(src: &[f32], dst: &mut [T]) -> Result<(), DtypeError> {
    check_lengths("convert_slice_saturating", src.len(), dst.len())?;
    T::encode_slice(
        src,
        dst,
        EncodeMode {
            saturate: true,
            scale: None,
        },
    );
    Ok(())
}

/// `dst[i] = T::from_f32(src[i] * scale)`, the product rounded in f32 first. `scale` must be
/// finite and positive.
pub fn convert_slice_scaled<T: Dtype>(
    src: &[f32],
    dst: &mut [T],
    scale: f32,
) -> Result<(), DtypeError> {
    check_lengths("convert_slice_scaled", src.len(), dst.len())?;
    check_scale("convert_slice_scaled", scale)?;
    T::encode_slice(
        src,
        dst,
        EncodeMode {
            saturate: false,
            scale: Some(scale),
        },
    );
    Ok(())
}

/// `dst[i] = T::from_f32_saturating(src[i] * scale)`: FP8 quantisation with a per-tensor
/// scale. `scale` must be finite and positive.
pub fn convert_slice_scaled_saturating<T: Dtype>(
    src: &[f32],
    dst: &mut [T],
    scale: f32,
) -> Result<(), DtypeError> {
    check_lengths("convert_slice_scaled_saturating", src.len(), dst.len())?;
    check_scale("convert_slice_scaled_saturating", scale)?;
    T::encode_slice(
        src,
        dst,
        EncodeMode {
            saturate: true,
            scale: Some(scale),
        },
    );
    Ok(())
}

/// `dst[i] = src[i].to_f32()`: exact for every type but `F64` (nearest even).
pub fn convert_slice_to_f32<T: Dtype>(src: &[T], dst: &mut [f32]) -> Result<(), DtypeError> {
    check_lengths("convert_slice_to_f32", src.len(), dst.len())?;
    T::decode_slice(src, dst, None);
    Ok(())
}

/// `dst[i] = src[i].to_f32() / scale`, one rounding in f32 (FP8 dequantisation).
/// `scale` must be finite and positive.
pub fn convert_slice_to_f32_scaled<T: Dtype>(
    src: &[T],
    dst: &mut [f32],
    scale: f32,
) -> Result<(), DtypeError> {
    check_lengths("convert_slice_to_f32_scaled", src.len(), dst.len())?;
    check_scale("convert_slice_to_f32_scaled", scale)?;
    T::decode_slice(src, dst, Some(scale));
    Ok(())
}

/// The `F32` encode: a copy, with the optional multiply and the inf clamp.
pub(crate) fn encode_f32_slice(src: &[f32], dst: &mut [F32], mode: EncodeMode) {
    let scale = mode.scale.unwrap_or(1.0);
    let scaled = mode.scale.is_some();
    for (d, &s) in dst.iter_mut().zip(src) {
        let x = if scaled { s * scale } else { s };
        *d = if mode.saturate {
            F32::from_f32_saturating(x)
        } else {
            F32(x)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{E4M3, F16};

    #[test]
    fn length_mismatch_names_the_function() {
        let mut dst = [E4M3::ZERO; 2];
        let err = convert_slice(&[1.0, 2.0, 3.0], &mut dst).unwrap_err();
        assert_eq!(
            err,
            DtypeError::LengthMismatch {
                op: "convert_slice",
                src: 3,
                dst: 2
            }
        );
        assert!(
            err.to_string()
                .starts_with("convert_slice: source has 3 elements")
        );
        let mut out = [0.0f32; 1];
        assert!(convert_slice_to_f32(&dst, &mut out).is_err());
    }

    #[test]
    fn bad_scales_are_refused() {
        let mut dst = [F16::ZERO; 1];
        for scale in [0.0, -1.0, f32::INFINITY, f32::NAN] {
            let err = convert_slice_scaled_saturating(&[1.0], &mut dst, scale).unwrap_err();
            assert!(matches!(
                err,
                DtypeError::InvalidScale {
                    op: "convert_slice_scaled_saturating",
                    ..
                }
            ));
        }
        let mut out = [0.0f32; 1];
        assert!(convert_slice_to_f32_scaled(&dst, &mut out, 0.0).is_err());
    }

    #[test]
    fn empty_slices_are_fine() {
        let mut dst: [E4M3; 0] = [];
        convert_slice(&[], &mut dst).unwrap();
    }
}

/// The portable (non-AVX2) loops and the scaled variants against the scalar reference, on
/// every input of the golden tables.
#[cfg(test)]
mod portable_tests {
    use super::dispatch::{FastKernel, decode_portable, encode_portable};
    use super::reference::{decode_slice_reference, encode_slice_reference};
    use super::{EncodeMode, convert_slice_scaled, convert_slice_to_f32_scaled};
    use crate::golden_reader as golden;
    use crate::{Bf16, Dtype, E4M3, E5M2, F16};

    fn same<T: Dtype>(a: T, b: T) -> bool {
        (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
    }

    fn agree_on_golden_inputs<T: FastKernel>(file: &str) {
        let inputs: Vec<f32> = golden::read_records(file)
            .iter()
            .map(|r| f32::from_bits(r.input))
            .collect();
        for saturate in [false, true] {
            for scale in [None, Some(0.75f32), Some(448.0 / 3.5)] {
                let mode = EncodeMode { saturate, scale };
                let mut fast = vec![T::ZERO; inputs.len()];
                let mut reference = vec![T::ZERO; inputs.len()];
                encode_portable(&inputs, &mut fast, mode);
                encode_slice_reference(&inputs, &mut reference, saturate, scale);
                for ((x, f), r) in inputs.iter().zip(&fast).zip(&reference) {
                    assert!(
                        same(*f, *r),
                        "{file} {mode:?}: input {:08x}: portable {f:?} reference {r:?}",
                        x.to_bits()
                    );
                }
                if let Some(k) = scale {
                    // The public scaled entry point (dispatched kernels) agrees as well.
                    let mut public = vec![T::ZERO; inputs.len()];
                    if saturate {
                        super::convert_slice_scaled_saturating(&inputs, &mut public, k).unwrap();
                    } else {
                        convert_slice_scaled(&inputs, &mut public, k).unwrap();
                    }
                    assert!(
                        public.iter().zip(&reference).all(|(p, r)| same(*p, *r)),
                        "{file} public {mode:?}"
                    );
                }
            }
        }
    }

    fn decode_agrees<T: FastKernel>(codes: impl Iterator<Item = T>) {
        let values: Vec<T> = codes.collect();
        for scale in [None, Some(3.0f32)] {
            let mut fast = vec![0.0f32; values.len()];
            let mut reference = vec![0.0f32; values.len()];
            decode_portable(&values, &mut fast, scale);
            decode_slice_reference(&values, &mut reference, scale);
            for ((v, f), r) in values.iter().zip(&fast).zip(&reference) {
                assert!(
                    (f.is_nan() && r.is_nan()) || f.to_bits() == r.to_bits(),
                    "{v:?} {scale:?}: {f} vs {r}"
                );
            }
            if let Some(k) = scale {
                let mut public = vec![0.0f32; values.len()];
                convert_slice_to_f32_scaled(&values, &mut public, k).unwrap();
                assert!(
                    public
                        .iter()
                        .zip(&reference)
                        .all(|(p, r)| (p.is_nan() && r.is_nan()) || p == r)
                );
            }
        }
    }

    #[test]
    fn bf16_portable_encode() {
        agree_on_golden_inputs::<Bf16>("encode_bf16.txt");
    }
    #[test]
    fn f16_portable_encode() {
        agree_on_golden_inputs::<F16>("encode_f16.txt");
    }
    #[test]
    fn e4m3_portable_encode() {
        agree_on_golden_inputs::<E4M3>("encode_e4m3.txt");
    }
    #[test]
    fn e5m2_portable_encode() {
        agree_on_golden_inputs::<E5M2>("encode_e5m2.txt");
    }
    #[test]
    fn portable_decode_of_every_code() {
        decode_agrees((0..=u16::MAX).map(Bf16::from_bits));
        decode_agrees((0..=u16::MAX).map(F16::from_bits));
        decode_agrees((0..=u8::MAX).map(E4M3::from_bits));
        decode_agrees((0..=u8::MAX).map(E5M2::from_bits));
    }
}
