//! [`TransformerBlock`]: the pre-norm block `x + attn(ln1(x))`, then `x + mlp(ln2(x))`.
//! The residual stream stays in F32 (PyTorch autocast's promote rule gives the same: F32
//! residual plus a BF16 branch adds in F32); the branches run under `P`.

use crate::init::Init;
use crate::layers::attention::CausalSelfAttention;
use crate::layers::dropout::Dropout;
use crate::layers::layer_norm::LayerNorm;
use crate::layers::mlp::Mlp;
use crate::policy::TrainPolicy;
use crate::step::Step;
use mixprec_autograd::{Result, Var};
use mixprec_dtype::F32;

/// One pre-norm transformer block with a 4x feed-forward.
pub struct TransformerBlock<P: TrainPolicy> {
    ln1: LayerNorm<P>,
    attn: CausalSelfAttention<P>,
    ln2: LayerNorm<P>,
    mlp: Mlp<P>,
    dropout: Dropout,
}

impl<P: TrainPolicy> std::fmt::Debug for TransformerBlock<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformerBlock")
            .field("ln1", &self.ln1)
            .field("attn", &self.attn)
            .field("ln2", &self.ln2)
            .field("mlp", &self.mlp)
            .field("dropout", &self.dropout)
            .finish()
    }
}

impl<P: TrainPolicy> TransformerBlock<P> {
    /// `{name}.ln1`, `{name}.attn`, `{name}.ln2`, `{name}.mlp`; dropout `p` on both
    /// branches.
    pub fn new(
        init: &mut Init<'_>,
        name: &str,
        dim: usize,
        heads: usize,
        dropout: f64,
    ) -> Result<Self> {
        Ok(TransformerBlock {
            ln1: LayerNorm::new(init, &format!("{name}.ln1"), dim)?,
            attn: CausalSelfAttention::new(init, &format!("{name}.attn"), dim, heads)?,
            ln2: LayerNorm::new(init, &format!("{name}.ln2"), dim)?,
            mlp: Mlp::new(init, &format!("{name}.mlp"), dim, 4 * dim, dim)?,
            dropout: Dropout::new(dropout)?,
        })
    }

    /// `x`: `[batch, time, dim]` residual stream in F32.
    pub fn forward(&self, step: &Step, x: &Var<F32>) -> Result<Var<F32>> {
        let a = self.attn.forward(step, &self.ln1.forward(step, x)?)?;
        let x = x.add(&self.dropout.forward(step, &a.try_cast::<F32>()?)?)?;
        let m = self.mlp.forward(step, &self.ln2.forward(step, &x)?)?;
        x.add(&self.dropout.forward(step, &m.try_cast::<F32>()?)?)
    }

    /// The FP8 scaling states of its layers, by layer name.
    pub fn fp8_states(&self) -> Vec<(String, mixprec_amp::Fp8Scaling)> {
        let mut out = self.attn.fp8_states();
        out.extend(self.mlp.fp8_states());
        out
    }
}
