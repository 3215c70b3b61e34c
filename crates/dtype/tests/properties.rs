//! Properties of the conversions over all f32 bit patterns, with generators that reach
//! the hard values: ties and their f32 neighbours, subnormals, the overflow threshold,
//! NaNs, infinities and negative zero. One generic body per property, stamped out for
//! every narrow type by `for_each_narrow_type!`.

use mixprec_dtype::{Bf16, Dtype, E4M3, E5M2, F16};
use proptest::prelude::*;

/// Magnitude-code helpers that the properties need for every narrow type.
trait Codes: Dtype {
    /// Bits widened to u32.
    fn code(self) -> u32;
    /// The value with these (sign-included) bits.
    fn from_code(code: u32) -> Self;
    /// Position of the sign bit.
    const SIGN_SHIFT: u32 = (8 * Self::BYTES as u32) - 1;
    /// Magnitude code of MAX.
    fn max_code() -> u32 {
        Self::MAX.code()
    }
}
macro_rules! impl_codes {
    ($($t:ty => $bits:ty),*) => {$(
        impl Codes for $t {
            fn code(self) -> u32 { u32::from(self.to_bits()) }
            fn from_code(code: u32) -> Self { <$t>::from_bits(code as $bits) }
        }
    )*};
}
impl_codes!(Bf16 => u16, F16 => u16, E4M3 => u8, E5M2 => u8);

/// Finite values adjacent to `v` in value order (the codes next to it).
fn neighbours<T: Codes>(v: T) -> Vec<f64> {
    let sign = v.code() & (1 << T::SIGN_SHIFT);
    let mag = v.code() & !(1 << T::SIGN_SHIFT);
    let mut out = Vec::new();
    if mag < T::max_code() {
        out.push(T::from_code(sign | (mag + 1)).to_f64());
    }
    if mag > 0 {
        out.push(T::from_code(sign | (mag - 1)).to_f64());
    } else {
        out.push(T::from_code((sign ^ (1 << T::SIGN_SHIFT)) | 1).to_f64());
    }
    out
}

/// f32 inputs: any bit pattern, or a value built around a random code of `T`: the code's
/// value, the midpoint to the next code (a tie), and each one f32 ulp either side.
fn hard_f32<T: Codes>() -> impl Strategy<Value = f32> {
    let around_code = (any::<u32>(), 0u8..6).prop_map(|(raw, kind)| {
        let code = raw & ((1u32 << (8 * T::BYTES)) - 1);
        let here = T::from_code(code);
        let next = T::from_code(
            code + 1
                - (code & (1 << T::SIGN_SHIFT) == 0
                    && (code & !(1 << T::SIGN_SHIFT)) >= T::max_code()) as u32,
        );
        let (a, b) = (here.to_f64(), next.to_f64());
        let mid = if a.is_finite() && b.is_finite() {
            ((a + b) / 2.0) as f32
        } else {
            here.to_f32()
        };
        let bump = |x: f32, up: bool| {
            if !x.is_finite() || x == 0.0 {
                x
            } else if up == (x > 0.0) {
                f32::from_bits(x.to_bits() + 1)
            } else {
                f32::from_bits(x.to_bits() - 1)
            }
        };
        match kind {
            0 => here.to_f32(),
            1 => mid,
            2 => bump(mid, true),
            3 => bump(mid, false),
            4 => -mid,
            _ => bump(here.to_f32(), true),
        }
    });
    let specials = prop::sample::select(vec![
        0.0f32,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7F80_0001),
        f32::MAX,
        -f32::MAX,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
    ]);
    prop_oneof![
        4 => any::<u32>().prop_map(f32::from_bits),
        4 => around_code,
        1 => specials,
    ]
}

