//! Automatic mixed precision for mixprec: what PyTorch's autocast + GradScaler,
//! Transformer Engine's FP8 recipes and JAX's jmp do, expressed as types.
//!
//! This crate is being built up (see the repository's `docs/amp.md`); it has so far:
//! - [`Autocast`]: op functions that apply a policy's cast rules, with per-step caching of
//!   parameter casts and FP8 GEMMs (E4M3 forward, E5M2 gradients).
//! - [`Policy`]: one associated precision per op class, with the precision-sensitive
//!   class bound to [`FullPrecision`] so that a policy putting softmax or losses in 16 or
//!   8 bits does not compile; the built-in policies [`Fp32`], [`Bf16Mixed`],
//!   [`F16Mixed`] and [`Fp8Hybrid`].
//! - [`GradScaler`]: dynamic loss scaling with PyTorch's exact update rule, plus optional
//!   min/max scale and Megatron-style hysteresis, and a scale that can never reach zero
//!   or a subnormal. Its [`ScaledGrads`] / [`UnscaledGrads`] types make clipping
//!   still-scaled gradients a compile error.
//! - [`DelayedScaling`]: Transformer Engine's FP8 delayed scaling (amax history, `max` or
//!   `most_recent`, margin, previous scale kept for amax 0/inf/NaN, FLT_MAX on overflow,
//!   no roll for tensors unused in a step).
//! - [`NumericsMonitor`]: loss spikes, gradient-norm explosions, slow divergence,
//!   non-finite values, and the cast point that underflows most.

mod autocast;
mod clip;
mod delayed;
mod monitor;
mod policy;
mod scaler;

pub use autocast::Autocast;
pub use clip::{clip_grad_norm, clip_grad_value};
pub use delayed::{AmaxCompute, DelayedScaling, DelayedScalingConfig};
pub use mixprec_dtype::FullPrecision;
pub use monitor::{Alert, CastStats, MonitorConfig, NumericsMonitor, StepStats};
pub use policy::{
    Bf16Mixed, DynamicScaling, F16Mixed, Fp8Hybrid, Fp32, LossScaling, NoScaling, Policy,
};
pub use scaler::{
    GradScaler, GradScalerConfig, GradScalerState, ScaledGrads, StepOutcome, UnscaledGrads,
};
