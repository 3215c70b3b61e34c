//! [`GradScaler`]: dynamic loss scaling with PyTorch's exact rules, then better.
//!
//! PyTorch semantics kept: defaults 65536 / x2 / x0.5 / 2000; the reciprocal taken in f64
//! then rounded to f32; the inf/NaN check done in f32 while unscaling; gradients unscaled
//! even when an inf is found; the step skipped with parameters and optimizer state
//! untouched; growth refused when the grown scale would be infinite; one update after all
//! optimizers. Added: optional min/max scale, Megatron-style hysteresis (`hysteresis = 1`
//! is PyTorch's behaviour), and a scale that never goes below the smallest normal f32 —
//! PyTorch's can reach exactly 0 after enough backoffs, after which `1/scale` turns every
//! gradient into NaN.

use crate::master::MasterWeights;
use mixprec_autograd::{Error, Gradients, LeafGrad, Result, Var};
use mixprec_dtype::F32;
use mixprec_tensor::Tensor;

/// Settings of a [`GradScaler`]. `Default` is PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradScalerConfig {
    /// Initial scale (65536).
    pub init_scale: f32,
    /// Factor applied after `growth_interval` clean steps (2, must be > 1).
    pub growth_factor: f64,
    /// Factor applied on an overflowing step (0.5, must be in (0, 1)).
    pub backoff_factor: f64,
    /// Clean steps between growths (2000, at least 1).
    pub growth_interval: u32,
    /// Lowest scale (none; the smallest normal f32 is always enforced).
    pub min_scale: Option<f32>,
    /// Highest scale (none; Apex used 2^24).
    pub max_scale: Option<f32>,
    /// Overflowing steps tolerated before a backoff, refilled when the scale grows
    /// (Megatron; 1 = back off on every overflow, as PyTorch).
    pub hysteresis: u32,
}

impl Default for GradScalerConfig {
    fn default() -> Self {
        GradScalerConfig {
            init_scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
            min_scale: None,
            max_scale: None,
            hysteresis: 1,
        }
    }
}

/// A scaler's whole state for checkpoints: its settings and where it stands. The
/// settings travel with it, so a resumed run cannot continue under other ones
/// ([`GradScaler::from_state`] rebuilds the scaler; [`GradScaler::load_state`] refuses a
/// state saved under other settings).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradScalerState {
    /// The settings the scaler runs with.
    pub config: GradScalerConfig,
    /// Current scale.
    pub scale: f32,
    /// Clean steps since the last growth or backoff.
    pub growth_tracker: u32,
    /// Overflows still tolerated before a backoff.
    pub hysteresis_tracker: u32,
}

/// Gradients of a scaled loss: still multiplied by the scale. Only
/// [`GradScaler::unscale`] turns them into [`UnscaledGrads`], so clipping or stepping
/// with scaled gradients does not compile:
///
/// ```compile_fail,E0308
/// use mixprec_amp::{clip_grad_norm, ScaledGrads};
/// fn clip(g: &mut ScaledGrads) { clip_grad_norm(g, 1.0); } // expected UnscaledGrads
/// ```
#[derive(Debug)]
pub struct ScaledGrads {
    grads: Gradients,
    scale: f32,
}

impl ScaledGrads {
    /// The scale the loss was multiplied by.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// The gradients (still scaled).
    pub(crate) fn gradients(&self) -> &Gradients {
        &self.grads
    }
}

/// Gradients after unscaling, in F32, one per parameter passed to
/// [`GradScaler::unscale`] (in that order; `None` where no gradient reached it).
#[derive(Clone, Debug)]
pub struct UnscaledGrads {
    pub(crate) grads: Vec<Option<Tensor<F32>>>,
    found_inf: bool,
}

