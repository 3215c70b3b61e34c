//! `cast`: the only way between precisions. Rounds once (nearest even by default, or
//! stochastic), overflows as the format does or saturates, and counts what happened —
//! the report the autograd tape records at every cast point.

use crate::backend::on_device;
use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::{Tensor, fp8_current_scale};
use mixprec_dtype::{DType, Dtype};
use std::fmt;

/// How a cast rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CastRounding {
    /// Round to nearest, ties to even.
    #[default]
    NearestEven,
    /// Stochastic rounding with random bits from `Rng::seed(seed)` (unbiased; f64
    /// sources are rounded to f32 first).
    Stochastic {
        /// Seed of the generator that draws one 32-bit number per element.
        seed: u64,
    },
}

/// What a cast does with values beyond the target's largest finite value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CastOverflow {
    /// Saturate for FP8 targets (the scaling recipes' rule), the format's own overflow
    /// otherwise.
    #[default]
    Auto,
    /// The format's overflow: ±inf, or NaN for E4M3.
    Format,
    /// Clamp to ±MAX (±inf too, counted as overflowed); NaN stays NaN.
    Saturate,
}

/// The target scale of a cast (meaningful for FP8 targets; other types need 1).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum CastScale {
    /// FP8: current scaling with a power-of-two scale ([`fp8_current_scale`]); others: 1.
    #[default]
    Auto,
    /// This scale (finite, > 0; exactly 1 for non-FP8 targets). Delayed scaling passes
    /// the scale from its amax history here.
    Fixed(f32),
}

/// Options of [`Tensor::cast_with`]; `Default` is nearest-even, auto overflow, auto scale.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct CastOptions {
    /// Rounding mode.
    pub rounding: CastRounding,
    /// Overflow behaviour.
    pub overflow: CastOverflow,
    /// Target scale.
    pub scale: CastScale,
}

/// What one cast did, element by element: the numbers a precision report shows at a
/// cast point. Two reports are equal when every field is (`amax` compared by its bits,
/// so a NaN amax equals itself).
#[derive(Clone, Copy, Debug)]
pub struct CastReport {
    /// Source precision.
    pub from: DType,
    /// Target precision.
    pub to: DType,
    /// Elements cast.
    pub elements: usize,
    /// Finite non-zero values that became zero.
    pub underflowed: usize,
    /// Values that overflowed: finite values that became infinite or NaN (format
    /// overflow), and infinite values (which a saturating cast clamps to ±MAX: counted
    /// here, not under `saturated`, so that an infinity never passes silently).
    pub overflowed: usize,
    /// Finite values clamped to ±MAX by saturation.
    pub saturated: usize,
    /// NaN values (passed through).
    pub nan: usize,
    /// The largest magnitude among the source values, before any target scale (an FP8
    /// source's own scale divided out): NaN when any value is NaN, +inf when any is
    /// infinite, 0 for an empty cast. Counted in the cast's own pass, so FP8 delayed
    /// scaling records a tensor's amax without reading it twice; equal to
    /// [`Tensor::abs_max`] of the source (rounded to f32 for an F64 source).
    pub amax: f32,
}

impl PartialEq for CastReport {
    fn eq(&self, o: &CastReport) -> bool {
        (self.from, self.to, self.elements, self.underflowed)
            == (o.from, o.to, o.elements, o.underflowed)
            && (self.overflowed, self.saturated, self.nan) == (o.overflowed, o.saturated, o.nan)
            && self.amax.to_bits() == o.amax.to_bits()
    }
}

impl Eq for CastReport {}

impl CastReport {
    /// Fraction of elements that underflowed to zero (0 for an empty cast).
    pub fn underflow_fraction(&self) -> f64 {
        if self.elements == 0 {
            0.0
        } else {
            self.underflowed as f64 / self.elements as f64
        }
    }
}

impl fmt::Display for CastReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {}: {} elements, {} underflowed, {} overflowed, {} saturated, {} NaN",
            self.from,
            self.to,
            self.elements,
            self.underflowed,
            self.overflowed,
            self.saturated,
            self.nan
        )
    }
}

