//! [`Mlp`]: `Linear -> GELU -> Linear`, the transformer's feed-forward block (hidden width
//! usually 4x the model width). GEMMs in `P::GemmFwd`, GELU in `P::Activation`.

use crate::init::Init;
use crate::layers::linear::Linear;
use crate::policy::TrainPolicy;
use crate::step::Step;
use mixprec_autograd::{Result, Var};
use mixprec_dtype::Dtype;

/// Two linear layers with an exact GELU between them.
pub struct Mlp<P: TrainPolicy> {
    name: String,
    fc1: Linear<P>,
    fc2: Linear<P>,
}

impl<P: TrainPolicy> std::fmt::Debug for Mlp<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mlp")
            .field("name", &self.name)
            .field("fc1", &self.fc1)
            .field("fc2", &self.fc2)
            .finish()
    }
}

impl<P: TrainPolicy> Mlp<P> {
    /// `{name}.fc1` (`dim -> hidden`) and `{name}.fc2` (`hidden -> dim_out`), with biases.
    pub fn new(
        init: &mut Init<'_>,
        name: &str,
        dim: usize,
        hidden: usize,
        dim_out: usize,
    ) -> Result<Self> {
        Ok(Mlp {
            name: name.to_string(),
            fc1: Linear::new(init, &format!("{name}.fc1"), dim, hidden, true)?,
            fc2: Linear::new(init, &format!("{name}.fc2"), hidden, dim_out, true)?,
        })
    }

    /// `fc2(gelu(fc1(x)))`, result in `P::Activation` (GELU evaluated in f32 from the
    /// activation and rounded once).
    pub fn forward<A: Dtype>(&self, step: &Step, x: &Var<A>) -> Result<Var<P::Activation>> {
        let h = self.fc1.forward(step, x)?;
        let a = step.tape().scope(&self.name, || h.try_gelu())?;
        self.fc2.forward(step, &a)
    }

    /// The FP8 scaling states of both layers, by layer name.
    pub fn fp8_states(&self) -> Vec<(String, mixprec_amp::Fp8Scaling)> {
        let mut out = self.fc1.fp8_states();
        out.extend(self.fc2.fp8_states());
        out
    }
}