impl UnscaledGrads {
    /// Plain gradients that need no unscaling: the one public constructor besides
    /// [`GradScaler::unscale`], for custom loops under policies without loss scaling.
    ///
    /// It trusts that `grads` came from the backward of an *unscaled* loss. Gradients of
    /// a scaled loss made by [`GradScaler::backward`] are [`ScaledGrads`], whose inner
    /// gradients cannot be taken out, so they cannot reach this constructor; a loss
    /// multiplied by a scale by hand is the one thing it cannot detect. The inf/NaN check
    /// runs here as in `unscale` ([`UnscaledGrads::found_inf`]).
    pub fn from_gradients(grads: &Gradients, params: &[&Var<F32>]) -> UnscaledGrads {
        UnscaledGrads::new(params.iter().map(|p| grads.get(p).cloned()).collect())
    }

    /// Gradients given as (parameter name, gradient) pairs, for custom loops and tests
    /// (PyTorch's `param.grad = ...`); parameters not named have no gradient, and the
    /// optimizer leaves them as they are. The same trust as
    /// [`UnscaledGrads::from_gradients`] applies: the values are unscaled. Errors on a
    /// name that is not a parameter of `master`, a name given twice, or a gradient whose
    /// shape is not its parameter's.
    ///
    /// ```
    /// use mixprec_amp::{MasterWeights, UnscaledGrads};
    /// use mixprec_tensor::Tensor;
    /// let mut master = MasterWeights::new();
    /// master.add("w", Tensor::zeros(&[2]));
    /// master.add("b", Tensor::zeros(&[1]));
    /// let g = UnscaledGrads::from_named(&master, [("w", Tensor::from_f32(&[1.0, 2.0], &[2])?)])?;
    /// assert!(g.get(0).is_some() && g.get(1).is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_named<'n>(
        master: &MasterWeights,
        grads: impl IntoIterator<Item = (&'n str, Tensor<F32>)>,
    ) -> Result<UnscaledGrads> {
        const OP: &str = "UnscaledGrads::from_named";
        let mut slots: Vec<Option<Tensor<F32>>> = vec![None; master.len()];
        for (name, g) in grads {
            let i = master
                .index_of(name)
                .ok_or_else(|| Error::invalid(OP, format!("no parameter is called {name:?}")))?;
            let p = master.get(i).map_or(&[][..], |p| p.shape());
            if g.shape() != p {
                return Err(Error::invalid(
                    OP,
                    format!(
                        "gradient for {name:?} has shape {:?}, the parameter {p:?}",
                        g.shape()
                    ),
                ));
            }
            if slots[i].replace(g).is_some() {
                return Err(Error::invalid(OP, format!("{name:?} is given twice")));
            }
        }
        Ok(UnscaledGrads::new(slots))
    }

    /// Gradients that need no unscaling, with the inf/NaN check.
    pub(crate) fn new(grads: Vec<Option<Tensor<F32>>>) -> UnscaledGrads {
        let found_inf = grads.iter().flatten().any(has_non_finite);
        UnscaledGrads { grads, found_inf }
    }

    /// The gradient of the `i`-th parameter.
    pub fn get(&self, i: usize) -> Option<&Tensor<F32>> {
        self.grads.get(i)?.as_ref()
    }

    /// All gradients in parameter order.
    pub fn iter(&self) -> impl Iterator<Item = Option<&Tensor<F32>>> {
        self.grads.iter().map(|g| g.as_ref())
    }

    /// True when some gradient held an inf or NaN (the step will be skipped).
    pub fn found_inf(&self) -> bool {
        self.found_inf
    }

    /// The gradients that are present, in parameter order (cheap: tensors share their
    /// storage): what a data-parallel all-reduce averages.
    pub fn present(&self) -> Vec<Tensor<F32>> {
        self.grads.iter().flatten().cloned().collect()
    }

