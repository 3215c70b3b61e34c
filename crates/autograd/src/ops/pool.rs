//! `max_pool2d`, `avg_pool2d`: the tensor layer computes the gradients
//! (`Tensor::max_pool2d_backward`, `Tensor::avg_pool2d_backward`).

use super::{grad, saved, unary_record};
use crate::error::Result;
use crate::var::Var;
use mixprec_dtype::Dtype;
use mixprec_tensor::Pool2dParams;

impl<D: Dtype> Var<D> {
    /// Max pooling; the gradient goes to each window's maximum.
    pub fn max_pool2d(&self, p: Pool2dParams) -> Result<Var<D>> {
        let y = self.value.max_pool2d(p)?;
        let (x, id) = (self.value.clone(), self.id);
        let rec = unary_record("max_pool2d", self, vec![saved(&x)]);
        Ok(self.tape.record(y, rec, move |g| {
            Ok(vec![grad(id, x.max_pool2d_backward(&g, p)?)])
        }))
    }

    /// Average pooling; the gradient is spread over each window.
    pub fn avg_pool2d(&self, p: Pool2dParams) -> Result<Var<D>> {
        let y = self.value.avg_pool2d(p)?;
        let (x, id) = (self.value.clone(), self.id);
        let rec = unary_record("avg_pool2d", self, vec![saved(&x)]);
        Ok(self.tape.record(y, rec, move |g| {
            Ok(vec![grad(id, x.avg_pool2d_backward(&g, p)?)])
        }))
    }
}
