//! Reductions as data: [`ReduceOp`] names each reduction over axes, so autograd, the amp
//! layer and a device backend can pass one around and a device finds its kernel through
//! [`ReduceOp::kernel`]. The CPU evaluates a variant with the reduction's own method
//! (`sum`, `mean`, ...: rows in `D::Acc`, eight interleaved partial sums, one rounding
//! into `D`).

use crate::backend::on_device;
use crate::error::Result;
use crate::mask::Indices;
use crate::tensor::Tensor;
use mixprec_dtype::Dtype;

/// A reduction over some axes of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    /// The sum (0 over an empty axis).
    Sum,
    /// The mean: the sum divided by the count (an empty axis is an error).
    Mean,
    /// The maximum; NaN if any element is NaN (an empty axis is an error).
    Max,
    /// The minimum; NaN if any element is NaN (an empty axis is an error).
    Min,
    /// The variance, two passes (mean, then squared deviations), divided by the count
    /// minus `correction` (1: unbiased, PyTorch's default; 0: population).
    Var {
        /// Subtracted from the count.
        correction: usize,
    },
}

impl ReduceOp {
    /// One of every variant (the parameterised one with PyTorch's default).
    pub const EXAMPLES: [ReduceOp; 5] = [
        ReduceOp::Sum,
        ReduceOp::Mean,
        ReduceOp::Max,
        ReduceOp::Min,
        ReduceOp::Var { correction: 1 },
    ];

    /// The op's name (the method's), used in errors.
    pub const fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Mean => "mean",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
            ReduceOp::Var { .. } => "var",
        }
    }

    /// A device's kernel for the op (the correction is a kernel argument).
    pub const fn kernel(self) -> &'static str {
        match self {
            ReduceOp::Sum => "reduce_sum",
            ReduceOp::Mean => "reduce_mean",
            ReduceOp::Max => "reduce_max",
            ReduceOp::Min => "reduce_min",
            ReduceOp::Var { .. } => "reduce_var",
        }
    }
}

/// The index of an extreme along an axis, as data: what [`Tensor::arg_reduce`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgReduceOp {
    /// [`Tensor::argmax`]: the first largest; NaN counts as largest.
    Argmax,
    /// [`Tensor::argmin`]: the first smallest; NaN counts as smallest.
    Argmin,
}

impl ArgReduceOp {
    /// Every variant.
    pub const ALL: [ArgReduceOp; 2] = [ArgReduceOp::Argmax, ArgReduceOp::Argmin];

    /// The op's name (the public method's), used in errors.
    pub const fn name(self) -> &'static str {
        match self {
            ArgReduceOp::Argmax => "argmax",
            ArgReduceOp::Argmin => "argmin",
        }
    }

    /// A device's kernel for the op.
    pub const fn kernel(self) -> &'static str {
        match self {
            ArgReduceOp::Argmax => "reduce_argmax",
            ArgReduceOp::Argmin => "reduce_argmin",
        }
    }
}

impl<D: Dtype> Tensor<D> {
    /// `op` over `axes` (negative axes count from the end), keeping them as size 1 when
    /// `keepdim`: the same as the op's method ([`Tensor::sum`], [`Tensor::mean`],
    /// [`Tensor::max`], [`Tensor::min`], [`Tensor::var`]), with its errors.
    ///
    /// ```
    /// use mixprec_tensor::{ReduceOp, Tensor};
    /// use mixprec_dtype::F32;
    /// let x = Tensor::<F32>::from_f32(&[1.0, 5.0, 3.0, 2.0], &[2, 2]).unwrap();
    /// assert_eq!(x.reduce(ReduceOp::Max, &[-1], false).unwrap().to_f32_vec(), vec![5.0, 3.0]);
    /// assert_eq!(x.reduce(ReduceOp::Sum, &[0], false).unwrap().to_f32_vec(), vec![4.0, 7.0]);
    /// ```
    pub fn reduce(&self, op: ReduceOp, axes: &[isize], keepdim: bool) -> Result<Tensor<D>> {
        super::reduce::check_reduce(op, self.shape(), axes)?;
        on_device!(self.device(), b => b.reduce(op, self, axes, keepdim))
    }

    /// `op` along `axis`: the index of the extreme ([`Tensor::argmax`],
    /// [`Tensor::argmin`]), with their errors.
    pub fn arg_reduce(&self, op: ArgReduceOp, axis: isize, keepdim: bool) -> Result<Indices> {
        super::reduce::check_arg_reduce(op, self.shape(), axis)?;
        on_device!(self.device(), b => b.arg_reduce(op, self, axis, keepdim))
    }
}
