//! [`Tape`]: the record of every op on tracked values, and the backward pass over it.
//!
//! Nodes are appended in execution order, so their ids are a topological order: backward
//! walks ids downward from the root. Each node's backward rule is a closure that owns
//! the tensors it saved; running it consumes it, so saved tensors are freed as soon as
//! backward has used them. Gradients are type-erased (`Box<dyn Any>`) because one tape
//! holds values of several precisions; every rule knows its own types and downcasts.

use crate::error::{Error, Result};
use crate::grads::Gradients;
use mixprec_dtype::{DType, Dtype};
use mixprec_tensor::{CastReport, Tensor};
use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard};

/// Index of a node on its tape.
pub type NodeId = usize;

/// A leaf's gradient at the moment backward has made it final
/// ([`crate::Var::backward_with_leaf_hook`]): no later contribution will be added to it.
pub struct LeafGrad<'a> {
    id: NodeId,
    grad: &'a AnyGrad,
}

impl std::fmt::Debug for LeafGrad<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LeafGrad(leaf {})", self.id)
    }
}

impl LeafGrad<'_> {
    /// The leaf's node id ([`crate::Var::id`]).
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The gradient as a tensor of `D`: the leaf's own type, or F32 for a leaf that
    /// accumulates in F32; `None` for another type.
    pub fn get<D: Dtype>(&self) -> Option<&Tensor<D>> {
        self.grad.downcast_ref::<Tensor<D>>()
    }
}

/// A gradient of any precision.
pub(crate) type AnyGrad = Box<dyn Any + Send + Sync>;

/// A backward rule: receives the gradient of the node's output and returns gradients
/// for (some of) its inputs.
pub(crate) type BackwardFn = Box<dyn FnOnce(AnyGrad) -> Result<Vec<(NodeId, AnyGrad)>> + Send>;

/// Adds an incoming gradient to a node's accumulated one (typed per node).
pub(crate) type AccumulateFn = fn(Option<AnyGrad>, AnyGrad) -> Result<AnyGrad>;

pub(crate) struct Node {
    pub op: &'static str,
    /// The nodes its backward rule may send gradients to.
    pub inputs: Vec<NodeId>,
    pub dtype: DType,
    pub is_leaf: bool,
    pub requires_grad: bool,
    pub backward: Option<BackwardFn>,
    pub consumed: bool,
    /// Bytes saved for backward, by dtype (released when the rule runs).
    pub saved: Vec<crate::saved::Saved>,
    pub accumulate: AccumulateFn,
    pub cast: Option<CastSite>,
    /// The [`Tape::scope`] path the node was recorded in (set by `push`).
    pub scope: Option<Arc<str>>,
}

/// A cast node's counts: the forward cast's, and the backward cast's (the gradient cast
/// back to the source precision), filled in when backward runs.
pub(crate) struct CastSite {
    pub forward: CastReport,
    pub backward: Arc<Mutex<Option<CastReport>>>,
}

#[derive(Default)]
pub(crate) struct Inner {
    pub nodes: Vec<Node>,
    pub no_grad: usize,
    /// Bytes currently saved for backward, indexed by `DType::index`.
    pub saved_bytes: [usize; DType::COUNT],
    pub peak_saved_bytes: [usize; DType::COUNT],
    /// Open scopes, each entry the full path (`"block0/attn"`).
    pub scopes: Vec<Arc<str>>,
    /// Saved storages and how many unconsumed rules hold each.
    pub holders: std::collections::HashMap<usize, usize>,
    /// Storages kept out of the saved count (kept alive here so ids stay unique).
    pub excluded: std::collections::HashMap<usize, Box<dyn Any + Send>>,
}

/// The record of a computation. Cheap to clone (shared); values made on one tape cannot
/// be combined with values of another.
#[derive(Clone, Default)]
pub struct Tape(pub(crate) Arc<Mutex<Inner>>);

impl std::fmt::Debug for Tape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tape({} nodes)", self.lock().nodes.len())
    }
}

/// A gradient that is zero outside `start..start + len` of `axis` (what `narrow`'s rule
/// returns): accumulating it adds `grad` into that range of the accumulated gradient,
/// without building the zero-padded tensor unless it is the first contribution.
pub(crate) struct NarrowGrad<D: Dtype> {
    pub grad: Tensor<D>,
    pub axis: usize,
    pub start: usize,
    /// Size of `axis` in the full gradient.
    pub full: usize,
}

impl<D: Dtype> NarrowGrad<D> {
    /// The zero-padded gradient.
    fn padded(&self) -> Result<Tensor<D>> {
        let len = self.grad.shape()[self.axis];
        let after = self.full - self.start - len;
        Ok(self.grad.pad_axis(self.axis as isize, self.start, after)?)
    }
}

/// A gradient box as a tensor of `D` or a [`NarrowGrad`] of `D`.
enum Incoming<D: Dtype> {
    Full(Tensor<D>),
    Narrow(NarrowGrad<D>),
}