impl<D: Dtype> Tensor<D> {
    /// Casts to `T` with the default options: nearest even; FP8 targets get a power-of-two
    /// current scale and saturate, other targets overflow as their format does.
    ///
    /// ```
    /// use mixprec_tensor::Tensor;
    /// use mixprec_dtype::{Bf16, F32};
    /// let x = Tensor::<F32>::from_f32(&[1.0 + 1.0 / 256.0, 3.0], &[2]).unwrap();
    /// let y = x.cast::<Bf16>();
    /// assert_eq!(y.to_f32_vec(), vec![1.0, 3.0]); // the tie rounds to even
    /// assert_eq!(y.nbytes(), 4);
    /// ```
    ///
    /// Panics (with the op's message) only when the result cannot be allocated;
    /// [`Tensor::cast_with`] returns that as an error.
    pub fn cast<T: Dtype>(&self) -> Tensor<T> {
        // Default options are valid: the only possible error is an allocation failure.
        self.cast_with::<T>(CastOptions::default())
            .unwrap_or_else(|e| panic!("{e}"))
            .0
    }

    /// Casts to `T` with explicit rounding, overflow and scale, and reports how many values
    /// underflowed, overflowed or saturated. Errors on an invalid fixed scale.
    pub fn cast_with<T: Dtype>(&self, opts: CastOptions) -> Result<(Tensor<T>, CastReport)> {
        check_scale::<T>(opts.scale)?;
        on_device!(self.device(), b => b.cast::<D, T>(self, opts))
    }

    /// The CPU kernel of [`Tensor::cast_with`], after its front's checks.
    pub(crate) fn cast_on_cpu<T: Dtype>(
        &self,
        opts: CastOptions,
    ) -> Result<(Tensor<T>, CastReport)> {
        let saturate = match opts.overflow {
            CastOverflow::Auto => T::DTYPE.is_fp8(),
            CastOverflow::Format => false,
            CastOverflow::Saturate => true,
        };
        if D::DTYPE == T::DTYPE && !T::DTYPE.is_fp8() && opts.rounding == CastRounding::NearestEven
        {
            // Same precision: nothing rounds; share the storage and count the NaNs.
            let boxed: Box<dyn std::any::Any> = Box::new(self.clone());
            let same = *boxed
                .downcast::<Tensor<T>>()
                .expect("D and T are the same type");
            let nan = same
                .try_elements("cast")?
                .iter()
                .filter(|v| v.is_nan())
                .count();
            let report = CastReport {
                from: D::DTYPE,
                to: T::DTYPE,
                elements: same.numel(),
                underflowed: 0,
                overflowed: 0,
                saturated: 0,
                nan,
                amax: self.try_abs_max_f32("cast")?,
            };
            return Ok((same, report));
        }
        let fast = opts.rounding == CastRounding::NearestEven
            && D::DTYPE != DType::F64
            && T::DTYPE != DType::F64;
        if fast {
            // f32 values (exact for every non-F64 source), SIMD rounding into T, counted
            // chunk by chunk.
            let scale = pick_scale::<T>(opts.scale, || {
                crate::cpu::cast_chunks::finite_amax(self, "cast")
            })?;
            let (out, report) =
                crate::cpu::cast_chunks::cast_chunks::<D, T>(self, scale, saturate)?;
            return Ok((Tensor::from_parts(out, self.shape(), scale), report));
        }
        // F64 on either side, or stochastic rounding: element by element from f64 values.
        let values = self.try_to_f64_vec("cast")?;
        let (out, scale): (Vec<T>, f32) = {
            let scale = pick_scale::<T>(opts.scale, || {
                Ok(values
                    .iter()
                    .filter(|v| v.is_finite())
                    .fold(0.0f64, |m, v| m.max(v.abs())) as f32)
            })?;
            let mut rng = match opts.rounding {
                CastRounding::Stochastic { seed } => Some(Rng::seed(seed)),
                CastRounding::NearestEven => None,
            };
            let s = f64::from(scale);
            let rounded = values.iter().map(|&v| {
                let x = v * s;
                let r = match &mut rng {
                    Some(rng) => T::from_f32_stochastic(x as f32, rng.next_u32()),
                    None => T::from_f64(x),
                };
                if saturate && !r.is_finite() && !x.is_nan() {
                    T::from_f64(T::MAX.to_f64().copysign(x))
                } else {
                    r
                }
            });
            (
                crate::cpu::alloc::try_collect("cast", self.shape(), rounded)?,
                scale,
            )
        };
        let mut report = CastReport {
            from: D::DTYPE,
            to: T::DTYPE,
            elements: out.len(),
            underflowed: 0,
            overflowed: 0,
            saturated: 0,
            nan: 0,
            amax: abs_max_f64(&values) as f32,
        };
        let (max, s) = (T::MAX.to_f64(), f64::from(scale));
        let mut count = |v: f64, o: &T| {
            let x = v * s;
            let got = o.to_f64();
            if v.is_nan() {
                report.nan += 1;
            } else if saturate && v.is_infinite() {
                report.overflowed += 1;
            } else if saturate && x.abs() > max && got.abs() == max {
                report.saturated += 1;
            } else if v.is_finite() && !o.is_finite() {
                report.overflowed += 1;
            } else if v != 0.0 && v.is_finite() && got == 0.0 {
                report.underflowed += 1;
            }
        };
        values.iter().zip(&out).for_each(|(&v, o)| count(v, o));
        Ok((Tensor::from_parts(out, self.shape(), scale), report))
    }
}

