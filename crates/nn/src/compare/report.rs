//! What a comparison prints and writes: the results table, the memory table (bytes by
//! role, with a total that is their sum), the legend defining every column of both,
//! and the CSV files.

use super::RunSummary;
use mixprec_amp::{MemoryRole, MemorySummary};
use mixprec_dtype::DType;

/// The results table's columns after task and policy, with their definitions.
pub const RESULT_COLUMNS: [(&str, &str); 8] = [
    (
        "train loss",
        "mean training loss (unweighted) over the last 10% of the steps",
    ),
    (
        "accuracy",
        "on the test split: digits, the 360 held-out images; sorting, each output digit of 512 sequences generated with a seed training never uses",
    ),
    (
        "steps/s",
        "optimizer steps per second of training (forward, backward, update; evaluation not counted)",
    ),
    (
        "casts",
        "precision casts the tape recorded per optimizer step (forward and gradient)",
    ),
    (
        "underflow",
        "largest fraction of non-zero values a cast flushed to zero, over every cast point (forward or gradient) and step",
    ),
    (
        "grad uf",
        "per step the largest such fraction among the casts of gradients, averaged over the steps",
    ),
    (
        "skip",
        "steps skipped because a gradient, the loss or an FP8 operand held an inf or NaN",
    ),
    (
        "scale",
        "the loss scale at the end (dynamic loss scaling only; - without)",
    ),
];

/// The memory table's columns after task and policy: each role of the accounting (the
/// table's name, `summary.csv`'s name, the role, the definition), then the total.
pub const MEMORY_COLUMNS: [(&str, &str, MemoryRole, &str); 7] = [
    (
        "master",
        "master_bytes",
        MemoryRole::MasterWeights,
        "F32 master weights",
    ),
    (
        "copies",
        "compute_copy_bytes",
        MemoryRole::ComputeCopies,
        "low-precision compute copies of the weights made for the step's GEMMs (the cast cache), by precision",
    ),
    (
        "grads",
        "gradient_bytes",
        MemoryRole::Gradients,
        "parameter gradients (F32, unscaled)",
    ),
    (
        "optimizer",
        "optimizer_bytes",
        MemoryRole::OptimizerState,
        "AdamW's two F32 moments per parameter",
    ),
    (
        "saved activations",
        "saved_activation_bytes",
        MemoryRole::SavedActivations,
        "peak bytes the tape kept for backward, each storage once, by precision (weight copies count under copies)",
    ),
    (
        "fp8 state",
        "fp8_state_bytes",
        MemoryRole::Fp8Scaling,
        "FP8 scales and amax histories (three tensors per FP8 GEMM)",
    ),
    (
        "workspace",
        "workspace_bytes",
        MemoryRole::Workspace,
        "library buffers outside tensors after the last step: GEMM packing buffers and freed buffers kept for reuse (emptied when each run starts, so each run counts its own)",
    ),
];

/// The memory table's last column.
const TOTAL: (&str, &str) = (
    "total",
    "the sum of the columns before it, measured at the last step",
);

/// Characters of definition per legend line (after the column name).
const LEGEND_TEXT_WIDTH: usize = 78;

/// The legend: every column of both tables, one line each, plus the units.
pub fn legend() -> String {
    let mut out = String::from("columns:\n");
    let memory = MEMORY_COLUMNS.iter().map(|(name, _, _, def)| (*name, *def));
    for (name, def) in RESULT_COLUMNS.into_iter().chain(memory).chain([TOTAL]) {
        out.push_str(&format!("  {name:<18}"));
        let mut used = 0;
        for word in def.split(' ') {
            if used > 0 && used + 1 + word.len() > LEGEND_TEXT_WIDTH {
                out.push_str(&format!("\n  {:<18}", ""));
                used = 0;
            }
            out.push(' ');
            out.push_str(word);
            used += 1 + word.len();
        }
        out.push('\n');
    }
    out.push_str(
        "memory in binary units (K = KiB, M = MiB), bytes exact in summary.csv; \
         '-' is none",
    );
    out
}

