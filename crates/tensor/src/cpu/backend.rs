//! [`Cpu`]: the CPU's side of the backend contract. Each primitive calls the op's CPU
//! kernel, which lives beside the op's front as `Tensor::<op>_on_cpu` (so an op's
//! checks, CPU kernel and tests are found in one file); families match their op here,
//! once, outside any loop.

use crate::backend::{Backend, Conv2dGrads};
use crate::error::Result;
use crate::mask::{Indices, Mask};
use crate::ops::{
    AdamWStep, ArgReduceOp, BinaryOp, CastOptions, CastReport, CompareOp, Conv2dParams, IndexOp,
    LayerNormGrads, Pool2dParams, PoolOp, ReduceOp, RowOp, SgdStep, UnaryOp,
};
use crate::tensor::Tensor;
use mixprec_dtype::{Dtype, F32};

/// The CPU backend: host memory, the engines of this module.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cpu;

impl Backend for Cpu {
    fn unary<D: Dtype>(&self, op: UnaryOp, x: &Tensor<D>) -> Result<Tensor<D>> {
        x.unary_on_cpu(op)
    }

    fn unary_backward<D: Dtype>(
        &self,
        op: UnaryOp,
        saved: &Tensor<D>,
        g: &Tensor<D>,
    ) -> Result<Tensor<D>> {
        Tensor::unary_backward_on_cpu(op, saved, g)
    }

    fn gelu_with_derivative(&self, x: &Tensor<F32>) -> Result<(Tensor<F32>, Tensor<F32>)> {
        x.gelu_with_derivative_on_cpu()
    }

    fn binary<D: Dtype>(&self, op: BinaryOp, a: &Tensor<D>, b: &Tensor<D>) -> Result<Tensor<D>> {
        a.binary_on_cpu(op, b)
    }

    fn binary_scalar<D: Dtype>(&self, op: BinaryOp, a: &Tensor<D>, s: f64) -> Result<Tensor<D>> {
        a.binary_scalar_on_cpu(op, s)
    }

    fn compare<D: Dtype>(&self, op: CompareOp, a: &Tensor<D>, b: &Tensor<D>) -> Result<Mask> {
        a.compare_on_cpu(op, b)
    }

    fn compare_scalar<D: Dtype>(&self, op: CompareOp, a: &Tensor<D>, s: f64) -> Result<Mask> {
        a.compare_scalar_on_cpu(op, s)
    }

    fn where_cond<D: Dtype>(
        &self,
        x: &Tensor<D>,
        mask: &Mask,
        other: &Tensor<D>,
    ) -> Result<Tensor<D>> {
        x.where_cond_on_cpu(mask, other)
    }

    fn masked_fill<D: Dtype>(&self, x: &Tensor<D>, mask: &Mask, value: f64) -> Result<Tensor<D>> {
        x.masked_fill_on_cpu(mask, value)
    }

    fn dropout_with_mask<D: Dtype>(&self, x: &Tensor<D>, keep: &Mask, p: f64) -> Result<Tensor<D>> {
        x.dropout_with_mask_on_cpu(keep, p)
    }

    fn reduce<D: Dtype>(
        &self,
        op: ReduceOp,
        x: &Tensor<D>,
        axes: &[isize],
        keepdim: bool,
    ) -> Result<Tensor<D>> {
        match op {
            ReduceOp::Sum => x.sum_on_cpu(axes, keepdim),
            ReduceOp::Mean => x.mean_on_cpu(axes, keepdim),
            ReduceOp::Max => x.max_on_cpu(axes, keepdim),
            ReduceOp::Min => x.min_on_cpu(axes, keepdim),
            ReduceOp::Var { correction } => x.var_on_cpu(axes, keepdim, correction),
        }
    }

    fn arg_reduce<D: Dtype>(
        &self,
        op: ArgReduceOp,
        x: &Tensor<D>,
        axis: isize,
        keepdim: bool,
    ) -> Result<Indices> {
        match op {
            ArgReduceOp::Argmax => x.arg_extreme_on_cpu(op.name(), axis, keepdim, |a, b| a > b),
            ArgReduceOp::Argmin => x.arg_extreme_on_cpu(op.name(), axis, keepdim, |a, b| a < b),
        }
    }

    fn abs_max<D: Dtype>(&self, op: &'static str, x: &Tensor<D>) -> Result<D::Acc> {
        x.abs_max_on_cpu(op)
    }

    fn all_finite<D: Dtype>(&self, x: &Tensor<D>) -> Result<bool> {
        x.all_finite_on_cpu()
    }

    fn unscale_checked(&self, g: &Tensor<F32>, inv_scale: f32) -> Result<(Tensor<F32>, bool)> {
        g.unscale_checked_on_cpu(inv_scale)
    }

    fn norm_l2<D: Dtype>(&self, x: &Tensor<D>) -> Result<D::Acc> {
        x.norm_l2_on_cpu()
    }

    fn cast<S: Dtype, T: Dtype>(
        &self,
        x: &Tensor<S>,
        opts: CastOptions,
    ) -> Result<(Tensor<T>, CastReport)> {
        x.cast_on_cpu(opts)
    }

    fn matmul<A: Dtype, B: Dtype, O: Dtype>(
        &self,
        op: &'static str,
        a: &Tensor<A>,
        b: &Tensor<B>,
        bias: Option<&Tensor<O>>,
    ) -> Result<Tensor<O>> {
        Tensor::matmul_on_cpu(op, a, b, bias)
    }

