//! The round-to-nearest cast of non-F64 tensors, chunk by chunk: each chunk of source
//! values is widened to f32 (exact), rounded into the target by the SIMD slice
//! conversions, and counted (underflow, overflow, saturation, NaN, and the largest
//! magnitude) while it is in L1; chunks run on both cores for large tensors and their
//! counts are added. The same chunks give [`amax`] on its own (FP8 current scaling).

use crate::cpu::map::CHUNK;
use crate::cpu::pool::par_zip_chunks_with;
use crate::ops::CastReport;
use crate::tensor::Tensor;
use mixprec_dtype::{
    Dtype, convert_slice, convert_slice_saturating, convert_slice_scaled,
    convert_slice_scaled_saturating, convert_slice_to_f32,
};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// Below this many elements a cast runs on one core.
const PARALLEL_MIN: usize = 1 << 14;

/// Counts of one cast (see [`CastReport`]).
#[derive(Default)]
struct Counts {
    underflowed: usize,
    overflowed: usize,
    saturated: usize,
    nan: usize,
    /// [`abs_bits`] maxed over the source values.
    amax_bits: u32,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.underflowed += o.underflowed;
        self.overflowed += o.overflowed;
        self.saturated += o.saturated;
        self.nan += o.nan;
        self.amax_bits = self.amax_bits.max(o.amax_bits);
    }
}

/// `|v|`'s bit pattern. For non-negative floats the unsigned order of the bits is the
/// order of the values, and every NaN's bits exceed infinity's, so an integer maximum of
/// these is the largest magnitude, or a NaN when any value is NaN: a reduction that
/// vectorises (`vpmaxud`), where a float maximum with NaN checks does not.
#[inline(always)]
fn abs_bits(v: f32) -> u32 {
    v.to_bits() & 0x7fff_ffff
}

/// The magnitude whose [`abs_bits`] are `bits`, with any NaN made the canonical NaN.
fn amax_from_bits(bits: u32) -> f32 {
    let a = f32::from_bits(bits);
    if a.is_nan() { f32::NAN } else { a }
}

crate::cpu::simd::multiversioned! {
    /// The largest [`abs_bits`] of `f` (0 for an empty slice).
    fn max_abs_bits(f: &[f32]) -> u32 {
        f.iter().fold(0u32, |m, &v| m.max(abs_bits(v)))
    }
}

crate::cpu::simd::multiversioned! {
    /// The largest [`abs_bits`] of `f`'s finite values (0 when there are none).
    fn max_finite_abs_bits(f: &[f32]) -> u32 {
        const INF: u32 = 0x7f80_0000;
        f.iter().fold(0u32, |m, &v| {
            let b = abs_bits(v);
            m.max(if b < INF { b } else { 0 })
        })
    }
}

/// Pieces of this many elements are the parallel tasks of [`amax`].
const AMAX_PIECE: usize = 1 << 16;

/// The largest magnitude of `t`'s values (FP8: its scale divided out), NaN when any
/// value is NaN, +inf when any is infinite (and none is NaN), 0 for an empty tensor:
/// one read of the elements, chunk by chunk, no copy of a contiguous tensor; large
/// tensors on both cores (the maximum does not depend on the split).
pub(crate) fn amax<D: Dtype>(t: &Tensor<D>, op: &'static str) -> crate::Result<f32> {
    max_bits_of(t, op, max_abs_bits)
}

/// The largest finite magnitude of `t`'s values (what [`crate::CastScale::Auto`] scales
/// FP8 results from; 0 when no value is finite), read as [`amax`] reads.
pub(crate) fn finite_amax<D: Dtype>(t: &Tensor<D>, op: &'static str) -> crate::Result<f32> {
    max_bits_of(t, op, max_finite_abs_bits)
}

