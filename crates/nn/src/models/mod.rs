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

/// A model the [`crate::Trainer`] can train: a loss for a batch, and accuracy counts.
pub trait Model {
    /// One (micro-)batch.
    type Batch;

    /// Mean loss over the batch, in F32.
    fn loss(&self, step: &Step, batch: &Self::Batch) -> Result<Var<F32>>;

    /// (correct, total) predictions on a batch, in evaluation mode.
    fn correct(&self, step: &Step, batch: &Self::Batch) -> Result<(usize, usize)>;

    /// Bytes of the model's FP8 scaling state.
    fn fp8_state_bytes(&self) -> usize;
}

/// Row-wise argmax of `[rows, classes]` logits compared with `labels`.
pub(crate) fn count_correct(logits: &Var<F32>, labels: &[usize]) -> Result<(usize, usize)> {
    let v = logits.value().to_f32_vec();
    let classes = *logits.shape().last().unwrap_or(&1);
    let correct = v
        .chunks(classes.max(1))
        .zip(labels)
        .filter(|(row, l)| {
            let arg = row
                .iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (i, &x)| if x > b.1 { (i, x) } else { b },
                )
                .0;
            arg == **l
        })
        .count();
    Ok((correct, labels.len()))
}
