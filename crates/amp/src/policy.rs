//! [`Policy`]: the precision of each op class, checked by the compiler.

use mixprec_dtype::{Bf16, Dtype, E4M3, E5M2, F16, F32, FullPrecision};

use crate::scaler::GradScaler;

/// Whether a policy scales the loss, and the scaler its training needs: a trainer for a
/// policy takes exactly this type, so an FP16 model trained without a [`GradScaler`] does
/// not compile.
pub trait LossScaling: 'static {
    /// True for dynamic loss scaling.
    const DYNAMIC: bool;
    /// The scaler: [`NoScaler`] or [`GradScaler`].
    type Scaler: Scaler;
}

/// No loss scaling (FP32, BF16: the exponent range of f32 needs none).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoScaling;
impl LossScaling for NoScaling {
    const DYNAMIC: bool = false;
    type Scaler = NoScaler;
}

/// Dynamic loss scaling with a [`crate::GradScaler`] (FP16).
#[derive(Clone, Copy, Debug, Default)]
pub struct DynamicScaling;
impl LossScaling for DynamicScaling {
    const DYNAMIC: bool = true;
    type Scaler = GradScaler;
}

/// The loss scaler a training loop holds: [`NoScaler`] for policies that need none, a
/// [`GradScaler`] for dynamic loss scaling.
pub trait Scaler: Clone + std::fmt::Debug + 'static {
    /// The dynamic scaler, if this is one.
    fn grad_scaler(&self) -> Option<&GradScaler>;
    /// The dynamic scaler, mutably, if this is one.
    fn grad_scaler_mut(&mut self) -> Option<&mut GradScaler>;
    /// The scaler with default settings (PyTorch's, for [`GradScaler`]).
    fn with_defaults() -> mixprec_autograd::Result<Self>;
}

/// The scaler of policies without loss scaling: holds nothing, does nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoScaler;

impl Scaler for NoScaler {
    fn grad_scaler(&self) -> Option<&GradScaler> {
        None
    }
    fn grad_scaler_mut(&mut self) -> Option<&mut GradScaler> {
        None
    }
    fn with_defaults() -> mixprec_autograd::Result<Self> {
        Ok(NoScaler)
    }
}

impl Scaler for GradScaler {
    fn grad_scaler(&self) -> Option<&GradScaler> {
        Some(self)
    }
    fn grad_scaler_mut(&mut self) -> Option<&mut GradScaler> {
        Some(self)
    }
    fn with_defaults() -> mixprec_autograd::Result<Self> {
        GradScaler::new(Default::default())
    }
}

/// A precision policy: one precision per op class.
///
/// | class | what |
/// |---|---|
/// | `Param` | master weights and optimizer updates |
/// | `GemmFwd` | forward GEMM operands (matmul, linear, conv, attention scores) |
/// | `GemmBwd` | the gradient operand of backward GEMMs |
/// | `Activation` | element-wise ops, GEMM outputs, saved activations |
/// | `Sensitive` | softmax, log-softmax, layer norm, losses, norms |
///
/// `Param` and `Sensitive` must be full precision, so this does not compile:
///
/// ```compile_fail,E0277
/// use mixprec_amp::{Policy, NoScaling};
/// use mixprec_dtype::{Bf16, F32};
/// struct Bad;
/// impl Policy for Bad {
///     type Param = F32;
///     type GemmFwd = Bf16;
///     type GemmBwd = Bf16;
///     type Activation = Bf16;
///     type Sensitive = Bf16; // error: Bf16 is not FullPrecision
///     type Scaling = NoScaling;
/// }
/// ```
///
/// and neither does BF16 master weights:
///
/// ```compile_fail,E0277
/// use mixprec_amp::{Policy, NoScaling};
/// use mixprec_dtype::{Bf16, F32};
/// struct Bad;
/// impl Policy for Bad {
///     type Param = Bf16; // error: Bf16 is not FullPrecision
///     type GemmFwd = Bf16;
///     type GemmBwd = Bf16;
///     type Activation = Bf16;
///     type Sensitive = F32;
///     type Scaling = NoScaling;
/// }
/// ```
///
/// A custom policy is a few lines, e.g. FP16 GEMMs with BF16 activations:
///
/// ```
/// use mixprec_amp::{Policy, DynamicScaling};
/// use mixprec_dtype::{Bf16, F16, F32};
/// struct F16GemmBf16Act;
/// impl Policy for F16GemmBf16Act {
///     type Param = F32;
///     type GemmFwd = F16;
///     type GemmBwd = F16;
///     type Activation = Bf16;
///     type Sensitive = F32;
///     type Scaling = DynamicScaling;
/// }
/// assert_eq!(<F16GemmBf16Act as Policy>::name(), "custom");
/// ```
pub trait Policy: 'static {
    /// Master weights and optimizer state.
    type Param: FullPrecision;
    /// Forward GEMM operands.
    type GemmFwd: Dtype;
    /// Gradient operand of backward GEMMs.
    type GemmBwd: Dtype;
    /// Element-wise ops, GEMM outputs, saved activations.
    type Activation: Dtype;
    /// Softmax, log-softmax, layer norm, losses, norms.
    type Sensitive: FullPrecision;
    /// Loss scaling.
    type Scaling: LossScaling;

    /// A short name for reports.
    fn name() -> &'static str {
        "custom"
    }
}

