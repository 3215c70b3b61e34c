//! [`Gradients`]: what `backward` returns, keyed by leaf.

use crate::tape::{AnyGrad, NodeId};
use crate::var::Var;
use mixprec_dtype::{Dtype, F32};
use mixprec_tensor::Tensor;
use std::collections::HashMap;

/// Gradients of the leaves that require them, each in the precision its leaf
/// accumulates in (the leaf's own type, or F32 for `leaf_f32_grad` leaves).
#[derive(Default)]
pub struct Gradients {
    grads: HashMap<NodeId, AnyGrad>,
}

impl std::fmt::Debug for Gradients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gradients({} leaves)", self.grads.len())
    }
}

impl Gradients {
    pub(crate) fn insert(&mut self, id: NodeId, g: AnyGrad) {
        self.grads.insert(id, g);
    }

    /// The gradient of `leaf` in its own type; `None` if no gradient reached it (or it
    /// accumulates in F32: use [`Gradients::get_f32`]).
    pub fn get<D: Dtype>(&self, leaf: &Var<D>) -> Option<&Tensor<D>> {
        self.grads.get(&leaf.id)?.downcast_ref::<Tensor<D>>()
    }

    /// The F32 gradient of a leaf made with `leaf_f32_grad` (or of an F32 leaf).
    pub fn get_f32<D: Dtype>(&self, leaf: &Var<D>) -> Option<&Tensor<F32>> {
        self.grads.get(&leaf.id)?.downcast_ref::<Tensor<F32>>()
    }

    /// Removes and returns the gradient of `leaf` in its own type.
    pub fn take<D: Dtype>(&mut self, leaf: &Var<D>) -> Option<Tensor<D>> {
        let g = self.grads.remove(&leaf.id)?;
        match g.downcast::<Tensor<D>>() {
            Ok(t) => Some(*t),
            Err(g) => {
                self.grads.insert(leaf.id, g);
                None
            }
        }
    }

    /// Number of leaves with a gradient.
    pub fn len(&self) -> usize {
        self.grads.len()
    }

    /// True when no leaf received a gradient.
    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }

    /// Forgets every gradient (the start of a new accumulation).
    pub fn zero_grad(&mut self) {
        self.grads.clear();
    }
}
