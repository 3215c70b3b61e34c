//! [`Acc`]: the precision ops compute in (f32, or f64 for `F64` tensors).

use num_traits::{Float, FloatConst};
use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

/// The compute precision of an op: every op decodes its inputs to `Acc`, computes, and
/// rounds once into the output type. `f32` for every type but `F64`, whose ops run in
/// `f64`. Implemented for `f32` and `f64` only.
pub trait Acc:
    crate::ZeroBits
    + Float
    + FloatConst
    + Default
    + Debug
    + Display
    + Sum
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Send
    + Sync
    + 'static
{
    /// Rounds an f64 to this precision (nearest even; exact for f64).
    fn from_f64(x: f64) -> Self;
    /// Widens to f64 (exact).
    fn to_f64(self) -> f64;
    /// Rounds an f32 to this precision (exact for both).
    fn from_f32(x: f32) -> Self;
    /// Narrows to f32 (nearest even; exact for f32).
    fn to_f32(self) -> f32;
    /// Converts a count or index (nearest even).
    fn from_usize(n: usize) -> Self;
}

impl Acc for f32 {
    #[inline]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    #[inline]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline]
    fn from_f32(x: f32) -> Self {
        x
    }
    #[inline]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline]
    fn from_usize(n: usize) -> Self {
        n as f32
    }
}

impl Acc for f64 {
    #[inline]
    fn from_f64(x: f64) -> Self {
        x
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn from_f32(x: f32) -> Self {
        f64::from(x)
    }
    #[inline]
    fn to_f32(self) -> f32 {
        self as f32
    }
    #[inline]
    fn from_usize(n: usize) -> Self {
        n as f64
    }
}
