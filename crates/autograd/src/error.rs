//! [`Error`]: tensor errors plus what only a tape can get wrong.

use std::fmt;

/// Result of an autograd operation.
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// The underlying tensor op refused its input.
    Tensor(mixprec_tensor::Error),
    /// `backward` reached a node whose saved tensors were already used by an earlier
    /// backward pass.
    BackwardTwice {
        /// The op whose backward had already run.
        op: &'static str,
    },
    /// Values from two different tapes were combined.
    DifferentTapes {
        /// The op that combined them.
        op: &'static str,
    },
    /// `backward` on a value with more than one element, without a seed gradient.
    NotScalar {
        /// Shape of the value.
        shape: Vec<usize>,
    },
    /// A seed gradient whose shape differs from the value's.
    SeedShape {
        /// Shape of the value.
        expected: Vec<usize>,
        /// Shape of the seed.
        got: Vec<usize>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Tensor(e) => write!(f, "{e}"),
            Error::BackwardTwice { op } => write!(
                f,
                "backward: the saved tensors of `{op}` were freed by an earlier backward pass; record the forward pass again"
            ),
            Error::DifferentTapes { op } => {
                write!(f, "{op}: the operands belong to different tapes")
            }
            Error::NotScalar { shape } => write!(
                f,
                "backward: the value has shape {shape:?}; pass a seed gradient (backward_with) for non-scalar values"
            ),
            Error::SeedShape { expected, got } => write!(
                f,
                "backward_with: seed gradient has shape {got:?} but the value has shape {expected:?}"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<mixprec_tensor::Error> for Error {
    fn from(e: mixprec_tensor::Error) -> Self {
        Error::Tensor(e)
    }
}

impl Error {
    /// An invalid-argument error naming `op` (a layer, an optimizer, a scaler): the one
    /// constructor the crates above the tape use for their own input checks.
    pub fn invalid(op: &'static str, msg: impl Into<String>) -> Error {
        Error::Tensor(mixprec_tensor::Error {
            op,
            kind: mixprec_tensor::ErrorKind::InvalidArgument(msg.into()),
        })
    }
}
