//! Backward rules, one unit each: the `Var` method records the tensor op and a closure
//! that computes the input gradients from the output gradient.

mod binary;
mod cast;
mod conv2d;
mod cross_entropy;
mod index;
mod layer_norm;
mod matmul;
mod operators;
mod pool;
mod reduce;
mod select;
mod softmax;
mod unary;
mod views;

pub use operators::SameVarDtype;

use crate::error::Result;
use crate::saved::Saved;
use crate::tape::{AnyGrad, NodeId};
use crate::var::{Record, Var};
use mixprec_dtype::Dtype;
use mixprec_tensor::Tensor;

/// `(id, gradient)` boxed for the tape.
pub(crate) fn grad<D: Dtype>(id: NodeId, t: Tensor<D>) -> (NodeId, AnyGrad) {
    (id, Box::new(t))
}

/// Sums a broadcast gradient back to `shape` (see `Tensor::sum_to_shape`).
pub(crate) fn sum_to<D: Dtype>(g: Tensor<D>, shape: &[usize]) -> Result<Tensor<D>> {
    Ok(g.sum_to_shape(shape)?)
}

/// What a rule keeps alive by saving `t`.
pub(crate) fn saved<D: Dtype>(t: &Tensor<D>) -> Saved {
    Saved::tensor(t)
}

/// Record for an op with one input.
pub(crate) fn unary_record<D: Dtype>(op: &'static str, x: &Var<D>, saved: Vec<Saved>) -> Record {
    Record {
        op,
        inputs: vec![x.id],
        requires_grad: x.requires_grad,
        saved,
        cast: None,
    }
}