/// The results table: loss, accuracy, speed and numerics of each run.
pub fn results_table(runs: &[RunSummary]) -> String {
    let widths = [10, 8, 8, 6, 9, 8, 5, 8];
    let mut out = format!("{:<24} {:<15}", "task", "policy");
    for ((name, _), w) in RESULT_COLUMNS.iter().zip(widths) {
        out.push_str(&format!(" {name:>w$}"));
    }
    for r in runs {
        let cells = [
            format!("{:.4}", r.final_loss),
            format!("{:.1}%", 100.0 * r.accuracy),
            format!("{:.1}", r.steps_per_s),
            format!("{:.0}", r.casts_per_step),
            format!("{:.2}%", 100.0 * r.worst_underflow),
            format!("{:.2}%", 100.0 * r.mean_grad_underflow),
            r.skipped.to_string(),
            r.final_scale.map_or("-".into(), |s| format!("{s}")),
        ];
        out.push_str(&format!("\n{:<24} {:<15}", r.task, r.policy.name()));
        for (cell, w) in cells.iter().zip(widths) {
            out.push_str(&format!(" {cell:>w$}"));
        }
    }
    out
}

/// The memory table: bytes by role at the last step of each run, and their total.
pub fn memory_table(runs: &[RunSummary]) -> String {
    let widths = [8, 22, 8, 9, 32, 9, 9];
    let mut out = format!("{:<24} {:<15}", "task", "policy");
    for ((name, _, _, _), w) in MEMORY_COLUMNS.iter().zip(widths) {
        out.push_str(&format!(" {name:>w$}"));
    }
    out.push_str(&format!(" {:>8}", TOTAL.0));
    for r in runs {
        out.push_str(&format!("\n{:<24} {:<15}", r.task, r.policy.name()));
        for ((_, _, role, _), w) in MEMORY_COLUMNS.iter().zip(widths) {
            out.push_str(&format!(" {:>w$}", cell(&r.memory, *role)));
        }
        out.push_str(&format!(" {:>8}", human_bytes(r.memory.total())));
    }
    out
}

/// A role's cell: its bytes, split by precision for the roles that hold several.
fn cell(m: &MemorySummary, role: MemoryRole) -> String {
    match role {
        MemoryRole::ComputeCopies | MemoryRole::SavedActivations => role_bytes(m, role),
        _ => match m.role(role) {
            0 => "-".into(),
            b => human_bytes(b),
        },
    }
}

/// `summary.csv`: a row per run; bytes exact, one column per role, and `total_bytes`
/// their sum.
pub fn summary_csv(runs: &[RunSummary]) -> String {
    let mut out = String::from(
        "task,policy,final_loss,accuracy,steps_per_s,casts_per_step,worst_underflow,mean_grad_underflow,skipped,final_scale",
    );
    for (_, csv_name, _, _) in MEMORY_COLUMNS {
        out.push_str(&format!(",{csv_name}"));
    }
    out.push_str(",total_bytes\n");
    for r in runs {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}",
            r.task,
            r.policy.name(),
            r.final_loss,
            r.accuracy,
            r.steps_per_s,
            r.casts_per_step,
            r.worst_underflow,
            r.mean_grad_underflow,
            r.skipped,
            r.final_scale.map_or(String::new(), |v| v.to_string())
        ));
        for (_, _, role, _) in MEMORY_COLUMNS {
            out.push_str(&format!(",{}", r.memory.role(role)));
        }
        out.push_str(&format!(",{}\n", r.memory.total()));
    }
    out
}

/// `metrics.csv`: a row per step of every run.
pub fn metrics_csv(runs: &[RunSummary]) -> String {
    let mut out = String::from(
        "task,policy,step,loss,lr,grad_norm,loss_scale,skipped,worst_underflow,grad_underflow,casts,seconds\n",
    );
    for r in runs {
        for s in &r.records {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{},{}\n",
                r.task,
                r.policy.name(),
                s.step,
                s.loss,
                s.lr,
                s.grad_norm,
                s.loss_scale.map_or(String::new(), |v| v.to_string()),
                u8::from(s.skipped),
                s.worst_underflow,
                s.grad_underflow,
                s.casts,
                s.seconds
            ));
        }
    }
    out
}

/// Bytes of `role` in `summary` rendered with its precisions, e.g. `"12.0K bf16+3.1K f32"`
/// (`"-"` when none).
pub fn role_bytes(summary: &MemorySummary, role: MemoryRole) -> String {
    let parts: Vec<String> = summary
        .rows
        .iter()
        .filter(|(r, _, _)| *r == role)
        .map(|(_, d, b)| format!("{} {}", human_bytes(*b), dtype_label(*d)))
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join("+")
    }
}

fn dtype_label(d: DType) -> &'static str {
    d.name()
}

