//! `layer_norm`: with `xhat = (x - mean) / sigma`, `dy = g * w`,
//! `dx = (dy - mean(dy) - xhat * mean(dy * xhat)) / sigma`, `dw = sum(g * xhat)`,
//! `db = sum(g)` over the leading axes; all in `D::Acc`, rounded once.

use super::{grad, saved};
use crate::error::{Error, Result};
use crate::var::{Record, Var};
use mixprec_dtype::{Acc, Dtype};
use mixprec_tensor::Tensor;
use num_traits::Float;

impl<D: Dtype> Var<D> {
    /// Layer norm over the trailing `normalized_shape` with optional weight and bias.
    pub fn layer_norm(
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
            let (xv, gv) = (x.to_acc_vec(), g.to_acc_vec());
            let wv = w.as_ref().map(|w| w.to_acc_vec());
            let count = D::Acc::from_usize(n);
            let eps = D::Acc::from_f64(eps);
            let mut dx = vec![D::Acc::from_f64(0.0); xv.len()];
            let mut dw = vec![D::Acc::from_f64(0.0); n];
            let mut db = vec![D::Acc::from_f64(0.0); n];
            // Row buffers reused across rows.
            let mut xhat = vec![D::Acc::from_f64(0.0); n];
            let mut dy = vec![D::Acc::from_f64(0.0); n];
            for ((xr, gr), dxr) in xv.chunks(n).zip(gv.chunks(n)).zip(dx.chunks_mut(n)) {
                let mean = xr.iter().copied().sum::<D::Acc>() / count;
                let var = xr.iter().map(|&v| (v - mean) * (v - mean)).sum::<D::Acc>() / count;
                let inv = D::Acc::from_f64(1.0) / (var + eps).sqrt();
                for (h, &v) in xhat.iter_mut().zip(xr) {
                    *h = (v - mean) * inv;
                }
                match &wv {
                    Some(w) => dy
                        .iter_mut()
                        .zip(gr)
                        .zip(w)
                        .for_each(|((d, &g), &w)| *d = g * w),
                    None => dy.copy_from_slice(gr),
                }
                let mean_dy = dy.iter().copied().sum::<D::Acc>() / count;
                let mean_dy_xhat =
                    dy.iter().zip(&xhat).map(|(&a, &b)| a * b).sum::<D::Acc>() / count;
                for i in 0..n {
                    dxr[i] = (dy[i] - mean_dy - xhat[i] * mean_dy_xhat) * inv;
                    dw[i] += gr[i] * xhat[i];
                    db[i] += gr[i];
                }
            }
            let mut out = vec![grad(ix, Tensor::<D>::from_acc(&dx, x.shape())?)];
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
