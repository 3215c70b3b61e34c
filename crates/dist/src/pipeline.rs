//! [`Pipeline`]: the all-reduce bucket by bucket, fed gradients in any order; each
//! bucket is exchanged as soon as all of its gradients are in, buckets in plan order.
//!
//! Collectives, the same sequence on every rank:
//! 1. at the start, one all-reduce (maximum) of `[h, !h]`, `h` a fingerprint of the
//!    settings and of every gradient's shape: ranks that disagree all get an error (the
//!    maximum yields the largest fingerprint and the complement of the smallest);
//! 2. per bucket, `[b, !b, non-finite]`, `b` a fingerprint of the bucket's number and
//!    which of its gradients exist: when any rank's bucket holds an inf or NaN every rank
//!    learns it here and no further collective of this all-reduce runs on any rank;
//! 3. for FP8 wires, an all-reduce (maximum) of the bucket's amaxes (one power-of-two
//!    scale per tensor, the same on every rank);
//! 4. the bucket's exchange ([`Exchange`]).
//!
//! Buckets, scales and sums do not depend on when a gradient arrives, so a pipeline fed
//! during backward gives the bits of one fed afterwards.

use crate::all_reduce::{AllReduceReport, GradAllReduce};
use crate::bucket::plan_buckets;
use crate::collective::Collective;
use crate::exchange::{Bucket, Exchange};
use crate::wire::WirePrecision;
use mixprec_autograd::{Error, Result};
use mixprec_dtype::F32;
use mixprec_tensor::Tensor;
use std::ops::Range;

/// The state of one all-reduce in progress.
pub(crate) struct Pipeline<'a> {
    op: GradAllReduce,
    comm: &'a dyn Collective,
    /// Buckets in the order they are exchanged.
    plan: Vec<Range<usize>>,
    /// Per position: `None` until it arrives, then the gradient or `None` (no gradient).
    slots: Vec<Option<Option<Tensor<F32>>>>,
    /// Per position: the mean over the ranks, once its bucket is exchanged.
    reduced: Vec<Option<Tensor<F32>>>,
    /// Index into `plan` of the next bucket to exchange.
    next: usize,
    exchange: Exchange,
    report: AllReduceReport,
}

/// What a finished pipeline gives: the means by position (`None` for positions without
/// a gradient), or `None` when some rank held an inf or NaN; and the report.
pub(crate) type Reduced = (Option<Vec<Option<Tensor<F32>>>>, AllReduceReport);

