//! [`LayerNorm`]: normalisation over the last axis, always in F32 (the sensitive class),
//! with a learned gain (ones) and bias (zeros).

use crate::init::Init;
use crate::layers::linear::check_last_dim;
use crate::policy::TrainPolicy;
use crate::step::{ParamId, Step};
use mixprec_autograd::{Result, Var};
use mixprec_dtype::{Dtype, F32};
use std::marker::PhantomData;

/// Layer norm over a last axis of `dim` elements, `eps` 1e-5 (PyTorch's default).
pub struct LayerNorm<P: TrainPolicy> {
    name: String,
    weight: ParamId,
    bias: ParamId,
    dim: usize,
    eps: f64,
    _policy: PhantomData<P>,
}

impl<P: TrainPolicy> std::fmt::Debug for LayerNorm<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerNorm")
            .field("name", &self.name)
            .field("dim", &self.dim)
            .field("eps", &self.eps)
            .field("policy", &P::name())
            .finish()
    }
}

impl<P: TrainPolicy> LayerNorm<P> {
    /// Parameters `{name}.weight` (ones) and `{name}.bias` (zeros). Errors when `dim` is 0.
    pub fn new(init: &mut Init<'_>, name: &str, dim: usize) -> Result<Self> {
        super::check_sizes("LayerNorm", name, &[("dim", dim)])?;
        Ok(LayerNorm {
            name: name.to_string(),
            weight: init.constant(&format!("{name}.weight"), &[dim], 1.0),
            bias: init.constant(&format!("{name}.bias"), &[dim], 0.0),
            dim,
            eps: 1e-5,
            _policy: PhantomData,
        })
    }

    /// Normalises `x` (`[.., dim]`) over its last axis. Input of any precision (cast to
    /// F32 on the tape); mean, variance, normalisation and the affine run in F32 (the
    /// precision-sensitive list of PyTorch autocast), and the result stays F32. Feed it
    /// to the next layer as it is: GEMM layers (`Linear`, `Conv2d`, attention) cast their
    /// input to the policy's GEMM precision themselves, so a cast back to
    /// `P::Activation` in between only adds a rounding. Cast it yourself only to keep a
    /// saved activation small.
    pub fn forward<A: Dtype>(&self, step: &Step, x: &Var<A>) -> Result<Var<F32>> {
        check_last_dim("LayerNorm", &self.name, x.shape(), self.dim)?;
        let (w, b) = (step.param(self.weight), step.param(self.bias));
        step.with_policy::<P, _>(&self.name, None, |ac| {
            ac.layer_norm(x, &[self.dim], Some(w), Some(b), self.eps)
        })
    }
}
