//! `softmax` and `log_softmax`: `dx = y (g - sum(g y))` ([`Tensor::softmax_backward`])
//! and `dx = g - e^y sum(g)` ([`Tensor::log_softmax_backward`]) along the axis, computed
//! in `D::Acc` row by row and rounded once.

use super::{grad, saved, unary_record};
use crate::error::Result;
use crate::var::Var;
use mixprec_dtype::Dtype;
use mixprec_dtype::FullPrecision;

/// The sensitive ops at full precision. These are bounded by [`FullPrecision`] (F32, F64)
/// so that a model cannot run them in 16 or 8 bits by accident — outside an `Autocast` too:
///
/// ```compile_fail,E0599
/// use mixprec_autograd::Tape;
/// use mixprec_dtype::Bf16;
/// use mixprec_tensor::Tensor;
/// let tape = Tape::new();
/// let x = tape.leaf(Tensor::<Bf16>::ones(&[2, 3]));
/// let _ = x.softmax(-1); // error: Bf16 is not FullPrecision
/// ```
///
/// The same op on a low-precision var needs its explicit name,
/// [`Var::softmax_low_precision`] (and the like), which the amp layer never calls.
impl<D: FullPrecision> Var<D> {
    /// Softmax along `axis` (computed in `D::Acc`, rounded once).
    pub fn softmax(&self, axis: isize) -> Result<Var<D>> {
        self.softmax_low_precision(axis)
    }

    /// Log-softmax along `axis` (computed in `D::Acc`, rounded once).
    pub fn log_softmax(&self, axis: isize) -> Result<Var<D>> {
        self.log_softmax_low_precision(axis)
    }
}

impl<D: Dtype> Var<D> {
    /// Softmax along `axis` in any precision: computed in f32 and rounded once into `D`,
    /// so for 16- and 8-bit `D` the probabilities and their gradient carry that type's
    /// rounding. For experiments; models use [`Var::softmax`] on F32.
    pub fn softmax_low_precision(&self, axis: isize) -> Result<Var<D>> {
        let y = self.value.softmax(axis)?;
        let yk = y.clone();
        let id = self.id;
        let rec = unary_record("softmax", self, vec![saved(&yk)]);
        Ok(self.tape.record(y, rec, move |g| {
            Ok(vec![grad(id, yk.softmax_backward(&g, axis)?)])
        }))
    }

    /// Log-softmax along `axis` in any precision (see [`Var::softmax_low_precision`]).
    pub fn log_softmax_low_precision(&self, axis: isize) -> Result<Var<D>> {
        let y = self.value.log_softmax(axis)?;
        let yk = y.clone();
        let id = self.id;
        let rec = unary_record("log_softmax", self, vec![saved(&yk)]);
        Ok(self.tape.record(y, rec, move |g| {
            Ok(vec![grad(id, yk.log_softmax_backward(&g, axis)?)])
        }))
    }
}
