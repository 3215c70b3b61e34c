//! Tape-based reverse-mode autodiff over precision-typed tensors.
//!
//! A [`Tape`] records every op applied to tracked values ([`Var`]); `loss.backward()`
//! walks it in reverse and returns [`Gradients`]. Precision is typed in the API
//! (`Var<Bf16>`), but the tape and the gradient store are not tied to one dtype, so casts
//! are ordinary nodes: the backward of a cast casts the gradient back, and every cast
//! point records how many values underflowed, overflowed or saturated
//! ([`Tape::report`]).
//!
//! ```
//! use mixprec_autograd::Tape;
//! use mixprec_dtype::{Bf16, F32};
//! use mixprec_tensor::Tensor;
//!
//! let tape = Tape::new();
//! let w = tape.leaf(Tensor::<F32>::from_f32(&[1.0, -2.0, 3.0], &[3]).unwrap());
//! let w16 = w.cast::<Bf16>();                    // a cast point on the tape
//! let loss = w16.square().sum_all();             // sum of squares in BF16
//! let grads = loss.backward().unwrap();
//! // d/dw sum(w^2) = 2w, computed in BF16 and cast back to F32 for the F32 master.
//! assert_eq!(grads.get(&w).unwrap().to_f32_vec(), vec![2.0, -4.0, 6.0]);
//! assert_eq!(tape.report().casts.len(), 1);
//! ```

#![warn(missing_debug_implementations)]

mod custom;
mod error;
mod gradcheck;
mod grads;
mod ops;
mod report;
mod saved;
mod tape;
mod var;

pub use custom::{Input, InputGrad, VarRef};
pub use error::{Error, Result};
pub use gradcheck::{GradcheckReport, gradcheck};
pub use grads::Gradients;
pub use ops::SameVarDtype;
pub use report::{CastPoint, OpCount, TapeReport};
pub use saved::Saved;
pub use tape::{LeafGrad, NodeId, Tape};
pub use var::Var;
