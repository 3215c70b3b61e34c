//! [`DataParallel`]: a trainer's place in a group of ranks that each train on their own
//! shard of every batch and average their gradients (mixprec-dist's all-reduce).

use mixprec_amp::UnscaledGrads;
use mixprec_autograd::Result;
use mixprec_dist::{AllReduceReport, Collective, GradAllReduce};

/// The group a [`crate::Trainer`] averages its gradients over
/// ([`crate::Trainer::with_data_parallel`]), and how.
///
/// Each step, after unscaling and before clipping: the ranks agree on the loss's and the
/// FP8 operands' non-finite flags, then average the gradients ([`GradAllReduce`]: the
/// same bits on every rank). After each micro-batch the FP8 amaxes are reduced to their
/// maximum over the ranks before the scales update (Transformer Engine's rule), so FP8
/// scales and histories are the same on every rank too. When any rank found an inf or NaN, every rank skips the step
/// and the loss scalers back off together, so master weights, optimizer state and loss
/// scale stay identical on every rank. Dropout masks are drawn per rank (micro-batch `i`
/// of rank `r` uses the stream of micro-batch `r * m + i`), so `N` ranks of `m`
/// micro-batches draw what one process with `N * m` micro-batches would.
pub struct DataParallel {
    comm: Box<dyn Collective>,
    op: GradAllReduce,
    last: Option<AllReduceReport>,
}

impl std::fmt::Debug for DataParallel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataParallel")
            .field("rank", &self.comm.rank())
            .field("ranks", &self.comm.size())
            .field("all_reduce", &self.op)
            .field("last", &self.last)
            .finish()
    }
}

impl DataParallel {
    /// Rank `comm.rank()` of `comm.size()`, averaging with `op`.
    pub fn new(comm: impl Collective + 'static, op: GradAllReduce) -> DataParallel {
        DataParallel {
            comm: Box::new(comm),
            op,
            last: None,
        }
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.comm.rank()
    }

    /// Ranks in the group.
    pub fn ranks(&self) -> usize {
        self.comm.size()
    }

    /// The group (for a user's own collectives: gathering metrics, comparing hashes).
    pub fn collective(&self) -> &dyn Collective {
        self.comm.as_ref()
    }

    /// The all-reduce's settings.
    pub fn all_reduce(&self) -> GradAllReduce {
        self.op
    }

    /// What the last step's all-reduce did (bytes, buckets), if a step ran.
    pub fn last_report(&self) -> Option<AllReduceReport> {
        self.last
    }

    /// Each flag OR-ed over the ranks.
    pub(crate) fn any_rank<const N: usize>(&self, flags: [bool; N]) -> Result<[bool; N]> {
        let mut v = flags.map(u64::from);
        self.comm.all_reduce_max(&mut v)?;
        Ok(v.map(|x| x != 0))
    }

    /// Each of `values` (non-negative or NaN: FP8 amaxes) replaced by its maximum over
    /// the ranks; a NaN on any rank wins (its bits order above every number's).
    pub(crate) fn max_over_ranks(&self, values: &mut [f32]) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        let mut bits: Vec<u64> = values
            .iter()
            .map(|v| u64::from(if v.is_nan() { f32::NAN } else { v.abs() }.to_bits()))
            .collect();
        self.comm.all_reduce_max(&mut bits)?;
        for (v, b) in values.iter_mut().zip(bits) {
            *v = f32::from_bits(b as u32);
        }
        Ok(())
    }

    /// Replaces `grads` with their mean over the ranks; true when some rank's gradients
    /// held an inf or NaN (then they are unchanged).
    pub(crate) fn average(&mut self, grads: &mut UnscaledGrads) -> Result<bool> {
        let mut present = grads.present();
        let report = self.op.all_reduce(self.comm.as_ref(), &mut present)?;
        self.last = Some(report);
        if !report.non_finite {
            grads.replace_present(present)?;
        }
        Ok(report.non_finite)
    }
}
