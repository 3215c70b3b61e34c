//! `softmax` and `log_softmax` along an axis: max-subtracted, exponentials and their sum
//! in `D::Acc` (f32; f64 for `F64`), one rounding into `D`. These are precision-sensitive
//! ops: the amp layer runs them in F32.

use super::reduce::sum_acc;
use crate::backend::on_device;
use crate::cpu::map::PARALLEL_MIN_EXPENSIVE;
use crate::cpu::rows::map_row_blocks;
use crate::error::Result;
use crate::storage::one_device;
use crate::tensor::Tensor;
use mixprec_dtype::{Acc, Dtype};
use num_traits::Float;

/// Largest finite-or-infinite value of a row (NaN-free rows); `-inf` for an all `-inf` row.
#[inline(always)]
fn row_max<A: Acc>(row: &[A]) -> A {
    row.iter().fold(A::neg_infinity(), |m, &v| m.max(v))
}

crate::cpu::simd::multiversioned! {
    /// `out = exp(x - max(row))` for every row of `n` elements in `x` (the exponentials of
    /// a block of rows evaluated together, see [`crate::cpu::fast_math::exp_in_place`]).
    fn shifted_exp<A: Acc>(x: &[A], out: &mut [A], n: usize) {
        for (o, xr) in out.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
            let m = row_max(xr);
            o.iter_mut().zip(xr).for_each(|(o, &v)| *o = v - m);
        }
        crate::cpu::fast_math::exp_in_place(out);
    }
}

crate::cpu::simd::multiversioned! {
    /// Softmax of every row of `n` elements in `x` into `out`.
    fn softmax_rows<A: Acc>(x: &[A], out: &mut [A], n: usize) {
        shifted_exp(x, out, n);
        for o in out.chunks_exact_mut(n) {
            let s = sum_acc(o);
            o.iter_mut().for_each(|o| *o /= s);
        }
    }
}

/// `o = y (g - sum(g y))` for every row of `n` (the sum in order, in `A`).
fn softmax_grad_rows<A: Acc>(y: &[A], g: &[A], o: &mut [A], n: usize) {
    for ((o, y), g) in o
        .chunks_exact_mut(n)
        .zip(y.chunks_exact(n))
        .zip(g.chunks_exact(n))
    {
        let dot: A = y.iter().zip(g).map(|(&a, &b)| a * b).sum();
        for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
            *o = y * (g - dot);
        }
    }
}

/// A row op along an axis, as data: what [`Tensor::row_op`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RowOp {
    /// [`Tensor::softmax`].
    Softmax,
    /// [`Tensor::log_softmax`].
    LogSoftmax,
}

impl RowOp {
    /// Every variant.
    pub const ALL: [RowOp; 2] = [RowOp::Softmax, RowOp::LogSoftmax];

    /// The op's name (the public method's), used in errors.
    pub const fn name(self) -> &'static str {
        match self {
            RowOp::Softmax => "softmax",
            RowOp::LogSoftmax => "log_softmax",
        }
    }

    /// The backward op's name.
    pub const fn backward_name(self) -> &'static str {
        match self {
            RowOp::Softmax => "softmax_backward",
            RowOp::LogSoftmax => "log_softmax_backward",
        }
    }

    /// A device's kernels for the op: (forward, backward).
    pub const fn kernel(self) -> (&'static str, &'static str) {
        match self {
            RowOp::Softmax => ("row_softmax", "row_softmax_backward"),
            RowOp::LogSoftmax => ("row_log_softmax", "row_log_softmax_backward"),
        }
    }
}

impl<D: Dtype> Tensor<D> {
    /// `op` along `axis`: [`Tensor::softmax`] or [`Tensor::log_softmax`]. Errors when
    /// `axis` is out of range or the result cannot be allocated.
    pub fn row_op(&self, op: RowOp, axis: isize) -> Result<Tensor<D>> {
        crate::layout::normalize_axis(op.name(), axis, self.rank())?;
        on_device!(self.device(), b => b.row_op(op, self, axis))
    }

