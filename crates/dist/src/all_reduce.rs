//! [`GradAllReduce`]: the mean of every rank's gradients, in buckets, in a chosen wire
//! precision, bit-reproducible.
//!
//! The work is bucket by bucket ([`crate::pipeline`] lists the collectives): buckets of
//! gradients agree on their non-finite flags (when any rank holds an inf or NaN every
//! rank learns it, nothing more is sent and the step is skipped everywhere, as PyTorch
//! DDP + GradScaler do) and, for FP8 wires, on every tensor's amax (one power-of-two
//! scale per tensor, the same on every rank); then the bucket is exchanged
//! ([`Exchange`]): an all-gather of the encoded gradients, after which each rank sums
//! all of them, or (for more ranks) an all-to-all of slices, each rank summing its slice,
//! then an all-gather of the F32 sums. Either way every element is the ranks' values
//! summed in rank order in F32 (`((g0 + g1) + g2) + ...`) times the f32 `1 / ranks` (the
//! gradient accumulator's mean: N ranks of one micro-batch equal one process of N
//! micro-batches). Every rank computes the same sums in the same order: the result is
//! identical on every rank and from run to run, whatever MPI's own reduction algorithms
//! would do. [`GradAllReduce::all_reduce`] hands every gradient over at once;
//! [`GradAllReduce::overlapped`] hands them over as backward makes them final: the
//! same bits.
//!
//! [`simulate`] runs the same steps in one process for gradients of several ranks: a
//! two-rank run equals it bit for bit (the MPI test checks this).

use crate::bucket::{DEFAULT_BUCKET_BYTES, plan_buckets};
use crate::collective::Collective;
use crate::exchange::{Bucket, Exchange};
use crate::pipeline::{Fnv, Pipeline, local_amaxes, scales};
use crate::wire::WirePrecision;
use mixprec_autograd::{Error, Result};
use mixprec_dtype::F32;
use mixprec_tensor::Tensor;

/// Settings of the gradient all-reduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GradAllReduce {
    wire: WirePrecision,
    bucket_bytes: usize,
    exchange: Exchange,
}

/// What one all-reduce did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AllReduceReport {
    /// Some rank's gradients held an inf or NaN: nothing was exchanged and the gradients
    /// are unchanged (skip the step on every rank).
    pub non_finite: bool,
    /// Ranks in the group.
    pub ranks: usize,
    /// Buckets exchanged.
    pub buckets: usize,
    /// Buckets exchanged while backward was still running
    /// ([`GradAllReduce::overlapped`]; 0 for [`GradAllReduce::all_reduce`]).
    pub during_backward: usize,
    /// Time the exchange added to the step: all of [`GradAllReduce::all_reduce`]; for
    /// [`GradAllReduce::overlapped`], from backward's return to the exchange's end.
    pub exposed: std::time::Duration,
    /// This rank's encoded gradients: the bytes it contributes per step.
    pub payload_bytes: usize,
    /// Bytes this rank sends per step: `(ranks - 1) x payload` for the all-gather form,
    /// `(ranks - 1) / ranks x (payload + 4 B x elements)` (slices padded to equal length)
    /// for the reduce-scatter form, plus the small agreement messages (fingerprint,
    /// flags, FP8 amaxes) counted as an all-gather of them would send.
    pub wire_bytes: usize,
}

impl Default for GradAllReduce {
    /// F32 on the wire, 25 MiB buckets (PyTorch DDP's defaults).
    fn default() -> Self {
        GradAllReduce {
            wire: WirePrecision::F32,
            bucket_bytes: DEFAULT_BUCKET_BYTES,
            exchange: Exchange::Auto,
        }
    }
}

impl GradAllReduce {
    /// Gradients travel as `wire`, in 25 MiB buckets.
    pub fn new(wire: WirePrecision) -> GradAllReduce {
        GradAllReduce {
            wire,
            ..GradAllReduce::default()
        }
    }

    /// Buckets of at most `bytes` bytes of F32 gradients (a larger tensor travels alone).
    /// Errors for 0.
    pub fn with_bucket_bytes(mut self, bytes: usize) -> Result<GradAllReduce> {
        if bytes == 0 {
            return Err(Error::invalid(
                "GradAllReduce::with_bucket_bytes",
                "the bucket size must be at least 1 byte, got 0",
            ));
        }
        self.bucket_bytes = bytes;
        Ok(self)
    }

    /// How buckets travel ([`Exchange::Auto`] by default: the form with fewer bytes).
    /// Both forms give the same bits.
    pub fn with_exchange(mut self, exchange: Exchange) -> GradAllReduce {
        self.exchange = exchange;
        self
    }

    /// The exchange setting.
    pub fn exchange(&self) -> Exchange {
        self.exchange
    }

    /// The wire precision.
    pub fn wire(&self) -> WirePrecision {
        self.wire
    }

    /// The bucket size in bytes.
    pub fn bucket_bytes(&self) -> usize {
        self.bucket_bytes
    }

