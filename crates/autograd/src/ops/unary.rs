//! Element-wise unary ops. Each derivative is fused into one `zip_map` (computed in
//! `D::Acc`, rounded once into `D`).

use super::{grad, saved, unary_record};
use crate::error::Result;
use crate::var::Var;
use mixprec_dtype::{Acc, Dtype, F32};
use mixprec_tensor::Tensor;
use num_traits::Float;

/// `dx = g * f'(x)` for a rule that saves the input `x`, or the output `y`.
macro_rules! unary_rules {
    ($($(#[$doc:meta])* $name:ident saves $which:ident => |$v:ident, $g:ident| $d:expr;)*) => {
        impl<D: Dtype> Var<D> {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> Var<D> {
                    let y = self.value.$name();
                    let keep: Tensor<D> = unary_rules!(@pick $which, self.value, y);
                    let id = self.id;
                    let rec = unary_record(stringify!($name), self, vec![saved(&keep)]);
                    self.tape.record(y, rec, move |g| {
                        let dx = keep.zip_map(&g, |$v: D::Acc, $g: D::Acc| $d)?;
                        Ok(vec![grad(id, dx)])
                    })
                }
            )*
        }
    };
    (@pick x, $x:expr, $y:expr) => { $x.clone() };
    (@pick y, $x:expr, $y:expr) => { $y.clone() };
}

fn one<A: Acc>() -> A {
    A::from_f64(1.0)
}

fn sigmoid<A: Acc>(x: A) -> A {
    one::<A>() / (one::<A>() + (-x).exp())
}

unary_rules! {
    /// `|x|`; the derivative at 0 is 0 (as in PyTorch).
    abs saves x => |x, g| if x > D::Acc::from_f64(0.0) { g } else if x < D::Acc::from_f64(0.0) { -g } else { D::Acc::from_f64(0.0) };
    /// `e^x`; `dx = g * e^x`.
    exp saves y => |y, g| g * y;
    /// `ln x`; `dx = g / x`.
    log saves x => |x, g| g / x;
    /// `sqrt x`; `dx = g / (2 sqrt x)`.
    sqrt saves y => |y, g| g / (y + y);
    /// `1 / sqrt x`; `dx = -g y^3 / 2`.
    rsqrt saves y => |y, g| -g * y * y * y * D::Acc::from_f64(0.5);
    /// `1 / x`; `dx = -g y^2`.
    recip saves y => |y, g| -g * y * y;
    /// `x^2`; `dx = 2 g x`.
    square saves x => |x, g| (g + g) * x;
    /// `tanh x`; `dx = g (1 - y^2)`.
    tanh saves y => |y, g| g * (one::<D::Acc>() - y * y);
    /// Logistic sigmoid; `dx = g y (1 - y)`.
    sigmoid saves y => |y, g| g * y * (one::<D::Acc>() - y);
    /// `max(x, 0)`; the derivative at 0 is 0.
    relu saves x => |x, g| if x > D::Acc::from_f64(0.0) { g } else { D::Acc::from_f64(0.0) };
    /// Tanh-approximation GELU, `x s(2u)` with `s` the sigmoid; its exact derivative.
    gelu_tanh saves x => |x, g| {
        let xf = x.to_f64();
        let k = (2.0 / std::f64::consts::PI).sqrt();
        let u = k * (xf + 0.044715 * xf * xf * xf);
        let s = sigmoid(2.0 * u);
        let du = k * (1.0 + 3.0 * 0.044715 * xf * xf);
        D::Acc::from_f64(g.to_f64() * (s + xf * s * (1.0 - s) * 2.0 * du))
    };
    /// SiLU `x s(x)`; `dx = g s(x) (1 + x (1 - s(x)))`.
    silu saves x => |x, g| {
        let s = sigmoid(x);
        g * s * (one::<D::Acc>() + x * (one::<D::Acc>() - s))
    };
}

impl<D: Dtype> Var<D> {
    /// Exact GELU; `dx = g (Phi(x) + x phi(x))` by [`Tensor::gelu_backward`] (evaluated
    /// in f64 for f32 compute, rounded once). Saves `x`.
    ///
    /// For `F32` the derivative is computed in the forward pass from the same evaluation
    /// ([`Tensor::gelu_with_derivative`], rounded once to f32) and saved instead of `x`
    /// (same bytes); backward is then `g * d` rounded once more: within one f32 rounding
    /// of the exactly rounded gradient, for half the work of evaluating `Phi` twice.
    pub fn gelu(&self) -> Var<D> {
        let id = self.id;
        let as_d = |t: Tensor<F32>| -> Tensor<D> {
            *(Box::new(t) as Box<dyn std::any::Any>)
                .downcast::<Tensor<D>>()
                .expect("D is F32")
        };
        if let Some(x) = (&self.value as &dyn std::any::Any).downcast_ref::<Tensor<F32>>() {
            let (y, d) = x.gelu_with_derivative();
            let (y, d) = (as_d(y), as_d(d));
            let rec = unary_record("gelu", self, vec![saved(&d)]);
            return self
                .tape
                .record(y, rec, move |g| Ok(vec![grad(id, g.mul(&d)?)]));
        }
        let x = self.value.clone();
        let rec = unary_record("gelu", self, vec![saved(&x)]);
        self.tape.record(self.value.gelu(), rec, move |g| {
            Ok(vec![grad(id, x.gelu_backward(&g)?)])
        })
    }

    /// `-x`; `dx = -g`.
    pub fn neg(&self) -> Var<D> {
        let id = self.id;
        self.tape.record(
            self.value.neg(),
            unary_record("neg", self, vec![]),
            move |g| Ok(vec![grad(id, g.neg())]),
        )
    }

    /// `x^p`; `dx = g p x^(p-1)`. Errors if `p` is not finite.
    pub fn powf(&self, p: f64) -> Result<Var<D>> {
        let y = self.value.powf(p)?;
        let x = self.value.clone();
        let id = self.id;
        let rec = unary_record("powf", self, vec![saved(&x)]);
        Ok(self.tape.record(y, rec, move |g| {
            let pa = D::Acc::from_f64(p);
            let pm1 = D::Acc::from_f64(p - 1.0);
            Ok(vec![grad(id, x.zip_map(&g, |x, g| g * pa * x.powf(pm1))?)])
        }))
    }

    /// Clamp into `[min, max]`; the gradient passes where `min <= x <= max`.
    pub fn clamp(&self, min: f64, max: f64) -> Result<Var<D>> {
        let y = self.value.clamp(min, max)?;
        let x = self.value.clone();
        let id = self.id;
        let rec = unary_record("clamp", self, vec![saved(&x)]);
        Ok(self.tape.record(y, rec, move |g| {
            let (lo, hi) = (D::Acc::from_f64(min), D::Acc::from_f64(max));
            Ok(vec![grad(
                id,
                x.zip_map(&g, |x, g| {
                    if x >= lo && x <= hi {
                        g
                    } else {
                        D::Acc::from_f64(0.0)
                    }
                })?,
            )])
        }))
    }
}