fn incoming<D: Dtype>(g: AnyGrad) -> std::result::Result<Incoming<D>, AnyGrad> {
    match g.downcast::<Tensor<D>>() {
        Ok(t) => Ok(Incoming::Full(*t)),
        Err(g) => g.downcast::<NarrowGrad<D>>().map(|n| Incoming::Narrow(*n)),
    }
}

/// `acc + g`, in `acc`'s storage when nothing else holds it (one rounding per addition
/// either way).
fn add_grads<D: Dtype>(acc: Tensor<D>, g: &Tensor<D>) -> Result<Tensor<D>> {
    if acc.rank() > 0 && acc.shape() == g.shape() {
        Ok(acc.add_narrow(0, 0, g)?)
    } else {
        Ok(acc.add(g)?)
    }
}

/// The non-zero entries of per-dtype byte counts (indexed by `DType::index`).
fn by_dtype(bytes: [usize; DType::COUNT]) -> Vec<(DType, usize)> {
    DType::ALL
        .iter()
        .zip(bytes)
        .filter(|(_, b)| *b > 0)
        .map(|(&d, b)| (d, b))
        .collect()
}

/// Typed accumulation: `acc + g` in `D` (one rounding per addition).
pub(crate) fn accumulate_in<D: Dtype>(acc: Option<AnyGrad>, g: AnyGrad) -> Result<AnyGrad> {
    let g = incoming::<D>(g)
        .unwrap_or_else(|_| panic!("internal: gradient is not a Tensor<{}>", D::NAME));
    let acc = acc.map(downcast::<D>);
    Ok(Box::new(match (acc, g) {
        (None, Incoming::Full(g)) => g,
        (None, Incoming::Narrow(n)) => n.padded()?,
        (Some(a), Incoming::Full(g)) => add_grads(a, &g)?,
        (Some(a), Incoming::Narrow(n)) => a.add_narrow(n.axis as isize, n.start, &n.grad)?,
    }))
}

/// Accumulation of `D` gradients in F32 (for leaves that ask for it).
pub(crate) fn accumulate_in_f32<D: Dtype>(acc: Option<AnyGrad>, g: AnyGrad) -> Result<AnyGrad> {
    let g: Tensor<mixprec_dtype::F32> = match incoming::<D>(g) {
        Ok(Incoming::Full(t)) => t.cast(),
        Ok(Incoming::Narrow(n)) => n.padded()?.cast(),
        Err(g) => *g
            .downcast::<Tensor<mixprec_dtype::F32>>()
            .expect("gradient of the leaf's type or F32"),
    };
    Ok(Box::new(match acc {
        None => g,
        Some(a) => add_grads(downcast::<mixprec_dtype::F32>(a), &g)?,
    }))
}

/// The tensor inside a gradient box. Rules are typed, so a mismatch is a bug here.
pub(crate) fn downcast<D: Dtype>(g: AnyGrad) -> Tensor<D> {
    *g.downcast::<Tensor<D>>()
        .unwrap_or_else(|_| panic!("internal: gradient is not a Tensor<{}>", D::NAME))
}

