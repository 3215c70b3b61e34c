//! [`Var`]: a tensor tracked on a tape. Ops on vars compute the tensor op and record a
//! node whose backward rule owns exactly the tensors it needs.

use crate::error::{Error, Result};
use crate::grads::Gradients;
use crate::tape::{AnyGrad, Node, NodeId, Tape, accumulate_in, accumulate_in_f32};
use mixprec_dtype::Dtype;
use mixprec_tensor::Tensor;

/// A tensor on a tape: its value, its node, and whether gradients flow to it.
pub struct Var<D: Dtype> {
    pub(crate) tape: Tape,
    pub(crate) id: NodeId,
    pub(crate) value: Tensor<D>,
    pub(crate) requires_grad: bool,
}

impl<D: Dtype> Clone for Var<D> {
    fn clone(&self) -> Self {
        Var {
            tape: self.tape.clone(),
            id: self.id,
            value: self.value.clone(),
            requires_grad: self.requires_grad,
        }
    }
}

impl<D: Dtype> std::fmt::Debug for Var<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Var#{}{} {:?}",
            self.id,
            if self.requires_grad { " (grad)" } else { "" },
            self.value
        )
    }
}

/// Prints the value as [`Tensor`]'s `Display` does (PyTorch's format, with shape, dtype
/// and device), adding `requires_grad=true` for a var gradients flow to:
///
/// ```
/// use mixprec_autograd::Tape;
/// use mixprec_dtype::F32;
/// use mixprec_tensor::Tensor;
/// let tape = Tape::new();
/// let w = tape.leaf(Tensor::<F32>::from_f32(&[0.5, -1.0], &[2]).unwrap());
/// assert_eq!(
///     w.to_string(),
///     "tensor([ 0.5000, -1.0000], shape=[2], dtype=f32, device=cpu, requires_grad=true)"
/// );
/// ```
impl<D: Dtype> std::fmt::Display for Var<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let grad = if self.requires_grad {
            ", requires_grad=true"
        } else {
            ""
        };
        self.value.fmt_with(f, "tensor(", grad)
    }
}

/// What a recorded op declares besides its output: the inputs it may send gradients to
/// and the bytes its backward rule keeps alive.
pub(crate) struct Record {
    pub op: &'static str,
    /// Every node the rule may send a gradient to (a gradient to another is an error).
    pub inputs: Vec<NodeId>,
    pub requires_grad: bool,
    pub saved: Vec<crate::saved::Saved>,
    pub cast: Option<crate::tape::CastSite>,
}

impl Tape {
    /// A leaf that requires gradients (a parameter). Its gradient accumulates in `D`.
    pub fn leaf<D: Dtype>(&self, value: Tensor<D>) -> Var<D> {
        self.new_leaf(value, true, accumulate_in::<D>)
    }

    /// A leaf whose gradient accumulates in F32 whatever `D` is (read it with
    /// [`Gradients::get_f32`]): a BF16 or FP16 parameter then loses nothing when many
    /// small gradient contributions add up.
    pub fn leaf_f32_grad<D: Dtype>(&self, value: Tensor<D>) -> Var<D> {
        self.new_leaf(value, true, accumulate_in_f32::<D>)
    }

    /// A value that never receives gradients (inputs, labels, masks turned to values).
    pub fn constant<D: Dtype>(&self, value: Tensor<D>) -> Var<D> {
        self.new_leaf(value, false, accumulate_in::<D>)
    }

    fn new_leaf<D: Dtype>(
        &self,
        value: Tensor<D>,
        requires_grad: bool,
        accumulate: crate::tape::AccumulateFn,
    ) -> Var<D> {
        let id = self.push(Node {
            op: if requires_grad { "leaf" } else { "constant" },
            inputs: Vec::new(),
            dtype: D::DTYPE,
            is_leaf: true,
            requires_grad,
            backward: None,
            consumed: false,
            saved: Vec::new(),
            accumulate,
            cast: None,
            scope: None,
        });
        Var {
            tape: self.clone(),
            id,
            value,
            requires_grad,
        }
    }

    /// Records an op's output. `rule` gets the output gradient and returns input
    /// gradients; it is dropped unused (freeing what it saved) when no input requires
    /// gradients or recording is off.
    pub(crate) fn record<D: Dtype>(
        &self,
        value: Tensor<D>,
        rec: Record,
        rule: impl FnOnce(Tensor<D>) -> Result<Vec<(NodeId, AnyGrad)>> + Send + 'static,
    ) -> Var<D> {
        let requires_grad = rec.requires_grad && self.is_recording();
        let backward: Option<crate::tape::BackwardFn> = if requires_grad {
            Some(Box::new(move |g: AnyGrad| {
                rule(crate::tape::downcast::<D>(g))
            }))
        } else {
            None
        };
        let id = self.push(Node {
            op: rec.op,
            inputs: rec.inputs,
            dtype: D::DTYPE,
            is_leaf: false,
            requires_grad,
            backward,
            consumed: false,
            saved: if requires_grad { rec.saved } else { Vec::new() },
            accumulate: accumulate_in::<D>,
            cast: rec.cast,
            scope: None,
        });
        Var {
            tape: self.clone(),
            id,
            value,
            requires_grad,
        }
    }
}

