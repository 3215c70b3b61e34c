//! Optimizers that update the F32 master weights, and the learning-rate schedule.
//!
//! Every optimizer step is atomic: new parameters and new state are computed for every
//! parameter first and committed only if all succeeded, so a failed step (a gradient of
//! the wrong shape) changes nothing. Steps the loss scaler skips are simply not taken:
//! the step counter (Adam's bias correction) does not advance.

mod adamw;
mod schedule;
mod sgd;

pub use adamw::{AdamW, AdamWConfig};
pub use schedule::WarmupCosine;
pub use sgd::{Sgd, SgdConfig};

use mixprec_amp::{MasterWeights, OptimizerKind, UnscaledGrads};
use mixprec_autograd::Result;

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

/// Checks that `grads` fits `master` (one slot per parameter, same shapes).
pub(crate) fn check_grads(
    op: &'static str,
    master: &MasterWeights,
    grads: &UnscaledGrads,
) -> Result<()> {
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
