//! `matmul`: `dA = g B^T`, `dB = A^T g` (transposes are views, read in place by the GEMM),
//! summed back over broadcast batch axes (one GEMM over all rows for a shared 2-D `B`).

use super::{grad, saved, sum_to};
use crate::error::Result;
use crate::tape::{AnyGrad, NodeId};
use crate::var::{Record, Var};
use mixprec_dtype::Dtype;
use mixprec_tensor::Tensor;

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
            inputs: vec![ia, ib],
            requires_grad: need_a || need_b,
            saved: vec![saved(&a), saved(&b)],
            cast: None,
        };
        Ok(self.tape.record(y, rec, move |g| {
            matmul_grads(&a, &b, &g, (ia, need_a), (ib, need_b))
        }))
    }

    /// `self @ other + bias` (`bias` of shape `[n]`), one rounding
    /// ([`Tensor::matmul_bias`]): a linear layer's forward in one op. Gradients as
    /// `matmul`, plus `dbias` = the output gradient summed over all leading axes.
    pub fn matmul_bias(&self, other: &Var<D>, bias: &Var<D>) -> Result<Var<D>> {
        self.same_tape("matmul_bias", other)?;
        self.same_tape("matmul_bias", bias)?;
        let y = self.value.matmul_bias(&other.value, &bias.value)?;
        let (a, b) = (self.value.clone(), other.value.clone());
        let (ia, ib, ic) = (self.id, other.id, bias.id);
        let (need_a, need_b, need_c) =
            (self.requires_grad, other.requires_grad, bias.requires_grad);
        let bias_shape = bias.shape().to_vec();
        let rec = Record {
            op: "matmul_bias",
            inputs: vec![ia, ib, ic],
            requires_grad: need_a || need_b || need_c,
            saved: vec![saved(&a), saved(&b)],
            cast: None,
        };
        Ok(self.tape.record(y, rec, move |g| {
            let mut out = matmul_grads(&a, &b, &g, (ia, need_a), (ib, need_b))?;
            if need_c {
                out.push(grad(ic, g.sum_to_shape(&bias_shape)?));
            }
            Ok(out)
        }))
    }
}

/// `dA = g B^T` and `dB = A^T g` (summed back over broadcast batch axes; one GEMM over all
/// rows for a shared 2-D `B`), for the inputs that need them.
fn matmul_grads<D: Dtype>(
    a: &Tensor<D>,
    b: &Tensor<D>,
    g: &Tensor<D>,
    (ia, need_a): (NodeId, bool),
    (ib, need_b): (NodeId, bool),
) -> Result<Vec<(NodeId, AnyGrad)>> {
    let mut out = Vec::with_capacity(3);
    if need_a {
        out.push(grad(
            ia,
            sum_to(g.matmul(&b.transpose(-1, -2)?)?, a.shape())?,
        ));
    }
    if need_b {
        let db = if b.rank() == 2 {
            // A weight shared by every batch entry: the batch sum is one GEMM over all
            // rows, A^T [k, rows] x g [rows, n]. For a transposed weight (`x @ w^T`,
            // `w` contiguous) the same products and sums come out in `w`'s layout as
            // (g^T [n, rows] x A [rows, k])^T, so the weight's gradient is contiguous
            // (the unscale, norm and optimizer passes then stream it).
            let (k, n) = (b.shape()[0], b.shape()[1]);
            let rows = a.numel() / k.max(1);
            let (a2, g2) = (a.reshape(&[rows, k])?, g.reshape(&[rows, n])?);
            if b.transpose(0, 1)?.is_contiguous() {
                g2.transpose(0, 1)?.matmul(&a2)?.transpose(0, 1)?
            } else {
                a2.transpose(0, 1)?.matmul(&g2)?
            }
        } else {
            sum_to(a.transpose(-1, -2)?.matmul(g)?, b.shape())?
        };
        out.push(grad(ib, db));
    }
    Ok(out)
}
