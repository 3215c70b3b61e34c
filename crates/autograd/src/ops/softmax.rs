//! `softmax` and `log_softmax`: `dx = y (g - sum(g y))` ([`Tensor::softmax_backward`])
//! and `dx = g - e^y sum(g)` along the axis, computed in `D::Acc` row by row and rounded
//! once.

use super::{grad, saved, unary_record};
use crate::error::Result;
use crate::var::Var;
use mixprec_dtype::Dtype;
use mixprec_tensor::Tensor;
use num_traits::Float;

/// Row-wise backward along `axis`: `f(y_row, g_row, dx_row)` in the compute precision.
fn rows_backward<D: Dtype>(
    y: &Tensor<D>,
    g: &Tensor<D>,
    axis: isize,
    f: impl Fn(&[D::Acc], &[D::Acc], &mut [D::Acc]),
) -> Result<Tensor<D>> {
    let rank = y.rank() as isize;
    let a = (if axis < 0 { axis + rank } else { axis }) as usize;
    let last = y.rank() - 1;
    let (yt, gt) = (
        y.transpose(a as isize, last as isize)?,
        g.transpose(a as isize, last as isize)?,
    );
    let (yv, gv) = (yt.to_acc_vec(), gt.to_acc_vec());
    let n = y.shape()[a];
    let mut out = yv.clone();
    if n > 0 {
        for ((o, yr), gr) in out.chunks_mut(n).zip(yv.chunks(n)).zip(gv.chunks(n)) {
            f(yr, gr, o);
        }
    }
    let t = Tensor::<D>::from_acc(&out, yt.shape())?;
    Ok(t.transpose(a as isize, last as isize)?.contiguous())
}

impl<D: Dtype> Var<D> {
    /// Softmax along `axis`.
    pub fn softmax(&self, axis: isize) -> Result<Var<D>> {
        let y = self.value.softmax(axis)?;
        let yk = y.clone();
        let id = self.id;
        let rec = unary_record("softmax", self, vec![saved(&yk)]);
        Ok(self.tape.record(y, rec, move |g| {
            Ok(vec![grad(id, yk.softmax_backward(&g, axis)?)])
        }))
    }

    /// Log-softmax along `axis`.
    pub fn log_softmax(&self, axis: isize) -> Result<Var<D>> {
        let y = self.value.log_softmax(axis)?;
        let yk = y.clone();
        let id = self.id;
        let rec = unary_record("log_softmax", self, vec![saved(&yk)]);
        Ok(self.tape.record(y, rec, move |g| {
            let dx = rows_backward(&yk, &g, axis, |y, g, o| {
                let total: D::Acc = g.iter().copied().sum();
                for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
                    *o = g - y.exp() * total;
                }
            })?;
            Ok(vec![grad(id, dx)])
        }))
    }
}
