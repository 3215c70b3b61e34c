//! `layer_norm`: with `xhat = (x - mean) / sigma`, `dy = g * w`,
//! `dx = (dy - mean(dy) - xhat * mean(dy * xhat)) / sigma`, `dw = sum(g * xhat)`,
//! `db = sum(g)` over the leading axes; all in `D::Acc`, rounded once.

use super::{grad, saved};
use crate::error::{Error, Result};
use crate::var::{Record, Var};
use mixprec_dtype::{Dtype, FullPrecision};
use mixprec_tensor::Tensor;

impl<D: FullPrecision> Var<D> {
    /// Layer norm over the trailing `normalized_shape` with optional weight and bias
    /// (statistics in `D::Acc`, one rounding). Full precision only (see
    /// [`Var::softmax`]); [`Var::layer_norm_low_precision`] for other types.
    pub fn layer_norm(
        &self,
        normalized_shape: &[usize],
        weight: Option<&Var<D>>,
        bias: Option<&Var<D>>,
        eps: f64,
    ) -> Result<Var<D>> {
        self.layer_norm_low_precision(normalized_shape, weight, bias, eps)
    }
}

impl<D: Dtype> Var<D> {
    /// Layer norm in any precision: statistics in f32, the result rounded once into `D`
    /// (16/8-bit outputs carry that type's rounding). For experiments; models use
    /// [`Var::layer_norm`] on F32.
    pub fn layer_norm_low_precision(
        &self,
        normalized_shape: &[usize],
        weight: Option<&Var<D>>,
        bias: Option<&Var<D>>,
        eps: f64,
    ) -> Result<Var<D>> {
        for p in [weight, bias].into_iter().flatten() {
            self.same_tape("layer_norm", p)?;
        }
        let y = self.value.layer_norm(
            normalized_shape,
            weight.map(|w| &w.value),
            bias.map(|b| &b.value),
            eps,
        )?;
        let x = self.value.clone();
        let w = weight.map(|w| w.value.clone());
        let (ix, iw, ib) = (self.id, weight.map(|v| v.id), bias.map(|v| v.id));
        let requires_grad = self.requires_grad
            || weight.is_some_and(|v| v.requires_grad)
            || bias.is_some_and(|v| v.requires_grad);
        let mut keep = vec![saved(&x)];
        keep.extend(w.iter().map(saved));
        let rec = Record {
            op: "layer_norm",
            inputs: [Some(ix), iw, ib].into_iter().flatten().collect(),
            requires_grad,
            saved: keep,
            cast: None,
        };
        let n: usize = normalized_shape.iter().product();
        let pshape = normalized_shape.to_vec();
        Ok(self.tape.record(y, rec, move |g| {
            if n == 0 {
                return Err(Error::Tensor(mixprec_tensor::Error {
                    op: "layer_norm",
                    kind: mixprec_tensor::ErrorKind::Empty {
                        shape: x.shape().to_vec(),
                    },
                }));
            }
            let (dx, dw, db) = x.layer_norm_backward(&g, n, w.as_ref(), eps)?;
            let mut out = vec![grad(ix, dx)];
            if let Some(iw) = iw {
                out.push(grad(iw, Tensor::<D>::from_acc(&dw, &pshape)?));
            }
            if let Some(ib) = ib {
                out.push(grad(ib, Tensor::<D>::from_acc(&db, &pshape)?));
            }
            Ok(out)
        }))
    }
}
