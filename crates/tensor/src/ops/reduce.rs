//! Reductions over any set of axes (with `keepdim`), argmax/argmin, and global norms.
//! Accumulation is in `D::Acc` (f32; f64 for `F64`) with eight interleaved partial sums,
//! which both vectorises and keeps the error growth well below a serial sum's. The
//! result rounds once into `D`.

use crate::backend::on_device;
use crate::cpu::alloc::try_zeroed_acc;
use crate::cpu::map::PARALLEL_MIN;
use crate::cpu::pool::par_pieces;
use crate::error::{Error, Result};
use crate::layout::{normalize_axis, numel};
use crate::mask::Indices;
use crate::ops::{ArgReduceOp, ReduceOp};
use crate::tensor::Tensor;
use mixprec_dtype::{Acc, DType, Dtype};
use num_traits::{Float, Zero};

/// Sum in eight interleaved lanes, then the lanes pairwise.
#[inline(always)]
pub(crate) fn sum_acc<A: Acc>(xs: &[A]) -> A {
    sum_acc_by(xs, |v| v)
}

/// `sum_acc` of `f(x)` for every `x` (the same lanes and order, so the same bits as
/// summing a vector of the `f(x)`), without that vector.
#[inline(always)]
fn sum_acc_by<A: Acc>(xs: &[A], f: impl Fn(A) -> A) -> A {
    let mut lanes = [A::zero(); 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += f(v);
        }
    }
    for (l, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        *l += f(v);
    }
    ((lanes[0] + lanes[4]) + (lanes[2] + lanes[6]))
        + ((lanes[1] + lanes[5]) + (lanes[3] + lanes[7]))
}

/// The values with the reduced axes moved last, so each output element reduces one
/// contiguous row of `row_len` values. Returns (rows, row_len, output shape).
/// Which axes of `shape` the reduction `op` reduces, or an error: no axis, an axis out
/// of range or listed twice.
fn reduced_axes(op: &'static str, shape: &[usize], axes: &[isize]) -> Result<Vec<bool>> {
    if axes.is_empty() {
        return Err(Error::invalid(
            op,
            format!(
                "needs at least one axis (use the *_all form to reduce every axis of shape {:?})",
                shape
            ),
        ));
    }
    let rank = shape.len();
    let mut reduced = vec![false; rank];
    for &a in axes {
        let a = normalize_axis(op, a, rank)?;
        if std::mem::replace(&mut reduced[a], true) {
            return Err(Error::invalid(
                op,
                format!("axis {a} is listed twice in {axes:?}"),
            ));
        }
    }
    Ok(reduced)
}

/// The checks of [`Tensor::reduce`]'s front: the axes (see [`reduced_axes`]), and rows
/// long enough for the op (non-empty for mean, max and min; longer than the correction
/// for var).
pub(crate) fn check_reduce(op: ReduceOp, shape: &[usize], axes: &[isize]) -> Result<()> {
    let name = op.name();
    let reduced = reduced_axes(name, shape, axes)?;
    let n: usize = (0..shape.len())
        .filter(|&a| reduced[a])
        .map(|a| shape[a])
        .product();
    match op {
        ReduceOp::Sum => Ok(()),
        ReduceOp::Mean | ReduceOp::Max | ReduceOp::Min if n == 0 => Err(Error::empty(name, shape)),
        ReduceOp::Mean | ReduceOp::Max | ReduceOp::Min => Ok(()),
        ReduceOp::Var { correction } if n <= correction => Err(Error::invalid(
            name,
            format!(
                "needs more than {correction} elements per reduction, shape {shape:?} gives {n}"
            ),
        )),
        ReduceOp::Var { .. } => Ok(()),
    }
}

/// The checks of [`Tensor::arg_reduce`]'s front: `axis` in range and not empty.
pub(crate) fn check_arg_reduce(op: ArgReduceOp, shape: &[usize], axis: isize) -> Result<()> {
    let a = normalize_axis(op.name(), axis, shape.len())?;
    if shape[a] == 0 {
        return Err(Error::empty(op.name(), shape));
    }
    Ok(())
}

