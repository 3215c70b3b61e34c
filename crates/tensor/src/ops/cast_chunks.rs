//! The round-to-nearest cast of non-F64 tensors, chunk by chunk: each chunk of source
//! values is widened to f32 (exact), rounded into the target by the SIMD slice
//! conversions, and counted (underflow, overflow, saturation, NaN) while it is in L1;
//! chunks run on both cores for large tensors and their counts are added.

use super::cast::CastReport;
use super::map::CHUNK;
use crate::pool::par_zip_chunks;
use crate::tensor::Tensor;
use mixprec_dtype::{
    Dtype, convert_slice, convert_slice_saturating, convert_slice_scaled,
    convert_slice_scaled_saturating, convert_slice_to_f32,
};
use std::sync::Mutex;

/// Below this many elements a cast runs on one core.
const PARALLEL_MIN: usize = 1 << 14;

/// Counts of one cast (see [`CastReport`]).
#[derive(Default)]
struct Counts {
    underflowed: usize,
    overflowed: usize,
    saturated: usize,
    nan: usize,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.underflowed += o.underflowed;
        self.overflowed += o.overflowed;
        self.saturated += o.saturated;
        self.nan += o.nan;
    }
}

/// `t`'s values (FP8: divided by its scale) of the element range `src` as f32 into `out`.
fn widen<D: Dtype>(t: &Tensor<D>, src: &[D], out: &mut [f32]) {
    convert_slice_to_f32(src, out).expect("equal lengths");
    if t.scale != 1.0 {
        out.iter_mut().for_each(|v| *v /= t.scale);
    }
}

/// The largest finite magnitude of `t`'s values (for current FP8 scaling).
pub(super) fn finite_amax<D: Dtype>(t: &Tensor<D>) -> f32 {
    let src = t.elements();
    let mut buf = [0.0f32; CHUNK];
    src.chunks(CHUNK).fold(0.0f32, |m, s| {
        let f = &mut buf[..s.len()];
        widen(t, s, f);
        f.iter()
            .filter(|v| v.is_finite())
            .fold(m, |m, v| m.max(v.abs()))
    })
}

/// Rounds `t`'s values times `scale` into `T` (nearest even; clamped to `±T::MAX` when
/// `saturate`) and counts what happened, as the element-wise definition in
/// [`Tensor::cast_with`] says.
pub(super) fn cast_chunks<D: Dtype, T: Dtype>(
    t: &Tensor<D>,
    scale: f32,
    saturate: bool,
) -> (Vec<T>, CastReport) {
    let src = t.elements();
    let mut out = crate::alloc::scratch::<T>(src.len());
    let total = Mutex::new(Counts::default());
    let (max, s) = (T::MAX.to_f64(), f64::from(scale));
    par_zip_chunks(&mut out, &src, CHUNK, PARALLEL_MIN, |o, src| {
        let mut buf = [0.0f32; CHUNK];
        let f = &mut buf[..src.len()];
        widen(t, src, f);
        let result = match (saturate, scale == 1.0) {
            (false, true) => convert_slice(f, o),
            (true, true) => convert_slice_saturating(f, o),
            (false, false) => convert_slice_scaled(f, o, scale),
            (true, false) => convert_slice_scaled_saturating(f, o, scale),
        };
        result.expect("equal lengths and a valid scale");
        let c = if saturate {
            count_saturating(f, o, s, max)
        } else {
            let mut g = [0.0f32; CHUNK];
            let g = &mut g[..o.len()];
            convert_slice_to_f32(o, g).expect("equal lengths");
            count_plain(f, g)
        };
        total.lock().unwrap_or_else(|e| e.into_inner()).add(&c);
    });
    let c = total.into_inner().unwrap_or_else(|e| e.into_inner());
    let report = CastReport {
        from: D::DTYPE,
        to: T::DTYPE,
        elements: out.len(),
        underflowed: c.underflowed,
        overflowed: c.overflowed,
        saturated: c.saturated,
        nan: c.nan,
    };
    (out, report)
}

/// Counts of a saturating cast of `f` (times `s`) into `o`: NaN, clamped to `±max`,
/// overflowed (cannot happen when saturating, kept for the definition), underflowed.
fn count_saturating<T: Dtype>(f: &[f32], o: &[T], s: f64, max: f64) -> Counts {
    let mut c = Counts::default();
    for (&v, o) in f.iter().zip(o) {
        // Every non-F64 target value is exact in f32.
        let got = o.to_f32();
        if v.is_nan() {
            c.nan += 1;
        } else if (f64::from(v) * s).abs() > max && f64::from(got.abs()) == max {
            c.saturated += 1;
        } else if v.is_finite() && !got.is_finite() {
            c.overflowed += 1;
        } else if v != 0.0 && v.is_finite() && got == 0.0 {
            c.underflowed += 1;
        }
    }
    c
}

crate::simd::multiversioned! {
    /// Counts of a non-saturating cast: source `f`, results `got` (widened back, exact).
    /// NaN, overflow and underflow exclude each other here, so each is a plain sum of
    /// flags (vectorised).
    fn count_plain(f: &[f32], got: &[f32]) -> Counts {
        let (mut nan, mut over, mut under) = (0u32, 0u32, 0u32);
        for (&v, &g) in f.iter().zip(got) {
            nan += u32::from(v.is_nan());
            over += u32::from(v.is_finite() & !g.is_finite());
            under += u32::from((v != 0.0) & v.is_finite() & (g == 0.0));
        }
        Counts {
            underflowed: under as usize,
            overflowed: over as usize,
            saturated: 0,
            nan: nan as usize,
        }
    }
}
