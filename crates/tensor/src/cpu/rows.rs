//! Row-wise engine for ops that normalise along one axis (softmax, log_softmax,
//! layer_norm): the axis is moved last, each row is computed in `D::Acc`, and the
//! result is laid back out in the input's axis order, rounded once into `D`. A
//! contiguous last-axis input (the common case) streams: blocks of rows are decoded into
//! small buffers, computed and rounded straight into the output, so 16-bit storage moves
//! half the bytes of f32.

use crate::cpu::alloc::{FirstError, try_scratch, try_zeroed_acc, try_zeroed_acc_buffers};
use crate::cpu::pool::{par_zip_chunks, par_zip_chunks_with};
use crate::error::Result;
use crate::layout::normalize_axis;
use crate::tensor::Tensor;
use mixprec_dtype::Dtype;

/// Applies `f(input_rows, output_rows, row_len)` to the rows along `axis`, in blocks of
/// whole rows (a multiple of `row_len` elements, so per-element work can run over many
/// short rows together; blocks in parallel when the tensor is large). Returns the result
/// with the input's shape. Blocks split over the cores from `parallel_min` elements.
pub(crate) fn map_row_blocks<D: Dtype>(
    op: &'static str,
    t: &Tensor<D>,
    axis: isize,
    parallel_min: usize,
    f: impl Fn(&[D::Acc], &mut [D::Acc], usize) + Sync,
) -> Result<Tensor<D>> {
    let rank = t.rank();
    let axis = normalize_axis(op, axis, rank)?;
    let row_len = t.shape()[axis];
    if axis == rank - 1 && t.is_contiguous() && !D::DTYPE.is_fp8() && row_len > 0 {
        return stream_rows(op, t, row_len, parallel_min, f);
    }
    // Order that moves `axis` last, and its inverse.
    let order: Vec<usize> = (0..rank).filter(|&a| a != axis).chain([axis]).collect();
    let moved = t.permute(&order)?;
    let values = moved.try_to_acc_vec(op)?;
    let mut out = try_zeroed_acc::<D>(op, t.shape(), values.len())?;
    if let Some(rows) = crate::cpu::map::CHUNK.checked_div(row_len) {
        let rows_per_task = rows.max(1) * row_len;
        par_zip_chunks(&mut out, &values, rows_per_task, parallel_min, |o, i| {
            f(i, o, row_len)
        });
    }
    let result = Tensor::from_acc_vec(op, &out, moved.shape())?;
    if axis == rank - 1 {
        return Ok(result);
    }
    let mut inverse = vec![0; rank];
    for (i, &a) in order.iter().enumerate() {
        inverse[a] = i;
    }
    result.permute(&inverse)?.try_contiguous(op)
}

/// Rows of a contiguous, unscaled tensor: decode a block of rows, compute, round.
fn stream_rows<D: Dtype>(
    op: &'static str,
    t: &Tensor<D>,
    row_len: usize,
    parallel_min: usize,
    f: impl Fn(&[D::Acc], &mut [D::Acc], usize) + Sync,
) -> Result<Tensor<D>> {
    let src = t.try_elements(op)?;
    let mut out = try_scratch::<D>(op, t.shape(), src.len())?;
    let rows_per_task = (crate::cpu::map::CHUNK / row_len).max(1) * row_len;
    // A block holds at least one row: its buffers are fallible (a row may be huge).
    let failed = FirstError::new();
    // One pair of buffers per piece, sized for its longest block.
    let scratch = |n: usize| failed.keep(try_zeroed_acc_buffers::<D, 2>(op, n));
    let job = |bufs: &mut Option<[Vec<D::Acc>; 2]>, o: &mut [D], s: &[D]| {
        let Some([x, y]) = bufs else {
            return;
        };
        let (x, y) = (&mut x[..s.len()], &mut y[..s.len()]);
        D::to_acc_slice(s, x);
        f(x, y, row_len);
        D::from_acc_slice(y, o);
    };
    par_zip_chunks_with(&mut out, &src, rows_per_task, parallel_min, scratch, job);
    failed.into_result()?;
    Ok(Tensor::from_parts(out, t.shape(), 1.0))
}
