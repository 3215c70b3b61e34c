//! Backward rules, one unit each: the `Var` method records the tensor op and a closure
//! that computes the input gradients from the output gradient.

mod binary;
mod cast;
mod index;
mod loss;
mod matmul;
mod norm;
mod reduce;
mod select;
mod softmax;
mod unary;
mod views;
mod window;

use crate::error::Result;
use crate::tape::{AnyGrad, NodeId};
use crate::var::{Record, Var};
use mixprec_dtype::{DType, Dtype};
use mixprec_tensor::Tensor;

/// `(id, gradient)` boxed for the tape.
pub(crate) fn grad<D: Dtype>(id: NodeId, t: Tensor<D>) -> (NodeId, AnyGrad) {
    (id, Box::new(t))
}

/// Sums a broadcast gradient back to `shape` (NumPy broadcasting in reverse): leading
/// axes that broadcasting added, and axes where `shape` has 1, are summed away.
pub(crate) fn sum_to<D: Dtype>(g: Tensor<D>, shape: &[usize]) -> Result<Tensor<D>> {
    if g.shape() == shape {
        return Ok(g);
    }
    let extra = g.rank() - shape.len();
    let axes: Vec<isize> = (0..g.rank())
        .filter(|&a| a < extra || (shape[a - extra] == 1 && g.shape()[a] != 1))
        .map(|a| a as isize)
        .collect();
    let summed = if axes.is_empty() {
        g
    } else {
        g.sum(&axes, true)?
    };
    Ok(summed.reshape(shape)?)
}

/// Bytes a rule keeps alive by saving `t`.
pub(crate) fn saved<D: Dtype>(t: &Tensor<D>) -> (DType, usize) {
    (D::DTYPE, t.nbytes())
}

/// Record for an op with one input.
pub(crate) fn unary_record<D: Dtype>(
    op: &'static str,
    x: &Var<D>,
    saved: Vec<(DType, usize)>,
) -> Record {
    Record {
        op,
        requires_grad: x.requires_grad,
        saved,
        cast: None,
    }
}
