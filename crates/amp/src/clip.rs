//! Gradient clipping on [`UnscaledGrads`] only (so clipping still-scaled gradients does
//! not compile).

use crate::scaler::UnscaledGrads;
use mixprec_autograd::{Error, Result};
use mixprec_dtype::F32;
use mixprec_tensor::{BinaryOp, Tensor};

/// The global L2 norm of all gradients, computed in f32 as the norm of the per-tensor
/// norms (PyTorch's `clip_grad_norm_`), scaled by the largest so that the squares neither
/// overflow nor vanish. NaN when any gradient holds a NaN, inf when one holds an inf.
pub fn grad_norm(grads: &UnscaledGrads) -> f32 {
    let norms: Vec<f32> = grads.grads.iter().flatten().map(|g| g.norm_l2()).collect();
    let largest = norms.iter().fold(0.0f32, |m, &n| {
        if n.is_nan() || m.is_nan() {
            f32::NAN
        } else {
            m.max(n)
        }
    });
    if largest > 0.0 && largest.is_finite() {
        largest
            * norms
                .iter()
                .map(|n| (n / largest) * (n / largest))
                .sum::<f32>()
                .sqrt()
    } else {
        largest
    }
}

/// Clips the global L2 norm of all gradients to `max_norm` (documented default 1.0) and
/// returns the norm before clipping ([`grad_norm`]). Gradients are multiplied by
/// `min(1, max_norm / (norm + 1e-6))` (rounded to f32, the multiply in f32); a non-finite
/// norm leaves them unchanged (the scaler skips such steps).
///
/// Errors (changing nothing) when `max_norm` is not finite and > 0: a negative maximum
/// would flip every gradient's sign, a NaN one would silently disable clipping.
pub fn clip_grad_norm(grads: &mut UnscaledGrads, max_norm: f32) -> Result<f32> {
    if !(max_norm.is_finite() && max_norm > 0.0) {
        return Err(Error::invalid(
            "clip_grad_norm",
            format!("max_norm must be finite and > 0, got {max_norm}"),
        ));
    }
    let total = grad_norm(grads);
    if !total.is_finite() {
        return Ok(total);
    }
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        // Every product first (each may fail to allocate), then all are kept.
        replace_all(grads, |g| g.binary_scalar(BinaryOp::Mul, f64::from(coef)))?;
    }
    Ok(total)
}

/// Clamps every gradient element into `[-clip, clip]` (PyTorch's `clip_grad_value_`).
/// Errors (changing nothing) when `clip` is not finite and >= 0.
pub fn clip_grad_value(grads: &mut UnscaledGrads, clip: f32) -> Result<()> {
    if !(clip.is_finite() && clip >= 0.0) {
        return Err(Error::invalid(
            "clip_grad_value",
            format!("clip must be finite and >= 0, got {clip}"),
        ));
    }
    replace_all(grads, |g| g.clamp(-f64::from(clip), f64::from(clip)))
}

/// Replaces every gradient by `f(gradient)`, all or none: the new tensors are made first
/// and kept only when every one succeeded.
fn replace_all(
    grads: &mut UnscaledGrads,
    f: impl Fn(&Tensor<F32>) -> mixprec_tensor::Result<Tensor<F32>>,
) -> Result<()> {
    let new = grads
        .grads
        .iter()
        .map(|g| g.as_ref().map(&f).transpose())
        .collect::<mixprec_tensor::Result<Vec<_>>>()?;
    grads.grads = new;
    Ok(())
}