    /// The gradient through `op` along `axis` for its output `self = y` and the output
    /// gradient `g` ([`Tensor::softmax_backward`], [`Tensor::log_softmax_backward`]).
    pub fn row_op_backward(&self, op: RowOp, g: &Tensor<D>, axis: isize) -> Result<Tensor<D>> {
        let name = op.backward_name();
        let device = one_device(name, [self.device(), g.device()])?;
        if g.shape() != self.shape() {
            return Err(crate::error::Error::shapes(
                name,
                self.shape(),
                g.shape(),
                "the gradient must have the output's shape",
            ));
        }
        crate::layout::normalize_axis(name, axis, self.rank())?;
        on_device!(device, b => b.row_op_backward(op, self, g, axis))
    }

    /// `exp(x - max) / sum(exp(x - max))` along `axis`. A row of all `-inf` (a fully
    /// masked attention row) gives NaN, as in PyTorch; NaN in a row gives NaN.
    pub fn softmax(&self, axis: isize) -> Result<Tensor<D>> {
        self.row_op(RowOp::Softmax, axis)
    }

    /// The CPU kernel of [`Tensor::softmax`], after its front's checks.
    pub(crate) fn softmax_on_cpu(&self, axis: isize) -> Result<Tensor<D>> {
        map_row_blocks("softmax", self, axis, PARALLEL_MIN_EXPENSIVE, softmax_rows)
    }

    /// The gradient through [`Tensor::softmax`] along `axis` for its output `self = y`
    /// and the output gradient `g`: `dx = y (g - sum(g y))` per row, computed in
    /// `D::Acc` and rounded once. Contiguous rows along the last axis stream through small
    /// buffers (both cores for large tensors); other layouts are moved. Errors when the
    /// shapes differ or `axis` is out of range.
    pub fn softmax_backward(&self, g: &Tensor<D>, axis: isize) -> Result<Tensor<D>> {
        self.row_op_backward(RowOp::Softmax, g, axis)
    }

    /// The CPU kernel of [`Tensor::softmax_backward`], after its front's checks.
    pub(crate) fn softmax_backward_on_cpu(&self, g: &Tensor<D>, axis: isize) -> Result<Tensor<D>> {
        let rank = self.rank();
        let a = crate::layout::normalize_axis("softmax_backward", axis, rank)?;
        let n = self.shape()[a];
        let plain = |t: &Tensor<D>| t.is_contiguous() && t.scale == 1.0 && !D::DTYPE.is_fp8();
        if a + 1 == rank && plain(self) && plain(g) && n > 0 {
            let op = "softmax_backward";
            let (ys, gs) = (self.try_elements(op)?, g.try_elements(op)?);
            let mut out = crate::cpu::alloc::try_scratch::<D>(op, self.shape(), ys.len())?;
            let rows = (crate::cpu::map::CHUNK / n).max(1) * n;
            // A block holds at least one row: its buffers are fallible (a row may be huge).
            let failed = crate::cpu::alloc::FirstError::new();
            crate::cpu::pool::par_pieces(
                &mut out,
                rows,
                crate::cpu::map::PARALLEL_MIN,
                |off, piece| {
                    let buffers = crate::cpu::alloc::try_zeroed_acc_buffers::<D, 3>(op, rows);
                    let Some([mut yb, mut gb, mut ob]) = failed.keep(buffers) else {
                        return;
                    };
                    for (k, o) in piece.chunks_mut(rows).enumerate() {
                        let at = off + k * rows;
                        let m = o.len();
                        D::to_acc_slice(&ys[at..at + m], &mut yb[..m]);
                        D::to_acc_slice(&gs[at..at + m], &mut gb[..m]);
                        softmax_grad_rows(&yb[..m], &gb[..m], &mut ob[..m], n);
                        D::from_acc_slice(&ob[..m], o);
                    }
                },
            );
            failed.into_result()?;
            return Ok(Tensor::from_parts(out, self.shape(), 1.0));
        }
        // Move the axis last, compute, move it back.
        let op = "softmax_backward";
        let last = rank as isize - 1;
        let (yt, gt) = (
            self.transpose(a as isize, last)?,
            g.transpose(a as isize, last)?,
        );
        let (yv, gv) = (yt.try_to_acc_vec(op)?, gt.try_to_acc_vec(op)?);
        let mut out = crate::cpu::alloc::try_collect(op, yt.shape(), yv.iter().copied())?;
        if n > 0 {
            softmax_grad_rows(&yv, &gv, &mut out, n);
        }
        let t = Tensor::<D>::from_acc_vec(op, &out, yt.shape())?;
        t.transpose(a as isize, last)?.try_contiguous(op)
    }

