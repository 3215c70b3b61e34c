//! Fused, in-place optimizer updates of F32 parameters: [`Tensor::adamw_update`] and
//! [`Tensor::sgd_update`]. One pass reads the gradient and writes the parameter and its
//! optimizer state where they are (no decoded copies), so a device backend runs each as
//! one kernel.
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

/// Errors unless `value` lies in `range` (NaN never does), naming `op` and `name`.
fn check_in(op: &'static str, name: &str, value: f32, range: std::ops::Range<f32>) -> Result<()> {
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