fn rows_for<D: Dtype>(
    op: &'static str,
    t: &Tensor<D>,
    axes: &[isize],
    keepdim: bool,
) -> Result<(Vec<D::Acc>, usize, Vec<usize>)> {
    let rank = t.rank();
    let reduced = reduced_axes(op, t.shape(), axes)?;
    let kept: Vec<usize> = (0..rank).filter(|&a| !reduced[a]).collect();
    let order: Vec<usize> = kept
        .iter()
        .copied()
        .chain((0..rank).filter(|&a| reduced[a]))
        .collect();
    let row_len: usize = (0..rank)
        .filter(|&a| reduced[a])
        .map(|a| t.shape()[a])
        .product();
    let out_shape: Vec<usize> = if keepdim {
        (0..rank)
            .map(|a| if reduced[a] { 1 } else { t.shape()[a] })
            .collect()
    } else {
        kept.iter().map(|&a| t.shape()[a]).collect()
    };
    Ok((t.permute(&order)?.try_to_acc_vec(op)?, row_len, out_shape))
}

/// Applies `f` to every row (in parallel when large) and rounds the results into `D`.
fn reduce_rows<D: Dtype>(
    op: &'static str,
    values: &[D::Acc],
    row_len: usize,
    shape: &[usize],
    f: impl Fn(&[D::Acc]) -> D::Acc + Sync,
) -> Result<Tensor<D>> {
    let mut out = try_zeroed_acc::<D>(op, shape, numel(shape))?;
    if row_len == 0 {
        out.fill(f(&[]));
    } else {
        par_pieces(&mut out, 1, PARALLEL_MIN / row_len.max(1), |off, piece| {
            for (i, o) in piece.iter_mut().enumerate() {
                *o = f(&values[(off + i) * row_len..][..row_len]);
            }
        });
    }
    Tensor::from_acc_vec(op, &out, shape)
}

fn max_of<A: Acc>(row: &[A]) -> A {
    row.iter().fold(A::neg_infinity(), |m, &v| {
        if v.is_nan() || m.is_nan() {
            A::nan()
        } else {
            m.max(v)
        }
    })
}

fn min_of<A: Acc>(row: &[A]) -> A {
    row.iter().fold(A::infinity(), |m, &v| {
        if v.is_nan() || m.is_nan() {
            A::nan()
        } else {
            m.min(v)
        }
    })
}

/// Variance with `correction` subtracted from the count (two passes: mean, then squared
/// deviations).
fn var_of<A: Acc>(row: &[A], correction: usize) -> A {
    let n = A::from_usize(row.len());
    let mean = sum_acc(row) / n;
    sum_acc_by(row, |v| (v - mean) * (v - mean)) / A::from_usize(row.len() - correction)
}

impl<D: Dtype> Tensor<D> {
    /// Sum over `axes` (negative axes count from the end), keeping them as size 1 when
    /// `keepdim`. Accumulates in `D::Acc`.
    pub fn sum(&self, axes: &[isize], keepdim: bool) -> Result<Tensor<D>> {
        self.reduce(ReduceOp::Sum, axes, keepdim)
    }

    /// The CPU kernel of [`Tensor::sum`], after its front's checks.
    pub(crate) fn sum_on_cpu(&self, axes: &[isize], keepdim: bool) -> Result<Tensor<D>> {
        if let Some(t) = self.sum_leading(axes, keepdim) {
            return t;
        }
        let (v, n, shape) = rows_for("sum", self, axes, keepdim)?;
        reduce_rows::<D>("sum", &v, n, &shape, sum_acc)
    }

