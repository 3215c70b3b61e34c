//! Defining a custom precision policy: six associated types and a loss-scaling choice.
//! This one runs GEMMs in FP16 (tensor-core friendly, more mantissa than BF16) but keeps
//! activations in BF16 (more range than FP16), with dynamic loss scaling for the FP16
//! gradients. The compiler checks the rest: master weights and precision-sensitive ops
//! (softmax, norms, losses) must be F32 or F64 — `type Sensitive = Bf16;` does not
//! compile (`Bf16: FullPrecision` is not satisfied).
//!
//! Run: `cargo run --release --example custom_policy`.

use mixprec::amp::DynamicScaling;
use mixprec::nn::data::Digits;
use mixprec::nn::models::DigitsMlp;
use mixprec::prelude::*;

/// FP16 GEMMs, BF16 activations, F32 master weights and sensitive ops, loss scaling.
struct F16GemmBf16Act;

impl Policy for F16GemmBf16Act {
    type Param = F32;
    type GemmFwd = F16;
    type GemmBwd = F16;
    type Activation = Bf16;
    type Sensitive = F32;
    type Scaling = DynamicScaling;
    fn name() -> &'static str {
        "f16-gemm-bf16-act"
    }
}

fn main() -> Result<()> {
    let digits = Digits::load()?;
    let mut master = MasterWeights::new();
    // The same model code runs under any policy: the policy is a type parameter.
    let model = DigitsMlp::<F16GemmBf16Act>::new(&mut Init::new(&mut master, 3), 128)?;
    let cfg = TrainConfig {
        schedule: WarmupCosine {
            base: 3e-3,
            min: 3e-4,
            warmup: 10,
            total: 300,
        }
        .into(),
        clip_norm: Some(1.0),
        seed: 1,
        loss_weight: 1.0,
    };
    let scaler = GradScaler::new(GradScalerConfig::default())?;
    let mut trainer = Trainer::new(master, AdamW::new(AdamWConfig::default())?, scaler, cfg)?;
    let mut batches = digits.train.batches(64, 1)?;
    for s in 0..300 {
        let b = digits.train.batch(&batches.next_batch())?;
        trainer.step(&model, s, &[b])?;
    }
    let all: Vec<usize> = (0..digits.test.len()).collect();
    let test = digits.test.batch(&all)?;
    println!(
        "{}: test accuracy {:.1}%, loss scale {}",
        F16GemmBf16Act::name(),
        100.0 * trainer.accuracy(&model, std::slice::from_ref(&test))?,
        trainer.scaler.scale()
    );

    // Where each op ran: the tape's precision report for one forward + backward.
    let step = Step::new(&trainer.master, false, 0);
    let small = digits.test.batch(&[0, 1, 2, 3])?;
    let loss = mixprec::nn::models::Model::loss(&model, &step, &small)?;
    loss.backward()?;
    println!("\nprecision report of one step (ops by output precision, cast points):\n");
    println!("{}", step.tape().report());
    Ok(())
}