/// `chunk_max` over `t`'s values widened to f32, maxed over the chunks, as a magnitude.
fn max_bits_of<D: Dtype>(
    t: &Tensor<D>,
    op: &'static str,
    chunk_max: fn(&[f32]) -> u32,
) -> crate::Result<f32> {
    let src = t.try_elements(op)?;
    let piece_max = |piece: &[D]| {
        let mut buf = Vec::new();
        piece
            .chunks(CHUNK)
            .fold(0u32, |m, s| m.max(chunk_max(widened(t, s, &mut buf))))
    };
    if src.len() < PARALLEL_MIN {
        return Ok(amax_from_bits(piece_max(&src)));
    }
    let best = AtomicU32::new(0);
    let pieces: Vec<&[D]> = src.chunks(AMAX_PIECE).collect();
    crate::cpu::pool::Pool::global().run(pieces.len(), &|i| {
        best.fetch_max(piece_max(pieces[i]), Ordering::Relaxed);
    });
    Ok(amax_from_bits(best.into_inner()))
}

/// `t`'s values (FP8: divided by its scale) of the element range `src` as f32: the
/// elements themselves for unscaled F32 (no copy), else widened into `buf` (grown, and
/// zero-filled, once to the longest `src` it is given).
fn widened<'a, D: Dtype>(t: &Tensor<D>, src: &'a [D], buf: &'a mut Vec<f32>) -> &'a [f32] {
    if let Some(f) = crate::cpu::simd::f32_view(src).filter(|_| t.scale == 1.0) {
        return f;
    }
    if buf.len() < src.len() {
        buf.resize(src.len(), 0.0);
    }
    let out = &mut buf[..src.len()];
    convert_slice_to_f32(src, out).expect("equal lengths");
    if t.scale != 1.0 {
        out.iter_mut().for_each(|v| *v /= t.scale);
    }
    out
}

/// Rounds `t`'s values times `scale` into `T` (nearest even; clamped to `±T::MAX` when
/// `saturate`) and counts what happened, as the element-wise definition in
/// [`Tensor::cast_with`] says.
pub(crate) fn cast_chunks<D: Dtype, T: Dtype>(
    t: &Tensor<D>,
    scale: f32,
    saturate: bool,
) -> crate::Result<(Vec<T>, CastReport)> {
    let src = t.try_elements("cast")?;
    // A cast can widen (E4M3 -> F64 is 8x the bytes): fallible.
    let mut out = crate::cpu::alloc::try_scratch::<T>("cast", t.shape(), src.len())?;
    let total = Mutex::new(Counts::default());
    let (max, s) = (T::MAX.to_f64(), f64::from(scale));
    let bounds = (!saturate && scale == 1.0).then(plain_cast_bounds::<T>);
    // Decode buffers, grown on first use (unscaled F32 and the bounds count need none).
    let scratch = |_| (Vec::new(), Vec::new());
    par_zip_chunks_with(
        &mut out,
        &src,
        CHUNK,
        PARALLEL_MIN,
        scratch,
        |(buf, g), o, src| {
            let f = widened(t, src, buf);
            let result = match (saturate, scale == 1.0) {
                (false, true) => convert_slice(f, o),
                (true, true) => convert_slice_saturating(f, o),
                (false, false) => convert_slice_scaled(f, o, scale),
                (true, false) => convert_slice_scaled_saturating(f, o, scale),
            };
            result.expect("equal lengths and a valid scale");
            let c = if let Some(b) = bounds {
                // Unscaled and not saturating: the counts are thresholds on the source.
                count_by_bounds(f, b)
            } else {
                if g.len() < o.len() {
                    g.resize(o.len(), 0.0f32);
                }
                let g = &mut g[..o.len()];
                convert_slice_to_f32(o, g).expect("equal lengths");
                if saturate {
                    count_saturating(f, g, s, max)
                } else {
                    count_plain(f, g)
                }
            };
            total.lock().unwrap_or_else(|e| e.into_inner()).add(&c);
        },
    );
    let c = total.into_inner().unwrap_or_else(|e| e.into_inner());
    let report = CastReport {
        from: D::DTYPE,
        to: T::DTYPE,
        elements: out.len(),
        underflowed: c.underflowed,
        overflowed: c.overflowed,
        saturated: c.saturated,
        nan: c.nan,
        amax: amax_from_bits(c.amax_bits),
    };
    Ok((out, report))
}

