//! Element-wise binary ops with NumPy broadcasting, as data: [`BinaryOp`] names each op
//! (the forward ops and the backward forms autograd's rules need). The CPU evaluates a
//! variant with its function of two elements in `D::Acc` and rounds the result once into
//! `D`; a device finds its kernel through [`BinaryOp::kernel`]. Scalar forms fix the
//! second operand to a value rounded to the compute precision.

use crate::backend::on_device;
use crate::cpu::map::{map_unary, zip_binary};
use crate::error::{Result, or_panic};
use crate::storage::one_device;
use crate::tensor::Tensor;
use mixprec_dtype::{Acc, Dtype};
use num_traits::Float;

/// An element-wise binary op of `a` and `b`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
    /// `max(a, b)`; NaN if either is NaN (PyTorch's `maximum`).
    Maximum,
    /// `min(a, b)`; NaN if either is NaN (PyTorch's `minimum`).
    Minimum,
    /// `-a * b`: the gradient of a quotient's denominator, `-(g / b) * y`, from `g / b`
    /// and the quotient `y` (one rounding).
    DivRhsBackward,
    /// The share of the gradient that goes to `a` in `maximum(a, b)`: 1 where `a > b`,
    /// 1/2 where they tie, else 0 (PyTorch splits ties evenly).
    MaximumShare,
    /// The same for `minimum(a, b)`: 1 where `a < b`, 1/2 on ties, else 0.
    MinimumShare,
    /// 1 where `a == b`, else 0 (the elements that reached a reduction's extreme).
    Equal,
    /// `a * b * s`, rounded once (a variance's gradient: centered values times `g` times
    /// `2 / (n - correction)`).
    ScaledMul(f64),
}

impl BinaryOp {
    /// One of every variant (the parameterised one with an example parameter).
    pub const EXAMPLES: [BinaryOp; 11] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
        BinaryOp::DivRhsBackward,
        BinaryOp::MaximumShare,
        BinaryOp::MinimumShare,
        BinaryOp::Equal,
        BinaryOp::ScaledMul(0.25),
    ];

    /// The op's name (the public method's, or the backward form's), used in errors.
    pub const fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
            BinaryOp::DivRhsBackward => "div_rhs_backward",
            BinaryOp::MaximumShare => "maximum_share",
            BinaryOp::MinimumShare => "minimum_share",
            BinaryOp::Equal => "equal",
            BinaryOp::ScaledMul(_) => "scaled_mul",
        }
    }

    /// The name of the scalar form ([`Tensor::binary_scalar`]), used in its errors.
    pub const fn scalar_name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add_scalar",
            BinaryOp::Sub => "sub_scalar",
            BinaryOp::Mul => "mul_scalar",
            BinaryOp::Div => "div_scalar",
            BinaryOp::Maximum => "maximum_scalar",
            BinaryOp::Minimum => "minimum_scalar",
            BinaryOp::DivRhsBackward => "div_rhs_backward_scalar",
            BinaryOp::MaximumShare => "maximum_share_scalar",
            BinaryOp::MinimumShare => "minimum_share_scalar",
            BinaryOp::Equal => "equal_scalar",
            BinaryOp::ScaledMul(_) => "scaled_mul_scalar",
        }
    }

    /// A device's kernel for the op (the parameter is a kernel argument).
    pub const fn kernel(self) -> &'static str {
        match self {
            BinaryOp::Add => "binary_add",
            BinaryOp::Sub => "binary_sub",
            BinaryOp::Mul => "binary_mul",
            BinaryOp::Div => "binary_div",
            BinaryOp::Maximum => "binary_maximum",
            BinaryOp::Minimum => "binary_minimum",
            BinaryOp::DivRhsBackward => "binary_div_rhs_backward",
            BinaryOp::MaximumShare => "binary_maximum_share",
            BinaryOp::MinimumShare => "binary_minimum_share",
            BinaryOp::Equal => "binary_equal",
            BinaryOp::ScaledMul(_) => "binary_scaled_mul",
        }
    }
}

