//! `Tensor<D>`: precision-typed tensors with a complete CPU op set.
//!
//! A `Tensor<Bf16>` stores 16-bit words: memory is really halved, not simulated. Mixing
//! precisions without an explicit [`Tensor::cast`] does not compile:
//!
//! ```compile_fail,E0308
//! use mixprec_tensor::Tensor;
//! use mixprec_dtype::{Bf16, F32};
//! let a = Tensor::<F32>::ones(&[2]);
//! let b = Tensor::<Bf16>::ones(&[2]);
//! let c = a.add(&b); // error: expected `&Tensor<F32>`, found `&Tensor<Bf16>`
//! ```
//!
//! Every op decodes to `D::Acc` (f32; f64 for `F64`), computes, and rounds once into `D`
//! (see [`Tensor`] for the FP8 scale). Ops on user data return [`Result`] with an
//! [`Error`] that names the op and the shapes.

#![warn(missing_debug_implementations)]

mod approx_eq;
mod backend;
mod cpu;
mod error;
mod layout;
mod mask;
pub mod ops;
mod print;
mod rng;
mod storage;
#[cfg(feature = "proptest")]
pub mod strategies;
mod tensor;

pub use backend::Primitive;
pub use cpu::alloc::{release_workspace, workspace_bytes};
pub use cpu::pool::{MAX_THREADS, num_threads, set_num_threads};
pub use error::{Error, ErrorKind, Result};
pub use mask::{Indices, Mask};
pub use ops::{
    AdamWStep, ArgReduceOp, BinaryOp, CastOptions, CastOverflow, CastReport, CastRounding,
    CastScale, CompareOp, Conv2dParams, IndexOp, Pool2dParams, PoolOp, ReduceOp, RowOp, SameDtype,
    Saves, SgdStep, UnaryOp,
};
pub use rng::Rng;
pub use storage::Device;
pub use tensor::{Tensor, fp8_current_scale};
