//! `cross_entropy`: `dlogits = (softmax(logits) - onehot(labels)) * g / N`, computed in
//! `D::Acc` and rounded once.

use super::{grad, saved, unary_record};
use crate::error::Result;
use crate::var::Var;
use mixprec_dtype::{Dtype, FullPrecision};
use mixprec_tensor::Indices;

impl<D: FullPrecision> Var<D> {
    /// Mean cross-entropy of `[N, C]` logits against `[N]` class labels (rank-0 result),
    /// in `D::Acc`. Full precision only (see [`Var::softmax`]);
    /// [`Var::cross_entropy_low_precision`] for other types.
    pub fn cross_entropy(&self, labels: &Indices) -> Result<Var<D>> {
        self.cross_entropy_low_precision(labels)
    }
}

impl<D: Dtype> Var<D> {
    /// Cross-entropy in any precision: computed in f32, the loss and the gradient rounded
    /// once into `D`. For experiments; models use [`Var::cross_entropy`] on F32.
    pub fn cross_entropy_low_precision(&self, labels: &Indices) -> Result<Var<D>> {
        let y = self.value.cross_entropy(labels)?;
        let x = self.value.clone();
        let labels = labels.clone();
        let id = self.id;
        let rec = unary_record("cross_entropy", self, vec![saved(&x)]);
        Ok(self.tape.record(y, rec, move |g| {
            Ok(vec![grad(id, x.cross_entropy_backward(&labels, &g)?)])
        }))
    }
}