/// Evaluates `$op` on the CPU: binds `$f` to the variant's function of two `D::Acc`
/// elements and evaluates `$call` (a broadcasting or a scalar engine using `$f`), so each
/// arm is its own monomorphic loop.
macro_rules! dispatch_binary {
    ($op:expr, $f:ident => $call:expr) => {{
        // NaN when either operand is NaN (PyTorch's maximum/minimum), else `v`.
        let nan_or = |a: D::Acc, b: D::Acc, v: D::Acc| {
            if a.is_nan() || b.is_nan() {
                D::Acc::nan()
            } else {
                v
            }
        };
        let unit = |b: bool| D::Acc::from_f64(if b { 1.0 } else { 0.0 });
        let share = |wins: bool, tie: bool| {
            D::Acc::from_f64(if wins {
                1.0
            } else if tie {
                0.5
            } else {
                0.0
            })
        };
        match $op {
            BinaryOp::Add => {
                let $f = |a: D::Acc, b: D::Acc| a + b;
                $call
            }
            BinaryOp::Sub => {
                let $f = |a: D::Acc, b: D::Acc| a - b;
                $call
            }
            BinaryOp::Mul => {
                let $f = |a: D::Acc, b: D::Acc| a * b;
                $call
            }
            BinaryOp::Div => {
                let $f = |a: D::Acc, b: D::Acc| a / b;
                $call
            }
            BinaryOp::Maximum => {
                let $f = |a: D::Acc, b: D::Acc| nan_or(a, b, a.max(b));
                $call
            }
            BinaryOp::Minimum => {
                let $f = |a: D::Acc, b: D::Acc| nan_or(a, b, a.min(b));
                $call
            }
            BinaryOp::DivRhsBackward => {
                let $f = |q: D::Acc, y: D::Acc| -q * y;
                $call
            }
            BinaryOp::MaximumShare => {
                let $f = |a: D::Acc, b: D::Acc| share(a > b, a == b);
                $call
            }
            BinaryOp::MinimumShare => {
                let $f = |a: D::Acc, b: D::Acc| share(a < b, a == b);
                $call
            }
            BinaryOp::Equal => {
                let $f = |a: D::Acc, b: D::Acc| unit(a == b);
                $call
            }
            BinaryOp::ScaledMul(s) => {
                let s = D::Acc::from_f64(s);
                let $f = move |a: D::Acc, b: D::Acc| a * b * s;
                $call
            }
        }
    }};
}

impl<D: Dtype> Tensor<D> {
    /// `op(self, other)` element by element with NumPy broadcasting, computed in `D::Acc`
    /// and rounded once into `D`. Errors (naming the op and both shapes) when the shapes
    /// do not broadcast, or when the result cannot be allocated.
    ///
    /// ```
    /// use mixprec_tensor::{BinaryOp, Tensor};
    /// use mixprec_dtype::F32;
    /// let a = Tensor::<F32>::from_f32(&[1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// let b = Tensor::<F32>::from_f32(&[10.0, 20.0], &[2]).unwrap();
    /// let c = a.binary(BinaryOp::Add, &b).unwrap();
    /// assert_eq!(c.to_f32_vec(), vec![11.0, 22.0, 13.0, 24.0]);
    /// ```
    pub fn binary(&self, op: BinaryOp, other: &Tensor<D>) -> Result<Tensor<D>> {
        let device = one_device(op.name(), [self.device(), other.device()])?;
        crate::layout::broadcast_shapes(op.name(), self.shape(), other.shape())?;
        on_device!(device, b => b.binary(op, self, other))
    }

    /// The CPU kernel of [`Tensor::binary`], after its front's checks.
    pub(crate) fn binary_on_cpu(&self, op: BinaryOp, other: &Tensor<D>) -> Result<Tensor<D>> {
        let name = op.name();
        dispatch_binary!(op, f => zip_binary(name, self, other, f))
    }

    /// `op(self, scalar)` for every element: the scalar is rounded to the compute
    /// precision first. Errors only when the result cannot be allocated.
    pub fn binary_scalar(&self, op: BinaryOp, scalar: f64) -> Result<Tensor<D>> {
        on_device!(self.device(), b => b.binary_scalar(op, self, scalar))
    }

    /// The CPU kernel of [`Tensor::binary_scalar`], after its front's checks.
    pub(crate) fn binary_scalar_on_cpu(&self, op: BinaryOp, scalar: f64) -> Result<Tensor<D>> {
        let (name, s) = (op.scalar_name(), D::Acc::from_f64(scalar));
        dispatch_binary!(op, f => map_unary(name, self, move |a| f(a, s)))
    }
}

