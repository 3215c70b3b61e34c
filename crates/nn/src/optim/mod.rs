//! Optimizers that update the F32 master weights, and the learning-rate schedule.
//!
//! Every optimizer step is atomic: new parameters and new state are computed for every
//! parameter first and committed only if all succeeded, so a failed step (a gradient of
//! the wrong shape) changes nothing. Steps the loss scaler skips are simply not taken:
//! the step counter (Adam's bias correction) does not advance.
//!
//! Settings are checked when an optimizer is made (errors name the optimizer and the bad
//! value), the learning rate at every step (finite and >= 0), and gradients holding an
//! inf or NaN are refused — an error, nothing changed — unless the optimizer was built
//! with `allow_non_finite(true)` (then the non-finite values flow into the weights, as in
//! PyTorch).
//!
//! Hyperparameters are f64, as PyTorch's are, and the updates are PyTorch's
//! single-tensor CPU updates bit for bit (see [`mixprec_tensor::AdamWStep`] and
//! [`mixprec_tensor::SgdStep`]; `tests/torch_optim.rs` replays PyTorch's own runs).
//! Optimizer state is public: read it and load it by parameter name (`state_of`,
//! `load_state`).

mod adamw;
mod saved;
mod schedule;
mod sgd;

pub use adamw::{AdamW, AdamWConfig, AdamWParamState};
pub use schedule::{ConstantLr, LrSchedule, Schedule, WarmupCosine};
pub use sgd::{Sgd, SgdConfig};

use crate::checkpoint::TensorFile;
use mixprec_amp::{MasterWeights, OptimizerKind, UnscaledGrads};
use mixprec_autograd::Result;
use mixprec_dtype::F32;
use mixprec_tensor::Tensor;

/// An optimizer over a [`MasterWeights`].
pub trait Optimizer {
    /// One update with `grads` (unscaled, in master-weight order) at learning rate `lr`.
    /// Atomic: on error nothing changed.
    fn step(&mut self, master: &mut MasterWeights, grads: &UnscaledGrads, lr: f64) -> Result<()>;

    /// Bytes of optimizer state held now.
    fn state_bytes(&self) -> usize;

    /// The kind, for memory prediction.
    fn kind(&self) -> OptimizerKind;

    /// Writes the whole state into `file`, for the parameters of `master`: PyTorch's
    /// per-parameter state keys as F32 tensors `optim.<parameter>.<key>`, counters and
    /// the settings as metadata. Errors when an entry is already in the file.
    fn write_state(&self, master: &MasterWeights, file: &mut TensorFile) -> Result<()>;

    /// Replaces the whole state by the one `write_state` wrote into `file` (parameters
    /// without an entry have taken no step). All or nothing: errors, changing nothing,
    /// when the file was written by another kind of optimizer or under other settings,
    /// or holds a tensor of the wrong shape, a bad counter, or state of a parameter
    /// `master` does not have.
    fn read_state(&mut self, master: &MasterWeights, file: &TensorFile) -> Result<()>;
}

/// Checks one step's gradients: they fit `master` (one slot per parameter, same shapes) and, unless `allow_non_finite`, hold no
/// inf or NaN.
pub(crate) fn check_step(
    op: &'static str,
    master: &MasterWeights,
    grads: &UnscaledGrads,
    allow_non_finite: bool,
) -> Result<()> {
    if !allow_non_finite && grads.found_inf() {
        return Err(mixprec_autograd::Error::invalid(
            op,
            "gradients hold an inf or NaN; skip the step (or build the optimizer with \
             allow_non_finite(true))",
        ));
    }
    check_grads(op, master, grads)
}

/// Zeros of optimizer state shaped like `param`, or an allocation error naming `op`
/// (never an abort).
pub(crate) fn try_state_zeros(op: &'static str, param: &Tensor<F32>) -> Result<Tensor<F32>> {
    Tensor::try_zeros(param.shape())
        .map_err(|e| mixprec_tensor::Error { op, ..e })
        .map_err(Into::into)
}

/// Phase 1 for optimizer state: makes `param` and each existing state tensor the sole
/// owner of its storage (values unchanged), so the fused update in phase 2 writes in
/// place with nothing left to allocate.
pub(crate) fn own_for_update(
    op: &'static str,
    param: &mut Tensor<F32>,
    state: &mut [&mut Tensor<F32>],
) -> Result<()> {
    param.try_make_owned(op)?;
    for t in state {
        t.try_make_owned(op)?;
    }
    Ok(())
}

/// Checks that `grads` fits `master` (one slot per parameter, same shapes).
fn check_grads(op: &'static str, master: &MasterWeights, grads: &UnscaledGrads) -> Result<()> {
    let n = grads.iter().count();
    if n != master.len() {
        return Err(mixprec_autograd::Error::invalid(
            op,
            format!("{n} gradients for {} parameters", master.len()),
        ));
    }
    for (i, ((name, p), g)) in master.iter().zip(grads.iter()).enumerate() {
        if let Some(g) = g
            && g.shape() != p.shape()
        {
            return Err(mixprec_autograd::Error::invalid(
                op,
                format!(
                    "gradient {i} ({name}) has shape {:?}, parameter {:?}",
                    g.shape(),
                    p.shape()
                ),
            ));
        }
    }
    Ok(())
}

/// The index and value of the parameter called `name` in `master`, or an error naming
/// `op` and the name.
pub(crate) fn param_named<'m>(
    op: &'static str,
    master: &'m MasterWeights,
    name: &str,
) -> Result<(usize, &'m Tensor<F32>)> {
    master
        .iter()
        .enumerate()
        .find_map(|(i, (n, t))| (n == name).then_some((i, t)))
        .ok_or_else(|| {
            mixprec_autograd::Error::invalid(op, format!("no parameter is called {name:?}"))
        })
}

/// Errors unless `state` (called `what`) has the shape of parameter `name`.
pub(crate) fn check_state_shape(
    op: &'static str,
    name: &str,
    param: &Tensor<F32>,
    what: &str,
    state: &Tensor<F32>,
) -> Result<()> {
    if state.shape() == param.shape() {
        return Ok(());
    }
    Err(mixprec_autograd::Error::invalid(
        op,
        format!(
            "{what} for {name:?} has shape {:?}, the parameter {:?}",
            state.shape(),
            param.shape()
        ),
    ))
}