    /// The gradient through [`Tensor::log_softmax`] along `axis` for its output
    /// `self = y` and the output gradient `g`: `dx = g - e^y sum(g)` per row (the sum in
    /// order), computed in `D::Acc` and rounded once. Errors when the shapes differ or
    /// `axis` is out of range.
    pub fn log_softmax_backward(&self, g: &Tensor<D>, axis: isize) -> Result<Tensor<D>> {
        self.row_op_backward(RowOp::LogSoftmax, g, axis)
    }

    /// The CPU kernel of [`Tensor::log_softmax_backward`], after its front's checks.
    pub(crate) fn log_softmax_backward_on_cpu(
        &self,
        g: &Tensor<D>,
        axis: isize,
    ) -> Result<Tensor<D>> {
        let op = "log_softmax_backward";
        let a = crate::layout::normalize_axis(op, axis, self.rank())?;
        let last = self.rank() as isize - 1;
        let (yt, gt) = (
            self.transpose(a as isize, last)?,
            g.transpose(a as isize, last)?,
        );
        let (yv, gv) = (yt.try_to_acc_vec(op)?, gt.try_to_acc_vec(op)?);
        let mut out = crate::cpu::alloc::try_collect(op, yt.shape(), gv.iter().copied())?;
        let n = self.shape()[a];
        if n > 0 {
            for (o, y) in out.chunks_mut(n).zip(yv.chunks(n)) {
                let total: D::Acc = o.iter().copied().sum();
                o.iter_mut()
                    .zip(y)
                    .for_each(|(o, &y)| *o -= y.exp() * total);
            }
        }
        let t = Tensor::<D>::from_acc_vec(op, &out, yt.shape())?;
        t.transpose(a as isize, last)?.try_contiguous(op)
    }

    /// `x - max - log(sum(exp(x - max)))` along `axis`: the stable log-probabilities that
    /// cross-entropy uses.
    pub fn log_softmax(&self, axis: isize) -> Result<Tensor<D>> {
        self.row_op(RowOp::LogSoftmax, axis)
    }

