//! The backend contract: the primitives every device implements, and the one dispatch
//! from an op's front to the device that holds its operands.
//!
//! An op is written in two halves. Its **front** (`src/ops/<op>.rs`, public, documented)
//! does the device-independent work: checks shapes, parameters and that every operand is
//! on one device, then makes **one call** into the backend of that device through
//! [`on_device!`]. The **backend** computes: [`Cpu`](crate::cpu::Cpu) runs the CPU engine
//! (`src/cpu/`, with each op's CPU kernel beside its front as `Tensor::<op>_on_cpu`), and
//! [`CudaBackend`](cuda::CudaBackend) is where a GPU's kernels plug in. Parameterised
//! families take their op as data (`UnaryOp`, `BinaryOp`, `CompareOp`, `ReduceOp`,
//! `ArgReduceOp`, `RowOp`, `IndexOp`, `PoolOp`), and every primitive has a device kernel
//! name ([`Primitive::kernel`], or the op enum's `kernel()` for a family): the one typed
//! table a device looks its kernels up in.
//!
//! The trait's methods are generic over the element types, so a backend is a type, not
//! a trait object: [`on_device!`] matches the device once and calls the method on the
//! backend of that arm (each arm is its own monomorphic call; no dynamic dispatch).
//! A backend may assume its front's checks passed (shapes broadcast, axes in range, ids
//! in bounds, one device); the CPU engine re-derives what it needs from the layouts.
//!
//! Constructors (`zeros`, `from_f32`, ...) make host tensors, and reading values back
//! (`to_f32_vec`, `item`, `to_le_bytes`) reads host storage: [`Tensor::to_device`] moves
//! a tensor between devices. `map`/`zip_map` with user closures are CPU conveniences
//! (a closure cannot run on a device).

pub(crate) mod cuda;
mod primitive;

pub use primitive::Primitive;

use crate::error::Result;
use crate::mask::{Indices, Mask};
use crate::ops::{
    AdamWStep, ArgReduceOp, BinaryOp, CastOptions, CastReport, CompareOp, Conv2dParams, IndexOp,
    LayerNormGrads, Pool2dParams, PoolOp, ReduceOp, RowOp, SgdStep, UnaryOp,
};
use crate::tensor::Tensor;
use mixprec_dtype::{Dtype, F32};

/// The gradients of a 2-D convolution: `(d_input, d_weight, d_bias)`.
pub(crate) type Conv2dGrads<D> = (Tensor<D>, Tensor<D>, Tensor<D>);

/// The primitives every device implements. Each method is called by its op's front after
/// the front's checks (see the module docs); each returns its result on the same device.
pub(crate) trait Backend {
    // --- element-wise (`ops/unary.rs`, `binary.rs`, `compare.rs`, `select.rs`,
    // `dropout.rs`, `gelu.rs`) ---

    /// [`Tensor::unary`].
    fn unary<D: Dtype>(&self, op: UnaryOp, x: &Tensor<D>) -> Result<Tensor<D>>;
    /// [`Tensor::unary_backward`].
    fn unary_backward<D: Dtype>(
        &self,
        op: UnaryOp,
        saved: &Tensor<D>,
        g: &Tensor<D>,
    ) -> Result<Tensor<D>>;
    /// [`Tensor::try_gelu_with_derivative`].
    fn gelu_with_derivative(&self, x: &Tensor<F32>) -> Result<(Tensor<F32>, Tensor<F32>)>;
    /// [`Tensor::binary`] (NumPy broadcasting).
    fn binary<D: Dtype>(&self, op: BinaryOp, a: &Tensor<D>, b: &Tensor<D>) -> Result<Tensor<D>>;
    /// [`Tensor::binary_scalar`].
    fn binary_scalar<D: Dtype>(&self, op: BinaryOp, a: &Tensor<D>, s: f64) -> Result<Tensor<D>>;
    /// [`Tensor::compare`] (NumPy broadcasting).
    fn compare<D: Dtype>(&self, op: CompareOp, a: &Tensor<D>, b: &Tensor<D>) -> Result<Mask>;
    /// [`Tensor::compare_scalar`].
    fn compare_scalar<D: Dtype>(&self, op: CompareOp, a: &Tensor<D>, s: f64) -> Result<Mask>;
    /// [`Tensor::where_cond`].
    fn where_cond<D: Dtype>(
        &self,
        x: &Tensor<D>,
        mask: &Mask,
        other: &Tensor<D>,
    ) -> Result<Tensor<D>>;
    /// [`Tensor::masked_fill`].
    fn masked_fill<D: Dtype>(&self, x: &Tensor<D>, mask: &Mask, value: f64) -> Result<Tensor<D>>;
    /// [`Tensor::dropout_with_mask`].
    fn dropout_with_mask<D: Dtype>(&self, x: &Tensor<D>, keep: &Mask, p: f64) -> Result<Tensor<D>>;

