//! `conv2d`: the tensor layer computes the gradients (`Tensor::conv2d_backward`).

use super::{grad, saved};
use crate::error::Result;
use crate::var::{Record, Var};
use mixprec_dtype::Dtype;
use mixprec_tensor::Conv2dParams;

impl<D: Dtype> Var<D> {
    /// 2-D convolution (NCHW) with optional bias.
    pub fn conv2d(
        &self,
        weight: &Var<D>,
        bias: Option<&Var<D>>,
        p: Conv2dParams,
    ) -> Result<Var<D>> {
        self.same_tape("conv2d", weight)?;
        if let Some(b) = bias {
            self.same_tape("conv2d", b)?;
        }
        let y = self
            .value
            .conv2d(&weight.value, bias.map(|b| &b.value), p)?;
        let (x, w) = (self.value.clone(), weight.value.clone());
        let (ix, iw, ib) = (self.id, weight.id, bias.map(|b| b.id));
        let requires_grad =
            self.requires_grad || weight.requires_grad || bias.is_some_and(|b| b.requires_grad);
        let rec = Record {
            op: "conv2d",
            inputs: [ix, iw].into_iter().chain(ib).collect(),
            requires_grad,
            saved: vec![saved(&x), saved(&w)],
            cast: None,
        };
        Ok(self.tape.record(y, rec, move |g| {
            let (dx, dw, db) = x.conv2d_backward(&w, &g, p)?;
            let mut out = vec![grad(ix, dx), grad(iw, dw)];
            if let Some(ib) = ib {
                out.push(grad(ib, db));
            }
            Ok(out)
        }))
    }
}
