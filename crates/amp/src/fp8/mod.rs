//! [`Fp8Scaling`]: the FP8 scaling state of a model, kept across steps.
//!
//! Transformer Engine keeps "FP8 meta" per module: for each GEMM, a scale and an amax
//! history for the input, the weight and the output gradient. Here a GEMM is identified by
//! its position in the step (the n-th FP8 GEMM an [`crate::Autocast`] runs), which is
//! stable when a model runs its layers in the same order every step, as TE assumes too.
//!
//! Recipes:
//! - [`Fp8Recipe::Delayed`] (TE's `DelayedScaling`, the default): this step quantises with
//!   the scale computed from past amaxes; the amax of this step's unscaled tensor is
//!   recorded, and [`Fp8Scaling::update`] at the end of the step computes the next scales
//!   and rolls the histories ([`DelayedScaling`]).
//! - [`Fp8Recipe::Current`]: each tensor is scaled from its own amax just before it is
//!   quantised, with the largest power of two that fits (exact to apply and undo; TE's
//!   current scaling uses `fp8_max / amax` itself).
//!
//! Quantisation saturates in both. E4M3 for the forward operands, E5M2 for gradients.

mod saved;

pub use saved::Fp8TensorState;

use crate::delayed::{DelayedScaling, DelayedScalingConfig};
use mixprec_autograd::{Error, Result};
use mixprec_dtype::Dtype;
use mixprec_tensor::{CastOptions, CastOverflow, CastReport, CastScale, fp8_current_scale};
use std::sync::{Arc, Mutex, MutexGuard};

/// How FP8 tensors get their scales.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fp8Recipe {
    /// Scale from the amax history of past steps (TE's default recipe).
    Delayed(DelayedScalingConfig),
    /// Scale from the tensor's own amax (power of two).
    Current,
}

impl Default for Fp8Recipe {
    fn default() -> Self {
        Fp8Recipe::Delayed(DelayedScalingConfig::default())
    }
}

impl Fp8Recipe {
    /// The delayed-scaling settings of each tensor's state (current scaling keeps a
    /// one-entry history it never reads).
    fn tensor_config(&self) -> DelayedScalingConfig {
        match *self {
            Fp8Recipe::Delayed(cfg) => cfg,
            Fp8Recipe::Current => DelayedScalingConfig {
                history_len: 1,
                ..DelayedScalingConfig::default()
            },
        }
    }

    /// State bytes per quantised tensor: an f32 scale, plus the f32 amax history for
    /// delayed scaling.
    pub fn bytes_per_tensor(&self) -> usize {
        match self {
            Fp8Recipe::Delayed(cfg) => 4 + 4 * cfg.history_len.max(1),
            Fp8Recipe::Current => 4,
        }
    }
}

/// The three quantised tensors of one FP8 GEMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fp8Role {
    /// The left operand (the activation).
    Input,
    /// The right operand (the weight).
    Weight,
    /// The output gradient (E5M2) in backward.
    Grad,
}

impl Fp8Role {
    /// The three roles, in the order of a GEMM's state.
    pub const ALL: [Fp8Role; 3] = [Fp8Role::Input, Fp8Role::Weight, Fp8Role::Grad];

