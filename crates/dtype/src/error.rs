//! [`DtypeError`]: what the slice conversions reject.

use std::fmt;

/// Bad input to a conversion. Each variant names the function that refused it.
#[derive(Clone, Debug, PartialEq)]
pub enum DtypeError {
    /// Source and destination slices differ in length.
    LengthMismatch {
        /// The function that was called.
        op: &'static str,
        /// Source length.
        src: usize,
        /// Destination length.
        dst: usize,
    },
    /// A scale that is zero, negative, infinite or NaN.
    InvalidScale {
        /// The function that was called.
        op: &'static str,
        /// The scale that was passed.
        scale: f32,
    },
}

impl fmt::Display for DtypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DtypeError::LengthMismatch { op, src, dst } => write!(
                f,
                "{op}: source has {src} elements but destination has {dst}; they must be equal"
            ),
            DtypeError::InvalidScale { op, scale } => write!(
                f,
                "{op}: scale must be finite and greater than zero, got {scale}"
            ),
        }
    }
}

impl std::error::Error for DtypeError {}

impl DtypeError {
    /// The function that refused.
    pub fn op(&self) -> &'static str {
        match self {
            DtypeError::LengthMismatch { op, .. } | DtypeError::InvalidScale { op, .. } => op,
        }
    }
}
