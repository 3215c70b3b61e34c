//! mixprec: mixed-precision training in Rust.
//!
//! This facade re-exports the layers of the workspace; `use mixprec::prelude::*` brings
//! in what a model author needs. Today that is the precision types of
//! [`mixprec_dtype`], the tensors of [`mixprec_tensor`], the tape of
//! [`mixprec_autograd`] and the policies and scalers of [`mixprec_amp`]; the nn layer
//! joins as it lands.

pub use mixprec_amp as amp;
pub use mixprec_autograd as autograd;
pub use mixprec_dtype as dtype;
pub use mixprec_tensor as tensor;

/// The names a user of the library needs in scope.
pub mod prelude {
    pub use mixprec_amp::{
        Autocast, Bf16Mixed, F16Mixed, Fp8Hybrid, Fp32, GradScaler, GradScalerConfig,
        NumericsMonitor, Policy, clip_grad_norm,
    };
    pub use mixprec_autograd::{Gradients, Tape, Var, gradcheck};
    pub use mixprec_dtype::{
        Bf16, DType, Dtype, E4M3, E5M2, F16, F32, F64, FullPrecision, convert_slice,
        convert_slice_saturating, convert_slice_scaled, convert_slice_scaled_saturating,
        convert_slice_to_f32, convert_slice_to_f32_scaled,
    };
    pub use mixprec_tensor::{
        CastOptions, CastOverflow, CastReport, CastRounding, CastScale, Conv2dParams, Device,
        Indices, Mask, Pool2dParams, Rng, Tensor,
    };
}