impl Tape {
    /// A new, empty tape.
    pub fn new() -> Tape {
        Tape::default()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True when both handles are the same tape.
    pub fn same(&self, other: &Tape) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Number of recorded nodes (leaves, constants and ops).
    pub fn len(&self) -> usize {
        self.lock().nodes.len()
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when `id` is a leaf (a parameter or a constant) of this tape.
    pub fn is_leaf(&self, id: NodeId) -> bool {
        self.lock().nodes.get(id).is_some_and(|n| n.is_leaf)
    }

    /// False inside [`Tape::no_grad`].
    pub fn is_recording(&self) -> bool {
        self.lock().no_grad == 0
    }

    /// Runs `f` without recording: values made inside do not require gradients and
    /// save nothing.
    pub fn no_grad<R>(&self, f: impl FnOnce() -> R) -> R {
        self.lock().no_grad += 1;
        struct Restore<'a>(&'a Tape);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.lock().no_grad -= 1;
            }
        }
        let _restore = Restore(self);
        f()
    }

    /// Bytes currently saved for backward, by dtype (only dtypes with saved bytes).
    pub fn saved_bytes(&self) -> Vec<(DType, usize)> {
        by_dtype(self.lock().saved_bytes)
    }

    /// Runs `f` with nodes recorded under `name` (nested scopes join with `/`), so that
    /// reports can say which layer a cast point or an op belongs to.
    ///
    /// ```
    /// use mixprec_autograd::Tape;
    /// use mixprec_dtype::{Bf16, F32};
    /// use mixprec_tensor::Tensor;
    /// let tape = Tape::new();
    /// let w = tape.leaf(Tensor::<F32>::ones(&[2]));
    /// tape.scope("encoder", || tape.scope("fc1", || w.cast::<Bf16>()));
    /// assert_eq!(tape.report().casts[0].scope.as_deref(), Some("encoder/fc1"));
    /// ```
    pub fn scope<R>(&self, name: &str, f: impl FnOnce() -> R) -> R {
        {
            let mut inner = self.lock();
            let path: Arc<str> = match inner.scopes.last() {
                Some(outer) => format!("{outer}/{name}").into(),
                None => name.into(),
            };
            inner.scopes.push(path);
        }
        struct Pop<'a>(&'a Tape);
        impl Drop for Pop<'_> {
            fn drop(&mut self) {
                self.0.lock().scopes.pop();
            }
        }
        let _pop = Pop(self);
        f()
    }

    /// The innermost open scope's path.
    pub fn current_scope(&self) -> Option<Arc<str>> {
        self.lock().scopes.last().cloned()
    }

    /// The scope path node `id` was recorded in.
    pub fn scope_of(&self, id: NodeId) -> Option<Arc<str>> {
        self.lock().nodes.get(id).and_then(|n| n.scope.clone())
    }

    /// The most bytes saved for backward at once so far, by precision (cheap: no report).
    pub fn peak_saved_bytes(&self) -> Vec<(DType, usize)> {
        by_dtype(self.lock().peak_saved_bytes)
    }

    /// Appends a node; returns its id.
    pub(crate) fn push(&self, mut node: Node) -> NodeId {
        let mut inner = self.lock();
        node.scope = inner.scopes.last().cloned();
        for s in &node.saved {
            inner.hold(s);
        }
        inner.nodes.push(node);
        inner.nodes.len() - 1
    }

    /// Runs backward from `root` with gradient `seed` (of the root's type). `on_final`
    /// sees each leaf's gradient as soon as it is final: once the walk (from the last
    /// node down) has run the leaf's earliest consumer — nodes are in execution order
    /// and every rule declares the inputs it may send gradients to, so nothing below
    /// can add to it. Called with the tape unlocked.
    pub(crate) fn backward_from(
        &self,
        root: NodeId,
        seed: AnyGrad,
        mut on_final: Option<&mut dyn FnMut(LeafGrad<'_>)>,
    ) -> Result<Gradients> {
        let mut inner = self.lock();
        let mut grads: Vec<Option<AnyGrad>> = (0..=root).map(|_| None).collect();
        grads[root] = Some(seed);
        let final_after = match on_final {
            Some(_) => final_after(&inner.nodes[..=root]),
            None => Vec::new(),
        };
        let mut reported = vec![false; if on_final.is_some() { root + 1 } else { 0 }];
        let mut out = Gradients::default();
        for id in (0..=root).rev() {
            if let Some(g) = grads[id].take() {
                let node = &mut inner.nodes[id];
                if node.is_leaf {
                    if node.requires_grad {
                        if let Some(hook) = on_final.as_deref_mut()
                            && !reported[id]
                        {
                            drop(inner);
                            hook(LeafGrad { id, grad: &g });
                            inner = self.lock();
                        }
                        out.insert(id, g);
                    }
                    continue;
                }
                if node.consumed {
                    return Err(Error::BackwardTwice { op: node.op });
                }
                if let Some(rule) = node.backward.take() {
                    node.consumed = true;
                    let (op, inputs) = (node.op, std::mem::take(&mut node.inputs));
                    let freed = std::mem::take(&mut node.saved);
                    for s in &freed {
                        inner.release(s);
                    }
                    for (input, ig) in rule(g)? {
                        if !inputs.contains(&input) || reported.get(input) == Some(&true) {
                            return Err(Error::invalid(
                                op,
                                format!(
                                    "the backward rule sent a gradient to node {input}, which it did not declare as an input"
                                ),
                            ));
                        }
                        let acc = inner.nodes[input].accumulate;
                        grads[input] = Some(acc(grads[input].take(), ig)?);
                    }
                }
            }
            // Leaves whose earliest consumer was `id`: nothing more can reach them.
            if let (Some(hook), Some(leaves)) = (on_final.as_deref_mut(), final_after.get(id))
                && leaves.iter().any(|&l| grads[l].is_some())
            {
                drop(inner);
                for &leaf in leaves {
                    if let Some(g) = &grads[leaf] {
                        hook(LeafGrad { id: leaf, grad: g });
                        reported[leaf] = true;
                    }
                }
                inner = self.lock();
            }
        }
        Ok(out)
    }
}

/// For each node `k` of `nodes`, the leaves (requiring gradients) whose earliest consumer
/// with a backward rule is `k`: their gradients are final once `k`'s rule has run.
fn final_after(nodes: &[Node]) -> Vec<Vec<NodeId>> {
    let mut first: Vec<Option<NodeId>> = vec![None; nodes.len()];
    for (k, node) in nodes.iter().enumerate() {
        if node.backward.is_none() {
            continue;
        }
        for &i in &node.inputs {
            if nodes[i].is_leaf && nodes[i].requires_grad && first[i].is_none() {
                first[i] = Some(k);
            }
        }
    }
    let mut after = vec![Vec::new(); nodes.len()];
    for (leaf, k) in first.into_iter().enumerate() {
        if let Some(k) = k {
            after[k].push(leaf);
        }
    }
    after
}
