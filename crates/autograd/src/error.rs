//! [`Error`]: the one error type of mixprec from the tape up (re-exported as
//! `mixprec::Error`): tensor errors, conversion errors, file errors, and what only a tape
//! can get wrong. Every variant names the op that refused.

use mixprec_dtype::DtypeError;
use std::fmt;
use std::path::PathBuf;

/// Result of an autograd, amp or nn operation (`mixprec::Result`). The error type
/// defaults to [`Error`], so `Result<T>` reads like `std`'s and `Result<T, E>` still
/// means `std::result::Result<T, E>` (the prelude can export it without shadowing).
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong. A tensor op's error ([`mixprec_tensor::Error`]), a conversion's
/// ([`DtypeError`]) and an I/O error convert into it with `?`, keeping the op and the
/// shapes: match on [`Error::Tensor`] and its `kind`, or ask [`Error::op`] and
/// [`Error::tensor`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
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
    /// Reading or writing a file failed (a checkpoint, a data set).
    Io {
        /// The operation (`"TensorFile::save"`, `"Checkpoints::save"`, or `"io"` for an
        /// [`std::io::Error`] converted by `?`).
        op: &'static str,
        /// The file or folder, when known.
        path: Option<PathBuf>,
        /// The I/O error's kind (`NotFound`, `PermissionDenied`, ...).
        kind: std::io::ErrorKind,
        /// The I/O error's message.
        message: String,
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
            Error::Io {
                op, path, message, ..
            } => match path {
                Some(p) => write!(f, "{op}: {}: {message}", p.display()),
                None => write!(f, "{op}: {message}"),
            },
        }
    }
}

impl std::error::Error for Error {}

impl From<mixprec_tensor::Error> for Error {
    fn from(e: mixprec_tensor::Error) -> Self {
        Error::Tensor(e)
    }
}

impl From<DtypeError> for Error {
    fn from(e: DtypeError) -> Self {
        Error::Tensor(e.into())
    }
}

impl From<std::io::Error> for Error {
    /// An I/O error from `?` in user code: op `"io"`, no path (use [`Error::io`] to name
    /// both).
    fn from(e: std::io::Error) -> Self {
        Error::io("io", None, &e)
    }
}

impl Error {
    /// An I/O error of `op` on `path`.
    pub fn io(op: &'static str, path: Option<&std::path::Path>, e: &std::io::Error) -> Error {
        Error::Io {
            op,
            path: path.map(PathBuf::from),
            kind: e.kind(),
            message: e.to_string(),
        }
    }

    /// The op that refused: a tensor op's name, `"backward"`, a layer's or a file
    /// operation's.
    pub fn op(&self) -> &'static str {
        match self {
            Error::Tensor(e) => e.op,
            Error::BackwardTwice { .. } | Error::NotScalar { .. } => "backward",
            Error::SeedShape { .. } => "backward_with",
            Error::DifferentTapes { op } | Error::Io { op, .. } => op,
        }
    }

    /// The tensor op's error (its kind holds the shapes), when that is what this is.
    pub fn tensor(&self) -> Option<&mixprec_tensor::Error> {
        match self {
            Error::Tensor(e) => Some(e),
            _ => None,
        }
    }

    /// An invalid-argument error naming `op` (a layer, an optimizer, a scaler): the one
    /// constructor the crates above the tape use for their own input checks.
    pub fn invalid(op: &'static str, msg: impl Into<String>) -> Error {
        Error::Tensor(mixprec_tensor::Error {
            op,
            kind: mixprec_tensor::ErrorKind::InvalidArgument(msg.into()),
        })
    }
}
