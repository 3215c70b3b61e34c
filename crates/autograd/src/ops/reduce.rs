//! Reductions: the gradient is broadcast back over the reduced axes (scaled for means;
//! routed to the extreme elements for max/min, split evenly between ties).

use super::{grad, saved, unary_record};
use crate::error::Result;
use crate::var::Var;
use mixprec_dtype::Dtype;
use mixprec_tensor::{BinaryOp, Tensor};

/// Broadcasts a reduced gradient back to `shape`, re-inserting the reduced axes when
/// they were dropped (`keepdim == false`).
fn expand_back<D: Dtype>(
    g: Tensor<D>,
    shape: &[usize],
    axes: &[isize],
    keepdim: bool,
) -> Result<Tensor<D>> {
    let rank = shape.len() as isize;
    let mut g = g;
    if !keepdim {
        let mut norm: Vec<usize> = axes
            .iter()
            .map(|&a| (if a < 0 { a + rank } else { a }) as usize)
            .collect();
        norm.sort_unstable();
        for a in norm {
            g = g.unsqueeze(a as isize)?;
        }
    }
    Ok(g.broadcast_to(shape)?)
}

impl<D: Dtype> Var<D> {
    /// Sum over `axes`.
    pub fn sum(&self, axes: &[isize], keepdim: bool) -> Result<Var<D>> {
        let y = self.value.sum(axes, keepdim)?;
        let (id, shape, axes) = (self.id, self.shape().to_vec(), axes.to_vec());
        Ok(self
            .tape
            .record(y, unary_record("sum", self, vec![]), move |g| {
                Ok(vec![grad(id, expand_back(g, &shape, &axes, keepdim)?)])
            }))
    }

    /// Mean over `axes`.
    pub fn mean(&self, axes: &[isize], keepdim: bool) -> Result<Var<D>> {
        let y = self.value.mean(axes, keepdim)?;
        let count = self.value.numel() / y.numel().max(1);
        let (id, shape, axes) = (self.id, self.shape().to_vec(), axes.to_vec());
        Ok(self
            .tape
            .record(y, unary_record("mean", self, vec![]), move |g| {
                let g = g.binary_scalar(BinaryOp::Mul, 1.0 / count as f64)?;
                Ok(vec![grad(id, expand_back(g, &shape, &axes, keepdim)?)])
            }))
    }

    /// Sum of all elements (rank 0).
    pub fn sum_all(&self) -> Var<D> {
        let id = self.id;
        let shape = self.shape().to_vec();
        self.tape.record(
            self.value.sum_all(),
            unary_record("sum_all", self, vec![]),
            move |g| Ok(vec![grad(id, g.broadcast_to(&shape)?)]),
        )
    }

    /// Mean of all elements (rank 0). Errors on an empty tensor.
    pub fn mean_all(&self) -> Result<Var<D>> {
        let y = self.value.mean_all()?;
        let id = self.id;
        let shape = self.shape().to_vec();
        let n = self.value.numel() as f64;
        Ok(self
            .tape
            .record(y, unary_record("mean_all", self, vec![]), move |g| {
                let g = g.binary_scalar(BinaryOp::Mul, 1.0 / n)?;
                Ok(vec![grad(id, g.broadcast_to(&shape)?)])
            }))
    }

    /// Maximum over `axes`; the gradient goes to the maximal elements (split evenly
    /// between ties, like PyTorch's `amax`).
    pub fn max(&self, axes: &[isize], keepdim: bool) -> Result<Var<D>> {
        let y = self.value.max(axes, keepdim)?;
        self.extreme_rule("max", y, axes, keepdim)
    }

    /// Minimum over `axes`; the gradient goes to the minimal elements (split between ties).
    pub fn min(&self, axes: &[isize], keepdim: bool) -> Result<Var<D>> {
        let y = self.value.min(axes, keepdim)?;
        self.extreme_rule("min", y, axes, keepdim)
    }

    fn extreme_rule(
        &self,
        op: &'static str,
        y: Tensor<D>,
        axes: &[isize],
        keepdim: bool,
    ) -> Result<Var<D>> {
        let x = self.value.clone();
        let yk = y.clone();
        let (id, axes) = (self.id, axes.to_vec());
        let rec = unary_record(op, self, vec![saved(&x), saved(&yk)]);
        Ok(self.tape.record(y, rec, move |g| {
            let shape = x.shape().to_vec();
            let yb = expand_back(yk, &shape, &axes, keepdim)?;
            let hit = x.binary(BinaryOp::Equal, &yb)?;
            let ties = hit.sum(&axes, true)?;
            let g = if keepdim {
                g
            } else {
                expand_back(g, &shape, &axes, false)?.try_contiguous(op)?
            };
            let share = g.div(&ties)?.broadcast_to(&shape)?;
            Ok(vec![grad(id, hit.mul(&share)?)])
        }))
    }

    /// Variance over `axes` with `correction`; `dx = g * 2 (x - mean) / (n - correction)`.
    pub fn var(&self, axes: &[isize], keepdim: bool, correction: usize) -> Result<Var<D>> {
        let y = self.value.var(axes, keepdim, correction)?;
        let x = self.value.clone();
        let n = self.value.numel() / y.numel().max(1);
        let (id, axes) = (self.id, axes.to_vec());
        let rec = unary_record("var", self, vec![saved(&x)]);
        Ok(self.tape.record(y, rec, move |g| {
            let shape = x.shape().to_vec();
            let mean = x.mean(&axes, true)?;
            let centered = x.sub(&mean)?;
            let scale = 2.0 / (n - correction) as f64;
            let g = expand_back(g, &shape, &axes, keepdim)?;
            Ok(vec![grad(
                id,
                centered.binary(BinaryOp::ScaledMul(scale), &g)?,
            )])
        }))
    }
}
