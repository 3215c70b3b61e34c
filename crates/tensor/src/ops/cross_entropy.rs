//! `cross_entropy` from logits with integer class labels (mean reduction), through the
//! stable log-softmax, in `D::Acc`. Precision-sensitive: the amp layer runs it in F32.

use super::reduce::sum_acc;
use crate::backend::on_device;
use crate::error::{Error, Result};
use crate::mask::Indices;
use crate::storage::one_device;
use crate::tensor::Tensor;
use mixprec_dtype::{Acc, Dtype};
use num_traits::Float;

/// Checks `op`'s logits shape `[N, C]` (both non-zero) and labels (`[N]`, below `C`);
/// returns `(N, C)`.
fn check_inputs(op: &'static str, shape: &[usize], labels: &Indices) -> Result<(usize, usize)> {
    if shape.len() != 2 {
        return Err(Error::bad_shape(
            op,
            shape,
            "logits of rank 2 ([batch, classes])",
        ));
    }
    let (n, c) = (shape[0], shape[1]);
    if labels.shape() != [n] {
        return Err(Error::shapes(
            op,
            shape,
            labels.shape(),
            "labels must have shape [batch]",
        ));
    }
    if n == 0 || c == 0 {
        return Err(Error::empty(op, shape));
    }
    labels.check_bound(op, c)?;
    Ok((n, c))
}

impl<D: Dtype> Tensor<D> {
    /// Mean over the batch of `-log softmax(logits)[i, label_i]`, for `logits` of shape
    /// `[N, C]` and `labels` of shape `[N]` with values below `C`: PyTorch's
    /// `cross_entropy` with `reduction="mean"`. Returns a rank-0 tensor. Errors on other
    /// shapes, an empty batch, or a label out of range.
    pub fn cross_entropy(&self, labels: &Indices) -> Result<Tensor<D>> {
        check_inputs("cross_entropy", self.shape(), labels)?;
        on_device!(self.device(), b => b.cross_entropy(self, labels))
    }

    /// The CPU kernel of [`Tensor::cross_entropy`], after its front's checks.
    pub(crate) fn cross_entropy_on_cpu(&self, labels: &Indices) -> Result<Tensor<D>> {
        let (n, c) = (self.shape()[0], self.shape()[1]);
        let x = self.try_to_acc_vec("cross_entropy")?;
        let mut losses = crate::cpu::alloc::try_with_capacity("cross_entropy", &[n], n)?;
        let mut e = crate::cpu::alloc::try_zeroed_acc::<D>("cross_entropy", &[c], c)?;
        for (row, &label) in x.chunks(c).zip(labels.as_slice()) {
            let m = row.iter().fold(D::Acc::neg_infinity(), |a, &v| a.max(v));
            e.iter_mut().zip(row).for_each(|(e, &v)| *e = (v - m).exp());
            losses.push(m + sum_acc(&e).ln() - row[label]);
        }
        Tensor::from_acc_vec(
            "cross_entropy",
            &[sum_acc(&losses) / D::Acc::from_usize(n)],
            &[],
        )
    }

    /// The gradient of [`Tensor::cross_entropy`] for `self` the logits `[N, C]`, its
    /// `labels` and the loss's gradient `grad` (one element): `(softmax(x) - onehot) *
    /// grad / N`, the softmax rounded into `D` first (as the forward pass keeps it), the
    /// rest in `D::Acc`, rounded once. Errors on the forward op's bad inputs or a `grad`
    /// with other than one element.
    pub fn cross_entropy_backward(&self, labels: &Indices, grad: &Tensor<D>) -> Result<Tensor<D>> {
        let op = "cross_entropy_backward";
        let device = one_device(op, [self.device(), grad.device()])?;
        check_inputs(op, self.shape(), labels)?;
        if grad.numel() != 1 {
            return Err(Error::bad_shape(op, grad.shape(), "exactly one element"));
        }
        on_device!(device, b => b.cross_entropy_backward(self, labels, grad))
    }

    /// The CPU kernel of [`Tensor::cross_entropy_backward`], after its front's checks.
    pub(crate) fn cross_entropy_backward_on_cpu(
        &self,
        labels: &Indices,
        grad: &Tensor<D>,
    ) -> Result<Tensor<D>> {
        let op = "cross_entropy_backward";
        let (n, c) = (self.shape()[0], self.shape()[1]);
        let g = grad.item().map_err(|e| Error { op, ..e })?;
        let mut p = self.softmax(-1)?.try_to_acc_vec(op)?;
        let scale = g / D::Acc::from_usize(n);
        for (row, &label) in p.chunks_mut(c).zip(labels.as_slice()) {
            row[label] -= D::Acc::from_f64(1.0);
            row.iter_mut().for_each(|v| *v *= scale);
        }
        Tensor::from_acc_vec(op, &p, self.shape())
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
