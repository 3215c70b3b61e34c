//! [`Init`]: creates a model's parameters in a [`MasterWeights`] from an explicit seed,
//! with PyTorch's default initialisers, and hands each FP8-capable layer its scaling state.

use crate::step::ParamId;
use mixprec_amp::{Fp8Recipe, Fp8Scaling, MasterWeights};
use mixprec_autograd::Result;
use mixprec_dtype::F32;
use mixprec_tensor::{Rng, Tensor};

/// Parameter factory: every parameter is named, created in F32 and drawn from one seeded
/// generator in creation order, so a seed fixes the whole model.
pub struct Init<'a> {
    master: &'a mut MasterWeights,
    rng: Rng,
    fp8: Fp8Recipe,
}

impl std::fmt::Debug for Init<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Init")
            .field("parameters", &self.master.len())
            .field("fp8", &self.fp8)
            .finish_non_exhaustive()
    }
}

impl<'a> Init<'a> {
    /// Parameters go into `master`, drawn from `Rng::seed(seed)`; FP8 layers use
    /// Transformer Engine's default delayed scaling.
    pub fn new(master: &'a mut MasterWeights, seed: u64) -> Self {
        Init {
            master,
            rng: Rng::seed(seed),
            fp8: Fp8Recipe::default(),
        }
    }

    /// FP8 layers use `recipe`.
    pub fn with_fp8(mut self, recipe: Fp8Recipe) -> Self {
        self.fp8 = recipe;
        self
    }

    /// A fresh FP8 scaling state for one layer (used only under FP8 policies).
    pub fn fp8_state(&self) -> Fp8Scaling {
        Fp8Scaling::new(self.fp8)
    }

    /// Adds a named parameter.
    pub fn param(&mut self, name: &str, value: Tensor<F32>) -> ParamId {
        ParamId(self.master.add(name, value))
    }

    /// `U(-bound, bound)` of `shape`.
    pub fn uniform(&mut self, name: &str, shape: &[usize], bound: f64) -> Result<ParamId> {
        let t = Tensor::rand(shape, -bound, bound, &mut self.rng)?;
        Ok(self.param(name, t))
    }

    /// `N(0, std^2)` of `shape`.
    pub fn normal(&mut self, name: &str, shape: &[usize], std: f64) -> Result<ParamId> {
        let t = Tensor::randn(shape, 0.0, std, &mut self.rng)?;
        Ok(self.param(name, t))
    }

    /// A constant `value` of `shape` (layer-norm gains and biases).
    pub fn constant(&mut self, name: &str, shape: &[usize], value: f64) -> ParamId {
        self.param(name, Tensor::full(shape, value))
    }
}