fn monotonic<T: Codes>(x: f32, y: f32) -> Result<(), TestCaseError> {
    prop_assume!(!x.is_nan() && !y.is_nan());
    let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
    let (a, b) = (
        T::from_f32_saturating(lo).to_f32(),
        T::from_f32_saturating(hi).to_f32(),
    );
    prop_assert!(a <= b, "saturating: q({lo:e}) = {a:e} > q({hi:e}) = {b:e}");
    let (a, b) = (T::from_f32(lo), T::from_f32(hi));
    if !a.is_nan() && !b.is_nan() {
        prop_assert!(
            a.to_f32() <= b.to_f32(),
            "q({lo:e}) = {a:?} > q({hi:e}) = {b:?}"
        );
    }
    Ok(())
}

fn nearest<T: Codes>(x: f32) -> Result<(), TestCaseError> {
    prop_assume!(x.is_finite() && f64::from(x.abs()) <= T::MAX.to_f64());
    let q = T::from_f32(x);
    prop_assert!(q.is_finite(), "{x:e} within range gave {q:?}");
    let err = (q.to_f64() - f64::from(x)).abs();
    for other in neighbours(q) {
        prop_assert!(
            err <= (other - f64::from(x)).abs(),
            "{x:e} -> {q:?}, but {other:e} is closer"
        );
    }
    Ok(())
}

fn symmetric<T: Codes>(x: f32) -> Result<(), TestCaseError> {
    let (p, n) = (T::from_f32(x), T::from_f32(-x));
    if x.is_nan() {
        prop_assert!(p.is_nan() && n.is_nan());
    } else {
        prop_assert_eq!(p.code() ^ (1 << T::SIGN_SHIFT), n.code(), "{:e}", x);
    }
    let (p, n) = (T::from_f32_saturating(x), T::from_f32_saturating(-x));
    if !x.is_nan() {
        prop_assert_eq!(
            p.code() ^ (1 << T::SIGN_SHIFT),
            n.code(),
            "saturating {:e}",
            x
        );
    }
    Ok(())
}

fn idempotent<T: Codes>(x: f32) -> Result<(), TestCaseError> {
    let q = T::from_f32(x);
    if q.is_nan() {
        prop_assert!(T::from_f32(q.to_f32()).is_nan());
    } else {
        prop_assert_eq!(T::from_f32(q.to_f32()).code(), q.code(), "{:e}", x);
        if q.is_finite() {
            prop_assert_eq!(
                T::from_f32_saturating(q.to_f32()).code(),
                q.code(),
                "{:e}",
                x
            );
        }
    }
    Ok(())
}

fn saturating_stays_finite<T: Codes>(x: f32) -> Result<(), TestCaseError> {
    let q = T::from_f32_saturating(x);
    if x.is_nan() {
        prop_assert!(q.is_nan());
    } else {
        prop_assert!(q.is_finite(), "{x:e} -> {q:?}");
    }
    Ok(())
}

fn stochastic_picks_a_neighbour<T: Codes>(x: f32, random: u32) -> Result<(), TestCaseError> {
    prop_assume!(x.is_finite() && f64::from(x.abs()) <= T::MAX.to_f64());
    let s = T::from_f32_stochastic(x, random).to_f64();
    let q = T::from_f32(x);
    let xf = f64::from(x);
    if q.to_f64() == xf {
        prop_assert_eq!(s, xf, "exact {:e} must stay", x);
        return Ok(());
    }
    // The other neighbour of x: the code next to q on x's side.
    let other = neighbours(q).into_iter().find(|&c| {
        (c - xf).signum() == -(q.to_f64() - xf).signum() && c != 0.0
            || (c == 0.0 && xf.abs() < q.to_f64().abs())
    });
    let ok = s == q.to_f64() || Some(s) == other;
    prop_assert!(
        ok,
        "{x:e}: stochastic gave {s:e}; neighbours are {:e} and {other:?}",
        q.to_f64()
    );
    Ok(())
}

