//! [`GradAllReduce::overlapped`]: the all-reduce on its own thread, each bucket
//! exchanged as soon as backward has handed over all of its gradients.

use crate::all_reduce::{AllReduceReport, GradAllReduce};
use crate::bucket::plan_buckets;
use crate::collective::Collective;
use crate::pipeline::Pipeline;
use mixprec_autograd::{Error, Result};
use mixprec_dtype::F32;
use mixprec_tensor::Tensor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

/// Where backward hands its final gradients to [`GradAllReduce::overlapped`]'s exchange
/// thread.
#[derive(Debug)]
pub struct Handover {
    tx: mpsc::Sender<(usize, Option<Tensor<F32>>)>,
}

impl Handover {
    /// Hands over position `position`'s gradient (`None`: backward gave it none) for the
    /// exchange thread to prepare and exchange. Cheap: the tensor shares its storage.
    /// After the exchange failed this does nothing (the error comes back from
    /// [`GradAllReduce::overlapped`]).
    pub fn send(&self, position: usize, grad: Option<Tensor<F32>>) {
        // A closed channel means the exchange thread stopped on an error it returns.
        let _ = self.tx.send((position, grad));
    }
}

/// The result of [`GradAllReduce::overlapped`].
#[derive(Debug)]
pub struct Overlapped<R> {
    /// What the backward closure returned.
    pub backward: R,
    /// The mean over the ranks by position (`None` for a position without a gradient on
    /// every rank); `None` when some rank held an inf or NaN (nothing was averaged).
    pub means: Option<Vec<Option<Tensor<F32>>>>,
    /// What the exchange did.
    pub report: AllReduceReport,
}

/// The function that turns what backward handed over into the gradient to average.
pub type Prepare<'a> =
    dyn Fn(usize, Option<Tensor<F32>>) -> Result<Option<Tensor<F32>>> + Sync + 'a;

