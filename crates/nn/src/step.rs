//! [`Step`]: everything one training (or evaluation) step shares — the tape, the
//! parameters as leaves, training mode and the dropout generator — and what it measures:
//! the compute copies the layers' autocasts made and the FP8 states they used.

use mixprec_amp::{
    Autocast, ComputeCopies, Fp8Scaling, Fp8Snapshot, Fp8TensorStats, MasterWeights, MemorySummary,
    Policy, UnscaledGrads,
};
use mixprec_autograd::{Result, Tape, Var};
use mixprec_dtype::{DType, F32};
use mixprec_tensor::Rng;
use std::sync::Mutex;

/// Index of a parameter in a [`MasterWeights`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParamId(pub(crate) usize);

impl ParamId {
    /// The position in the master weights (and in [`Step::params`]).
    pub fn index(self) -> usize {
        self.0
    }
}

/// One step: build it from the master weights, run the model's forward with it, then
/// backward, then [`Step::finish_fp8`] (when FP8 layers ran).
pub struct Step {
    tape: Tape,
    params: Vec<Var<F32>>,
    training: bool,
    rng: Mutex<Rng>,
    /// The step's compute copies, one table for every layer's autocast (a weight two
    /// layers use is cast once).
    copies: ComputeCopies,
    /// FP8 states used this step, each with a copy taken before its first use (taken out
    /// by [`Step::take_fp8_snapshots`] to undo a failed step).
    fp8: Mutex<Vec<(Fp8Scaling, Option<Fp8Snapshot>)>>,
    /// Whether to snapshot FP8 states before their first use (only a caller that may
    /// undo the step asks for it: the copies cost a clone of every amax history).
    undo_fp8: bool,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("training", &self.training)
            .field("parameters", &self.params.len())
            .field("tape", &self.tape)
            .finish_non_exhaustive()
    }
}

impl Step {
    /// A step over `master` on a fresh tape: parameters become leaves; `training`
    /// enables dropout, drawn from `Rng::seed(seed)`.
    pub fn new(master: &MasterWeights, training: bool, seed: u64) -> Step {
        let tape = Tape::new();
        let params = master.leaves(&tape);
        Step {
            tape,
            params,
            training,
            rng: Mutex::new(Rng::seed(seed)),
            copies: ComputeCopies::new(),
            fp8: Mutex::new(Vec::new()),
            undo_fp8: false,
        }
    }

    /// This step, keeping a copy of each FP8 state from before its first use so that a
    /// failed step can be undone ([`Step::take_fp8_snapshots`]).
    pub fn with_fp8_undo(mut self) -> Step {
        self.undo_fp8 = true;
        self
    }

    /// The tape.
    pub fn tape(&self) -> &Tape {
        &self.tape
    }

    /// True in training mode.
    pub fn training(&self) -> bool {
        self.training
    }

    /// Parameter `id` as a leaf of this step's tape.
    pub fn param(&self, id: ParamId) -> &Var<F32> {
        &self.params[id.0]
    }

    /// All parameters, in master-weight order (for unscaling and accumulation).
    pub fn params(&self) -> Vec<&Var<F32>> {
        self.params.iter().collect()
    }

    /// A constant input on this step's tape.
    pub fn input<D: mixprec_dtype::Dtype>(&self, t: mixprec_tensor::Tensor<D>) -> Var<D> {
        self.tape.constant(t)
    }

    /// Runs `f` with an [`Autocast`] of policy `P` inside the tape scope `scope`; the
    /// autocast keeps its parameter casts in the step's one [`ComputeCopies`] table, and
    /// the step records the FP8 state it used. FP8 GEMMs are scaled by
    /// `fp8` (a layer's own state), or with stateless current scaling when `None`.
    pub fn with_policy<P: Policy, R>(
        &self,
        scope: &str,
        fp8: Option<&Fp8Scaling>,
        f: impl FnOnce(&Autocast<P>) -> R,
    ) -> R {
        if let Some(fp8) = fp8 {
            let mut used = self.fp8.lock().unwrap_or_else(|e| e.into_inner());
            if !used.iter().any(|(s, _)| s.same(fp8)) {
                let snapshot = self.undo_fp8.then(|| fp8.snapshot());
                used.push((fp8.clone(), snapshot));
            }
        }
        let ac = match fp8 {
            Some(fp8) => Autocast::<P>::with_fp8(&self.tape, fp8),
            None => Autocast::<P>::new(&self.tape),
        }
        .sharing(&self.copies);
        self.tape.scope(scope, || f(&ac))
    }