macro_rules! for_each_narrow_type {
    ($($module:ident => $t:ty),*) => {$(
        mod $module {
            use super::*;
            proptest! {
                #![proptest_config(ProptestConfig {
                    cases: 3000,
                    // Range-limited properties reject most raw f32 patterns for FP8.
                    max_global_rejects: 1_000_000,
                    failure_persistence: None,
                    ..ProptestConfig::default()
                })]
                #[test]
                fn monotonic(x in hard_f32::<$t>(), y in hard_f32::<$t>()) { super::monotonic::<$t>(x, y)?; }
                #[test]
                fn nearest(x in hard_f32::<$t>()) { super::nearest::<$t>(x)?; }
                #[test]
                fn symmetric(x in hard_f32::<$t>()) { super::symmetric::<$t>(x)?; }
                #[test]
                fn idempotent(x in hard_f32::<$t>()) { super::idempotent::<$t>(x)?; }
                #[test]
                fn saturating_stays_finite(x in hard_f32::<$t>()) { super::saturating_stays_finite::<$t>(x)?; }
                #[test]
                fn stochastic_picks_a_neighbour(x in hard_f32::<$t>(), r in any::<u32>()) {
                    super::stochastic_picks_a_neighbour::<$t>(x, r)?;
                }
                #[test]
                fn from_bits_classifies_every_pattern(raw in any::<u32>()) {
                    let v = <$t>::from_code(raw & ((1u32 << (8 * <$t>::BYTES)) - 1));
                    let f = v.to_f32();
                    prop_assert_eq!(v.is_nan(), f.is_nan());
                    prop_assert_eq!(v.is_finite(), f.is_finite());
                    prop_assert_eq!(v.is_infinite(), f.is_infinite());
                    prop_assert!(<$t>::HAS_INF || !v.is_infinite());
                }
            }
        }
    )*};
}
for_each_narrow_type!(bf16 => Bf16, f16 => F16, e4m3 => E4M3, e5m2 => E5M2);

/// SplitMix64: a fixed, dependency-free source of random bits for the statistical test.
struct SplitMix64(u64);
impl SplitMix64 {
    fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 32) as u32
    }
}

/// The mean of many stochastic roundings converges to x. With N draws of a two-point
/// variable on {lo, hi} the standard error is sqrt((hi - x)(x - lo) / N); the bound is
/// 5 standard errors (a false failure has probability below 1e-6 for a fixed seed that
/// passes once, and the seed is fixed) plus the 2^-32-of-a-quantum truncation bias.
fn stochastic_mean_converges<T: Codes>() {
    const N: usize = 200_000;
    let mut rng = SplitMix64(0x0005_EED0_FA11);
    let ulp1 = T::EPSILON.to_f64();
    let min_sub = T::MIN_SUBNORMAL.to_f64();
    let max = T::MAX.to_f64();
    let cases = [
        1.0 + 0.3 * ulp1,
        -(1.0 + 0.7 * ulp1),
        3.1,
        min_sub * 0.37,
        min_sub * 5.5,
        T::MIN_POSITIVE.to_f64() * 0.9,
        max * (1.0 - ulp1 * 0.2),
    ];
    for &x64 in &cases {
        let x = x64 as f32;
        let xf = f64::from(x);
        let mut sum = 0.0f64;
        for _ in 0..N {
            sum += T::from_f32_stochastic(x, rng.next_u32()).to_f64();
        }
        let mean = sum / N as f64;
        let q = T::from_f32(x).to_f64();
        let other = neighbours(T::from_f32(x))
            .into_iter()
            .min_by(|a, b| (a - xf).abs().total_cmp(&(b - xf).abs()))
            .unwrap();
        let (lo, hi) = if q < other { (q, other) } else { (other, q) };
        let se = ((hi - xf).abs() * (xf - lo).abs() / N as f64).sqrt();
        let bound = 5.0 * se + (hi - lo) * 2f64.powi(-32);
        assert!(
            (mean - xf).abs() <= bound,
            "{}: x = {xf:e}, mean of {N} draws = {mean:e}, |diff| = {:e} > bound {bound:e}",
            T::NAME,
            (mean - xf).abs()
        );
    }
}

