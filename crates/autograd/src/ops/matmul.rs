//! `matmul`: `dA = g B^T`, `dB = A^T g` (transposes are views, read in place by the GEMM),
//! summed back over broadcast batch axes.

use super::{grad, saved, sum_to};
use crate::error::Result;
use crate::var::{Record, Var};
use mixprec_dtype::Dtype;

impl<D: Dtype> Var<D> {
    /// Matrix product over the last two axes with batch broadcasting.
    pub fn matmul(&self, other: &Var<D>) -> Result<Var<D>> {
        self.same_tape("matmul", other)?;
        let y = self.value.matmul(&other.value)?;
        let (a, b) = (self.value.clone(), other.value.clone());
        let (ia, ib) = (self.id, other.id);
        let (need_a, need_b) = (self.requires_grad, other.requires_grad);
        let rec = Record {
            op: "matmul",
            requires_grad: need_a || need_b,
            saved: vec![saved(&a), saved(&b)],
            cast: None,
        };
        Ok(self.tape.record(y, rec, move |g| {
            let mut out = Vec::with_capacity(2);
            if need_a {
                out.push(grad(
                    ia,
                    sum_to(g.matmul(&b.transpose(-1, -2)?)?, a.shape())?,
                ));
            }
            if need_b {
                out.push(grad(
                    ib,
                    sum_to(a.transpose(-1, -2)?.matmul(&g)?, b.shape())?,
                ));
            }
            Ok(out)
        }))
    }
}
