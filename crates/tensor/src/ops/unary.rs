//! Element-wise unary ops, as data: [`UnaryOp`] names each op. The CPU evaluates a variant
//! with that variant's function of one element, in `D::Acc` (f32; f64 for `F64`), and
//! rounds the result once into `D` (nearest even); a device finds its kernel through
//! [`UnaryOp::kernel`]. Each op's backward form — the input gradient from the saved input
//! or output and the output gradient, also in `D::Acc` and rounded once — is the variant's
//! second function ([`Tensor::unary_backward`]), so autograd's rules hold no arithmetic.

use crate::backend::on_device;
use crate::cpu::map::{PARALLEL_MIN_EXPENSIVE, map_unary, map_unary_chunks, zip_binary};
use crate::error::{Error, Result, or_panic};
use crate::storage::one_device;
use crate::tensor::Tensor;
use mixprec_dtype::{Acc, Dtype};
use num_traits::{Float, Zero};

/// An element-wise unary op. Parameters (an exponent, clamp bounds) travel with the
/// variant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    /// `-x` (exact).
    Neg,
    /// `|x|` (exact).
    Abs,
    /// `e^x`.
    Exp,
    /// Natural logarithm.
    Log,
    /// Square root.
    Sqrt,
    /// `1 / sqrt(x)`.
    Rsqrt,
    /// `1 / x`.
    Recip,
    /// `x * x`.
    Square,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
    /// `max(x, 0)`.
    Relu,
    /// GELU with the exact error function.
    Gelu,
    /// GELU, tanh approximation.
    GeluTanh,
    /// SiLU (swish), `x * sigmoid(x)`.
    Silu,
    /// `x^p`.
    Powf(f64),
    /// Clamp into `[min, max]`.
    Clamp(f64, f64),
}

/// What the backward form of a unary op reads beside the output gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Saves {
    /// Nothing: the gradient alone (`-g`).
    Nothing,
    /// The op's input `x`.
    Input,
    /// The op's output `y`.
    Output,
}

impl UnaryOp {
    /// One of every variant (parameterised ones with example parameters): for tests that
    /// every op has a CPU implementation and a kernel.
    pub const EXAMPLES: [UnaryOp; 16] = [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Rsqrt,
        UnaryOp::Recip,
        UnaryOp::Square,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Relu,
        UnaryOp::Gelu,
        UnaryOp::GeluTanh,
        UnaryOp::Silu,
        UnaryOp::Powf(2.5),
        UnaryOp::Clamp(-1.0, 1.0),
    ];

