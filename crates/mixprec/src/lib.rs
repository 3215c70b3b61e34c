//! mixprec: mixed-precision training in Rust.
//!
//! This facade re-exports the layers of the workspace; `use mixprec::prelude::*` brings
//! in what a model author needs. Today that is the precision types of
//! [`mixprec_dtype`], the tensors of [`mixprec_tensor`], the tape of
//! [`mixprec_autograd`], the policies and scalers of [`mixprec_amp`], and the layers,
//! optimizers, data and trainer of [`mixprec_nn`].

#![warn(missing_debug_implementations)]

pub use approx;
pub use mixprec_amp as amp;
pub use mixprec_autograd as autograd;
pub use mixprec_dist as dist;
pub use mixprec_dtype as dtype;
pub use mixprec_nn as nn;
pub use mixprec_tensor as tensor;

/// The one error type for users: every layer constructor, trainer, optimizer, checkpoint
/// and tape operation returns it, and `?` converts a tensor op's error
/// ([`tensor::Error`]), a conversion's ([`dtype::DtypeError`]) and an
/// [`std::io::Error`] into it, keeping the op's name and the shapes involved.
///
/// ```
/// use mixprec::prelude::*;
///
/// // A user's model builder: tensor ops, layer constructors and tape ops in one `?` chain.
/// fn build(dim: usize) -> Result<(MasterWeights, Linear<Bf16Mixed>)> {
///     let mut master = MasterWeights::new();
///     let x = Tensor::<F32>::try_zeros(&[2, dim])?;  // a tensor::Error converts
///     let layer = Linear::<Bf16Mixed>::new(&mut Init::new(&mut master, 0), "fc", dim, 4, true)?;
///     let _ = x.matmul(&Tensor::<F32>::try_zeros(&[dim, 4])?)?;
///     Ok((master, layer))
/// }
/// assert!(build(8).is_ok());
/// let e = build(0).unwrap_err();                      // a zero-width layer is refused
/// assert_eq!(e.op(), "Linear");
/// assert!(e.to_string().contains("fc"), "{e}");
/// ```
pub use mixprec_autograd::{Error, Result};

/// Sets the number of threads the CPU engine's parallel sections use (the calling thread
/// included); see [`mixprec_tensor::set_num_threads`]. The default is the CPUs this
/// process may run on, or `MIXPREC_NUM_THREADS` when set.
pub use mixprec_tensor::{num_threads, set_num_threads};

/// The names a user of the library needs in scope.
pub mod prelude {
    pub use mixprec_amp::{
        Alert, Autocast, Bf16Mixed, ClipOptions, F16Mixed, F16Unscaled, Fp8Hybrid, Fp8Recipe,
        Fp8Scaling, Fp32, GradAccumulator, GradScaler, GradScalerConfig, GradScalerState,
        MasterWeights, MemoryRole, MemorySummary, NoScaler, NoScaling, NormType, NumericsMonitor,
        Policy, Scaler, StepStats, UnscaledGrads, clip_grad_norm, clip_grad_norm_with,
    };
    pub use mixprec_autograd::{Error, Gradients, Result, Tape, Var, gradcheck};
    pub use mixprec_dtype::{
        Bf16, DType, Dtype, E4M3, E5M2, F16, F32, F64, FullPrecision, convert_slice,
        convert_slice_saturating, convert_slice_scaled, convert_slice_scaled_saturating,
        convert_slice_to_f32, convert_slice_to_f32_scaled,
    };
    pub use mixprec_nn::checkpoint::{Checkpoints, TensorFile};
    pub use mixprec_nn::data::Batches;
    pub use mixprec_nn::layers::{
        AvgPool2d, CausalSelfAttention, Conv2d, Dropout, Embedding, LayerNorm, Linear, MaxPool2d,
        Mlp, TransformerBlock,
    };
    pub use mixprec_nn::models::{Model, count_correct};
    pub use mixprec_nn::optim::{
        AdamW, AdamWConfig, AdamWParamState, ConstantLr, LrSchedule, Optimizer, Sgd, SgdConfig,
        WarmupCosine,
    };
    pub use mixprec_nn::{
        DataParallel, Init, ParamId, SkipReason, Step, StepRecord, TrainConfig, TrainPolicy,
        Trainer,
    };
    pub use mixprec_tensor::{
        CastOptions, CastOverflow, CastReport, CastRounding, CastScale, Conv2dParams, Device,
        Indices, Mask, Pool2dParams, Rng, Tensor,
    };
}
