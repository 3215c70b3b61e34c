//! Raw bytes: [`Tensor::to_le_bytes`] and [`Tensor::from_le_bytes`], the layout of
//! safetensors files and NumPy's little-endian arrays.

use crate::cpu::alloc::try_with_capacity;
use crate::error::{Error, ErrorKind, Result};
use crate::layout::checked_numel;
use crate::tensor::Tensor;
use mixprec_dtype::{Dtype, LeBits};

impl<D: Dtype> Tensor<D> {
    /// The elements in row-major order as the little-endian bytes of their bit patterns
    /// (`numel * D::BYTES` bytes; a view is gathered). Exact: every pattern, NaN payloads
    /// included, comes through. An FP8 tensor's scale is not in the bytes
    /// ([`Tensor::scale`]).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        let elements = self.elements();
        let mut out = Vec::with_capacity(elements.len() * D::BYTES);
        for x in elements.iter() {
            x.to_bits().push_le_bytes(&mut out);
        }
        out
    }

    /// A tensor of `shape` from the little-endian bytes of its elements' bit patterns
    /// (row-major), with FP8 scale `scale` (`value = decode(bits) / scale`; exactly 1 for
    /// other types). Exact. Errors, changing nothing, when the byte count is not
    /// `numel * D::BYTES`, the scale is not finite and > 0 (or not 1 for a non-FP8
    /// type), or the memory cannot be allocated.
    ///
    /// ```
    /// use mixprec_tensor::Tensor;
    /// use mixprec_dtype::Bf16;
    /// let t = Tensor::<Bf16>::from_le_bytes(&[0x80, 0x3f, 0x00, 0xc0], &[2], 1.0).unwrap();
    /// assert_eq!(t.to_f32_vec(), vec![1.0, -2.0]);
    /// assert_eq!(t.to_le_bytes(), vec![0x80, 0x3f, 0x00, 0xc0]);
    /// assert!(Tensor::<Bf16>::from_le_bytes(&[0; 3], &[2], 1.0).is_err());
    /// ```
    pub fn from_le_bytes(bytes: &[u8], shape: &[usize], scale: f32) -> Result<Self> {
        const OP: &str = "from_le_bytes";
        let n = checked_numel(OP, shape)?;
        if bytes.len() != n.saturating_mul(D::BYTES) {
            return Err(Error::new(
                OP,
                ErrorKind::BadShape {
                    shape: shape.to_vec(),
                    expected: format!(
                        "{} bytes ({n} elements of {} bytes), got {}",
                        n.saturating_mul(D::BYTES),
                        D::BYTES,
                        bytes.len()
                    ),
                },
            ));
        }
        let scale_ok = if D::DTYPE.is_fp8() {
            scale.is_finite() && scale > 0.0
        } else {
            scale == 1.0
        };
        if !scale_ok {
            return Err(Error::invalid(
                OP,
                format!("{} cannot carry scale {scale}", D::NAME),
            ));
        }
        let mut data = try_with_capacity::<D>(OP, shape, n)?;
        for chunk in bytes.chunks_exact(D::BYTES) {
            let Some(bits) = D::Bits::from_le_slice(chunk) else {
                return Err(Error::invalid(OP, "element width differs from the type's"));
            };
            data.push(D::from_bits(bits));
        }
        Ok(Tensor::from_parts(data, shape, scale))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::{E4M3, F16, F32, F64};

    #[test]
    fn bytes_round_trip_every_pattern_and_views_are_gathered() {
        let all: Vec<u8> = (0..=255).collect();
        let t = Tensor::<E4M3>::from_le_bytes(&all, &[16, 16], 0.5).unwrap();
        assert_eq!(t.scale(), 0.5);
        assert_eq!(t.to_le_bytes(), all, "every E4M3 pattern, NaNs included");
        let h = Tensor::<F16>::from_le_bytes(&[0x00, 0x3c, 0x00, 0x7e], &[2], 1.0).unwrap();
        assert_eq!(h.to_f32_vec()[0], 1.0);
        assert!(h.to_f32_vec()[1].is_nan());
        let m = Tensor::<F32>::from_f32(&[1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
        let tr = m.transpose(0, 1).unwrap();
        let back = Tensor::<F32>::from_le_bytes(&tr.to_le_bytes(), &[2, 2], 1.0).unwrap();
        assert_eq!(back.to_f32_vec(), vec![1.0, 3.0, 2.0, 4.0]);
        let e = Tensor::<F64>::from_le_bytes(&[], &[0, 3], 1.0).unwrap();
        assert_eq!(e.numel(), 0);
    }

    #[test]
    fn bad_lengths_and_scales_are_errors() {
        let e = Tensor::<F32>::from_le_bytes(&[0; 7], &[2], 1.0).unwrap_err();
        assert!(e.to_string().contains("8 bytes"), "{e}");
        let e = Tensor::<F32>::from_le_bytes(&[0; 8], &[2], 2.0).unwrap_err();
        assert!(e.to_string().contains("scale 2"), "{e}");
        let e = Tensor::<E4M3>::from_le_bytes(&[0; 2], &[2], f32::NAN).unwrap_err();
        assert!(e.to_string().contains("scale NaN"), "{e}");
        assert!(Tensor::<F32>::from_le_bytes(&[], &[usize::MAX, 2], 1.0).is_err());
    }
}
