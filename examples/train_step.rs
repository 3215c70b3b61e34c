//! Times one training step (forward, backward, unscale, clip, AdamW on the F32 master
//! weights, scaler update) of both comparison models under each policy: the median over
//! measured steps after a warmup. `benches/compare/train_jax.py` runs the same models in
//! JAX and prints the ratios; `cargo bench -p mixprec --bench train_step` is the
//! criterion version.
//!
//! Run: `cargo run --release --example train_step [-- --steps N --policies LIST]`.

use mixprec::nn::compare::{DigitsSize, PolicyChoice, RunConfig, SortSize, run_digits, run_sort};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

const USAGE: &str = "train_step [--steps N] [--policies LIST]
  --steps N        measured steps per run (a warmup of N/6, at least 2, comes first) [60]
  --policies LIST  comma-separated: fp32, bf16, fp16-scaled, ... [all]";

/// The flags: steps and policies, or what was wrong with them.
fn parse_args() -> Result<(u64, Vec<PolicyChoice>), String> {
    let mut steps = 60u64;
    let mut policies = PolicyChoice::ALL.to_vec();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--steps" => match value.parse() {
                Ok(n) if n > 0 => steps = n,
                _ => return Err(format!("--steps: {value:?} is not a positive count")),
            },
            "--policies" => {
                policies = value
                    .split(',')
                    .map(|p| PolicyChoice::parse(p).ok_or(format!("unknown policy {p:?}")))
                    .collect::<Result<_, _>>()?
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok((steps, policies))
}

fn main() {
    let (steps, policies) = parse_args().unwrap_or_else(|e| {
        eprintln!("error: {e}\n\n{USAGE}");
        std::process::exit(2);
    });
    let warmup = (steps / 6).max(2);
    let cfg = RunConfig {
        steps: steps + warmup,
        batch: 64,
        micro_batches: 1,
        lr: 3e-3,
        seed: 1,
        loss_weight: 1.0,
    };
    let timed = |r: mixprec::nn::compare::RunSummary| {
        median(
            r.records[warmup as usize..]
                .iter()
                .map(|s| s.seconds * 1e3)
                .collect(),
        )
    };
    println!("ms per training step (median of {steps} after {warmup} warmup steps), batch 64");
    for &p in &policies {
        let r = run_digits(p, &cfg, DigitsSize { hidden: 128 }, &mut |_| {}).expect("digits run");
        println!("digits-mlp {:<15} {:.4} ms", p.name(), timed(r));
    }
    let size = SortSize {
        n: 6,
        dim: 64,
        heads: 4,
        layers: 2,
    };
    for &p in &policies {
        let r = run_sort(p, &cfg, size, &mut |_| {}).expect("sort run");
        println!("sort-gpt   {:<15} {:.4} ms", p.name(), timed(r));
    }
}
