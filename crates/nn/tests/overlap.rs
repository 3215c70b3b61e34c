//! The data-parallel exchange overlapping backward (`DataParallel::with_overlap`) gives
//! the bits of the exchange after backward: same state files after several steps of
//! three micro-batches, with small buckets (several per step), under loss scaling (a
//! scale whose reciprocal is exact, and the skip of a poisoned step), BF16 and FP8, for
//! F32 and FP8 wires. One process (`SingleProcess`); the MPI check runs two ranks.

use mixprec_amp::{
    Bf16Mixed, F16Mixed, Fp8Hybrid, GradScaler, LossScaling, MasterWeights, NoScaler, Policy,
    Scaler,
};
use mixprec_dist::{GradAllReduce, SingleProcess, WirePrecision};
use mixprec_nn::data::Digits;
use mixprec_nn::models::DigitsMlp;
use mixprec_nn::optim::{AdamW, AdamWConfig};
use mixprec_nn::{DataParallel, Init, TrainConfig, TrainPolicy, Trainer};

const STEPS: u64 = 4;

/// State-file bytes after `STEPS` steps of 3 micro-batches of 16 rows, and which steps
/// were skipped; the inputs of step 2's last micro-batch are multiplied by 1e30 when
/// `poison`.
fn train<P: TrainPolicy, S: Scaler>(
    digits: &Digits,
    scaler: S,
    wire: WirePrecision,
    overlap: bool,
    poison: bool,
) -> (Vec<u8>, Vec<bool>)
where
    <P as Policy>::Scaling: LossScaling<Scaler = S>,
{
    let mut master = MasterWeights::new();
    let model = DigitsMlp::<P>::new(&mut Init::new(&mut master, 3), 32).unwrap();
    let op = GradAllReduce::new(wire).with_bucket_bytes(2048).unwrap();
    let mut trainer = Trainer::new(
        master,
        AdamW::new(AdamWConfig::default()).unwrap(),
        scaler,
        TrainConfig::default(),
    )
    .unwrap()
    .with_data_parallel(DataParallel::new(SingleProcess, op).with_overlap(overlap));
    let mut batches = digits.train.batches(48, 4).unwrap();
    let mut skipped = Vec::new();
    for step in 0..STEPS {
        let rows = batches.next_batch();
        let micro: Vec<_> = rows
            .chunks(16)
            .enumerate()
            .map(|(i, r)| {
                let (x, y) = digits.train.batch(r).unwrap();
                let x = if poison && step == 2 && i == 2 {
                    x.mul_scalar(1e30)
                } else {
                    x
                };
                (x, y)
            })
            .collect();
        skipped.push(trainer.step_next(&model, &micro).unwrap().skipped);
    }
    let report = trainer.data_parallel().unwrap().last_report().unwrap();
    assert!(report.buckets > 1, "several buckets per step: {report:?}");
    (
        trainer.state_file(&model).unwrap().to_bytes().unwrap(),
        skipped,
    )
}

#[test]
fn overlapping_backward_gives_the_same_bits() {
    let digits = Digits::load().unwrap();
    for wire in [WirePrecision::F32, WirePrecision::E4M3] {
        let run = |overlap| train::<Bf16Mixed, _>(&digits, NoScaler, wire, overlap, false);
        assert_eq!(run(false), run(true), "BF16, {wire} wire");
        let run = |overlap| train::<Fp8Hybrid, _>(&digits, NoScaler, wire, overlap, false);
        assert_eq!(run(false), run(true), "FP8, {wire} wire");
    }
    let scaled = |overlap, poison| {
        let s = GradScaler::with_defaults().unwrap();
        train::<F16Mixed, _>(&digits, s, WirePrecision::Bf16, overlap, poison)
    };
    assert_eq!(scaled(false, false), scaled(true, false), "FP16 scaled");
    let (state, skipped) = scaled(true, true);
    assert_eq!(
        skipped,
        vec![false, false, true, false],
        "the poisoned step skips"
    );
    assert_eq!(
        (state, skipped),
        scaled(false, true),
        "FP16 with a skipped step"
    );
}