/// Defines the broadcasting methods and their infallible scalar forms, each
/// [`Tensor::binary`] / [`Tensor::binary_scalar`] of its variant.
macro_rules! binary_methods {
    ($($(#[$doc:meta])* $name:ident, $scalar:ident => $variant:ident;)*) => {
        impl<D: Dtype> Tensor<D> {
            $(
                $(#[$doc])*
                ///
                /// Broadcasts by NumPy rules; errors (naming the op and both shapes) when
                /// the shapes do not broadcast.
                pub fn $name(&self, other: &Tensor<D>) -> Result<Tensor<D>> {
                    self.binary(BinaryOp::$variant, other)
                }

                $(#[$doc])*
                ///
                /// Scalar form: the scalar is rounded to the compute precision first.
                /// Panics (with the op's message) only when memory cannot be had; see
                /// [`Tensor::binary_scalar`].
                pub fn $scalar(&self, scalar: f64) -> Tensor<D> {
                    or_panic(self.binary_scalar(BinaryOp::$variant, scalar))
                }
            )*
        }
    };
}

binary_methods! {
    /// `a + b`.
    add, add_scalar => Add;
    /// `a - b`.
    sub, sub_scalar => Sub;
    /// `a * b`.
    mul, mul_scalar => Mul;
    /// `a / b`.
    div, div_scalar => Div;
    /// `max(a, b)`; NaN if either is NaN (PyTorch's `maximum`).
    maximum, maximum_scalar => Maximum;
    /// `min(a, b)`; NaN if either is NaN (PyTorch's `minimum`).
    minimum, minimum_scalar => Minimum;
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::F32;
    use mixprec_testing::{TestRng, Tolerance, assert_close, for_each_dtype};
    use proptest::prelude::*;

    type Op<D> = fn(&Tensor<D>, &Tensor<D>) -> Result<Tensor<D>>;
    type Case<D> = (&'static str, Op<D>, fn(f64, f64) -> f64);

    fn binary_ops_match_f64<D: Dtype>() {
        let mut rng = TestRng::new(42);
        // Same shape, a row broadcast, and a column broadcast against a transposed view.
        let a = Tensor::<D>::from_f64(&rng.vec(6 * 50, -4.0, 4.0), &[6, 50]).unwrap();
        let b_full = Tensor::<D>::from_f64(&rng.vec(6 * 50, 0.5, 3.0), &[6, 50]).unwrap();
        let b_row = Tensor::<D>::from_f64(&rng.vec(50, 0.5, 3.0), &[50]).unwrap();
        let b_col = Tensor::<D>::from_f64(&rng.vec(6, 0.5, 3.0), &[6, 1]).unwrap();
        let a_t = a
            .transpose(0, 1)
            .unwrap()
            .contiguous()
            .transpose(0, 1)
            .unwrap();
        let ops: [Case<D>; 6] = [
            ("add", Tensor::add, |x, y| x + y),
            ("sub", Tensor::sub, |x, y| x - y),
            ("mul", Tensor::mul, |x, y| x * y),
            ("div", Tensor::div, |x, y| x / y),
            ("maximum", Tensor::maximum, f64::max),
            ("minimum", Tensor::minimum, f64::min),
        ];
        let tol = Tolerance::rounded_once::<D>();
        for (name, op, reference) in ops {
            for (x, y) in [(&a, &b_full), (&a, &b_row), (&a_t, &b_col)] {
                let got = op(x, y).unwrap();
                assert_eq!(got.shape(), &[6, 50]);
                let (xs, ys) = (
                    x.to_f64_vec(),
                    y.broadcast_to(&[6, 50]).unwrap().to_f64_vec(),
                );
                let want: Vec<f64> = xs.iter().zip(&ys).map(|(&u, &v)| reference(u, v)).collect();
                assert_close(
                    &format!("{name}<{}> {:?} {:?}", D::NAME, x.shape(), y.shape()),
                    &got.to_f64_vec(),
                    &want,
                    tol,
                );
            }
        }
        let s = a.mul_scalar(0.5).to_f64_vec();
        let want: Vec<f64> = a.to_f64_vec().iter().map(|v| v * 0.5).collect();
        assert_close("mul_scalar", &s, &want, tol);
    }
    for_each_dtype!(binary_ops_match_f64);

    #[test]
    fn mismatched_shapes_error_with_both_shapes() {
        let a = Tensor::<F32>::zeros(&[2, 3]);
        let b = Tensor::<F32>::zeros(&[4]);
        let e = a.add(&b).unwrap_err();
        assert_eq!(
            e.to_string(),
            "add: shapes [2, 3] and [4] are incompatible: trailing dimensions must be equal or 1 (broadcasting)"
        );
        assert!(a.div(&b).unwrap_err().to_string().starts_with("div:"));
    }

    #[test]
    fn maximum_propagates_nan() {
        let a = Tensor::<F32>::from_f32(&[f32::NAN, 1.0], &[2]).unwrap();
        let b = Tensor::<F32>::from_f32(&[0.0, f32::NAN], &[2]).unwrap();
        assert!(
            a.maximum(&b)
                .unwrap()
                .to_f32_vec()
                .iter()
                .all(|v| v.is_nan())
        );
    }

    proptest! {
        /// Broadcasting: output shape follows NumPy, and every element equals the f64 op on
        /// the broadcast operands (F64, so exact).
        #[test]
        fn broadcast_shapes_and_values(
            shape in prop::collection::vec(1usize..4, 0..4),
            ones in prop::collection::vec(any::<bool>(), 4),
            drop in 0usize..3,
        ) {
            use mixprec_dtype::F64;
            let n: usize = shape.iter().product();
            let a = Tensor::<F64>::from_f64(&(0..n).map(|i| i as f64).collect::<Vec<_>>(), &shape).unwrap();
            // b: drop leading axes, set some axes to 1.
            let b_shape: Vec<usize> = shape.iter().enumerate().skip(drop.min(shape.len()))
                .map(|(i, &d)| if ones[i] { 1 } else { d }).collect();
            let m: usize = b_shape.iter().product();
            let b = Tensor::<F64>::from_f64(&(0..m).map(|i| 100.0 * i as f64).collect::<Vec<_>>(), &b_shape).unwrap();
            let c = a.add(&b).unwrap();
            prop_assert_eq!(c.shape(), &shape[..]);
            let bb = b.broadcast_to(&shape).unwrap().to_f64_vec();
            let expected: Vec<f64> = a.to_f64_vec().iter().zip(&bb).map(|(x, y)| x + y).collect();
            prop_assert_eq!(c.to_f64_vec(), expected);
            let d = b.sub(&a).unwrap();
            prop_assert_eq!(d.shape(), &shape[..]);
        }
    }
}
