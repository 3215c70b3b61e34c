//! Comparisons producing a [`Mask`] (not differentiable), with NumPy broadcasting.
//! Values compare in `D::Acc`; NaN compares unequal to everything, as in IEEE.

use crate::backend::on_device;
use crate::cpu::map::broadcast_values;
use crate::error::Result;
use crate::layout::broadcast_shapes;
use crate::mask::Mask;
use crate::storage::one_device;
use crate::tensor::Tensor;
use mixprec_dtype::{Acc, Dtype};
use num_traits::{One, Zero};

/// A comparison, as data: what [`Tensor::compare`] computes. Values compare in `D::Acc`;
/// NaN compares unequal to everything (IEEE).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `a == b`.
    Eq,
    /// `a != b` (true where either is NaN).
    Ne,
    /// `a < b`.
    Lt,
    /// `a <= b`.
    Le,
    /// `a > b`.
    Gt,
    /// `a >= b`.
    Ge,
}

impl CompareOp {
    /// Every variant.
    pub const ALL: [CompareOp; 6] = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Gt,
        CompareOp::Ge,
    ];

    /// The op's name (the public method's), used in errors.
    pub const fn name(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
        }
    }

    /// The scalar form's name.
    pub const fn scalar_name(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq_scalar",
            CompareOp::Ne => "ne_scalar",
            CompareOp::Lt => "lt_scalar",
            CompareOp::Le => "le_scalar",
            CompareOp::Gt => "gt_scalar",
            CompareOp::Ge => "ge_scalar",
        }
    }

    /// A device's kernel for the op (the scalar form passes the scalar as an argument).
    pub const fn kernel(self) -> &'static str {
        match self {
            CompareOp::Eq => "compare_eq",
            CompareOp::Ne => "compare_ne",
            CompareOp::Lt => "compare_lt",
            CompareOp::Le => "compare_le",
            CompareOp::Gt => "compare_gt",
            CompareOp::Ge => "compare_ge",
        }
    }
}

/// Runs `$run` with `$f` bound to the comparison of `$op`, a monomorphic closure per arm.
macro_rules! with_comparison {
    ($op:expr, $f:ident => $run:expr) => {
        match $op {
            CompareOp::Eq => {
                let $f = |a: D::Acc, b: D::Acc| a == b;
                $run
            }
            CompareOp::Ne => {
                let $f = |a: D::Acc, b: D::Acc| a != b;
                $run
            }
            CompareOp::Lt => {
                let $f = |a: D::Acc, b: D::Acc| a < b;
                $run
            }
            CompareOp::Le => {
                let $f = |a: D::Acc, b: D::Acc| a <= b;
                $run
            }
            CompareOp::Gt => {
                let $f = |a: D::Acc, b: D::Acc| a > b;
                $run
            }
            CompareOp::Ge => {
                let $f = |a: D::Acc, b: D::Acc| a >= b;
                $run
            }
        }
    };
}

impl<D: Dtype> Tensor<D> {
    /// `op(self, other)` element by element into a [`Mask`], with NumPy broadcasting.
    /// Errors (naming the op and both shapes) when the shapes do not broadcast.
    ///
    /// ```
    /// use mixprec_tensor::{CompareOp, Tensor};
    /// use mixprec_dtype::F32;
    /// let a = Tensor::<F32>::from_f32(&[1.0, 3.0], &[2]).unwrap();
    /// let b = Tensor::<F32>::from_f32(&[2.0], &[1]).unwrap();
    /// assert_eq!(a.compare(CompareOp::Lt, &b).unwrap().as_slice(), &[true, false]);
    /// ```
    pub fn compare(&self, op: CompareOp, other: &Tensor<D>) -> Result<Mask> {
        let device = one_device(op.name(), [self.device(), other.device()])?;
        broadcast_shapes(op.name(), self.shape(), other.shape())?;
        on_device!(device, b => b.compare(op, self, other))
    }

    /// `op(self, scalar)` for every element into a [`Mask`] (the scalar is rounded to
    /// the compute precision first). Errors only when memory cannot be had.
    pub fn compare_scalar(&self, op: CompareOp, scalar: f64) -> Result<Mask> {
        on_device!(self.device(), b => b.compare_scalar(op, self, scalar))
    }

