//! [`DelayedScaling`]: Transformer Engine's FP8 delayed scaling for one tensor.
//!
//! Each step the quantiser records the amax of the *unscaled* tensor into a staging slot;
//! `update` computes `scale = fp8_max / amax / 2^margin` from the history window (`max`)
//! or the staging value (`most_recent`), keeps the previous scale when that amax is 0,
//! inf or NaN, uses f32::MAX when the quotient overflows, and rolls the history — except
//! for a tensor that was not used this step (staging amax 0), which keeps its history
//! and its scale (TE PR #825). The initial scale is 1 and the history all zeros.

use mixprec_dtype::Dtype;

/// How the amax is taken from the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AmaxCompute {
    /// Largest amax in the history window (TE's default).
    #[default]
    Max,
    /// The amax recorded this step.
    MostRecent,
}

/// Settings of [`DelayedScaling`]; `Default` is TE's (margin 0, history 1024, max).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DelayedScalingConfig {
    /// Headroom in powers of two: `scale = fp8_max / amax / 2^margin`.
    pub margin: i32,
    /// Length of the amax history (at least 1).
    pub history_len: usize,
    /// How the amax is taken from the history.
    pub amax_compute: AmaxCompute,
}

impl Default for DelayedScalingConfig {
    fn default() -> Self {
        DelayedScalingConfig {
            margin: 0,
            history_len: 1024,
            amax_compute: AmaxCompute::Max,
        }
    }
}

/// Delayed-scaling state of one FP8 tensor role (a weight, an activation, a gradient).
#[derive(Clone, Debug, PartialEq)]
pub struct DelayedScaling {
    cfg: DelayedScalingConfig,
    fp8_max: f32,
    /// `history[0]` is the staging slot for this step; `history[1..]` the past steps,
    /// oldest first and newest last (TE's layout).
    history: Vec<f32>,
    scale: f32,
}

impl DelayedScaling {
    /// State for tensors quantised to `T` (E4M3: 448, E5M2: 57344). A zero history length
    /// is raised to 1.
    pub fn new<T: Dtype>(cfg: DelayedScalingConfig) -> DelayedScaling {
        let cfg = DelayedScalingConfig {
            history_len: cfg.history_len.max(1),
            ..cfg
        };
        DelayedScaling {
            cfg,
            fp8_max: T::MAX.to_f32(),
            history: vec![0.0; cfg.history_len],
            scale: 1.0,
        }
    }

    /// A state continuing from a saved one: `history` (staging slot first, as
    /// [`DelayedScaling::history`] gives it) and `scale`, for tensors whose format's
    /// largest finite value is `fp8_max`. `None` unless the history has `cfg.history_len`
    /// entries (at least 1), `fp8_max` is finite and > 0 and `scale` is finite and > 0
    /// (delayed scaling never produces another).
    pub fn from_parts(
        cfg: DelayedScalingConfig,
        fp8_max: f32,
        history: Vec<f32>,
        scale: f32,
    ) -> Option<DelayedScaling> {
        let ok = history.len() == cfg.history_len.max(1)
            && fp8_max.is_finite()
            && fp8_max > 0.0
            && scale.is_finite()
            && scale > 0.0;
        ok.then_some(DelayedScaling {
            cfg: DelayedScalingConfig {
                history_len: history.len(),
                ..cfg
            },
            fp8_max,
            history,
            scale,
        })
    }

    /// The largest finite value of the format the tensor is quantised to.
    pub fn fp8_max(&self) -> f32 {
        self.fp8_max
    }

    /// The scale to quantise with this step (`q = cast(x * scale)`).
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// The history, staging slot first.
    pub fn history(&self) -> &[f32] {
        &self.history
    }

    /// Records the amax of the unscaled tensor seen this step (max-reduced into the
    /// staging slot; NaN sticks, as a NaN amax must not be lost).
    pub fn record_amax(&mut self, amax: f32) {
        let slot = &mut self.history[0];
        *slot = if amax.is_nan() || slot.is_nan() {
            f32::NAN
        } else {
            slot.max(amax.abs())
        };
    }

    /// End of step: new scale from the history, then roll (skipped entirely for a tensor
    /// that recorded no amax this step).
    pub fn update(&mut self) {
        let current = self.history[0];
        if current == 0.0 {
            return;
        }
        let amax = match self.cfg.amax_compute {
            AmaxCompute::Max => self.history.iter().fold(0.0f32, |m, &v| {
                if v.is_nan() || m.is_nan() {
                    f32::NAN
                } else {
                    m.max(v)
                }
            }),
            AmaxCompute::MostRecent => current,
        };
        if amax.is_finite() && amax > 0.0 {
            let scaled_max = f64::from(self.fp8_max) * 2f64.powi(-self.cfg.margin);
            let s = (scaled_max / f64::from(amax)) as f32;
            self.scale = if s.is_finite() { s } else { f32::MAX };
        }
        // Roll left: the staging value becomes the newest entry, the slot is cleared.
        let l = self.history.len();
        if l > 1 {
            self.history.rotate_left(1);
            self.history[l - 1] = current;
            self.history[0] = 0.0;
        } else {
            self.history[0] = 0.0;
        }
    }
}
