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

mod adamw;
mod schedule;
mod sgd;

pub use adamw::{AdamW, AdamWConfig};
pub use schedule::WarmupCosine;
pub use sgd::{Sgd, SgdConfig};

use mixprec_amp::{MasterWeights, OptimizerKind, UnscaledGrads};
use mixprec_autograd::Result;
use mixprec_dtype::F32;
use mixprec_tensor::Tensor;

/// An optimizer over a [`MasterWeights`].
pub trait Optimizer {
    /// One update with `grads` (unscaled, in master-weight order) at learning rate `lr`.
    /// Atomic: on error nothing changed.
    fn step(&mut self, master: &mut MasterWeights, grads: &UnscaledGrads, lr: f32) -> Result<()>;

    /// Bytes of optimizer state held now.
    fn state_bytes(&self) -> usize;

    /// The kind, for memory prediction.
    fn kind(&self) -> OptimizerKind;
}

/// Checks one step's inputs: a learning rate that is finite and >= 0, gradients that fit
/// `master` (one slot per parameter, same shapes) and, unless `allow_non_finite`, hold no
/// inf or NaN.
pub(crate) fn check_step(
    op: &'static str,
    master: &MasterWeights,
    grads: &UnscaledGrads,
    lr: f32,
    allow_non_finite: bool,
) -> Result<()> {
    check_hyper(op, "learning rate", lr, 0.0..f32::INFINITY)?;
    if !allow_non_finite && grads.found_inf() {
        return Err(mixprec_autograd::Error::invalid(
            op,
            "gradients hold an inf or NaN; skip the step (or build the optimizer with \
             allow_non_finite(true))",
        ));
    }
    check_grads(op, master, grads)
}

/// Checks that a hyperparameter lies in `range` (NaN never does).
pub(crate) fn check_hyper(
    op: &'static str,
    name: &str,
    value: f32,
    range: std::ops::Range<f32>,
) -> Result<()> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(mixprec_autograd::Error::invalid(
            op,
            format!(
                "{name} must be in [{}, {}), got {value}",
                range.start, range.end
            ),
        ))
    }
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
