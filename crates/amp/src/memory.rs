//! Memory accounting: what a training step holds, by role and precision
//! ([`memory_summary`]), and the formula that predicts it ([`predict_memory`]).

use crate::autocast::Autocast;
use crate::fp8::Fp8Recipe;
use crate::master::MasterWeights;
use crate::policy::Policy;
use crate::scaler::UnscaledGrads;
use mixprec_autograd::Tape;
use mixprec_dtype::{DType, Dtype};
use std::fmt;

/// What a byte of training memory is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemoryRole {
    /// F32 master weights.
    MasterWeights,
    /// Per-step low-precision copies of the weights (the cast cache).
    ComputeCopies,
    /// Parameter gradients (F32, after unscaling).
    Gradients,
    /// Optimizer state (momentum, Adam moments).
    OptimizerState,
    /// Tensors saved for backward (peak), each storage once, weight copies excluded.
    SavedActivations,
    /// FP8 scales and amax histories.
    Fp8Scaling,
    /// Library buffers outside tensors: GEMM packing and reusable dropped buffers
    /// (measured, not predicted: it depends on shapes, threads and history).
    Workspace,
}

/// An optimizer's state per parameter, for the prediction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    /// Plain SGD: no state.
    Sgd,
    /// SGD with momentum: one F32 buffer.
    SgdMomentum,
    /// Adam / AdamW: two F32 moments.
    Adam,
}

impl OptimizerKind {
    /// State bytes per parameter.
    pub fn bytes_per_param(self) -> usize {
        match self {
            OptimizerKind::Sgd => 0,
            OptimizerKind::SgdMomentum => 4,
            OptimizerKind::Adam => 8,
        }
    }
}

/// Bytes by role and precision.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MemorySummary {
    /// (role, precision, bytes), one row per pair with bytes.
    pub rows: Vec<(MemoryRole, DType, usize)>,
}

impl MemorySummary {
    /// Adds `bytes` of precision `d` to `role` (zero bytes add no row).
    pub fn add(&mut self, role: MemoryRole, d: DType, bytes: usize) {
        if bytes == 0 {
            return;
        }
        match self.rows.iter_mut().find(|(r, x, _)| *r == role && *x == d) {
            Some(row) => row.2 += bytes,
            None => self.rows.push((role, d, bytes)),
        }
    }

    /// Bytes of one role, all precisions.
    pub fn role(&self, role: MemoryRole) -> usize {
        self.rows
            .iter()
            .filter(|(r, _, _)| *r == role)
            .map(|r| r.2)
            .sum()
    }

    /// All bytes.
    pub fn total(&self) -> usize {
        self.rows.iter().map(|r| r.2).sum()
    }
}

impl fmt::Display for MemorySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<18} {:<6} {:>12}", "role", "dtype", "bytes")?;
        for (r, d, b) in &self.rows {
            writeln!(f, "{:<18} {:<6} {:>12}", format!("{r:?}"), d.name(), b)?;
        }
        write!(f, "{:<18} {:<6} {:>12}", "total", "", self.total())
    }
}

/// Measures a step: master weights, the cast cache's compute copies, the unscaled
/// gradients, `optimizer_state_bytes` (reported by the optimizer), the tape's peak bytes
/// saved for backward (each storage once; the compute copies GEMMs save are counted as
/// compute copies only), the FP8 scaling state, and the workspace
/// ([`mixprec_tensor::workspace_bytes`], process-wide).
pub fn memory_summary<P: Policy>(
    master: &MasterWeights,
    autocast: &Autocast<P>,
    grads: &UnscaledGrads,
    optimizer_state_bytes: usize,
    tape: &Tape,
) -> MemorySummary {
    let fp8_bytes = autocast.fp8().map_or(0, |f| f.nbytes());
    MemorySummary::measure(
        master,
        &autocast.cached_bytes(),
        grads,
        optimizer_state_bytes,
        tape,
        fp8_bytes,
    )
}

