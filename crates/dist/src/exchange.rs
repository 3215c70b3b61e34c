//! How a bucket's encoded gradients travel ([`Exchange`]) and become the mean: both forms
//! compute, per element, the same rank-ordered F32 sum times `1 / N`, so they give the
//! same bits; they differ in bytes and messages.

use crate::collective::Collective;
use crate::wire::WirePrecision;
use mixprec_autograd::{Error, Result};
use mixprec_dtype::F32;
use mixprec_tensor::{BinaryOp, Tensor};

/// The exchange of a bucket between ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Exchange {
    /// The form that sends fewer bytes for the group's size and the wire precision
    /// (all-gather when equal: one message instead of two).
    #[default]
    Auto,
    /// Every rank gathers every rank's encoded bucket and sums all of it: sends
    /// `(N - 1) x payload` per rank, one message per bucket.
    AllGather,
    /// An all-to-all hands each rank one slice of every rank's encoded bucket; it sums
    /// its slice; an all-gather shares the F32 sums: sends `(N - 1) / N x (payload + 4 B
    /// x elements)` per rank, two messages per bucket.
    ReduceScatter,
}

impl Exchange {
    /// [`Exchange::Auto`] resolved for `ranks` ranks and `wire` (bytes per element:
    /// all-gather `(N - 1) b`, reduce-scatter `(N - 1) / N (b + 4)`).
    pub fn resolve(self, ranks: usize, wire: WirePrecision) -> Exchange {
        match self {
            Exchange::Auto => {
                let b = wire.bytes_per_element();
                if ranks * b > b + 4 {
                    Exchange::ReduceScatter
                } else {
                    Exchange::AllGather
                }
            }
            other => other,
        }
    }
}

/// A bucket: its tensors (for the shapes), their scales, the wire precision.
pub(crate) struct Bucket<'a> {
    pub(crate) grads: &'a [Tensor<F32>],
    pub(crate) scales: &'a [f32],
    pub(crate) wire: WirePrecision,
}

impl Bucket<'_> {
    /// The bucket's tensors back to back in the wire precision.
    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for (g, &s) in self.grads.iter().zip(self.scales) {
            self.wire.encode(g, s, &mut out)?;
        }
        Ok(out)
    }

    /// The mean of the ranks' encoded buckets `parts`, tensor by tensor.
    pub(crate) fn mean_of_parts(&self, parts: &[&[u8]]) -> Result<Vec<Tensor<F32>>> {
        let b = self.wire.bytes_per_element();
        let mut out = Vec::with_capacity(self.grads.len());
        let mut offset = 0;
        for (g, &s) in self.grads.iter().zip(self.scales) {
            let len = g.numel() * b;
            let pieces = parts.iter().map(|p| &p[offset..offset + len]);
            out.push(mean(self.wire, pieces, g.numel(), s, parts.len())?.reshape(g.shape())?);
            offset += len;
        }
        Ok(out)
    }

    /// Exchanges `local` (this rank's [`Bucket::encode`]) by an all-gather; returns the
    /// mean and the bytes this rank sent.
    pub(crate) fn all_gather(
        &self,
        comm: &dyn Collective,
        local: &[u8],
    ) -> Result<(Vec<Tensor<F32>>, usize)> {
        let n = comm.size();
        let all = comm.all_gather(local)?;
        check_len("all-gather", all.len(), n * local.len())?;
        let parts: Vec<&[u8]> = (0..n)
            .map(|r| &all[r * local.len()..(r + 1) * local.len()])
            .collect();
        Ok((self.mean_of_parts(&parts)?, (n - 1) * local.len()))
    }

    /// Exchanges `local` by a reduce-scatter (all-to-all of slices, each rank the mean
    /// of its slice) and an all-gather of the F32 means; returns the mean and the bytes
    /// this rank sent. Slices are `ceil(elements / N)` long, the last ones padded.
    pub(crate) fn reduce_scatter(
        &self,
        comm: &dyn Collective,
        local: &[u8],
    ) -> Result<(Vec<Tensor<F32>>, usize)> {
        let (n, rank) = (comm.size(), comm.rank());
        let b = self.wire.bytes_per_element();
        let elements = local.len() / b;
        let slice = elements.div_ceil(n);
        let range = |r: usize| (r * slice).min(elements)..((r + 1) * slice).min(elements);
        let mut send = vec![0u8; n * slice * b];
        for r in 0..n {
            let e = range(r);
            send[r * slice * b..][..e.len() * b].copy_from_slice(&local[e.start * b..e.end * b]);
        }
        let received = comm.all_to_all(&send)?;
        check_len("all-to-all", received.len(), send.len())?;
        // My slice, tensor segment by tensor segment, summed over the ranks in order.
        let mine = range(rank);
        let mut sums = Vec::with_capacity(slice * 4);
        let mut start = 0;
        for (g, &s) in self.grads.iter().zip(self.scales) {
            let (lo, hi) = (start.max(mine.start), (start + g.numel()).min(mine.end));
            start += g.numel();
            if lo >= hi {
                continue;
            }
            let at = (lo - mine.start) * b;
            let pieces = (0..n).map(|r| &received[r * slice * b + at..][..(hi - lo) * b]);
            sums.extend_from_slice(&mean(self.wire, pieces, hi - lo, s, n)?.to_le_bytes());
        }
        sums.resize(slice * 4, 0);
        let all = comm.all_gather(&sums)?;
        check_len("all-gather", all.len(), n * slice * 4)?;
        let mut flat = Vec::with_capacity(elements * 4);
        for r in 0..n {
            flat.extend_from_slice(&all[r * slice * 4..][..range(r).len() * 4]);
        }
        let mut out = Vec::with_capacity(self.grads.len());
        let mut offset = 0;
        for g in self.grads {
            let len = g.numel() * 4;
            out.push(Tensor::<F32>::from_le_bytes(
                &flat[offset..offset + len],
                g.shape(),
                1.0,
            )?);
            offset += len;
        }
        Ok((out, (n - 1) * slice * (b + 4)))
    }
}

