//! [`Collective`]: the few collective operations the gradient all-reduce needs, so that
//! the algorithm is written once and runs over MPI ([`crate::Mpi`], feature `mpi`) or in
//! one process ([`SingleProcess`]).

use mixprec_autograd::Result;

/// A group of ranks that call the same operations in the same order. `Send + Sync`, so
/// a trainer holding one can move to another thread.
pub trait Collective: Send + Sync {
    /// This process's rank, `0..size()`.
    fn rank(&self) -> usize;
    /// Ranks in the group.
    fn size(&self) -> usize;
    /// Every rank's `send` (all of one length), concatenated in rank order.
    fn all_gather(&self, send: &[u8]) -> Result<Vec<u8>>;
    /// The element-wise maximum over ranks of `values` (all of one length), in place.
    fn all_reduce_max(&self, values: &mut [u64]) -> Result<()>;
    /// `send` is `size()` equal chunks, chunk `j` for rank `j`; returns `size()` chunks of
    /// that length, chunk `i` from rank `i` (every rank passes the same length).
    fn all_to_all(&self, send: &[u8]) -> Result<Vec<u8>>;

    /// The mean over the ranks of `x`, summed in rank order in f64 (the same on every
    /// rank): the whole batch's loss from each rank's loss on its shard, for logging
    /// (a `StepRecord`'s loss is this rank's). Collective.
    fn mean_over_ranks(&self, x: f64) -> Result<f64> {
        let all = self.all_gather(&x.to_le_bytes())?;
        let sum: f64 = all
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("chunks of 8 bytes")))
            .sum();
        Ok(sum / self.size() as f64)
    }
}

/// A group of one: every collective is the identity. Training code written against
/// [`Collective`] runs unchanged without MPI.
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn all_gather(&self, send: &[u8]) -> Result<Vec<u8>> {
        Ok(send.to_vec())
    }

    fn all_reduce_max(&self, _values: &mut [u64]) -> Result<()> {
        Ok(())
    }

    fn all_to_all(&self, send: &[u8]) -> Result<Vec<u8>> {
        Ok(send.to_vec())
    }
}

/// A shared group: several trainers (or a trainer and the user's own collectives) in one
/// process use one MPI world.
impl<T: Collective + ?Sized> Collective for std::sync::Arc<T> {
    fn rank(&self) -> usize {
        (**self).rank()
    }

    fn size(&self) -> usize {
        (**self).size()
    }

    fn all_gather(&self, send: &[u8]) -> Result<Vec<u8>> {
        (**self).all_gather(send)
    }

    fn all_reduce_max(&self, values: &mut [u64]) -> Result<()> {
        (**self).all_reduce_max(values)
    }

    fn all_to_all(&self, send: &[u8]) -> Result<Vec<u8>> {
        (**self).all_to_all(send)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_of_one_has_its_own_mean() {
        assert_eq!(SingleProcess.mean_over_ranks(2.5).unwrap(), 2.5);
        let shared = std::sync::Arc::new(SingleProcess);
        assert_eq!(
            shared.mean_over_ranks(-0.0).unwrap().to_bits(),
            (-0.0f64).to_bits()
        );
    }
}