    /// The op's name (the public method's), used in errors and records.
    pub const fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Abs => "abs",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Rsqrt => "rsqrt",
            UnaryOp::Recip => "recip",
            UnaryOp::Square => "square",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Relu => "relu",
            UnaryOp::Gelu => "gelu",
            UnaryOp::GeluTanh => "gelu_tanh",
            UnaryOp::Silu => "silu",
            UnaryOp::Powf(_) => "powf",
            UnaryOp::Clamp(..) => "clamp",
        }
    }

    /// The name of the backward form, used in its errors.
    pub const fn backward_name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg_backward",
            UnaryOp::Abs => "abs_backward",
            UnaryOp::Exp => "exp_backward",
            UnaryOp::Log => "log_backward",
            UnaryOp::Sqrt => "sqrt_backward",
            UnaryOp::Rsqrt => "rsqrt_backward",
            UnaryOp::Recip => "recip_backward",
            UnaryOp::Square => "square_backward",
            UnaryOp::Tanh => "tanh_backward",
            UnaryOp::Sigmoid => "sigmoid_backward",
            UnaryOp::Relu => "relu_backward",
            UnaryOp::Gelu => "gelu_backward",
            UnaryOp::GeluTanh => "gelu_tanh_backward",
            UnaryOp::Silu => "silu_backward",
            UnaryOp::Powf(_) => "powf_backward",
            UnaryOp::Clamp(..) => "clamp_backward",
        }
    }

    /// A device's kernels for the op: `(forward, backward)` entry points, one pair per
    /// variant (the parameters are kernel arguments).
    pub const fn kernel(self) -> (&'static str, &'static str) {
        match self {
            UnaryOp::Neg => ("unary_neg", "unary_neg_backward"),
            UnaryOp::Abs => ("unary_abs", "unary_abs_backward"),
            UnaryOp::Exp => ("unary_exp", "unary_exp_backward"),
            UnaryOp::Log => ("unary_log", "unary_log_backward"),
            UnaryOp::Sqrt => ("unary_sqrt", "unary_sqrt_backward"),
            UnaryOp::Rsqrt => ("unary_rsqrt", "unary_rsqrt_backward"),
            UnaryOp::Recip => ("unary_recip", "unary_recip_backward"),
            UnaryOp::Square => ("unary_square", "unary_square_backward"),
            UnaryOp::Tanh => ("unary_tanh", "unary_tanh_backward"),
            UnaryOp::Sigmoid => ("unary_sigmoid", "unary_sigmoid_backward"),
            UnaryOp::Relu => ("unary_relu", "unary_relu_backward"),
            UnaryOp::Gelu => ("unary_gelu", "unary_gelu_backward"),
            UnaryOp::GeluTanh => ("unary_gelu_tanh", "unary_gelu_tanh_backward"),
            UnaryOp::Silu => ("unary_silu", "unary_silu_backward"),
            UnaryOp::Powf(_) => ("unary_powf", "unary_powf_backward"),
            UnaryOp::Clamp(..) => ("unary_clamp", "unary_clamp_backward"),
        }
    }

    /// What the backward form reads beside the output gradient.
    pub const fn saves(self) -> Saves {
        match self {
            UnaryOp::Neg => Saves::Nothing,
            UnaryOp::Exp
            | UnaryOp::Sqrt
            | UnaryOp::Rsqrt
            | UnaryOp::Recip
            | UnaryOp::Tanh
            | UnaryOp::Sigmoid => Saves::Output,
            UnaryOp::Abs
            | UnaryOp::Log
            | UnaryOp::Square
            | UnaryOp::Relu
            | UnaryOp::Gelu
            | UnaryOp::GeluTanh
            | UnaryOp::Silu
            | UnaryOp::Powf(_)
            | UnaryOp::Clamp(..) => Saves::Input,
        }
    }

    /// Errors unless the parameters are valid: a finite exponent, `min <= max` without
    /// NaN.
    fn check(self) -> Result<()> {
        match self {
            UnaryOp::Powf(p) if !p.is_finite() => Err(Error::invalid(
                "powf",
                format!("exponent must be finite, got {p}"),
            )),
            UnaryOp::Clamp(min, max) if min.is_nan() || max.is_nan() || min > max => {
                Err(Error::invalid(
                    "clamp",
                    format!("need min <= max, got min {min}, max {max}"),
                ))
            }
            _ => Ok(()),
        }
    }
}

fn one<A: Acc>() -> A {
    A::one()
}

fn sigmoid<A: Acc>(x: A) -> A {
    A::one() / (A::one() + (-x).exp())
}

impl<D: Dtype> Tensor<D> {
    /// `op` applied to every element (computed in `D::Acc`, rounded once into `D`).
    /// Errors on invalid parameters (a non-finite exponent, clamp bounds out of order)
    /// or when the result cannot be allocated.
    ///
    /// ```
    /// use mixprec_tensor::{Tensor, UnaryOp};
    /// use mixprec_dtype::F32;
    /// let x = Tensor::<F32>::from_f32(&[-2.0, 0.5], &[2]).unwrap();
    /// assert_eq!(x.unary(UnaryOp::Abs).unwrap().to_f32_vec(), vec![2.0, 0.5]);
    /// assert!(x.unary(UnaryOp::Clamp(1.0, -1.0)).is_err());
    /// ```
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor<D>> {
        op.check()?;
        on_device!(self.device(), b => b.unary(op, self))
    }

