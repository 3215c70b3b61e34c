//! [`DigitsMlp`]: a classifier for the 8x8 digits, `64 -> hidden -> hidden -> 10` with
//! GELU. The input and output layers run under the edge policy `E`, the hidden layer
//! under the body policy `B`.

use super::{Model, count_correct};
use crate::init::Init;
use crate::layers::Linear;
use crate::policy::TrainPolicy;
use crate::step::Step;
use mixprec_autograd::{Result, Var};
use mixprec_dtype::F32;
use mixprec_tensor::{Indices, Tensor};

/// The digits MLP.
pub struct DigitsMlp<B: TrainPolicy, E: TrainPolicy = B> {
    fc_in: Linear<E>,
    fc_hidden: Linear<B>,
    fc_out: Linear<E>,
}

impl<B: TrainPolicy, E: TrainPolicy> std::fmt::Debug for DigitsMlp<B, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigitsMlp")
            .field("fc_in", &self.fc_in)
            .field("fc_hidden", &self.fc_hidden)
            .field("fc_out", &self.fc_out)
            .finish()
    }
}

impl<B: TrainPolicy, E: TrainPolicy> DigitsMlp<B, E> {
    /// Layers `fc_in`, `fc_hidden`, `fc_out`.
    pub fn new(init: &mut Init<'_>, hidden: usize) -> Result<Self> {
        Ok(DigitsMlp {
            fc_in: Linear::new(init, "fc_in", 64, hidden, true)?,
            fc_hidden: Linear::new(init, "fc_hidden", hidden, hidden, true)?,
            fc_out: Linear::new(init, "fc_out", hidden, 10, true)?,
        })
    }

    /// Logits `[batch, 10]` (F32) for images `[batch, 64]`.
    pub fn logits(&self, step: &Step, images: &Tensor<F32>) -> Result<Var<F32>> {
        let x = step.input(images.clone());
        let h = self.fc_in.forward(step, &x)?.try_gelu()?;
        let h = self.fc_hidden.forward(step, &h)?.try_gelu()?;
        self.fc_out.forward(step, &h)?.try_cast::<F32>()
    }
}

impl<B: TrainPolicy, E: TrainPolicy> Model for DigitsMlp<B, E> {
    type Batch = (Tensor<F32>, Indices);
    type Policy = B;

    fn loss(&self, step: &Step, (x, y): &Self::Batch) -> Result<Var<F32>> {
        let logits = self.logits(step, x)?;
        step.tape().scope("loss", || logits.cross_entropy(y))
    }

    fn correct(&self, step: &Step, (x, y): &Self::Batch) -> Result<(usize, usize)> {
        count_correct(&self.logits(step, x)?, y)
    }

    fn fp8_states(&self) -> Vec<(String, mixprec_amp::Fp8Scaling)> {
        let mut out = self.fc_in.fp8_states();
        out.extend(self.fc_hidden.fp8_states());
        out.extend(self.fc_out.fp8_states());
        out
    }
}