    /// Draws a dropout seed (deterministic given the step's seed and call order).
    pub(crate) fn dropout_seed(&self) -> u64 {
        self.rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_u64()
    }

    /// End of step for FP8: every FP8 state used this step computes its next scales
    /// (delayed scaling) once; returns this step's amaxes and scales.
    pub fn finish_fp8(&self) -> Vec<Fp8TensorStats> {
        let used = std::mem::take(&mut *self.fp8.lock().unwrap_or_else(|e| e.into_inner()));
        used.iter().flat_map(|(s, _)| s.update()).collect()
    }

    /// [`Step::finish_fp8`] after `max_over_ranks` replaced this step's staging amaxes
    /// (every FP8 state the step used, in the order of first use, concatenated) with
    /// their maximum over the data-parallel ranks: every rank then computes the same
    /// scales. On an error nothing is updated.
    pub fn finish_fp8_across(
        &self,
        max_over_ranks: impl FnOnce(&mut [f32]) -> Result<()>,
    ) -> Result<Vec<Fp8TensorStats>> {
        let used = std::mem::take(&mut *self.fp8.lock().unwrap_or_else(|e| e.into_inner()));
        let counts: Vec<usize> = used.iter().map(|(s, _)| s.staging_amaxes().len()).collect();
        let mut amaxes: Vec<f32> = used.iter().flat_map(|(s, _)| s.staging_amaxes()).collect();
        max_over_ranks(&mut amaxes)?;
        let mut rest = amaxes.as_slice();
        for ((s, _), n) in used.iter().zip(counts) {
            let (mine, tail) = rest.split_at(n);
            s.record_staging_amaxes(mine)?;
            rest = tail;
        }
        Ok(used.iter().flat_map(|(s, _)| s.update()).collect())
    }

    /// The FP8 states this step used, each with its state from before the step's first
    /// use of it: restoring them undoes everything the step recorded (see
    /// [`Fp8Scaling::restore`]). Each snapshot is handed out once; empty unless the step
    /// was made [`Step::with_fp8_undo`].
    pub fn take_fp8_snapshots(&self) -> Vec<(Fp8Scaling, Fp8Snapshot)> {
        let mut used = self.fp8.lock().unwrap_or_else(|e| e.into_inner());
        used.iter_mut()
            .filter_map(|(s, snap)| snap.take().map(|snap| (s.clone(), snap)))
            .collect()
    }

    /// Bytes of the compute copies of the weights made this step, by precision.
    pub fn compute_copy_bytes(&self) -> Vec<(DType, usize)> {
        self.copies.bytes_by_dtype()
    }

    /// The step's compute copies (one table, keyed by parameter).
    pub fn compute_copies(&self) -> &ComputeCopies {
        &self.copies
    }

    /// What the step holds, by role and precision: master weights, compute copies,
    /// gradients, optimizer state (`optimizer_state_bytes`), peak saved activations, FP8
    /// state (`fp8_state_bytes`, from the model's
    /// [`crate::models::Model::fp8_states`]) and the library's workspace.
    pub fn memory_summary(
        &self,
        master: &MasterWeights,
        grads: &UnscaledGrads,
        optimizer_state_bytes: usize,
        fp8_state_bytes: usize,
    ) -> MemorySummary {
        MemorySummary::measure(
            master,
            &self.compute_copy_bytes(),
            grads,
            optimizer_state_bytes,
            &self.tape,
            fp8_state_bytes,
        )
    }
}
