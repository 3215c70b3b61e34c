//! Binary element-wise ops with broadcasting: gradients are summed back to each input's
//! shape.

use super::{grad, saved, sum_to};
use crate::error::Result;
use crate::var::{Record, Var};
use mixprec_dtype::Dtype;
use mixprec_tensor::{BinaryOp, Tensor, UnaryOp};

fn record<D: Dtype>(op: &'static str, a: &Var<D>, b: &Var<D>, keep: &[&Tensor<D>]) -> Record {
    Record {
        op,
        inputs: vec![a.id, b.id],
        requires_grad: a.requires_grad || b.requires_grad,
        saved: keep.iter().map(|t| saved(*t)).collect(),
        cast: None,
    }
}

impl<D: Dtype> Var<D> {
    /// `a + b` with broadcasting.
    pub fn add(&self, other: &Var<D>) -> Result<Var<D>> {
        self.same_tape("add", other)?;
        let y = self.value.add(&other.value)?;
        let (ia, ib, sa, sb) = (
            self.id,
            other.id,
            self.shape().to_vec(),
            other.shape().to_vec(),
        );
        Ok(self
            .tape
            .record(y, record("add", self, other, &[]), move |g| {
                Ok(vec![
                    grad(ia, sum_to(g.clone(), &sa)?),
                    grad(ib, sum_to(g, &sb)?),
                ])
            }))
    }

    /// `a - b` with broadcasting.
    pub fn sub(&self, other: &Var<D>) -> Result<Var<D>> {
        self.same_tape("sub", other)?;
        let y = self.value.sub(&other.value)?;
        let (ia, ib, sa, sb) = (
            self.id,
            other.id,
            self.shape().to_vec(),
            other.shape().to_vec(),
        );
        Ok(self
            .tape
            .record(y, record("sub", self, other, &[]), move |g| {
                Ok(vec![
                    grad(ia, sum_to(g.clone(), &sa)?),
                    grad(ib, sum_to(g.unary(UnaryOp::Neg)?, &sb)?),
                ])
            }))
    }

    /// `a * b` with broadcasting; `da = g b`, `db = g a`.
    pub fn mul(&self, other: &Var<D>) -> Result<Var<D>> {
        self.same_tape("mul", other)?;
        let y = self.value.mul(&other.value)?;
        let (a, b) = (self.value.clone(), other.value.clone());
        let (ia, ib) = (self.id, other.id);
        let rec = record("mul", self, other, &[&a, &b]);
        Ok(self.tape.record(y, rec, move |g| {
            let ga = sum_to(g.mul(&b)?, a.shape())?;
            let gb = sum_to(g.mul(&a)?, b.shape())?;
            Ok(vec![grad(ia, ga), grad(ib, gb)])
        }))
    }

    /// `a / b` with broadcasting; `da = g / b`, `db = -g a / b^2`.
    pub fn div(&self, other: &Var<D>) -> Result<Var<D>> {
        self.same_tape("div", other)?;
        let y = self.value.div(&other.value)?;
        let (b, yk) = (other.value.clone(), y.clone());
        let (ia, ib, sa) = (self.id, other.id, self.shape().to_vec());
        let rec = record("div", self, other, &[&b, &yk]);
        Ok(self.tape.record(y, rec, move |g| {
            let ga = g.div(&b)?;
            // -g a / b^2 = -(g / b) * y
            let gb = sum_to(ga.binary(BinaryOp::DivRhsBackward, &yk)?, b.shape())?;
            Ok(vec![grad(ia, sum_to(ga, &sa)?), grad(ib, gb)])
        }))
    }

    /// `max(a, b)`; where they tie, each gets half the gradient (as PyTorch).
    pub fn maximum(&self, other: &Var<D>) -> Result<Var<D>> {
        self.extreme("maximum", other, true)
    }

    /// `min(a, b)`; where they tie, each gets half the gradient.
    pub fn minimum(&self, other: &Var<D>) -> Result<Var<D>> {
        self.extreme("minimum", other, false)
    }

    fn extreme(&self, op: &'static str, other: &Var<D>, max: bool) -> Result<Var<D>> {
        self.same_tape(op, other)?;
        let y = if max {
            self.value.maximum(&other.value)?
        } else {
            self.value.minimum(&other.value)?
        };
        let (a, b) = (self.value.clone(), other.value.clone());
        let (ia, ib) = (self.id, other.id);
        let rec = record(op, self, other, &[&a, &b]);
        Ok(self.tape.record(y, rec, move |g| {
            // Share of the gradient that goes to `a`: 1 where a wins, 1/2 on ties.
            let rule = if max {
                BinaryOp::MaximumShare
            } else {
                BinaryOp::MinimumShare
            };
            let share = a.binary(rule, &b)?;
            let ga = g.mul(&share)?;
            let gb = g.sub(&ga)?;
            Ok(vec![
                grad(ia, sum_to(ga, a.shape())?),
                grad(ib, sum_to(gb, b.shape())?),
            ])
        }))
    }

    /// `x + s`. Panics (with the op's message) only when memory cannot be had; see
    /// [`Var::try_add_scalar`].
    pub fn add_scalar(&self, s: f64) -> Var<D> {
        self.try_add_scalar(s).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `x + s`, or an error when memory cannot be had.
    pub fn try_add_scalar(&self, s: f64) -> Result<Var<D>> {
        let id = self.id;
        Ok(self.tape.record(
            self.value.binary_scalar(BinaryOp::Add, s)?,
            super::unary_record("add_scalar", self, vec![]),
            move |g| Ok(vec![grad(id, g)]),
        ))
    }

    /// `x - s` (as `x + (-s)`: the same single rounding). Panics (with the op's
    /// message) only when memory cannot be had; see [`Var::try_add_scalar`].
    pub fn sub_scalar(&self, s: f64) -> Var<D> {
        self.add_scalar(-s)
    }

    /// `x / s`. Panics (with the op's message) only when memory cannot be had; see
    /// [`Var::try_div_scalar`].
    pub fn div_scalar(&self, s: f64) -> Var<D> {
        self.try_div_scalar(s).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `x / s` (the scalar rounded to the compute precision, one rounding; `dx = g / s`),
    /// or an error when memory cannot be had.
    pub fn try_div_scalar(&self, s: f64) -> Result<Var<D>> {
        let id = self.id;
        Ok(self.tape.record(
            self.value.binary_scalar(BinaryOp::Div, s)?,
            super::unary_record("div_scalar", self, vec![]),
            move |g| Ok(vec![grad(id, g.binary_scalar(BinaryOp::Div, s)?)]),
        ))
    }

    /// `x * s`. Panics (with the op's message) only when memory cannot be had; see
    /// [`Var::try_mul_scalar`].
    pub fn mul_scalar(&self, s: f64) -> Var<D> {
        self.try_mul_scalar(s).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `x * s`, or an error when memory cannot be had.
    pub fn try_mul_scalar(&self, s: f64) -> Result<Var<D>> {
        let id = self.id;
        Ok(self.tape.record(
            self.value.binary_scalar(BinaryOp::Mul, s)?,
            super::unary_record("mul_scalar", self, vec![]),
            move |g| Ok(vec![grad(id, g.binary_scalar(BinaryOp::Mul, s)?)]),
        ))
    }
}
