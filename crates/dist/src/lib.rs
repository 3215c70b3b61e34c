//! Data-parallel training for mixprec: every rank holds the whole model and its own
//! shard of each batch; after backward the ranks average their gradients
//! ([`GradAllReduce`]) in a chosen wire precision ([`WirePrecision`]: F32, BF16 with F32
//! accumulation, or FP8 with a per-tensor scale agreed across ranks), in buckets, in a
//! fixed order: a run is bit-reproducible, and equals [`simulate`] — the same steps in
//! one process — bit for bit.
//!
//! The transport is MPI (feature `mpi`: [`Mpi`], on rsmpi; Open MPI from the system's
//! packages), behind the small [`Collective`] trait; without the feature the crate
//! builds with no MPI and [`SingleProcess`] is the group of one.
//!
//! ```
//! use mixprec_dist::{GradAllReduce, SingleProcess, WirePrecision, simulate};
//! use mixprec_dtype::F32;
//! use mixprec_tensor::Tensor;
//!
//! // Two ranks' gradients of one parameter; BF16 on the wire, summed in F32.
//! let rank0 = vec![Tensor::<F32>::from_f32(&[1.0, 2.0], &[2]).unwrap()];
//! let rank1 = vec![Tensor::<F32>::from_f32(&[3.0, 1.0 / 3.0], &[2]).unwrap()];
//! let op = GradAllReduce::new(WirePrecision::Bf16);
//! let mean = simulate(&op, &[rank0.clone(), rank1]).unwrap().unwrap();
//! // 1/3 rounds to BF16 (0.333984375) before the sum: (2 + 0.333984375) / 2.
//! assert_eq!(mean[0].to_f32_vec(), vec![2.0, 1.1669921875]);
//!
//! // In one process the all-reduce is the identity for F32.
//! let mut g = rank0.clone();
//! GradAllReduce::default().all_reduce(&SingleProcess, &mut g).unwrap();
//! assert_eq!(g[0].to_f32_vec(), vec![1.0, 2.0]);
//! ```
#![warn(missing_debug_implementations)]

mod all_reduce;
mod bucket;
mod collective;
mod exchange;
#[cfg(feature = "mpi")]
mod launch;
#[cfg(feature = "mpi")]
mod mpi_comm;
mod overlap;
mod pipeline;
mod wire;

pub use all_reduce::{AllReduceReport, GradAllReduce, simulate};
pub use bucket::{DEFAULT_BUCKET_BYTES, plan_buckets};
pub use collective::{Collective, SingleProcess};
pub use exchange::Exchange;
#[cfg(feature = "mpi")]
pub use launch::{mpirun, mpirun_available, mpirun_or_skip};
#[cfg(feature = "mpi")]
pub use mpi_comm::{DEFAULT_TIMEOUT, Mpi, TIMEOUT_EXIT_CODE};
pub use overlap::{Handover, Overlapped, Prepare};
pub use wire::WirePrecision;
