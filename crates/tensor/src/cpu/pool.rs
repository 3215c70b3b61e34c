//! A small fork-join pool for short, latency-sensitive parallel sections (the GEMM's
//! packing and tile loops, the element-wise and row engines).
//!
//! A job is a number of tasks; the calling thread and the helpers *claim* tasks from one
//! atomic counter until none is left, so work is split dynamically: a helper that is
//! asleep, not yet scheduled, or descheduled by another process never holds back work it
//! has not started — the caller takes it. The caller waits only for tasks a helper is
//! running at that moment, so tasks are kept small.
//!
//! Helpers spin for a short while after a job (back-to-back sections then start in about
//! a microsecond instead of the tens a sleeping thread takes to wake), yielding the core
//! between polls, then sleep on a condition variable: on a busy machine they cost the
//! other processes almost nothing.
//!
//! Panics: every task runs under `catch_unwind`, on the caller too. [`Pool::run`] always
//! waits until no helper is inside the job, clears it, and only then resumes the first
//! panic on the caller. No lock that a panic could poison guards the pool.
//!
//! One job runs at a time; a call that finds the pool busy (another thread's job, or a
//! job started from inside a job) runs all tasks on the calling thread instead.
//!
//! Thread count: [`num_threads`] threads take part in a job (the caller and
//! `num_threads - 1` helpers). It defaults to the CPUs this process may run on (its
//! affinity mask and cgroup CPU quota, via `available_parallelism`), can be set by the
//! `MIXPREC_NUM_THREADS` environment variable, and changed at any time with
//! [`set_num_threads`].

use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How long an idle helper polls for the next job before it sleeps.
const SPIN: Duration = Duration::from_micros(100);
/// Polls between yields of the core while spinning.
const POLLS_PER_YIELD: u32 = 32;
/// Threads the pool can grow to ([`set_num_threads`] clamps to it).
pub const MAX_THREADS: usize = 256;

type Job = dyn Fn(usize) + Sync;
type Payload = Box<dyn Any + Send + 'static>;

struct Shared {
    /// The open job, erased to 'static: valid while `open` names it or a helper that
    /// entered it is still `active` (the caller waits for both to end before it returns).
    job: UnsafeCell<Option<&'static Job>>,
    /// Number of tasks of the open job.
    tasks: AtomicUsize,
    /// The next task to claim.
    next: AtomicUsize,
    /// Bumped once per job; helpers wake on a change.
    epoch: AtomicU64,
    /// The epoch of the open job, or 0 when no job is open.
    open: AtomicU64,
    /// Helpers inside the current job.
    active: AtomicUsize,
    /// The first panic of the current job, resumed on the caller.
    panic: Mutex<Option<Payload>>,
    /// Helpers asked to take part (threads - 1).
    wanted: AtomicUsize,
    /// Helpers asleep on `wake` (the caller notifies only when there are some).
    sleepers: AtomicUsize,
    sleep: Mutex<()>,
    wake: Condvar,
}

// SAFETY: `job` is written only by the thread that holds `Pool::busy`, while no job is
// open and no helper is active (see `run`), before the SeqCst store that opens the job; a
// helper reads it only after it counted itself in `active` and then saw `open` name the
// job (SeqCst), so the write is visible and the job outlives the read.
unsafe impl Sync for Shared {}

/// The process-wide pool.
pub(crate) struct Pool {
    shared: &'static Shared,
    /// Helper threads started so far (never more than [`MAX_THREADS`] - 1).
    spawned: Mutex<usize>,
    /// Held by the thread whose job is open (an atomic flag: nothing to poison).
    busy: AtomicBool,
}

/// The number of threads parallel sections use (the caller included).
pub fn num_threads() -> usize {
    Pool::global().parts()
}

/// Sets the number of threads parallel sections use, the caller included (clamped to
/// `1..=MAX_THREADS`; 1 runs everything on the calling thread). Takes effect from the
/// next parallel section; helpers beyond the number sleep until asked again. Results do
/// not depend on it: every op splits its work so that each output element is computed
/// by the same arithmetic whichever thread runs it.
pub fn set_num_threads(n: usize) {
    Pool::global().set_threads(n);
}

/// Threads to use when nothing is set: `MIXPREC_NUM_THREADS` if it is a positive
/// integer, else the CPUs this process may run on.
fn default_threads() -> usize {
    match std::env::var("MIXPREC_NUM_THREADS") {
        Ok(v) => parse_threads(&v).unwrap_or_else(available_cpus),
        Err(_) => available_cpus(),
    }
}

