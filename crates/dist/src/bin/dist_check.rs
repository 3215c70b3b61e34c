//! Run under `mpirun -np N` (N >= 2): checks the gradient all-reduce over MPI against
//! the one-process simulation, bit for bit, for every wire precision and both exchange
//! forms (all-gather, reduce-scatter), handed over at once or overlapped (exchanged on
//! another thread as gradients arrive); that every rank
//! ends with the same bits; that an inf on one rank skips the step on every rank; that
//! ranks passing different shapes all get an error (no hang). Prints one `ok` line per
//! rank and the bytes per step of each wire precision (rank 0). Exits non-zero on any
//! failure. Run by `crates/dist/tests/mpi.rs`.
//!
//! `fault-hang` / `fault-exit`: the last rank hangs (sleeps two minutes) or exits before
//! a collective, the others wait with a 2 s deadline: the job must end, not hang.

use mixprec_dist::{Collective, Exchange, GradAllReduce, Mpi, WirePrecision, simulate};
use mixprec_dtype::F32;
use mixprec_tensor::{Rng, Tensor};

/// Rank `r`'s gradients: normal values of three magnitudes, plus the hard ones (signed
/// zeros, a subnormal, BF16 rounding ties, a large value).
fn grads_of(rank: usize) -> Vec<Tensor<F32>> {
    let mut rng = Rng::seed(100 + rank as u64);
    let mut out: Vec<Tensor<F32>> = [(vec![64, 32], 1e-2), (vec![32], 1e-5), (vec![10, 64], 3.0)]
        .into_iter()
        .map(|(shape, std)| Tensor::<F32>::randn(&shape, 0.0, std, &mut rng).unwrap())
        .collect();
    let tie = 1.0 + 2f32.powi(-8);
    let hard = [
        0.0,
        -0.0,
        1e-40,
        tie,
        -tie,
        3.0e4 * (rank as f32 + 1.0),
        1e-30,
    ];
    out.push(Tensor::<F32>::from_f32(&hard, &[hard.len()]).unwrap());
    out
}

fn bits(t: &[Tensor<F32>]) -> Vec<u8> {
    t.iter().flat_map(|g| g.to_le_bytes()).collect()
}

fn check(ok: bool, what: &str, rank: usize) {
    if !ok {
        eprintln!("rank {rank}: FAILED: {what}");
        std::process::exit(1);
    }
}

