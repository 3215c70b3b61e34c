//! [`Embedding`]: a lookup table. Rows are gathered from the F32 master (exact) and the
//! result rounded once into `P::Activation`; the gradient is scattered back in F32.

use crate::init::Init;
use crate::policy::TrainPolicy;
use crate::step::{ParamId, Step};
use mixprec_autograd::{Result, Var};
use mixprec_tensor::Indices;
use std::marker::PhantomData;

/// `vocab` embeddings of width `dim`.
pub struct Embedding<P: TrainPolicy> {
    name: String,
    table: ParamId,
    vocab: usize,
    dim: usize,
    _policy: PhantomData<P>,
}

impl<P: TrainPolicy> std::fmt::Debug for Embedding<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedding")
            .field("name", &self.name)
            .field("vocab", &self.vocab)
            .field("dim", &self.dim)
            .field("policy", &P::name())
            .finish()
    }
}

impl<P: TrainPolicy> Embedding<P> {
    /// Table `{name}.weight` of `[vocab, dim]` drawn from `N(0, std^2)` (PyTorch: std 1;
    /// GPT-2: 0.02).
    pub fn new(
        init: &mut Init<'_>,
        name: &str,
        vocab: usize,
        dim: usize,
        std: f64,
    ) -> Result<Self> {
        super::check_sizes("Embedding", name, &[("vocab", vocab), ("dim", dim)])?;
        let table = init.normal(&format!("{name}.weight"), &[vocab, dim], std)?;
        Ok(Embedding {
            name: name.to_string(),
            table,
            vocab,
            dim,
            _policy: PhantomData,
        })
    }

    /// Rows for `ids` (any shape): `[ids.., dim]`, the F32 master rows rounded once to
    /// `P::Activation` (gradients scatter back in F32). Errors on an id `>= vocab`.
    pub fn forward(&self, step: &Step, ids: &Indices) -> Result<Var<P::Activation>> {
        if let Some(&bad) = ids.as_slice().iter().find(|&&i| i >= self.vocab) {
            return Err(mixprec_autograd::Error::invalid(
                "Embedding",
                format!(
                    "{}: id {bad} out of range for vocab {}",
                    self.name, self.vocab
                ),
            ));
        }
        let table = step.param(self.table);
        step.tape().scope(&self.name, || {
            table.embedding(ids)?.try_cast::<P::Activation>()
        })
    }

    /// `(vocab, dim)`.
    pub fn size(&self) -> (usize, usize) {
        (self.vocab, self.dim)
    }
}
