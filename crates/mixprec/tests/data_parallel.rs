//! Data-parallel training end to end: `data_parallel_check` under `mpirun -np 2` (see
//! that binary for what it checks: 2 ranks equal one process with 2 micro-batches bit
//! for bit under FP32 and BF16, identical states on every rank, an overflow on one rank
//! skips the step on both). Needs the `mpi` feature and `mpirun`; without `mpirun` it
//! skips with a message, unless `MIXPREC_REQUIRE_MPI=1`.
#![cfg(feature = "mpi")]

use mixprec::dist::{mpirun, mpirun_or_skip};
use std::time::Duration;

#[test]
fn two_ranks_train_like_one_process_and_skip_together() {
    if !mpirun_or_skip() {
        return;
    }
    let program = env!("CARGO_BIN_EXE_data_parallel_check");
    let out = mpirun(2, program, &[], Duration::from_secs(180)).expect("mpirun runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for rank in 0..2 {
        assert!(
            stdout.contains(&format!("rank {rank} of 2: ok")),
            "{stdout}\n{stderr}"
        );
    }
}
