//! Automatic mixed precision for mixprec: what PyTorch's autocast + GradScaler,
//! Transformer Engine's FP8 recipes and JAX's jmp do, expressed as types.
//!
//! Design notes and the differences from the anchors: the repository's `docs/amp.md`.
//! - [`Autocast`]: op functions that apply a policy's cast rules, with per-step caching of
//!   parameter casts and FP8 GEMMs (E4M3 forward, E5M2 gradients), stateless current
//!   scaling or [`Fp8Scaling`] (Transformer Engine's delayed scaling across steps).
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
//! - [`GradAccumulator`]: micro-batches with one unscale / step / update per effective
//!   batch.
//! - [`MasterWeights`] (atomic updates) and exact memory accounting ([`memory_summary`],
//!   [`predict_memory`]: 16P for FP32 + Adam, 18P for BF16 mixed + Adam, ... plus saved
//!   activations and FP8 state, equal to the measurement byte for byte).
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
//!     clip_grad_norm(&mut grads, 1.0)?;                 // only unscaled grads compile here
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
//!
//! # FP8 with Transformer Engine's delayed scaling
//!
//! The FP8 state lives across steps; each step quantises with scales from earlier steps'
//! amaxes, and `update` at the end of the step computes the next ones. Its numbers go to
//! the monitor with the tape's cast points.
//!
//! ```
//! use mixprec_amp::{Autocast, Fp8Hybrid, Fp8Scaling, NumericsMonitor, StepStats, UnscaledGrads, clip_grad_norm};
//! use mixprec_autograd::Tape;
//! use mixprec_dtype::F32;
//! use mixprec_tensor::{Indices, Rng, Tensor};
//!
//! let mut rng = Rng::seed(3);
//! let x = Tensor::<F32>::randn(&[32, 16], 0.0, 1.0, &mut rng).unwrap();
//! let y = Indices::from_slice(&(0..32).map(|i| i % 4).collect::<Vec<_>>());
//! let mut w = Tensor::<F32>::randn(&[4, 16], 0.0, 0.1, &mut rng).unwrap();
//! let fp8 = Fp8Scaling::default();                     // history 1024, max, margin 0
//! let mut monitor = NumericsMonitor::new(Default::default());
//! for step in 0..5 {
//!     let tape = Tape::new();
//!     let ac = Autocast::<Fp8Hybrid>::with_fp8(&tape, &fp8);
//!     let wv = tape.leaf(w.clone());
//!     let logits = tape.scope("head", || ac.linear(&tape.constant(x.clone()), &wv, None)).unwrap();
//!     let loss = ac.cross_entropy(&logits, &y).unwrap();
//!     let mut g = UnscaledGrads::from_gradients(&loss.backward().unwrap(), &[&wv]);
//!     let norm = clip_grad_norm(&mut g, 1.0).unwrap();
//!     w = w.sub(&g.get(0).unwrap().mul_scalar(0.5)).unwrap();
//!     let l = f64::from(loss.value().to_f32_vec()[0]);
//!     let stats = StepStats::from_tape(step, l, f64::from(norm), None, false, &tape);
//!     monitor.record(stats.with_fp8(fp8.update()));   // next scales from this step's amax
//! }
//! let scales: Vec<f32> = monitor.fp8().iter().map(|t| t.scale).collect();
//! assert_eq!(scales.len(), 3);                        // input, weight, gradient
//! assert!(scales.iter().all(|&s| s > 1.0));           // small values: scaled up
//! ```

#![warn(missing_debug_implementations)]

mod accumulate;
mod alert_text;
mod autocast;
mod clip;
mod copies;
mod delayed;
mod fp8;
mod master;
mod memory;
mod monitor;
mod policy;
mod scaler;

pub use accumulate::GradAccumulator;
pub use autocast::Autocast;
pub use clip::{
    ClipOptions, NormType, clip_grad_norm, clip_grad_norm_with, clip_grad_value, grad_norm,
    grad_norm_of,
};
pub use copies::ComputeCopies;
pub use delayed::{AmaxCompute, DelayedScaling, DelayedScalingConfig};
pub use fp8::{Fp8Recipe, Fp8Role, Fp8Scaling, Fp8Snapshot, Fp8TensorState, Fp8TensorStats};
pub use master::{MasterWeights, ParamUpdate};
pub use memory::{
    MemoryRole, MemorySummary, ModelShape, OptimizerKind, memory_summary, predict_memory,
};
pub use mixprec_dtype::FullPrecision;
pub use monitor::{Alert, CastStats, MonitorConfig, NumericsMonitor, StepStats};
pub use policy::{
    Bf16Mixed, DynamicScaling, F16Mixed, F16Unscaled, Fp8Hybrid, Fp32, LossScaling, NoScaler,
    NoScaling, Policy, Scaler,
};
pub use scaler::{
    GradScaler, GradScalerConfig, GradScalerState, ScaledGrads, StepOutcome, UnscaledGrads,
};
