//! Fused, in-place optimizer updates of F32 parameters: [`Tensor::adamw_update`] and
//! [`Tensor::sgd_update`]. One pass reads the gradient and writes the parameter and its
//! optimizer state where they are (no decoded copies), so a device backend runs each as
//! one kernel.
//!
//! The arithmetic is PyTorch's single-tensor CPU path (`foreach=False`) operation for
//! operation: hyperparameters are f64 (Python floats), the scalars PyTorch derives from
//! them are computed in f64 and rounded once to f32, and each element runs the same f32
//! operations, fused multiply-adds where PyTorch's vectorised CPU kernels fuse them (its
//! `add(alpha=)`, `lerp` and `addcmul`). The fused multiply-adds are exact at every CPU
//! level (hardware FMA where the CPU has it, a correctly rounded software `fma`
//! otherwise), so every machine computes the same bits.
//!
//! Each op checks everything first (shapes, devices, hyperparameters), then makes the
//! parameter and its state sole owners of their storage ([`Tensor::try_make_owned`]),
//! then updates; an error leaves every value as it was. An optimizer that updates many
//! parameters atomically makes each one owned before updating the first (the update then
//! has nothing left that can fail).

mod adamw;
mod sgd;

pub use adamw::AdamWStep;
pub use sgd::SgdStep;

use crate::error::{Error, Result};
use crate::storage::same_device;
use crate::tensor::Tensor;
use mixprec_dtype::F32;

/// Parameters of at least this many elements are updated on the pool, in pieces (an
/// element's update reads and writes that element only, so the split changes no bit).
const UPDATE_PARALLEL_MIN: usize = 1 << 15;

/// The piece length of a fused update of `len` elements (all of it when small).
fn update_piece_len(len: usize) -> usize {
    crate::cpu::pool::piece_len(len, 64, UPDATE_PARALLEL_MIN)
}

/// Errors unless `value` lies in `range` (NaN never does), naming `op` and `name`.
fn check_in(op: &'static str, name: &str, value: f64, range: std::ops::Range<f64>) -> Result<()> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(Error::invalid(
        op,
        format!(
            "{name} must be in [{}, {}), got {value}",
            range.start, range.end
        ),
    ))
}

/// Errors unless the gradient and every state tensor have the parameter's shape and
/// device.
fn check_operands(
    op: &'static str,
    param: &Tensor<F32>,
    grad: &Tensor<F32>,
    state: &[(&str, &Tensor<F32>)],
) -> Result<()> {
    for (name, t) in std::iter::once(("gradient", grad)).chain(state.iter().copied()) {
        same_device(op, param.device(), t.device())?;
        if t.shape() != param.shape() {
            return Err(Error::shapes(
                op,
                param.shape(),
                t.shape(),
                match name {
                    "gradient" => "the gradient must have the parameter's shape",
                    _ => "optimizer state must have the parameter's shape",
                },
            ));
        }
    }
    Ok(())
}

/// Errors unless a state tensor is given exactly when `wanted` (`what` names it and the
/// setting that asks for it).
fn check_state_given(op: &'static str, what: &str, wanted: bool, given: bool) -> Result<()> {
    if wanted == given {
        return Ok(());
    }
    Err(Error::invalid(
        op,
        format!(
            "{what}: {}",
            if given {
                "given but not used"
            } else {
                "missing"
            }
        ),
    ))
}

/// `-x`, by flipping the sign bit (exact, NaN included, and branch-free).
#[inline(always)]
fn flip_sign_if(x: f32, flip: bool) -> f32 {
    f32::from_bits(x.to_bits() ^ (u32::from(flip) << 31))
}
