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

/// Checks that `grads` fits `master` (one slot per parameter, same shapes).
/// One parameter's buffers for a step: its values and gradient as f32, and new state
/// when it has none yet.
pub(crate) type StepBuffers<S> = (Vec<f32>, Vec<f32>, Option<S>);

/// Phase 1 of an atomic optimizer step: decodes every parameter that has a gradient and
/// its gradient, and makes first-step state with `fresh(index, param, len)` (`None` when
/// the parameter has state already). Fails (changing nothing) when memory cannot be had;
/// after it the update has nothing left that can fail. `None` for parameters without a
/// gradient.
pub(crate) fn step_buffers<S>(
    op: &'static str,
    master: &MasterWeights,
    grads: &UnscaledGrads,
    mut fresh: impl FnMut(usize, &[usize], usize) -> Result<Option<S>>,
) -> Result<Vec<Option<StepBuffers<S>>>> {
    let mut work = Vec::with_capacity(master.len());
    for (i, ((_, p), g)) in master.iter().zip(grads.iter()).enumerate() {
        let Some(g) = g else {
            work.push(None);
            continue;
        };
        let (w, gv) = (p.try_to_f32_vec(op)?, g.try_to_f32_vec(op)?);
        let state = fresh(i, p.shape(), w.len())?;
        work.push(Some((w, gv, state)));
    }
    Ok(work)
}

/// `n` zeros of optimizer state for a parameter shaped `shape`, or an error naming `op`
/// when the memory cannot be had (never an abort).
pub(crate) fn try_state_zeros(op: &'static str, shape: &[usize], n: usize) -> Result<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| mixprec_tensor::Error {
        op,
        kind: mixprec_tensor::ErrorKind::Allocation {
            shape: shape.to_vec(),
            bytes: n.saturating_mul(4),
        },
    })?;
    v.resize(n, 0.0);
    Ok(v)
}

/// An updated parameter's values as the new master tensor (no copy: `F32` is stored as
/// `f32`, so the collect reuses the buffer).
pub(crate) fn into_param(
    w: Vec<f32>,
    shape: &[usize],
) -> mixprec_tensor::Tensor<mixprec_dtype::F32> {
    mixprec_tensor::Tensor::from_vec(w.into_iter().map(mixprec_dtype::F32).collect(), shape)
        .expect("the values of a parameter of this shape")
}

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
