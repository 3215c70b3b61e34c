//! The MPI test: `mixprec-dist-check` under `mpirun -np 2` and `-np 3` (see that binary
//! for what it checks). Needs the `mpi` feature and Open MPI's `mpirun` (`.ci/run`
//! installs both); without `mpirun` it skips with a message, unless
//! `MIXPREC_REQUIRE_MPI=1`.
#![cfg(feature = "mpi")]

use mixprec_dist::{mpirun, mpirun_or_skip};
use std::time::{Duration, Instant};

#[test]
fn two_ranks_all_reduce_like_the_simulation_bit_for_bit() {
    run_ranks(2);
}

/// Three ranks: the gathered parts must come back in rank order for the sums to match
/// the simulation (two summands commute exactly; three in another order round
/// differently), and the reduce-scatter's slices are uneven (2048 and 679 elements).
#[test]
fn three_ranks_sum_in_rank_order() {
    run_ranks(3);
}

/// A rank that hangs: the others' collective times out (2 s) and aborts the job, which
/// ends with the timeout's message instead of hanging.
#[test]
fn a_hanging_rank_ends_the_job_within_the_deadline() {
    if !mpirun_or_skip() {
        return;
    }
    let start = Instant::now();
    let out = mpirun(2, PROGRAM, &["fault-hang"], Duration::from_secs(60)).expect("mpirun ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("did not complete within 2s"), "{stderr}");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
}

/// A rank that exits: the job ends (Open MPI stops the others, or their deadline does).
#[test]
fn a_dying_rank_ends_the_job() {
    if !mpirun_or_skip() {
        return;
    }
    let start = Instant::now();
    let out = mpirun(2, PROGRAM, &["fault-exit"], Duration::from_secs(60)).expect("mpirun ends");
    assert!(!out.status.success());
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
}

const PROGRAM: &str = env!("CARGO_BIN_EXE_mixprec-dist-check");

fn run_ranks(n: usize) {
    if !mpirun_or_skip() {
        return;
    }
    let out = mpirun(n, PROGRAM, &[], Duration::from_secs(120)).expect("mpirun runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for rank in 0..n {
        assert!(
            stdout.contains(&format!("rank {rank} of {n}: ok")),
            "{stdout}\n{stderr}"
        );
    }
    for wire in ["f32", "bf16", "e5m2", "e4m3"] {
        for exchange in ["AllGather", "ReduceScatter"] {
            assert!(
                stdout.contains(&format!("wire {wire} {exchange}:")),
                "{stdout}"
            );
        }
    }
    eprintln!("{stdout}");
}
