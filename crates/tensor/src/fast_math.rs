//! Branch-free, vectorisable `exp`, `erfc` and the GELU pair for results that are rounded
//! to f32 (or narrower) afterwards: computed in f64 with errors near 1e-12 relative, far
//! below half an f32 ulp (3e-8), so the single rounding to f32 is correct except when a
//! value lies within ~1e-12 of a rounding boundary. F64 results keep libm's functions.
//!
//! - `exp`: `x = n ln2 + r` with a two-part `ln2`, a degree-13 Taylor polynomial on
//!   `|r| <= ln2 / 2` (truncation < 3e-16), `2^n` built from the exponent bits.
//! - `erfc(z)` for `z >= 0`: `exp(-z^2) erfcx(z)` with `erfcx` a degree-16 polynomial in
//!   `u` (an affine map of `t = 1 / (1 + z/2)`), fitted by `scripts/fit_erfcx.py` to a
//!   relative error of 1.4e-12 on `[0, 14]`; beyond 14 the result (< 1e-86) underflows any
//!   f32 use anyway. Negative arguments use `erfc(-z) = 2 - erfc(z)` (no cancellation).

const LN2_HI: f64 = 0.693_147_180_369_123_8;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
/// 1.5 * 2^52: adding and subtracting it rounds an f64 of magnitude < 2^51 to an integer.
const ROUNDER: f64 = 6_755_399_441_055_744.0;

/// `e^x` for `x` in `[-708, 709]` (clamped there), relative error below 1e-15.
#[inline(always)]
pub fn exp_f64(x: f64) -> f64 {
    let x = x.clamp(-708.0, 709.0);
    // Round x log2(e) to an integer n with the 1.5 * 2^52 trick: the sum's low mantissa
    // bits hold n + 2^51, which also gives 2^n's exponent bits without a float-to-int
    // conversion (so the whole function vectorises).
    let shifted = x * std::f64::consts::LOG2_E + ROUNDER;
    let n = shifted - ROUNDER;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    // Taylor series of e^r to r^13, Horner form (coefficients 1/k!).
    const C: [f64; 14] = [
        1.0,
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5_040.0,
        1.0 / 40_320.0,
        1.0 / 362_880.0,
        1.0 / 3_628_800.0,
        1.0 / 39_916_800.0,
        1.0 / 479_001_600.0,
        1.0 / 6_227_020_800.0,
    ];
    let mut p = C[13];
    for &c in C[..13].iter().rev() {
        p = p * r + c;
    }
    let scale = f64::from_bits(shifted.to_bits().wrapping_add(1023) << 52);
    p * scale
}

// scripts/fit_erfcx.py: degree 16, z in [0, 14], max relative error 1.38e-12.
const U_SCALE: f64 = 2.285_714_285_714_285_6;
const U_SHIFT: f64 = -1.285_714_285_714_285_8;
const ERFCX: [f64; 17] = [
    0.312_724_766_605_996_2,
    0.429_907_633_345_410_43,
    0.207_856_453_757_303_66,
    0.053_410_857_102_037_25,
    -0.000_452_441_598_661_019_56,
    -0.003_749_854_430_428_050_4,
    1.934_973_878_083_891_4e-6,
    0.000_367_491_299_859_500_3,
    -4.336_415_676_412_617_6e-5,
    -3.681_425_379_253_833e-5,
    1.354_966_050_217_191_8e-5,
    1.751_917_813_998_169e-6,
    -2.585_591_021_721_947e-6,
    4.112_266_538_978_474e-7,
    3.247_116_744_017_024e-7,
    -9.053_325_855_566_773e-8,
    -2.403_833_853_232_899_5e-8,
];

/// `exp(z^2) erfc(z)` for `z` in `[0, 14]`.
#[inline(always)]
fn erfcx(z: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.5 * z);
    let u = t * U_SCALE + U_SHIFT;
    let mut p = ERFCX[16];
    for &c in ERFCX[..16].iter().rev() {
        p = p * u + c;
    }
    p
}

/// `(e, erfc(|z|) / 2)` where `e = exp(-z^2)`, `|z|` clamped to 14.
#[inline(always)]
fn half_erfc_abs(z: f64) -> (f64, f64) {
    let a = z.abs().min(14.0);
    let e = exp_f64(-a * a);
    (e, 0.5 * e * erfcx(a))
}

/// The standard normal CDF `Phi(x) = erfc(-x / sqrt 2) / 2` and the density's
/// `exp(-x^2 / 2)`, NaN in, NaN out.
#[inline(always)]
fn phi_and_gauss(x: f64) -> (f64, f64) {
    let (e, h) = half_erfc_abs(x * std::f64::consts::FRAC_1_SQRT_2);
    let cdf = if x < 0.0 { h } else { 1.0 - h };
    (if x.is_nan() { x } else { cdf }, e)
}

/// `erfc(x)` (any sign; `x > 14` gives a value below 1e-86, not 0).
#[cfg(test)]
fn erfc_f64(x: f64) -> f64 {
    let (_, h) = half_erfc_abs(x);
    if x < 0.0 { 2.0 - 2.0 * h } else { 2.0 * h }
}