    /// The CPU kernel of [`Tensor::unary`], after its front's checks.
    pub(crate) fn unary_on_cpu(&self, op: UnaryOp) -> Result<Tensor<D>> {
        let name = op.name();
        let zero = D::Acc::zero;
        match op {
            UnaryOp::Neg => map_unary(name, self, |x| -x),
            UnaryOp::Abs => map_unary(name, self, |x| x.abs()),
            // For f32 compute evaluated in f64 a block of elements at a time and rounded
            // once ([`crate::cpu::fast_math::exp_in_place`]); libm's `exp` for f64.
            UnaryOp::Exp => map_unary_chunks(
                name,
                self,
                PARALLEL_MIN_EXPENSIVE,
                crate::cpu::fast_math::exp_in_place,
            ),
            UnaryOp::Log => map_unary(name, self, |x| x.ln()),
            UnaryOp::Sqrt => map_unary(name, self, |x| x.sqrt()),
            UnaryOp::Rsqrt => map_unary(name, self, |x| one::<D::Acc>() / x.sqrt()),
            UnaryOp::Recip => map_unary(name, self, |x| one::<D::Acc>() / x),
            UnaryOp::Square => map_unary(name, self, |x| x * x),
            UnaryOp::Tanh => map_unary(name, self, |x| x.tanh()),
            UnaryOp::Sigmoid => map_unary(name, self, sigmoid),
            UnaryOp::Relu => map_unary(name, self, |x| {
                if x > zero() || x.is_nan() { x } else { zero() }
            }),
            UnaryOp::Gelu => map_unary_chunks(
                name,
                self,
                PARALLEL_MIN_EXPENSIVE,
                crate::cpu::fast_math::gelu_in_place,
            ),
            UnaryOp::GeluTanh => map_unary(name, self, |x| {
                let k = D::Acc::from_f64((2.0 / std::f64::consts::PI).sqrt());
                let c = D::Acc::from_f64(0.044715);
                let u = k * (x + c * x * x * x);
                x / (one::<D::Acc>() + (-(u + u)).exp())
            }),
            UnaryOp::Silu => map_unary(name, self, |x| x / (one::<D::Acc>() + (-x).exp())),
            UnaryOp::Powf(p) => {
                let p = D::Acc::from_f64(p);
                map_unary(name, self, |x| x.powf(p))
            }
            UnaryOp::Clamp(min, max) => {
                let (lo, hi) = (D::Acc::from_f64(min), D::Acc::from_f64(max));
                map_unary(name, self, |x| {
                    if x < lo {
                        lo
                    } else if x > hi {
                        hi
                    } else {
                        x
                    }
                })
            }
        }
    }

    /// The input gradient of `op` from the output gradient `g` and `saved`, the tensor
    /// [`UnaryOp::saves`] names (the op's input or output; ignored for
    /// [`Saves::Nothing`]): `g * op'(x)` per element, in `D::Acc`, rounded once into
    /// `D`. At kinks the derivative is PyTorch's (0 for `abs` and `relu` at 0, the
    /// gradient passes at clamp's bounds). `g` broadcasts with `saved`; errors when the
    /// shapes do not broadcast, on invalid parameters, or when memory cannot be had.
    ///
    /// ```
    /// use mixprec_tensor::{Tensor, UnaryOp};
    /// use mixprec_dtype::F32;
    /// let x = Tensor::<F32>::from_f32(&[-2.0, 3.0], &[2]).unwrap();
    /// let g = Tensor::<F32>::from_f32(&[1.0, 1.0], &[2]).unwrap();
    /// // d(x^2)/dx = 2x
    /// let dx = Tensor::unary_backward(UnaryOp::Square, &x, &g).unwrap();
    /// assert_eq!(dx.to_f32_vec(), vec![-4.0, 6.0]);
    /// ```
    pub fn unary_backward(op: UnaryOp, saved: &Tensor<D>, g: &Tensor<D>) -> Result<Tensor<D>> {
        op.check()?;
        let device = one_device(op.backward_name(), [saved.device(), g.device()])?;
        if op.saves() != Saves::Nothing {
            crate::layout::broadcast_shapes(op.backward_name(), saved.shape(), g.shape())?;
        }
        on_device!(device, b => b.unary_backward(op, saved, g))
    }

