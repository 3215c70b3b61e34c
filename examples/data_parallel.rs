//! Data-parallel training over MPI: every rank holds the model and trains on its shard of
//! each batch; gradients are averaged across ranks in the chosen wire precision. Runs
//! the digits MLP and the sorting GPT of the comparison under BF16 mixed precision once
//! per wire precision (F32, BF16, FP8 E5M2, FP8 E4M3) and prints, on rank 0, what each
//! costs on the wire and what it does to the loss.
//!
//! Run (needs Open MPI: `apt-get install libopenmpi-dev openmpi-bin libclang-dev`):
//! `cargo build --release --features mpi --example data_parallel && mpirun -np 2
//! target/release/examples/data_parallel` (add `--allow-run-as-root` as root;
//! `--help` for flags).

use mixprec::dist::{Collective, GradAllReduce, Mpi, WirePrecision};
use mixprec::nn::data::{Digits, SortTask};
use mixprec::nn::models::{DigitsMlp, Gpt, GptConfig, Model};
use mixprec::prelude::*;
use std::sync::Arc;

const HELP: &str = "data_parallel: train on N MPI ranks, once per wire precision

flags (defaults in brackets):
  --tasks LIST      digits,sort [both]
  --wires LIST      f32,bf16,e5m2,e4m3 [all]
  --steps N         optimizer steps per run [digits 300, sort 200]
  --batch N         global batch, split evenly over the ranks [64]";

struct Args {
    tasks: Vec<String>,
    wires: Vec<WirePrecision>,
    steps: Option<u64>,
    batch: usize,
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut a = Args {
        tasks: vec!["digits".into(), "sort".into()],
        wires: WirePrecision::ALL.to_vec(),
        steps: None,
        batch: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("{HELP}");
            std::process::exit(0);
        }
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--tasks" => a.tasks = v.split(',').map(String::from).collect(),
            "--wires" => {
                a.wires = v
                    .split(',')
                    .map(|w| WirePrecision::parse(w).ok_or(format!("unknown wire {w:?}")))
                    .collect::<std::result::Result<_, _>>()?
            }
            "--steps" => a.steps = Some(v.parse().map_err(|_| format!("--steps: {v:?}"))?),
            "--batch" => a.batch = v.parse().map_err(|_| format!("--batch: {v:?}"))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if let Some(t) = a.tasks.iter().find(|t| *t != "digits" && *t != "sort") {
        return Err(format!("unknown task {t:?} (digits, sort)"));
    }
    Ok(a)
}

/// What one run measured (on rank 0; losses averaged over the ranks).
struct Run {
    task: &'static str,
    wire: WirePrecision,
    final_loss: f64,
    accuracy: f64,
    steps_per_s: f64,
    payload: usize,
    wire_bytes: usize,
    skipped: usize,
}

