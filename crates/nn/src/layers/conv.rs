//! [`Conv2d`]: 2-D convolution (NCHW) under policy `P`: GEMM class, so `P::GemmFwd`
//! (`P::Activation` under FP8 policies, which have no FP8 convolution), result in
//! `P::Activation`.

use crate::init::Init;
use crate::policy::TrainPolicy;
use crate::step::{ParamId, Step};
use mixprec_autograd::{Result, Var};
use mixprec_dtype::Dtype;
use mixprec_tensor::Conv2dParams;
use std::marker::PhantomData;

/// `in_channels -> out_channels` with a `k x k` kernel.
pub struct Conv2d<P: TrainPolicy> {
    name: String,
    weight: ParamId,
    bias: Option<ParamId>,
    in_channels: usize,
    params: Conv2dParams,
    _policy: PhantomData<P>,
}

impl<P: TrainPolicy> std::fmt::Debug for Conv2d<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conv2d")
            .field("name", &self.name)
            .field("in_channels", &self.in_channels)
            .field("params", &self.params)
            .field("bias", &self.bias.is_some())
            .field("policy", &P::name())
            .finish()
    }
}

impl<P: TrainPolicy> Conv2d<P> {
    /// `{name}.weight` `[out, in/groups, k, k]` and `{name}.bias` `[out]`, PyTorch's
    /// default `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`. Errors unless `groups` divides both
    /// channel counts.
    pub fn new(
        init: &mut Init<'_>,
        name: &str,
        in_channels: usize,
        out_channels: usize,
        k: usize,
        params: Conv2dParams,
        bias: bool,
    ) -> Result<Self> {
        super::check_sizes(
            "Conv2d",
            name,
            &[
                ("in_channels", in_channels),
                ("out_channels", out_channels),
                ("kernel size", k),
                ("groups", params.groups),
            ],
        )?;
        let g = params.groups;
        if !in_channels.is_multiple_of(g) || !out_channels.is_multiple_of(g) || k == 0 {
            return Err(mixprec_autograd::Error::invalid(
                "Conv2d",
                format!(
                    "{name}: groups {g} must divide {in_channels} and {out_channels}, kernel {k} > 0"
                ),
            ));
        }
        let fan_in = (in_channels / g) * k * k;
        let bound = 1.0 / (fan_in as f64).sqrt();
        let weight = init.uniform(
            &format!("{name}.weight"),
            &[out_channels, in_channels / g, k, k],
            bound,
        )?;
        let bias = if bias {
            Some(init.uniform(&format!("{name}.bias"), &[out_channels], bound)?)
        } else {
            None
        };
        Ok(Conv2d {
            name: name.to_string(),
            weight,
            bias,
            in_channels,
            params,
            _policy: PhantomData,
        })
    }

    /// `x`: `[batch, in_channels, h, w]`, any precision. As [`super::Linear`]: operands
    /// in `P::GemmFwd`, F32 accumulation and bias, result rounded once to
    /// `P::Activation`.
    pub fn forward<A: Dtype>(&self, step: &Step, x: &Var<A>) -> Result<Var<P::Activation>> {
        if x.shape().len() != 4 || x.shape()[1] != self.in_channels {
            return Err(mixprec_autograd::Error::invalid(
                "Conv2d",
                format!(
                    "{}: expected [batch, {}, h, w], got {:?}",
                    self.name,
                    self.in_channels,
                    x.shape()
                ),
            ));
        }
        let w = step.param(self.weight);
        let b = self.bias.map(|b| step.param(b));
        step.with_policy::<P, _>(&self.name, None, |ac| ac.conv2d(x, w, b, self.params))
    }
}
