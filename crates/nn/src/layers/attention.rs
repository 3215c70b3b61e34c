//! [`CausalSelfAttention`]: multi-head self-attention with a causal mask.
//!
//! Precision: the QKV and output projections are GEMM-class (`P::GemmFwd`, FP8 under FP8
//! policies); the score and value GEMMs run in `P::GemmFwd` too except under FP8, where
//! they stay in `P::Activation` (as Transformer Engine's unfused attention); the scaled,
//! masked scores go through softmax in F32.

use crate::init::Init;
use crate::layers::linear::{Linear, check_last_dim};
use crate::policy::TrainPolicy;
use crate::step::Step;
use mixprec_amp::Fp8Scaling;
use mixprec_autograd::{Result, Var};
use mixprec_dtype::Dtype;
use mixprec_tensor::Mask;

/// `heads` heads over a model width `dim` (`dim % heads == 0`).
pub struct CausalSelfAttention<P: TrainPolicy> {
    name: String,
    qkv: Linear<P>,
    proj: Linear<P>,
    dim: usize,
    heads: usize,
    fp8: Fp8Scaling,
}

impl<P: TrainPolicy> std::fmt::Debug for CausalSelfAttention<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CausalSelfAttention")
            .field("name", &self.name)
            .field("dim", &self.dim)
            .field("heads", &self.heads)
            .field("qkv", &self.qkv)
            .field("proj", &self.proj)
            .finish()
    }
}

impl<P: TrainPolicy> CausalSelfAttention<P> {
    /// `{name}.qkv` (`dim -> 3 dim`) and `{name}.proj` (`dim -> dim`). Errors unless
    /// `heads` divides `dim`.
    pub fn new(
        init: &mut Init<'_>,
        name: &str,
        dim: usize,
        heads: usize,
    ) -> mixprec_autograd::Result<Self> {
        super::check_sizes(
            "CausalSelfAttention",
            name,
            &[("dim", dim), ("heads", heads)],
        )?;
        if heads == 0 || !dim.is_multiple_of(heads) {
            return Err(mixprec_autograd::Error::invalid(
                "CausalSelfAttention",
                format!("{name}: {heads} heads do not divide width {dim}"),
            ));
        }
        Ok(CausalSelfAttention {
            name: name.to_string(),
            qkv: Linear::new(init, &format!("{name}.qkv"), dim, 3 * dim, true)?,
            proj: Linear::new(init, &format!("{name}.proj"), dim, dim, true)?,
            dim,
            heads,
            fp8: init.fp8_state(),
        })
    }

    /// `x` of shape `[batch, time, dim]`, any precision; position `t` attends to positions
    /// `<= t`. Projections and score/value GEMMs in `P::GemmFwd` with F32 accumulation,
    /// the softmax in F32, the result in `P::Activation`.
    pub fn forward<A: Dtype>(&self, step: &Step, x: &Var<A>) -> Result<Var<P::Activation>> {
        check_last_dim("CausalSelfAttention", &self.name, x.shape(), self.dim)?;
        let &[b, t, d] = x.shape() else {
            return Err(mixprec_autograd::Error::invalid(
                "CausalSelfAttention",
                format!(
                    "{}: expected [batch, time, {}], got {:?}",
                    self.name,
                    self.dim,
                    x.shape()
                ),
            ));
        };
        let (h, hd) = (self.heads, d / self.heads);
        let qkv = self.qkv.forward(step, x)?;
        // [b, t, d] slice -> [b, h, t, hd]
        let heads = |i: usize| -> Result<Var<P::Activation>> {
            qkv.narrow(-1, i * d, d)?
                .reshape(&[b, t, h, hd])?
                .permute(&[0, 2, 1, 3])
        };
        let (q, k, v) = (heads(0)?, heads(1)?, heads(2)?);
        let y = step.with_policy::<P, _>(&self.name, Some(&self.fp8), |ac| {
            let scores = ac
                .attention_matmul(&q, &k.transpose(-1, -2)?)?
                .try_cast::<P::Sensitive>()?
                .try_mul_scalar(1.0 / (hd as f64).sqrt())?;
            let probs = scores
                .masked_fill(&Mask::causal(t), f64::NEG_INFINITY)?
                .softmax(-1)?;
            ac.attention_matmul(&probs, &v)
        })?;
        let y = y.permute(&[0, 2, 1, 3])?.reshape(&[b, t, d])?;
        self.proj.forward(step, &y)
    }

    /// The FP8 scaling states: the projections' by their names, the attention GEMMs'
    /// under the layer's own name.
    pub fn fp8_states(&self) -> Vec<(String, mixprec_amp::Fp8Scaling)> {
        let mut out = self.qkv.fp8_states();
        out.extend(self.proj.fp8_states());
        out.push((self.name.clone(), self.fp8.clone()));
        out
    }
}
