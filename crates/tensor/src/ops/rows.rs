//! Row-wise engine for ops that normalise along one axis (softmax, log_softmax,
//! layer_norm): the axis is moved last, each row is computed in `D::Acc`, and the
//! result is laid back out in the input's axis order, rounded once into `D`.

use super::map::PARALLEL_MIN;
use crate::error::Result;
use crate::layout::normalize_axis;
use crate::tensor::Tensor;
use mixprec_dtype::Dtype;
use num_traits::Zero;
use rayon::prelude::*;

/// Applies `f(input_row, output_row)` to every row along `axis` (rows in parallel when
/// the tensor is large). Returns the result with the input's shape.
pub(crate) fn map_rows<D: Dtype>(
    op: &'static str,
    t: &Tensor<D>,
    axis: isize,
    f: impl Fn(&[D::Acc], &mut [D::Acc]) + Sync,
) -> Result<Tensor<D>> {
    let rank = t.rank();
    let axis = normalize_axis(op, axis, rank)?;
    // Order that moves `axis` last, and its inverse.
    let order: Vec<usize> = (0..rank).filter(|&a| a != axis).chain([axis]).collect();
    let moved = t.permute(&order)?;
    let values = moved.to_acc_vec();
    let row_len = t.shape()[axis];
    let mut out = vec![D::Acc::zero(); values.len()];
    if row_len > 0 {
        if values.len() >= PARALLEL_MIN {
            out.par_chunks_mut(row_len)
                .zip(values.par_chunks(row_len))
                .for_each(|(o, i)| f(i, o));
        } else {
            out.chunks_mut(row_len)
                .zip(values.chunks(row_len))
                .for_each(|(o, i)| f(i, o));
        }
    }
    let result = Tensor::from_acc_vec(&out, moved.shape());
    if axis == rank - 1 {
        return Ok(result);
    }
    let mut inverse = vec![0; rank];
    for (i, &a) in order.iter().enumerate() {
        inverse[a] = i;
    }
    Ok(result.permute(&inverse)?.contiguous())
}
