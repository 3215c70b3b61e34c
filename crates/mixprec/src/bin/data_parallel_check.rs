//! Run under `mpirun -np 2`: checks data-parallel training end to end (run by
//! `crates/mixprec/tests/data_parallel.rs`).
//!
//! 1. Two ranks, each on its half of every batch (F32 on the wire), have the losses of one
//!    process on the whole batch (relative 1e-5) and end with the same
//!    state file bytes (master weights, AdamW moments, step counter) as one process
//!    that trains on both halves as two micro-batches — under FP32 and BF16 mixed
//!    precision. The state is then hashed on every rank: all equal.
//!    A state saved by the two ranks at step 3 and resumed, on two ranks or on one
//!    process, ends with the same bytes as the run never stopped.
//! 2. FP8 with delayed scaling: the states, FP8 scales and amax histories included, are
//!    identical on every rank (amaxes reduced across ranks before each scale update).
//! 3. FP16 with loss scaling: an overflow on rank 1 alone (its inputs times 1e30 at
//!    step 2) skips step 2 on both ranks (and every rank skips the same steps); the loss
//!    scales stay equal and the states stay identical.
//! 4. The exchange overlapping backward (4 KiB buckets, several per step) ends with the
//!    bytes of the exchange after backward, under FP32, BF16 and FP16 with the skip.
//!
//! Prints `rank R of N: ok` per rank; exits non-zero on a failure.

use mixprec::dist::{Collective, GradAllReduce, Mpi, WirePrecision};
use mixprec::nn::data::Digits;
use mixprec::nn::models::DigitsMlp;
use mixprec::prelude::*;
use std::sync::Arc;

const STEPS: u64 = 6;
const BATCH: usize = 64;

fn check(ok: bool, what: &str, rank: usize) {
    if !ok {
        eprintln!("rank {rank}: FAILED: {what}");
        std::process::exit(1);
    }
}

fn config() -> TrainConfig {
    TrainConfig {
        schedule: ConstantLr(3e-3).into(),
        seed: 5,
        ..TrainConfig::default()
    }
}

/// FNV-1a of `bytes`.
fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The same bytes on every rank?
fn same_everywhere(comm: &dyn Collective, bytes: &[u8]) -> bool {
    let mine = hash(bytes).to_le_bytes();
    let all = comm.all_gather(&mine).expect("all-gather");
    all.chunks(8).all(|c| c == mine)
}

/// What a run feeds each step.
enum Feed {
    /// This rank's half of the batch, gradients averaged over the ranks.
    Rank(DataParallel),
    /// Both halves as two micro-batches, one process.
    Halves,
    /// The whole batch as one micro-batch, one process.
    Whole,
}

/// Trains the digits MLP under `P` up to step `until`, fed as `feed` says; from `start`
/// (a state file with the data order) when given, else from fresh weights. Rank 1's inputs
/// are multiplied by 1e30 at step `poison`. Returns the state file (data order
/// included), the records and the loss scale.
fn train<P: TrainPolicy, S: Scaler + Clone>(
    digits: &Digits,
    feed: Feed,
    scaler: S,
    start: Option<&TensorFile>,
    until: u64,
    poison: Option<u64>,
) -> Result<(TensorFile, Vec<StepRecord>, Option<f32>)>
where
    P::Scaling: mixprec::amp::LossScaling<Scaler = S>,
{
    let mut master = MasterWeights::new();
    // A resumed run starts from other weights: the load must replace them.
    let seed = if start.is_some() { 7 } else { 42 };
    let model = DigitsMlp::<P>::new(&mut Init::new(&mut master, seed), 32)?;
    let mut trainer = Trainer::new(
        master,
        AdamW::new(AdamWConfig::default())?,
        scaler,
        config(),
    )?;
    let mut batches = digits.train.batches(BATCH, 9)?;
    if let Some(file) = start {
        trainer.load_state_file(&model, file)?;
        batches.read_state(file, "train")?;
    }
    let (rank, whole) = match feed {
        Feed::Rank(p) => {
            let rank = p.rank();
            trainer = trainer.with_data_parallel(p);
            (Some(rank), false)
        }
        Feed::Halves => (None, false),
        Feed::Whole => (None, true),
    };
    let mut records = Vec::new();
    while trainer.next_step() < until {
        let step = trainer.next_step();
        let rows = batches.next_batch();
        let mut micro = Vec::new();
        let size = if whole { BATCH } else { BATCH / 2 };
        for (r, half) in rows.chunks(size).enumerate() {
            if rank.is_none() || rank == Some(r) {
                let (x, y) = digits.train.batch(half)?;
                let x = if poison == Some(step) && rank == Some(1) {
                    x.mul_scalar(1e30)
                } else {
                    x
                };
                micro.push((x, y));
            }
        }
        records.push(trainer.step_next(&model, &micro)?);
    }
    let scale = trainer.scaler.grad_scaler().map(GradScaler::scale);
    let mut file = trainer.state_file(&model)?;
    batches.write_state(&mut file, "train");
    Ok((file, records, scale))
}

