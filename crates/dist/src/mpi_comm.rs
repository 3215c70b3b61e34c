//! [`Mpi`]: the [`Collective`] operations over MPI's world communicator (rsmpi).

use crate::collective::Collective;
use mixprec_autograd::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives};

/// MPI's world: every process `mpirun` started. Initialises MPI on creation and
/// finalises it when dropped (once per process, as MPI allows).
pub struct Mpi {
    world: SimpleCommunicator,
    // Dropped last: finalises MPI.
    _universe: Universe,
}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mpi")
            .field("rank", &self.rank())
            .field("size", &self.size())
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
            _universe: universe,
        })
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
        self.world.all_gather_into(send, &mut out[..]);
        Ok(out)
    }

    fn all_reduce_max(&self, values: &mut [u64]) -> Result<()> {
        let send = values.to_vec();
        self.world
            .all_reduce_into(&send[..], values, SystemOperation::max());
        Ok(())
    }
}
