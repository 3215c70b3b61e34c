//! Layers, optimizers, data and training for mixprec: build a model in Rust, train it
//! under a precision policy, and compare policies side by side.
//!
//! - [`layers`]: `Linear`, `Embedding`, `LayerNorm`, `Mlp`, `CausalSelfAttention`,
//!   `TransformerBlock`, `Conv2d`, pooling, `Dropout` — generic over a [`TrainPolicy`],
//!   parameters created by [`Init`] from an explicit seed, named for checkpoints and
//!   reports, each forward inside a tape scope named after the layer.
//! - [`optim`]: `Sgd` (momentum, dampening, Nesterov, weight decay) and `AdamW` with
//!   PyTorch's update rules on the F32 master weights, atomic; `WarmupCosine`,
//!   `ConstantLr` or a schedule of one's own (`LrSchedule`).
//! - [`data`]: the digits data set (embedded, fixed split), the generated sorting task,
//!   seeded batches.
//! - [`models`]: `DigitsMlp<B, E>` and `Gpt<B, E>` — a body policy and an edge policy,
//!   so "embedding and head in FP32, the rest in FP8" is the type `Gpt<Fp8Hybrid, Fp32>`.
//! - [`Trainer`]: micro-batches under one loss scale, unscale once, clip, step, update,
//!   FP8 scale updates, numerics monitor, memory by role.
//! - [`compare`]: the policy comparison behind `examples/compare_policies`.
//!
//! ```
//! use mixprec_amp::{Bf16Mixed, MasterWeights, NoScaler};
//! use mixprec_nn::data::Digits;
//! use mixprec_nn::models::DigitsMlp;
//! use mixprec_nn::optim::{AdamW, AdamWConfig, WarmupCosine};
//! use mixprec_nn::{Init, TrainConfig, Trainer};
//!
//! let digits = Digits::load().unwrap();
//! let mut master = MasterWeights::new();
//! let model = DigitsMlp::<Bf16Mixed>::new(&mut Init::new(&mut master, 42), 64).unwrap();
//! let schedule = WarmupCosine { base: 3e-3, min: 3e-4, warmup: 5, total: 60 }.into();
//! let cfg = TrainConfig { schedule, seed: 1, ..TrainConfig::default() };
//! let mut trainer = Trainer::new(master, AdamW::new(AdamWConfig::default()).unwrap(), NoScaler, cfg).unwrap();
//! let mut batches = digits.train.batches(64, 7).unwrap();
//! while trainer.next_step() < 60 {
//!     let b = digits.train.batch(&batches.next_batch()).unwrap();
//!     trainer.step_next(&model, &[b]).unwrap();
//! }
//! assert!(trainer.accuracy(&model, &[digits.test.all().unwrap()]).unwrap() > 0.8);
//! ```

#![warn(missing_debug_implementations)]

pub mod checkpoint;
pub mod compare;
pub mod data;
mod init;
pub mod layers;
pub mod models;
pub mod optim;
mod policy;
mod step;
mod train;

pub use init::Init;
pub use policy::TrainPolicy;
pub use step::{ParamId, Step};
pub use train::{DataParallel, SkipReason, StepRecord, TrainConfig, Trainer};
