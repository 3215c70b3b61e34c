//! `layer_norm` over the trailing dimensions, with optional weight and bias: mean and
//! (population) variance in two passes in `D::Acc`, one rounding into `D`.
//! Precision-sensitive: the amp layer runs it in F32.

use super::reduce::sum_acc;
use crate::backend::on_device;
use crate::cpu::alloc::try_zeroed_acc_buffers;
use crate::cpu::rows::map_row_blocks;
use crate::error::{Error, Result};
use crate::layout::numel;
use crate::storage::one_device;
use crate::tensor::Tensor;
use mixprec_dtype::{Acc, Dtype};

/// `(dx, dw, db)` of [`Tensor::layer_norm_backward`]: `dx` rounded once into `D`, `dw`
/// and `db` in the compute precision.
pub type LayerNormGrads<D> = (Tensor<D>, Vec<<D as Dtype>::Acc>, Vec<<D as Dtype>::Acc>);

crate::cpu::simd::multiversioned! {
    /// Layer norm of every row of `n` elements of `x` into `out`: mean, then the mean of
    /// squared deviations (two passes), `(x - mean) / sqrt(var + eps) * w + b`.
    fn normalize_rows<A: Acc>(
        x: &[A],
        out: &mut [A],
        n: usize,
        w: Option<&[A]>,
        b: Option<&[A]>,
        eps: A
    ) {
        let count = A::from_usize(n);
        for (r, o) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            let mean = sum_acc(r) / count;
            for (oi, &v) in o.iter_mut().zip(r) {
                *oi = (v - mean) * (v - mean);
            }
            let inv = A::one() / (sum_acc(o) / count + eps).sqrt();
            for (oi, &v) in o.iter_mut().zip(r) {
                *oi = (v - mean) * inv;
            }
            if let Some(w) = w {
                o.iter_mut().zip(w).for_each(|(oi, &w)| *oi *= w);
            }
            if let Some(b) = b {
                o.iter_mut().zip(b).for_each(|(oi, &b)| *oi += b);
            }
        }
    }
}

/// Row-length buffers of [`layer_norm_backward_rows`]: the sums `dw` and `db` it adds
/// into, and its scratch rows `xhat` and `dy`.
struct RowSums<'a, A> {
    dw: &'a mut [A],
    db: &'a mut [A],
    xhat: &'a mut [A],
    dy: &'a mut [A],
}

crate::cpu::simd::multiversioned! {
    /// Layer-norm backward over rows of `n`: `dx` for every row of `x` and `g`, and the
    /// rows' `g * xhat` and `g` added into `dw` and `db` (formulas at
    /// [`Tensor::layer_norm_backward`]).
    #[allow(clippy::too_many_arguments)]
    fn layer_norm_backward_rows<A: Acc>(
        x: &[A],
        g: &[A],
        dx: &mut [A],
        n: usize,
        w: Option<&[A]>,
        eps: A,
        sums: RowSums<'_, A>
    ) {
        let count = A::from_usize(n);
        let RowSums { dw, db, xhat, dy } = sums;
        let rows = x.chunks_exact(n).zip(g.chunks_exact(n));
        for ((xr, gr), dxr) in rows.zip(dx.chunks_exact_mut(n)) {
            let mean = sum_acc(xr) / count;
            for (h, &v) in xhat.iter_mut().zip(xr) {
                *h = (v - mean) * (v - mean);
            }
            let inv = A::one() / (sum_acc(xhat) / count + eps).sqrt();
            for (h, &v) in xhat.iter_mut().zip(xr) {
                *h = (v - mean) * inv;
            }
            match w {
                Some(w) => dy
                    .iter_mut()
                    .zip(gr)
                    .zip(w)
                    .for_each(|((d, &g), &w)| *d = g * w),
                None => dy.copy_from_slice(gr),
            }
            let mean_dy = sum_acc(dy) / count;
            // dxr holds dy * xhat for a moment (summed with the 8-lane reduction).
            for (d, (&h, &y)) in dxr.iter_mut().zip(xhat.iter().zip(dy.iter())) {
                *d = h * y;
            }
            let mean_dy_xhat = sum_acc(dxr) / count;
            for i in 0..n {
                dxr[i] = (dy[i] - mean_dy - xhat[i] * mean_dy_xhat) * inv;
                dw[i] += gr[i] * xhat[i];
                db[i] += gr[i];
            }
        }
    }
}

