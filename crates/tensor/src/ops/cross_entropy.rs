//! `cross_entropy` from logits with integer class labels (mean reduction), through the
//! stable log-softmax, in `D::Acc`. Precision-sensitive: the amp layer runs it in F32.

use super::reduce::sum_acc;
use crate::error::{Error, Result};
use crate::mask::Indices;
use crate::tensor::Tensor;
use mixprec_dtype::{Acc, Dtype};
use num_traits::Float;

impl<D: Dtype> Tensor<D> {
    /// Mean over the batch of `-log softmax(logits)[i, label_i]`, for `logits` of shape
    /// `[N, C]` and `labels` of shape `[N]` with values below `C`: PyTorch's
    /// `cross_entropy` with `reduction="mean"`. Returns a rank-0 tensor. Errors on other
    /// shapes, an empty batch, or a label out of range.
    pub fn cross_entropy(&self, labels: &Indices) -> Result<Tensor<D>> {
        if self.rank() != 2 {
            return Err(Error::bad_shape(
                "cross_entropy",
                self.shape(),
                "logits of rank 2 ([batch, classes])",
            ));
        }
        let (n, c) = (self.shape()[0], self.shape()[1]);
        if labels.shape() != [n] {
            return Err(Error::shapes(
                "cross_entropy",
                self.shape(),
                labels.shape(),
                "labels must have shape [batch]",
            ));
        }
        if n == 0 || c == 0 {
            return Err(Error::empty("cross_entropy", self.shape()));
        }
        labels.check_bound("cross_entropy", c)?;
        let x = self.to_acc_vec();
        let losses: Vec<D::Acc> = x
            .chunks(c)
            .zip(labels.as_slice())
            .map(|(row, &label)| {
                let m = row.iter().fold(D::Acc::neg_infinity(), |a, &v| a.max(v));
                let e: Vec<D::Acc> = row.iter().map(|&v| (v - m).exp()).collect();
                m + sum_acc(&e).ln() - row[label]
            })
            .collect();
        Ok(Tensor::from_acc_vec(
            &[sum_acc(&losses) / D::Acc::from_usize(n)],
            &[],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::F32;
    use mixprec_testing::{TestRng, Tolerance, assert_close, for_each_dtype};

    fn cross_entropy_matches_f64<D: Dtype>() {
        let mut rng = TestRng::new(8);
        let (n, c) = (16, 10);
        let logits = Tensor::<D>::from_f64(&rng.vec(n * c, -4.0, 4.0), &[n, c]).unwrap();
        let labels: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
        let got = logits.cross_entropy(&Indices::from_slice(&labels)).unwrap();
        assert_eq!(got.shape(), &[] as &[usize]);
        let x = logits.to_f64_vec();
        let want: f64 = x
            .chunks(c)
            .zip(&labels)
            .map(|(r, &l)| {
                let m = r.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                m + r.iter().map(|v| (v - m).exp()).sum::<f64>().ln() - r[l]
            })
            .sum::<f64>()
            / n as f64;
        // Per-row log-sum of c terms, then a mean of n rows; one final rounding.
        let tol = Tolerance::accumulated::<D>(n + c).plus_conditioning::<D>(8.0);
        assert_close(
            &format!("cross_entropy<{}>", D::NAME),
            &got.to_f64_vec(),
            &[want],
            tol,
        );
    }
    for_each_dtype!(cross_entropy_matches_f64);

    #[test]
    fn cross_entropy_errors() {
        let logits = Tensor::<F32>::zeros(&[2, 3]);
        let e = logits
            .cross_entropy(&Indices::from_slice(&[0, 3]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cross_entropy: index 3 is out of range (must be below 3)"
        );
        assert!(
            logits
                .cross_entropy(&Indices::from_slice(&[0]))
                .unwrap_err()
                .to_string()
                .contains("labels must have shape [batch]")
        );
        assert!(
            Tensor::<F32>::zeros(&[3])
                .cross_entropy(&Indices::from_slice(&[0]))
                .is_err()
        );
        assert!(
            Tensor::<F32>::zeros(&[0, 3])
                .cross_entropy(&Indices::from_slice(&[]))
                .is_err()
        );
        // Uniform logits: loss is ln(3).
        let l = logits
            .cross_entropy(&Indices::from_slice(&[0, 2]))
            .unwrap()
            .item()
            .unwrap();
        assert!((l - 3f32.ln()).abs() < 1e-6);
    }
}