crate::cpu::simd::multiversioned! {
    /// Counts of a saturating cast of `f` (times `s`) with results `got` (widened back,
    /// exact): NaN, finite values clamped to `±max`, overflowed (an infinite source, which
    /// saturation clamps to `±max`), underflowed — exclusive in that order, as flag sums (vectorised;
    /// the clamp test on the exact f64 product), and the largest magnitude of `f`.
    fn count_saturating(f: &[f32], got: &[f32], s: f64, max: f64) -> Counts {
        let (mut nan, mut sat, mut over, mut under) = (0u32, 0u32, 0u32, 0u32);
        let mut amax_bits = 0u32;
        for (&v, &g) in f.iter().zip(got) {
            amax_bits = amax_bits.max(abs_bits(v));
            let is_nan = v.is_nan();
            let is_inf = v.is_infinite();
            // An infinity clamped to ±MAX is an overflow, not a saturation: it never
            // passes as a finite value silently.
            let is_sat = !is_nan
                & !is_inf
                & ((f64::from(v) * s).abs() > max)
                & (f64::from(g.abs()) == max);
            let is_over = !is_nan & !is_sat & (is_inf | !g.is_finite());
            let is_under = !is_nan & !is_sat & !is_over & (v != 0.0) & v.is_finite() & (g == 0.0);
            nan += u32::from(is_nan);
            sat += u32::from(is_sat);
            over += u32::from(is_over);
            under += u32::from(is_under);
        }
        Counts {
            underflowed: under as usize,
            overflowed: over as usize,
            saturated: sat as usize,
            nan: nan as usize,
            amax_bits,
        }
    }
}

/// Where an unscaled, non-saturating cast into `T` overflows and underflows, as f32
/// magnitude bits ([`abs_bits`]): rounding to nearest is monotone in the magnitude, so a
/// finite value's result is non-finite exactly when its bits are at least `overflow`
/// (`0x7f80_0000`, never, for a type that holds every f32), and a non-zero value's result
/// is zero exactly when its bits are at most `underflow` (0, never, when none does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PlainCastBounds {
    overflow: u32,
    underflow: u32,
}

/// [`PlainCastBounds`] of `T`, found once per type by bisection over the f32 magnitudes
/// with `T`'s own scalar rounding (the slice conversions round identically; tested).
fn plain_cast_bounds<T: Dtype>() -> PlainCastBounds {
    use mixprec_dtype::DType;
    use std::sync::OnceLock;
    #[allow(clippy::declare_interior_mutable_const)]
    const UNKNOWN: OnceLock<PlainCastBounds> = OnceLock::new();
    static FOUND: [OnceLock<PlainCastBounds>; DType::COUNT] = [UNKNOWN; DType::COUNT];
    *FOUND[T::DTYPE.index()].get_or_init(|| {
        let result = |bits: u32| T::from_f32(f32::from_bits(bits)).to_f32();
        // The first magnitude in `0..INF` for which `past` holds (`past` is monotone).
        let first = |past: &dyn Fn(u32) -> bool| {
            let (mut lo, mut hi) = (0u32, 0x7f80_0000u32);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if past(mid) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            lo
        };
        PlainCastBounds {
            overflow: first(&|b| !result(b).is_finite()),
            underflow: first(&|b| result(b) != 0.0).saturating_sub(1),
        }
    })
}

crate::cpu::simd::multiversioned! {
    /// Counts of an unscaled, non-saturating cast of `f` from the source alone: NaN,
    /// overflowed (finite, at least `b.overflow`), underflowed (non-zero, at most
    /// `b.underflow`), as flag sums on the magnitude bits (vectorised; no result decoded
    /// back), and the largest magnitude. The same counts as [`count_plain`].
    fn count_by_bounds(f: &[f32], b: PlainCastBounds) -> Counts {
        const INF: u32 = 0x7f80_0000;
        let (mut nan, mut over, mut under) = (0u32, 0u32, 0u32);
        let mut amax_bits = 0u32;
        for &v in f {
            let a = abs_bits(v);
            amax_bits = amax_bits.max(a);
            nan += u32::from(a > INF);
            over += u32::from((a < INF) & (a >= b.overflow));
            under += u32::from((a != 0) & (a <= b.underflow));
        }
        Counts {
            underflowed: under as usize,
            overflowed: over as usize,
            saturated: 0,
            nan: nan as usize,
            amax_bits,
        }
    }
}

