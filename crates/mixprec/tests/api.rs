//! The everyday API through the prelude alone: operators, printing, `Debug` of the
//! building blocks, the trainer counting steps, whole-split evaluation.

use mixprec::nn::data::Digits;
use mixprec::nn::models::DigitsMlp;
use mixprec::prelude::*;

#[test]
fn operators_and_printing_through_the_prelude() -> Result<(), Box<dyn std::error::Error>> {
    let a = Tensor::<Bf16>::from_f32(&[1.0, 2.0, 3.0, 4.0], &[2, 2])?;
    let b = Tensor::<Bf16>::from_f32(&[0.5, 0.25], &[2])?;
    let c = (&a - &b) * 2.0 + 1.0;
    assert_eq!(c.to_f32_vec(), vec![2.0, 4.5, 6.0, 8.5]);
    assert_eq!(
        c.to_string(),
        "tensor([[2.0000, 4.5000],\n        [6.0000, 8.5000]], shape=[2, 2], dtype=bf16, device=cpu)"
    );
    let tape = Tape::new();
    let x = tape.leaf(a.cast::<F32>());
    let y = -(&x * &x) / 2.0;
    let g = y.sum_all().backward()?;
    assert_eq!(
        g.get(&x).unwrap().to_f32_vec(),
        vec![-1.0, -2.0, -3.0, -4.0]
    );
    assert!(
        x.to_string()
            .ends_with("dtype=f32, device=cpu, requires_grad=true)")
    );
    assert!(!y.to_string().contains("requires_grad=false"));
    Ok(())
}

#[test]
fn building_blocks_print_with_debug() -> Result<(), Box<dyn std::error::Error>> {
    let mut master = MasterWeights::new();
    let mut init = Init::new(&mut master, 1);
    assert!(format!("{init:?}").starts_with("Init { parameters: 0"));
    let model = DigitsMlp::<Bf16Mixed>::new(&mut init, 16)?;
    let text = format!("{model:?}");
    for want in [
        "DigitsMlp",
        "Linear",
        "\"fc_hidden\"",
        "in_features: 16",
        "bf16-mixed",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
    let ln = LayerNorm::<Fp32>::new(&mut init, "ln", 8)?;
    assert!(format!("{ln:?}").contains("LayerNorm { name: \"ln\", dim: 8"));
    let attn = CausalSelfAttention::<Fp32>::new(&mut init, "attn", 8, 2)?;
    assert!(format!("{attn:?}").contains("heads: 2"));
    let opt = AdamW::new(AdamWConfig::default())?;
    let trainer = Trainer::new(master, opt, NoScaler, TrainConfig::default())?;
    let text = format!("{trainer:?}");
    assert!(
        text.starts_with("Trainer { next_step: 0, parameters: "),
        "{text}"
    );
    let step = Step::new(&trainer.master, true, 0);
    assert!(format!("{step:?}").starts_with("Step { training: true"));
    let ac = Autocast::<Fp8Hybrid>::new(step.tape());
    assert!(format!("{ac:?}").contains("fp8-hybrid"));
    Ok(())
}

#[test]
fn the_trainer_counts_steps_and_evaluates_whole_splits() -> Result<(), Box<dyn std::error::Error>> {
    let digits = Digits::load()?;
    let mut master = MasterWeights::new();
    let model = DigitsMlp::<Fp32>::new(&mut Init::new(&mut master, 2), 16)?;
    let opt = AdamW::new(AdamWConfig::default())?;
    let mut trainer = Trainer::new(master, opt, NoScaler, TrainConfig::default())?;
    let mut data = digits.train.batches(32, 0)?;
    for want in 0..3 {
        let r = trainer.step_next(&model, &[digits.train.batch(&data.next_batch())?])?;
        assert_eq!(r.step, want);
        assert!(r.to_string().starts_with(&format!("step {want} loss ")));
    }
    assert_eq!(trainer.next_step(), 3);
    let (x, y) = digits.test.all()?;
    assert_eq!(x.shape()[0], digits.test.len());
    let accuracy = trainer.accuracy(&model, &[(x, y)])?;
    assert!((0.0..=1.0).contains(&accuracy));
    Ok(())
}

#[test]
fn approx_comparisons_and_strategies_through_the_facade() {
    use mixprec::approx::{assert_relative_eq, relative_ne};
    use mixprec::tensor::strategies::{finite_tensor, shape};
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let x = Tensor::<F32>::from_f32(&[0.1, -2.0, 3e-3], &[3]).unwrap();
    let y = x.cast::<Bf16>();
    assert_relative_eq!(y.cast::<F32>(), x, max_relative = 2f64.powi(-8));
    assert!(relative_ne!(y.cast::<F32>(), x)); // F32's own preset is tighter
    let mut runner = TestRunner::deterministic();
    let t = finite_tensor::<E5M2>(shape(2, 3))
        .new_tree(&mut runner)
        .unwrap()
        .current();
    assert_relative_eq!(t.clone(), t);
}

/// Every config has a `Default`, with the values its docs state.
#[test]
fn every_config_has_its_documented_default() {
    use mixprec::nn::compare::{DigitsSize, RunConfig, SortSize};
    use mixprec::nn::models::GptConfig;
    let gpt = GptConfig::default();
    assert_eq!(
        (gpt.vocab, gpt.context, gpt.dim, gpt.heads, gpt.layers),
        (50257, 1024, 768, 12, 12)
    );
    let run = RunConfig::default();
    assert_eq!(
        (run.steps, run.batch, run.micro_batches, run.seed),
        (600, 64, 1, 1)
    );
    assert_eq!((run.lr, run.loss_weight), (3e-3, 1.0));
    assert_eq!(DigitsSize::default().hidden, 128);
    let sort = SortSize::default();
    assert_eq!((sort.n, sort.dim, sort.heads, sort.layers), (6, 64, 4, 2));
    assert_eq!(TrainConfig::default().clip_norm, Some(1.0));
    assert_eq!(AdamWConfig::default().weight_decay, 1e-2);
    assert_eq!(SgdConfig::default().momentum, 0.0);
    assert_eq!(GradScalerConfig::default().init_scale, 65536.0);
}

/// A trainer (with or without a data-parallel group) can move to a worker thread.
#[test]
fn trainers_and_groups_are_send() {
    fn send<T: Send>() {}
    send::<Trainer<AdamW, NoScaler>>();
    send::<Trainer<Sgd, GradScaler>>();
    send::<DataParallel>();
    let dp = DataParallel::new(
        mixprec::dist::SingleProcess,
        mixprec::dist::GradAllReduce::default(),
    );
    let mut master = MasterWeights::new();
    let _ = Linear::<Fp32>::new(&mut Init::new(&mut master, 0), "fc", 2, 2, true).unwrap();
    let opt = AdamW::new(AdamWConfig::default()).unwrap();
    let trainer = Trainer::new(master, opt, NoScaler, TrainConfig::default())
        .unwrap()
        .with_data_parallel(dp);
    let moved = std::thread::spawn(move || trainer.data_parallel().map(DataParallel::ranks));
    assert_eq!(moved.join().unwrap(), Some(1));
}
