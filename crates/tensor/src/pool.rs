//! A tiny fork-join pool for short, latency-sensitive parallel sections (the GEMM's
//! packing and tile loops). Helper threads spin for a while after each job before they
//! park, so back-to-back sections start in about a microsecond instead of the tens of
//! microseconds a sleeping thread takes to wake — which decided whether a 128 x 128
//! matmul gains from a second core at all (measured: rayon sections made it 2.3x
//! slower than one thread; see docs/tensor.md).
//!
//! One job runs at a time; a call that finds the pool busy (another thread's job, or a
//! job started from inside a job) runs all parts on the calling thread instead.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long an idle helper spins before it parks.
const SPIN: Duration = Duration::from_micros(300);

type Job = dyn Fn(usize) + Sync;

struct Shared {
    /// The current job, erased to 'static: valid while `run` waits for the helpers.
    job: UnsafeCell<Option<&'static Job>>,
    /// Bumped once per job; helpers run when it changes.
    epoch: AtomicU64,
    /// Helpers that finished the current job.
    done: AtomicUsize,
    /// Set by a helper whose part panicked.
    panicked: AtomicBool,
}

// SAFETY: `job` is written only by the thread holding `Pool::busy`, before the Release
// store to `epoch`, and read by helpers after their Acquire load of it; it is cleared
// only after every helper reported `done`.
unsafe impl Sync for Shared {}

/// The process-wide pool: `available_parallelism - 1` helpers.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    helpers: Vec<Thread>,
    busy: Mutex<()>,
}

impl Pool {
    /// The shared pool, started on first use.
    pub fn global() -> &'static Pool {
        static POOL: OnceLock<Pool> = OnceLock::new();
        POOL.get_or_init(|| {
            let n = thread::available_parallelism().map_or(1, |n| n.get());
            Pool::new(n.saturating_sub(1))
        })
    }

    fn new(helpers: usize) -> Pool {
        let shared = Arc::new(Shared {
            job: UnsafeCell::new(None),
            epoch: AtomicU64::new(0),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
        });
        let helpers = (0..helpers)
            .map(|i| {
                let s = Arc::clone(&shared);
                thread::Builder::new()
                    .name(format!("mixprec-gemm-{i}"))
                    .spawn(move || helper_loop(&s, i + 1))
                    .expect("spawn a pool thread")
                    .thread()
                    .clone()
            })
            .collect();
        Pool {
            shared,
            helpers,
            busy: Mutex::new(()),
        }
    }

    /// Number of parts a job is split into (helpers plus the caller).
    pub fn parts(&self) -> usize {
        self.helpers.len() + 1
    }

    /// Runs `f(0)..f(parts - 1)`, part 0 on the calling thread, the others on the
    /// helpers, and returns when all are done. Falls back to running every part here
    /// when the pool is busy.
    pub fn run<'a>(&self, f: &'a (dyn Fn(usize) + Sync + 'a)) {
        let parts = self.parts();
        let Ok(_guard) = self.busy.try_lock() else {
            (0..parts).for_each(f);
            return;
        };
        if parts == 1 {
            f(0);
            return;
        }
        // SAFETY: lifetime erasure; we do not return before every helper is done with
        // the job (the wait below), and we clear it before releasing `busy`.
        let job: &'static Job =
            unsafe { std::mem::transmute::<&'a (dyn Fn(usize) + Sync + 'a), &'static Job>(f) };
        // SAFETY: we hold `busy`; no helper reads `job` until the epoch changes.
        unsafe { *self.shared.job.get() = Some(job) };
        self.shared.done.store(0, Ordering::Relaxed);
        self.shared.epoch.fetch_add(1, Ordering::Release);
        for h in &self.helpers {
            h.unpark();
        }
        f(0);
        let mut spins = 0u32;
        while self.shared.done.load(Ordering::Acquire) < self.helpers.len() {
            spins += 1;
            // Spin briefly, then yield: on an oversubscribed machine the helper may need
            // this core to finish its part.
            if spins < 1 << 10 {
                std::hint::spin_loop();
            } else {
                thread::yield_now();
            }
        }
        // SAFETY: every helper has finished with the job.
        unsafe { *self.shared.job.get() = None };
        if self.shared.panicked.swap(false, Ordering::Relaxed) {
            panic!("a gemm pool thread panicked while running its part");
        }
    }
}