macro_rules! policy {
    ($(#[$doc:meta])* $name:ident, $label:literal, $param:ty, $fwd:ty, $bwd:ty, $act:ty, $sens:ty, $scaling:ty) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $name;
        impl Policy for $name {
            type Param = $param;
            type GemmFwd = $fwd;
            type GemmBwd = $bwd;
            type Activation = $act;
            type Sensitive = $sens;
            type Scaling = $scaling;
            fn name() -> &'static str {
                $label
            }
        }
    };
}

policy!(
    /// Everything in F32.
    Fp32, "fp32", F32, F32, F32, F32, F32, NoScaling
);
policy!(
    /// FP16 compute and F32 master weights with **no** loss scaling: the baseline that
    /// shows why FP16 needs a scaler (small gradients flush to zero at the FP16 cast
    /// points). Says so in its name, since an FP16 policy otherwise requires a scaler.
    F16Unscaled, "f16-unscaled", F32, F16, F16, F16, F32, NoScaling
);
policy!(
    /// BF16 compute, F32 master weights and sensitive ops, no loss scaling.
    Bf16Mixed, "bf16-mixed", F32, Bf16, Bf16, Bf16, F32, NoScaling
);
policy!(
    /// FP16 compute, F32 master weights and sensitive ops, dynamic loss scaling.
    F16Mixed, "f16-mixed", F32, F16, F16, F16, F32, DynamicScaling
);
policy!(
    /// FP8 GEMMs (E4M3 forward operands, E5M2 gradient operands, per-tensor scales),
    /// BF16 activations, F32 master weights and sensitive ops.
    Fp8Hybrid, "fp8-hybrid", F32, E4M3, E5M2, Bf16, F32, NoScaling
);

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::DType;

    fn classes<P: Policy>() -> [DType; 5] {
        [
            <P::Param as Dtype>::DTYPE,
            <P::GemmFwd as Dtype>::DTYPE,
            <P::GemmBwd as Dtype>::DTYPE,
            <P::Activation as Dtype>::DTYPE,
            <P::Sensitive as Dtype>::DTYPE,
        ]
    }

    #[test]
    fn built_in_policies_follow_the_design_table() {
        use DType::*;
        assert_eq!(classes::<Fp32>(), [F32, F32, F32, F32, F32]);
        assert_eq!(classes::<Bf16Mixed>(), [F32, Bf16, Bf16, Bf16, F32]);
        assert_eq!(classes::<F16Mixed>(), [F32, F16, F16, F16, F32]);
        assert_eq!(classes::<Fp8Hybrid>(), [F32, E4M3, E5M2, Bf16, F32]);
        assert_eq!(
            [
                <F16Mixed as Policy>::Scaling::DYNAMIC,
                <Bf16Mixed as Policy>::Scaling::DYNAMIC
            ],
            [true, false]
        );
        assert_eq!(Fp8Hybrid::name(), "fp8-hybrid");
    }
}