    /// Replaces the present gradients with `new` (as many, same shapes, same order; a
    /// data-parallel mean of [`UnscaledGrads::present`]) and checks them for inf/NaN
    /// again. Errors, changing nothing, when the count or a shape differs.
    pub fn replace_present(&mut self, new: Vec<Tensor<F32>>) -> Result<()> {
        let present: Vec<&Tensor<F32>> = self.grads.iter().flatten().collect();
        if present.len() != new.len() {
            return Err(Error::invalid(
                "UnscaledGrads::replace_present",
                format!("{} gradients for {} present", new.len(), present.len()),
            ));
        }
        if let Some((i, (old, n))) = present
            .iter()
            .zip(&new)
            .enumerate()
            .find(|(_, (old, n))| old.shape() != n.shape())
        {
            return Err(Error::invalid(
                "UnscaledGrads::replace_present",
                format!(
                    "gradient {i} has shape {:?}, its replacement {:?}",
                    old.shape(),
                    n.shape()
                ),
            ));
        }
        let mut new = new.into_iter();
        for g in self.grads.iter_mut().flatten() {
            *g = new.next().expect("counted above");
        }
        self.found_inf = self.grads.iter().flatten().any(has_non_finite);
        Ok(())
    }
}

/// `g * (1/scale)`: the reciprocal computed in f64 and rounded to f32, the multiply in
/// f32 (skipped when the reciprocal is 1).
pub(crate) fn unscale_one(g: Tensor<F32>, scale: f32) -> Tensor<F32> {
    let inv = (1.0f64 / f64::from(scale)) as f32;
    if inv == 1.0 {
        g
    } else {
        g.mul_scalar(f64::from(inv))
    }
}

fn has_non_finite(g: &Tensor<F32>) -> bool {
    !g.all_finite()
}

/// Whether [`GradScaler::step`] ran the update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// The gradients were finite: the update ran.
    Stepped,
    /// An inf or NaN was found: nothing was written.
    Skipped,
}

/// Dynamic loss scaler (see the module docs for the exact rules).
#[derive(Clone, Debug)]
pub struct GradScaler {
    /// Settings and counters (the settings are `state.config`).
    state: GradScalerState,
    found_inf: bool,
    skipped: u64,
}

impl GradScaler {
    /// A scaler with these settings. Errors on a non-positive or non-finite initial scale,
    /// `growth_factor <= 1`, `backoff_factor` outside (0, 1), a zero interval or
    /// hysteresis, a bound that is not finite and positive, `min_scale > max_scale`, or an
    /// initial scale outside `[min_scale, max_scale]` (the floor is at least the smallest
    /// normal f32).
    pub fn new(cfg: GradScalerConfig) -> Result<GradScaler> {
        if !(cfg.init_scale.is_finite() && cfg.init_scale > 0.0) {
            return Err(Error::invalid(
                "GradScaler",
                format!("init_scale must be finite and > 0, got {}", cfg.init_scale),
            ));
        }
        if !(cfg.growth_factor > 1.0 && cfg.growth_factor.is_finite()) {
            return Err(Error::invalid(
                "GradScaler",
                format!("growth_factor must be > 1, got {}", cfg.growth_factor),
            ));
        }
        if !(cfg.backoff_factor > 0.0 && cfg.backoff_factor < 1.0) {
            return Err(Error::invalid(
                "GradScaler",
                format!(
                    "backoff_factor must be in (0, 1), got {}",
                    cfg.backoff_factor
                ),
            ));
        }
        if cfg.growth_interval == 0 || cfg.hysteresis == 0 {
            return Err(Error::invalid(
                "GradScaler",
                format!(
                    "growth_interval ({}) and hysteresis ({}) must be at least 1",
                    cfg.growth_interval, cfg.hysteresis
                ),
            ));
        }
        for (name, bound) in [("min_scale", cfg.min_scale), ("max_scale", cfg.max_scale)] {
            if let Some(b) = bound
                && !(b.is_finite() && b > 0.0)
            {
                return Err(Error::invalid(
                    "GradScaler",
                    format!("{name} must be finite and > 0, got {b}"),
                ));
            }
        }
        if let (Some(lo), Some(hi)) = (cfg.min_scale, cfg.max_scale)
            && lo > hi
        {
            return Err(Error::invalid(
                "GradScaler",
                format!("min_scale {lo} is above max_scale {hi}"),
            ));
        }
        let floor = cfg.min_scale.unwrap_or(0.0).max(f32::MIN_POSITIVE);
        let ceiling = cfg.max_scale.unwrap_or(f32::INFINITY);
        if !(floor..=ceiling).contains(&cfg.init_scale) {
            return Err(Error::invalid(
                "GradScaler",
                format!(
                    "init_scale {} is outside [{floor}, {ceiling}] (min_scale, max_scale)",
                    cfg.init_scale
                ),
            ));
        }
        let state = GradScalerState {
            config: cfg,
            scale: cfg.init_scale,
            growth_tracker: 0,
            hysteresis_tracker: cfg.hysteresis,
        };
        Ok(GradScaler {
            state,
            found_inf: false,
            skipped: 0,
        })
    }