fn helper_loop(s: &Shared, part: usize) {
    let mut seen = 0u64;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            let e = s.epoch.load(Ordering::Acquire);
            if e != seen {
                seen = e;
                break;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) && start.elapsed() > SPIN {
                // Parked threads are woken by `unpark` in `run`; a wake-up that raced
                // ahead of the park leaves a token, so nothing is lost.
                thread::park_timeout(Duration::from_millis(50));
            } else {
                std::hint::spin_loop();
            }
        }
        // SAFETY: the Acquire load saw the new epoch, so the job written before it is
        // visible and stays valid until we report `done`.
        let job = unsafe { *s.job.get() };
        if let Some(job) = job
            && std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(part))).is_err()
        {
            s.panicked.store(true, Ordering::Relaxed);
        }
        s.done.fetch_add(1, Ordering::Release);
    }
}

/// Splits `out` into one piece per pool part (each a multiple of `align` elements, the
/// last taking the rest) and runs `f(offset, piece)` on each in parallel; small inputs
/// (below `min_len`) run as one piece on the calling thread. The element-wise, row and
/// reduction engines use this, so the whole library shares one set of worker threads.
pub(crate) fn par_pieces<T: Send>(
    out: &mut [T],
    align: usize,
    min_len: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let pool = Pool::global();
    let parts = pool.parts();
    if out.len() < min_len || parts == 1 {
        f(0, out);
        return;
    }
    let align = align.max(1);
    let per = out.len().div_ceil(align).div_ceil(parts) * align;
    let mut pieces: Vec<Mutex<(usize, &mut [T])>> = Vec::with_capacity(parts);
    let mut rest = out;
    let mut offset = 0;
    for _ in 0..parts {
        let take = per.min(rest.len());
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(take);
        pieces.push(Mutex::new((offset, head)));
        offset += take;
        rest = tail;
    }
    pool.run(&|p| {
        let mut guard = pieces[p].lock().unwrap_or_else(|e| e.into_inner());
        let (off, ref mut piece) = *guard;
        if !piece.is_empty() {
            f(off, piece);
        }
    });
}

/// Runs `job(out_chunk, src_chunk)` over matching `chunk`-element pieces of `out` and
/// `src` (same length), in parallel through [`par_pieces`] when `out` has at least
/// `min_len` elements: the loop every streaming element-wise or row op shares.
pub(crate) fn par_zip_chunks<T: Send, S: Sync>(
    out: &mut [T],
    src: &[S],
    chunk: usize,
    min_len: usize,
    job: impl Fn(&mut [T], &[S]) + Sync,
) {
    debug_assert_eq!(out.len(), src.len());
    par_pieces(out, chunk, min_len, |off, piece| {
        let end = off + piece.len();
        piece
            .chunks_mut(chunk)
            .zip(src[off..end].chunks(chunk))
            .for_each(|(o, x)| job(o, x));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn every_part_runs_once_and_borrows_work() {
        let pool = Pool::global();
        let hits: Vec<AtomicUsize> = (0..pool.parts()).map(|_| AtomicUsize::new(0)).collect();
        for _ in 0..1000 {
            pool.run(&|p| {
                hits[p].fetch_add(1, Ordering::Relaxed);
            });
        }
        assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1000));
    }

    #[test]
    fn nested_runs_fall_back_to_the_caller() {
        let pool = Pool::global();
        let count = AtomicUsize::new(0);
        pool.run(&|_| {
            pool.run(&|_| {
                count.fetch_add(1, Ordering::Relaxed);
            });
        });
        assert_eq!(count.load(Ordering::Relaxed), pool.parts() * pool.parts());
    }
}
