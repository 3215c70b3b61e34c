//! Fault test of checkpointing: a training process (`resumable_training`) is killed with
//! SIGKILL at random moments — mid-step, mid-write, mid-rename — a bounded number of
//! times within a bounded time. After every kill the newest checkpoint on disk must load
//! and be one of the steps the run saves; every checkpoint listed must load. Then the
//! run is completed, resuming from whatever was left, and its final training state must
//! be byte-identical to that of a run never interrupted.

#![cfg(unix)]

use mixprec::nn::checkpoint::{Checkpoints, TensorFile};
use mixprec::tensor::Rng;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_resumable_training");
const STEPS: u64 = 400;
const EVERY: u64 = 5;
/// At most this many kills, within this time (the test's bound on a slow machine).
const MAX_KILLS: usize = 12;
const TIME_LIMIT: Duration = Duration::from_secs(90);

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("mixprec-kill-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn command(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args(["--dir", dir.to_str().unwrap()])
        .args(["--steps", &STEPS.to_string(), "--every", &EVERY.to_string()])
        .args(["--keep", "2", "--policy", "fp8"])
        .env("MIXPREC_NUM_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn run_to_end(dir: &Path) -> Vec<u8> {
    let out = command(dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dir.join("final.safetensors")).unwrap()
}

/// What a kill left: every listed checkpoint loads and names its own step, a multiple
/// of `EVERY`; returns the newest step.
fn check_disk(dir: &Path) -> Option<u64> {
    let checkpoints = Checkpoints::new(dir, "state").unwrap();
    for (step, path) in checkpoints.list().unwrap() {
        let file = TensorFile::load(&path)
            .unwrap_or_else(|e| panic!("a checkpoint left by a kill does not load: {e}"));
        assert_eq!(
            file.metadata("mixprec.next_step"),
            Some(step.to_string().as_str())
        );
        assert!(
            step % EVERY == 0 && step <= STEPS,
            "step {step} is not one the run saves"
        );
    }
    checkpoints.load_latest().unwrap().map(|(step, _)| step)
}

#[test]
fn a_run_killed_at_random_moments_resumes_to_the_same_bytes() {
    let clean = TempDir::new("clean");
    let want = run_to_end(&clean.0);

    let killed = TempDir::new("killed");
    let mut rng = Rng::seed(2026);
    let start = Instant::now();
    let mut kills = Vec::new();
    while kills.len() < MAX_KILLS && start.elapsed() < TIME_LIMIT {
        let mut child = command(&killed.0).spawn().unwrap();
        // 1..60 ms: some kills land before the first save, most mid-run.
        std::thread::sleep(Duration::from_micros(1_000 + rng.next_u64() % 59_000));
        if child.try_wait().unwrap().is_some() {
            break; // finished before the kill
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills.push(check_disk(&killed.0));
    }
    eprintln!("killed at (newest checkpoint on disk): {kills:?}");
    assert!(
        !kills.is_empty(),
        "no kill landed; the run finished too fast"
    );
    let got = run_to_end(&killed.0);
    assert!(
        got == want,
        "the resumed run's final state differs from the clean run's"
    );
    // The completed run cleaned up what the kills left.
    let leftovers: Vec<_> = std::fs::read_dir(&killed.0)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}
