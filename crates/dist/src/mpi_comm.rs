//! [`Mpi`]: the [`Collective`] operations over MPI's world communicator (rsmpi), each
//! with a deadline.

use crate::collective::Collective;
use mixprec_autograd::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::request::{Request, Scope};
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives};
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
pub struct Mpi {
    world: SimpleCommunicator,
    timeout: Duration,
    // Dropped last: finalises MPI.
    _universe: Universe,
}

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
    /// Initialises MPI (errors when it was initialised before in this process).
    pub fn init() -> Result<Mpi> {
        let universe = mpi::initialize().ok_or_else(|| {
            Error::invalid("Mpi::init", "MPI was already initialised in this process")
        })?;
        Ok(Mpi {
            world: universe.world(),
            timeout: DEFAULT_TIMEOUT,
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
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn all_gather(&self, send: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; send.len() * self.size()];
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