    /// The CPU kernel of [`Tensor::unary_backward`], after its front's checks.
    pub(crate) fn unary_backward_on_cpu(
        op: UnaryOp,
        saved: &Tensor<D>,
        g: &Tensor<D>,
    ) -> Result<Tensor<D>> {
        let name = op.backward_name();
        let zero = D::Acc::zero;
        let half = D::Acc::from_f64(0.5);
        match op {
            UnaryOp::Neg => map_unary(name, g, |g| -g),
            UnaryOp::Abs => zip_binary(name, saved, g, |x, g| {
                if x > zero() {
                    g
                } else if x < zero() {
                    -g
                } else {
                    zero()
                }
            }),
            UnaryOp::Exp => zip_binary(name, saved, g, |y, g| g * y),
            UnaryOp::Log => zip_binary(name, saved, g, |x, g| g / x),
            UnaryOp::Sqrt => zip_binary(name, saved, g, |y, g| g / (y + y)),
            UnaryOp::Rsqrt => zip_binary(name, saved, g, |y, g| -g * y * y * y * half),
            UnaryOp::Recip => zip_binary(name, saved, g, |y, g| -g * y * y),
            UnaryOp::Square => zip_binary(name, saved, g, |x, g| (g + g) * x),
            UnaryOp::Tanh => zip_binary(name, saved, g, |y, g| g * (one::<D::Acc>() - y * y)),
            UnaryOp::Sigmoid => zip_binary(name, saved, g, |y, g| g * y * (one::<D::Acc>() - y)),
            UnaryOp::Relu => zip_binary(name, saved, g, |x, g| if x > zero() { g } else { zero() }),
            UnaryOp::Gelu => saved.gelu_backward_on_cpu(g),
            // In f64: the tanh-approximation's exact derivative, rounded once.
            UnaryOp::GeluTanh => zip_binary(name, saved, g, |x, g| {
                let xf = x.to_f64();
                let k = (2.0 / std::f64::consts::PI).sqrt();
                let u = k * (xf + 0.044715 * xf * xf * xf);
                let s = sigmoid(2.0 * u);
                let du = k * (1.0 + 3.0 * 0.044715 * xf * xf);
                D::Acc::from_f64(g.to_f64() * (s + xf * s * (1.0 - s) * 2.0 * du))
            }),
            UnaryOp::Silu => zip_binary(name, saved, g, |x, g| {
                let s = sigmoid(x);
                g * s * (one::<D::Acc>() + x * (one::<D::Acc>() - s))
            }),
            UnaryOp::Powf(p) => {
                let (pa, pm1) = (D::Acc::from_f64(p), D::Acc::from_f64(p - 1.0));
                zip_binary(name, saved, g, |x, g| g * pa * x.powf(pm1))
            }
            UnaryOp::Clamp(min, max) => {
                let (lo, hi) = (D::Acc::from_f64(min), D::Acc::from_f64(max));
                zip_binary(
                    name,
                    saved,
                    g,
                    |x, g| if x >= lo && x <= hi { g } else { zero() },
                )
            }
        }
    }
}

/// Defines the infallible methods of the parameter-free ops: each is [`Tensor::unary`]
/// of its variant, panicking (with the op's message) only when memory cannot be had.
macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $variant:ident;)*) => {
        impl<D: Dtype> Tensor<D> {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> Tensor<D> {
                    or_panic(self.unary(UnaryOp::$variant))
                }
            )*
        }
    };
}

unary_methods! {
    /// `-x` (exact).
    neg => Neg;
    /// `|x|` (exact).
    abs => Abs;
    /// `e^x`: for f32 compute evaluated in f64 ([`crate::cpu::fast_math::exp_in_place`], a
    /// block of elements at a time) and rounded once, so correctly rounded except within
    /// 1e-15 of a rounding boundary; libm's `exp` for f64.
    exp => Exp;
    /// Natural logarithm; `log(0) = -inf`, negative inputs give NaN.
    log => Log;
    /// Square root; negative inputs give NaN.
    sqrt => Sqrt;
    /// `1 / sqrt(x)`, computed as a division of the correctly rounded square root.
    rsqrt => Rsqrt;
    /// `1 / x`.
    recip => Recip;
    /// `x * x`.
    square => Square;
    /// Hyperbolic tangent.
    tanh => Tanh;
    /// Logistic sigmoid `1 / (1 + e^-x)` (saturates to 0 and 1 without NaN).
    sigmoid => Sigmoid;
    /// `max(x, 0)`; NaN stays NaN.
    relu => Relu;
    /// GELU with the exact error function: `x/2 * (1 + erf(x / sqrt 2))`, evaluated as
    /// `x/2 * erfc(-x / sqrt 2)`, which does not cancel for negative `x` (PyTorch's
    /// `1 + erf` form loses all digits below about -5). For f32 compute it runs the
    /// branch-free f64 path of [`crate::cpu::fast_math`] (error near 1e-12, then one rounding).
    gelu => Gelu;
    /// GELU, tanh approximation: `x/2 * (1 + tanh(u))` with
    /// `u = sqrt(2/pi) (x + 0.044715 x^3)`, evaluated as `x / (1 + e^(-2u))` (the same
    /// function, without the cancellation of `1 + tanh(u)` for negative `x`).
    gelu_tanh => GeluTanh;
    /// SiLU (swish): `x * sigmoid(x)`.
    silu => Silu;
}