fn main() -> Result<()> {
    let comm = Arc::new(Mpi::init()?);
    let (rank, n) = (comm.rank(), comm.size());
    check(n == 2, "run with mpirun -np 2", rank);
    // Two processes share two cores: one thread each.
    mixprec::set_num_threads(1);
    let digits = Digits::load()?;
    let dp = || {
        Feed::Rank(DataParallel::new(
            comm.clone(),
            GradAllReduce::new(WirePrecision::F32),
        ))
    };
    // The exchange overlapping backward, in 4 KiB buckets (several per step).
    let overlapped = || -> Result<Feed> {
        let op = GradAllReduce::new(WirePrecision::F32).with_bucket_bytes(4096)?;
        Ok(Feed::Rank(
            DataParallel::new(comm.clone(), op).with_overlap(true),
        ))
    };
    let bytes = |f: &TensorFile| f.to_bytes();

    let (state, records, _) = train::<Fp32, _>(&digits, dp(), NoScaler, None, STEPS, None)?;
    let (reference, _, _) = train::<Fp32, _>(&digits, Feed::Halves, NoScaler, None, STEPS, None)?;
    let fp32 = bytes(&state)?;
    check(
        fp32 == bytes(&reference)?,
        "FP32: 2 ranks equal one process with 2 micro-batches",
        rank,
    );
    check(
        same_everywhere(comm.as_ref(), &fp32),
        "FP32: identical on every rank",
        rank,
    );
    let (state, _, _) = train::<Fp32, _>(&digits, overlapped()?, NoScaler, None, STEPS, None)?;
    check(
        bytes(&state)? == fp32,
        "FP32: the exchange overlapping backward gives the same bytes",
        rank,
    );

    // Against one process on the whole batch (64 rows in one GEMM instead of two halves
    // averaged): the same losses up to F32 rounding of the different summation order
    // (step 0 differs by 5e-8 relative, the later ones stay below 1e-6; bound 1e-5).
    let (_, whole, _) = train::<Fp32, _>(&digits, Feed::Whole, NoScaler, None, STEPS, None)?;
    for (r, w) in records.iter().zip(&whole) {
        let mean = comm.mean_over_ranks(r.loss)?;
        let rel = (mean - w.loss).abs() / w.loss;
        check(
            rel <= 1e-5,
            &format!(
                "FP32: step {} loss {mean} vs whole batch {} (relative {rel:e})",
                r.step, w.loss
            ),
            rank,
        );
    }

    // Saved by 2 ranks at step 3, resumed by 2 ranks and by 1 process: the same end.
    let (at3, _, _) = train::<Fp32, _>(&digits, dp(), NoScaler, None, 3, None)?;
    let (two, _, _) = train::<Fp32, _>(&digits, dp(), NoScaler, Some(&at3), STEPS, None)?;
    let (one, _, _) = train::<Fp32, _>(&digits, Feed::Halves, NoScaler, Some(&at3), STEPS, None)?;
    check(
        bytes(&two)? == fp32,
        "resumed on 2 ranks: as if never stopped",
        rank,
    );
    check(
        bytes(&one)? == fp32,
        "resumed on 1 process: as if never stopped",
        rank,
    );

    let (state, _, _) = train::<Bf16Mixed, _>(&digits, dp(), NoScaler, None, STEPS, None)?;
    let (reference, _, _) =
        train::<Bf16Mixed, _>(&digits, Feed::Halves, NoScaler, None, STEPS, None)?;
    let bf16 = bytes(&state)?;
    check(
        bf16 == bytes(&reference)?,
        "BF16: 2 ranks equal one process with 2 micro-batches",
        rank,
    );
    check(
        same_everywhere(comm.as_ref(), &bf16),
        "BF16: identical on every rank",
        rank,
    );
    let (state, _, _) = train::<Bf16Mixed, _>(&digits, overlapped()?, NoScaler, None, STEPS, None)?;
    check(
        bytes(&state)? == bf16,
        "BF16: the exchange overlapping backward gives the same bytes",
        rank,
    );

    // FP8 with delayed scaling: amaxes are reduced across ranks before each scale
    // update, so the FP8 histories (in the state file) are identical on every rank.
    let (state, records, _) = train::<Fp8Hybrid, _>(&digits, dp(), NoScaler, None, STEPS, None)?;
    check(
        records.iter().all(|r| !r.skipped),
        "FP8: no step skipped",
        rank,
    );
    check(
        same_everywhere(comm.as_ref(), &bytes(&state)?),
        "FP8: identical states (histories too)",
        rank,
    );

    // An overflow on rank 1 alone, at step 2.
    let scaler = GradScaler::with_defaults()?;
    let (state, records, scale) =
        train::<F16Mixed, _>(&digits, dp(), scaler, None, STEPS, Some(2))?;
    check(
        records[2].skipped,
        "FP16: the overflow on rank 1 skips step 2",
        rank,
    );
    let skips: Vec<u8> = records.iter().map(|r| u8::from(r.skipped)).collect();
    check(
        same_everywhere(comm.as_ref(), &skips),
        "FP16: the same steps skipped on every rank",
        rank,
    );
    let scale = scale.expect("a scaler").to_bits().to_le_bytes();
    check(
        same_everywhere(comm.as_ref(), &scale),
        "FP16: one loss scale on every rank",
        rank,
    );
    check(
        same_everywhere(comm.as_ref(), &bytes(&state)?),
        "FP16: identical states after the skip",
        rank,
    );
    let scaler = GradScaler::with_defaults()?;
    let (overlapped, again, _) =
        train::<F16Mixed, _>(&digits, overlapped()?, scaler, None, STEPS, Some(2))?;
    check(
        bytes(&overlapped)? == bytes(&state)? && again[2].skipped,
        "FP16: overlapped, the same skip and the same bytes",
        rank,
    );
    println!("rank {rank} of {n}: ok");
    Ok(())
}