    /// Replaces `grads` with the mean over the ranks of `comm` of each rank's `grads`
    /// (same shapes and order on every rank). Collective: every rank must call it. On
    /// an error (ranks disagree on shapes or settings, or the transport fails) the
    /// gradients are unchanged; with a non-finite value on any rank they are unchanged
    /// and the report says so.
    pub fn all_reduce(
        &self,
        comm: &dyn Collective,
        grads: &mut [Tensor<F32>],
    ) -> Result<AllReduceReport> {
        let start = std::time::Instant::now();
        let shapes: Vec<Vec<usize>> = grads.iter().map(|g| g.shape().to_vec()).collect();
        let mut pipeline = Pipeline::start(*self, comm, &shapes)?;
        for (position, g) in grads.iter().enumerate() {
            pipeline.offer(position, Some(g.clone()), false)?;
        }
        let (reduced, mut report) = pipeline.finish(|_| Ok(None))?;
        report.exposed = start.elapsed();
        // Everything computed: now replace (all or nothing).
        if let Some(reduced) = reduced {
            for (g, r) in grads.iter_mut().zip(reduced) {
                *g = r.expect("every position had a gradient");
            }
        }
        Ok(report)
    }

    /// FNV-1a over the settings and the shapes.
    pub(crate) fn fingerprint(&self, shapes: &[Vec<usize>]) -> u64 {
        let mut h = Fnv::new();
        h.eat(self.wire.bytes_per_element() as u64 + 16 * u64::from(self.wire.is_fp8()));
        h.eat(self.wire as u64);
        h.eat(self.bucket_bytes as u64);
        h.eat(self.exchange as u64);
        h.eat(shapes.len() as u64);
        for s in shapes {
            h.eat(s.len() as u64);
            s.iter().for_each(|&d| h.eat(d as u64));
        }
        h.0
    }
}

fn bucket_of<'a>(grads: &'a [Tensor<F32>], scales: &'a [f32], wire: WirePrecision) -> Bucket<'a> {
    Bucket {
        grads,
        scales,
        wire,
    }
}

fn numels(grads: &[Tensor<F32>]) -> Vec<usize> {
    grads.iter().map(Tensor::numel).collect()
}

