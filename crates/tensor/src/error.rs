//! [`Error`]: what a tensor op refuses, naming the op and the shapes involved.

use mixprec_dtype::DtypeError;
use std::fmt;

/// Result of a tensor op (the error type defaults to [`Error`]; `Result<T, E>` is
/// `std`'s).
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A refused op: `op` is the public function's name, `kind` says what was wrong.
#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    /// The op that refused its input (`"matmul"`, `"softmax"`, ...).
    pub op: &'static str,
    /// What was wrong.
    pub kind: ErrorKind,
}

/// The ways input can be wrong.
#[derive(Clone, Debug, PartialEq)]
pub enum ErrorKind {
    /// Data length does not match the shape's element count.
    LengthMismatch {
        /// The shape asked for.
        shape: Vec<usize>,
        /// Elements given.
        len: usize,
    },
    /// Two shapes that the op cannot combine.
    IncompatibleShapes {
        /// First operand's shape.
        lhs: Vec<usize>,
        /// Second operand's shape.
        rhs: Vec<usize>,
        /// Which rule they break.
        rule: &'static str,
    },
    /// A shape the op cannot take on its own (wrong rank, wrong size).
    BadShape {
        /// The shape given.
        shape: Vec<usize>,
        /// What the op needs.
        expected: String,
    },
    /// An axis outside `-rank..rank`.
    AxisOutOfRange {
        /// The axis given.
        axis: isize,
        /// The tensor's rank.
        rank: usize,
    },
    /// An index (class label, token id, position) outside its bound.
    IndexOutOfRange {
        /// The index given.
        index: usize,
        /// The exclusive bound.
        bound: usize,
    },
    /// The op needs at least one element.
    Empty {
        /// The empty shape.
        shape: Vec<usize>,
    },
    /// A scalar argument outside its domain.
    InvalidArgument(String),
    /// A conversion refused by the precision layer.
    Dtype(DtypeError),
    /// The shape's element count (or its size in bytes) does not fit in `usize`/`isize`.
    SizeOverflow {
        /// The shape asked for.
        shape: Vec<usize>,
    },
    /// The allocator could not provide the memory for a result.
    Allocation {
        /// The shape of the result.
        shape: Vec<usize>,
        /// Bytes asked for.
        bytes: usize,
    },
    /// The operands live on different devices.
    DeviceMismatch {
        /// The first operand's device.
        lhs: crate::Device,
        /// The other operand's device.
        rhs: crate::Device,
    },
    /// The device cannot do this (for a GPU: a build without its backend).
    Unsupported {
        /// The device asked for.
        device: crate::Device,
        /// What it cannot do.
        what: String,
    },
}

/// `bytes` in binary units with one decimal (`4.0 PiB`).
fn human_bytes(bytes: usize) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

impl Error {
    pub(crate) fn new(op: &'static str, kind: ErrorKind) -> Self {
        Error { op, kind }
    }

    pub(crate) fn invalid(op: &'static str, msg: impl Into<String>) -> Self {
        Error::new(op, ErrorKind::InvalidArgument(msg.into()))
    }

    pub(crate) fn shapes(
        op: &'static str,
        lhs: &[usize],
        rhs: &[usize],
        rule: &'static str,
    ) -> Self {
        Error::new(
            op,
            ErrorKind::IncompatibleShapes {
                lhs: lhs.to_vec(),
                rhs: rhs.to_vec(),
                rule,
            },
        )
    }

    pub(crate) fn bad_shape(
        op: &'static str,
        shape: &[usize],
        expected: impl Into<String>,
    ) -> Self {
        Error::new(
            op,
            ErrorKind::BadShape {
                shape: shape.to_vec(),
                expected: expected.into(),
            },
        )
    }

    pub(crate) fn empty(op: &'static str, shape: &[usize]) -> Self {
        Error::new(
            op,
            ErrorKind::Empty {
                shape: shape.to_vec(),
            },
        )
    }

    pub(crate) fn size_overflow(op: &'static str, shape: &[usize]) -> Self {
        Error::new(
            op,
            ErrorKind::SizeOverflow {
                shape: shape.to_vec(),
            },
        )
    }

    pub(crate) fn index(op: &'static str, index: usize, bound: usize) -> Self {
        Error::new(op, ErrorKind::IndexOutOfRange { index, bound })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.op)?;
        match &self.kind {
            ErrorKind::LengthMismatch { shape, len } => {
                match shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) {
                    Some(n) => write!(f, "shape {shape:?} holds {n} elements but {len} were given"),
                    None => write!(
                        f,
                        "shape {shape:?} holds more elements than usize can count but {len} were given"
                    ),
                }
            }
            ErrorKind::IncompatibleShapes { lhs, rhs, rule } => {
                write!(f, "shapes {lhs:?} and {rhs:?} are incompatible: {rule}")
            }
            ErrorKind::BadShape { shape, expected } => {
                write!(f, "shape {shape:?}: expected {expected}")
            }
            ErrorKind::AxisOutOfRange { axis, rank } => {
                write!(f, "axis {axis} is out of range for a tensor of rank {rank}")
            }
            ErrorKind::IndexOutOfRange { index, bound } => {
                write!(f, "index {index} is out of range (must be below {bound})")
            }
            ErrorKind::Empty { shape } => {
                write!(f, "needs at least one element, got shape {shape:?}")
            }
            ErrorKind::InvalidArgument(msg) => f.write_str(msg),
            ErrorKind::Dtype(e) => write!(f, "{e}"),
            ErrorKind::SizeOverflow { shape } => {
                write!(
                    f,
                    "shape {shape:?} has more elements or bytes than this machine can address"
                )
            }
            ErrorKind::Allocation { shape, bytes } => {
                write!(
                    f,
                    "cannot allocate {} for shape {shape:?}",
                    human_bytes(*bytes)
                )
            }
            ErrorKind::DeviceMismatch { lhs, rhs } => {
                write!(f, "tensors on different devices: {lhs} and {rhs}")
            }
            ErrorKind::Unsupported { device, what } => write!(f, "{device}: {what}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<DtypeError> for Error {
    /// A refused conversion, under the conversion's own name.
    fn from(e: DtypeError) -> Self {
        Error::new(e.op(), ErrorKind::Dtype(e))
    }
}

/// The value of an op that has no `Result` in its signature (an infallible method such
/// as `exp` or `add_scalar`): its only failure, memory that cannot be had, panics with
/// the op's message (as `Vec` panics on capacity overflow) instead of aborting.
pub(crate) fn or_panic<T>(r: Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}
