//! Gradient clipping on [`UnscaledGrads`] only (so clipping still-scaled gradients does
//! not compile).

use crate::scaler::UnscaledGrads;

/// Clips the global L2 norm of all gradients to `max_norm` (documented default 1.0) and
/// returns the norm before clipping, computed in f32 as the norm of the per-tensor norms
/// (PyTorch's `clip_grad_norm_`). Gradients are multiplied by
/// `min(1, max_norm / (norm + 1e-6))`; a non-finite norm leaves them unchanged (the
/// scaler skips such steps).
pub fn clip_grad_norm(grads: &mut UnscaledGrads, max_norm: f32) -> f32 {
    let norms: Vec<f32> = grads.grads.iter().flatten().map(|g| g.norm_l2()).collect();
    // Norm of norms, scaled by the largest so the squares neither overflow nor vanish.
    let largest = norms.iter().fold(0.0f32, |m, &n| {
        if n.is_nan() || m.is_nan() {
            f32::NAN
        } else {
            m.max(n)
        }
    });
    let total = if largest > 0.0 && largest.is_finite() {
        largest
            * norms
                .iter()
                .map(|n| (n / largest) * (n / largest))
                .sum::<f32>()
                .sqrt()
    } else {
        largest
    };
    if !total.is_finite() {
        return total;
    }
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        for g in grads.grads.iter_mut().flatten() {
            *g = g.map(|v| v * coef);
        }
    }
    total
}

/// Clamps every gradient element into `[-clip, clip]` (PyTorch's `clip_grad_value_`).
pub fn clip_grad_value(grads: &mut UnscaledGrads, clip: f32) {
    let clip = clip.abs();
    for g in grads.grads.iter_mut().flatten() {
        *g = g.map(|v| v.clamp(-clip, clip));
    }
}
