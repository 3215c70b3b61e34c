//! [`Linear`]: `y = x W^T + b` under policy `P` (GEMM class: `P::GemmFwd` operands,
//! result in `P::Activation`; FP8 policies quantise with the layer's own scaling state,
//! as Transformer Engine keeps FP8 metadata per module).

use crate::init::Init;
use crate::policy::TrainPolicy;
use crate::step::{ParamId, Step};
use mixprec_amp::Fp8Scaling;
use mixprec_autograd::{Result, Var};
use mixprec_dtype::Dtype;
use std::marker::PhantomData;

/// A fully connected layer; `W` is `[out, in]` (PyTorch's layout).
pub struct Linear<P: TrainPolicy> {
    name: String,
    weight: ParamId,
    bias: Option<ParamId>,
    in_features: usize,
    out_features: usize,
    fp8: Fp8Scaling,
    _policy: PhantomData<P>,
}

impl<P: TrainPolicy> std::fmt::Debug for Linear<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Linear")
            .field("name", &self.name)
            .field("in_features", &self.in_features)
            .field("out_features", &self.out_features)
            .field("bias", &self.bias.is_some())
            .field("policy", &P::name())
            .finish()
    }
}

impl<P: TrainPolicy> Linear<P> {
    /// Parameters `{name}.weight` and `{name}.bias` with PyTorch's default initialisation:
    /// `U(-1/sqrt(in), 1/sqrt(in))` for both.
    pub fn new(
        init: &mut Init<'_>,
        name: &str,
        in_features: usize,
        out_features: usize,
        bias: bool,
    ) -> Result<Self> {
        super::check_sizes(
            "Linear",
            name,
            &[("in_features", in_features), ("out_features", out_features)],
        )?;
        let bound = 1.0 / (in_features.max(1) as f64).sqrt();
        let weight = init.uniform(
            &format!("{name}.weight"),
            &[out_features, in_features],
            bound,
        )?;
        let bias = if bias {
            Some(init.uniform(&format!("{name}.bias"), &[out_features], bound)?)
        } else {
            None
        };
        Ok(Linear {
            name: name.to_string(),
            weight,
            bias,
            in_features,
            out_features,
            fp8: init.fp8_state(),
            _policy: PhantomData,
        })
    }

    /// `x` of shape `[.., in]` to `[.., out]`. Input of any precision: cast to
    /// `P::GemmFwd` for the GEMM (BF16/F16 round once; FP8 quantises with this layer's
    /// scale, saturating), products accumulated in F32, the bias added in F32, and the
    /// result rounded once to `P::Activation`.
    pub fn forward<A: Dtype>(&self, step: &Step, x: &Var<A>) -> Result<Var<P::Activation>> {
        check_last_dim("Linear", &self.name, x.shape(), self.in_features)?;
        let w = step.param(self.weight);
        let b = self.bias.map(|b| step.param(b));
        step.with_policy::<P, _>(&self.name, Some(&self.fp8), |ac| ac.linear(x, w, b))
    }

    /// The layer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `(in, out)` features.
    pub fn features(&self) -> (usize, usize) {
        (self.in_features, self.out_features)
    }

    /// The layer's FP8 scaling state (delayed-scaling histories and scales per operand).
    pub fn fp8(&self) -> &mixprec_amp::Fp8Scaling {
        &self.fp8
    }

    /// The layer's FP8 scaling state under its name (for [`crate::models::Model::fp8_states`]).
    pub fn fp8_states(&self) -> Vec<(String, mixprec_amp::Fp8Scaling)> {
        vec![(self.name.clone(), self.fp8.clone())]
    }
}

/// Errors unless the last axis of `shape` has `want` elements.
pub(crate) fn check_last_dim(
    layer: &'static str,
    name: &str,
    shape: &[usize],
    want: usize,
) -> Result<()> {
    if shape.last() == Some(&want) {
        return Ok(());
    }
    Err(mixprec_autograd::Error::invalid(
        layer,
        format!("{name}: expected input [.., {want}], got {shape:?}"),
    ))
}