/// `((x0 + x1) + ...) * f32(1 / n)` of the decoded `pieces` (each `len` elements of
/// `wire` at `scale`), in F32, one rounding per operation: the gradient accumulator's
/// mean, so N ranks of one micro-batch equal one process of N micro-batches.
fn mean<'p>(
    wire: WirePrecision,
    pieces: impl Iterator<Item = &'p [u8]>,
    len: usize,
    scale: f32,
    n: usize,
) -> Result<Tensor<F32>> {
    let mut sum: Option<Tensor<F32>> = None;
    for piece in pieces {
        let x = wire.decode(piece, &[len], scale)?;
        sum = Some(match sum {
            None => x,
            Some(acc) => acc.add(&x)?,
        });
    }
    let sum = sum.unwrap_or_else(|| Tensor::<F32>::zeros(&[len]));
    Ok(sum.binary_scalar(BinaryOp::Mul, f64::from(1.0 / n as f32))?)
}

fn check_len(what: &str, got: usize, expected: usize) -> Result<()> {
    if got == expected {
        return Ok(());
    }
    Err(Error::invalid(
        "GradAllReduce::all_reduce",
        format!("the {what} returned {got} bytes, expected {expected}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_the_form_with_fewer_bytes() {
        use WirePrecision::*;
        let form = |n, w| Exchange::Auto.resolve(n, w);
        // F32: (N-1) 4 vs (N-1)/N 8: equal at 2 ranks, reduce-scatter from 3.
        assert_eq!(form(2, F32), Exchange::AllGather);
        assert_eq!(form(3, F32), Exchange::ReduceScatter);
        // BF16: (N-1) 2 vs (N-1)/N 6: equal at 3.
        assert_eq!(form(3, Bf16), Exchange::AllGather);
        assert_eq!(form(4, Bf16), Exchange::ReduceScatter);
        // FP8: (N-1) vs (N-1)/N 5: equal at 5.
        assert_eq!(form(5, E4M3), Exchange::AllGather);
        assert_eq!(form(6, E5M2), Exchange::ReduceScatter);
        assert_eq!(Exchange::AllGather.resolve(64, F32), Exchange::AllGather);
        assert_eq!(form(1, F32), Exchange::AllGather);
    }
}