impl<D: Dtype> Tensor<D> {
    /// `(x - mean) / sqrt(var + eps) * weight + bias` over the trailing dimensions
    /// `normalized_shape` (PyTorch's `layer_norm`): `var` is the population variance,
    /// `weight` and `bias` (if given) have shape `normalized_shape`. Errors if the shapes
    /// do not match, `normalized_shape` is empty or has no elements, or `eps` is negative
    /// or not finite.
    pub fn layer_norm(
        &self,
        normalized_shape: &[usize],
        weight: Option<&Tensor<D>>,
        bias: Option<&Tensor<D>>,
        eps: f64,
    ) -> Result<Tensor<D>> {
        let operands = [Some(self), weight, bias].into_iter().flatten();
        let device = one_device("layer_norm", operands.map(Tensor::device))?;
        let rank = self.rank();
        let k = normalized_shape.len();
        if k == 0 || k > rank || self.shape()[rank - k..] != *normalized_shape {
            return Err(Error::shapes(
                "layer_norm",
                self.shape(),
                normalized_shape,
                "normalized_shape must equal the trailing dimensions",
            ));
        }
        let n = numel(normalized_shape);
        if n == 0 {
            return Err(Error::empty("layer_norm", self.shape()));
        }
        if !(eps.is_finite() && eps >= 0.0) {
            return Err(Error::invalid(
                "layer_norm",
                format!("eps must be finite and >= 0, got {eps}"),
            ));
        }
        for (name, p) in [("weight", weight), ("bias", bias)] {
            if let Some(p) = p
                && p.shape() != normalized_shape
            {
                return Err(Error::shapes(
                    "layer_norm",
                    p.shape(),
                    normalized_shape,
                    if name == "weight" {
                        "weight must have shape normalized_shape"
                    } else {
                        "bias must have shape normalized_shape"
                    },
                ));
            }
        }
        on_device!(device, b => b.layer_norm(self, normalized_shape, weight, bias, eps))
    }

    /// The CPU kernel of [`Tensor::layer_norm`], after its front's checks.
    pub(crate) fn layer_norm_on_cpu(
        &self,
        normalized_shape: &[usize],
        weight: Option<&Tensor<D>>,
        bias: Option<&Tensor<D>>,
        eps: f64,
    ) -> Result<Tensor<D>> {
        let n = numel(normalized_shape);
        let w = weight.map(|w| w.try_to_acc_vec("layer_norm")).transpose()?;
        let b = bias.map(|b| b.try_to_acc_vec("layer_norm")).transpose()?;
        let eps = D::Acc::from_f64(eps);
        // Normalise rows of n = prod(normalized_shape) values: view as [rows, n].
        let rows = self.reshape(&[self.numel() / n, n])?;
        let out = map_row_blocks("layer_norm", &rows, -1, 1 << 14, |x, out, n| {
            normalize_rows(x, out, n, w.as_deref(), b.as_deref(), eps)
        })?;
        out.reshape(self.shape())
    }

    /// Gradients of [`Tensor::layer_norm`] over rows of `n` trailing elements: for the
    /// output gradient `g`, returns `(dx, dw, db)` in `D::Acc` (`dw`, `db` of length `n`,
    /// summed over rows) with `xhat = (x - mean) / sqrt(var + eps)`,
    /// `dy = g * w`, `dx = (dy - mean(dy) - xhat * mean(dy * xhat)) / sqrt(var + eps)`.
    /// Rows run in parallel; the per-part sums of `dw` and `db` are added in part order
    /// (deterministic). Errors if `g`'s shape differs from `self`'s or `n` is 0.
    pub fn layer_norm_backward(
        &self,
        g: &Tensor<D>,
        n: usize,
        weight: Option<&Tensor<D>>,
        eps: f64,
    ) -> Result<LayerNormGrads<D>> {
        let operands = [Some(self), Some(g), weight].into_iter().flatten();
        let device = one_device("layer_norm_backward", operands.map(Tensor::device))?;
        if g.shape() != self.shape() {
            return Err(Error::shapes(
                "layer_norm_backward",
                self.shape(),
                g.shape(),
                "the gradient must have the input's shape",
            ));
        }
        if n == 0 {
            return Err(Error::empty("layer_norm_backward", self.shape()));
        }
        if !self.numel().is_multiple_of(n) {
            return Err(Error::invalid(
                "layer_norm_backward",
                format!("rows of {n} do not divide shape {:?}", self.shape()),
            ));
        }
        on_device!(device, b => b.layer_norm_backward(self, g, n, weight, eps))
    }

