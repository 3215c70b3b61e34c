//! [`Autocast`]: op functions that apply a [`Policy`] — PyTorch autocast's cast rules,
//! decided by types instead of a thread-local op list.
//!
//! Rules (PyTorch's five, as they apply here):
//! 1. GEMM-class ops (`matmul`, `linear`) cast their inputs to `P::GemmFwd` and return
//!    `P::Activation`. With an FP8 `GemmFwd` the operands are quantised with per-tensor
//!    scales (E4M3 forward), the output gradient is quantised to `P::GemmBwd` (E5M2) for
//!    both backward GEMMs, and gradients reach the inputs in their own precision.
//! 2. Precision-sensitive ops (`softmax`, `log_softmax`, `layer_norm`, `cross_entropy`) cast
//!    to `P::Sensitive` (F32 or F64: the type system forbids less). Widening casts are
//!    exact, so this equals PyTorch's "compute in F32 without casting the input".
//! 3. Element-wise activations (`relu`, `gelu`, `silu`, ...) run in `P::Activation`.
//! 4. F64 values pass through a sensitive op unchanged when `P::Sensitive` is F64.
//! 5. Binary element-wise ops between two precisions (`add`, `mul`) promote to the wider
//!    one ([`Promote`]; BF16 with F16 meets in F32, as in PyTorch).
//! 6. Casts of parameters (leaves) are made once per step and kept in a
//!    [`ComputeCopies`] table keyed by parameter: an `Autocast` has its own, and the
//!    autocasts of one step's layers share one ([`Autocast::sharing`]), so a weight used
//!    by two layers is cast once. Make new ones after each optimizer step (the cache is
//!    not process-wide, the root of several PyTorch bugs).
//!
//! Every cast is a node on the tape, so `tape.report()` shows where precision changed.

use crate::copies::{ComputeCopies, CopyKey};
use crate::fp8::{Fp8Role, Fp8Scaling};
use crate::policy::Policy;
use mixprec_autograd::{InputGrad, Result, Saved, Tape, Var};
use mixprec_dtype::{Acc, DType, Dtype, Promote};
use mixprec_tensor::{CastOptions, Conv2dParams, Indices, Tensor};
use std::any::Any;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Applies policy `P` to the ops of one step on one tape.
pub struct Autocast<P: Policy> {
    tape: Tape,
    /// FP8 scaling state across steps (`None`: stateless current scaling).
    fp8: Option<Fp8Scaling>,
    /// FP8 GEMMs run so far this step (the GEMM's key in `fp8`).
    fp8_gemms: AtomicUsize,
    /// The step's compute copies (own, or shared with the step's other autocasts).
    copies: ComputeCopies,
    _policy: PhantomData<P>,
}