    /// The CPU kernel of [`Tensor::compare`], after its front's checks.
    pub(crate) fn compare_on_cpu(&self, op: CompareOp, other: &Tensor<D>) -> Result<Mask> {
        let name = op.name();
        let shape = broadcast_shapes(name, self.shape(), other.shape())?;
        let bits = with_comparison!(op, f => broadcast_values(name, &shape, [self, other], |[a, b]| {
            if f(a, b) { D::Acc::one() } else { D::Acc::zero() }
        }))?;
        let flags = bits.iter().map(|v| !v.is_zero());
        Mask::from_vec(crate::cpu::alloc::try_collect(name, &shape, flags)?, &shape)
    }

    /// The CPU kernel of [`Tensor::compare_scalar`].
    pub(crate) fn compare_scalar_on_cpu(&self, op: CompareOp, scalar: f64) -> Result<Mask> {
        let name = op.scalar_name();
        let s = D::Acc::from_f64(scalar);
        let values = self.try_to_acc_vec(name)?;
        let flags =
            with_comparison!(op, f => values.iter().map(|&a| f(a, s)).collect::<Vec<bool>>());
        Mask::from_vec(flags, self.shape())
    }
}

/// Defines the familiar comparison methods, each [`Tensor::compare`] (or
/// [`Tensor::compare_scalar`]) of its variant.
macro_rules! compare_methods {
    ($($(#[$doc:meta])* $name:ident, $scalar:ident => $variant:ident;)*) => {
        impl<D: Dtype> Tensor<D> {
            $(
                $(#[$doc])*
                /// Broadcasts by NumPy rules; errors when the shapes do not broadcast.
                pub fn $name(&self, other: &Tensor<D>) -> Result<Mask> {
                    self.compare(CompareOp::$variant, other)
                }

                $(#[$doc])*
                /// Scalar form (the scalar is rounded to the compute precision). Panics
                /// (with the op's message) only when memory cannot be had.
                pub fn $scalar(&self, scalar: f64) -> Mask {
                    crate::error::or_panic(self.compare_scalar(CompareOp::$variant, scalar))
                }
            )*
        }
    };
}

compare_methods! {
    /// `a == b` elementwise.
    eq, eq_scalar => Eq;
    /// `a != b` elementwise (true where either is NaN).
    ne, ne_scalar => Ne;
    /// `a < b` elementwise.
    lt, lt_scalar => Lt;
    /// `a <= b` elementwise.
    le, le_scalar => Le;
    /// `a > b` elementwise.
    gt, gt_scalar => Gt;
    /// `a >= b` elementwise.
    ge, ge_scalar => Ge;
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::F32;
    use mixprec_testing::for_each_dtype;

    fn comparisons<D: Dtype>() {
        let a = Tensor::<D>::from_f64(&[1.0, 2.0, 3.0, -1.0], &[2, 2]).unwrap();
        let b = Tensor::<D>::from_f64(&[2.0, 2.0], &[2]).unwrap();
        assert_eq!(a.lt(&b).unwrap().as_slice(), &[true, false, false, true]);
        assert_eq!(a.le(&b).unwrap().as_slice(), &[true, true, false, true]);
        assert_eq!(a.eq(&b).unwrap().as_slice(), &[false, true, false, false]);
        assert_eq!(a.ne(&b).unwrap().as_slice(), &[true, false, true, true]);
        assert_eq!(a.gt_scalar(1.5).as_slice(), &[false, true, true, false]);
        assert_eq!(a.ge(&b).unwrap().shape(), &[2, 2]);
    }
    for_each_dtype!(comparisons);

    #[test]
    fn nan_and_errors() {
        let a = Tensor::<F32>::from_f32(&[f32::NAN], &[1]).unwrap();
        assert_eq!(a.eq(&a).unwrap().as_slice(), &[false]);
        assert_eq!(a.ne(&a).unwrap().as_slice(), &[true]);
        let e = Tensor::<F32>::zeros(&[3])
            .lt(&Tensor::<F32>::zeros(&[2]))
            .unwrap_err();
        assert!(e.to_string().starts_with("lt: shapes [3] and [2]"));
    }
}
