//! Ready-made models for the policy comparison, each generic over a body policy `B` and
//! an edge policy `E` (the first and last layers: the embedding and the output
//! projection), so a per-layer override is a type: `Gpt<Fp8Hybrid, Fp32>`.

mod digits_mlp;
mod gpt;

pub use digits_mlp::DigitsMlp;
pub use gpt::{Gpt, GptConfig};

use crate::step::Step;
use mixprec_autograd::{Result, Var};
use mixprec_dtype::F32;
use mixprec_tensor::Indices;

/// A model the [`crate::Trainer`] can train: a loss for a batch, and accuracy counts.
pub trait Model {
    /// One (micro-)batch.
    type Batch;

    /// The policy whose loss scaling training needs (for models with body and edge
    /// policies, the body's): a [`crate::Trainer`] must hold its scaler type.
    type Policy: crate::TrainPolicy;

    /// Mean loss over the batch, in F32.
    fn loss(&self, step: &Step, batch: &Self::Batch) -> Result<Var<F32>>;

    /// (correct, total) predictions on a batch, in evaluation mode ([`count_correct`] for a
    /// classifier's logits).
    fn correct(&self, step: &Step, batch: &Self::Batch) -> Result<(usize, usize)>;

    /// The model's FP8 scaling states, each under a name unique in the model (its
    /// layer's): what memory accounting counts and checkpoints save. None by default (a
    /// model without FP8 layers).
    fn fp8_states(&self) -> Vec<(String, mixprec_amp::Fp8Scaling)> {
        Vec::new()
    }
}

/// `(correct, total)`: the argmax over the last axis of `logits` (one row per label)
/// against `labels` — the usual `Model::correct` of a classifier. Errors when the number
/// of rows and of labels differ.
pub fn count_correct(logits: &Var<F32>, labels: &Indices) -> Result<(usize, usize)> {
    let pred = logits.value().argmax(-1, false)?;
    if pred.len() != labels.len() {
        return Err(mixprec_autograd::Error::invalid(
            "count_correct",
            format!("{} rows of logits for {} labels", pred.len(), labels.len()),
        ));
    }
    let right = pred
        .as_slice()
        .iter()
        .zip(labels.as_slice())
        .filter(|(p, l)| p == l)
        .count();
    Ok((right, labels.len()))
}