/// What `op.all_reduce` computes on every rank when rank `r` holds `per_rank[r]`, done in
/// one process with the same steps (agreed scales, encoding, sums in rank order): the
/// reference a multi-process run must equal bit for bit. Returns the reduced gradients,
/// or `None` when some rank's gradients hold an inf or NaN.
pub fn simulate(
    op: &GradAllReduce,
    per_rank: &[Vec<Tensor<F32>>],
) -> Result<Option<Vec<Tensor<F32>>>> {
    let Some(first) = per_rank.first() else {
        return Err(Error::invalid("simulate", "no ranks"));
    };
    let shapes = |g: &[Tensor<F32>]| g.iter().map(|t| t.shape().to_vec()).collect::<Vec<_>>();
    let fp = op.fingerprint(&shapes(first));
    if per_rank.iter().any(|g| op.fingerprint(&shapes(g)) != fp) {
        return Err(Error::invalid(
            "simulate",
            "the ranks hold different gradients (number, shapes)",
        ));
    }
    if per_rank.iter().flatten().any(|g| !g.all_finite()) {
        return Ok(None);
    }
    let mut amaxes = local_amaxes(op.wire, first);
    for g in &per_rank[1..] {
        for (a, b) in amaxes.iter_mut().zip(local_amaxes(op.wire, g)) {
            *a = (*a).max(b);
        }
    }
    let scales = scales(op.wire, first.len(), &amaxes);
    let mut out = Vec::with_capacity(first.len());
    let mut order = plan_buckets(&numels(first), op.bucket_bytes);
    order.sort_by_key(|r| r.start);
    for range in order {
        let scales = &scales[range.clone()];
        let encoded = per_rank
            .iter()
            .map(|g| bucket_of(&g[range.clone()], scales, op.wire).encode())
            .collect::<Result<Vec<_>>>()?;
        let parts: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
        out.extend(bucket_of(&first[range], scales, op.wire).mean_of_parts(&parts)?);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collective::SingleProcess;

    fn grads(seed: u64) -> Vec<Tensor<F32>> {
        let mut rng = mixprec_tensor::Rng::seed(seed);
        [vec![3, 4], vec![5], vec![2, 2, 2]]
            .iter()
            .map(|s| Tensor::<F32>::randn(s, 0.0, 1e-3, &mut rng).unwrap())
            .collect()
    }

    fn bits(t: &[Tensor<F32>]) -> Vec<u32> {
        t.iter()
            .flat_map(|g| g.to_f32_vec())
            .map(f32::to_bits)
            .collect()
    }

    #[test]
    fn one_rank_of_f32_is_the_identity_and_lower_precisions_round_once() {
        for wire in WirePrecision::ALL {
            let op = GradAllReduce::new(wire).with_bucket_bytes(40).unwrap();
            let before = grads(1);
            let mut g = before.clone();
            let r = op.all_reduce(&SingleProcess, &mut g).unwrap();
            assert!(!r.non_finite);
            assert_eq!((r.ranks, r.wire_bytes), (1, 0));
            assert_eq!(r.payload_bytes, 25 * wire.bytes_per_element());
            assert_eq!(r.buckets, 3, "40-byte buckets: one tensor each");
            let expected = simulate(&op, std::slice::from_ref(&before))
                .unwrap()
                .unwrap();
            assert_eq!(bits(&g), bits(&expected));
            if wire == WirePrecision::F32 {
                assert_eq!(bits(&g), bits(&before));
            }
            // One rounding of the wire format per element (relative: BF16 2^-8, E5M2
            // 2^-3, E4M3 2^-4 — the formats' half-ulps; values are far above their
            // subnormal ranges after scaling).
            let tol = match wire {
                WirePrecision::F32 => 0.0,
                WirePrecision::Bf16 => 2f32.powi(-8),
                WirePrecision::E5M2 => 2f32.powi(-3),
                WirePrecision::E4M3 => 2f32.powi(-4),
            };
            for (a, b) in g.iter().zip(&before) {
                for (x, y) in a.to_f32_vec().iter().zip(b.to_f32_vec()) {
                    assert!((x - y).abs() <= tol * y.abs(), "{wire}: {x} vs {y}");
                }
            }
        }
    }

    #[test]
    fn one_rank_gives_the_same_bits_in_either_exchange() {
        for wire in WirePrecision::ALL {
            let before = grads(4);
            let mut results = Vec::new();
            for exchange in [Exchange::AllGather, Exchange::ReduceScatter] {
                let op = GradAllReduce::new(wire).with_exchange(exchange);
                let mut g = before.clone();
                op.all_reduce(&SingleProcess, &mut g).unwrap();
                results.push(bits(&g));
            }
            assert_eq!(results[0], results[1], "{wire}");
        }
    }

    #[test]
    fn the_simulated_mean_sums_in_rank_order_in_f32() {
        let op = GradAllReduce::new(WirePrecision::F32);
        let ranks = [grads(1), grads(2), grads(3)];
        let got = simulate(&op, &ranks).unwrap().unwrap();
        for (i, t) in got.iter().enumerate() {
            let (a, b, c) = (
                ranks[0][i].to_f32_vec(),
                ranks[1][i].to_f32_vec(),
                ranks[2][i].to_f32_vec(),
            );
            for (j, x) in t.to_f32_vec().iter().enumerate() {
                assert_eq!(
                    x.to_bits(),
                    (((a[j] + b[j]) + c[j]) * (1.0 / 3.0)).to_bits()
                );
            }
        }
    }

    #[test]
    fn fp8_ranks_share_one_scale_per_tensor() {
        // Rank 1's tensor is 1000x larger: rank 0's values are encoded with the scale of
        // rank 1's amax, so its small values lose precision but nothing overflows.
        let op = GradAllReduce::new(WirePrecision::E4M3);
        let small = vec![Tensor::<F32>::from_f32(&[1e-3, -2e-3], &[2]).unwrap()];
        let large = vec![Tensor::<F32>::from_f32(&[1.0, 2.0], &[2]).unwrap()];
        let got = simulate(&op, &[small, large]).unwrap().unwrap()[0].to_f32_vec();
        // scale: 2^7 (2 * 128 = 256 <= 448 < 512); 1e-3 * 128 = 0.128 -> E4M3 0.125;
        // mean (0.125/128 + 1) / 2.
        assert_eq!(got[0], (0.125 / 128.0 + 1.0) / 2.0);
        assert_eq!(got[1], (-0.25 / 128.0 + 2.0) / 2.0);
    }

    #[test]
    fn a_non_finite_value_on_any_rank_changes_nothing() {
        let op = GradAllReduce::new(WirePrecision::Bf16);
        let mut bad = grads(2);
        bad[1] = Tensor::<F32>::from_f32(&[0.0, f32::NAN, 1.0, 2.0, 3.0], &[5]).unwrap();
        assert!(simulate(&op, &[grads(1), bad.clone()]).unwrap().is_none());
        let before = bits(&bad);
        let r = op.all_reduce(&SingleProcess, &mut bad).unwrap();
        assert!(r.non_finite);
        assert_eq!(r.buckets, 0);
        assert_eq!(bits(&bad), before);
    }

    #[test]
    fn mismatched_ranks_and_bad_settings_are_errors() {
        let op = GradAllReduce::new(WirePrecision::F32);
        let mut other = grads(1);
        other.pop();
        let e = simulate(&op, &[grads(1), other]).unwrap_err();
        assert!(e.to_string().starts_with("simulate"), "{e}");
        let e = GradAllReduce::default().with_bucket_bytes(0).unwrap_err();
        assert!(e.to_string().contains("at least 1 byte"), "{e}");
        assert!(simulate(&op, &[]).is_err());
    }
}
