//! Trains the digits MLP with checkpoints, and resumes from the newest one after a crash
//! or a kill: however often it is stopped, the run ends bit for bit where an
//! uninterrupted one ends.
//!
//! Run: `cargo run --release -p mixprec --bin resumable_training -- --dir ckpt`
//! Options: `--steps N` (300), `--every K` (save every K steps, 20), `--keep N` (newest
//! checkpoints kept, 3), `--policy fp32|bf16|f16|fp8` (bf16).
//!
//! Kill it (Ctrl-C, `kill -9`) and run the same command again: it continues from the
//! newest checkpoint in `--dir` (weights, AdamW moments, loss scaler, FP8 histories, step
//! counter and data order all come from the file). At the end it writes the whole
//! training state to `<dir>/final.safetensors` and prints the test accuracy.

use mixprec::amp::LossScaling;
use mixprec::autograd::Result;
use mixprec::nn::checkpoint::{Checkpoints, TensorFile};
use mixprec::nn::data::{Batches, Digits};
use mixprec::nn::models::DigitsMlp;
use mixprec::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;

type ScalerOf<P> = <<P as Policy>::Scaling as LossScaling>::Scaler;

/// Name of the data order in the state file.
const DATA: &str = "train";

struct Args {
    dir: PathBuf,
    steps: u64,
    every: u64,
    keep: usize,
    policy: String,
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut args = Args {
        dir: PathBuf::new(),
        steps: 300,
        every: 20,
        keep: 3,
        policy: "bf16".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: {value:?} is not a number"))
        };
        match flag.as_str() {
            "--dir" => args.dir = PathBuf::from(&value),
            "--steps" => args.steps = number()?,
            "--every" => args.every = number()?.max(1),
            "--keep" => args.keep = number()? as usize,
            "--policy" => args.policy = value,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if args.dir.as_os_str().is_empty() {
        return Err("--dir is required (the checkpoint folder)".into());
    }
    Ok(args)
}

/// The training state and the data order, as one file.
fn state_file<P: TrainPolicy>(
    t: &Trainer<AdamW, ScalerOf<P>>,
    model: &DigitsMlp<P>,
    data: &Batches,
) -> Result<TensorFile> {
    let mut file = t.state_file(model)?;
    data.write_state(&mut file, DATA);
    Ok(file)
}

fn run<P: TrainPolicy>(args: &Args) -> Result<()> {
    let digits = Digits::load()?;
    let mut master = MasterWeights::new();
    let model = DigitsMlp::<P>::new(&mut Init::new(&mut master, 7), 64)?;
    let cfg = TrainConfig {
        schedule: WarmupCosine {
            base: 3e-3,
            min: 1e-4,
            warmup: 10,
            total: args.steps,
        }
        .into(),
        ..TrainConfig::default()
    };
    let opt = AdamW::new(AdamWConfig::default())?;
    let mut trainer = Trainer::new(master, opt, ScalerOf::<P>::with_defaults()?, cfg)?;
    let mut data = digits.train.batches(64, 3)?;
    let checkpoints = Checkpoints::new(&args.dir, "state")?.keep_last(args.keep);
    match checkpoints.load_latest()? {
        Some((step, file)) => {
            trainer.load_state_file(&model, &file)?;
            data.read_state(&file, DATA)?;
            println!("resumed from step {step}");
        }
        None => println!("fresh start ({})", P::name()),
    }
    let mut last_loss = f64::NAN;
    while trainer.next_step() < args.steps {
        let batch = digits.train.batch(&data.next_batch())?;
        last_loss = trainer.step_next(&model, &[batch])?.loss;
        let done = trainer.next_step();
        if done % args.every == 0 || done == args.steps {
            checkpoints.save(done, &state_file(&trainer, &model, &data)?)?;
            println!("saved step {done} (loss {last_loss:.4})");
        }
    }
    state_file(&trainer, &model, &data)?.save(args.dir.join("final.safetensors"))?;
    let accuracy = trainer.accuracy(&model, &[digits.test.all()?])?;
    println!(
        "done: {} steps, last loss {last_loss:.4}, test accuracy {:.1}%",
        args.steps,
        100.0 * accuracy
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("resumable_training: {e}");
            return ExitCode::from(2);
        }
    };
    let out = match args.policy.as_str() {
        "fp32" => run::<Fp32>(&args),
        "bf16" => run::<Bf16Mixed>(&args),
        "f16" => run::<F16Mixed>(&args),
        "fp8" => run::<Fp8Hybrid>(&args),
        p => {
            eprintln!("resumable_training: unknown policy {p:?} (fp32, bf16, f16, fp8)");
            return ExitCode::from(2);
        }
    };
    match out {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("resumable_training: {e}");
            ExitCode::FAILURE
        }
    }
}
