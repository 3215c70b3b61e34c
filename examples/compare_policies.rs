//! Trains the same two models under every precision policy and shows, side by side, what
//! each costs and what it changes: (a) an MLP on the 8x8 digits (embedded data), (b) a
//! small GPT-style transformer that learns to sort digit strings (generated data).
//!
//! Policies: FP32, BF16 mixed, FP16 mixed with dynamic loss scaling, FP16 without loss
//! scaling, FP8 hybrid (E4M3 forward / E5M2 gradients, delayed scaling) and FP8 with the
//! first and last layers in FP32 (a per-layer override). A third experiment trains the MLP
//! with its loss multiplied by 2^-16 — a small loss, as from averaging over very many
//! tokens — where FP16 without loss scaling diverges and ends far behind while the scaler
//! keeps FP16 on par.
//!
//! Run: `cargo run --release --example compare_policies` (about 30 s of training and a
//! minute of compiling on two cores).
//! Writes `metrics.csv` (every step of every run), `summary.csv` and `loss.svg` (the loss
//! curves) into the output folder. `--help` lists the flags.

use mixprec::nn::compare::{
    DigitsSize, PolicyChoice, RunConfig, RunSummary, SortSize, legend, memory_table, metrics_csv,
    results_table, run_digits, run_sort, summary_csv, svg_loss_plot,
};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

/// The loss weight of the small-loss experiment.
const SMALL_LOSS: f32 = 1.0 / 65536.0;

struct Args {
    policies: Vec<PolicyChoice>,
    tasks: Vec<&'static str>,
    mlp_steps: u64,
    gpt_steps: u64,
    batch: usize,
    micro_batches: usize,
    hidden: usize,
    dim: usize,
    layers: usize,
    heads: usize,
    sort_len: usize,
    seed: u64,
    loss_weight: f32,
    out: PathBuf,
}

const HELP: &str = "compare_policies: train under each precision policy and compare

flags (defaults in brackets):
  --policies LIST     comma-separated, from: fp32,bf16,fp16-scaled,fp16-unscaled,fp8,fp8+fp32-edges [all]
  --tasks LIST        digits,sort,small-loss [all three; small-loss is the digits MLP with
                      the loss times 2^-16, under the FP32/BF16/FP16 policies]
  --mlp-steps N       optimizer steps for the digits MLP [600]
  --gpt-steps N       optimizer steps for the sorting transformer [300]
  --batch N           rows per micro-batch [64]
  --micro-batches N   micro-batches per step (gradient accumulation) [1]
  --hidden N          MLP hidden width [128]
  --dim N             transformer width [64]
  --layers N          transformer blocks [2]
  --heads N           attention heads [4]
  --sort-len N        digits to sort [6]
  --seed N            seed of weights, data order, dropout [1]
  --loss-weight W     multiply the loss by W before backward (a small loss) [1]
  --out DIR           output folder [target/compare-policies]";

fn parse_args() -> Result<Args, String> {
    let (run, mlp, gpt) = (
        RunConfig::default(),
        DigitsSize::default(),
        SortSize::default(),
    );
    let mut a = Args {
        policies: PolicyChoice::ALL.to_vec(),
        tasks: vec!["digits", "sort", "small-loss"],
        mlp_steps: run.steps,
        gpt_steps: 300,
        batch: run.batch,
        micro_batches: run.micro_batches,
        hidden: mlp.hidden,
        dim: gpt.dim,
        layers: gpt.layers,
        heads: gpt.heads,
        sort_len: gpt.n,
        seed: run.seed,
        loss_weight: run.loss_weight,
        out: PathBuf::from("target/compare-policies"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("{HELP}\n\nThe tables it prints:\n{}", legend());
            std::process::exit(0);
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: {v:?} is not a number"))
        };
        match flag.as_str() {
            "--policies" => {
                a.policies = value
                    .split(',')
                    .map(|p| PolicyChoice::parse(p).ok_or(format!("unknown policy {p:?}")))
                    .collect::<Result<_, _>>()?
            }
            "--tasks" => {
                a.tasks = value
                    .split(',')
                    .map(|t| match t {
                        "digits" => Ok("digits"),
                        "sort" => Ok("sort"),
                        "small-loss" => Ok("small-loss"),
                        _ => Err(format!("unknown task {t:?} (digits, sort, small-loss)")),
                    })
                    .collect::<Result<_, _>>()?
            }
            "--mlp-steps" => a.mlp_steps = num(&value)?,
            "--gpt-steps" => a.gpt_steps = num(&value)?,
            "--batch" => a.batch = num(&value)? as usize,
            "--micro-batches" => a.micro_batches = num(&value)? as usize,
            "--hidden" => a.hidden = num(&value)? as usize,
            "--dim" => a.dim = num(&value)? as usize,
            "--layers" => a.layers = num(&value)? as usize,
            "--heads" => a.heads = num(&value)? as usize,
            "--sort-len" => a.sort_len = num(&value)? as usize,
            "--seed" => a.seed = num(&value)?,
            "--loss-weight" => {
                a.loss_weight = value
                    .parse()
                    .ok()
                    .filter(|w: &f32| w.is_finite() && *w > 0.0)
                    .ok_or(format!("--loss-weight: {value:?} is not a positive number"))?
            }
            "--out" => a.out = PathBuf::from(value),
            _ => return Err(format!("unknown flag {flag} (see --help)")),
        }
    }
    if a.batch == 0 || a.micro_batches == 0 || a.sort_len < 2 {
        return Err("--batch and --micro-batches must be >= 1, --sort-len >= 2".into());
    }
    Ok(a)
}