/// Errors unless a fixed scale is finite and positive (and 1 for a non-FP8 target `T`).
fn check_scale<T: Dtype>(scale: CastScale) -> Result<()> {
    if let CastScale::Fixed(s) = scale
        && (!(s.is_finite() && s > 0.0) || (!T::DTYPE.is_fp8() && s != 1.0))
    {
        return Err(Error::invalid(
            "cast",
            format!(
                "scale must be finite and > 0 (and 1 for a {} target), got {s}",
                T::NAME
            ),
        ));
    }
    Ok(())
}

/// The largest magnitude of `values` (NaN when any is NaN; 0 when empty).
pub(crate) fn abs_max_f64(values: &[f64]) -> f64 {
    values.iter().fold(0.0f64, |m, &x| {
        if x.is_nan() || m.is_nan() {
            f64::NAN
        } else {
            m.max(x.abs())
        }
    })
}

/// The target scale: fixed, current scaling from `amax` for FP8 targets, or 1.
fn pick_scale<T: Dtype>(scale: CastScale, amax: impl FnOnce() -> Result<f32>) -> Result<f32> {
    Ok(match scale {
        CastScale::Fixed(s) => s,
        CastScale::Auto if T::DTYPE.is_fp8() => fp8_current_scale(amax()?, T::MAX.to_f32()),
        CastScale::Auto => 1.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::{Bf16, E4M3, E5M2, F16, F32, F64};
    use mixprec_testing::{Tolerance, assert_close};

    /// Casting between every pair of types rounds once: the F64 reference is the target
    /// type's own `from_f64` of the source value (after scaling for FP8).
    fn cast_pair<S: Dtype, T: Dtype>() {
        let vals: Vec<f64> = (0..200).map(|i| ((i as f64) - 100.0) * 0.137).collect();
        let src = Tensor::<S>::from_f64(&vals, &[200]).unwrap();
        let (dst, report) = src.cast_with::<T>(CastOptions::default()).unwrap();
        assert_eq!(report.elements, 200);
        let sv = src.to_f64_vec();
        let want: Vec<f64> = sv
            .iter()
            .map(|&v| T::from_f64(v * f64::from(dst.scale())).to_f64() / f64::from(dst.scale()))
            .collect();
        assert_close(
            &format!("cast {} -> {}", S::NAME, T::NAME),
            &dst.to_f64_vec(),
            &want,
            Tolerance {
                rel: 0.0,
                abs: 0.0,
                abs_of_max: 0.0,
            },
        );
    }

    macro_rules! all_pairs {
        ($($s:ident),*) => {
            #[test]
            fn every_pair_rounds_once() {
                $( all_pairs!(@row $s; F64, F32, Bf16, F16, E4M3, E5M2); )*
            }
        };
        (@row $s:ident; $($t:ident),*) => { $( cast_pair::<$s, $t>(); )* };
    }
    all_pairs!(F64, F32, Bf16, F16, E4M3, E5M2);

    #[test]
    fn reports_count_underflow_overflow_saturation() {
        // Below F16's smallest subnormal / 2 -> 0; above 65520 -> inf.
        let x = Tensor::<F32>::from_f32(&[1e-8, 2e-8, 3e-8, 1.0, 7e4, -1e5, f32::NAN, 0.0], &[8])
            .unwrap();
        let (y, r) = x.cast_with::<F16>(CastOptions::default()).unwrap();
        // Direct count: |v| <= 2^-25 rounds to zero (1e-8 and 2e-8), 3e-8 > 2^-25 does not.
        let direct_under = [1e-8f64, 2e-8, 3e-8]
            .iter()
            .filter(|v| **v <= 2f64.powi(-25))
            .count();
        assert_eq!(r.underflowed, direct_under);
        assert_eq!(r.overflowed, 2);
        assert_eq!(r.nan, 1);
        assert_eq!(r.saturated, 0);
        assert_eq!(y.to_f32_vec()[4], f32::INFINITY);
        let (z, r) = x
            .cast_with::<F16>(CastOptions {
                overflow: CastOverflow::Saturate,
                ..Default::default()
            })
            .unwrap();
        assert_eq!((r.overflowed, r.saturated), (0, 2));
        assert_eq!(z.to_f32_vec()[5], -65504.0);
        assert!(
            r.to_string()
                .starts_with("f32 -> f16: 8 elements, 2 underflowed")
        );
    }

    #[test]
    fn infinities_are_counted_as_overflow_even_when_saturating() {
        let x = Tensor::<F32>::from_f32(&[f32::NAN, f32::INFINITY, 1.0, f32::NEG_INFINITY], &[4])
            .unwrap();
        let opts = CastOptions {
            scale: CastScale::Fixed(1.0),
            overflow: CastOverflow::Saturate,
            ..Default::default()
        };
        let (_, r) = x.cast_with::<E4M3>(opts).unwrap();
        assert_eq!((r.nan, r.overflowed, r.saturated), (1, 2, 0));
        let (_, r) = x.cast::<F64>().cast_with::<E5M2>(opts).unwrap();
        assert_eq!((r.nan, r.overflowed, r.saturated), (1, 2, 0));
        // Without saturation an infinity stays infinite: nothing overflowed.
        let (y, r) = x.cast_with::<Bf16>(CastOptions::default()).unwrap();
        assert_eq!((r.nan, r.overflowed), (1, 0));
        assert_eq!(y.to_f32_vec()[1], f32::INFINITY);
    }

    #[test]
    fn fp8_fixed_scale_saturates_and_counts() {
        let x = Tensor::<F32>::from_f32(&[1.0, 500.0, -600.0, 1e-4], &[4]).unwrap();
        let (q, r) = x
            .cast_with::<E4M3>(CastOptions {
                scale: CastScale::Fixed(1.0),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(q.to_f64_vec(), vec![1.0, 448.0, -448.0, 0.0]);
        assert_eq!((r.saturated, r.underflowed), (2, 1));
        let (q, r) = x.cast_with::<E5M2>(CastOptions::default()).unwrap();
        assert_eq!(
            q.scale(),
            64.0,
            "largest power of two with 600 * s <= 57344"
        );
        assert_eq!(r.saturated + r.overflowed, 0);
        assert!(
            x.cast_with::<E4M3>(CastOptions {
                scale: CastScale::Fixed(0.0),
                ..Default::default()
            })
            .is_err()
        );
        assert!(
            x.cast_with::<Bf16>(CastOptions {
                scale: CastScale::Fixed(2.0),
                ..Default::default()
            })
            .unwrap_err()
            .to_string()
            .starts_with("cast:")
        );
    }

    #[test]
    fn same_type_cast_shares_storage() {
        let x = Tensor::<F32>::from_f32(&[1.0, f32::NAN, f32::INFINITY], &[3]).unwrap();
        let (y, r) = x.cast_with::<F32>(CastOptions::default()).unwrap();
        assert!(y.shares_storage_with(&x));
        assert_eq!((r.nan, r.overflowed, r.elements), (1, 0, 3));
    }

    #[test]
    fn stochastic_cast_is_unbiased_and_seeded() {
        // 1 + 2^-9 lies a quarter of the way from 1 to the next bf16 (1 + 2^-7).
        let n = 40_000;
        let x = Tensor::<F32>::full(&[n], 1.0 + 2f64.powi(-9));
        let opts = CastOptions {
            rounding: CastRounding::Stochastic { seed: 11 },
            ..Default::default()
        };
        let (a, _) = x.cast_with::<Bf16>(opts).unwrap();
        let (b, _) = x.cast_with::<Bf16>(opts).unwrap();
        assert_eq!(a.to_f64_vec(), b.to_f64_vec());
        let ups = a.to_f64_vec().iter().filter(|&&v| v > 1.0).count();
        // Binomial(40000, 1/4): sd 86.6; 5 sigma.
        assert!((ups as f64 - 10_000.0).abs() < 433.0, "{ups}");
    }
}