/// `MIXPREC_NUM_THREADS`'s value as a thread count (a positive integer, spaces allowed).
fn parse_threads(v: &str) -> Option<usize> {
    v.trim().parse::<usize>().ok().filter(|&n| n > 0)
}

/// CPUs this process may run on: std's `available_parallelism` reads the affinity mask
/// (`sched_getaffinity`) and the cgroup CPU quota on Linux.
fn available_cpus() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// Locks a mutex whose data stays valid whatever a panicking holder did.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Releases `busy` when the job ends, however it ends.
struct BusyGuard<'a>(&'a AtomicBool);
impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Pool {
    /// The shared pool, started on first use.
    pub fn global() -> &'static Pool {
        static POOL: OnceLock<Pool> = OnceLock::new();
        POOL.get_or_init(|| Pool::new(default_threads()))
    }

    /// A pool of `threads` threads (the caller included). Its state and helpers live for
    /// the rest of the process (the global pool is one; tests make their own).
    fn new(threads: usize) -> Pool {
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            job: UnsafeCell::new(None),
            tasks: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
            epoch: AtomicU64::new(0),
            open: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            panic: Mutex::new(None),
            wanted: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
        }));
        let pool = Pool {
            shared,
            spawned: Mutex::new(0),
            busy: AtomicBool::new(false),
        };
        pool.set_threads(threads);
        pool
    }

    fn set_threads(&self, n: usize) {
        let helpers = n.clamp(1, MAX_THREADS) - 1;
        let mut spawned = lock(&self.spawned);
        while *spawned < helpers {
            let index = *spawned;
            let s = self.shared;
            let started = thread::Builder::new()
                .name(format!("mixprec-pool-{}", index + 1))
                .spawn(move || helper_loop(s, index));
            if started.is_err() {
                // No more threads to be had: run with the ones there are.
                break;
            }
            *spawned += 1;
        }
        self.shared
            .wanted
            .store(helpers.min(*spawned), Ordering::SeqCst);
        drop(spawned);
        // Wake sleepers so that newly wanted helpers join and unwanted ones re-check.
        let _g = lock(&self.shared.sleep);
        self.shared.wake.notify_all();
    }

    /// Number of threads a job can use (helpers plus the caller).
    pub fn parts(&self) -> usize {
        self.shared.wanted.load(Ordering::Relaxed) + 1
    }

    /// Runs `f(0)..f(tasks - 1)`, each exactly once, on the calling thread and the
    /// helpers, and returns when all are done. Runs every task here when the pool is
    /// busy or there are no helpers. If a task panics, the remaining unclaimed tasks are
    /// skipped and the first panic is resumed on the caller once no helper is inside the
    /// job any more.
    pub fn run<'a>(&self, tasks: usize, f: &'a (dyn Fn(usize) + Sync + 'a)) {
        let s = self.shared;
        if tasks <= 1 || s.wanted.load(Ordering::Relaxed) == 0 {
            return (0..tasks).for_each(f);
        }
        if self
            .busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return (0..tasks).for_each(f);
        }
        let _busy = BusyGuard(&self.busy);
        // SAFETY: lifetime erasure. The job is reachable by helpers only while it is open
        // or while a helper that entered it is active; we close it and wait for `active`
        // to reach zero below before returning, on every path (tasks run under
        // catch_unwind, so nothing unwinds past that wait).
        let job: &'static Job =
            unsafe { std::mem::transmute::<&'a (dyn Fn(usize) + Sync + 'a), &'static Job>(f) };
        // SAFETY: we hold `busy`, no job is open and no helper is active (the previous
        // job's `run` waited for that), so nothing reads `job` now.
        unsafe { *s.job.get() = Some(job) };
        s.tasks.store(tasks, Ordering::Relaxed);
        s.next.store(0, Ordering::Relaxed);
        // Only the thread holding `busy` writes `epoch`; open the job before announcing it.
        let epoch = s.epoch.load(Ordering::Relaxed) + 1;
        s.open.store(epoch, Ordering::SeqCst);
        s.epoch.store(epoch, Ordering::SeqCst);
        if s.sleepers.load(Ordering::SeqCst) > 0 {
            let _g = lock(&s.sleep);
            s.wake.notify_all();
        }
        claim_tasks(s, job);
        // Close the job, then wait for helpers still inside it (only those running a
        // task they claimed: unclaimed work is all done).
        s.open.store(0, Ordering::SeqCst);
        let mut polls = 0u32;
        while s.active.load(Ordering::SeqCst) > 0 {
            polls = polls.wrapping_add(1);
            if polls < 256 {
                std::hint::spin_loop();
            } else {
                // The helper may need this core to finish its task.
                thread::yield_now();
            }
        }
        // SAFETY: the job is closed and no helper is inside it.
        unsafe { *s.job.get() = None };
        let payload = lock(&s.panic).take();
        drop(_busy);
        if let Some(p) = payload {
            resume_unwind(p);
        }
    }
}

