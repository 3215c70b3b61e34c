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
//! - [`MasterWeights`] (atomic updates) and memory accounting ([`memory_summary`],
//!   [`predict_memory`]: 16P for FP32 + Adam, 18P for BF16 mixed + Adam, ...).
//! - [`NumericsMonitor`]: loss spikes, gradient-norm explosions, slow divergence,
//!   non-finite values, and the cast point that underflows most.

//! # A training step under each policy
//!
//! ```
//! use mixprec_amp::{clip_grad_norm, Autocast, Bf16Mixed, F16Mixed, Fp32, Fp8Hybrid, GradScaler, GradScalerConfig, LossScaling, Policy, UnscaledGrads};
//! use mixprec_autograd::{Result, Tape};
//! use mixprec_dtype::F32;
//! use mixprec_tensor::{Indices, Rng, Tensor};
//!
//! /// One SGD step of a linear classifier; returns the loss.
//! fn step<P: Policy<Param = F32, Sensitive = F32>>(w: &mut Tensor<F32>, scaler: &mut GradScaler, x: &Tensor<F32>, y: &Indices) -> Result<f32> {
//!     let tape = Tape::new();
//!     let ac = Autocast::<P>::new(&tape);              // per-step cast cache
//!     let wv = tape.leaf(w.clone());                    // F32 master weight
//!     let logits = ac.linear(&tape.constant(x.clone()), &wv, None)?;
//!     let loss = ac.cross_entropy(&logits, y)?;         // F32 whatever the policy
//!     let mut grads = if P::Scaling::DYNAMIC {
//!         let scaled = scaler.backward(&loss)?;          // loss * scale
//!         scaler.unscale(scaled, &[&wv])                 // the only way to UnscaledGrads
//!     } else {
//!         UnscaledGrads::from_gradients(&loss.backward()?, &[&wv])
//!     };
//!     clip_grad_norm(&mut grads, 1.0);                  // only unscaled grads compile here
//!     scaler.step(&grads, |g| *w = w.sub(&g.get(0).unwrap().mul_scalar(0.5)).unwrap());
//!     scaler.update();
//!     Ok(loss.value().to_f32_vec()[0])
//! }
//!
//! fn train<P: Policy<Param = F32, Sensitive = F32>>() -> (f32, f32) {
//!     let mut rng = Rng::seed(1);
//!     let x = Tensor::<F32>::randn(&[64, 8], 0.0, 1.0, &mut rng).unwrap();
//!     let y = Indices::from_slice(&(0..64).map(|i| i % 3).collect::<Vec<_>>());
//!     let mut w = Tensor::<F32>::zeros(&[3, 8]);
//!     let mut scaler = GradScaler::new(GradScalerConfig::default()).unwrap();
//!     let first = step::<P>(&mut w, &mut scaler, &x, &y).unwrap();
//!     let mut last = first;
//!     for _ in 0..20 {
//!         last = step::<P>(&mut w, &mut scaler, &x, &y).unwrap();
//!     }
//!     (first, last)
//! }
//!
//! for (first, last) in [train::<Fp32>(), train::<Bf16Mixed>(), train::<F16Mixed>(), train::<Fp8Hybrid>()] {
//!     assert!(last < first, "{first} -> {last}");
//! }
//! ```

mod autocast;
mod clip;
mod delayed;
mod master;
mod memory;
mod monitor;
mod policy;
mod scaler;

pub use autocast::Autocast;
pub use clip::{clip_grad_norm, clip_grad_value};
pub use delayed::{AmaxCompute, DelayedScaling, DelayedScalingConfig};
pub use master::MasterWeights;
pub use memory::{MemoryRole, MemorySummary, OptimizerKind, memory_summary, predict_memory};
pub use mixprec_dtype::FullPrecision;
pub use monitor::{Alert, CastStats, MonitorConfig, NumericsMonitor, StepStats};
pub use policy::{
    Bf16Mixed, DynamicScaling, F16Mixed, Fp8Hybrid, Fp32, LossScaling, NoScaling, Policy,
};
pub use scaler::{
    GradScaler, GradScalerConfig, GradScalerState, ScaledGrads, StepOutcome, UnscaledGrads,
};