/// A progress bar on a terminal, a plain line every 10% otherwise.
struct Progress {
    label: String,
    total: u64,
    tty: bool,
    started: Instant,
}

impl Progress {
    fn show(&self, step: u64, loss: f64, scale: Option<f32>) {
        let done = step + 1;
        let scale = scale.map_or(String::new(), |s| format!(" scale {s}"));
        if self.tty {
            let width = 30;
            let filled = (done * width / self.total.max(1)) as usize;
            eprint!(
                "\r  {:<28} [{}{}] {done:>4}/{} loss {loss:<9.4}{scale}   ",
                self.label,
                "#".repeat(filled),
                ".".repeat(width as usize - filled),
                self.total
            );
            if done == self.total {
                eprintln!(" {:.1}s", self.started.elapsed().as_secs_f64());
            }
            let _ = std::io::stderr().flush();
        } else if done == self.total || done.is_multiple_of((self.total / 10).max(1)) {
            eprintln!(
                "  {:<28} step {done:>4}/{} loss {loss:.4}{scale}",
                self.label, self.total
            );
        }
    }
}

fn write_outputs(out: &std::path::Path, runs: &[RunSummary]) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("metrics.csv"), metrics_csv(runs))?;
    std::fs::write(out.join("summary.csv"), summary_csv(runs))?;
    std::fs::write(out.join("loss.svg"), svg_loss_plot(runs))
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}\n\n{HELP}");
            std::process::exit(2);
        }
    };
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut runs = Vec::new();
    for &task in &args.tasks {
        let (steps, weight, policies): (u64, f32, Vec<PolicyChoice>) = match task {
            "digits" => (args.mlp_steps, args.loss_weight, args.policies.clone()),
            "sort" => (args.gpt_steps, args.loss_weight, args.policies.clone()),
            // FP16's problem case: the same MLP with a tiny loss.
            _ => (
                args.mlp_steps,
                args.loss_weight * SMALL_LOSS,
                args.policies
                    .iter()
                    .copied()
                    .filter(|p| !matches!(p, PolicyChoice::Fp8 | PolicyChoice::Fp8Fp32Edges))
                    .collect(),
            ),
        };
        let cfg = RunConfig {
            steps,
            batch: args.batch,
            micro_batches: args.micro_batches,
            lr: 3e-3,
            seed: args.seed,
            loss_weight: weight,
        };
        let what = match task {
            "sort" => format!(
                "sorting GPT ({} digits, width {}, {} blocks, {} heads)",
                args.sort_len, args.dim, args.layers, args.heads
            ),
            "digits" => format!("digits MLP (64-{0}-{0}-10)", args.hidden),
            _ => "digits MLP with the loss multiplied by 2^-16 (a small loss: what loss scaling is for)"
                .to_string(),
        };
        eprintln!(
            "{what}: {steps} steps x {} micro-batch(es) of {}",
            args.micro_batches, args.batch
        );
        for policy in policies {
            let bar = Progress {
                label: format!("{task} {policy}"),
                total: steps,
                tty,
                started: Instant::now(),
            };
            let mut progress = |r: &mixprec::nn::StepRecord| bar.show(r.step, r.loss, r.loss_scale);
            let result = if task == "sort" {
                let size = SortSize {
                    n: args.sort_len,
                    dim: args.dim,
                    heads: args.heads,
                    layers: args.layers,
                };
                run_sort(policy, &cfg, size, &mut progress)
            } else {
                run_digits(
                    policy,
                    &cfg,
                    DigitsSize {
                        hidden: args.hidden,
                    },
                    &mut progress,
                )
            };
            match result {
                Ok(r) => runs.push(r),
                Err(e) => {
                    eprintln!("error: {task} under {policy}: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
    println!("\n{}", results_table(&runs));
    println!(
        "\nmemory by role at the last step:\n{}",
        memory_table(&runs)
    );
    println!("\n{}", legend());
    match write_outputs(&args.out, &runs) {
        Ok(()) => println!(
            "wrote {0}/metrics.csv, {0}/summary.csv and {0}/loss.svg ({1:.0} s in all)",
            args.out.display(),
            started.elapsed().as_secs_f64()
        ),
        Err(e) => {
            eprintln!("error: writing {}: {e}", args.out.display());
            std::process::exit(1);
        }
    }
}
