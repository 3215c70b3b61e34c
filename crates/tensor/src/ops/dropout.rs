//! `dropout` with a mask drawn from an explicit seeded generator; the mask is returned
//! so the backward pass (and a re-run) uses the same one.

use crate::backend::on_device;
use crate::cpu::map::broadcast_values;
use crate::error::{Error, Result};
use crate::mask::Mask;
use crate::rng::Rng;
use crate::tensor::Tensor;
use mixprec_dtype::{Acc, Dtype};
use num_traits::Zero;

impl<D: Dtype> Tensor<D> {
    /// Zeroes each element with probability `p` and scales the rest by `1 / (1 - p)`
    /// (inverted dropout, as in PyTorch's training mode). Returns the result and the mask
    /// of kept elements. Errors unless `0 <= p < 1`.
    pub fn dropout(&self, p: f64, rng: &mut Rng) -> Result<(Tensor<D>, Mask)> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::invalid(
                "dropout",
                format!("probability must be in [0, 1), got {p}"),
            ));
        }
        let draws = (0..self.numel()).map(|_| rng.next_f64() >= p);
        let keep = crate::cpu::alloc::try_collect("dropout", self.shape(), draws)?;
        let mask = Mask::from_vec(keep, self.shape())?;
        let out = self.dropout_with_mask(&mask, p)?;
        Ok((out, mask))
    }

    /// Applies a given keep-mask: kept elements times `1 / (1 - p)`, others zero. Errors
    /// if the mask's shape differs or `p` is outside `[0, 1)`.
    pub fn dropout_with_mask(&self, keep: &Mask, p: f64) -> Result<Tensor<D>> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::invalid(
                "dropout_with_mask",
                format!("probability must be in [0, 1), got {p}"),
            ));
        }
        if keep.shape() != self.shape() {
            return Err(Error::shapes(
                "dropout_with_mask",
                self.shape(),
                keep.shape(),
                "the mask must have the tensor's shape",
            ));
        }
        on_device!(self.device(), b => b.dropout_with_mask(self, keep, p))
    }

    /// The CPU kernel of [`Tensor::dropout_with_mask`], after its front's checks.
    pub(crate) fn dropout_with_mask_on_cpu(&self, keep: &Mask, p: f64) -> Result<Tensor<D>> {
        let scale = D::Acc::from_f64(1.0 / (1.0 - p));
        let mut flags = keep.as_slice().iter();
        let values = broadcast_values("dropout_with_mask", self.shape(), [self], |[x]| {
            if *flags.next().expect("one flag per element") {
                x * scale
            } else {
                D::Acc::zero()
            }
        })?;
        Tensor::from_acc_vec("dropout_with_mask", &values, self.shape())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::F32;
    use mixprec_testing::for_each_dtype;

    fn dropout_is_seeded_and_scaled<D: Dtype>() {
        let x = Tensor::<D>::ones(&[100, 50]);
        let (y1, m1) = x.dropout(0.5, &mut Rng::seed(4)).unwrap();
        let (y2, m2) = x.dropout(0.5, &mut Rng::seed(4)).unwrap();
        assert_eq!(m1, m2, "same seed, same mask");
        assert_eq!(y1.to_f64_vec(), y2.to_f64_vec());
        let kept = m1.count();
        // Binomial(5000, 0.5): standard deviation 35; 5 sigma.
        assert!((kept as f64 - 2500.0).abs() < 177.0, "{kept}");
        for (v, &k) in y1.to_f64_vec().iter().zip(m1.as_slice()) {
            assert_eq!(*v, if k { 2.0 } else { 0.0 });
        }
        let (z, _) = x.dropout(0.0, &mut Rng::seed(1)).unwrap();
        assert_eq!(z.to_f64_vec(), x.to_f64_vec());
    }
    for_each_dtype!(dropout_is_seeded_and_scaled);

    #[test]
    fn dropout_errors() {
        let x = Tensor::<F32>::ones(&[2]);
        assert_eq!(
            x.dropout(1.0, &mut Rng::seed(0)).unwrap_err().to_string(),
            "dropout: probability must be in [0, 1), got 1"
        );
        assert!(x.dropout(-0.1, &mut Rng::seed(0)).is_err());
        assert!(x.dropout_with_mask(&Mask::causal(2), 0.5).is_err());
    }
}