/// Claims and runs tasks of the open job until none is left; a panic is kept (the first
/// one) and stops further claims.
fn claim_tasks(s: &Shared, job: &Job) {
    let tasks = s.tasks.load(Ordering::Relaxed);
    loop {
        let t = s.next.fetch_add(1, Ordering::Relaxed);
        if t >= tasks {
            return;
        }
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| job(t))) {
            s.next.store(tasks, Ordering::Relaxed);
            let mut slot = lock(&s.panic);
            if slot.is_none() {
                *slot = Some(p);
            }
            return;
        }
    }
}

fn helper_loop(s: &'static Shared, index: usize) {
    // Epochs start at 1: a helper started while a job is open joins it.
    let mut seen = 0;
    loop {
        let epoch = wait_for_job(s, seen, index);
        seen = epoch;
        s.active.fetch_add(1, Ordering::SeqCst);
        if s.open.load(Ordering::SeqCst) == epoch {
            // SAFETY: we are counted in `active` and saw the job open after that, so the
            // caller has not cleared it and will not before we leave (see `Shared`).
            if let Some(job) = unsafe { *s.job.get() } {
                claim_tasks(s, job);
            }
        }
        s.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits for an epoch other than `seen` while this helper is wanted: polls (yielding the
/// core between polls) for [`SPIN`], then sleeps until woken, then polls again.
fn wait_for_job(s: &Shared, seen: u64, index: usize) -> u64 {
    let mut start = Instant::now();
    let mut polls = 0u32;
    loop {
        let e = s.epoch.load(Ordering::SeqCst);
        let wanted = index < s.wanted.load(Ordering::Relaxed);
        if e != seen && wanted {
            return e;
        }
        polls = polls.wrapping_add(1);
        if wanted && start.elapsed() < SPIN {
            if polls.is_multiple_of(POLLS_PER_YIELD) {
                thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
            continue;
        }
        let guard = lock(&s.sleep);
        s.sleepers.fetch_add(1, Ordering::SeqCst);
        // Re-check under the lock: a job opened (or a change of `wanted`) after our last
        // look notifies while holding this lock, so it cannot slip between check and wait.
        let e = s.epoch.load(Ordering::SeqCst);
        if e == seen || index >= s.wanted.load(Ordering::SeqCst) {
            // The timeout guards against a missed wake-up; spurious wake-ups re-check.
            drop(s.wake.wait_timeout(guard, Duration::from_millis(100)));
        }
        s.sleepers.fetch_sub(1, Ordering::SeqCst);
        // A job usually follows a wake-up: poll again for a moment.
        start = Instant::now();
    }
}

/// A mutable slice split into `chunk`-element pieces that tasks of one job write, each
/// piece by the one task of the same index.
pub(crate) struct Chunks<'a, T> {
    ptr: *mut T,
    len: usize,
    chunk: usize,
    _slice: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: a `Chunks` hands out disjoint pieces of a slice it borrows mutably (see
// `piece`), which is what `&mut [T]: Send` needs of `T`.
unsafe impl<T: Send> Sync for Chunks<'_, T> {}

impl<'a, T> Chunks<'a, T> {
    pub(crate) fn new(slice: &'a mut [T], chunk: usize) -> Self {
        Chunks {
            ptr: slice.as_mut_ptr(),
            len: slice.len(),
            chunk: chunk.max(1),
            _slice: std::marker::PhantomData,
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.len.div_ceil(self.chunk)
    }

    /// Piece `i` and its offset.
    ///
    /// # Safety
    /// Each `i` may be taken at most once while the pieces are alive (the pool runs each
    /// task index exactly once, so a task may take its own index).
    // Handing out `&mut` from `&self` is the point: distinct tasks write distinct pieces
    // at once, which the safety contract (one take per index) makes sound.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn piece(&self, i: usize) -> (usize, &mut [T]) {
        let off = i * self.chunk;
        assert!(off < self.len, "piece {i} is out of range");
        let len = self.chunk.min(self.len - off);
        // SAFETY: `off + len <= self.len`, inside the borrowed slice; pieces of distinct
        // indices do not overlap, and the caller takes each index once.
        (off, unsafe {
            std::slice::from_raw_parts_mut(self.ptr.add(off), len)
        })
    }
}

/// Runs `f(offset, piece)` over the `chunk`-element pieces of `out` on the pool, each
/// piece once (the last may be shorter).
pub(crate) fn par_chunks_mut<T: Send>(
    out: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let chunks = Chunks::new(out, chunk);
    Pool::global().run(chunks.count(), &|i| {
        // SAFETY: the pool runs each task index exactly once.
        let (off, piece) = unsafe { chunks.piece(i) };
        f(off, piece);
    });
}

/// Tasks per thread the GEMM's sections are cut into, so that a thread that stalls holds
/// back at most a small share of the work.
pub(crate) const TASKS_PER_THREAD: usize = 4;

/// At most this many pieces in a data-parallel section ([`par_pieces`]).
const MAX_PIECES: usize = 64;

/// Splits `out` into pieces (each a multiple of `align` elements, at most [`MAX_PIECES`],
/// none shorter than half of `min_len`) and runs `f(offset, piece)` on each, in parallel
/// on the pool; inputs below `min_len` are one piece. The pieces depend on the sizes
/// only, never on the thread count, so an op that combines per-piece partial results
/// (layer norm's weight gradient) gives the same bits with any number of threads. The
/// element-wise, row and reduction engines use this, so the whole library shares one
/// set of worker threads.
pub(crate) fn par_pieces<T: Send>(
    out: &mut [T],
    align: usize,
    min_len: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    if out.len() < min_len.max(1) {
        f(0, out);
        return;
    }
    let per = piece_len(out.len(), align, min_len);
    par_chunks_mut(out, per, f);
}

/// The length of [`par_pieces`]' pieces of `len` elements (all of it below `min_len`): a
/// multiple of `align`, at most [`MAX_PIECES`] pieces, none shorter than half of
/// `min_len` (a task must pay for its claim). Depends on the sizes only.
pub(crate) fn piece_len(len: usize, align: usize, min_len: usize) -> usize {
    if len < min_len.max(1) {
        return len.max(1);
    }
    let align = align.max(1);
    let pieces = MAX_PIECES.min(len / (min_len / 2).max(1)).max(1);
    len.div_ceil(align).div_ceil(pieces).max(1) * align
}

/// `s` cut into `per`-element pieces (the last may be shorter), each behind its own
/// lock: for tasks that each write the pieces at one offset of several slices (the
/// fused optimizer updates write a parameter and its state). Task `i` locks piece `i`
/// of each slice only, so no lock is ever contended.
pub(crate) fn locked_pieces<T>(s: &mut [T], per: usize) -> Vec<Mutex<&mut [T]>> {
    s.chunks_mut(per.max(1)).map(Mutex::new).collect()
}

/// Piece `i` of [`locked_pieces`]' output, locked (a panic in another task cannot poison
/// a piece this task owns, but a poisoned lock still hands out its slice).
pub(crate) fn piece_of<'p, 'a, T>(
    pieces: &'p [Mutex<&'a mut [T]>],
    i: usize,
) -> MutexGuard<'p, &'a mut [T]> {
    pieces[i].lock().unwrap_or_else(|e| e.into_inner())
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
    par_zip_chunks_with(out, src, chunk, min_len, |_| (), |_, o, x| job(o, x));
}

/// [`par_zip_chunks`] with scratch space: `scratch(n)` is made once per piece, for its
/// longest chunk of `n` elements (a piece holds at least eight chunks when it runs in
/// parallel), and lent to each of its chunks' jobs, so a chunk's decode buffers are not
/// zero-filled (or allocated) chunk by chunk, nor larger than the data.
pub(crate) fn par_zip_chunks_with<T: Send, S: Sync, B>(
    out: &mut [T],
    src: &[S],
    chunk: usize,
    min_len: usize,
    scratch: impl Fn(usize) -> B + Sync,
    job: impl Fn(&mut B, &mut [T], &[S]) + Sync,
) {
    debug_assert_eq!(out.len(), src.len());
    par_pieces(out, chunk, min_len, |off, piece| {
        let end = off + piece.len();
        let mut b = scratch(piece.len().min(chunk));
        piece
            .chunks_mut(chunk)
            .zip(src[off..end].chunks(chunk))
            .for_each(|(o, x)| job(&mut b, o, x));
    });
}

#[cfg(test)]
mod tests;
