//! A custom layer with its own backward: RMSNorm, `y = g * x / sqrt(mean(x^2) + eps)` over
//! the last axis, written as one tape node (`Tape::custom`) whose backward is derived by
//! hand, checked against central differences in F64 with `gradcheck`, then trained inside
//! a model under BF16 mixed precision.
//!
//! Run: `cargo run --release --example custom_layer`.
//!
//! Backward, with `r = sqrt(mean(x^2) + eps)` per row of `n` elements:
//! `dx = g dy / r - x (sum_i dy_i g_i x_i) / (n r^3)`, `dg = sum over rows of dy x / r`.

use mixprec::autograd::{InputGrad, Saved};
use mixprec::nn::compare::human_bytes;
use mixprec::nn::data::Digits;
use mixprec::nn::models::count_correct;
use mixprec::prelude::*;
use std::marker::PhantomData;

/// The op: `x` `[.., n]`, gain `g` `[n]`, both in a full-precision type (F32 or F64 — the
/// norm is a precision-sensitive op, so the type system keeps it out of 16 bits).
fn rms_norm<D: FullPrecision>(x: &Var<D>, g: &Var<D>, eps: f64) -> Result<Var<D>> {
    let n = *x.shape().last().unwrap_or(&0);
    if g.shape() != [n] {
        return Err(mixprec::autograd::Error::invalid(
            "rms_norm",
            format!(
                "gain {:?} does not match the last axis of {:?}",
                g.shape(),
                x.shape()
            ),
        ));
    }
    let xv = x.value().clone();
    // 1 / r per row, kept for backward.
    let inv_r = xv.square().mean(&[-1], true)?.add_scalar(eps).rsqrt();
    let y = xv.mul(&inv_r)?.mul(g.value())?;
    let (hx, hg) = (x.handle(), g.handle());
    let gv = g.value().clone();
    let saved = vec![Saved::tensor(&xv), Saved::tensor(&inv_r)];
    Ok(x.tape()
        .custom("rms_norm", y, &[hx.into(), hg.into()], saved, move |dy| {
            let mut out = Vec::new();
            let xr = xv.mul(&inv_r)?; // x / r
            if hx.requires_grad() {
                let dyg = dy.mul(&gv)?;
                // sum_i dy_i g_i x_i / r per row, divided by n r^2 ...
                let dot = dyg.mul(&xr)?.mean(&[-1], true)?;
                // dx = (dy g - (x / r) mean(dy g x / r)) / r
                let dx = dyg.sub(&xr.mul(&dot)?)?.mul(&inv_r)?;
                out.push(InputGrad::new(hx, dx));
            }
            if hg.requires_grad() {
                let dg = dy.mul(&xr)?.sum_to_shape(gv.shape())?;
                out.push(InputGrad::new(hg, dg));
            }
            Ok(out)
        }))
}

/// RMSNorm as a layer: a named gain parameter, the op in F32 whatever the policy.
struct RmsNorm<P: TrainPolicy> {
    gain: ParamId,
    _p: PhantomData<P>,
}

impl<P: TrainPolicy> RmsNorm<P> {
    fn new(init: &mut Init<'_>, name: &str, dim: usize) -> Self {
        RmsNorm {
            gain: init.constant(&format!("{name}.gain"), &[dim], 1.0),
            _p: PhantomData,
        }
    }

    fn forward<A: Dtype>(&self, step: &Step, x: &Var<A>) -> Result<Var<F32>> {
        step.tape().scope("rms", || {
            rms_norm(&x.cast::<F32>(), step.param(self.gain), 1e-6)
        })
    }
}

/// A digits classifier with the custom layer between two linear layers.
struct Net<P: TrainPolicy> {
    fc1: Linear<P>,
    norm: RmsNorm<P>,
    fc2: Linear<P>,
}

impl<P: TrainPolicy> mixprec::nn::models::Model for Net<P> {
    type Batch = (Tensor<F32>, Indices);
    type Policy = P;

    fn loss(&self, step: &Step, (x, y): &Self::Batch) -> Result<Var<F32>> {
        let h = self.fc1.forward(step, &step.input(x.clone()))?;
        let h = self.norm.forward(step, &h)?.gelu();
        self.fc2.forward(step, &h)?.cast::<F32>().cross_entropy(y)
    }

    fn correct(&self, step: &Step, (x, y): &Self::Batch) -> Result<(usize, usize)> {
        let h = self.fc1.forward(step, &step.input(x.clone()))?;
        let h = self.norm.forward(step, &h)?.gelu();
        count_correct(&self.fc2.forward(step, &h)?.cast::<F32>(), y)
    }

    fn fp8_states(&self) -> Vec<(String, mixprec::amp::Fp8Scaling)> {
        let mut out = self.fc1.fp8_states();
        out.extend(self.fc2.fp8_states());
        out
    }
}

fn main() -> Result<()> {
    // 1. The hand-written backward against central differences, in F64.
    let mut rng = Rng::seed(3);
    let x = Tensor::<F64>::randn(&[3, 5], 0.0, 1.0, &mut rng)?;
    let g = Tensor::<F64>::randn(&[5], 1.0, 0.3, &mut rng)?;
    let w = Tensor::<F64>::randn(&[3, 5], 0.0, 1.0, &mut rng)?;
    let report = gradcheck(
        |v| {
            // A weighted sum makes every output element matter.
            let y = rms_norm(&v[0], &v[1], 1e-6)?;
            Ok(y.mul(&v[0].tape().constant(w.clone()))?.sum_all())
        },
        &[x, g],
        1e-6,
        1e-8,
        1e-6,
    )?;
    println!(
        "gradcheck of the custom backward (F64): max abs error {:.2e}, passed: {}",
        report.max_abs_error,
        report.passed()
    );
    assert!(report.passed(), "{report:?}");

    // 2. Train with it under BF16 mixed precision.
    let digits = Digits::load()?;
    let mut master = MasterWeights::new();
    let mut init = Init::new(&mut master, 7);
    let net = Net::<Bf16Mixed> {
        fc1: Linear::new(&mut init, "fc1", 64, 64, true)?,
        norm: RmsNorm::new(&mut init, "norm", 64),
        fc2: Linear::new(&mut init, "fc2", 64, 10, true)?,
    };
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
    let mut trainer = Trainer::new(master, AdamW::new(AdamWConfig::default())?, NoScaler, cfg)?;
    let mut batches = digits.train.batches(64, 1)?;
    for s in 0..300 {
        let b = digits.train.batch(&batches.next_batch())?;
        let r = trainer.step(&net, s, &[b])?;
        if s % 100 == 99 {
            println!("step {:>3}: loss {:.4}", s + 1, r.loss);
        }
    }
    let all: Vec<usize> = (0..digits.test.len()).collect();
    let acc = trainer.accuracy(&net, &[digits.test.batch(&all)?])?;
    println!(
        "test accuracy with the custom RMSNorm layer under BF16: {:.1}%",
        100.0 * acc
    );
    if let Some(m) = trainer.memory() {
        println!(
            "saved for backward at the peak: {}",
            human_bytes(m.role(MemoryRole::SavedActivations))
        );
    }
    Ok(())
}
