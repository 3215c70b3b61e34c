//! [`Tensor::unscale_checked`]: the loss scaler's fused unscale and non-finite check
//! (PyTorch's `_amp_foreach_non_finite_check_and_unscale_`, per tensor), one pass over
//! the gradient.

use crate::backend::on_device;
use crate::cpu::alloc::try_scratch;
use crate::cpu::map::{CHUNK, PARALLEL_MIN};
use crate::cpu::pool::par_pieces;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use mixprec_dtype::{Dtype, F32};
use std::sync::atomic::{AtomicBool, Ordering};

impl Tensor<F32> {
    /// `(self * inv_scale, found)`: every element multiplied by `inv_scale` in f32 (one
    /// rounding; the same bits as `mul_scalar(inv_scale)`), and whether any element of
    /// `self` (the *scaled* gradient, as PyTorch checks it) is infinite or NaN. With
    /// `inv_scale == 1` the result shares `self`'s storage and only the check runs. Errors
    /// when `inv_scale` is not finite and positive, or the result cannot be allocated.
    ///
    /// ```
    /// use mixprec_tensor::Tensor;
    /// use mixprec_dtype::F32;
    /// let g = Tensor::<F32>::from_f32(&[1024.0, -512.0], &[2]).unwrap();
    /// let (u, found_inf) = g.unscale_checked(1.0 / 1024.0).unwrap();
    /// assert_eq!((u.to_f32_vec(), found_inf), (vec![1.0, -0.5], false));
    /// let bad = Tensor::<F32>::from_f32(&[f32::INFINITY, 1.0], &[2]).unwrap();
    /// assert!(bad.unscale_checked(0.5).unwrap().1);
    /// ```
    pub fn unscale_checked(&self, inv_scale: f32) -> Result<(Tensor<F32>, bool)> {
        if !(inv_scale.is_finite() && inv_scale > 0.0) {
            return Err(Error::invalid(
                "unscale_checked",
                format!("inv_scale must be finite and > 0, got {inv_scale}"),
            ));
        }
        on_device!(self.device(), b => b.unscale_checked(self, inv_scale))
    }

    /// The CPU kernel of [`Tensor::unscale_checked`], after its front's checks: chunks on
    /// the pool, each multiplying and checking the elements it reads.
    pub(crate) fn unscale_checked_on_cpu(&self, inv_scale: f32) -> Result<(Tensor<F32>, bool)> {
        const OP: &str = "unscale_checked";
        if inv_scale == 1.0 {
            return Ok((self.clone(), !self.all_finite_on_cpu()?));
        }
        let src = self.try_elements(OP)?;
        let mut out = try_scratch::<F32>(OP, self.shape(), src.len())?;
        let found = AtomicBool::new(false);
        par_pieces(&mut out, CHUNK, PARALLEL_MIN, |off, piece| {
            let from = &src[off..off + piece.len()];
            let mut non_finite = false;
            for (o, &g) in piece.iter_mut().zip(from) {
                let g = g.to_f32();
                non_finite |= !g.is_finite();
                *o = F32::from_f32(g * inv_scale);
            }
            if non_finite {
                found.store(true, Ordering::Relaxed);
            }
        });
        Ok((
            Tensor::from_parts(out, self.shape(), 1.0),
            found.into_inner(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The hard values: ties, subnormals, near-overflow, infinities, NaN, signed zeros.
    fn hard_f32() -> impl Strategy<Value = f32> {
        prop_oneof![
            any::<f32>(),
            Just(f32::MAX),
            Just(-f32::MAX),
            Just(f32::MIN_POSITIVE),
            Just(f32::from_bits(1)),
            Just(-0.0f32),
            Just(0.0f32),
            Just(f32::INFINITY),
            Just(f32::NEG_INFINITY),
            Just(f32::NAN),
            Just(1.0 + f32::EPSILON / 2.0),
        ]
    }

    proptest! {
        /// Bit for bit `mul_scalar` and `!all_finite`, the two passes it fuses, at any
        /// length (both sides of the parallel threshold).
        #[test]
        fn equals_the_two_passes(
            values in prop::collection::vec(hard_f32(), 0..300),
            long in any::<bool>(),
            inv in prop_oneof![Just(1.0f32), Just(0.5f32), Just(1.0 / 65536.0), 1e-6f32..1e3],
        ) {
            let mut values = values;
            if long {
                let n = values.len();
                values = values.into_iter().cycle().take(n * 700).collect();
            }
            let g = Tensor::<F32>::from_f32(&values, &[values.len()]).unwrap();
            let (u, found) = g.unscale_checked(inv).unwrap();
            let want = g.mul_scalar(f64::from(inv));
            let bits = |t: &Tensor<F32>| t.to_f32_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&u), bits(&want));
            prop_assert_eq!(found, !g.all_finite());
        }
    }

    #[test]
    fn a_strided_view_and_bad_scales() {
        let g = Tensor::<F32>::from_f32(&[1.0, 2.0, 3.0, f32::NAN], &[2, 2]).unwrap();
        let (u, found) = g.transpose(0, 1).unwrap().unscale_checked(0.5).unwrap();
        assert_eq!(u.to_f32_vec()[..3], [0.5, 1.5, 1.0]);
        assert!(found);
        for bad in [0.0, -1.0, f32::INFINITY, f32::NAN] {
            let e = g.unscale_checked(bad).unwrap_err().to_string();
            assert!(e.starts_with("unscale_checked: "), "{e}");
        }
    }
}
