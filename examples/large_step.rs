//! Times one training step of the two larger models of issue 17's peer table, where the
//! work is in big GEMMs rather than in per-op overhead:
//!
//! - `mlp`: 784-1024-1024-10 with ReLU, batch 256, cross-entropy, SGD (lr 0.01, no
//!   momentum, no clipping), on fixed random inputs;
//! - `gpt`: the sorting GPT at width 512, 8 heads, 6 blocks, 256 positions (128 numbers
//!   to sort), batch 8, AdamW and clipping at 1.0 as in the comparison.
//!
//! Policies `fp32` and `bf16` (F32 master weights; BF16 GEMMs). Prints the median ms per
//! step after a warmup. `benches/compare/train_large.py` runs the same models in JAX and
//! PyTorch on the same machine.
//!
//! Run: `cargo run --release --example large_step [-- --steps N --models mlp,gpt
//! --policies fp32,bf16]`.

use mixprec::amp::LossScaling;
use mixprec::nn::compare::{PolicyChoice, RunConfig, SortSize, run_sort};
use mixprec::prelude::*;
use mixprec::tensor::UnaryOp;

const USAGE: &str = "large_step [--steps N] [--models LIST] [--policies LIST]
  --steps N        measured steps per run (a warmup of N/5, at least 2, comes first) [20]
  --models LIST    comma-separated: mlp, gpt [mlp,gpt]
  --policies LIST  comma-separated: fp32, bf16 [fp32,bf16]";

/// The MLP of the peer table: 784-1024-1024-10, ReLU.
struct WideMlp<P: TrainPolicy> {
    layers: [Linear<P>; 3],
}

impl<P: TrainPolicy> WideMlp<P> {
    fn new(init: &mut Init<'_>) -> Result<Self> {
        Ok(WideMlp {
            layers: [
                Linear::new(init, "fc1", 784, 1024, true)?,
                Linear::new(init, "fc2", 1024, 1024, true)?,
                Linear::new(init, "fc3", 1024, 10, true)?,
            ],
        })
    }

    fn logits(&self, step: &Step, x: &Tensor<F32>) -> Result<Var<F32>> {
        let x = step.input(x.clone());
        let h = self.layers[0].forward(step, &x)?.unary(UnaryOp::Relu)?;
        let h = self.layers[1].forward(step, &h)?.unary(UnaryOp::Relu)?;
        self.layers[2].forward(step, &h)?.try_cast::<F32>()
    }
}

impl<P: TrainPolicy> Model for WideMlp<P> {
    type Batch = (Tensor<F32>, Indices);
    type Policy = P;

    fn loss(&self, step: &Step, (x, y): &Self::Batch) -> Result<Var<F32>> {
        self.logits(step, x)?.cross_entropy(y)
    }

    fn correct(&self, step: &Step, (x, y): &Self::Batch) -> Result<(usize, usize)> {
        count_correct(&self.logits(step, x)?, y)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median ms per step of the MLP under `P` with a plain SGD.
fn mlp_ms<P>(steps: u64, warmup: u64) -> Result<f64>
where
    P: TrainPolicy,
    P::Scaling: LossScaling<Scaler = NoScaler>,
{
    let mut master = MasterWeights::new();
    let model = WideMlp::<P>::new(&mut Init::new(&mut master, 1))?;
    let mut rng = Rng::seed(7);
    let x = Tensor::<F32>::randn(&[256, 784], 0.0, 1.0, &mut rng)?;
    let labels: Vec<usize> = (0..256).map(|i| (i * 7 + 3) % 10).collect();
    let batch = (x, Indices::from_vec(labels, &[256])?);
    let cfg = TrainConfig {
        schedule: ConstantLr(0.01).into(),
        clip_norm: None,
        ..TrainConfig::default()
    };
    let sgd = Sgd::new(SgdConfig::default())?;
    let mut trainer = Trainer::new(master, sgd, NoScaler, cfg)?;
    let mut ms = Vec::new();
    while trainer.next_step() < steps + warmup {
        let record = trainer.step_next(&model, std::slice::from_ref(&batch))?;
        if trainer.next_step() > warmup {
            ms.push(record.seconds * 1e3);
        }
    }
    Ok(median(ms))
}

/// Median ms per step of the larger sorting GPT under `policy`.
fn gpt_ms(policy: PolicyChoice, steps: u64, warmup: u64) -> Result<f64> {
    let cfg = RunConfig {
        steps: steps + warmup,
        batch: 8,
        micro_batches: 1,
        lr: 3e-4,
        seed: 1,
        loss_weight: 1.0,
    };
    let size = SortSize {
        n: 128,
        dim: 512,
        heads: 8,
        layers: 6,
    };
    let run = run_sort(policy, &cfg, size, &mut |_| {})?;
    Ok(median(
        run.records[warmup as usize..]
            .iter()
            .map(|s| s.seconds * 1e3)
            .collect(),
    ))
}

struct Args {
    steps: u64,
    models: Vec<String>,
    policies: Vec<PolicyChoice>,
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut args = Args {
        steps: 20,
        models: vec!["mlp".into(), "gpt".into()],
        policies: vec![PolicyChoice::Fp32, PolicyChoice::Bf16],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--steps" => match value.parse() {
                Ok(n) if n > 0 => args.steps = n,
                _ => return Err(format!("--steps: {value:?} is not a positive count")),
            },
            "--models" => {
                args.models = value.split(',').map(str::to_string).collect();
                if let Some(m) = args
                    .models
                    .iter()
                    .find(|m| !["mlp", "gpt"].contains(&m.as_str()))
                {
                    return Err(format!("unknown model {m:?}"));
                }
            }
            "--policies" => {
                args.policies = value
                    .split(',')
                    .map(|p| match PolicyChoice::parse(p) {
                        Some(c @ (PolicyChoice::Fp32 | PolicyChoice::Bf16)) => Ok(c),
                        _ => Err(format!("policy {p:?}: fp32 or bf16")),
                    })
                    .collect::<std::result::Result<_, _>>()?
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

fn main() -> Result<()> {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("error: {e}\n\n{USAGE}");
        std::process::exit(2);
    });
    let warmup = (args.steps / 5).max(2);
    println!(
        "ms per training step (median of {} after {warmup} warmup steps), {} threads, cpu {}",
        args.steps,
        mixprec::num_threads(),
        mixprec::dtype::cpu::level()
    );
    for model in &args.models {
        for &p in &args.policies {
            let ms = match (model.as_str(), p) {
                ("mlp", PolicyChoice::Fp32) => mlp_ms::<Fp32>(args.steps, warmup)?,
                ("mlp", _) => mlp_ms::<Bf16Mixed>(args.steps, warmup)?,
                _ => gpt_ms(p, args.steps, warmup)?,
            };
            println!("{model:<4} {:<5} {ms:.2} ms", p.name());
        }
    }
    Ok(())
}
