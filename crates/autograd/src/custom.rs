//! Custom ops: a user-defined forward and backward recorded like any built-in op (the
//! amp layer's FP8 GEMM is one).

use crate::error::Result;
use crate::saved::Saved;
use crate::tape::{AnyGrad, NodeId, Tape};
use crate::var::{Record, Var};
use mixprec_dtype::Dtype;
use mixprec_tensor::Tensor;
use std::marker::PhantomData;

/// A typed, copyable handle to a var's node, for backward rules to name their inputs
/// without keeping the var (and so the tape) alive.
#[derive(Debug)]
pub struct VarRef<T: Dtype> {
    id: NodeId,
    requires_grad: bool,
    _t: PhantomData<fn() -> T>,
}

impl<T: Dtype> Clone for VarRef<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Dtype> Copy for VarRef<T> {}

impl<T: Dtype> VarRef<T> {
    /// True when the var needs a gradient (a rule may skip computing it otherwise).
    pub fn requires_grad(&self) -> bool {
        self.requires_grad
    }
}

/// An input of a custom op, of any precision ([`VarRef`]`.into()`): the op's rule may
/// send gradients to its declared inputs only.
#[derive(Clone, Copy, Debug)]
pub struct Input {
    id: NodeId,
    requires_grad: bool,
}

impl<T: Dtype> From<VarRef<T>> for Input {
    fn from(v: VarRef<T>) -> Input {
        Input {
            id: v.id,
            requires_grad: v.requires_grad,
        }
    }
}

/// The gradient of one input, typed by the input's precision.
pub struct InputGrad(pub(crate) NodeId, pub(crate) AnyGrad);

impl std::fmt::Debug for InputGrad {
    /// The input's node; the gradient's values print through the input's var.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputGrad")
            .field("input", &self.0)
            .finish_non_exhaustive()
    }
}

impl InputGrad {
    /// `grad` is the gradient for the input `of` (same precision, same shape).
    pub fn new<T: Dtype>(of: VarRef<T>, grad: Tensor<T>) -> InputGrad {
        InputGrad(of.id, Box::new(grad))
    }
}

impl<D: Dtype> Var<D> {
    /// A handle for backward rules of custom ops.
    pub fn handle(&self) -> VarRef<D> {
        VarRef {
            id: self.id,
            requires_grad: self.requires_grad,
            _t: PhantomData,
        }
    }
}

impl Tape {
    /// Records a custom op: `value` is its output (computed by the caller), `inputs` the
    /// vars its rule may send gradients to (it requires gradients when one of them
    /// does; a gradient for an undeclared var is an error in backward), `saved` what the
    /// rule keeps alive for the memory report ([`Saved::tensor`] for tensors, counted
    /// once per storage; [`Saved::bytes`] otherwise), and `rule` maps the output gradient
    /// to input gradients. Declaring the inputs is what tells backward when a
    /// parameter's gradient is final ([`Var::backward_with_leaf_hook`]).
    pub fn custom<D: Dtype>(
        &self,
        op: &'static str,
        value: Tensor<D>,
        inputs: &[Input],
        saved: Vec<Saved>,
        rule: impl FnOnce(Tensor<D>) -> Result<Vec<InputGrad>> + Send + 'static,
    ) -> Var<D> {
        let rec = Record {
            op,
            inputs: inputs.iter().map(|i| i.id).collect(),
            requires_grad: inputs.iter().any(|i| i.requires_grad),
            saved,
            cast: None,
        };
        self.record(value, rec, move |g| {
            Ok(rule(g)?
                .into_iter()
                .map(|InputGrad(id, g)| (id, g))
                .collect())
        })
    }
}
