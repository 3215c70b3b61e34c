//! `concat`/`stack` (the gradient is sliced back per input), `where_cond` and
//! `masked_fill` (the gradient follows the chosen elements), `dropout` (same mask) and
//! `gather` (scatter-add back).

use super::{grad, sum_to, unary_record};
use crate::error::{Error, Result};
use crate::var::{Record, Var};
use mixprec_dtype::Dtype;
use mixprec_tensor::{Indices, Mask, Rng, Tensor};

impl<D: Dtype> Var<D> {
    /// Joins vars along `axis`.
    pub fn concat(vars: &[&Var<D>], axis: isize) -> Result<Var<D>> {
        let first = vars.first().ok_or(Error::Tensor(mixprec_tensor::Error {
            op: "concat",
            kind: mixprec_tensor::ErrorKind::InvalidArgument("needs at least one tensor".into()),
        }))?;
        for v in &vars[1..] {
            first.same_tape("concat", v)?;
        }
        let values: Vec<&Tensor<D>> = vars.iter().map(|v| &v.value).collect();
        let y = Tensor::concat(&values, axis)?;
        let parts: Vec<(usize, usize)> = vars
            .iter()
            .map(|v| {
                (
                    v.id,
                    v.shape()[if axis < 0 {
                        (axis + v.value.rank() as isize) as usize
                    } else {
                        axis as usize
                    }],
                )
            })
            .collect();
        let rec = Record {
            op: "concat",
            inputs: vars.iter().map(|v| v.id).collect(),
            requires_grad: vars.iter().any(|v| v.requires_grad),
            saved: vec![],
            cast: None,
        };
        Ok(first.tape.record(y, rec, move |g| {
            let mut start = 0;
            let mut out = Vec::with_capacity(parts.len());
            for &(id, len) in &parts {
                out.push(grad(
                    id,
                    g.narrow(axis, start, len)?.try_contiguous("concat")?,
                ));
                start += len;
            }
            Ok(out)
        }))
    }

    /// Stacks equally shaped vars along a new `axis`.
    pub fn stack(vars: &[&Var<D>], axis: isize) -> Result<Var<D>> {
        let expanded: Vec<Var<D>> = vars
            .iter()
            .map(|v| v.unsqueeze(axis))
            .collect::<Result<_>>()?;
        let refs: Vec<&Var<D>> = expanded.iter().collect();
        Var::concat(&refs, axis)
    }

    /// `mask ? self : other` with broadcasting.
    pub fn where_cond(&self, mask: &Mask, other: &Var<D>) -> Result<Var<D>> {
        self.same_tape("where_cond", other)?;
        let y = self.value.where_cond(mask, &other.value)?;
        let (ia, ib, sa, sb, mask) = (
            self.id,
            other.id,
            self.shape().to_vec(),
            other.shape().to_vec(),
            mask.clone(),
        );
        let rec = Record {
            op: "where_cond",
            inputs: vec![self.id, other.id],
            requires_grad: self.requires_grad || other.requires_grad,
            saved: vec![],
            cast: None,
        };
        Ok(self.tape.record(y, rec, move |g| {
            let zeros = Tensor::<D>::zeros(&[1]);
            let ga = g.where_cond(&mask, &zeros)?;
            let gb = zeros.where_cond(&mask, &g)?;
            Ok(vec![grad(ia, sum_to(ga, &sa)?), grad(ib, sum_to(gb, &sb)?)])
        }))
    }

    /// `self` with `value` where `mask` is true; no gradient flows to filled elements.
    pub fn masked_fill(&self, mask: &Mask, value: f64) -> Result<Var<D>> {
        let y = self.value.masked_fill(mask, value)?;
        let (id, mask) = (self.id, mask.clone());
        Ok(self
            .tape
            .record(y, unary_record("masked_fill", self, vec![]), move |g| {
                Ok(vec![grad(id, g.masked_fill(&mask, 0.0)?)])
            }))
    }

    /// Inverted dropout with a mask from `rng`; backward applies the same mask and scale.
    pub fn dropout(&self, p: f64, rng: &mut Rng) -> Result<(Var<D>, Mask)> {
        let (y, keep) = self.value.dropout(p, rng)?;
        let (id, mask) = (self.id, keep.clone());
        Ok((
            self.tape
                .record(y, unary_record("dropout", self, vec![]), move |g| {
                    Ok(vec![grad(id, g.dropout_with_mask(&mask, p)?)])
                }),
            keep,
        ))
    }

    /// PyTorch's `gather` along `axis`; backward scatter-adds into the input's shape.
    pub fn gather(&self, axis: isize, index: &Indices) -> Result<Var<D>> {
        let y = self.value.gather(axis, index)?;
        let (id, shape, index) = (self.id, self.shape().to_vec(), index.clone());
        Ok(self
            .tape
            .record(y, unary_record("gather", self, vec![]), move |g| {
                Ok(vec![grad(id, g.gather_backward(&shape, axis, &index)?)])
            }))
    }
}
