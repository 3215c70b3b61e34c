//! [`MasterWeights`]: named F32 parameters that optimizers update; each step's
//! low-precision compute copies come from [`crate::Autocast`]'s per-step cache.

use crate::scaler::UnscaledGrads;
use mixprec_autograd::{Result, Tape, Var};
use mixprec_dtype::F32;
use mixprec_tensor::Tensor;

/// The F32 master copy of a model's parameters, in a fixed order.
#[derive(Clone, Debug, Default)]
pub struct MasterWeights {
    params: Vec<(String, Tensor<F32>)>,
}

impl MasterWeights {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named parameter; returns its index.
    pub fn add(&mut self, name: impl Into<String>, value: Tensor<F32>) -> usize {
        self.params.push((name.into(), value));
        self.params.len() - 1
    }

    /// The parameters as leaves of `tape`, in order (one per step).
    pub fn leaves(&self, tape: &Tape) -> Vec<Var<F32>> {
        self.params
            .iter()
            .map(|(_, t)| tape.leaf(t.clone()))
            .collect()
    }

    /// Parameter `i`.
    pub fn get(&self, i: usize) -> Option<&Tensor<F32>> {
        self.params.get(i).map(|(_, t)| t)
    }

    /// Names and values, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor<F32>)> {
        self.params.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// Number of parameters (tensors).
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Total scalar parameters.
    pub fn count(&self) -> usize {
        self.params.iter().map(|(_, t)| t.numel()).sum()
    }

    /// Bytes of the master copy (4 per parameter).
    pub fn bytes(&self) -> usize {
        self.params.iter().map(|(_, t)| t.nbytes()).sum()
    }

    /// Applies `update(i, param, grad) -> new param` to every parameter that has a
    /// gradient, atomically: all new values are computed first and written only if every
    /// update succeeded, so a failed step changes nothing.
    pub fn apply(
        &mut self,
        grads: &UnscaledGrads,
        mut update: impl FnMut(usize, &Tensor<F32>, &Tensor<F32>) -> Result<Tensor<F32>>,
    ) -> Result<()> {
        let mut new = Vec::with_capacity(self.params.len());
        for (i, (_, p)) in self.params.iter().enumerate() {
            if let Some(g) = grads.get(i) {
                new.push((i, update(i, p, g)?));
            }
        }
        for (i, t) in new {
            self.params[i].1 = t;
        }
        Ok(())
    }
}
