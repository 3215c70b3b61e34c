//! `embedding` and `index_select`: the gradient scatter-adds rows back into a zero table
//! (sparse accumulation: only looked-up rows receive anything), in `D::Acc`.

use super::{grad, unary_record};
use crate::error::Result;
use crate::var::Var;
use mixprec_dtype::Dtype;
use mixprec_tensor::{Indices, Tensor};
use num_traits::Zero;

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
                let rank = shape.len() as isize;
                let a = (if axis < 0 { axis + rank } else { axis }) as usize;
                let outer: usize = shape[..a].iter().product();
                let inner: usize = shape[a + 1..].iter().product();
                let gv = g.to_acc_vec();
                let mut table = vec![D::Acc::zero(); shape.iter().product()];
                let per_outer = ids.len() * inner;
                for o in 0..outer {
                    for (k, &row) in ids.as_slice().iter().enumerate() {
                        let src = &gv[o * per_outer + k * inner..][..inner];
                        let dst = &mut table[(o * shape[a] + row) * inner..][..inner];
                        for (d, &s) in dst.iter_mut().zip(src) {
                            *d += s;
                        }
                    }
                }
                Ok(vec![grad(id, Tensor::<D>::from_acc(&table, &shape)?)])
            }))
    }
}
