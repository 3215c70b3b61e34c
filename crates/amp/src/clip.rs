//! Gradient clipping on [`UnscaledGrads`] only (so clipping still-scaled gradients does
//! not compile).

use crate::scaler::UnscaledGrads;
use mixprec_autograd::{Error, Result};
use mixprec_dtype::F32;
use mixprec_tensor::{BinaryOp, Tensor};

/// Which norm [`clip_grad_norm_with`] measures (PyTorch's `norm_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NormType {
    /// The L2 norm (`norm_type=2.0`), the default.
    #[default]
    L2,
    /// The largest magnitude (`norm_type=inf`).
    Inf,
}

/// Options of [`clip_grad_norm_with`]; `Default` is an L2 norm and no error on a
/// non-finite norm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClipOptions {
    /// The norm to measure and clip.
    pub norm_type: NormType,
    /// Return an error (changing nothing) when the total norm is inf or NaN, as PyTorch's
    /// `error_if_nonfinite=True`. Otherwise such gradients are left unchanged.
    pub error_if_nonfinite: bool,
}

/// The global L2 norm of all gradients, computed in f32 as the norm of the per-tensor
/// norms (PyTorch's `clip_grad_norm_`), scaled by the largest so that the squares neither
/// overflow nor vanish. NaN when any gradient holds a NaN, inf when one holds an inf.
pub fn grad_norm(grads: &UnscaledGrads) -> f32 {
    grad_norm_of(grads, NormType::L2)
}

/// The global norm of all gradients of the given type: [`grad_norm`] for
/// [`NormType::L2`]; the largest magnitude of any element for [`NormType::Inf`] (exact;
/// NaN when any element is NaN).
pub fn grad_norm_of(grads: &UnscaledGrads, norm_type: NormType) -> f32 {
    let norms: Vec<f32> = grads
        .grads
        .iter()
        .flatten()
        .map(|g| match norm_type {
            NormType::L2 => g.norm_l2(),
            NormType::Inf => g.abs_max(),
        })
        .collect();
    let largest = norms.iter().fold(0.0f32, |m, &n| {
        if n.is_nan() || m.is_nan() {
            f32::NAN
        } else {
            m.max(n)
        }
    });
    if norm_type == NormType::L2 && largest > 0.0 && largest.is_finite() {
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
/// returns the norm before clipping ([`grad_norm`]): [`clip_grad_norm_with`] with the
/// default options.
pub fn clip_grad_norm(grads: &mut UnscaledGrads, max_norm: f32) -> Result<f32> {
    clip_grad_norm_with(grads, max_norm, ClipOptions::default())
}

/// Clips the global norm of all gradients ([`grad_norm_of`] with `opts.norm_type`) to
/// `max_norm` and returns the norm before clipping. Gradients are multiplied by
/// `min(1, max_norm / (norm + 1e-6))` (rounded to f32, the multiply in f32), PyTorch's
/// `clip_grad_norm_`, with two differences that keep a step from being ruined:
/// the L2 norm is computed overflow-safe (PyTorch's squares overflow f32 above about
/// 1.8e19 and report inf), and a non-finite norm leaves the gradients unchanged (PyTorch
/// multiplies them by the NaN or 0 coefficient; the scaler or the optimizer then skips
/// or refuses the step) or, with `error_if_nonfinite`, is an error as in PyTorch.
///
/// Errors (changing nothing) when `max_norm` is not finite and > 0 — a negative maximum
/// would flip every gradient's sign, a NaN one would silently disable clipping — and on
/// a non-finite norm under `error_if_nonfinite`.
///
/// ```
/// use mixprec_amp::{ClipOptions, MasterWeights, NormType, UnscaledGrads, clip_grad_norm_with};
/// use mixprec_tensor::Tensor;
/// let mut master = MasterWeights::new();
/// master.add("w", Tensor::zeros(&[2]));
/// let g = Tensor::from_f32(&[3.0, -4.0], &[2])?;
/// let mut grads = UnscaledGrads::from_named(&master, [("w", g)])?;
/// let opts = ClipOptions { norm_type: NormType::Inf, error_if_nonfinite: true };
/// assert_eq!(clip_grad_norm_with(&mut grads, 2.0, opts)?, 4.0);
/// let clipped = grads.get(0).unwrap().to_f32_vec();
/// assert!((clipped[1] + 2.0).abs() < 1e-5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn clip_grad_norm_with(
    grads: &mut UnscaledGrads,
    max_norm: f32,
    opts: ClipOptions,
) -> Result<f32> {
    if !(max_norm.is_finite() && max_norm > 0.0) {
        return Err(Error::invalid(
            "clip_grad_norm",
            format!("max_norm must be finite and > 0, got {max_norm}"),
        ));
    }
    let total = grad_norm_of(grads, opts.norm_type);
    if !total.is_finite() {
        if opts.error_if_nonfinite {
            return Err(Error::invalid(
                "clip_grad_norm",
                format!(
                    "the total {:?} norm of the gradients is {total}; set error_if_nonfinite \
                     to false to leave such gradients unchanged",
                    opts.norm_type
                ),
            ));
        }
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
