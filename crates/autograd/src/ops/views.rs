//! View ops: the gradient takes the inverse view (reshape back, transpose back,
//! un-permute, pad a narrowed slice with zeros, sum a broadcast).

use super::{grad, sum_to, unary_record};
use crate::error::Result;
use crate::var::Var;
use mixprec_dtype::Dtype;

impl<D: Dtype> Var<D> {
    /// Reshape (same element count).
    pub fn reshape(&self, shape: &[usize]) -> Result<Var<D>> {
        let y = self.value.reshape(shape)?;
        let (id, back) = (self.id, self.shape().to_vec());
        Ok(self
            .tape
            .record(y, unary_record("reshape", self, vec![]), move |g| {
                Ok(vec![grad(id, g.reshape(&back)?)])
            }))
    }

    /// Swap two axes.
    pub fn transpose(&self, a: isize, b: isize) -> Result<Var<D>> {
        let y = self.value.transpose(a, b)?;
        let id = self.id;
        Ok(self
            .tape
            .record(y, unary_record("transpose", self, vec![]), move |g| {
                Ok(vec![grad(id, g.transpose(a, b)?)])
            }))
    }

    /// Reorder axes.
    pub fn permute(&self, order: &[usize]) -> Result<Var<D>> {
        let y = self.value.permute(order)?;
        let mut inverse = vec![0; order.len()];
        for (i, &a) in order.iter().enumerate() {
            inverse[a] = i;
        }
        let id = self.id;
        Ok(self
            .tape
            .record(y, unary_record("permute", self, vec![]), move |g| {
                Ok(vec![grad(id, g.permute(&inverse)?)])
            }))
    }

    /// Elements `start..start + len` along `axis`; the gradient is zero elsewhere (and is
    /// added into that range of the input's accumulated gradient, without padding, when
    /// the input already has one: the q, k, v slices of a fused projection).
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Result<Var<D>> {
        let y = self.value.narrow(axis, start, len)?;
        let (id, shape) = (self.id, self.shape().to_vec());
        Ok(self
            .tape
            .record(y, unary_record("narrow", self, vec![]), move |g| {
                let rank = shape.len() as isize;
                let a = (if axis < 0 { axis + rank } else { axis }) as usize;
                let g = crate::tape::NarrowGrad {
                    grad: g,
                    axis: a,
                    start,
                    full: shape[a],
                };
                Ok(vec![(id, Box::new(g) as crate::tape::AnyGrad)])
            }))
    }

    /// Broadcast to `shape`; the gradient is summed back.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Var<D>> {
        let y = self.value.broadcast_to(shape)?;
        let (id, back) = (self.id, self.shape().to_vec());
        Ok(self
            .tape
            .record(y, unary_record("broadcast_to", self, vec![]), move |g| {
                Ok(vec![grad(id, sum_to(g, &back)?)])
            }))
    }

    /// Insert a size-1 axis.
    pub fn unsqueeze(&self, axis: isize) -> Result<Var<D>> {
        let y = self.value.unsqueeze(axis)?;
        let (id, back) = (self.id, self.shape().to_vec());
        Ok(self
            .tape
            .record(y, unary_record("unsqueeze", self, vec![]), move |g| {
                Ok(vec![grad(id, g.reshape(&back)?)])
            }))
    }

    /// Remove a size-1 axis.
    pub fn squeeze(&self, axis: isize) -> Result<Var<D>> {
        let y = self.value.squeeze(axis)?;
        let (id, back) = (self.id, self.shape().to_vec());
        Ok(self
            .tape
            .record(y, unary_record("squeeze", self, vec![]), move |g| {
                Ok(vec![grad(id, g.reshape(&back)?)])
            }))
    }
}
