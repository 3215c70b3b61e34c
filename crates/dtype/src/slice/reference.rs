//! One element at a time through the integer-arithmetic reference rounding (the code in
//! `format.rs` that spells the rounding out) and the scalar decoders: what the fast
//! kernels and the branch-free scalar functions are tested and benchmarked against.

use crate::dtype::Dtype;

/// `dst[i]` = `src[i] * scale` rounded to nearest even by the integer reference
/// (saturating or not), element by element.
/// Pairs beyond the shorter slice are left alone.
pub fn encode_slice_reference<T: Dtype>(
    src: &[f32],
    dst: &mut [T],
    saturate: bool,
    scale: Option<f32>,
) {
    for (d, &s) in dst.iter_mut().zip(src) {
        let x = match scale {
            Some(k) => s * k,
            None => s,
        };
        *d = if saturate {
            T::from_f32_saturating(x)
        } else {
            T::from_f32(x)
        };
    }
}

/// `dst[i] = src[i].to_f32()` (divided by `scale` when given), element by element.
pub fn decode_slice_reference<T: Dtype>(src: &[T], dst: &mut [f32], scale: Option<f32>) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = match scale {
            Some(k) => s.to_f32() / k,
            None => s.to_f32(),
        };
    }
}