    /// Lower-case name, as used in checkpoint tensor names (`input`, `weight`, `grad`).
    pub fn name(self) -> &'static str {
        match self {
            Fp8Role::Input => "input",
            Fp8Role::Weight => "weight",
            Fp8Role::Grad => "grad",
        }
    }

    /// The role called `name` ([`Fp8Role::name`]'s inverse).
    pub fn from_name(name: &str) -> Option<Fp8Role> {
        Fp8Role::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// One quantised tensor's numbers for the last step, for the monitor and reports.
#[derive(Clone, Debug, PartialEq)]
pub struct Fp8TensorStats {
    /// Position of the GEMM in the step.
    pub gemm: usize,
    /// The scope (layer) the GEMM ran in, if any.
    pub scope: Option<Arc<str>>,
    /// Which operand.
    pub role: Fp8Role,
    /// Amax of the unscaled tensor this step (0 when it was not used).
    pub amax: f32,
    /// The scale it was quantised with this step.
    pub scale: f32,
    /// Values clamped to the format's maximum.
    pub saturated: usize,
    /// Non-zero values that became zero.
    pub underflowed: usize,
    /// Elements quantised.
    pub elements: usize,
    /// Infinite or NaN values among them (an infinity is clamped to ±MAX by the
    /// saturating cast, so it is counted here and the step is treated as non-finite).
    pub non_finite: usize,
}

impl Fp8TensorStats {
    /// True when the tensor held an inf or NaN this step (or its amax is not finite).
    pub fn is_non_finite(&self) -> bool {
        self.non_finite > 0 || !self.amax.is_finite()
    }
}

#[derive(Clone, Debug)]
struct TensorState {
    delayed: DelayedScaling,
    /// This step's numbers (reset by `update`).
    last: Fp8TensorStats,
}

impl TensorState {
    fn new<T: Dtype>(gemm: usize, role: Fp8Role, cfg: DelayedScalingConfig) -> TensorState {
        TensorState::from_delayed(gemm, role, DelayedScaling::new::<T>(cfg))
    }

    /// A tensor with no numbers yet this step, continuing from `delayed`.
    fn from_delayed(gemm: usize, role: Fp8Role, delayed: DelayedScaling) -> TensorState {
        TensorState {
            last: Fp8TensorStats {
                gemm,
                scope: None,
                role,
                amax: 0.0,
                scale: delayed.scale(),
                saturated: 0,
                underflowed: 0,
                elements: 0,
                non_finite: 0,
            },
            delayed,
        }
    }
}

#[derive(Debug)]
struct Inner {
    recipe: Fp8Recipe,
    /// Per GEMM, per role (made on first use, in the role's FP8 format).
    gemms: Vec<[Option<TensorState>; 3]>,
}

/// A saved copy of an [`Fp8Scaling`]'s state (see [`Fp8Scaling::snapshot`]).
#[derive(Debug)]
pub struct Fp8Snapshot(Inner);

/// FP8 scaling state shared by the steps of one model (cheap to clone: a handle).
#[derive(Clone, Debug)]
pub struct Fp8Scaling(Arc<Mutex<Inner>>);

impl Default for Fp8Scaling {
    fn default() -> Self {
        Fp8Scaling::new(Fp8Recipe::default())
    }
}

impl Fp8Scaling {
    /// Empty state for `recipe`; GEMMs are added as they first run.
    pub fn new(recipe: Fp8Recipe) -> Fp8Scaling {
        Fp8Scaling(Arc::new(Mutex::new(Inner {
            recipe,
            gemms: Vec::new(),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the whole state (not shared with this handle), for undoing a failed step.
    pub fn snapshot(&self) -> Fp8Snapshot {
        let inner = self.lock();
        Fp8Snapshot(Inner {
            recipe: inner.recipe,
            gemms: inner.gemms.clone(),
        })
    }

    /// Puts back a state taken by [`Fp8Scaling::snapshot`]: amaxes recorded since are
    /// forgotten and the histories and scales are as they were.
    pub fn restore(&self, snapshot: &Fp8Snapshot) {
        let mut inner = self.lock();
        inner.recipe = snapshot.0.recipe;
        inner.gemms = snapshot.0.gemms.clone();
    }

    /// True when both handles are the same state.
    pub fn same(&self, other: &Fp8Scaling) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The state's address: equal for handles of one state (a key while it is alive).
    pub(crate) fn address(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// The recipe.
    pub fn recipe(&self) -> Fp8Recipe {
        self.lock().recipe
    }

    /// Number of GEMMs seen so far.
    pub fn gemms(&self) -> usize {
        self.lock().gemms.len()
    }

    /// Bytes of the scaling state: per quantised tensor one f32 scale and, for delayed
    /// scaling, its f32 amax history (TE's `scale` and `amax_history` buffers).
    pub fn nbytes(&self) -> usize {
        let inner = self.lock();
        inner.gemms.iter().flatten().flatten().count() * inner.recipe.bytes_per_tensor()
    }

    /// Quantises operand `role` of GEMM `gemm` (made known on first use) into `T`: picks
    /// the scale by the recipe, runs `cast` with it (saturating), and records the
    /// unscaled amax and the cast's counts.
    ///
    /// Delayed scaling reads the amax from the cast's report (counted in the cast's own
    /// pass: the tensor is read once); current scaling needs it before the cast, from
    /// `amax` (a separate read), and its report's amax is the same number.
    pub(crate) fn quantize<T: Dtype, R, E>(
        &self,
        gemm: usize,
        scope: Option<Arc<str>>,
        role: Fp8Role,
        amax: impl FnOnce() -> Result<f32, E>,
        cast: impl FnOnce(CastOptions) -> Result<(R, CastReport), E>,
    ) -> Result<R, E> {
        let mut inner = self.lock();
        let recipe = inner.recipe;
        let cfg = recipe.tensor_config();
        while inner.gemms.len() <= gemm {
            inner.gemms.push([None, None, None]);
        }
        let t = inner.gemms[gemm][role as usize]
            .get_or_insert_with(|| TensorState::new::<T>(gemm, role, cfg));
        let scale = match recipe {
            Fp8Recipe::Delayed(_) => t.delayed.scale(),
            Fp8Recipe::Current => fp8_current_scale(amax()?, T::MAX.to_f32()),
        };
        let (q, report) = cast(CastOptions {
            scale: CastScale::Fixed(scale),
            overflow: CastOverflow::Saturate,
            ..CastOptions::default()
        })?;
        let amax = report.amax;
        t.delayed.record_amax(amax);
        let last = &mut t.last;
        last.amax = if amax.is_nan() || last.amax.is_nan() {
            f32::NAN
        } else {
            last.amax.max(amax.abs())
        };
        last.scale = scale;
        last.scope = scope;
        last.saturated += report.saturated;
        last.underflowed += report.underflowed;
        last.elements += report.elements;
        last.non_finite += report.overflowed + report.nan;
        Ok(q)
    }

    /// This step's staging amaxes (the delayed histories' slot 0), GEMM by GEMM, role by
    /// role, for the tensors this state has: what data-parallel ranks reduce (maximum)
    /// before [`Fp8Scaling::update`], as Transformer Engine does over its data-parallel
    /// group, so that every rank computes the same scales.
    pub fn staging_amaxes(&self) -> Vec<f32> {
        self.lock()
            .gemms
            .iter()
            .flatten()
            .flatten()
            .map(|t| t.delayed.history()[0])
            .collect()
    }

    /// Records `amaxes` (one per tensor, in [`Fp8Scaling::staging_amaxes`]'s order; the
    /// maximum over the ranks) into the staging slots: each slot keeps the larger of its
    /// own and the given value, and a NaN sticks. Errors, recording nothing, on a count
    /// that differs from this state's tensors.
    pub fn record_staging_amaxes(&self, amaxes: &[f32]) -> Result<()> {
        let mut inner = self.lock();
        let tensors = inner.gemms.iter().flatten().flatten().count();
        if tensors != amaxes.len() {
            return Err(Error::invalid(
                "Fp8Scaling::record_staging_amaxes",
                format!("{} amaxes for {tensors} tensors", amaxes.len()),
            ));
        }
        let slots = inner.gemms.iter_mut().flatten().flatten();
        for (t, &a) in slots.zip(amaxes) {
            t.delayed.record_amax(a);
        }
        Ok(())
    }

    /// End of step: delayed scaling computes the next scales from the histories and rolls
    /// them (tensors unused this step keep theirs). Returns this step's numbers, one entry
    /// per quantised tensor, and clears them.
    pub fn update(&self) -> Vec<Fp8TensorStats> {
        let mut inner = self.lock();
        let mut out = Vec::with_capacity(inner.gemms.len() * 3);
        for g in inner.gemms.iter_mut() {
            for t in g.iter_mut().flatten() {
                t.delayed.update();
                out.push(t.last.clone());
                t.last.amax = 0.0;
                t.last.saturated = 0;
                t.last.underflowed = 0;
                t.last.elements = 0;
                t.last.non_finite = 0;
                t.last.scale = t.delayed.scale();
            }
        }
        out
    }

    /// The scale the next quantisation of `role` in GEMM `gemm` will use under delayed
    /// scaling (`None` for an unknown GEMM).
    pub fn scale(&self, gemm: usize, role: Fp8Role) -> Option<f32> {
        self.lock()
            .gemms
            .get(gemm)
            .and_then(|g| g[role as usize].as_ref())
            .map(|t| t.delayed.scale())
    }

    /// The amax history of `role` in GEMM `gemm`, staging slot first.
    pub fn history(&self, gemm: usize, role: Fp8Role) -> Option<Vec<f32>> {
        self.lock()
            .gemms
            .get(gemm)
            .and_then(|g| g[role as usize].as_ref())
            .map(|t| t.delayed.history().to_vec())
    }
}
