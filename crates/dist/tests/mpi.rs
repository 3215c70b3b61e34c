//! The MPI test: `mixprec-dist-check` under `mpirun -np 2` (see that binary for what it
//! checks). Needs the `mpi` feature and Open MPI's `mpirun` (`.ci/run` installs both);
//! without `mpirun` it skips with a message, unless `MIXPREC_REQUIRE_MPI=1`.
#![cfg(feature = "mpi")]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn two_ranks_all_reduce_like_the_simulation_bit_for_bit() {
    run_ranks(2);
}

/// Three ranks: a sum of three in another order rounds differently, so this run also
/// checks the rank order of the sums (two summands commute exactly).
#[test]
fn three_ranks_sum_in_rank_order() {
    run_ranks(3);
}

fn run_ranks(n: usize) {
    let have_mpirun = Command::new("mpirun")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have_mpirun {
        assert!(
            std::env::var("MIXPREC_REQUIRE_MPI").as_deref() != Ok("1"),
            "mpirun not found and MIXPREC_REQUIRE_MPI=1"
        );
        eprintln!("skipped: mpirun not found (apt-get install openmpi-bin libopenmpi-dev)");
        return;
    }
    let mut child = Command::new("mpirun")
        .args([
            "--allow-run-as-root",
            "--oversubscribe",
            "-np",
            &n.to_string(),
        ])
        .arg(env!("CARGO_BIN_EXE_mixprec-dist-check"))
        .env("OMPI_MCA_btl", "self,tcp")
        .env("OMPI_MCA_btl_tcp_if_include", "lo")
        .env("OMPI_MCA_oob_tcp_if_include", "lo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun starts");
    // Never hang: two minutes, then kill.
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("the {n}-rank run did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
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
        assert!(stdout.contains(&format!("wire {wire}:")), "{stdout}");
    }
    eprintln!("{stdout}");
}
