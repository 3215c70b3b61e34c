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

/// Lanes evaluated side by side by the slice functions: each step of a polynomial runs
/// over all lanes before the next, so the lanes' independent chains keep the FMA pipes
/// busy instead of waiting on one chain's latency (what makes the block form ~3x faster
/// than an element-at-a-time loop). Every lane takes exactly the scalar operation
/// sequence, so block and scalar results are bit-identical.
pub const LANES: usize = 32;

/// Taylor coefficients `1/k!` of `e^r`, `k = 0..=13`.
const EXP_TAYLOR: [f64; 14] = [
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

/// `p(u)` for polynomial coefficients `c` (lowest first), Horner's rule lane by lane
/// with fused multiply-adds (one rounding per step; one instruction where the CPU has
/// FMA, libm's correctly rounded `fma` otherwise, so every machine gets the same bits).
#[inline(always)]
fn horner<const N: usize>(c: &[f64], u: &[f64; N]) -> [f64; N] {
    let (&top, rest) = c.split_last().expect("a polynomial has coefficients");
    let mut p = [top; N];
    for &k in rest.iter().rev() {
        for i in 0..N {
            p[i] = p[i].mul_add(u[i], k);
        }
    }
    p
}

/// `e^x` lane by lane for `x` in `[-708, 709]` (clamped there), relative error below
/// 1e-15.
#[inline(always)]
fn exp_lanes<const N: usize>(x: &[f64; N]) -> [f64; N] {
    let mut shifted = [0.0; N];
    let mut r = [0.0; N];
    for i in 0..N {
        let x = x[i].clamp(-708.0, 709.0);
        // Round x log2(e) to an integer n with the 1.5 * 2^52 trick: the sum's low
        // mantissa bits hold n + 2^51, which also gives 2^n's exponent bits without a
        // float-to-int conversion (so the whole function vectorises).
        shifted[i] = x * std::f64::consts::LOG2_E + ROUNDER;
        let n = shifted[i] - ROUNDER;
        r[i] = (x - n * LN2_HI) - n * LN2_LO;
    }
    let mut p = horner(&EXP_TAYLOR, &r);
    for i in 0..N {
        p[i] *= f64::from_bits(shifted[i].to_bits().wrapping_add(1023) << 52);
    }
    p
}

/// `e^x` for `x` in `[-708, 709]` (clamped there), relative error below 1e-15.
#[cfg(test)]
fn exp_f64(x: f64) -> f64 {
    exp_lanes(&[x])[0]
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

/// The standard normal CDF `Phi(x) = erfc(-x / sqrt 2) / 2` and the density's
/// `exp(-x^2 / 2)`, lane by lane; NaN in, NaN out. `erfc(a)` for `a = |x| / sqrt 2`
/// clamped to 14 is `exp(-a^2) erfcx(a)` with the fitted `erfcx` polynomial.
#[inline(always)]
fn phi_and_gauss_lanes<const N: usize>(x: &[f64; N]) -> ([f64; N], [f64; N]) {
    let mut a = [0.0; N];
    let mut neg_a2 = [0.0; N];
    let mut u = [0.0; N];
    for i in 0..N {
        a[i] = (x[i] * std::f64::consts::FRAC_1_SQRT_2).abs().min(14.0);
        neg_a2[i] = -a[i] * a[i];
        let t = 1.0 / (1.0 + 0.5 * a[i]);
        u[i] = t * U_SCALE + U_SHIFT;
    }
    let e = exp_lanes(&neg_a2);
    let erfcx = horner(&ERFCX, &u);
    let mut cdf = [0.0; N];
    for i in 0..N {
        // Compute, then select: a branch around the computation would stop vectorisation.
        let h = 0.5 * e[i] * erfcx[i];
        let c = if x[i] < 0.0 { h } else { 1.0 - h };
        cdf[i] = if x[i].is_nan() { x[i] } else { c };
    }
    (cdf, e)
}

/// `erfc(x)` (any sign; `x > 14` gives a value below 1e-86, not 0).
#[cfg(test)]
fn erfc_f64(x: f64) -> f64 {
    // Phi(-x sqrt 2) = erfc(x) / 2.
    2.0 * phi_and_gauss_lanes(&[-x * std::f64::consts::SQRT_2]).0[0]
}

/// Exact GELU `x Phi(x)` lane by lane; `gelu(-inf) = -0`, `gelu(inf) = inf`.
#[inline(always)]
fn gelu_lanes<const N: usize>(x: &[f64; N]) -> [f64; N] {
    let (mut y, _) = phi_and_gauss_lanes(x);
    for i in 0..N {
        let v = x[i] * y[i];
        y[i] = if x[i] == f64::NEG_INFINITY { -0.0 } else { v };
    }
    y
}

/// `g * (Phi(x) + x phi(x))` lane by lane; the density term is dropped beyond
/// `|x| = 19.8` (where it is below 1e-83).
#[inline(always)]
fn gelu_grad_lanes<const N: usize>(x: &[f64; N], g: &[f64; N]) -> [f64; N] {
    let (mut d, e) = phi_and_gauss_lanes(x);
    grad_from_parts(x, g, &mut d, &e);
    d
}

/// `d = g * (d + x phi(x))` where `d` holds `Phi(x)` and `e` the density's
/// `exp(-x^2 / 2)`; the density term is dropped beyond `|x| = 19.8`.
#[inline(always)]
fn grad_from_parts<const N: usize>(x: &[f64; N], g: &[f64; N], d: &mut [f64; N], e: &[f64; N]) {
    const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
    for i in 0..N {
        let density = if x[i].abs() > 19.8 {
            0.0
        } else {
            x[i] * e[i] * INV_SQRT_2PI
        };
        d[i] = g[i] * (d[i] + density);
    }
}

/// GELU and its derivative lane by lane from one evaluation of `Phi` and the density:
/// the values of [`gelu_lanes`] and of [`gelu_grad_lanes`] with `g = 1`, bit for bit.
#[inline(always)]
fn gelu_and_derivative_lanes<const N: usize>(x: &[f64; N]) -> ([f64; N], [f64; N]) {
    let ones = [1.0; N];
    let (cdf, e) = phi_and_gauss_lanes(x);
    let (mut y, mut d) = (cdf, cdf);
    for i in 0..N {
        let v = x[i] * cdf[i];
        y[i] = if x[i] == f64::NEG_INFINITY { -0.0 } else { v };
    }
    grad_from_parts(x, &ones, &mut d, &e);
    (y, d)
}

/// Exact GELU `x Phi(x)`; `gelu(-inf) = -0`, `gelu(inf) = inf`.
#[inline(always)]
pub fn gelu_f64(x: f64) -> f64 {
    gelu_lanes(&[x])[0]
}

/// `g * d/dx (x Phi(x)) = g (Phi(x) + x phi(x))`; the density term is dropped beyond
/// `|x| = 19.8` (where it is below 1e-83).
#[inline(always)]
pub fn gelu_grad_f64(x: f64, g: f64) -> f64 {
    gelu_grad_lanes(&[x], &[g])[0]
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

/// `buf[i] = gelu(buf[i])` in compute precision `A`, each result rounded once: for f32,
/// [`LANES`] elements at a time through the f64 lane functions (AVX2 + FMA or AVX-512
/// when the CPU has them); for f64, libm per element. Same values as [`gelu`] element by
/// element.
pub fn gelu_in_place<A: mixprec_dtype::Acc>(buf: &mut [A]) {
    match crate::cpu::simd::f32_view_mut(buf) {
        Some(v) => gelu_blocks(v),
        None => buf.iter_mut().for_each(|v| *v = gelu(*v)),
    }
}

/// `buf[i] = gelu(buf[i])` and `deriv[i] = gelu'(buf[i])` from one evaluation, each
/// rounded once to f32 (the values of [`gelu_in_place`] and of [`gelu_grad_in_place`]
/// with a gradient of ones). f32 only: `buf` and `deriv` have equal lengths.
pub fn gelu_and_derivative_f32(buf: &mut [f32], deriv: &mut [f32]) {
    debug_assert_eq!(buf.len(), deriv.len());
    gelu_derivative_blocks(buf, deriv);
}

/// `buf[i] = e^buf[i]` in compute precision `A`, rounded once: for f32 through the f64
/// lane function (relative error below 1e-15 before the rounding, so the result is the
/// correctly rounded `e^x` unless it lies within 1e-15 of a rounding boundary; libm's
/// `expf` allows one ulp), for f64 libm's `exp`.
pub fn exp_in_place<A: mixprec_dtype::Acc>(buf: &mut [A]) {
    match crate::cpu::simd::f32_view_mut(buf) {
        Some(v) => exp_blocks(v),
        None => buf.iter_mut().for_each(|v| *v = v.exp()),
    }
}

/// `x[i] = g[i] * gelu'(x[i])` in compute precision `A`, rounded once (as
/// [`gelu_in_place`]; same values as [`gelu_grad`]). `x` and `g` have equal lengths.
pub fn gelu_grad_in_place<A: mixprec_dtype::Acc>(x: &mut [A], g: &[A]) {
    debug_assert_eq!(x.len(), g.len());
    match (
        crate::cpu::simd::f32_view_mut(x),
        crate::cpu::simd::f32_view(g),
    ) {
        (Some(v), Some(g)) => gelu_grad_blocks(v, g),
        _ => x
            .iter_mut()
            .zip(g)
            .for_each(|(v, &g)| *v = gelu_grad(*v, g)),
    }
}

crate::cpu::simd::multiversioned! {
    /// `v = gelu(v)` in blocks of [`LANES`] widened to f64 (a short last block is padded
    /// with zeros), rounded once to f32.
    fn gelu_blocks(v: &mut [f32]) {
        for block in v.chunks_mut(LANES) {
            narrow_into(block, &gelu_lanes(&widen(block)));
        }
    }
}

crate::cpu::simd::multiversioned! {
    /// `v = gelu(v)`, `d = gelu'(v)` blockwise, as [`gelu_blocks`].
    fn gelu_derivative_blocks(v: &mut [f32], d: &mut [f32]) {
        for (block, db) in v.chunks_mut(LANES).zip(d.chunks_mut(LANES)) {
            let (y, dy) = gelu_and_derivative_lanes(&widen(block));
            narrow_into(block, &y);
            narrow_into(db, &dy);
        }
    }
}

crate::cpu::simd::multiversioned! {
    /// `v = e^v` blockwise, as [`gelu_blocks`].
    fn exp_blocks(v: &mut [f32]) {
        for block in v.chunks_mut(LANES) {
            narrow_into(block, &exp_lanes(&widen(block)));
        }
    }
}

crate::cpu::simd::multiversioned! {
    /// `v = g * gelu'(v)` blockwise, as [`gelu_blocks`].
    fn gelu_grad_blocks(v: &mut [f32], g: &[f32]) {
        for (block, gb) in v.chunks_mut(LANES).zip(g.chunks(LANES)) {
            narrow_into(block, &gelu_grad_lanes(&widen(block), &widen(gb)));
        }
    }
}

/// Up to [`LANES`] f32 values widened to f64, zero-padded. A full block converts as one
/// fixed-size array (whole-register conversions, no partial stores to reload).
#[inline(always)]
fn widen(block: &[f32]) -> [f64; LANES] {
    let mut x = [0.0; LANES];
    if let Ok(full) = <&[f32; LANES]>::try_from(block) {
        for i in 0..LANES {
            x[i] = f64::from(full[i]);
        }
    } else {
        x.iter_mut()
            .zip(block)
            .for_each(|(x, &b)| *x = f64::from(b));
    }
    x
}

/// `block = y` rounded to f32 (the first `block.len()` lanes), as [`widen`].
#[inline(always)]
fn narrow_into(block: &mut [f32], y: &[f64; LANES]) {
    if block.len() == LANES {
        for i in 0..LANES {
            block[i] = y[i] as f32;
        }
    } else {
        block.iter_mut().zip(y).for_each(|(b, &y)| *b = y as f32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The f32 block path rounds the f64 value once: the same f32 as rounding std's f64
    /// `exp` (they differ only within 1e-15 of a rounding boundary, which this sweep does
    /// not meet), including overflow to inf, underflow through the subnormals to 0, and
    /// the special values.
    #[test]
    fn exp_in_place_rounds_the_f64_exponential_once() {
        let mut xs: Vec<f32> = (0..=200_000)
            .map(|i| -105.0 + 200.0 * i as f32 / 200_000.0)
            .collect();
        xs.extend([
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MAX,
            f32::MIN,
        ]);
        let mut got = xs.clone();
        exp_in_place(&mut got);
        for (&x, &y) in xs.iter().zip(&got) {
            let want = f64::from(x).exp() as f32;
            assert!(
                y.to_bits() == want.to_bits() || (y.is_nan() && want.is_nan()),
                "exp({x}) = {y}, want {want}"
            );
        }
    }

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
