//! Element-wise unary ops: each rule records the op and, for backward, the tensor its
//! [`UnaryOp`] saves; the derivative is the tensor crate's backward form
//! ([`Tensor::unary_backward`], computed in `D::Acc`, rounded once into `D`).

use super::{grad, saved, unary_record};
use crate::error::Result;
use crate::var::Var;
use mixprec_dtype::{Dtype, F32};
use mixprec_tensor::{Saves, Tensor, UnaryOp};

impl<D: Dtype> Var<D> {
    /// Records `op` applied to this var: its output, and a backward rule that reads what
    /// [`UnaryOp::saves`] names. Errors on invalid parameters or when memory cannot be had.
    pub fn unary(&self, op: UnaryOp) -> Result<Var<D>> {
        let y = self.value.unary(op)?;
        let keep = match op.saves() {
            Saves::Input => Some(self.value.clone()),
            Saves::Output => Some(y.clone()),
            Saves::Nothing => None,
        };
        let id = self.id;
        let rec = unary_record(op.name(), self, keep.iter().map(saved).collect());
        Ok(self.tape.record(y, rec, move |g| {
            let dx = Tensor::unary_backward(op, keep.as_ref().unwrap_or(&g), &g)?;
            Ok(vec![grad(id, dx)])
        }))
    }
}

/// Defines the infallible methods: [`Var::unary`] of the variant, panicking (with the
/// op's message) only when memory cannot be had.
macro_rules! unary_rules {
    ($($(#[$doc:meta])* $name:ident => $variant:ident;)*) => {
        impl<D: Dtype> Var<D> {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> Var<D> {
                    self.unary(UnaryOp::$variant).unwrap_or_else(|e| panic!("{e}"))
                }
            )*
        }
    };
}

unary_rules! {
    /// `-x`; `dx = -g`.
    neg => Neg;
    /// `|x|`; the derivative at 0 is 0 (as in PyTorch).
    abs => Abs;
    /// `e^x`; `dx = g * e^x` (saves the output).
    exp => Exp;
    /// `ln x`; `dx = g / x`.
    log => Log;
    /// `sqrt x`; `dx = g / (2 sqrt x)` (saves the output).
    sqrt => Sqrt;
    /// `1 / sqrt x`; `dx = -g y^3 / 2` (saves the output).
    rsqrt => Rsqrt;
    /// `1 / x`; `dx = -g y^2` (saves the output).
    recip => Recip;
    /// `x^2`; `dx = 2 g x`.
    square => Square;
    /// `tanh x`; `dx = g (1 - y^2)` (saves the output).
    tanh => Tanh;
    /// Logistic sigmoid; `dx = g y (1 - y)` (saves the output).
    sigmoid => Sigmoid;
    /// `max(x, 0)`; the derivative at 0 is 0.
    relu => Relu;
    /// Tanh-approximation GELU, `x s(2u)` with `s` the sigmoid; its exact derivative.
    gelu_tanh => GeluTanh;
    /// SiLU `x s(x)`; `dx = g s(x) (1 + x (1 - s(x)))`.
    silu => Silu;
}

impl<D: Dtype> Var<D> {
    /// Exact GELU; `dx = g (Phi(x) + x phi(x))` by [`Tensor::gelu_backward`] (evaluated
    /// in f64 for f32 compute, rounded once). Saves `x`.
    ///
    /// For `F32` the derivative is computed in the forward pass from the same evaluation
    /// ([`Tensor::gelu_with_derivative`], rounded once to f32) and saved instead of `x`
    /// (same bytes); backward is then `g * d` rounded once more: within one f32 rounding
    /// of the exactly rounded gradient, for half the work of evaluating `Phi` twice.
    ///
    /// Panics (with the op's message) only when memory cannot be had; see
    /// [`Var::try_gelu`].
    pub fn gelu(&self) -> Var<D> {
        self.try_gelu().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Var::gelu`], or an error when memory cannot be had.
    pub fn try_gelu(&self) -> Result<Var<D>> {
        let id = self.id;
        let as_d = |t: Tensor<F32>| -> Tensor<D> {
            *(Box::new(t) as Box<dyn std::any::Any>)
                .downcast::<Tensor<D>>()
                .expect("D is F32")
        };
        if let Some(x) = (&self.value as &dyn std::any::Any).downcast_ref::<Tensor<F32>>() {
            let (y, d) = x.try_gelu_with_derivative()?;
            let (y, d) = (as_d(y), as_d(d));
            let rec = unary_record("gelu", self, vec![saved(&d)]);
            return Ok(self
                .tape
                .record(y, rec, move |g| Ok(vec![grad(id, g.mul(&d)?)])));
        }
        self.unary(UnaryOp::Gelu)
    }

    /// `x^p`; `dx = g p x^(p-1)`. Errors if `p` is not finite.
    pub fn powf(&self, p: f64) -> Result<Var<D>> {
        self.unary(UnaryOp::Powf(p))
    }

    /// Clamp into `[min, max]`; the gradient passes where `min <= x <= max`.
    pub fn clamp(&self, min: f64, max: f64) -> Result<Var<D>> {
        self.unary(UnaryOp::Clamp(min, max))
    }
}
