//! Tolerance presets that scale with the precision under test (burn's rel + abs idea).

use mixprec_dtype::approx_eq::rounding_tolerance;
use mixprec_dtype::{DType, Dtype};

/// `|got - want| <= abs + abs_of_max * max|want| + rel * |want|`, element by element.
/// `abs` covers the subnormal range of the type; `abs_of_max` scales with the data, which
/// is what FP8's per-tensor scaling (and cancellation in sums) needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Relative bound.
    pub rel: f64,
    /// Absolute floor.
    pub abs: f64,
    /// Absolute bound as a fraction of the largest expected magnitude.
    pub abs_of_max: f64,
}

impl Tolerance {
    /// An op that computes in f32 (f64 for F64) and rounds its result once into `D`:
    /// one unit in the last place of `D` (twice the half-ulp of a correct rounding, to leave
    /// room for f32 libm error and the FP8 scale multiply), plus `D`'s subnormal floor —
    /// the table of [`mixprec_dtype::approx_eq::rounding_tolerance`] (also the defaults of
    /// the `approx` comparisons).
    pub fn rounded_once<D: Dtype>() -> Self {
        let t = rounding_tolerance(D::DTYPE);
        Tolerance {
            rel: t.rel,
            abs: t.abs,
            abs_of_max: t.abs_of_max,
        }
    }

    /// An op with an f32 accumulation over `n` terms before the final rounding (matmul,
    /// sums, norms, softmax denominators): the rounding preset plus `n * 2^-24` relative
    /// (f32 accumulation error bound) and the same as an absolute floor, since sums with
    /// cancellation lose relative accuracy. F64 accumulates in f64: `n * 2^-53`.
    pub fn accumulated<D: Dtype>(n: usize) -> Self {
        let base = Self::rounded_once::<D>();
        let unit = if D::DTYPE == DType::F64 {
            2f64.powi(-53)
        } else {
            2f64.powi(-24)
        };
        let acc = (n.max(1) as f64) * unit;
        Tolerance {
            rel: base.rel + acc,
            abs: base.abs,
            abs_of_max: base.abs_of_max + acc,
        }
    }

    /// Adds the error of evaluating a function with condition number `cond` (relative
    /// output change per relative input change) in `D`'s compute precision: `cond` units
    /// of 2^-24 (2^-53 for F64) relative. Say where `cond` comes from at the call.
    pub fn plus_conditioning<D: Dtype>(self, cond: f64) -> Self {
        let unit = if D::DTYPE == DType::F64 {
            2f64.powi(-53)
        } else {
            2f64.powi(-24)
        };
        Tolerance {
            rel: self.rel + cond * unit,
            ..self
        }
    }

    /// Multiplies both bounds (for ops whose conditioning amplifies the rounding: a
    /// difference of rounded inputs, a log near 1). Say why next to the call.
    pub fn times(self, k: f64) -> Self {
        Tolerance {
            rel: self.rel * k,
            abs: self.abs * k,
            abs_of_max: self.abs_of_max * k,
        }
    }

    /// The first element outside the bound, with a message that names it.
    pub fn check(&self, got: &[f64], want: &[f64]) -> Result<(), String> {
        if got.len() != want.len() {
            return Err(format!("length {} != expected {}", got.len(), want.len()));
        }
        let max = want
            .iter()
            .filter(|v| v.is_finite())
            .fold(0.0f64, |m, v| m.max(v.abs()));
        let abs = self.abs + self.abs_of_max * max;
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let ok = if w.is_nan() {
                g.is_nan()
            } else if w.is_infinite() {
                g == w
            } else {
                (g - w).abs() <= abs + self.rel * w.abs()
            };
            if !ok {
                return Err(format!(
                    "element {i}: got {g:e}, expected {w:e} (|diff| {:e} > {:e} = abs {abs:e} + rel {:e} * |expected|)",
                    (g - w).abs(),
                    abs + self.rel * w.abs(),
                    self.rel
                ));
            }
        }
        Ok(())
    }
}

/// Panics with `what` and the first offending element unless `got` matches `want`
/// within `tol`.
#[track_caller]
pub fn assert_close(what: &str, got: &[f64], want: &[f64], tol: Tolerance) {
    if let Err(msg) = tol.check(got, want) {
        panic!("{what}: {msg}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::{Bf16, F32};

    #[test]
    fn one_bf16_rounding_passes_and_two_ulps_fail() {
        let tol = Tolerance::rounded_once::<Bf16>();
        let want = [1.0 + 1.0 / 300.0];
        let rounded = Bf16::from_f64(want[0]).to_f64();
        assert!(tol.check(&[rounded], &want).is_ok());
        assert!(
            tol.check(&[want[0] * (1.0 + 3.0 * 2f64.powi(-8))], &want)
                .is_err()
        );
    }

    #[test]
    fn nan_and_infinity_must_match_exactly() {
        let tol = Tolerance::rounded_once::<F32>();
        assert!(tol.check(&[f64::NAN], &[f64::NAN]).is_ok());
        assert!(tol.check(&[1.0], &[f64::NAN]).is_err());
        assert!(tol.check(&[f64::INFINITY], &[f64::INFINITY]).is_ok());
        assert!(tol.check(&[f64::MAX], &[f64::INFINITY]).is_err());
    }
}