impl<'a> Pipeline<'a> {
    /// A pipeline over gradients of `shapes` (by position); agrees on them with the other
    /// ranks (collective 1).
    pub(crate) fn start(
        op: GradAllReduce,
        comm: &'a dyn Collective,
        shapes: &[Vec<usize>],
    ) -> Result<Pipeline<'a>> {
        let n = comm.size();
        let h = op.fingerprint(shapes);
        let mut agreement = [h, !h];
        comm.all_reduce_max(&mut agreement)?;
        if agreement[0] != h || !agreement[1] != h {
            return Err(Error::invalid(
                "GradAllReduce::all_reduce",
                "the ranks passed different gradients (number, shapes) or settings (wire precision, bucket size, exchange)",
            ));
        }
        let numels: Vec<usize> = shapes.iter().map(|s| s.iter().product()).collect();
        Ok(Pipeline {
            op,
            comm,
            plan: plan_buckets(&numels, op.bucket_bytes()),
            slots: vec![None; shapes.len()],
            reduced: vec![None; shapes.len()],
            next: 0,
            exchange: op.exchange().resolve(n, op.wire()),
            report: AllReduceReport {
                ranks: n,
                wire_bytes: (n - 1) * 8 * agreement.len(),
                ..AllReduceReport::default()
            },
        })
    }

    /// Hands over position `position`'s gradient (`None`: it has none), then exchanges
    /// every bucket now complete, in plan order. `during_backward` counts those buckets
    /// in [`AllReduceReport::during_backward`].
    pub(crate) fn offer(
        &mut self,
        position: usize,
        grad: Option<Tensor<F32>>,
        during_backward: bool,
    ) -> Result<()> {
        let Some(slot) = self.slots.get_mut(position) else {
            return Err(Error::invalid(
                "GradAllReduce::all_reduce",
                format!("gradient {position} of {}", self.reduced.len()),
            ));
        };
        if slot.is_some() {
            return Err(Error::invalid(
                "GradAllReduce::all_reduce",
                format!("gradient {position} handed over twice"),
            ));
        }
        *slot = Some(grad);
        while let Some(range) = self.plan.get(self.next).cloned() {
            if self.slots[range.clone()].iter().any(Option::is_none) {
                break;
            }
            self.next += 1;
            if !self.report.non_finite {
                self.exchange_bucket(range)?;
                self.report.during_backward += usize::from(during_backward);
            }
        }
        Ok(())
    }

    /// Hands over `missing(position)` for every position not handed over yet, then
    /// returns the result.
    pub(crate) fn finish(
        mut self,
        mut missing: impl FnMut(usize) -> Result<Option<Tensor<F32>>>,
    ) -> Result<Reduced> {
        for position in 0..self.slots.len() {
            if self.slots[position].is_none() {
                let g = missing(position)?;
                self.offer(position, g, false)?;
            }
        }
        if self.report.non_finite {
            return Ok((None, self.report));
        }
        Ok((Some(self.reduced), self.report))
    }

    /// Collectives 2-4 for the bucket over positions `range`.
    fn exchange_bucket(&mut self, range: Range<usize>) -> Result<()> {
        let n = self.comm.size();
        let present: Vec<Tensor<F32>> = self.slots[range.clone()]
            .iter()
            .flatten()
            .flatten()
            .cloned()
            .collect();
        let mut h = Fnv::new();
        h.eat(self.next as u64);
        for slot in &self.slots[range.clone()] {
            h.eat(u64::from(matches!(slot, Some(Some(_)))));
        }
        let h = h.0;
        let non_finite = present.iter().any(|g| !g.all_finite());
        let mut agreement = [h, !h, u64::from(non_finite)];
        self.comm.all_reduce_max(&mut agreement)?;
        self.report.wire_bytes += (n - 1) * 8 * agreement.len();
        if agreement[0] != h || !agreement[1] != h {
            return Err(Error::invalid(
                "GradAllReduce::all_reduce",
                format!(
                    "the ranks hold gradients for different parameters in bucket {}",
                    self.next - 1
                ),
            ));
        }
        if agreement[2] != 0 {
            self.report.non_finite = true;
            return Ok(());
        }
        let mut amaxes = local_amaxes(self.op.wire(), &present);
        if !amaxes.is_empty() {
            self.comm.all_reduce_max(&mut amaxes)?;
            self.report.wire_bytes += (n - 1) * 8 * amaxes.len();
        }
        let scales = scales(self.op.wire(), present.len(), &amaxes);
        let bucket = Bucket {
            grads: &present,
            scales: &scales,
            wire: self.op.wire(),
        };
        let local = bucket.encode()?;
        let (sums, sent) = match self.exchange {
            Exchange::ReduceScatter => bucket.reduce_scatter(self.comm, &local)?,
            _ => bucket.all_gather(self.comm, &local)?,
        };
        let mut sums = sums.into_iter();
        for position in range {
            if matches!(self.slots[position], Some(Some(_))) {
                self.reduced[position] = sums.next();
            }
        }
        self.report.buckets += 1;
        self.report.payload_bytes += local.len();
        self.report.wire_bytes += sent;
        Ok(())
    }
}

/// FNV-1a over `u64`s.
pub(crate) struct Fnv(pub(crate) u64);

impl Fnv {
    pub(crate) fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn eat(&mut self, x: u64) {
        for b in x.to_le_bytes() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Each tensor's largest finite magnitude as f32 bits (order-preserving for non-negative
/// values), for FP8 wires; empty otherwise.
pub(crate) fn local_amaxes(wire: WirePrecision, grads: &[Tensor<F32>]) -> Vec<u64> {
    if !wire.is_fp8() {
        return Vec::new();
    }
    grads
        .iter()
        .map(|g| {
            let a = g.abs_max();
            u64::from(if a.is_finite() { a } else { 0.0 }.to_bits())
        })
        .collect()
}

/// Each tensor's scale from its amax over all ranks (1 unless the wire is FP8).
pub(crate) fn scales(wire: WirePrecision, count: usize, amaxes: &[u64]) -> Vec<f32> {
    if amaxes.is_empty() {
        return vec![1.0; count];
    }
    amaxes
        .iter()
        .map(|&bits| wire.scale_for(f32::from_bits(bits as u32)))
        .collect()
}