    // --- reductions (`ops/reduce.rs`, `reduce_op.rs`) ---

    /// [`Tensor::reduce`].
    fn reduce<D: Dtype>(
        &self,
        op: ReduceOp,
        x: &Tensor<D>,
        axes: &[isize],
        keepdim: bool,
    ) -> Result<Tensor<D>>;
    /// [`Tensor::arg_reduce`].
    fn arg_reduce<D: Dtype>(
        &self,
        op: ArgReduceOp,
        x: &Tensor<D>,
        axis: isize,
        keepdim: bool,
    ) -> Result<Indices>;
    /// [`Tensor::abs_max`] (FP8 scaling's amax), errors naming `op`.
    fn abs_max<D: Dtype>(&self, op: &'static str, x: &Tensor<D>) -> Result<D::Acc>;
    /// [`Tensor::all_finite`] (the loss scaler's non-finite check).
    fn all_finite<D: Dtype>(&self, x: &Tensor<D>) -> Result<bool>;
    /// [`Tensor::unscale_checked`]: the loss scaler's fused unscale and non-finite check.
    fn unscale_checked(&self, g: &Tensor<F32>, inv_scale: f32) -> Result<(Tensor<F32>, bool)>;
    /// [`Tensor::norm_l2`] (gradient clipping's norm).
    fn norm_l2<D: Dtype>(&self, x: &Tensor<D>) -> Result<D::Acc>;

    // --- casts and products (`ops/cast.rs`, `matmul.rs`) ---

    /// [`Tensor::cast_with`]: the cast with its report.
    fn cast<S: Dtype, T: Dtype>(
        &self,
        x: &Tensor<S>,
        opts: CastOptions,
    ) -> Result<(Tensor<T>, CastReport)>;
    /// [`Tensor::matmul_as`] (and `matmul`, `matmul_bias`: the bias `[n]` is added in
    /// the accumulator before the one rounding into `O`). `op` names the calling op in
    /// errors.
    fn matmul<A: Dtype, B: Dtype, O: Dtype>(
        &self,
        op: &'static str,
        a: &Tensor<A>,
        b: &Tensor<B>,
        bias: Option<&Tensor<O>>,
    ) -> Result<Tensor<O>>;

    // --- rows (`ops/softmax.rs`, `layer_norm.rs`, `cross_entropy.rs`) ---

    /// [`Tensor::softmax`] / [`Tensor::log_softmax`].
    fn row_op<D: Dtype>(&self, op: RowOp, x: &Tensor<D>, axis: isize) -> Result<Tensor<D>>;
    /// [`Tensor::softmax_backward`] / [`Tensor::log_softmax_backward`].
    fn row_op_backward<D: Dtype>(
        &self,
        op: RowOp,
        y: &Tensor<D>,
        g: &Tensor<D>,
        axis: isize,
    ) -> Result<Tensor<D>>;
    /// [`Tensor::layer_norm`].
    fn layer_norm<D: Dtype>(
        &self,
        x: &Tensor<D>,
        normalized_shape: &[usize],
        weight: Option<&Tensor<D>>,
        bias: Option<&Tensor<D>>,
        eps: f64,
    ) -> Result<Tensor<D>>;
    /// [`Tensor::layer_norm_backward`].
    fn layer_norm_backward<D: Dtype>(
        &self,
        x: &Tensor<D>,
        g: &Tensor<D>,
        n: usize,
        weight: Option<&Tensor<D>>,
        eps: f64,
    ) -> Result<LayerNormGrads<D>>;
    /// [`Tensor::cross_entropy`].
    fn cross_entropy<D: Dtype>(&self, logits: &Tensor<D>, labels: &Indices) -> Result<Tensor<D>>;
    /// [`Tensor::cross_entropy_backward`].
    fn cross_entropy_backward<D: Dtype>(
        &self,
        logits: &Tensor<D>,
        labels: &Indices,
        grad: &Tensor<D>,
    ) -> Result<Tensor<D>>;

    // --- indexing (`ops/index.rs`) ---

    /// [`Tensor::index_select`] / [`Tensor::gather`].
    fn index<D: Dtype>(
        &self,
        op: IndexOp,
        x: &Tensor<D>,
        axis: isize,
        ids: &Indices,
    ) -> Result<Tensor<D>>;
    /// [`Tensor::index_select_backward`] (index-add) / [`Tensor::gather_backward`]
    /// (scatter-add).
    fn index_backward<D: Dtype>(
        &self,
        op: IndexOp,
        g: &Tensor<D>,
        input_shape: &[usize],
        axis: isize,
        ids: &Indices,
    ) -> Result<Tensor<D>>;

    // --- windows (`ops/conv2d/`, `ops/pool/`) ---

    /// [`Tensor::conv2d`].
    fn conv2d<D: Dtype>(
        &self,
        x: &Tensor<D>,
        weight: &Tensor<D>,
        bias: Option<&Tensor<D>>,
        p: Conv2dParams,
    ) -> Result<Tensor<D>>;
    /// [`Tensor::conv2d_backward`].
    fn conv2d_backward<D: Dtype>(
        &self,
        x: &Tensor<D>,
        weight: &Tensor<D>,
        grad: &Tensor<D>,
        p: Conv2dParams,
    ) -> Result<Conv2dGrads<D>>;
    /// [`Tensor::max_pool2d`] / [`Tensor::avg_pool2d`].
    fn pool2d<D: Dtype>(&self, op: PoolOp, x: &Tensor<D>, p: Pool2dParams) -> Result<Tensor<D>>;
    /// [`Tensor::max_pool2d_backward`] / [`Tensor::avg_pool2d_backward`].
    fn pool2d_backward<D: Dtype>(
        &self,
        op: PoolOp,
        x: &Tensor<D>,
        grad: &Tensor<D>,
        p: Pool2dParams,
    ) -> Result<Tensor<D>>;

    // --- fused optimizer updates, in place (`ops/optimizer/`) ---

    /// [`Tensor::adamw_update`].
    fn adamw_update(
        &self,
        param: &mut Tensor<F32>,
        grad: &Tensor<F32>,
        m: &mut Tensor<F32>,
        v: &mut Tensor<F32>,
        max_v: Option<&mut Tensor<F32>>,
        h: AdamWStep,
    ) -> Result<()>;
    /// [`Tensor::sgd_update`].
    fn sgd_update(
        &self,
        param: &mut Tensor<F32>,
        grad: &Tensor<F32>,
        momentum_buffer: Option<&mut Tensor<F32>>,
        h: SgdStep,
    ) -> Result<()>;

    // --- data movement (`ops/views.rs`, `concat.rs`) ---

    /// [`Tensor::try_contiguous`]: a contiguous copy of a strided view, errors naming
    /// `op`.
    fn contiguous<D: Dtype>(&self, op: &'static str, x: &Tensor<D>) -> Result<Tensor<D>>;
    /// [`Tensor::concat`].
    fn concat<D: Dtype>(&self, tensors: &[&Tensor<D>], axis: isize) -> Result<Tensor<D>>;
    /// [`Tensor::pad_axis`].
    fn pad_axis<D: Dtype>(
        &self,
        x: &Tensor<D>,
        axis: isize,
        before: usize,
        after: usize,
    ) -> Result<Tensor<D>>;
    /// [`Tensor::add_narrow`].
    fn add_narrow<D: Dtype>(
        &self,
        x: Tensor<D>,
        axis: isize,
        start: usize,
        src: &Tensor<D>,
    ) -> Result<Tensor<D>>;
}

/// Calls `$call` with `$b` bound to the backend of `$device`: the one dispatch of an
/// op's front. Each arm is a separate, monomorphic call.
macro_rules! on_device {
    ($device:expr, $b:ident => $call:expr) => {
        match $device {
            $crate::storage::Device::Cpu => {
                use $crate::backend::Backend as _;
                let $b = &$crate::cpu::Cpu;
                $call
            }
            $crate::storage::Device::Cuda(ordinal) => {
                use $crate::backend::Backend as _;
                let $b = &$crate::backend::cuda::CudaBackend::new(ordinal);
                $call
            }
        }
    };
}
pub(crate) use on_device;
