//! Data-parallel training over MPI: every rank holds the model and trains on its shard of
//! each batch; gradients are averaged across ranks in the chosen wire precision. Runs
//! the digits MLP and the sorting GPT of the comparison under BF16 mixed precision once
//! per wire precision (F32, BF16, FP8 E5M2, FP8 E4M3), bucket size and overlap setting
//! (the exchange after backward, or during it) and prints, on rank 0, what each costs
//! on the wire, what it does to the loss, and the step time.
//!
//! Run (needs Open MPI: `apt-get install libopenmpi-dev openmpi-bin libclang-dev`):
//! `cargo build --release --features mpi --example data_parallel && mpirun -np 2
//! target/release/examples/data_parallel` (add `--allow-run-as-root` as root;
//! `--help` for flags).

use mixprec::dist::{Collective, DEFAULT_BUCKET_BYTES, GradAllReduce, Mpi, WirePrecision};
use mixprec::nn::data::{Digits, SortTask};
use mixprec::nn::models::{DigitsMlp, Gpt, GptConfig, Model};
use mixprec::prelude::*;
use std::sync::Arc;

const HELP: &str = "data_parallel: train on N MPI ranks, once per wire precision

flags (defaults in brackets):
  --tasks LIST      digits,sort [both]
  --wires LIST      f32,bf16,e5m2,e4m3 [all]
  --buckets LIST    bucket sizes in KiB [25600: PyTorch DDP's 25 MiB]
  --overlap LIST    off,on: exchange after backward, or during it [off,on]
  --steps N         optimizer steps per run [digits 300, sort 200]
  --batch N         global batch, split evenly over the ranks [64]";

struct Args {
    tasks: Vec<String>,
    wires: Vec<WirePrecision>,
    buckets: Vec<usize>,
    overlap: Vec<bool>,
    steps: Option<u64>,
    batch: usize,
}

/// How one run exchanges gradients.
#[derive(Clone, Copy)]
struct Setting {
    wire: WirePrecision,
    bucket_bytes: usize,
    overlap: bool,
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut a = Args {
        tasks: vec!["digits".into(), "sort".into()],
        wires: WirePrecision::ALL.to_vec(),
        buckets: vec![DEFAULT_BUCKET_BYTES >> 10],
        overlap: vec![false, true],
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
            "--buckets" => {
                a.buckets = v
                    .split(',')
                    .map(|b| match b.parse::<usize>() {
                        Ok(k) if k > 0 => Ok(k),
                        _ => Err(format!("--buckets: {b:?} is not a positive KiB count")),
                    })
                    .collect::<std::result::Result<_, _>>()?
            }
            "--overlap" => {
                a.overlap = v
                    .split(',')
                    .map(|o| match o {
                        "off" => Ok(false),
                        "on" => Ok(true),
                        _ => Err(format!("--overlap: {o:?} (off, on)")),
                    })
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
    setting: Setting,
    final_loss: f64,
    accuracy: f64,
    /// Median step time on rank 0, milliseconds (the first 10% of steps left out).
    step_ms: f64,
    /// Median time the exchange added to a step on rank 0 (after backward), ms.
    exposed_ms: f64,
    payload: usize,
    wire_bytes: usize,
    buckets: usize,
    during_backward: usize,
    skipped: usize,
}

/// The median of `xs` without their first 10% (warm-up).
fn median_after_warmup(mut xs: Vec<f64>) -> f64 {
    let mut timed = xs.split_off(xs.len() / 10);
    timed.sort_by(f64::total_cmp);
    timed.get(timed.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Trains `model` for `steps` with `shard(step)` this rank's micro-batch.
fn train<M: Model<Policy = Bf16Mixed>>(
    (task, setting): (&'static str, Setting),
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
    let op = GradAllReduce::new(setting.wire).with_bucket_bytes(setting.bucket_bytes)?;
    let parallel = DataParallel::new(comm.clone(), op).with_overlap(setting.overlap);
    let mut trainer = Trainer::new(master, AdamW::new(AdamWConfig::default())?, NoScaler, cfg)?
        .with_data_parallel(parallel);
    let (mut losses, mut seconds, mut exposed, mut skipped) =
        (Vec::new(), Vec::new(), Vec::new(), 0);
    while trainer.next_step() < steps {
        let batch = shard(trainer.next_step())?;
        let r = trainer.step_next(model, &[batch])?;
        losses.push(comm.mean_over_ranks(r.loss)?);
        seconds.push(r.seconds);
        let report = trainer.data_parallel().and_then(|d| d.last_report());
        exposed.push(report.map_or(0.0, |r| r.exposed.as_secs_f64()));
        skipped += usize::from(r.skipped);
    }
    let tail = (losses.len() / 10).max(1);
    let report = trainer
        .data_parallel()
        .and_then(|d| d.last_report())
        .unwrap_or_default();
    Ok(Run {
        task,
        setting,
        final_loss: losses.iter().rev().take(tail).sum::<f64>() / tail as f64,
        accuracy: trainer.accuracy(model, test)?,
        step_ms: 1e3 * median_after_warmup(seconds),
        exposed_ms: 1e3 * median_after_warmup(exposed),
        payload: report.payload_bytes,
        wire_bytes: report.wire_bytes,
        buckets: report.buckets,
        during_backward: report.during_backward,
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
    let mut settings = Vec::new();
    for &wire in &args.wires {
        for &kib in &args.buckets {
            for &overlap in &args.overlap {
                settings.push(Setting {
                    wire,
                    bucket_bytes: kib << 10,
                    overlap,
                });
            }
        }
    }
    for task in &args.tasks {
        for &setting in &settings {
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
                    ("digits-mlp", setting),
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
                    ("sort-gpt", setting),
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
                    "  {} wire {} buckets {} KiB overlap {}: loss {:.4}, {:.2} ms/step",
                    run.task,
                    setting.wire,
                    setting.bucket_bytes >> 10,
                    setting.overlap,
                    run.final_loss,
                    run.step_ms
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
            "{:<11} {:<5} {:>7} {:>7} {:>7} {:>11} {:>11} {:>10} {:>11} {:>8} {:>8} {:>8} {:>4}",
            "task",
            "wire",
            "bucket",
            "overlap",
            "buckets",
            "payload B",
            "sent B",
            "train loss",
            "vs f32 wire",
            "accuracy",
            "ms/step",
            "exch ms",
            "skip"
        );
        for r in &runs {
            let base = runs
                .iter()
                .find(|b| b.task == r.task && b.setting.wire == WirePrecision::F32)
                .map(|b| b.final_loss);
            let delta = base.map_or("-".into(), |b| {
                format!("{:+.1}%", 100.0 * (r.final_loss / b - 1.0))
            });
            let overlap = if r.setting.overlap {
                format!("{}/{}", r.during_backward, r.buckets)
            } else {
                "off".into()
            };
            println!(
                "{:<11} {:<5} {:>7} {:>7} {:>7} {:>11} {:>11} {:>10.4} {:>11} {:>7.1}% {:>8.2} {:>8.3} {:>4}",
                r.task,
                r.setting.wire.name(),
                format!("{}K", r.setting.bucket_bytes >> 10),
                overlap,
                r.buckets,
                r.payload,
                r.wire_bytes,
                r.final_loss,
                delta,
                100.0 * r.accuracy,
                r.step_ms,
                r.exposed_ms,
                r.skipped
            );
        }
        println!(
            "\npayload: this rank's encoded gradients per step; sent: bytes each rank sends per \
             step (all-gather: (ranks - 1) x payload; reduce-scatter, which Exchange::Auto \
             picks for more ranks: (ranks - 1) / ranks x (payload + 4 B per gradient); plus \
             the agreement messages); overlap: off, or buckets exchanged during backward / \
             buckets; ms/step: median step time on rank 0 (first 10% of steps left out); \
             exch ms: median time the exchange added to a step after backward, rank 0; \
             train loss: mean over the ranks, last 10% of the steps; accuracy: rank 0 on the \
             test split (every rank holds the same weights)."
        );
    }
    Ok(())
}