#[test]
fn stochastic_mean_converges_bf16() {
    stochastic_mean_converges::<Bf16>();
}
#[test]
fn stochastic_mean_converges_f16() {
    stochastic_mean_converges::<F16>();
}
#[test]
fn stochastic_mean_converges_e4m3() {
    stochastic_mean_converges::<E4M3>();
}
#[test]
fn stochastic_mean_converges_e5m2() {
    stochastic_mean_converges::<E5M2>();
}

/// Format constants match the golden README's table (ml_dtypes.finfo).
#[test]
fn format_constants() {
    let rows: [(&str, f64, f64, f64, f64, bool, usize); 4] = [
        (
            Bf16::NAME,
            Bf16::MAX.to_f64(),
            Bf16::MIN_POSITIVE.to_f64(),
            Bf16::MIN_SUBNORMAL.to_f64(),
            Bf16::EPSILON.to_f64(),
            Bf16::HAS_INF,
            Bf16::BYTES,
        ),
        (
            F16::NAME,
            F16::MAX.to_f64(),
            F16::MIN_POSITIVE.to_f64(),
            F16::MIN_SUBNORMAL.to_f64(),
            F16::EPSILON.to_f64(),
            F16::HAS_INF,
            F16::BYTES,
        ),
        (
            E4M3::NAME,
            E4M3::MAX.to_f64(),
            E4M3::MIN_POSITIVE.to_f64(),
            E4M3::MIN_SUBNORMAL.to_f64(),
            E4M3::EPSILON.to_f64(),
            E4M3::HAS_INF,
            E4M3::BYTES,
        ),
        (
            E5M2::NAME,
            E5M2::MAX.to_f64(),
            E5M2::MIN_POSITIVE.to_f64(),
            E5M2::MIN_SUBNORMAL.to_f64(),
            E5M2::EPSILON.to_f64(),
            E5M2::HAS_INF,
            E5M2::BYTES,
        ),
    ];
    let expected = [
        (
            "bf16",
            3.3895313892515355e38,
            2f64.powi(-126),
            2f64.powi(-133),
            2f64.powi(-7),
            true,
            2,
        ),
        (
            "f16",
            65504.0,
            2f64.powi(-14),
            2f64.powi(-24),
            2f64.powi(-10),
            true,
            2,
        ),
        ("e4m3", 448.0, 2f64.powi(-6), 2f64.powi(-9), 0.125, false, 1),
        (
            "e5m2",
            57344.0,
            2f64.powi(-14),
            2f64.powi(-16),
            0.25,
            true,
            1,
        ),
    ];
    assert_eq!(rows, expected);
    assert_eq!(Bf16::ONE.to_f32(), 1.0);
    assert_eq!(E4M3::ONE.to_f32(), 1.0);
    assert_eq!(E5M2::ONE.to_f32(), 1.0);
    assert_eq!(F16::ONE.to_f32(), 1.0);
}

/// `from_f64` rounds once: a value just above a narrow tie that f64 -> f32 would round
/// onto the tie must still round up.
#[test]
fn from_f64_rounds_once() {
    // bf16 tie between 1 and 1 + 2^-7 is 1 + 2^-8; add 2^-40 (lost when rounding to f32).
    let x = 1.0 + 2f64.powi(-8) + 2f64.powi(-40);
    assert_eq!((x as f32), 1.0 + 2f32.powi(-8), "f32 lands on the tie");
    assert_eq!(
        Bf16::from_f32(x as f32).to_f32(),
        1.0,
        "double rounding goes to even"
    );
    assert_eq!(
        Bf16::from_f64(x).to_f32(),
        1.0 + 2f32.powi(-7),
        "single rounding goes up"
    );
    assert!(E4M3::from_f64(1e10).is_nan());
    assert_eq!(F16::from_f64(-1e300).to_f32(), f32::NEG_INFINITY);
    assert!(E5M2::from_f64(f64::NAN).is_nan());
}
