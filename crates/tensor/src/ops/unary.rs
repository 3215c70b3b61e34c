//! Element-wise unary ops. Each computes in `D::Acc` (f32; f64 for `F64`) and rounds its
//! result once into `D` (nearest even).

use super::map::map_unary;
use crate::error::{Error, Result, or_panic};
use crate::tensor::Tensor;
use mixprec_dtype::{Acc, Dtype};
use num_traits::{Float, One, Zero};

/// Defines infallible unary ops as methods: name, doc, and the function of `x: D::Acc`.
macro_rules! unary_ops {
    ($($(#[$doc:meta])* $name:ident => |$x:ident| $body:expr;)*) => {
        impl<D: Dtype> Tensor<D> {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> Tensor<D> {
                    or_panic(map_unary(stringify!($name), self, |$x: D::Acc| $body))
                }
            )*
        }
    };
}

unary_ops! {
    /// `-x` (exact).
    neg => |x| -x;
    /// `|x|` (exact).
    abs => |x| x.abs();
    /// Natural logarithm; `log(0) = -inf`, negative inputs give NaN.
    log => |x| x.ln();
    /// Square root; negative inputs give NaN.
    sqrt => |x| x.sqrt();
    /// `1 / sqrt(x)`, computed as a division of the correctly rounded square root.
    rsqrt => |x| D::Acc::one() / x.sqrt();
    /// `1 / x`.
    recip => |x| D::Acc::one() / x;
    /// `x * x`.
    square => |x| x * x;
    /// Hyperbolic tangent.
    tanh => |x| x.tanh();
    /// Logistic sigmoid `1 / (1 + e^-x)` (saturates to 0 and 1 without NaN).
    sigmoid => |x| D::Acc::one() / (D::Acc::one() + (-x).exp());
    /// `max(x, 0)`; NaN stays NaN.
    relu => |x| if x > D::Acc::zero() || x.is_nan() { x } else { D::Acc::zero() };
    /// GELU, tanh approximation: `x/2 * (1 + tanh(u))` with
    /// `u = sqrt(2/pi) (x + 0.044715 x^3)`, evaluated as `x / (1 + e^(-2u))` (the same
    /// function, without the cancellation of `1 + tanh(u)` for negative `x`).
    gelu_tanh => |x| {
        let k = D::Acc::from_f64((2.0 / std::f64::consts::PI).sqrt());
        let c = D::Acc::from_f64(0.044715);
        let u = k * (x + c * x * x * x);
        x / (D::Acc::one() + (-(u + u)).exp())
    };
    /// SiLU (swish): `x * sigmoid(x)`.
    silu => |x| x / (D::Acc::one() + (-x).exp());
}

impl<D: Dtype> Tensor<D> {
    /// `e^x`: for f32 compute evaluated in f64 ([`crate::fast_math::exp_in_place`], a
    /// block of elements at a time) and rounded once, so correctly rounded except within
    /// 1e-15 of a rounding boundary; libm's `exp` for f64.
    pub fn exp(&self) -> Tensor<D> {
        or_panic(super::map::map_unary_chunks(
            "exp",
            self,
            super::map::PARALLEL_MIN_EXPENSIVE,
            crate::fast_math::exp_in_place,
        ))
    }

    /// `x^p` for every element. Errors if `p` is NaN or infinite.
    pub fn powf(&self, p: f64) -> Result<Tensor<D>> {
        if !p.is_finite() {
            return Err(Error::invalid(
                "powf",
                format!("exponent must be finite, got {p}"),
            ));
        }
        let p = D::Acc::from_f64(p);
        map_unary("powf", self, |x| x.powf(p))
    }

    /// Clamps every element into `[min, max]` (NaN stays NaN). Errors unless
    /// `min <= max` and neither is NaN.
    pub fn clamp(&self, min: f64, max: f64) -> Result<Tensor<D>> {
        if min.is_nan() || max.is_nan() || min > max {
            return Err(Error::invalid(
                "clamp",
                format!("need min <= max, got min {min}, max {max}"),
            ));
        }
        let (lo, hi) = (D::Acc::from_f64(min), D::Acc::from_f64(max));
        map_unary("clamp", self, |x| {
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