    /// The CPU kernel of [`Tensor::log_softmax`], after its front's checks.
    pub(crate) fn log_softmax_on_cpu(&self, axis: isize) -> Result<Tensor<D>> {
        map_row_blocks(
            "log_softmax",
            self,
            axis,
            PARALLEL_MIN_EXPENSIVE,
            |x, out, n| {
                shifted_exp(x, out, n);
                for (o, xr) in out.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
                    let m = row_max(xr);
                    let log_sum = sum_acc(o).ln();
                    for (o, &v) in o.iter_mut().zip(xr) {
                        *o = v - m - log_sum;
                    }
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::Mask;
    use mixprec_dtype::F32;
    use mixprec_testing::{TestRng, Tolerance, assert_close, for_each_dtype};

    fn softmax_ref(row: &[f64]) -> Vec<f64> {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|v| v / s).collect()
    }

    fn softmax_matches_f64<D: Dtype>() {
        let mut rng = TestRng::new(12);
        let x = Tensor::<D>::from_f64(&rng.vec(4 * 30 * 3, -6.0, 6.0), &[4, 30, 3]).unwrap();
        for axis in [1isize, -1, 0] {
            let a = if axis < 0 { 2 } else { axis as usize };
            let moved_order: Vec<usize> = (0..3).filter(|&d| d != a).chain([a]).collect();
            let xm = x.permute(&moved_order).unwrap();
            let n = x.shape()[a];
            let rows: Vec<f64> = xm.to_f64_vec();
            let sm: Vec<f64> = rows.chunks(n).flat_map(softmax_ref).collect();
            let lsm: Vec<f64> = rows
                .chunks(n)
                .flat_map(|r| softmax_ref(r).into_iter().map(f64::ln).collect::<Vec<_>>())
                .collect();
            let got = x
                .softmax(axis)
                .unwrap()
                .permute(&moved_order)
                .unwrap()
                .to_f64_vec();
            // exp of arguments up to 12 in magnitude (condition 12) and a sum of n terms.
            let tol = Tolerance::accumulated::<D>(n).plus_conditioning::<D>(12.0);
            assert_close(&format!("softmax<{}> axis {axis}", D::NAME), &got, &sm, tol);
            let got = x
                .log_softmax(axis)
                .unwrap()
                .permute(&moved_order)
                .unwrap()
                .to_f64_vec();
            // log-probabilities: absolute error of the log-sum (sum of n terms) plus one
            // rounding of the result; scale the absolute part by the largest |value|.
            let ltol = Tolerance {
                abs_of_max: tol.rel + tol.abs_of_max,
                ..tol
            };
            assert_close(
                &format!("log_softmax<{}> axis {axis}", D::NAME),
                &got,
                &lsm,
                ltol,
            );
        }
    }
    for_each_dtype!(softmax_matches_f64);

    /// `y (g - sum(g y))` written out in f64 on the rounded inputs, along the last axis
    /// (the streaming path, over several blocks and both cores) and a middle axis (the
    /// moved path). Tolerance: the row sum's accumulation in the compute precision.
    fn softmax_backward_matches_f64<D: Dtype>() {
        let mut rng = TestRng::new(13);
        let (rows, n) = (3000, 12);
        let x = Tensor::<D>::from_f64(&rng.vec(rows * n, -4.0, 4.0), &[30, 100, n]).unwrap();
        let g = Tensor::<D>::from_f64(&rng.vec(rows * n, -1.0, 1.0), &[30, 100, n]).unwrap();
        for axis in [-1isize, 1] {
            let a = if axis < 0 { 2 } else { axis as usize };
            let y = x.softmax(axis).unwrap();
            let dx = y.softmax_backward(&g, axis).unwrap();
            let order: Vec<usize> = (0..3).filter(|&d| d != a).chain([a]).collect();
            let len = x.shape()[a];
            let moved = |t: &Tensor<D>| t.permute(&order).unwrap().to_f64_vec();
            let (yv, gv) = (moved(&y), moved(&g));
            let want: Vec<f64> = yv
                .chunks(len)
                .zip(gv.chunks(len))
                .flat_map(|(y, g)| {
                    let dot: f64 = y.iter().zip(g).map(|(a, b)| a * b).sum();
                    y.iter()
                        .zip(g)
                        .map(move |(y, g)| y * (g - dot))
                        .collect::<Vec<_>>()
                })
                .collect();
            let tol = Tolerance::accumulated::<D>(len).times(2.0);
            assert_close(
                &format!("softmax_backward<{}> axis {axis}", D::NAME),
                &moved(&dx),
                &want,
                tol,
            );
        }
        let err = x
            .softmax_backward(&Tensor::<D>::zeros(&[2]), -1)
            .unwrap_err();
        assert!(err.to_string().starts_with("softmax_backward: shapes"));
    }
    for_each_dtype!(softmax_backward_matches_f64);

    #[test]
    fn large_logits_and_masked_rows() {
        let x = Tensor::<F32>::from_f32(&[1000.0, 1001.0, -1000.0], &[1, 3]).unwrap();
        let s = x.softmax(-1).unwrap().to_f32_vec();
        assert!(
            (s[0] - 0.268_941_43).abs() < 1e-7 && (s[1] - 0.731_058_6).abs() < 1e-7 && s[2] == 0.0,
            "{s:?}"
        );
        let ls = x.log_softmax(-1).unwrap().to_f32_vec();
        assert!(
            (ls[2] + 2_001.313_3).abs() < 1e-3,
            "no -inf for a very negative logit: {ls:?}"
        );
        let scores = Tensor::<F32>::zeros(&[3, 3])
            .masked_fill(&Mask::causal(3), f64::NEG_INFINITY)
            .unwrap();
        let p = scores.softmax(-1).unwrap().to_f32_vec();
        assert_eq!(
            &p[..3],
            &[1.0, 0.0, 0.0],
            "causal row 0 attends to itself only"
        );
        assert!(
            x.softmax(2)
                .unwrap_err()
                .to_string()
                .starts_with("softmax: axis 2 is out of range")
        );
    }
}