impl<D: Dtype> Tensor<D> {
    /// `x^p` for every element. Errors if `p` is NaN or infinite.
    pub fn powf(&self, p: f64) -> Result<Tensor<D>> {
        self.unary(UnaryOp::Powf(p))
    }

    /// Clamps every element into `[min, max]` (NaN stays NaN). Errors unless
    /// `min <= max` and neither is NaN.
    pub fn clamp(&self, min: f64, max: f64) -> Result<Tensor<D>> {
        self.unary(UnaryOp::Clamp(min, max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::F32;
    use mixprec_testing::{TestRng, Tolerance, assert_close, for_each_dtype};

    /// erf in f64 by the series 2/sqrt(pi) e^{-x^2} sum x^{2n+1} 2^n / (1*3*...*(2n+1)),
    /// whose terms are all positive (no cancellation): an oracle independent of libm.
    fn erf_series(x: f64) -> f64 {
        let mut term = x;
        let mut sum = x;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= 2.0 * x * x / (2.0 * n + 1.0);
            sum += term;
        }
        2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp() * sum
    }

    /// Runs `op` on inputs drawn in `[lo, hi)` (rounded into D), compares with `reference`
    /// applied in f64 to the rounded inputs. Tolerance: one rounding into D plus `cond`
    /// compute-precision units where evaluating the function in f32 is ill-conditioned
    /// (the condition number is stated per op; 1 for well-conditioned functions).
    fn check<D: Dtype>(
        name: &str,
        lo: f64,
        hi: f64,
        cond: f64,
        op: impl Fn(&Tensor<D>) -> Tensor<D>,
        reference: impl Fn(f64) -> f64,
    ) {
        let mut rng = TestRng::new(0xA11CE);
        let x = Tensor::<D>::from_f64(&rng.vec(777, lo, hi), &[7, 111]).unwrap();
        let got = op(&x).to_f64_vec();
        let want: Vec<f64> = x.to_f64_vec().into_iter().map(reference).collect();
        let tol = Tolerance::rounded_once::<D>().plus_conditioning::<D>(cond);
        assert_close(&format!("{name}<{}>", D::NAME), &got, &want, tol);
    }

    fn unary_ops_match_f64<D: Dtype>() {
        check::<D>("neg", -10.0, 10.0, 1.0, |t| t.neg(), |x| -x);
        check::<D>("abs", -10.0, 10.0, 1.0, |t| t.abs(), f64::abs);
        // e^x has condition |x| <= 8.
        check::<D>("exp", -8.0, 5.0, 8.0, |t| t.exp(), f64::exp);
        check::<D>("log", 1e-3, 100.0, 1.0, |t| t.log(), f64::ln);
        check::<D>("sqrt", 0.0, 100.0, 1.0, |t| t.sqrt(), f64::sqrt);
        check::<D>("rsqrt", 1e-2, 100.0, 1.0, |t| t.rsqrt(), |x| 1.0 / x.sqrt());
        check::<D>("recip", 0.1, 10.0, 1.0, |t| t.recip(), |x| 1.0 / x);
        check::<D>("square", -10.0, 10.0, 1.0, |t| t.square(), |x| x * x);
        check::<D>("tanh", -5.0, 5.0, 1.0, |t| t.tanh(), f64::tanh);
        // e^-x has condition |x| <= 10 (sigmoid and silu alike).
        check::<D>(
            "sigmoid",
            -10.0,
            10.0,
            10.0,
            |t| t.sigmoid(),
            |x| 1.0 / (1.0 + (-x).exp()),
        );
        check::<D>("relu", -10.0, 10.0, 1.0, |t| t.relu(), |x| x.max(0.0));
        // Computed in f64 (1e-12 relative) and rounded once: one rounding, for every type.
        check::<D>(
            "gelu",
            -9.0,
            6.0,
            1.0,
            |t| t.gelu(),
            |x| 0.5 * x * erfc_oracle(-x / 2f64.sqrt()),
        );
        let k = (2.0 / std::f64::consts::PI).sqrt();
        // 1 + tanh(u) = 2 / (1 + e^(-2u)), written so that f64 does not cancel either.
        // e^(-2u) has condition |2u| = 2 sqrt(2/pi) (9 + 0.044715 * 729) = 66.4 at x = -9,
        // and u itself takes 5 roundings in f32: 5 * 66.4 / 2 half-ulps, about 170 units.
        check::<D>(
            "gelu_tanh",
            -9.0,
            6.0,
            170.0,
            |t| t.gelu_tanh(),
            |x| {
                let u = k * (x + 0.044715 * x.powi(3));
                0.5 * x * (2.0 / (1.0 + (-2.0 * u).exp()))
            },
        );
        check::<D>(
            "silu",
            -10.0,
            10.0,
            10.0,
            |t| t.silu(),
            |x| x / (1.0 + (-x).exp()),
        );
        // x^p = e^(p ln x): condition |p ln x| <= 2.5 ln 10 = 5.8 in the exponent.
        check::<D>(
            "powf",
            0.1,
            10.0,
            6.0,
            |t| t.powf(2.5).unwrap(),
            |x| x.powf(2.5),
        );
        check::<D>(
            "clamp",
            -10.0,
            10.0,
            1.0,
            |t| t.clamp(-1.5, 2.0).unwrap(),
            |x| x.clamp(-1.5, 2.0),
        );
    }
    for_each_dtype!(unary_ops_match_f64);

    /// erfc oracle: `1 - erf_series` below 2 (loses at most 3 of f64's digits there), the
    /// continued fraction e^{-z^2}/sqrt(pi) / (z + (1/2)/(z + 1/(z + (3/2)/(z + ...))))
    /// from 2 up, and `2 - erfc(-z)` for negative z.
    fn erfc_oracle(z: f64) -> f64 {
        if z < 0.0 {
            return 2.0 - erfc_oracle(-z);
        }
        if z < 2.0 {
            return 1.0 - erf_series(z);
        }
        let mut tail = z;
        for k in (1..200).rev() {
            tail = z + (k as f64 / 2.0) / tail;
        }
        (-z * z).exp() / std::f64::consts::PI.sqrt() / tail
    }

    #[test]
    fn special_values() {
        let x =
            Tensor::<F32>::from_f32(&[f32::NAN, f32::INFINITY, -f32::INFINITY, -0.0, 0.0], &[5])
                .unwrap();
        let r = x.relu().to_f32_vec();
        assert!(r[0].is_nan());
        assert_eq!(&r[1..], &[f32::INFINITY, 0.0, 0.0, 0.0]);
        let s = x.sigmoid().to_f32_vec();
        assert_eq!(&s[1..3], &[1.0, 0.0], "sigmoid saturates without NaN");
        assert_eq!(x.log().to_f32_vec()[3], f32::NEG_INFINITY);
        assert!(x.exp().to_f32_vec()[2] == 0.0);
    }

    #[test]
    fn bad_arguments_error() {
        let x = Tensor::<F32>::ones(&[2]);
        assert_eq!(
            x.clamp(2.0, 1.0).unwrap_err().to_string(),
            "clamp: need min <= max, got min 2, max 1"
        );
        assert!(x.clamp(f64::NAN, 1.0).is_err());
        assert!(
            x.powf(f64::INFINITY)
                .unwrap_err()
                .to_string()
                .starts_with("powf:")
        );
    }

    #[test]
    fn erf_oracle_is_sane() {
        // Known values: erf(1) = 0.8427007929497149, erf(2) = 0.9953222650189527.
        assert!((erf_series(1.0) - 0.842_700_792_949_714_9).abs() < 1e-15);
        assert!((erf_series(2.0) - 0.995_322_265_018_952_7).abs() < 1e-15);
        // erfc(3) = 2.209049699858544e-5, erfc(5) = 1.5374597944280349e-12.
        assert!((erfc_oracle(3.0) / 2.209_049_699_858_544e-5 - 1.0).abs() < 1e-13);
        assert!((erfc_oracle(5.0) / 1.537_459_794_428_035e-12 - 1.0).abs() < 1e-13);
        assert!((erfc_oracle(1.5) - (1.0 - erf_series(1.5))).abs() < 1e-16);
    }
}