/// `1536` -> `"1.5K"`, `3_200_000` -> `"3.1M"` (binary units).
pub fn human_bytes(b: usize) -> String {
    let b = b as f64;
    if b < 1024.0 {
        format!("{b:.0}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.1}K", b / 1024.0)
    } else {
        format!("{:.1}M", b / (1024.0 * 1024.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::PolicyChoice;

    fn run(policy: PolicyChoice, memory: MemorySummary) -> RunSummary {
        RunSummary {
            task: "digits-mlp".into(),
            policy,
            records: Vec::new(),
            final_loss: 0.0133,
            accuracy: 0.978,
            steps_per_s: 2000.0,
            memory,
            skipped: 0,
            final_scale: Some(65536.0),
            casts_per_step: 8.0,
            worst_underflow: 0.2188,
            mean_grad_underflow: 0.0965,
        }
    }

    fn memory() -> MemorySummary {
        let mut m = MemorySummary::default();
        m.add(MemoryRole::MasterWeights, DType::F32, 100);
        m.add(MemoryRole::ComputeCopies, DType::Bf16, 50);
        m.add(MemoryRole::Gradients, DType::F32, 100);
        m.add(MemoryRole::OptimizerState, DType::F32, 200);
        m.add(MemoryRole::SavedActivations, DType::F32, 7);
        m.add(MemoryRole::SavedActivations, DType::Bf16, 11);
        m.add(MemoryRole::Fp8Scaling, DType::F32, 3);
        m.add(MemoryRole::Workspace, DType::F32, 4096);
        m
    }

    #[test]
    fn every_role_has_a_column_and_every_column_a_definition() {
        let roles: Vec<MemoryRole> = MEMORY_COLUMNS.iter().map(|c| c.2).collect();
        for role in [
            MemoryRole::MasterWeights,
            MemoryRole::ComputeCopies,
            MemoryRole::Gradients,
            MemoryRole::OptimizerState,
            MemoryRole::SavedActivations,
            MemoryRole::Fp8Scaling,
            MemoryRole::Workspace,
        ] {
            assert!(roles.contains(&role), "{role:?} has no column");
        }
        let legend = legend();
        let runs = [run(PolicyChoice::F16Scaled, memory())];
        let header = |table: String| table.lines().next().unwrap().to_string();
        let headers = header(results_table(&runs)) + &header(memory_table(&runs));
        let names = RESULT_COLUMNS
            .iter()
            .map(|c| c.0)
            .chain(MEMORY_COLUMNS.iter().map(|c| c.0))
            .chain([TOTAL.0]);
        for name in names {
            assert!(headers.contains(name), "{name} is not a column");
            assert!(
                legend.contains(&format!("  {name} ")),
                "{name} is not defined"
            );
        }
    }

    #[test]
    fn the_csv_total_is_the_sum_of_its_role_columns() {
        let csv = summary_csv(&[run(PolicyChoice::Bf16, memory())]);
        let mut lines = csv.lines();
        let head: Vec<&str> = lines.next().unwrap().split(',').collect();
        let row: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(head.len(), row.len());
        let value = |col: &str| -> usize {
            let i = head.iter().position(|h| *h == col).unwrap();
            row[i].parse().unwrap()
        };
        let roles = [
            "master_bytes",
            "compute_copy_bytes",
            "gradient_bytes",
            "optimizer_bytes",
            "saved_activation_bytes",
            "fp8_state_bytes",
            "workspace_bytes",
        ];
        assert_eq!(
            roles.iter().map(|c| value(c)).sum::<usize>(),
            value("total_bytes")
        );
        assert_eq!(value("total_bytes"), 4567);
        assert_eq!(value("saved_activation_bytes"), 18);
    }

    #[test]
    fn the_memory_table_shows_each_role_and_the_total() {
        let table = memory_table(&[run(PolicyChoice::Bf16, memory())]);
        let row = table.lines().nth(1).unwrap();
        for cell in [
            "100B",
            "50B bf16",
            "200B",
            "7B f32+11B bf16",
            "3B",
            "4.0K",
            "4.5K",
        ] {
            assert!(row.contains(cell), "{cell} missing in {row}");
        }
        let mut empty = MemorySummary::default();
        empty.add(MemoryRole::MasterWeights, DType::F32, 100);
        let table = memory_table(&[run(PolicyChoice::Fp32, empty)]);
        assert!(table.lines().nth(1).unwrap().contains(" - "), "{table}");
    }

    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(1000), "1000B");
        assert_eq!(human_bytes(1536), "1.5K");
        assert_eq!(human_bytes(3 << 20), "3.0M");
    }
}