crate::cpu::simd::multiversioned! {
    /// Counts of a non-saturating cast: source `f`, results `got` (widened back, exact).
    /// NaN, overflow and underflow exclude each other here, so each is a plain sum of
    /// flags (vectorised); and the largest magnitude of `f`.
    fn count_plain(f: &[f32], got: &[f32]) -> Counts {
        let (mut nan, mut over, mut under) = (0u32, 0u32, 0u32);
        let mut amax_bits = 0u32;
        for (&v, &g) in f.iter().zip(got) {
            amax_bits = amax_bits.max(abs_bits(v));
            nan += u32::from(v.is_nan());
            over += u32::from(v.is_finite() & !g.is_finite());
            under += u32::from((v != 0.0) & v.is_finite() & (g == 0.0));
        }
        Counts {
            underflowed: under as usize,
            overflowed: over as usize,
            saturated: 0,
            nan: nan as usize,
            amax_bits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::{Bf16, E4M3, E5M2, F16, F32, F64};

    /// Magnitudes that reach every bound: each exponent with several mantissas, and
    /// every value within 4 ulp of the type's bounds, both signs; 0, inf and NaN among
    /// them.
    fn hard_values<T: Dtype>() -> Vec<f32> {
        let b = plain_cast_bounds::<T>();
        let mut bits: Vec<u32> = (0..=255u32)
            .flat_map(|e| [0u32, 1, 0x40_0000, 0x7f_ffff, 0x12_3457].map(move |m| e << 23 | m))
            .collect();
        for edge in [b.overflow, b.underflow] {
            bits.extend(edge.saturating_sub(4)..=edge.saturating_add(4).min(0x7fc0_0000));
        }
        bits.iter()
            .flat_map(|&m| [f32::from_bits(m), -f32::from_bits(m)])
            .collect()
    }

    fn same_counts<T: Dtype>() {
        let f = hard_values::<T>();
        let t: Vec<T> = f.iter().map(|&v| T::from_f32(v)).collect();
        let g: Vec<f32> = t.iter().map(|v| v.to_f32()).collect();
        let (a, b) = (
            count_plain(&f, &g),
            count_by_bounds(&f, plain_cast_bounds::<T>()),
        );
        let what = T::NAME;
        assert_eq!(a.nan, b.nan, "{what} NaN");
        assert_eq!(a.overflowed, b.overflowed, "{what} overflow");
        assert_eq!(a.underflowed, b.underflowed, "{what} underflow");
        assert_eq!(a.amax_bits, b.amax_bits, "{what} amax");
        assert!(
            a.overflowed + a.underflowed > 0 || T::BYTES >= 4,
            "{what}: no edge reached"
        );
    }

    /// The bounds count exactly what decoding the results back counts, in every type.
    #[test]
    fn bounds_count_what_the_results_say() {
        same_counts::<Bf16>();
        same_counts::<F16>();
        same_counts::<E4M3>();
        same_counts::<E5M2>();
        same_counts::<F32>();
        same_counts::<F64>();
    }

    /// The bounds against the formats' definitions.
    #[test]
    fn bounds_are_the_formats_rounding_edges() {
        let bf16 = plain_cast_bounds::<Bf16>();
        // MAX is 0x7f7f0000; from MAX + half an ulp (a tie, to even: inf) up.
        assert_eq!(bf16.overflow, 0x7f7f_8000);
        // The smallest subnormal is 2^-133; half of it (a tie) rounds to zero.
        assert_eq!(f32::from_bits(bf16.underflow), 2f32.powi(-134));
        let f16 = plain_cast_bounds::<F16>();
        assert_eq!(f32::from_bits(f16.overflow), 65520.0);
        assert_eq!(f32::from_bits(f16.underflow), 2f32.powi(-25));
        let e4m3 = plain_cast_bounds::<E4M3>();
        assert_eq!(f32::from_bits(e4m3.underflow), 2f32.powi(-10));
        let f32b = plain_cast_bounds::<F32>();
        assert_eq!((f32b.overflow, f32b.underflow), (0x7f80_0000, 0));
    }
}
