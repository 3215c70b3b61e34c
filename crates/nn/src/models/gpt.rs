//! [`Gpt`]: a small GPT-style decoder — token and position embeddings, pre-norm
//! transformer blocks, a final layer norm and a linear head — trained on the
//! [`SortTask`]. Embeddings and the head run under the edge policy `E`, the blocks under
//! the body policy `B`; the residual stream is F32.

use super::{Model, count_correct};
use crate::data::SortBatch;
use crate::init::Init;
use crate::layers::{Embedding, LayerNorm, Linear, TransformerBlock};
use crate::policy::TrainPolicy;
use crate::step::Step;
use mixprec_autograd::{Result, Var};
use mixprec_dtype::F32;
use mixprec_tensor::Indices;

/// Sizes of a [`Gpt`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GptConfig {
    /// Vocabulary.
    pub vocab: usize,
    /// Longest input.
    pub context: usize,
    /// Model width.
    pub dim: usize,
    /// Attention heads.
    pub heads: usize,
    /// Blocks.
    pub layers: usize,
    /// Dropout on the residual branches.
    pub dropout: f64,
}

impl Default for GptConfig {
    /// GPT-2 small's shape, nanoGPT's default: vocabulary 50257, context 1024, width
    /// 768, 12 heads, 12 blocks, no dropout (about 163 M parameters: the head is its own
    /// matrix here, not tied to the token embedding as in GPT-2's 124 M).
    fn default() -> Self {
        GptConfig {
            vocab: 50257,
            context: 1024,
            dim: 768,
            heads: 12,
            layers: 12,
            dropout: 0.0,
        }
    }
}

/// The decoder.
pub struct Gpt<B: TrainPolicy, E: TrainPolicy = B> {
    cfg: GptConfig,
    tok: Embedding<E>,
    pos: Embedding<E>,
    blocks: Vec<TransformerBlock<B>>,
    ln_f: LayerNorm<B>,
    head: Linear<E>,
}

impl<B: TrainPolicy, E: TrainPolicy> std::fmt::Debug for Gpt<B, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpt")
            .field("cfg", &self.cfg)
            .field("tok", &self.tok)
            .field("pos", &self.pos)
            .field("blocks", &self.blocks)
            .field("ln_f", &self.ln_f)
            .field("head", &self.head)
            .finish()
    }
}

impl<B: TrainPolicy, E: TrainPolicy> Gpt<B, E> {
    /// Embeddings `tok`, `pos` (std 0.02, GPT-2), blocks `block{i}`, `ln_f`, `head`.
    pub fn new(init: &mut Init<'_>, cfg: GptConfig) -> Result<Self> {
        let blocks = (0..cfg.layers)
            .map(|i| {
                TransformerBlock::new(init, &format!("block{i}"), cfg.dim, cfg.heads, cfg.dropout)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Gpt {
            cfg,
            tok: Embedding::new(init, "tok", cfg.vocab, cfg.dim, 0.02)?,
            pos: Embedding::new(init, "pos", cfg.context, cfg.dim, 0.02)?,
            blocks,
            ln_f: LayerNorm::new(init, "ln_f", cfg.dim)?,
            head: Linear::new(init, "head", cfg.dim, cfg.vocab, false)?,
        })
    }

    /// Logits `[batch, time, vocab]` for tokens `[batch, time]` (time <= context).
    pub fn logits(&self, step: &Step, tokens: &Indices) -> Result<Var<E::Activation>> {
        let &[_, t] = tokens.shape() else {
            return Err(mixprec_autograd::Error::invalid(
                "Gpt",
                format!("tokens must be [batch, time], got {:?}", tokens.shape()),
            ));
        };
        if t > self.cfg.context {
            return Err(mixprec_autograd::Error::invalid(
                "Gpt",
                format!("{t} tokens exceed the context of {}", self.cfg.context),
            ));
        }
        let positions = Indices::from_slice(&(0..t).collect::<Vec<_>>());
        let x = self.tok.forward(step, tokens)?.try_cast::<F32>()?;
        let mut x = x.add(&self.pos.forward(step, &positions)?.try_cast::<F32>()?)?;
        for b in &self.blocks {
            x = b.forward(step, &x)?;
        }
        self.head.forward(step, &self.ln_f.forward(step, &x)?)
    }

    /// Logits at the scored positions of a sort batch, `[batch * n, vocab]`, in F32.
    fn scored(&self, step: &Step, batch: &SortBatch) -> Result<Var<F32>> {
        let t = batch.inputs.shape()[1];
        let n = t / 2;
        let logits = self.logits(step, &batch.inputs)?;
        // Position p predicts token p + 1: the separator at n predicts the first sorted
        // digit, position 2n - 1 the last.
        logits
            .narrow(1, n, n)?
            .reshape(&[batch.rows * n, self.cfg.vocab])
            .and_then(|l| l.try_cast::<F32>())
    }
}

impl<B: TrainPolicy, E: TrainPolicy> Model for Gpt<B, E> {
    type Batch = SortBatch;
    type Policy = B;

    fn loss(&self, step: &Step, batch: &SortBatch) -> Result<Var<F32>> {
        let logits = self.scored(step, batch)?;
        step.tape()
            .scope("loss", || logits.cross_entropy(&batch.targets))
    }

    fn correct(&self, step: &Step, batch: &SortBatch) -> Result<(usize, usize)> {
        count_correct(&self.scored(step, batch)?, &batch.targets)
    }

    fn fp8_states(&self) -> Vec<(String, mixprec_amp::Fp8Scaling)> {
        let mut out: Vec<(String, mixprec_amp::Fp8Scaling)> = self
            .blocks
            .iter()
            .flat_map(TransformerBlock::fp8_states)
            .collect();
        out.extend(self.head.fp8_states());
        out
    }
}
