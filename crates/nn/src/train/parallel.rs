//! [`DataParallel`]: a trainer's place in a group of ranks that each train on their own
//! shard of every batch and average their gradients (mixprec-dist's all-reduce).

use mixprec_amp::{GradAccumulator, GradScaler, UnscaledGrads};
use mixprec_autograd::{LeafGrad, Result, Var};
use mixprec_dist::{AllReduceReport, Collective, GradAllReduce};
use mixprec_dtype::F32;
use mixprec_tensor::Tensor;
use std::collections::HashMap;

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
///
/// With [`DataParallel::with_overlap`], the exchange runs during the last micro-batch's
/// backward instead: each parameter's gradient is finished (summed with the earlier
/// micro-batches, averaged, unscaled) as soon as backward has made it final, and each
/// bucket is exchanged on a second thread as soon as it is complete — PyTorch DDP's
/// overlap. The same bits either way (tested); every rank must use the same setting.
pub struct DataParallel {
    comm: Box<dyn Collective>,
    op: GradAllReduce,
    overlap: bool,
    last: Option<AllReduceReport>,
}

/// The result of an exchange that overlapped backward: the means by parameter position
/// (`None` when some rank held an inf or NaN) and the report.
pub(crate) struct Exchanged {
    means: Option<Vec<Option<Tensor<F32>>>>,
    report: AllReduceReport,
}

impl std::fmt::Debug for DataParallel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataParallel")
            .field("rank", &self.comm.rank())
            .field("ranks", &self.comm.size())
            .field("all_reduce", &self.op)
            .field("overlap", &self.overlap)
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
            overlap: false,
            last: None,
        }
    }

    /// Exchanges the gradients during the last micro-batch's backward (`true`) or after
    /// it (`false`, the default). Buckets smaller than the default 25 MiB
    /// ([`GradAllReduce::with_bucket_bytes`]) let the first ones start earlier.
    pub fn with_overlap(mut self, overlap: bool) -> DataParallel {
        self.overlap = overlap;
        self
    }

    /// Whether the exchange overlaps backward.
    pub fn overlaps(&self) -> bool {
        self.overlap
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

    /// Replaces `grads` with their mean over the ranks — computed now, or taken from
    /// `exchanged` when the exchange overlapped backward; true when some rank's
    /// gradients held an inf or NaN (then they are unchanged).
    pub(crate) fn average(
        &mut self,
        grads: &mut UnscaledGrads,
        exchanged: Option<Exchanged>,
    ) -> Result<bool> {
        let (means, report) = match exchanged {
            Some(x) => (x.means.map(|m| m.into_iter().flatten().collect()), x.report),
            None => {
                let mut present = grads.present();
                let report = self.op.all_reduce(self.comm.as_ref(), &mut present)?;
                (Some(present).filter(|_| !report.non_finite), report)
            }
        };
        self.last = Some(report);
        if let Some(means) = means {
            grads.replace_present(means)?;
        }
        Ok(report.non_finite)
    }

    /// The last micro-batch's backward of `loss` (scaled by `scaler` when given), its
    /// gradients then added to `acc`, with the exchange overlapping it: each parameter's
    /// gradient is handed to the exchange thread when final and finished there
    /// ([`GradAccumulator::finished`]: the bits the unscale will give).
    pub(crate) fn backward_overlapped(
        &self,
        scaler: Option<&GradScaler>,
        loss: &Var<F32>,
        params: &[&Var<F32>],
        acc: &mut GradAccumulator,
    ) -> Result<Exchanged> {
        let shapes: Vec<Vec<usize>> = params.iter().map(|p| p.shape().to_vec()).collect();
        let position: HashMap<_, _> = params
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id(), i))
            .collect();
        let scale = scaler.map(GradScaler::scale);
        let before: &GradAccumulator = acc;
        let prepare = |i: usize, g: Option<Tensor<F32>>| before.finished(i, g.as_ref(), scale);
        let out = self
            .op
            .overlapped(self.comm.as_ref(), &shapes, &prepare, |handover| {
                let mut hook = |g: LeafGrad<'_>| {
                    if let Some(&i) = position.get(&g.id()) {
                        handover.send(i, g.get::<F32>().cloned());
                    }
                };
                Ok(match scaler {
                    Some(s) => Ok(s.backward_with_leaf_hook(loss, &mut hook)?),
                    None => Err(loss.backward_with_leaf_hook(&mut hook)?),
                })
            })?;
        // `Ok`: scaled gradients; `Err`: those of a policy without loss scaling.
        match out.backward {
            Ok(scaled) => acc.add_scaled(&scaled, params)?,
            Err(plain) => acc.add(&plain, params)?,
        }
        Ok(Exchanged {
            means: out.means,
            report: out.report,
        })
    }
}
