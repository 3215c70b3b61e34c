//! [`Dropout`]: inverted dropout in training mode (kept values scaled by `1/(1-p)`), the
//! identity in evaluation mode; masks drawn from the step's seeded generator.

use crate::step::Step;
use mixprec_autograd::{Result, Var};
use mixprec_dtype::Dtype;
use mixprec_tensor::Rng;

/// Dropout with probability `p`.
#[derive(Clone, Copy, Debug)]
pub struct Dropout {
    p: f64,
}

impl Dropout {
    /// Errors unless `0 <= p < 1`.
    pub fn new(p: f64) -> Result<Dropout> {
        if !(0.0..1.0).contains(&p) {
            return Err(mixprec_autograd::Error::invalid(
                "Dropout",
                format!("probability must be in [0, 1), got {p}"),
            ));
        }
        Ok(Dropout { p })
    }

    /// Applies dropout when `step` is training and `p > 0`.
    pub fn forward<D: Dtype>(&self, step: &Step, x: &Var<D>) -> Result<Var<D>> {
        if !step.training() || self.p == 0.0 {
            return Ok(x.clone());
        }
        let mut rng = Rng::seed(step.dropout_seed());
        Ok(x.dropout(self.p, &mut rng)?.0)
    }
}
