//! [`Mpi`]: the [`Collective`] operations over MPI's world communicator (rsmpi), each
//! with a deadline.

use crate::collective::Collective;
use mixprec_autograd::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::environment::{Threading, Universe};
use mpi::request::{Request, Scope};
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a collective may wait for the other ranks by default: 10 minutes, PyTorch's
/// default process-group timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The exit code of a job aborted because a collective timed out.
pub const TIMEOUT_EXIT_CODE: i32 = 75;

/// MPI's world: every process `mpirun` started. Initialises MPI on creation and
/// finalises it when dropped (once per process, as MPI allows).
///
/// Faults: a rank that dies makes `mpirun` stop the job (Open MPI's default: the other
/// ranks are killed). A rank that hangs would block the others in their next collective
/// forever; here every collective is non-blocking with a deadline ([`Mpi::with_timeout`],
/// [`DEFAULT_TIMEOUT`]): past it the waiting rank prints which operation timed out and
/// aborts the whole job (`MPI_Abort`, exit code [`TIMEOUT_EXIT_CODE`]) — PyTorch's
/// process-group watchdog does the same. An outstanding collective cannot be cancelled
/// in MPI, so returning an error and carrying on is not an option.
///
/// Threads: MPI runs at `MPI_THREAD_SERIALIZED` and every collective holds a lock, so an
/// `Mpi` may move to and be shared between threads (`Arc<Mpi>`, a trainer on a worker
/// thread). Ranks must still issue their collectives in the same order: from one thread
/// per rank, or in an order the program fixes.
pub struct Mpi {
    world: SimpleCommunicator,
    /// The rank and size, read once at `init` (no MPI call outside the lock later).
    rank: usize,
    size: usize,
    timeout: Duration,
    /// Held for the whole of each collective: no two MPI calls run at once.
    serial: Mutex<()>,
    // Dropped last: finalises MPI.
    _universe: Universe,
}

// SAFETY: `SimpleCommunicator` and `Universe` are handles (an `MPI_Comm`, a marker) that
// rsmpi leaves `!Send`/`!Sync` because MPI's default threading level forbids calls from
// more than one thread. `Mpi::init` asks for `MPI_THREAD_SERIALIZED` and refuses to
// build an `Mpi` when the library grants less, so any thread may call MPI as long as no
// two calls overlap; every MPI call made through `&self` (the collectives and the abort
// on a timeout inside them) happens while `serial` is locked (rank and size were read at
// `init`). The universe is finalised by `Drop`, which needs exclusive ownership. The test
// `crates/dist/src/bin/dist_check.rs` (run by `tests/mpi.rs`) runs collectives from
// spawned threads sharing one `Arc<Mpi>`.
unsafe impl Send for Mpi {}
// SAFETY: as above: shared access only reaches MPI under `serial`.
unsafe impl Sync for Mpi {}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mpi")
            .field("rank", &self.rank())
            .field("size", &self.size())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Mpi {
    /// Initialises MPI at `MPI_THREAD_SERIALIZED`. Errors when MPI was initialised before
    /// in this process, or when the MPI library grants a lower threading level.
    pub fn init() -> Result<Mpi> {
        let (universe, granted) = mpi::initialize_with_threading(Threading::Serialized)
            .ok_or_else(|| {
                Error::invalid("Mpi::init", "MPI was already initialised in this process")
            })?;
        if granted < Threading::Serialized {
            return Err(Error::invalid(
                "Mpi::init",
                format!("the MPI library grants threading level {granted:?}, below Serialized"),
            ));
        }
        let world = universe.world();
        Ok(Mpi {
            rank: world.rank() as usize,
            size: world.size() as usize,
            world,
            timeout: DEFAULT_TIMEOUT,
            serial: Mutex::new(()),
            _universe: universe,
        })
    }

    /// Collectives wait at most `timeout` for the other ranks, then abort the job.
    pub fn with_timeout(mut self, timeout: Duration) -> Mpi {
        self.timeout = timeout;
        self
    }

    /// The deadline of every collective.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Waits for `request` (polling: a short spin, then sleeps of 100 µs), aborting the
    /// job when the deadline passes.
    fn wait<'a, D: ?Sized, S: Scope<'a>>(&self, op: &str, mut request: Request<'a, D, S>) {
        let start = Instant::now();
        loop {
            match request.test() {
                Ok(_) => return,
                Err(pending) => request = pending,
            }
            let waited = start.elapsed();
            if waited > self.timeout {
                eprintln!(
                    "mixprec-dist: rank {} of {}: {op} did not complete within {:?} (another rank died or hangs); aborting the job",
                    self.rank(),
                    self.size(),
                    self.timeout
                );
                self.world.abort(TIMEOUT_EXIT_CODE);
            }
            if waited < Duration::from_micros(200) {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_gather(&self, send: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; send.len() * self.size()];
        let _serial = self.serial.lock().unwrap_or_else(PoisonError::into_inner);
        mpi::request::scope(|scope| {
            let request = self
                .world
                .immediate_all_gather_into(scope, send, &mut out[..]);
            self.wait("all_gather", request);
        });
        Ok(out)
    }

    fn all_to_all(&self, send: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; send.len()];
        let _serial = self.serial.lock().unwrap_or_else(PoisonError::into_inner);
        mpi::request::scope(|scope| {
            let request = self
                .world
                .immediate_all_to_all_into(scope, send, &mut out[..]);
            self.wait("all_to_all", request);
        });
        Ok(out)
    }

    fn all_reduce_max(&self, values: &mut [u64]) -> Result<()> {
        let send = values.to_vec();
        let _serial = self.serial.lock().unwrap_or_else(PoisonError::into_inner);
        mpi::request::scope(|scope| {
            let request = self.world.immediate_all_reduce_into(
                scope,
                &send[..],
                values,
                SystemOperation::max(),
            );
            self.wait("all_reduce_max", request);
        });
        Ok(())
    }
}
