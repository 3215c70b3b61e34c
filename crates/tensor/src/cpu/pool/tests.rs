//! The pool's contract: every task once, panics reach the caller only after every
//! helper left the job, and the pool stays parallel after a panic.

use super::*;
use std::sync::atomic::AtomicUsize;
use std::thread::ThreadId;

/// Waits (up to 5 s) until `count` reaches `n`; false on time-out.
fn wait_for(count: &AtomicUsize, n: usize) -> bool {
    let start = Instant::now();
    while count.load(Ordering::SeqCst) < n {
        if start.elapsed() > Duration::from_secs(5) {
            return false;
        }
        thread::yield_now();
    }
    true
}

/// Runs a two-task job in which each task waits for the other to start, so the caller
/// and one helper each run one: true when both ran at once (the pool is parallel).
fn runs_in_parallel(pool: &Pool) -> bool {
    let started = AtomicUsize::new(0);
    let met = AtomicUsize::new(0);
    pool.run(2, &|_| {
        started.fetch_add(1, Ordering::SeqCst);
        if wait_for(&started, 2) {
            met.fetch_add(1, Ordering::SeqCst);
        }
    });
    met.load(Ordering::SeqCst) == 2
}

#[test]
fn every_task_runs_once() {
    let pool = Pool::new(3);
    for tasks in [0, 1, 2, 3, 7, 64, 1000] {
        let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
        for _ in 0..50 {
            pool.run(tasks, &|t| {
                hits[t].fetch_add(1, Ordering::Relaxed);
            });
        }
        assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 50));
    }
}

#[test]
fn nested_runs_fall_back_to_the_caller() {
    let pool = Pool::new(2);
    let count = AtomicUsize::new(0);
    pool.run(4, &|_| {
        pool.run(3, &|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
    });
    assert_eq!(count.load(Ordering::Relaxed), 12);
}

/// A two-task job whose task on `panicking` thread panics at once while the other task
/// keeps writing into the caller's stack for 50 ms: `run` must wait for the writer
/// (before the fix it unwound at once and the helper wrote into a freed frame).
fn panic_on(pool: &Pool, on_caller: bool) {
    let caller: ThreadId = thread::current().id();
    let started = AtomicUsize::new(0);
    let mut written = [0u64; 64];
    let out = Chunks::new(&mut written, 64);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        pool.run(2, &|_| {
            started.fetch_add(1, Ordering::SeqCst);
            assert!(wait_for(&started, 2), "both threads take a task");
            if (thread::current().id() == caller) == on_caller {
                panic!("injected panic");
            }
            thread::sleep(Duration::from_millis(50));
            // SAFETY: only the one task that does not panic takes the piece.
            let (_, piece) = unsafe { out.piece(0) };
            piece.fill(7);
        })
    }));
    let payload = outcome.expect_err("the panic reaches the caller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"injected panic"));
    assert!(
        written.iter().all(|&w| w == 7),
        "run returned before the writer finished"
    );
    // The next jobs run, in parallel, and the panic is not replayed.
    assert!(runs_in_parallel(pool), "the pool is parallel after a panic");
    let hits = AtomicUsize::new(0);
    pool.run(100, &|_| {
        hits.fetch_add(1, Ordering::Relaxed);
    });
    assert_eq!(hits.load(Ordering::Relaxed), 100);
}

#[test]
fn a_panic_on_the_caller_waits_for_the_helper_then_reaches_the_caller() {
    let pool = Pool::new(2);
    panic_on(&pool, true);
}

#[test]
fn a_panic_on_a_helper_reaches_the_caller() {
    let pool = Pool::new(2);
    panic_on(&pool, false);
}

#[test]
fn a_panicking_task_stops_further_claims() {
    let pool = Pool::new(2);
    let ran = AtomicUsize::new(0);
    let r = catch_unwind(AssertUnwindSafe(|| {
        pool.run(10_000, &|t| {
            ran.fetch_add(1, Ordering::Relaxed);
            if t == 3 {
                panic!("stop");
            }
            // ~0.1 ms a task: all 10,000 would take a second.
            thread::sleep(Duration::from_micros(100));
        })
    }));
    assert!(r.is_err());
    assert!(
        ran.load(Ordering::Relaxed) < 5_000,
        "{}",
        ran.load(Ordering::Relaxed)
    );
}

#[test]
fn a_stalled_helper_does_not_hold_back_unclaimed_work() {
    // One task blocks its thread for 200 ms; the other 99 must all be done by the other
    // thread meanwhile (a static split would leave half of them to the stalled one).
    let pool = Pool::new(2);
    let done_while_stalled = AtomicUsize::new(0);
    let stalled = AtomicBool::new(false);
    let released = AtomicBool::new(false);
    pool.run(100, &|t| {
        if t == 0 {
            stalled.store(true, Ordering::SeqCst);
            let start = Instant::now();
            while !released.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(5) {
                thread::sleep(Duration::from_millis(1));
            }
        } else {
            done_while_stalled.fetch_add(1, Ordering::SeqCst);
            if done_while_stalled.load(Ordering::SeqCst) == 99 {
                released.store(true, Ordering::SeqCst);
            }
        }
    });
    assert!(stalled.load(Ordering::SeqCst));
    assert!(
        released.load(Ordering::SeqCst),
        "the other thread finished the 99 free tasks while one was stalled"
    );
}

#[test]
fn thread_count_can_be_changed_and_one_thread_runs_on_the_caller() {
    let pool = Pool::new(3);
    assert_eq!(pool.parts(), 3);
    pool.set_threads(1);
    assert_eq!(pool.parts(), 1);
    let caller = thread::current().id();
    let elsewhere = AtomicUsize::new(0);
    pool.run(64, &|_| {
        if thread::current().id() != caller {
            elsewhere.fetch_add(1, Ordering::Relaxed);
        }
    });
    assert_eq!(elsewhere.load(Ordering::Relaxed), 0);
    pool.set_threads(2);
    assert_eq!(pool.parts(), 2);
    assert!(runs_in_parallel(&pool));
    pool.set_threads(0); // clamped to 1
    assert_eq!(pool.parts(), 1);
    pool.set_threads(MAX_THREADS + 10);
    assert!(pool.parts() <= MAX_THREADS);
    pool.set_threads(2);
}

#[test]
fn the_environment_variable_parses_as_a_positive_count() {
    assert_eq!(parse_threads("4"), Some(4));
    assert_eq!(parse_threads(" 2 "), Some(2));
    assert_eq!(parse_threads("0"), None);
    assert_eq!(parse_threads("-1"), None);
    assert_eq!(parse_threads("many"), None);
    assert!(available_cpus() >= 1);
}

#[test]
fn par_pieces_covers_every_element_once_with_aligned_offsets() {
    for len in [0usize, 1, 5, 100, 4097, 100_000] {
        let mut v = vec![0u32; len];
        par_pieces(&mut v, 8, 16, |off, piece| {
            assert_eq!(off % 8, 0);
            for (i, x) in piece.iter_mut().enumerate() {
                *x += (off + i) as u32 + 1;
            }
        });
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32 + 1));
    }
}
