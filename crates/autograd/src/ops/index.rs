//! `embedding` and `index_select`: the gradient scatter-adds rows back into a zero table
//! (sparse accumulation: only looked-up rows receive anything), in `D::Acc`
//! ([`Tensor::index_select_backward`]).

use super::{grad, unary_record};
use crate::error::Result;
use crate::var::Var;
use mixprec_dtype::Dtype;
use mixprec_tensor::{Indices, Tensor};

impl<D: Dtype> Var<D> {
    /// Embedding lookup in a `[vocab, dim]` table; result `[ids.shape.., dim]`.
    pub fn embedding(&self, ids: &Indices) -> Result<Var<D>> {
        let y = self.value.embedding(ids)?;
        self.scatter_rule("embedding", y, 0, ids)
    }

    /// `index_select` along `axis`.
    pub fn index_select(&self, axis: isize, ids: &Indices) -> Result<Var<D>> {
        let y = self.value.index_select(axis, ids)?;
        self.scatter_rule("index_select", y, axis, ids)
    }

    fn scatter_rule(
        &self,
        op: &'static str,
        y: Tensor<D>,
        axis: isize,
        ids: &Indices,
    ) -> Result<Var<D>> {
        let (id, shape, ids) = (self.id, self.shape().to_vec(), ids.clone());
        Ok(self
            .tape
            .record(y, unary_record(op, self, vec![]), move |g| {
                Ok(vec![grad(id, g.index_select_backward(&shape, axis, &ids)?)])
            }))
    }
}