impl GradAllReduce {
    /// Runs `backward` on this thread while another exchanges the gradients: `backward`
    /// hands each position's gradient over ([`Handover::send`]) as soon as it is final;
    /// the exchange thread passes it through `prepare` (position, what was handed over;
    /// for the trainer: add it to the earlier micro-batches' sum, take the mean and
    /// unscale) and exchanges each bucket as soon as all of its gradients are in, in the
    /// bucket plan's order (from the last parameter: backward's order). Positions not
    /// handed over when `backward` returns are prepared from `None`. The means are those
    /// of [`GradAllReduce::all_reduce`] on the prepared gradients, bit for bit: buckets,
    /// scales and sums do not depend on when a gradient arrives.
    ///
    /// With a single bucket nothing can start before backward ends: the exchange then
    /// runs on this thread after it (no thread is started).
    ///
    /// `shapes` are the gradients' shapes by position (every rank the same; agreed as in
    /// `all_reduce`). Collective: every rank calls it, and no other collective of the
    /// group may run until it returns. When `backward` fails or panics, the exchange
    /// thread stops issuing collectives (the other ranks then wait until their timeout:
    /// a rank that cannot finish its step stops the job, it never lets the ranks drift
    /// apart) and the error is returned (the panic resumed).
    pub fn overlapped<R>(
        &self,
        comm: &dyn Collective,
        shapes: &[Vec<usize>],
        prepare: &Prepare<'_>,
        backward: impl FnOnce(&Handover) -> Result<R>,
    ) -> Result<Overlapped<R>> {
        let (tx, rx) = mpsc::channel::<(usize, Option<Tensor<F32>>)>();
        let returned = AtomicBool::new(false);
        let succeeded = AtomicBool::new(false);
        let exchange = || {
            let mut pipeline = Pipeline::start(*self, comm, shapes)?;
            for (position, grad) in rx {
                let grad = prepare(position, grad)?;
                pipeline.offer(position, grad, !returned.load(Ordering::Acquire))?;
            }
            if !succeeded.load(Ordering::Acquire) {
                return Err(Error::invalid(
                    "GradAllReduce::overlapped",
                    "backward did not finish: the exchange stopped",
                ));
            }
            pipeline.finish(|position| prepare(position, None))
        };
        let handover = Handover { tx };
        let run_backward = || {
            // On a panic, `handover` drops with `succeeded` false: the exchange stops.
            let result = backward(&handover);
            succeeded.store(result.is_ok(), Ordering::Release);
            returned.store(true, Ordering::Release);
            drop(handover);
            (result, Instant::now())
        };
        let numels: Vec<usize> = shapes.iter().map(|s| s.iter().product()).collect();
        let ((result, returned_at), exchanged) =
            if plan_buckets(&numels, self.bucket_bytes()).len() > 1 {
                std::thread::scope(|scope| {
                    let worker = scope.spawn(exchange);
                    let backward = run_backward();
                    let exchanged = worker
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                    (backward, exchanged)
                })
            } else {
                // One bucket: it can only go when backward is done; no thread to pay for.
                let backward = run_backward();
                (backward, exchange())
            };
        let backward = result?;
        let (means, mut report) = exchanged?;
        report.exposed = returned_at.elapsed();
        Ok(Overlapped {
            backward,
            means,
            report,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collective::SingleProcess;
    use crate::wire::WirePrecision;

    fn grads() -> Vec<Tensor<F32>> {
        let mut rng = mixprec_tensor::Rng::seed(9);
        [vec![3, 4], vec![5], vec![2, 2, 2], vec![6]]
            .iter()
            .map(|s| Tensor::<F32>::randn(s, 0.0, 1e-2, &mut rng).unwrap())
            .collect()
    }

    fn bits(t: &Tensor<F32>) -> Vec<u32> {
        t.to_f32_vec().into_iter().map(f32::to_bits).collect()
    }

    #[test]
    fn overlapped_equals_all_reduce_whatever_the_order_of_arrival() {
        for wire in WirePrecision::ALL {
            // 40-byte buckets: several buckets, so some complete before the end.
            let op = GradAllReduce::new(wire).with_bucket_bytes(40).unwrap();
            let g = grads();
            let mut expected = g.clone();
            op.all_reduce(&SingleProcess, &mut expected).unwrap();
            let shapes: Vec<Vec<usize>> = g.iter().map(|t| t.shape().to_vec()).collect();
            // Prepared gradients are twice what was handed over; position 2 is never
            // handed over and comes from `prepare(2, None)`.
            let doubled: Vec<Tensor<F32>> = g.iter().map(|t| t.add(t).unwrap()).collect();
            let mut want = doubled.clone();
            op.all_reduce(&SingleProcess, &mut want).unwrap();
            let saw_position_1 = AtomicBool::new(false);
            let prepare = |i: usize, h: Option<Tensor<F32>>| {
                if i == 1 {
                    saw_position_1.store(true, Ordering::Release);
                }
                Ok(Some(match h {
                    Some(t) => t.add(&t)?,
                    None => doubled[i].clone(),
                }))
            };
            let out = op
                .overlapped(&SingleProcess, &shapes, &prepare, |handover| {
                    for i in [3, 1, 0] {
                        handover.send(i, Some(g[i].clone()));
                    }
                    // The worker prepares in order: once it prepares position 1, the
                    // bucket of position 3 has been exchanged, while backward runs.
                    let start = std::time::Instant::now();
                    while !saw_position_1.load(Ordering::Acquire) {
                        assert!(start.elapsed().as_secs() < 60, "the worker is stuck");
                        std::thread::yield_now();
                    }
                    Ok(7)
                })
                .unwrap();
            assert_eq!(out.backward, 7);
            let means = out.means.unwrap();
            for (m, w) in means.iter().zip(&want) {
                assert_eq!(bits(m.as_ref().unwrap()), bits(w), "{wire}");
            }
            assert_eq!(out.report.buckets, 4, "{wire}: one tensor per bucket");
            // Position 3 (the plan's first bucket) was exchanged during backward;
            // position 2's bucket (next in the plan) waits for the end, and so do
            // those after it.
            assert_eq!(out.report.during_backward, 1, "{wire}");
        }
    }

    /// One bucket (the exchange runs after backward on this thread) and 40-byte buckets
    /// (on a second thread).
    fn both_modes() -> [GradAllReduce; 2] {
        let op = GradAllReduce::default();
        [op, op.with_bucket_bytes(40).unwrap()]
    }

    #[test]
    fn a_failed_backward_stops_the_exchange_and_returns_its_error() {
        let g = grads();
        let shapes: Vec<Vec<usize>> = g.iter().map(|t| t.shape().to_vec()).collect();
        let prepare = |_: usize, h: Option<Tensor<F32>>| Ok(h);
        for op in both_modes() {
            let e = op
                .overlapped(&SingleProcess, &shapes, &prepare, |handover| {
                    handover.send(0, Some(g[0].clone()));
                    Err::<(), _>(Error::invalid("backward", "shape mismatch"))
                })
                .unwrap_err();
            assert!(e.to_string().contains("shape mismatch"), "{e}");
            // A prepare error comes back too; handing over twice is an error.
            let failing = |_: usize, _: Option<Tensor<F32>>| Err(Error::invalid("prepare", "no"));
            let e = op
                .overlapped(&SingleProcess, &shapes, &failing, |_| Ok(()))
                .unwrap_err();
            assert!(e.to_string().contains("prepare"), "{e}");
            let e = op
                .overlapped(&SingleProcess, &shapes, &prepare, |h| {
                    h.send(1, None);
                    h.send(1, None);
                    Ok(())
                })
                .unwrap_err();
            assert!(e.to_string().contains("handed over twice"), "{e}");
        }
    }

    #[test]
    fn a_panicking_backward_joins_the_exchange_thread_and_resumes_the_panic() {
        let shapes = vec![vec![2], vec![3]];
        let prepare = |_: usize, h: Option<Tensor<F32>>| Ok(h);
        for op in both_modes() {
            let caught = std::panic::catch_unwind(|| {
                let _ = op.overlapped(&SingleProcess, &shapes, &prepare, |h| -> Result<()> {
                    h.send(1, None);
                    panic!("user closure")
                });
            });
            let msg = caught.unwrap_err();
            assert_eq!(msg.downcast_ref::<&str>(), Some(&"user closure"));
        }
    }

    #[test]
    fn a_non_finite_gradient_gives_no_means() {
        let op = GradAllReduce::new(WirePrecision::E4M3);
        let shapes = vec![vec![2], vec![1]];
        let prepare = |_: usize, h: Option<Tensor<F32>>| Ok(h);
        let out = op
            .overlapped(&SingleProcess, &shapes, &prepare, |h| {
                h.send(1, Some(Tensor::<F32>::from_f32(&[f32::INFINITY], &[1])?));
                h.send(0, Some(Tensor::<F32>::from_f32(&[1.0, 2.0], &[2])?));
                Ok(())
            })
            .unwrap();
        assert!(out.means.is_none());
        assert!(out.report.non_finite);
    }
}