fn main() {
    let comm = match Mpi::init() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let (rank, n) = (comm.rank(), comm.size());
    if let Some(mode) = std::env::args().nth(1) {
        fault(comm.with_timeout(std::time::Duration::from_secs(2)), &mode);
    }
    check(n >= 2, "run with mpirun -np 2 (or more)", rank);
    let per_rank: Vec<Vec<Tensor<F32>>> = (0..n).map(grads_of).collect();
    for wire in WirePrecision::ALL {
        for exchange in [Exchange::AllGather, Exchange::ReduceScatter] {
            // Small buckets, so that several messages go out (and slices are uneven).
            let op = GradAllReduce::new(wire)
                .with_bucket_bytes(8 << 10)
                .unwrap()
                .with_exchange(exchange);
            let mut mine = per_rank[rank].clone();
            let report = op.all_reduce(&comm, &mut mine).unwrap();
            check(!report.non_finite, "no rank holds an inf", rank);
            let expected = simulate(&op, &per_rank).unwrap().unwrap();
            let what = format!("{wire} {exchange:?}");
            check(
                bits(&mine) == bits(&expected),
                &format!("{what}: equals the simulation"),
                rank,
            );
            // Every rank holds the same bits.
            let local = bits(&mine);
            let all = comm.all_gather(&local).unwrap();
            check(
                all.chunks(local.len()).all(|c| c == local.as_slice()),
                &format!("{what}: identical on every rank"),
                rank,
            );
            // Overlapped: handed over from the last gradient to the first (backward's
            // order) on this thread, exchanged on another: the same bits.
            let shapes: Vec<Vec<usize>> = mine.iter().map(|g| g.shape().to_vec()).collect();
            let out = op
                .overlapped(&comm, &shapes, &|_, g| Ok(g), |handover| {
                    for i in (0..shapes.len()).rev() {
                        handover.send(i, Some(per_rank[rank][i].clone()));
                    }
                    Ok(())
                })
                .unwrap();
            let means: Vec<Tensor<F32>> = out.means.unwrap().into_iter().flatten().collect();
            check(
                bits(&means) == bits(&expected) && out.report.buckets == report.buckets,
                &format!("{what}: overlapped equals the simulation"),
                rank,
            );
            if rank == 0 {
                println!(
                    "wire {wire} {exchange:?}: {} buckets, payload {} B, sent per rank {} B",
                    report.buckets, report.payload_bytes, report.wire_bytes
                );
            }
        }
    }
    // The mean of the ranks' numbers, the same on every rank.
    let mean = comm.mean_over_ranks(rank as f64).unwrap();
    check(
        mean == (n - 1) as f64 / 2.0,
        "mean_over_ranks of the ranks' numbers",
        rank,
    );
    // An inf on the last rank only: every rank skips.
    let op = GradAllReduce::new(WirePrecision::E5M2);
    let mut mine = per_rank[rank].clone();
    if rank == n - 1 {
        mine[1] = Tensor::<F32>::full(&[32], f64::INFINITY);
    }
    let before = bits(&mine);
    let report = op.all_reduce(&comm, &mut mine).unwrap();
    check(report.non_finite, "an inf on one rank is seen by all", rank);
    check(
        bits(&mine) == before,
        "a skipped all-reduce changes nothing",
        rank,
    );
    // Rank 0 passes one tensor fewer: every rank gets the error.
    let mut mine = per_rank[rank].clone();
    if rank == 0 {
        mine.pop();
    }
    let e = op.all_reduce(&comm, &mut mine);
    check(
        e.as_ref()
            .is_err_and(|e| e.to_string().contains("different gradients")),
        "different shapes are an error on every rank",
        rank,
    );
    // The `Send + Sync` of `Mpi` (see its SAFETY comment): collectives from two spawned
    // threads sharing one handle, taking turns under its lock, in an order fixed by a
    // join. Each thread's result must equal the simulation.
    let comm = std::sync::Arc::new(comm);
    for wire in [WirePrecision::Bf16, WirePrecision::E4M3] {
        let worker = {
            let comm = comm.clone();
            let per_rank = per_rank.clone();
            std::thread::spawn(move || {
                let op = GradAllReduce::new(wire);
                let mut mine = per_rank[comm.rank()].clone();
                op.all_reduce(comm.as_ref(), &mut mine).unwrap();
                bits(&mine) == bits(&simulate(&op, &per_rank).unwrap().unwrap())
            })
        };
        check(
            worker.join().unwrap(),
            "collectives from another thread",
            rank,
        );
    }
    println!("rank {rank} of {n}: ok");
}

/// The last rank fails as `mode` says; the others start an all-reduce that cannot
/// complete. Returns only if the deadline did not fire (a failure).
fn fault(comm: Mpi, mode: &str) -> ! {
    let (rank, n) = (comm.rank(), comm.size());
    if rank == n - 1 {
        match mode {
            "fault-hang" => std::thread::sleep(std::time::Duration::from_secs(120)),
            "fault-exit" => std::process::exit(3),
            _ => {
                eprintln!("unknown mode {mode:?} (fault-hang, fault-exit)");
                std::process::exit(2);
            }
        }
    }
    let mut g = grads_of(rank);
    let _ = GradAllReduce::default().all_reduce(&comm, &mut g);
    eprintln!(
        "rank {rank}: FAILED: the all-reduce returned although rank {} failed",
        n - 1
    );
    std::process::exit(1);
}