/// The mean over the ranks of `x`.
fn mean_over_ranks(comm: &dyn Collective, x: f64) -> Result<f64> {
    let all = comm.all_gather(&x.to_le_bytes())?;
    let sum: f64 = all
        .chunks(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .sum();
    Ok(sum / comm.size() as f64)
}

/// Trains `model` for `steps` with `shard(step)` this rank's micro-batch.
fn train<M: Model<Policy = Bf16Mixed>>(
    (task, wire): (&'static str, WirePrecision),
    comm: &Arc<Mpi>,
    model: &M,
    master: MasterWeights,
    steps: u64,
    mut shard: impl FnMut(u64) -> Result<M::Batch>,
    test: &[M::Batch],
) -> Result<Run> {
    let cfg = TrainConfig {
        schedule: WarmupCosine {
            base: 3e-3,
            min: 3e-4,
            warmup: (steps / 20).max(1),
            total: steps,
        }
        .into(),
        seed: 1,
        ..TrainConfig::default()
    };
    let parallel = DataParallel::new(comm.clone(), GradAllReduce::new(wire));
    let mut trainer = Trainer::new(master, AdamW::new(AdamWConfig::default())?, NoScaler, cfg)?
        .with_data_parallel(parallel);
    let (mut losses, mut seconds, mut skipped) = (Vec::new(), 0.0, 0);
    while trainer.next_step() < steps {
        let batch = shard(trainer.next_step())?;
        let r = trainer.step_next(model, &[batch])?;
        losses.push(mean_over_ranks(comm.as_ref(), r.loss)?);
        seconds += r.seconds;
        skipped += usize::from(r.skipped);
    }
    let tail = (losses.len() / 10).max(1);
    let report = trainer
        .data_parallel()
        .and_then(|d| d.last_report())
        .unwrap_or_default();
    Ok(Run {
        task,
        wire,
        final_loss: losses.iter().rev().take(tail).sum::<f64>() / tail as f64,
        accuracy: trainer.accuracy(model, test)?,
        steps_per_s: steps as f64 / seconds.max(1e-9),
        payload: report.payload_bytes,
        wire_bytes: report.wire_bytes,
        skipped,
    })
}

fn main() -> Result<()> {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}\n\n{HELP}");
            std::process::exit(2);
        }
    };
    let comm = Arc::new(Mpi::init()?);
    let (rank, ranks) = (comm.rank(), comm.size());
    // The ranks share this machine's cores.
    mixprec::set_num_threads((mixprec::num_threads() / ranks).max(1));
    if args.batch % ranks != 0 {
        eprintln!("--batch {} does not split over {ranks} ranks", args.batch);
        std::process::exit(2);
    }
    let per_rank = args.batch / ranks;
    let mut runs = Vec::new();
    for task in &args.tasks {
        for &wire in &args.wires {
            let mut master = MasterWeights::new();
            let init = &mut Init::new(&mut master, 42);
            let run = if task == "digits" {
                let digits = Digits::load()?;
                let model = DigitsMlp::<Bf16Mixed>::new(init, 128)?;
                let mut batches = digits.train.batches(args.batch, 7)?;
                let test = [digits.test.all()?];
                let shard = |_| {
                    let rows = batches.next_batch();
                    digits
                        .train
                        .batch(&rows[rank * per_rank..(rank + 1) * per_rank])
                };
                let steps = args.steps.unwrap_or(300);
                train(
                    ("digits-mlp", wire),
                    &comm,
                    &model,
                    master,
                    steps,
                    shard,
                    &test,
                )?
            } else {
                let sort = SortTask { n: 6 };
                let cfg = GptConfig {
                    vocab: SortTask::VOCAB,
                    context: sort.context(),
                    dim: 64,
                    heads: 4,
                    layers: 2,
                    dropout: 0.0,
                };
                let model = Gpt::<Bf16Mixed>::new(init, cfg)?;
                let test = [sort.batch(512, 0x7e57)];
                // Each rank draws its own rows of the step's global batch.
                let shard = |s: u64| Ok(sort.batch(per_rank, (s << 8) ^ rank as u64));
                let steps = args.steps.unwrap_or(200);
                train(
                    ("sort-gpt", wire),
                    &comm,
                    &model,
                    master,
                    steps,
                    shard,
                    &test,
                )?
            };
            if rank == 0 {
                eprintln!(
                    "  {} wire {}: loss {:.4}",
                    run.task, run.wire, run.final_loss
                );
            }
            runs.push(run);
        }
    }
    if rank == 0 {
        println!(
            "\n{ranks} ranks, global batch {} ({per_rank} per rank), BF16 mixed precision, AdamW",
            args.batch
        );
        println!(
            "{:<11} {:<5} {:>12} {:>12} {:>10} {:>13} {:>8} {:>8} {:>5}",
            "task",
            "wire",
            "payload B",
            "sent B",
            "train loss",
            "vs f32 wire",
            "accuracy",
            "steps/s",
            "skip"
        );
        for r in &runs {
            let base = runs
                .iter()
                .find(|b| b.task == r.task && b.wire == WirePrecision::F32)
                .map(|b| b.final_loss);
            let delta = base.map_or("-".into(), |b| {
                format!("{:+.1}%", 100.0 * (r.final_loss / b - 1.0))
            });
            println!(
                "{:<11} {:<5} {:>12} {:>12} {:>10.4} {:>13} {:>7.1}% {:>8.1} {:>5}",
                r.task,
                r.wire.name(),
                r.payload,
                r.wire_bytes,
                r.final_loss,
                delta,
                100.0 * r.accuracy,
                r.steps_per_s,
                r.skipped
            );
        }
        println!(
            "\npayload: this rank's encoded gradients per step; sent: bytes each rank sends per \
             step (all-gather: (ranks - 1) x payload; reduce-scatter, which Exchange::Auto \
             picks for more ranks: (ranks - 1) / ranks x (payload + 4 B per gradient); plus \
             the agreement messages); \
             train loss: mean over the ranks, last 10% of the steps; accuracy: rank 0 on the \
             test split (every rank holds the same weights)."
        );
    }
    Ok(())
}
