//! [`TrainPolicy`]: the policies the layers train under — any [`Policy`] with F32 master
//! weights and F32 sensitive ops (all built-in ones; F64 sensitive ops are for tests).

use mixprec_amp::Policy;
use mixprec_dtype::F32;

/// A policy with F32 master weights and F32 precision-sensitive ops.
pub trait TrainPolicy: Policy<Param = F32, Sensitive = F32> {}

impl<P: Policy<Param = F32, Sensitive = F32>> TrainPolicy for P {}