impl<P: Policy> std::fmt::Debug for Autocast<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Autocast")
            .field("policy", &P::name())
            .field("fp8", &self.fp8.as_ref().map(Fp8Scaling::recipe))
            .field("fp8_gemms", &self.fp8_gemms.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<P: Policy> Autocast<P> {
    /// Autocast for one step on `tape`. FP8 GEMMs (if `P` has them) use stateless current
    /// scaling; use [`Autocast::with_fp8`] for Transformer Engine's delayed scaling.
    pub fn new(tape: &Tape) -> Self {
        Self::build(tape, None)
    }

    /// Autocast for one step whose FP8 GEMMs quantise with `fp8`'s recipe and state (kept
    /// by the caller across steps; call [`Fp8Scaling::update`] once at the end of each
    /// step).
    pub fn with_fp8(tape: &Tape, fp8: &Fp8Scaling) -> Self {
        Self::build(tape, Some(fp8.clone()))
    }

    fn build(tape: &Tape, fp8: Option<Fp8Scaling>) -> Self {
        Autocast {
            tape: tape.clone(),
            fp8,
            fp8_gemms: AtomicUsize::new(0),
            copies: ComputeCopies::new(),
            _policy: PhantomData,
        }
    }

    /// The tape.
    pub fn tape(&self) -> &Tape {
        &self.tape
    }

    /// The FP8 scaling state, when made [`Autocast::with_fp8`].
    pub fn fp8(&self) -> Option<&Fp8Scaling> {
        self.fp8.as_ref()
    }

    /// This autocast keeping its parameter casts in `copies` (the step's one table,
    /// shared with the step's other autocasts) instead of its own.
    pub fn sharing(mut self, copies: &ComputeCopies) -> Self {
        self.copies = copies.clone();
        self
    }

    /// The table of compute copies this autocast uses.
    pub fn copies(&self) -> &ComputeCopies {
        &self.copies
    }

    /// Number of cached parameter casts.
    pub fn cached_casts(&self) -> usize {
        self.copies.len()
    }

    /// Bytes of the cached parameter casts (the step's compute copies), by precision;
    /// same-precision "casts" share storage and count nothing.
    pub fn cached_bytes(&self) -> Vec<(DType, usize)> {
        self.copies.bytes_by_dtype()
    }

    /// Casts `x` to `T`; a parameter's (a leaf's) cast is made once and reused.
    ///
    /// A parameter's compute copy is kept out of the tape's saved-for-backward count
    /// (GEMMs save it, but it is accounted once, as a compute copy, or as the master
    /// weight itself when no cast happens).
    ///
    /// Panics (with the cast's message) only when memory cannot be had;
    /// [`Autocast::try_cast`] returns that as an error.
    pub fn cast<S: Dtype, T: Dtype>(&self, x: &Var<S>) -> Var<T> {
        self.try_cast::<S, T>(x).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Autocast::cast`], or an error when the cast's result cannot be allocated.
    pub fn try_cast<S: Dtype, T: Dtype>(&self, x: &Var<S>) -> Result<Var<T>> {
        if let Some(same) = self.same_precision::<S, T>(x) {
            return Ok(same);
        }
        self.cast_param_or(x, None, |x| Ok(x.cast_with::<T>(CastOptions::default())?.0))
    }

    /// `x` itself when `T` is `S` (and not FP8, whose casts rescale): no cast node, no
    /// cast point, since no precision changes. A parameter used this way (the master
    /// weight itself, under FP32) is kept out of the saved-activation count as well.
    fn same_precision<S: Dtype, T: Dtype>(&self, x: &Var<S>) -> Option<Var<T>> {
        if S::DTYPE != T::DTYPE || T::DTYPE.is_fp8() {
            return None;
        }
        let boxed: Box<dyn Any> = Box::new(x.clone());
        let same = *boxed.downcast::<Var<T>>().ok()?;
        if x.requires_grad() && x.tape().same(&self.tape) && self.is_leaf(x) {
            let key = CopyKey::new::<T>(x.id(), None);
            self.copies.note_same_precision(key, &self.tape, &same);
        }
        Some(same)
    }

    /// Like [`Autocast::cast`], with `make` producing the cast (once per parameter and
    /// step; an FP8 copy quantised with `scaling` once per parameter, step and state).
    fn cast_param_or<S: Dtype, T: Dtype>(
        &self,
        x: &Var<S>,
        scaling: Option<&Fp8Scaling>,
        make: impl FnOnce(&Var<S>) -> Result<Var<T>>,
    ) -> Result<Var<T>> {
        let is_param = x.requires_grad() && x.tape().same(&self.tape) && self.is_leaf(x);
        if !is_param {
            return make(x);
        }
        let key = CopyKey::new::<T>(x.id(), scaling);
        self.copies
            .get_or_make(key, scaling, &self.tape, || make(x))
    }

    fn is_leaf<S: Dtype>(&self, x: &Var<S>) -> bool {
        self.tape.is_leaf(x.id())
    }

    /// GEMM-class product in `P::GemmFwd`, result in `P::Activation`.
    pub fn matmul<A: Dtype, B: Dtype>(&self, a: &Var<A>, b: &Var<B>) -> Result<Var<P::Activation>> {
        self.gemm(a, b, false)
    }

    /// Attention's batched GEMMs (scores `q k^T`, and probabilities times values): as
    /// [`Autocast::matmul`], except under FP8 policies, where they run in `P::Activation`
    /// (Transformer Engine quantises linear layers, not unfused attention).
    pub fn attention_matmul<A: Dtype, B: Dtype>(
        &self,
        a: &Var<A>,
        b: &Var<B>,
    ) -> Result<Var<P::Activation>> {
        if <P::GemmFwd as Dtype>::DTYPE.is_fp8() {
            let (ac, bc) = (
                self.try_cast::<A, P::Activation>(a)?,
                self.try_cast::<B, P::Activation>(b)?,
            );
            return ac.matmul(&bc);
        }
        self.gemm(a, b, false)
    }

    /// `x @ w^T + bias` (PyTorch's `linear`: `w` is `[out, in]`). The weight's cast is
    /// cached, then transposed as a view. With a non-FP8 `P::GemmFwd` the bias is cast to
    /// it too (as PyTorch's autocast casts every input of `linear`) and added inside the
    /// GEMM before its one rounding ([`Var::matmul_bias`]); FP8 GEMMs add it afterwards
    /// in `P::Activation`.
    pub fn linear<A: Dtype>(
        &self,
        x: &Var<A>,
        w: &Var<P::Param>,
        bias: Option<&Var<P::Param>>,
    ) -> Result<Var<P::Activation>> {
        match bias {
            Some(b) if !<P::GemmFwd as Dtype>::DTYPE.is_fp8() => {
                let xc = self.try_cast::<A, P::GemmFwd>(x)?;
                let wc = self
                    .try_cast::<P::Param, P::GemmFwd>(w)?
                    .transpose(-1, -2)?;
                let bc = self.try_cast::<P::Param, P::GemmFwd>(b)?;
                let y = xc.matmul_bias(&wc, &bc)?;
                self.try_cast::<P::GemmFwd, P::Activation>(&y)
            }
            Some(b) => self
                .gemm(x, w, true)?
                .add(&self.try_cast::<P::Param, P::Activation>(b)?),
            None => self.gemm(x, w, true),
        }
    }

    /// `a @ b` (or `a @ b^T`), dispatching to the FP8 path when `P::GemmFwd` is FP8.
    fn gemm<A: Dtype, B: Dtype>(
        &self,
        a: &Var<A>,
        b: &Var<B>,
        transpose_b: bool,
    ) -> Result<Var<P::Activation>> {
        if <P::GemmFwd as Dtype>::DTYPE.is_fp8() {
            return self.fp8_gemm(a, b, transpose_b);
        }
        let (ac, bc) = (
            self.try_cast::<A, P::GemmFwd>(a)?,
            self.try_cast::<B, P::GemmFwd>(b)?,
        );
        let bc = if transpose_b {
            bc.transpose(-1, -2)?
        } else {
            bc
        };
        self.try_cast::<P::GemmFwd, P::Activation>(&ac.matmul(&bc)?)
    }

    /// FP8 GEMM: operands quantised to `P::GemmFwd` with per-tensor scales (cast points on
    /// the tape; current power-of-two scales, or the delayed scales of [`Fp8Scaling`]),
    /// the f32-accumulated product rounded into `P::Activation`; the output gradient
    /// quantised to `P::GemmBwd` for both backward GEMMs, whose results go straight to the
    /// unquantised inputs in their own precision.
    fn fp8_gemm<A: Dtype, B: Dtype>(
        &self,
        a: &Var<A>,
        b: &Var<B>,
        transpose_b: bool,
    ) -> Result<Var<P::Activation>> {
        let gemm = self.fp8_gemms.fetch_add(1, Ordering::Relaxed);
        let (a8, b8) = match &self.fp8 {
            None => (
                self.try_cast::<A, P::GemmFwd>(a)?,
                self.try_cast::<B, P::GemmFwd>(b)?,
            ),
            Some(fp8) => {
                let scope = self.tape.current_scope();
                let a8 = self.cast_param_or(a, Some(fp8), |a| {
                    fp8.quantize::<P::GemmFwd, _, _>(
                        gemm,
                        scope.clone(),
                        Fp8Role::Input,
                        || Ok(a.value().abs_max().to_f32()),
                        |o| a.cast_with::<P::GemmFwd>(o),
                    )
                })?;
                let b8 = self.cast_param_or(b, Some(fp8), |b| {
                    fp8.quantize::<P::GemmFwd, _, _>(
                        gemm,
                        scope.clone(),
                        Fp8Role::Weight,
                        || Ok(b.value().abs_max().to_f32()),
                        |o| b.cast_with::<P::GemmFwd>(o),
                    )
                })?;
                (a8, b8)
            }
        };
        let (qa, qb) = (a8.value().clone(), b8.value().clone());
        let b_op = if transpose_b {
            qb.transpose(-1, -2)?
        } else {
            qb.clone()
        };
        let y = qa.matmul_as::<P::GemmFwd, P::Activation>(&b_op)?;
        let (ha, hb) = (a.handle(), b.handle());
        let saved = vec![Saved::tensor(&qa), Saved::tensor(&qb)];
        let shapes = (a.shape().to_vec(), b.shape().to_vec());
        let fp8 = self.fp8.clone();
        let scope = self.tape.current_scope();
        Ok(self
            .tape
            .custom("fp8_matmul", y, &[ha.into(), hb.into()], saved, move |g| {
                let g8 = match &fp8 {
                    None => g.cast_with::<P::GemmBwd>(CastOptions::default())?.0,
                    Some(fp8) => fp8.quantize::<P::GemmBwd, _, _>(
                        gemm,
                        scope,
                        Fp8Role::Grad,
                        || Ok(g.abs_max().to_f32()),
                        |o| g.cast_with::<P::GemmBwd>(o),
                    )?,
                };
                let mut out = Vec::with_capacity(2);
                if ha.requires_grad() {
                    // dA = G (B_op)^T, with B_op = B^T when transposed.
                    let rhs = if transpose_b {
                        qb.clone()
                    } else {
                        qb.transpose(-1, -2)?
                    };
                    out.push(InputGrad::new(
                        ha,
                        g8.matmul_as::<P::GemmFwd, A>(&rhs)?
                            .sum_to_shape(&shapes.0)?,
                    ));
                }
                if hb.requires_grad() {
                    // dB_op = A^T G; dB = (A^T G)^T = G^T A when B_op = B^T. A 2-D B shared
                    // by every batch entry: one GEMM over all rows (the batch sum in it).
                    let (qa, g8) = if shapes.1.len() == 2 {
                        (fold_rows(&qa)?, fold_rows(&g8)?)
                    } else {
                        (qa.clone(), g8)
                    };
                    let db = if transpose_b {
                        g8.transpose(-1, -2)?.matmul_as::<P::GemmFwd, B>(&qa)?
                    } else {
                        qa.transpose(-1, -2)?.matmul_as::<P::GemmBwd, B>(&g8)?
                    };
                    out.push(InputGrad::new(hb, db.sum_to_shape(&shapes.1)?));
                }
                Ok(out)
            }))
    }

    /// 2-D convolution (`x` NCHW, `w` `[out, in/groups, kh, kw]`) in `P::GemmFwd`, or in
    /// `P::Activation` when `P::GemmFwd` is FP8 (Transformer Engine has no FP8
    /// convolution either); bias added in the same precision; result in `P::Activation`.
    pub fn conv2d<A: Dtype>(
        &self,
        x: &Var<A>,
        w: &Var<P::Param>,
        bias: Option<&Var<P::Param>>,
        params: Conv2dParams,
    ) -> Result<Var<P::Activation>> {
        if <P::GemmFwd as Dtype>::DTYPE.is_fp8() {
            return self.conv2d_in::<A, P::Activation>(x, w, bias, params);
        }
        let y = self.conv2d_in::<A, P::GemmFwd>(x, w, bias, params)?;
        self.try_cast::<P::GemmFwd, P::Activation>(&y)
    }

    fn conv2d_in<A: Dtype, C: Dtype>(
        &self,
        x: &Var<A>,
        w: &Var<P::Param>,
        bias: Option<&Var<P::Param>>,
        params: Conv2dParams,
    ) -> Result<Var<C>> {
        let b = bias.map(|b| self.try_cast::<P::Param, C>(b)).transpose()?;
        self.try_cast::<A, C>(x)?
            .conv2d(&self.try_cast::<P::Param, C>(w)?, b.as_ref(), params)
    }

    /// `a + b` in the wider of the two precisions ([`Promote`], PyTorch's promote rule):
    /// both are cast to it first.
    pub fn add<A: Promote<B>, B: Dtype>(&self, a: &Var<A>, b: &Var<B>) -> Result<Var<A::Output>> {
        self.try_cast::<A, A::Output>(a)?
            .add(&self.try_cast::<B, A::Output>(b)?)
    }

    /// `a * b` in the wider of the two precisions (promote rule).
    pub fn mul<A: Promote<B>, B: Dtype>(&self, a: &Var<A>, b: &Var<B>) -> Result<Var<A::Output>> {
        self.try_cast::<A, A::Output>(a)?
            .mul(&self.try_cast::<B, A::Output>(b)?)
    }

    /// Softmax in `P::Sensitive`.
    pub fn softmax<A: Dtype>(&self, x: &Var<A>, axis: isize) -> Result<Var<P::Sensitive>> {
        self.try_cast::<A, P::Sensitive>(x)?.softmax(axis)
    }

    /// Log-softmax in `P::Sensitive`.
    pub fn log_softmax<A: Dtype>(&self, x: &Var<A>, axis: isize) -> Result<Var<P::Sensitive>> {
        self.try_cast::<A, P::Sensitive>(x)?.log_softmax(axis)
    }

    /// Layer norm in `P::Sensitive`, with parameters in `P::Param`.
    pub fn layer_norm<A: Dtype>(
        &self,
        x: &Var<A>,
        normalized_shape: &[usize],
        weight: Option<&Var<P::Param>>,
        bias: Option<&Var<P::Param>>,
        eps: f64,
    ) -> Result<Var<P::Sensitive>> {
        let w = weight
            .map(|w| self.try_cast::<P::Param, P::Sensitive>(w))
            .transpose()?;
        let b = bias
            .map(|b| self.try_cast::<P::Param, P::Sensitive>(b))
            .transpose()?;
        self.try_cast::<A, P::Sensitive>(x)?.layer_norm(
            normalized_shape,
            w.as_ref(),
            b.as_ref(),
            eps,
        )
    }

    /// Mean cross-entropy in `P::Sensitive`.
    pub fn cross_entropy<A: Dtype>(
        &self,
        logits: &Var<A>,
        labels: &Indices,
    ) -> Result<Var<P::Sensitive>> {
        self.try_cast::<A, P::Sensitive>(logits)?
            .cross_entropy(labels)
    }

    /// ReLU in `P::Activation`.
    pub fn relu<A: Dtype>(&self, x: &Var<A>) -> Var<P::Activation> {
        self.cast::<A, P::Activation>(x).relu()
    }

    /// Exact GELU in `P::Activation`.
    pub fn gelu<A: Dtype>(&self, x: &Var<A>) -> Var<P::Activation> {
        self.cast::<A, P::Activation>(x).gelu()
    }

    /// SiLU in `P::Activation`.
    pub fn silu<A: Dtype>(&self, x: &Var<A>) -> Var<P::Activation> {
        self.cast::<A, P::Activation>(x).silu()
    }
}

/// `t` as a matrix of its rows: `[.., n]` viewed as `[numel / n, n]` (a view when the
/// strides allow it).
fn fold_rows<D: Dtype>(t: &Tensor<D>) -> Result<Tensor<D>> {
    let n = t.shape().last().copied().unwrap_or(1).max(1);
    Ok(t.reshape(&[t.numel() / n, n])?)
}