impl<D: Dtype> Var<D> {
    /// The current value.
    pub fn value(&self) -> &Tensor<D> {
        &self.value
    }

    /// The value's shape.
    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    /// This var's node on its tape.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The tape this var lives on.
    pub fn tape(&self) -> &Tape {
        &self.tape
    }

    /// True when gradients flow to this var.
    pub fn requires_grad(&self) -> bool {
        self.requires_grad
    }

    /// The same value as a constant: no gradient flows through it.
    pub fn detach(&self) -> Var<D> {
        self.tape.constant(self.value.clone())
    }

    /// Backward from a scalar (one-element) value, seeded with 1. Returns the gradients
    /// of every leaf that requires them.
    pub fn backward(&self) -> Result<Gradients> {
        self.backward_with(self.scalar_seed()?)
    }

    /// The seed 1 of a one-element value; errors for any other shape.
    fn scalar_seed(&self) -> Result<Tensor<D>> {
        if self.value.numel() != 1 {
            return Err(Error::NotScalar {
                shape: self.shape().to_vec(),
            });
        }
        Ok(Tensor::<D>::ones(self.shape()))
    }

    /// Backward seeded with an explicit gradient of the value's shape.
    pub fn backward_with(&self, seed: Tensor<D>) -> Result<Gradients> {
        if seed.shape() != self.shape() {
            return Err(Error::SeedShape {
                expected: self.shape().to_vec(),
                got: seed.shape().to_vec(),
            });
        }
        if !self.requires_grad {
            return Ok(Gradients::default());
        }
        self.tape.backward_from(self.id, Box::new(seed), None)
    }

    /// [`Var::backward`], calling `on_final` with each leaf's gradient as soon as it is
    /// final — once backward has run the leaf's earliest use (every op declares its
    /// inputs, so nothing after can add to it), before the ops recorded ahead of that
    /// use — so work on finished gradients (a data-parallel exchange) can start while
    /// backward goes on; PyTorch's post-accumulate-grad hooks. Leaves come in the
    /// reverse order of their first use in forward (leaves first used by one op: in the
    /// order they were made). A leaf no gradient reaches is not reported.
    /// The hook runs on the calling thread with the tape unlocked; it should be quick
    /// (hand the tensor, which shares its storage, to another thread).
    ///
    /// ```
    /// use mixprec_autograd::Tape;
    /// use mixprec_dtype::F32;
    /// use mixprec_tensor::Tensor;
    /// let tape = Tape::new();
    /// let a = tape.leaf(Tensor::<F32>::from_f32(&[2.0], &[1]).unwrap());
    /// let b = tape.leaf(Tensor::<F32>::from_f32(&[3.0], &[1]).unwrap());
    /// let x = tape.constant(Tensor::<F32>::from_f32(&[2.0], &[1]).unwrap());
    /// // Layer 1 uses `a`, layer 2 uses `b`: `b` is final first.
    /// let loss = x.mul(&a).unwrap().mul(&b).unwrap().sum_all();
    /// let mut order = Vec::new();
    /// loss.backward_with_leaf_hook(&mut |g| order.push((g.id(), g.get::<F32>().unwrap().item().unwrap())))
    ///     .unwrap();
    /// // d loss / d b = x a = 4; d loss / d a = x b = 6.
    /// assert_eq!(order, vec![(b.id(), 4.0), (a.id(), 6.0)]);
    /// ```
    pub fn backward_with_leaf_hook(
        &self,
        on_final: &mut dyn FnMut(crate::tape::LeafGrad<'_>),
    ) -> Result<Gradients> {
        let seed = self.scalar_seed()?;
        if !self.requires_grad {
            return Ok(Gradients::default());
        }
        self.tape
            .backward_from(self.id, Box::new(seed), Some(on_final))
    }

    /// Errors unless `other` is on the same tape.
    pub(crate) fn same_tape<T: Dtype>(&self, op: &'static str, other: &Var<T>) -> Result<()> {
        if self.tape.same(&other.tape) {
            Ok(())
        } else {
            Err(Error::DifferentTapes { op })
        }
    }
}