    fn row_op<D: Dtype>(&self, op: RowOp, x: &Tensor<D>, axis: isize) -> Result<Tensor<D>> {
        match op {
            RowOp::Softmax => x.softmax_on_cpu(axis),
            RowOp::LogSoftmax => x.log_softmax_on_cpu(axis),
        }
    }

    fn row_op_backward<D: Dtype>(
        &self,
        op: RowOp,
        y: &Tensor<D>,
        g: &Tensor<D>,
        axis: isize,
    ) -> Result<Tensor<D>> {
        match op {
            RowOp::Softmax => y.softmax_backward_on_cpu(g, axis),
            RowOp::LogSoftmax => y.log_softmax_backward_on_cpu(g, axis),
        }
    }

    fn layer_norm<D: Dtype>(
        &self,
        x: &Tensor<D>,
        normalized_shape: &[usize],
        weight: Option<&Tensor<D>>,
        bias: Option<&Tensor<D>>,
        eps: f64,
    ) -> Result<Tensor<D>> {
        x.layer_norm_on_cpu(normalized_shape, weight, bias, eps)
    }

    fn layer_norm_backward<D: Dtype>(
        &self,
        x: &Tensor<D>,
        g: &Tensor<D>,
        n: usize,
        weight: Option<&Tensor<D>>,
        eps: f64,
    ) -> Result<LayerNormGrads<D>> {
        x.layer_norm_backward_on_cpu(g, n, weight, eps)
    }

    fn cross_entropy<D: Dtype>(&self, logits: &Tensor<D>, labels: &Indices) -> Result<Tensor<D>> {
        logits.cross_entropy_on_cpu(labels)
    }

    fn cross_entropy_backward<D: Dtype>(
        &self,
        logits: &Tensor<D>,
        labels: &Indices,
        grad: &Tensor<D>,
    ) -> Result<Tensor<D>> {
        logits.cross_entropy_backward_on_cpu(labels, grad)
    }

    fn index<D: Dtype>(
        &self,
        op: IndexOp,
        x: &Tensor<D>,
        axis: isize,
        ids: &Indices,
    ) -> Result<Tensor<D>> {
        match op {
            IndexOp::IndexSelect => x.index_select_on_cpu(axis, ids),
            IndexOp::Gather => x.gather_on_cpu(axis, ids),
        }
    }

    fn index_backward<D: Dtype>(
        &self,
        op: IndexOp,
        g: &Tensor<D>,
        input_shape: &[usize],
        axis: isize,
        ids: &Indices,
    ) -> Result<Tensor<D>> {
        match op {
            IndexOp::IndexSelect => g.index_select_backward_on_cpu(input_shape, axis, ids),
            IndexOp::Gather => g.gather_backward_on_cpu(input_shape, axis, ids),
        }
    }

    fn conv2d<D: Dtype>(
        &self,
        x: &Tensor<D>,
        weight: &Tensor<D>,
        bias: Option<&Tensor<D>>,
        p: Conv2dParams,
    ) -> Result<Tensor<D>> {
        x.conv2d_on_cpu(weight, bias, p)
    }

    fn conv2d_backward<D: Dtype>(
        &self,
        x: &Tensor<D>,
        weight: &Tensor<D>,
        grad: &Tensor<D>,
        p: Conv2dParams,
    ) -> Result<Conv2dGrads<D>> {
        x.conv2d_backward_on_cpu(weight, grad, p)
    }

    fn pool2d<D: Dtype>(&self, op: PoolOp, x: &Tensor<D>, p: Pool2dParams) -> Result<Tensor<D>> {
        match op {
            PoolOp::Max => x.max_pool2d_on_cpu(p),
            PoolOp::Avg => x.avg_pool2d_on_cpu(p),
        }
    }

    fn pool2d_backward<D: Dtype>(
        &self,
        op: PoolOp,
        x: &Tensor<D>,
        grad: &Tensor<D>,
        p: Pool2dParams,
    ) -> Result<Tensor<D>> {
        x.pool_backward_on_cpu(op, grad, p)
    }

    fn adamw_update(
        &self,
        param: &mut Tensor<F32>,
        grad: &Tensor<F32>,
        m: &mut Tensor<F32>,
        v: &mut Tensor<F32>,
        max_v: Option<&mut Tensor<F32>>,
        h: AdamWStep,
    ) -> Result<()> {
        param.adamw_update_on_cpu(grad, m, v, max_v, h)
    }

    fn sgd_update(
        &self,
        param: &mut Tensor<F32>,
        grad: &Tensor<F32>,
        momentum_buffer: Option<&mut Tensor<F32>>,
        h: SgdStep,
    ) -> Result<()> {
        param.sgd_update_on_cpu(grad, momentum_buffer, h)
    }

    fn contiguous<D: Dtype>(&self, op: &'static str, x: &Tensor<D>) -> Result<Tensor<D>> {
        x.contiguous_on_cpu(op)
    }

    fn concat<D: Dtype>(&self, tensors: &[&Tensor<D>], axis: isize) -> Result<Tensor<D>> {
        Tensor::concat_on_cpu(tensors, axis)
    }

    fn pad_axis<D: Dtype>(
        &self,
        x: &Tensor<D>,
        axis: isize,
        before: usize,
        after: usize,
    ) -> Result<Tensor<D>> {
        x.pad_axis_on_cpu(axis, before, after)
    }

    fn add_narrow<D: Dtype>(
        &self,
        x: Tensor<D>,
        axis: isize,
        start: usize,
        src: &Tensor<D>,
    ) -> Result<Tensor<D>> {
        x.add_narrow_on_cpu(axis, start, src)
    }
}