/// Exact GELU `x Phi(x)`; `gelu(-inf) = -0`, `gelu(inf) = inf`.
#[inline(always)]
pub fn gelu_f64(x: f64) -> f64 {
    // Compute, then select: a branch around the computation would stop vectorisation.
    let y = x * phi_and_gauss(x).0;
    if x == f64::NEG_INFINITY { -0.0 } else { y }
}

/// `g * d/dx (x Phi(x)) = g (Phi(x) + x phi(x))`; the density term is dropped beyond
/// `|x| = 19.8` (where it is below 1e-83).
#[inline(always)]
pub fn gelu_grad_f64(x: f64, g: f64) -> f64 {
    const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
    let (cdf, e) = phi_and_gauss(x);
    let density = if x.abs() > 19.8 {
        0.0
    } else {
        x * e * INV_SQRT_2PI
    };
    g * (cdf + density)
}

/// Exact GELU in compute precision `A`: the fast f64 path for f32 compute (one rounding
/// at the end), libm's `erfc` for f64 compute.
#[inline(always)]
pub fn gelu<A: mixprec_dtype::Acc>(x: A) -> A {
    if std::mem::size_of::<A>() == 4 {
        A::from_f64(gelu_f64(x.to_f64()))
    } else {
        let xf = x.to_f64();
        A::from_f64(0.5 * xf * libm::erfc(-xf * std::f64::consts::FRAC_1_SQRT_2))
    }
}

/// `g * gelu'(x)` in compute precision `A` (as [`gelu`]: fast f64 path for f32 compute,
/// libm for f64), rounded once.
#[inline(always)]
pub fn gelu_grad<A: mixprec_dtype::Acc>(x: A, g: A) -> A {
    if std::mem::size_of::<A>() == 4 {
        A::from_f64(gelu_grad_f64(x.to_f64(), g.to_f64()))
    } else {
        let xf = x.to_f64();
        let cdf = 0.5 * libm::erfc(-xf * std::f64::consts::FRAC_1_SQRT_2);
        let pdf = (-0.5 * xf * xf).exp() / (2.0 * std::f64::consts::PI).sqrt();
        A::from_f64(g.to_f64() * (cdf + xf * pdf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std_to_a_few_ulps() {
        let mut worst = 0.0f64;
        for i in 0..=200_000 {
            let x = -700.0 + 709.0 * f64::from(i) / 200_000.0 * (709.0 + 700.0) / 709.0;
            let want = x.exp();
            worst = worst.max((exp_f64(x) / want - 1.0).abs());
        }
        // The Taylor truncation (3e-16) and a handful of roundings.
        assert!(worst < 4.0 * f64::EPSILON, "{worst}");
        assert_eq!(exp_f64(0.0), 1.0);
    }

    #[test]
    fn erfc_matches_libm_to_1e_11_relative() {
        let mut worst = 0.0f64;
        for i in 0..=140_000 {
            let x = -14.0 + 28.0 * f64::from(i) / 140_000.0;
            let want = libm::erfc(x);
            worst = worst.max((erfc_f64(x) / want - 1.0).abs());
        }
        // Fit error 1.4e-12 plus exp's and the evaluation's roundings.
        assert!(worst < 1e-11, "{worst}");
    }

    #[test]
    fn gelu_and_its_derivative_match_the_libm_formulas() {
        let reference = |x: f64| 0.5 * x * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2);
        let d_reference = |x: f64| {
            0.5 * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2)
                + x * (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
        };
        for i in 0..=40_000 {
            let x = -19.0 + 38.0 * f64::from(i) / 40_000.0;
            let (g, dg) = (gelu_f64(x), gelu_grad_f64(x, 1.0));
            let (w, dw) = (reference(x), d_reference(x));
            // Relative where the value is representable in f32, absolute below that.
            assert!(
                (g - w).abs() <= 1e-10 * w.abs() + 1e-44,
                "gelu({x}): {g} vs {w}"
            );
            // The derivative Phi + x phi cancels to 0 near x = -0.75: terms of size <= 1.1
            // with 1e-12 relative error leave 1e-12 absolute there.
            assert!(
                (dg - dw).abs() <= 1e-10 * dw.abs() + 2e-12,
                "gelu'({x}): {dg} vs {dw}"
            );
        }
        assert!(gelu_f64(f64::NAN).is_nan() && gelu_grad_f64(f64::NAN, 1.0).is_nan());
        assert_eq!(gelu_f64(f64::INFINITY), f64::INFINITY);
        assert_eq!(gelu_f64(f64::NEG_INFINITY).to_bits(), (-0.0f64).to_bits());
        assert_eq!((gelu_f64(-30.0) as f32).to_bits(), (-0.0f32).to_bits());
        assert_eq!(gelu_grad_f64(f64::INFINITY, 1.0), 1.0);
        assert_eq!(gelu_grad_f64(f64::NEG_INFINITY, 1.0) as f32, 0.0);
    }
}