    /// The current scale.
    pub fn scale(&self) -> f32 {
        self.state.scale
    }

    /// Steps skipped so far because of inf/NaN gradients.
    pub fn skipped_steps(&self) -> u64 {
        self.skipped
    }

    /// The settings.
    pub fn config(&self) -> GradScalerConfig {
        self.state.config
    }

    /// Backward of `loss * scale`: the gradients, still scaled.
    pub fn backward(&self, loss: &Var<F32>) -> Result<ScaledGrads> {
        let scaled = loss.try_mul_scalar(f64::from(self.state.scale))?;
        Ok(ScaledGrads {
            grads: scaled.backward()?,
            scale: self.state.scale,
        })
    }

    /// [`GradScaler::backward`], calling `on_final` with each leaf's gradient — still
    /// scaled by [`GradScaler::scale`] — as soon as backward has made it final
    /// ([`Var::backward_with_leaf_hook`]); [`GradAccumulator::finished`] turns it into
    /// the unscaled gradient the step will use, so a data-parallel exchange can start
    /// during backward.
    ///
    /// [`GradAccumulator::finished`]: crate::GradAccumulator::finished
    pub fn backward_with_leaf_hook(
        &self,
        loss: &Var<F32>,
        on_final: &mut dyn FnMut(LeafGrad<'_>),
    ) -> Result<ScaledGrads> {
        let scaled = loss.try_mul_scalar(f64::from(self.state.scale))?;
        Ok(ScaledGrads {
            grads: scaled.backward_with_leaf_hook(on_final)?,
            scale: self.state.scale,
        })
    }

    /// Unscales the gradients of `params` (F32 master weights): `g * (1/scale)` with the
    /// reciprocal computed in f64 and rounded to f32, the multiply in f32. Records whether
    /// any scaled gradient was inf or NaN; unscales regardless (as PyTorch).
    pub fn unscale(&mut self, scaled: ScaledGrads, params: &[&Var<F32>]) -> UnscaledGrads {
        let grads = params
            .iter()
            .map(|p| scaled.grads.get(p).cloned())
            .collect();
        self.unscale_tensors(grads, scaled.scale)
    }

    /// Unscales gradients that were computed at `scale`.
    pub(crate) fn unscale_tensors(
        &mut self,
        grads: Vec<Option<Tensor<F32>>>,
        scale: f32,
    ) -> UnscaledGrads {
        // One pass per gradient (the fused unscale and check); a reciprocal the fused op
        // refuses (not finite and positive) takes the two passes it fuses.
        let inv = (1.0f64 / f64::from(scale)) as f32;
        let mut found_inf = false;
        let grads = grads
            .into_iter()
            .map(|g| {
                g.map(|g| match g.unscale_checked(inv) {
                    Ok((unscaled, non_finite)) => {
                        found_inf |= non_finite;
                        unscaled
                    }
                    Err(_) => {
                        found_inf |= has_non_finite(&g);
                        unscale_one(g, scale)
                    }
                })
            })
            .collect();
        self.found_inf |= found_inf;
        UnscaledGrads { grads, found_inf }
    }

    /// Runs `update` (the optimizer step) unless the gradients held an inf or NaN, in
    /// which case nothing is called and nothing changes.
    pub fn step(
        &mut self,
        grads: &UnscaledGrads,
        update: impl FnOnce(&UnscaledGrads),
    ) -> StepOutcome {
        if grads.found_inf {
            self.skipped += 1;
            StepOutcome::Skipped
        } else {
            update(grads);
            StepOutcome::Stepped
        }
    }

    /// Marks this step as overflowing although its gradients were finite (a non-finite
    /// loss, or an FP8 operand that held an inf): the step counts as skipped and the next
    /// [`GradScaler::update`] backs off as after an overflow.
    pub fn record_overflow(&mut self) {
        self.found_inf = true;
        self.skipped += 1;
    }

    /// Updates the scale once per step, after every optimizer has stepped: backoff if any
    /// unscale since the last update found an inf (after the hysteresis allowance), growth
    /// after `growth_interval` clean steps (refused if the result is not finite, clamped
    /// to `max_scale`). The scale never drops below `min_scale` or the smallest normal f32.
    pub fn update(&mut self) {
        let cfg = self.state.config;
        let s = &mut self.state;
        let floor = cfg.min_scale.unwrap_or(0.0).max(f32::MIN_POSITIVE);
        if self.found_inf {
            s.growth_tracker = 0;
            s.hysteresis_tracker = s.hysteresis_tracker.saturating_sub(1);
            if s.hysteresis_tracker == 0 {
                s.scale = ((f64::from(s.scale) * cfg.backoff_factor) as f32).max(floor);
            }
        } else {
            s.growth_tracker += 1;
            if s.growth_tracker == cfg.growth_interval {
                let grown = (f64::from(s.scale) * cfg.growth_factor) as f32;
                if grown.is_finite() {
                    s.scale = cfg.max_scale.map_or(grown, |hi| grown.min(hi));
                    s.hysteresis_tracker = cfg.hysteresis;
                }
                s.growth_tracker = 0;
            }
        }
        self.found_inf = false;
    }

    /// The state to save in a checkpoint (after `update`).
    pub fn state(&self) -> GradScalerState {
        self.state
    }

    /// A scaler that continues from a saved state, under the settings saved with it.
    /// Errors as [`GradScaler::new`] on bad settings and as [`GradScaler::load_state`] on
    /// counters that do not fit them.
    pub fn from_state(state: GradScalerState) -> Result<GradScaler> {
        let mut s = GradScaler::new(state.config)?;
        s.load_state(state)?;
        Ok(s)
    }

    /// Restores a saved state. Errors (changing nothing) when it was saved under other
    /// settings (use [`GradScaler::from_state`] to take them over), on a scale that is
    /// not finite and positive, or a tracker beyond the interval/hysteresis.
    pub fn load_state(&mut self, state: GradScalerState) -> Result<()> {
        if state.config != self.state.config {
            return Err(Error::invalid(
                "GradScaler",
                format!(
                    "the state was saved under {:?}, this scaler runs under {:?}; \
                     build it with GradScaler::from_state",
                    state.config, self.state.config
                ),
            ));
        }
        let cfg = &self.state.config;
        if !(state.scale.is_finite() && state.scale > 0.0)
            || state.growth_tracker >= cfg.growth_interval
            || state.hysteresis_tracker > cfg.hysteresis
        {
            return Err(Error::invalid(
                "GradScaler",
                format!("state {state:?} does not fit its configuration"),
            ));
        }
        self.state = state;
        self.found_inf = false;
        Ok(())
    }
}