impl MemorySummary {
    /// A step's bytes by role from its parts: master weights, the compute copies made
    /// (by precision), the unscaled gradients, the optimizer's state, the tape's peak
    /// saved bytes, the FP8 scaling state and the process's workspace. [`memory_summary`]
    /// and the nn crate's `Step::memory_summary` both measure through this.
    pub fn measure(
        master: &MasterWeights,
        compute_copies: &[(DType, usize)],
        grads: &UnscaledGrads,
        optimizer_state_bytes: usize,
        tape: &Tape,
        fp8_state_bytes: usize,
    ) -> MemorySummary {
        let mut s = MemorySummary::default();
        s.add(MemoryRole::MasterWeights, DType::F32, master.bytes());
        for &(d, b) in compute_copies {
            s.add(MemoryRole::ComputeCopies, d, b);
        }
        let grad_bytes = grads.iter().flatten().map(|g| g.nbytes()).sum();
        s.add(MemoryRole::Gradients, DType::F32, grad_bytes);
        s.add(
            MemoryRole::OptimizerState,
            DType::F32,
            optimizer_state_bytes,
        );
        for (d, b) in tape.peak_saved_bytes() {
            s.add(MemoryRole::SavedActivations, d, b);
        }
        s.add(MemoryRole::Fp8Scaling, DType::F32, fp8_state_bytes);
        s.add(
            MemoryRole::Workspace,
            DType::F32,
            mixprec_tensor::workspace_bytes(),
        );
        s
    }
}

/// What the prediction needs to know about a model and its step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ModelShape {
    /// Scalar parameters (all used by GEMMs, so all get a compute copy).
    pub params: usize,
    /// GEMMs per step (each FP8 GEMM keeps scaling state for three tensors).
    pub gemms: usize,
    /// Elements of the distinct tensors saved as GEMM inputs (activations, not weights):
    /// saved in `P::GemmFwd`.
    pub gemm_inputs: usize,
    /// Elements of the distinct tensors saved by element-wise ops: in `P::Activation`.
    pub elementwise_inputs: usize,
    /// Elements of the distinct tensors saved by precision-sensitive ops: in
    /// `P::Sensitive`.
    pub sensitive_inputs: usize,
}

/// The formula for a step of `model` under `P` with `optimizer` (and `fp8`'s state when
/// `P`'s GEMMs are FP8):
/// master `4P` + compute copies `bytes(GemmFwd) P` (none when GEMMs run in the master's
/// precision) + gradients `4P` + optimizer state (`0 / 4P / 8P`) + saved activations
/// (GEMM inputs in `GemmFwd`, element-wise inputs in `Activation`, sensitive inputs in
/// `Sensitive`, a tensor counted once) + FP8 scaling (per GEMM three scales and
/// histories). FP32 + Adam is the classic `16P`; BF16 mixed + Adam `18P`; FP8 + Adam `17P`.
pub fn predict_memory<P: Policy>(
    model: &ModelShape,
    optimizer: OptimizerKind,
    fp8: Option<Fp8Recipe>,
) -> MemorySummary {
    fn bytes<D: Dtype>(elements: usize) -> (DType, usize) {
        (D::DTYPE, D::BYTES * elements)
    }
    let params = model.params;
    let mut s = MemorySummary::default();
    s.add(MemoryRole::MasterWeights, DType::F32, 4 * params);
    if <P::GemmFwd as Dtype>::DTYPE != <P::Param as Dtype>::DTYPE {
        let (d, b) = bytes::<P::GemmFwd>(params);
        s.add(MemoryRole::ComputeCopies, d, b);
    }
    s.add(MemoryRole::Gradients, DType::F32, 4 * params);
    s.add(
        MemoryRole::OptimizerState,
        DType::F32,
        optimizer.bytes_per_param() * params,
    );
    for (d, b) in [
        bytes::<P::GemmFwd>(model.gemm_inputs),
        bytes::<P::Activation>(model.elementwise_inputs),
        bytes::<P::Sensitive>(model.sensitive_inputs),
    ] {
        s.add(MemoryRole::SavedActivations, d, b);
    }
    if let Some(recipe) = fp8
        && <P::GemmFwd as Dtype>::DTYPE.is_fp8()
    {
        s.add(
            MemoryRole::Fp8Scaling,
            DType::F32,
            3 * model.gemms * recipe.bytes_per_tensor(),
        );
    }
    s
}