    /// The CPU kernel of [`Tensor::layer_norm_backward`], after its front's checks.
    pub(crate) fn layer_norm_backward_on_cpu(
        &self,
        g: &Tensor<D>,
        n: usize,
        weight: Option<&Tensor<D>>,
        eps: f64,
    ) -> Result<LayerNormGrads<D>> {
        let op = "layer_norm_backward";
        let wv = weight.map(|w| w.try_to_acc_vec(op)).transpose()?;
        let eps = D::Acc::from_f64(eps);
        let (xs, gs) = (self.try_elements(op)?, g.try_elements(op)?);
        // Values of `t`'s elements `range` (FP8: divided by the scale) into `out`.
        let decode = |t: &Tensor<D>, src: &[D], out: &mut [D::Acc]| {
            D::to_acc_slice(src, out);
            if t.scale != 1.0 {
                let s = D::Acc::from_f32(t.scale);
                out.iter_mut().for_each(|v| *v /= s);
            }
        };
        // FP8 results need one scale for the whole tensor: computed in full, then rounded.
        let fp8 = D::DTYPE.is_fp8();
        let mut dx_acc = if fp8 {
            crate::cpu::alloc::try_zeroed_acc::<D>(op, self.shape(), xs.len())?
        } else {
            Vec::new()
        };
        let mut dx =
            crate::cpu::alloc::try_scratch::<D>(op, self.shape(), if fp8 { 0 } else { xs.len() })?;
        let partials = std::sync::Mutex::new(Vec::new());
        // Rows go in blocks of about 4096 values (at least one row) through decode buffers,
        // which like the row sums grow with the row: fallible.
        let block = (4096 / n).max(1) * n;
        let failed = crate::cpu::alloc::FirstError::new();
        let piece_job = |off: usize, len: usize, out: &mut dyn FnMut(usize, &[D::Acc])| {
            let Some([mut dw, mut db, mut xhat, mut dy]) =
                failed.keep(try_zeroed_acc_buffers::<D, 4>(op, n))
            else {
                return;
            };
            let Some([mut xb, mut gb, mut ob]) =
                failed.keep(try_zeroed_acc_buffers::<D, 3>(op, block))
            else {
                return;
            };
            for b0 in (off..off + len).step_by(block) {
                let m = block.min(off + len - b0);
                let (xb, gb, ob) = (&mut xb[..m], &mut gb[..m], &mut ob[..m]);
                decode(self, &xs[b0..b0 + m], xb);
                decode(g, &gs[b0..b0 + m], gb);
                let sums = RowSums {
                    dw: &mut dw,
                    db: &mut db,
                    xhat: &mut xhat,
                    dy: &mut dy,
                };
                layer_norm_backward_rows(xb, gb, ob, n, wv.as_deref(), eps, sums);
                out(b0, ob);
            }
            partials
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((off, dw, db));
        };
        if fp8 {
            crate::cpu::pool::par_pieces(&mut dx_acc, n, 1 << 14, |off, piece| {
                let len = piece.len();
                piece_job(off, len, &mut |at, v| {
                    piece[at - off..at - off + v.len()].copy_from_slice(v)
                });
            });
        } else {
            crate::cpu::pool::par_pieces(&mut dx, n, 1 << 14, |off, piece| {
                let len = piece.len();
                piece_job(off, len, &mut |at, v| {
                    D::from_acc_slice(v, &mut piece[at - off..at - off + v.len()])
                });
            });
        }
        failed.into_result()?;
        let mut parts = partials.into_inner().unwrap_or_else(|e| e.into_inner());
        parts.sort_by_key(|p| p.0);
        let mut dw = crate::cpu::alloc::try_zeroed_acc::<D>(op, &[n], n)?;
        let mut db = crate::cpu::alloc::try_zeroed_acc::<D>(op, &[n], n)?;
        for (_, pw, pb) in parts {
            dw.iter_mut().zip(&pw).for_each(|(a, &b)| *a += b);
            db.iter_mut().zip(&pb).for_each(|(a, &b)| *a += b);
        }
        let dx = if fp8 {
            Tensor::from_acc_vec(op, &dx_acc, self.shape())?
        } else {
            Tensor::from_parts(dx, self.shape(), 1.0)
        };
        Ok((dx, dw, db))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::F32;
    use mixprec_testing::{TestRng, Tolerance, assert_close, for_each_dtype};

    fn layer_norm_matches_f64<D: Dtype>() {
        let mut rng = TestRng::new(31);
        let (rows, n) = (6, 48);
        let x = Tensor::<D>::from_f64(&rng.vec(rows * n, -3.0, 5.0), &[2, 3, n]).unwrap();
        let w = Tensor::<D>::from_f64(&rng.vec(n, 0.5, 1.5), &[n]).unwrap();
        let b = Tensor::<D>::from_f64(&rng.vec(n, -0.5, 0.5), &[n]).unwrap();
        let eps = 1e-5;
        let (xv, wv, bv) = (x.to_f64_vec(), w.to_f64_vec(), b.to_f64_vec());
        let (wv, bv) = (&wv, &bv);
        let want: Vec<f64> = xv
            .chunks(n)
            .flat_map(|r| {
                let mean = r.iter().sum::<f64>() / n as f64;
                let var = r.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
                r.iter()
                    .enumerate()
                    .map(move |(i, v)| (v - mean) / (var + eps).sqrt() * wv[i] + bv[i])
                    .collect::<Vec<_>>()
            })
            .collect();
        let got = x
            .layer_norm(&[n], Some(&w), Some(&b), eps)
            .unwrap()
            .to_f64_vec();
        // Normalised values are O(1): absolute error of the n-term mean and variance,
        // relative to the largest output.
        let tol = Tolerance::accumulated::<D>(n);
        let tol = Tolerance {
            abs_of_max: tol.abs_of_max + 2.0 * tol.rel,
            ..tol
        };
        assert_close(&format!("layer_norm<{}>", D::NAME), &got, &want, tol);
        let plain = x.layer_norm(&[3, n], None, None, eps).unwrap();
        assert_eq!(plain.shape(), x.shape());
    }
    for_each_dtype!(layer_norm_matches_f64);

    /// The backward formulas written out in f64 on the rounded inputs, over enough rows
    /// for several decode blocks and both cores' pieces (24000 values): `dx` (one rounding into `D` after
    /// f32 work: the accumulated-sum tolerance of the row length) and `dw`, `db` (sums
    /// over 600 rows, relative to their scale).
    fn layer_norm_backward_matches_f64<D: Dtype>() {
        let mut rng = TestRng::new(32);
        let (rows, n) = (600, 40);
        let x = Tensor::<D>::from_f64(&rng.vec(rows * n, -3.0, 5.0), &[6, 100, n]).unwrap();
        let g = Tensor::<D>::from_f64(&rng.vec(rows * n, -1.0, 1.0), &[6, 100, n]).unwrap();
        let w = Tensor::<D>::from_f64(&rng.vec(n, 0.5, 1.5), &[n]).unwrap();
        let eps = 1e-5;
        let (dx, dw, db) = x.layer_norm_backward(&g, n, Some(&w), eps).unwrap();
        let (xv, gv, wv) = (x.to_f64_vec(), g.to_f64_vec(), w.to_f64_vec());
        let (mut want_dx, mut want_dw, mut want_db) = (vec![], vec![0.0; n], vec![0.0; n]);
        for (xr, gr) in xv.chunks(n).zip(gv.chunks(n)) {
            let mean = xr.iter().sum::<f64>() / n as f64;
            let var = xr.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
            let inv = 1.0 / (var + eps).sqrt();
            let xhat: Vec<f64> = xr.iter().map(|v| (v - mean) * inv).collect();
            let dy: Vec<f64> = gr.iter().zip(&wv).map(|(g, w)| g * w).collect();
            let mean_dy = dy.iter().sum::<f64>() / n as f64;
            let mean_dy_xhat = dy.iter().zip(&xhat).map(|(d, h)| d * h).sum::<f64>() / n as f64;
            for i in 0..n {
                want_dx.push((dy[i] - mean_dy - xhat[i] * mean_dy_xhat) * inv);
                want_dw[i] += gr[i] * xhat[i];
                want_db[i] += gr[i];
            }
        }
        let tol = Tolerance::accumulated::<D>(n);
        let tol = Tolerance {
            abs_of_max: tol.abs_of_max + 2.0 * tol.rel,
            ..tol
        };
        assert_close(&format!("dx<{}>", D::NAME), &dx.to_f64_vec(), &want_dx, tol);
        assert_eq!(dx.shape(), x.shape());
        let acc = |v: &[D::Acc]| v.iter().map(|a| a.to_f64()).collect::<Vec<_>>();
        // dw and db are sums over the rows in the compute precision (f32 here).
        let sums = Tolerance::accumulated::<F32>(rows).times(4.0);
        assert_close("dw", &acc(&dw), &want_dw, sums);
        assert_close("db", &acc(&db), &want_db, sums);
    }
    for_each_dtype!(layer_norm_backward_matches_f64);

    #[test]
    fn layer_norm_errors() {
        let x = Tensor::<F32>::ones(&[2, 4]);
        let e = x.layer_norm(&[3], None, None, 1e-5).unwrap_err();
        assert_eq!(
            e.to_string(),
            "layer_norm: shapes [2, 4] and [3] are incompatible: normalized_shape must equal the trailing dimensions"
        );
        let w = Tensor::<F32>::ones(&[5]);
        assert!(
            x.layer_norm(&[4], Some(&w), None, 1e-5)
                .unwrap_err()
                .to_string()
                .contains("weight must have shape")
        );
        assert!(x.layer_norm(&[4], None, None, -1.0).is_err());
        assert!(x.layer_norm(&[], None, None, 1e-5).is_err());
        // A constant row normalises to 0 (not NaN) thanks to eps.
        assert_eq!(
            x.layer_norm(&[4], None, None, 1e-5).unwrap().to_f32_vec(),
            vec![0.0; 8]
        );
    }
}