    /// Fast path of `sum` over the leading axes `0..k` of a contiguous tensor (the bias
    /// gradient of a batch): adds whole rows into one accumulator row, no transpose.
    fn sum_leading(&self, axes: &[isize], keepdim: bool) -> Option<Result<Tensor<D>>> {
        let rank = self.rank() as isize;
        let mut norm: Vec<usize> = axes
            .iter()
            .map(|&a| if a < 0 { a + rank } else { a })
            .filter(|&a| a >= 0 && a < rank)
            .map(|a| a as usize)
            .collect();
        norm.sort_unstable();
        norm.dedup();
        let k = norm.len();
        if k == 0
            || k != axes.len()
            || k == self.rank()
            || norm.iter().enumerate().any(|(i, &a)| i != a)
            || !self.is_contiguous()
        {
            return None;
        }
        Some(self.sum_leading_rows(k, keepdim))
    }

    /// The body of [`Tensor::sum_leading`]: the sum over the first `k` axes.
    fn sum_leading_rows(&self, k: usize, keepdim: bool) -> Result<Tensor<D>> {
        let inner: usize = self.shape()[k..].iter().product();
        let row_shape = &self.shape()[k..];
        let mut acc = try_zeroed_acc::<D>("sum", row_shape, inner)?;
        if inner > 0 && self.scale == 1.0 && !D::DTYPE.is_fp8() {
            // Stream the rows (decoded one at a time) instead of decoding a full copy.
            let src = self.try_elements("sum")?;
            let mut row = try_zeroed_acc::<D>("sum", row_shape, inner)?;
            for r in src.chunks(inner) {
                D::to_acc_slice(r, &mut row);
                crate::cpu::map::apply_binary(&mut acc, &row, &|a, v| a + v);
            }
        } else if inner > 0 {
            for r in self.try_to_acc_vec("sum")?.chunks(inner) {
                acc.iter_mut().zip(r).for_each(|(a, &v)| *a += v);
            }
        }
        let shape: Vec<usize> = if keepdim {
            (0..self.rank())
                .map(|a| if a < k { 1 } else { self.shape()[a] })
                .collect()
        } else {
            row_shape.to_vec()
        };
        Tensor::from_acc_vec("sum", &acc, &shape)
    }

    /// Mean over `axes`. Errors if a reduced axis is empty.
    pub fn mean(&self, axes: &[isize], keepdim: bool) -> Result<Tensor<D>> {
        self.reduce(ReduceOp::Mean, axes, keepdim)
    }

    /// The CPU kernel of [`Tensor::mean`], after its front's checks.
    pub(crate) fn mean_on_cpu(&self, axes: &[isize], keepdim: bool) -> Result<Tensor<D>> {
        let (v, n, shape) = rows_for("mean", self, axes, keepdim)?;
        let count = D::Acc::from_usize(n);
        reduce_rows::<D>("mean", &v, n, &shape, |r| sum_acc(r) / count)
    }

    /// Maximum over `axes` (NaN if any element is NaN). Errors if a reduced axis is empty.
    pub fn max(&self, axes: &[isize], keepdim: bool) -> Result<Tensor<D>> {
        self.reduce(ReduceOp::Max, axes, keepdim)
    }

    /// The CPU kernel of [`Tensor::max`], after its front's checks.
    pub(crate) fn max_on_cpu(&self, axes: &[isize], keepdim: bool) -> Result<Tensor<D>> {
        let (v, n, shape) = rows_for("max", self, axes, keepdim)?;
        reduce_rows::<D>("max", &v, n, &shape, max_of)
    }

    /// Minimum over `axes` (NaN if any element is NaN). Errors if a reduced axis is empty.
    pub fn min(&self, axes: &[isize], keepdim: bool) -> Result<Tensor<D>> {
        self.reduce(ReduceOp::Min, axes, keepdim)
    }

    /// The CPU kernel of [`Tensor::min`], after its front's checks.
    pub(crate) fn min_on_cpu(&self, axes: &[isize], keepdim: bool) -> Result<Tensor<D>> {
        let (v, n, shape) = rows_for("min", self, axes, keepdim)?;
        reduce_rows::<D>("min", &v, n, &shape, min_of)
    }

