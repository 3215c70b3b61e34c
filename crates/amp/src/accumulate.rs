//! [`GradAccumulator`]: gradient accumulation over micro-batches with the loss scaler's
//! rule — the same scale for every micro-batch, then unscale, step and update once per
//! effective batch (PyTorch's recipe for GradScaler with accumulation).
//!
//! Each micro-batch runs on its own tape; its gradients are added per parameter position
//! in F32. `finish` divides the sum by the number of micro-batches, so with mean losses
//! over equal micro-batches the result is the mean gradient of the whole batch (PyTorch
//! asks users to divide each loss by the count instead; the result is the same up to the
//! rounding of that division).

use crate::scaler::{GradScaler, ScaledGrads, UnscaledGrads};
use mixprec_autograd::{Error, Gradients, Result, Var};
use mixprec_dtype::F32;
use mixprec_tensor::{BinaryOp, Tensor};

/// Sums of per-parameter gradients over micro-batches.
#[derive(Clone, Debug, Default)]
pub struct GradAccumulator {
    sums: Vec<Option<Tensor<F32>>>,
    micro_batches: usize,
    /// The loss scale of the scaled micro-batches (`None`: unscaled ones, or none yet).
    scale: Option<f32>,
}

impl GradAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Micro-batches added so far.
    pub fn micro_batches(&self) -> usize {
        self.micro_batches
    }

    fn add_grads(&mut self, grads: &Gradients, params: &[&Var<F32>]) -> Result<()> {
        if self.micro_batches > 0 && params.len() != self.sums.len() {
            return Err(Error::invalid(
                "GradAccumulator",
                format!(
                    "{} parameters this micro-batch, {} before",
                    params.len(),
                    self.sums.len()
                ),
            ));
        }
        // Compute every new sum first: a failure leaves the accumulator as it was.
        let mut new = Vec::with_capacity(params.len());
        for (i, p) in params.iter().enumerate() {
            let old = self.sums.get(i).and_then(|s| s.as_ref());
            new.push(match (old, grads.get(p)) {
                (Some(s), Some(g)) => Some(s.add(g)?),
                (None, Some(g)) => Some(g.clone()),
                (s, None) => s.cloned(),
            });
        }
        self.sums = new;
        self.micro_batches += 1;
        Ok(())
    }

    /// Adds a micro-batch's scaled gradients. Errors (adding nothing) when its scale
    /// differs from the earlier micro-batches' (the scaler must not update inside an
    /// effective batch) or when unscaled gradients were added before.
    pub fn add_scaled(&mut self, grads: &ScaledGrads, params: &[&Var<F32>]) -> Result<()> {
        match self.scale {
            None if self.micro_batches > 0 => {
                return Err(Error::invalid(
                    "GradAccumulator",
                    "scaled gradients after unscaled ones",
                ));
            }
            Some(s) if s != grads.scale() => {
                return Err(Error::invalid(
                    "GradAccumulator",
                    format!(
                        "loss scale changed inside the effective batch: {s} then {}",
                        grads.scale()
                    ),
                ));
            }
            _ => {}
        }
        self.add_grads(grads.gradients(), params)?;
        self.scale = Some(grads.scale());
        Ok(())
    }

    /// Adds a micro-batch's gradients of a policy without loss scaling. Errors (adding
    /// nothing) when scaled gradients were added before.
    pub fn add(&mut self, grads: &Gradients, params: &[&Var<F32>]) -> Result<()> {
        if self.scale.is_some() {
            return Err(Error::invalid(
                "GradAccumulator",
                "unscaled gradients after scaled ones",
            ));
        }
        self.add_grads(grads, params)
    }

    /// Parameter `position`'s gradient as the step will use it if `last` is the last
    /// micro-batch's gradient of it (`None`: none reached it), made at loss scale `scale`
    /// (`None` for a policy without loss scaling): the bits that adding the micro-batch
    /// and then [`GradScaler::unscale_accumulated`] (or [`GradAccumulator::into_unscaled`])
    /// give for that parameter — sum in F32, times the f32 `1 / micro-batches`, times the
    /// f32 `1 / scale`. For work that starts on a parameter's gradient as soon as the
    /// last backward has made it final ([`GradScaler::backward_with_leaf_hook`]), such as
    /// a data-parallel exchange. `None` when the parameter has no gradient at all. Errors
    /// when `scale` is not the accumulated micro-batches' scale, or when the position is
    /// beyond the parameters accumulated so far.
    pub fn finished(
        &self,
        position: usize,
        last: Option<&Tensor<F32>>,
        scale: Option<f32>,
    ) -> Result<Option<Tensor<F32>>> {
        if self.micro_batches > 0 && self.scale != scale {
            return Err(Error::invalid(
                "GradAccumulator::finished",
                format!(
                    "the last micro-batch's loss scale {scale:?} is not the accumulated {:?}",
                    self.scale
                ),
            ));
        }
        if self.micro_batches > 0 && position >= self.sums.len() {
            return Err(Error::invalid(
                "GradAccumulator::finished",
                format!("parameter {position} of {} accumulated", self.sums.len()),
            ));
        }
        let old = self.sums.get(position).and_then(Option::as_ref);
        let sum = match (old, last) {
            (Some(s), Some(g)) => s.add(g)?,
            (None, Some(g)) => g.clone(),
            (Some(s), None) => s.clone(),
            (None, None) => return Ok(None),
        };
        let mean = mean_one(sum, self.micro_batches + 1)?;
        Ok(Some(match scale {
            Some(s) => crate::scaler::unscale_one(mean, s),
            None => mean,
        }))
    }

    /// The mean of the added micro-batches, still scaled (for the scaler to unscale).
    pub(crate) fn finish_scaled(self) -> Result<(Vec<Option<Tensor<F32>>>, f32)> {
        let Some(scale) = self.scale else {
            return Err(Error::invalid(
                "GradAccumulator",
                "no scaled gradients: use into_unscaled for a policy without loss scaling",
            ));
        };
        Ok((mean(self.sums, self.micro_batches)?, scale))
    }

    /// The mean gradients of a policy without loss scaling. Errors when scaled gradients
    /// were added (they must go through [`GradScaler::unscale_accumulated`]) or nothing was.
    pub fn into_unscaled(self) -> Result<UnscaledGrads> {
        if self.scale.is_some() || self.micro_batches == 0 {
            return Err(Error::invalid(
                "GradAccumulator",
                "scaled gradients need GradScaler::unscale_accumulated (or none were added)",
            ));
        }
        Ok(UnscaledGrads::new(mean(self.sums, self.micro_batches)?))
    }
}

/// `sum / n` in f32 (exact for a power-of-two `n`): each sum times the f32 `1 / n`.
fn mean(sums: Vec<Option<Tensor<F32>>>, n: usize) -> Result<Vec<Option<Tensor<F32>>>> {
    sums.into_iter()
        .map(|s| s.map(|t| mean_one(t, n)).transpose())
        .collect()
}

/// One sum over `n` micro-batches divided by `n` as [`mean`] does.
fn mean_one(sum: Tensor<F32>, n: usize) -> Result<Tensor<F32>> {
    if n == 1 {
        return Ok(sum);
    }
    Ok(sum.binary_scalar(BinaryOp::Mul, f64::from(1.0 / n as f32))?)
}

impl GradScaler {
    /// Unscales accumulated gradients once for the effective batch (as
    /// [`GradScaler::unscale`]); then `step` and `update` once.
    pub fn unscale_accumulated(&mut self, acc: GradAccumulator) -> Result<UnscaledGrads> {
        let (grads, scale) = acc.finish_scaled()?;
        Ok(self.unscale_tensors(grads, scale))
    }
}
