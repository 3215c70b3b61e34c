//! The comparison's memory accounting per run: each run's workspace is measured from
//! empty, so successive runs in one process report what they use themselves, not what
//! earlier runs left behind; and the written summary adds up.
//!
//! Its own test binary (one test): the workspace is process-wide, and tests running in
//! parallel in one process would share it.

use mixprec_amp::MemoryRole;
use mixprec_nn::compare::SortSize;
use mixprec_nn::compare::{
    DigitsSize, MEMORY_COLUMNS, PolicyChoice, RunConfig, RunSummary, run_digits, run_sort,
    summary_csv,
};

fn cfg() -> RunConfig {
    RunConfig {
        steps: 6,
        batch: 64,
        micro_batches: 1,
        lr: 3e-3,
        seed: 1,
        loss_weight: 1.0,
    }
}

fn digits(policy: PolicyChoice) -> RunSummary {
    run_digits(policy, &cfg(), DigitsSize { hidden: 128 }, &mut |_| {}).unwrap()
}

#[test]
fn each_run_counts_its_own_workspace_and_the_summary_adds_up() {
    let first = digits(PolicyChoice::Fp32);
    let workspace = first.memory.role(MemoryRole::Workspace);
    assert!(workspace > 0, "an F32 MLP step keeps buffers for reuse");
    // A larger run in between (the GPT's buffers), then the same run again: the same
    // bytes in every role, the workspace included.
    let size = SortSize {
        n: 4,
        dim: 32,
        heads: 2,
        layers: 1,
    };
    let big = run_sort(PolicyChoice::Fp32, &cfg(), size, &mut |_| {}).unwrap();
    assert!(big.memory.role(MemoryRole::Workspace) > 0);
    let bf16 = digits(PolicyChoice::Bf16);
    let again = digits(PolicyChoice::Fp32);
    assert_eq!(
        again.memory, first.memory,
        "the second run reports the first's bytes"
    );
    // BF16 keeps half-size activations: its workspace is its own, smaller one.
    assert!(
        bf16.memory.role(MemoryRole::SavedActivations)
            < first.memory.role(MemoryRole::SavedActivations)
    );

    let runs = [first, big, bf16, again];
    let csv = summary_csv(&runs);
    let mut lines = csv.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    for (line, run) in lines.zip(&runs) {
        let row: Vec<&str> = line.split(',').collect();
        let bytes = |name: &str| row[col(name)].parse::<usize>().unwrap();
        let roles: usize = MEMORY_COLUMNS.iter().map(|c| bytes(c.1)).sum();
        assert_eq!(roles, bytes("total_bytes"), "{line}");
        assert_eq!(roles, run.memory.total());
    }
}