    /// Variance over `axes` with `correction` (1: unbiased, PyTorch's default; 0:
    /// population). Errors unless each row has more than `correction` elements.
    pub fn var(&self, axes: &[isize], keepdim: bool, correction: usize) -> Result<Tensor<D>> {
        self.reduce(ReduceOp::Var { correction }, axes, keepdim)
    }

    /// The CPU kernel of [`Tensor::var`], after its front's checks.
    pub(crate) fn var_on_cpu(
        &self,
        axes: &[isize],
        keepdim: bool,
        correction: usize,
    ) -> Result<Tensor<D>> {
        let (v, n, shape) = rows_for("var", self, axes, keepdim)?;
        reduce_rows::<D>("var", &v, n, &shape, |r| var_of(r, correction))
    }

    /// Sums a broadcast result back to `shape` (NumPy broadcasting in reverse): leading
    /// axes that broadcasting added, and axes where `shape` has 1, are summed away — the
    /// gradient of a broadcast operand. Errors unless `shape` broadcasts to this shape.
    pub fn sum_to_shape(&self, shape: &[usize]) -> Result<Tensor<D>> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let ok = shape.len() <= self.rank()
            && shape
                .iter()
                .rev()
                .zip(self.shape().iter().rev())
                .all(|(&s, &d)| s == d || s == 1);
        if !ok {
            return Err(Error::shapes(
                "sum_to_shape",
                self.shape(),
                shape,
                "the target must broadcast to the tensor's shape",
            ));
        }
        let extra = self.rank() - shape.len();
        let axes: Vec<isize> = (0..self.rank())
            .filter(|&a| a < extra || (shape[a - extra] == 1 && self.shape()[a] != 1))
            .map(|a| a as isize)
            .collect();
        let summed = if axes.is_empty() {
            self.clone()
        } else {
            self.sum(&axes, true)?
        };
        summed.reshape(shape)
    }

    /// Sum of every element, as a rank-0 tensor.
    pub fn sum_all(&self) -> Tensor<D> {
        crate::error::or_panic(self.flatten().sum(&[0], false))
    }

    /// Mean of every element, as a rank-0 tensor. Errors on an empty tensor.
    pub fn mean_all(&self) -> Result<Tensor<D>> {
        if self.numel() == 0 {
            return Err(Error::empty("mean_all", self.shape()));
        }
        self.flatten().mean(&[0], false)
    }

    /// Index of the largest element along `axis` (first one on ties; NaN counts as
    /// largest). Errors on an empty axis.
    pub fn argmax(&self, axis: isize, keepdim: bool) -> Result<Indices> {
        self.arg_reduce(ArgReduceOp::Argmax, axis, keepdim)
    }

    /// Index of the smallest element along `axis` (first one on ties; NaN counts as
    /// smallest). Errors on an empty axis.
    pub fn argmin(&self, axis: isize, keepdim: bool) -> Result<Indices> {
        self.arg_reduce(ArgReduceOp::Argmin, axis, keepdim)
    }

    /// The CPU kernel of [`Tensor::argmax`] and [`Tensor::argmin`] (`better` picks).
    pub(crate) fn arg_extreme_on_cpu(
        &self,
        op: &'static str,
        axis: isize,
        keepdim: bool,
        better: impl Fn(D::Acc, D::Acc) -> bool,
    ) -> Result<Indices> {
        let (v, n, shape) = rows_for(op, self, &[axis], keepdim)?;
        let rows = v.chunks(n).map(|row| {
            let mut best = 0;
            for (i, &x) in row.iter().enumerate() {
                if row[best].is_nan() {
                    break;
                }
                if x.is_nan() || better(x, row[best]) {
                    best = i;
                }
            }
            best
        });
        Indices::from_vec(crate::cpu::alloc::try_collect(op, &shape, rows)?, &shape)
    }

    /// Global L2 norm `sqrt(sum x^2)`. For f32 compute the squares are summed in f64 (one
    /// pass, eight accumulators per block of 32768 elements, blocks on both cores and
    /// added in order, so the same bits with any thread count; no f32 value's square
    /// overflows or underflows f64) and the root rounded once; for F64 the sum runs after scaling by the largest magnitude
    /// (no overflow or underflow of the squares). NaN if any element is NaN, inf if any
    /// is infinite.
    pub fn norm_l2(&self) -> D::Acc {
        crate::error::or_panic(on_device!(self.device(), b => b.norm_l2(self)))
    }

    /// The CPU kernel of [`Tensor::norm_l2`].
    pub(crate) fn norm_l2_on_cpu(&self) -> Result<D::Acc> {
        let op = "norm_l2";
        if std::mem::size_of::<D::Acc>() == 4 && !D::DTYPE.is_fp8() && self.scale == 1.0 {
            let sum = crate::cpu::sum_squares::sum_squares_f64(&self.try_elements(op)?);
            return Ok(D::Acc::from_f64(sum.sqrt()));
        }
        let v = self.try_to_acc_vec(op)?;
        let amax = v.iter().fold(D::Acc::zero(), |m, x| {
            if x.is_nan() || m.is_nan() {
                D::Acc::nan()
            } else {
                m.max(x.abs())
            }
        });
        if amax.is_zero() || !amax.is_finite() {
            return Ok(amax);
        }
        Ok(amax * sum_acc_by(&v, |x| (x / amax) * (x / amax)).sqrt())
    }

    /// True when no element is infinite or NaN (one pass over the stored elements, no
    /// copy for a contiguous tensor): the loss scaler's overflow check. The pass is the
    /// amax's (vectorised, on both cores for large tensors): finite exactly when the
    /// largest magnitude is.
    pub fn all_finite(&self) -> bool {
        crate::error::or_panic(on_device!(self.device(), b => b.all_finite(self)))
    }

    /// The CPU kernel of [`Tensor::all_finite`].
    pub(crate) fn all_finite_on_cpu(&self) -> Result<bool> {
        let op = "all_finite";
        if D::DTYPE == DType::F64 {
            return Ok(self
                .try_elements(op)?
                .iter()
                .all(|v| v.to_f64().is_finite()));
        }
        // The stored values, as before: an FP8 code divided by a tiny scale can exceed
        // f32's range, but the tensor holds no infinity for that.
        let mut stored = self.clone();
        stored.scale = 1.0;
        Ok(crate::cpu::cast_chunks::amax(&stored, op)?.is_finite())
    }

    /// Largest magnitude of any element (NaN if any element is NaN); 0 for an empty
    /// tensor. This is FP8 scaling's amax.
    ///
    /// One read of the elements in L1-sized chunks (no copy of a contiguous tensor), on
    /// both cores for large tensors. Panics (with the op's message) only when a strided
    /// view's gather cannot be allocated.
    pub fn abs_max(&self) -> D::Acc {
        crate::error::or_panic(on_device!(self.device(), b => b.abs_max("abs_max", self)))
    }

    /// The CPU kernel of [`Tensor::abs_max`], errors naming `op`.
    pub(crate) fn abs_max_on_cpu(&self, op: &'static str) -> Result<D::Acc> {
        if D::DTYPE == DType::F64 {
            let values = self.try_to_f64_vec(op)?;
            return Ok(D::Acc::from_f64(crate::ops::cast::abs_max_f64(&values)));
        }
        // Every other type's accumulator is f32: the value is exact.
        Ok(D::Acc::from_f32(crate::cpu::cast_chunks::amax(self, op)?))
    }

    /// [`Tensor::abs_max`] rounded to f32 (nearest even; exact but for F64), or an error
    /// naming `op` when a strided view's gather cannot be allocated.
    pub(crate) fn try_abs_max_f32(&self, op: &'static str) -> Result<f32> {
        if D::DTYPE == DType::F64 {
            let values = self.try_to_f64_vec(op)?;
            return Ok(crate::ops::cast::abs_max_f64(&values) as f32);
        }
        crate::cpu::cast_chunks::amax(self, op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::{F32, F64};
    use mixprec_testing::{TestRng, Tolerance, assert_close, for_each_dtype};
    use proptest::prelude::*;

    /// F64 reference reduction over `axes` of a row-major array, by index arithmetic.
    fn reference(
        values: &[f64],
        shape: &[usize],
        axes: &[usize],
        f: impl Fn(&[f64]) -> f64,
    ) -> Vec<f64> {
        let strides = crate::layout::contiguous_strides(shape);
        let kept: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
        let out_n: usize = kept.iter().map(|&a| shape[a]).product();
        let red_n: usize = axes.iter().map(|&a| shape[a]).product();
        (0..out_n)
            .map(|o| {
                let mut base = 0;
                let mut rem = o;
                for &a in kept.iter().rev() {
                    base += (rem % shape[a]) * strides[a];
                    rem /= shape[a];
                }
                let row: Vec<f64> = (0..red_n)
                    .map(|r| {
                        let mut off = base;
                        let mut rem = r;
                        for &a in axes.iter().rev() {
                            off += (rem % shape[a]) * strides[a];
                            rem /= shape[a];
                        }
                        values[off]
                    })
                    .collect();
                f(&row)
            })
            .collect()
    }

    fn reductions_match_f64<D: Dtype>() {
        let shape = [4, 5, 6];
        let mut rng = TestRng::new(9);
        let x = Tensor::<D>::from_f64(&rng.vec(120, -3.0, 3.0), &shape).unwrap();
        let xv = x.to_f64_vec();
        for axes in [vec![0usize], vec![2], vec![0, 2], vec![0, 1, 2]] {
            let ia: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
            let n: usize = axes.iter().map(|&a| shape[a]).product();
            let mean_f = |r: &[f64]| r.iter().sum::<f64>() / r.len() as f64;
            // Sums of n terms with cancellation: accumulated preset, absolute part of max|x|
            // scaled by n through the `accumulated` bound.
            let tol = Tolerance::accumulated::<D>(n);
            let what = |op: &str| format!("{op}<{}> over {axes:?}", D::NAME);
            let sum_ref = reference(&xv, &shape, &axes, |r| r.iter().sum());
            let got = x.sum(&ia, false).unwrap();
            let sum_tol = Tolerance {
                abs: tol.abs + 3.0 * n as f64 * tol.rel,
                ..tol
            };
            assert_close(&what("sum"), &got.to_f64_vec(), &sum_ref, sum_tol);
            assert_close(
                &what("mean"),
                &x.mean(&ia, true).unwrap().to_f64_vec(),
                &reference(&xv, &shape, &axes, mean_f),
                Tolerance {
                    abs: 3.0 * tol.rel,
                    ..tol
                },
            );
            assert_close(
                &what("max"),
                &x.max(&ia, false).unwrap().to_f64_vec(),
                &reference(&xv, &shape, &axes, |r| {
                    r.iter().cloned().fold(f64::MIN, f64::max)
                }),
                tol,
            );
            assert_close(
                &what("min"),
                &x.min(&ia, false).unwrap().to_f64_vec(),
                &reference(&xv, &shape, &axes, |r| {
                    r.iter().cloned().fold(f64::MAX, f64::min)
                }),
                tol,
            );
            let var_ref = reference(&xv, &shape, &axes, |r| {
                let m = mean_f(r);
                r.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (r.len() - 1) as f64
            });
            assert_close(
                &what("var"),
                &x.var(&ia, false, 1).unwrap().to_f64_vec(),
                &var_ref,
                tol.times(2.0),
            );
            let kd = x.sum(&ia, true).unwrap();
            assert_eq!(kd.rank(), 3);
        }
        let am = x.argmax(1, false).unwrap();
        assert_eq!(am.shape(), &[4, 6]);
        let want: Vec<usize> = reference(&xv, &shape, &[1], |r| {
            r.iter()
                .enumerate()
                .fold(0, |b, (i, &v)| if v > r[b] { i } else { b }) as f64
        })
        .into_iter()
        .map(|v| v as usize)
        .collect();
        assert_eq!(am.as_slice(), &want[..]);
        let norm = x.norm_l2().to_f64();
        let want_norm = xv.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!(
            (norm - want_norm).abs() <= want_norm * Tolerance::accumulated::<F32>(120).rel * 2.0,
            "{norm} vs {want_norm}"
        );
    }
    for_each_dtype!(reductions_match_f64);

    #[test]
    fn reduction_errors() {
        let x = Tensor::<F32>::zeros(&[2, 0]);
        assert_eq!(
            x.mean(&[1], false).unwrap_err().to_string(),
            "mean: needs at least one element, got shape [2, 0]"
        );
        assert!(x.max(&[1], false).is_err());
        assert!(x.argmax(1, false).is_err());
        assert_eq!(x.sum(&[1], false).unwrap().to_f32_vec(), vec![0.0, 0.0]);
        let y = Tensor::<F32>::ones(&[2, 3]);
        assert!(
            y.sum(&[2], false)
                .unwrap_err()
                .to_string()
                .contains("axis 2 is out of range")
        );
        assert!(
            y.sum(&[1, -1], false)
                .unwrap_err()
                .to_string()
                .contains("listed twice")
        );
        assert!(
            y.sum(&[], false)
                .unwrap_err()
                .to_string()
                .starts_with("sum: needs at least one axis")
        );
        assert!(Tensor::<F32>::ones(&[1]).var(&[0], false, 1).is_err());
        assert!(Tensor::<F32>::zeros(&[0]).mean_all().is_err());
    }

    #[test]
    fn sum_to_shape_reverses_broadcasting() {
        let x = Tensor::<F64>::from_f64(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 1, 3])
            .unwrap()
            .broadcast_to(&[4, 2, 2, 3])
            .unwrap();
        let s = x.sum_to_shape(&[2, 1, 3]).unwrap();
        assert_eq!(
            s.to_f64_vec(),
            vec![8.0, 16.0, 24.0, 32.0, 40.0, 48.0],
            "4 x 2 copies of each"
        );
        assert_eq!(
            x.sum_to_shape(&[3]).unwrap().to_f64_vec(),
            vec![40.0, 56.0, 72.0]
        );
        let e = x.sum_to_shape(&[5]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("sum_to_shape: shapes [4, 2, 2, 3] and [5]")
        );
    }

    #[test]
    fn norm_does_not_overflow() {
        let x = Tensor::<F32>::from_f32(&[3e30, 4e30], &[2]).unwrap();
        assert_eq!(x.norm_l2(), 5e30);
        let y = Tensor::<F32>::from_f32(&[3e-30, 4e-30], &[2]).unwrap();
        assert!((y.norm_l2() - 5e-30).abs() < 1e-36);
        assert!(
            Tensor::<F32>::from_f32(&[1.0, f32::NAN], &[2])
                .unwrap()
                .abs_max()
                .is_nan()
        );
    }

    proptest! {
        /// Sums over random axis sets of random shapes match the F64 reference exactly
        /// (integer-valued F64 data sums exactly).
        #[test]
        fn sums_over_random_axes(shape in prop::collection::vec(1usize..5, 1..4), pick in prop::collection::vec(any::<bool>(), 4), keepdim in any::<bool>()) {
            let n: usize = shape.iter().product();
            let values: Vec<f64> = (0..n).map(|i| ((i * 7) % 11) as f64 - 5.0).collect();
            let x = Tensor::<F64>::from_f64(&values, &shape).unwrap();
            let mut axes: Vec<usize> = (0..shape.len()).filter(|&a| pick[a]).collect();
            if axes.is_empty() { axes.push(0); }
            let ia: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
            let got = x.sum(&ia, keepdim).unwrap();
            prop_assert_eq!(got.to_f64_vec(), reference(&values, &shape, &axes, |r| r.iter().sum()));
            prop_assert_eq!(got.numel(), shape.iter().enumerate().filter(|(a, _)| !axes.contains(a)).map(|(_, d)| d).product::<usize>());
        }
    }
}
