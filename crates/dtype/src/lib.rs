//! Precision types for mixprec: `F64`, `F32`, `Bf16`, `F16`, `E4M3` and `E5M2`.
//!
//! Each type is a `#[repr(transparent)]` value type that stores exactly its own bits
//! (`Bf16` and `F16` wrap the [`half`] crate's types; `E4M3` and `E5M2` wrap a `u8`) and
//! implements the sealed [`Dtype`] trait. Conversions are bit-exact against independent
//! software (ml_dtypes for bf16/e4m3/e5m2, numpy for f16): see `tests/golden.rs`.
//!
//! # Rounding
//! * [`Dtype::from_f32`] rounds to nearest, ties to even (RNE). Overflow follows the
//!   format: `Bf16`, `F16` and `E5M2` give ±infinity, `E4M3` (which has no infinity)
//!   gives NaN for |x| > 464 (464 itself is a tie and rounds to 448).
//! * [`Dtype::from_f32_saturating`] rounds the same way but clamps finite overflow and ±inf
//!   to ±[`Dtype::MAX`]; NaN stays NaN. This is CUDA's `__NV_SATFINITE` and what FP8
//!   scaling uses.
//! * [`Dtype::from_f32_stochastic`] rounds up with probability equal to the fraction of a
//!   quantum that `x` lies above the lower neighbour, so `E[result] == x`.
//! * [`Dtype::to_f32`] is exact for every type but `F64` (which rounds to nearest even).
//!
//! # Slices
//! [`convert_slice`] and friends convert whole slices with branch-free kernels that use
//! AVX2/F16C when the CPU has them (detected at run time), and otherwise a portable path;
//! both give the same bits as the scalar functions, which are the reference.
//!
//! ```
//! use mixprec_dtype::{Dtype, Bf16, E4M3, convert_slice};
//! assert_eq!(Bf16::from_f32(1.0 + 1.0 / 256.0).to_f32(), 1.0); // a tie: rounds to even
//! assert!(E4M3::from_f32(500.0).is_nan());                    // no infinity in E4M3
//! assert_eq!(E4M3::from_f32_saturating(500.0).to_f32(), 448.0);
//! let mut out = [E4M3::ZERO; 3];
//! convert_slice(&[0.1, 1.0, -3.3], &mut out).unwrap();
//! assert_eq!(out.map(|v| v.to_f32()), [0.1015625, 1.0, -3.25]);
//! ```

#![warn(missing_debug_implementations)]

mod acc;
pub mod approx_eq;
pub mod cpu;
mod dtype;
mod error;
mod f64_narrow;
mod format;
mod le_bits;
mod promote;
mod slice;
mod types;

/// The golden-table reader of the integration tests, shared with the unit tests.
#[cfg(test)]
#[path = "../tests/common/golden.rs"]
#[allow(dead_code)]
mod golden_reader;

pub use acc::Acc;
pub use dtype::{DType, Dtype, FullPrecision, ZeroBits};
pub use error::DtypeError;
pub use le_bits::LeBits;
pub use promote::Promote;
pub use slice::{
    convert_slice, convert_slice_saturating, convert_slice_scaled, convert_slice_scaled_saturating,
    convert_slice_to_f32, convert_slice_to_f32_scaled,
};
pub use types::{Bf16, E4M3, E5M2, F16, F32, F64};

/// Scalar reference implementations of the slice conversions, one element at a time
/// through [`Dtype::from_f32`] and friends. Exposed for tests and benchmarks; the fast
/// slice functions must agree with these bit for bit.
pub mod reference {
    pub use crate::slice::reference::*;
}
