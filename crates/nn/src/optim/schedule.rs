//! Learning-rate schedules: [`WarmupCosine`] (linear warmup to the base rate, then
//! cosine decay to a floor), [`ConstantLr`], and the [`LrSchedule`] trait for one's own,
//! held by a [`crate::TrainConfig`] as a [`Schedule`].

use std::sync::Arc;

/// `lr(s) = base (s + 1) / warmup` for `s < warmup`, then
/// `min + (base - min) (1 + cos(pi p)) / 2` with `p = (s - warmup) / (total - warmup)`
/// clamped to 1 (so steps past `total` stay at `min`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WarmupCosine {
    /// Peak learning rate.
    pub base: f64,
    /// Final learning rate.
    pub min: f64,
    /// Warmup steps.
    pub warmup: u64,
    /// Total steps (warmup included).
    pub total: u64,
}

impl WarmupCosine {
    /// Checks the settings: rates finite and >= 0, `min <= base`, `warmup <= total`; the
    /// error names the schedule and the bad value.
    pub fn check(&self) -> mixprec_autograd::Result<()> {
        let bad = |msg: String| Err(mixprec_autograd::Error::invalid("WarmupCosine", msg));
        for (name, v) in [("base", self.base), ("min", self.min)] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("{name} must be finite and >= 0, got {v}"));
            }
        }
        if self.min > self.base {
            return bad(format!("min {} is above base {}", self.min, self.base));
        }
        if self.warmup > self.total {
            return bad(format!(
                "warmup {} is longer than total {}",
                self.warmup, self.total
            ));
        }
        Ok(())
    }

    /// The learning rate at step `s` (0-based), in f64 (as PyTorch's schedulers compute
    /// it; the update rounds it to f32 once).
    pub fn lr(&self, s: u64) -> f64 {
        let (base, min) = (self.base, self.min);
        if s < self.warmup {
            return base * (s + 1) as f64 / self.warmup as f64;
        }
        let span = self.total.saturating_sub(self.warmup).max(1) as f64;
        let p = ((s - self.warmup) as f64 / span).min(1.0);
        min + (base - min) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
    }
}

impl Default for WarmupCosine {
    /// 1e-3 to 1e-4 over 1000 steps, 50 of them warmup.
    fn default() -> Self {
        WarmupCosine {
            base: 1e-3,
            min: 1e-4,
            warmup: 50,
            total: 1000,
        }
    }
}

impl LrSchedule for WarmupCosine {
    fn lr(&self, step: u64) -> f64 {
        WarmupCosine::lr(self, step)
    }

    fn check(&self) -> mixprec_autograd::Result<()> {
        WarmupCosine::check(self)
    }
}

/// A learning-rate schedule: the rate for each step. Implement it for a schedule of
/// your own and put it in [`crate::TrainConfig::schedule`] with `.into()`.
///
/// ```
/// use mixprec_nn::TrainConfig;
/// use mixprec_nn::optim::LrSchedule;
///
/// /// Halves the rate every `every` steps.
/// #[derive(Debug)]
/// struct StepDecay { base: f64, every: u64 }
///
/// impl LrSchedule for StepDecay {
///     fn lr(&self, step: u64) -> f64 {
///         self.base * 0.5f64.powi((step / self.every) as i32)
///     }
/// }
///
/// let cfg = TrainConfig { schedule: StepDecay { base: 1e-2, every: 100 }.into(), ..TrainConfig::default() };
/// assert_eq!(cfg.schedule.lr(250), 2.5e-3);
/// ```
pub trait LrSchedule: std::fmt::Debug + Send + Sync {
    /// The learning rate at step `step` (0-based), in f64 (the update rounds it once).
    fn lr(&self, step: u64) -> f64;

    /// Checks the settings; the error names the schedule and the bad value. Nothing to
    /// check by default.
    fn check(&self) -> mixprec_autograd::Result<()> {
        Ok(())
    }
}

/// The same learning rate at every step (PyTorch's optimizer without a scheduler).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConstantLr(pub f64);

impl LrSchedule for ConstantLr {
    fn lr(&self, _step: u64) -> f64 {
        self.0
    }

    /// Errors unless the rate is finite and >= 0.
    fn check(&self) -> mixprec_autograd::Result<()> {
        if self.0.is_finite() && self.0 >= 0.0 {
            return Ok(());
        }
        Err(mixprec_autograd::Error::invalid(
            "ConstantLr",
            format!("the rate must be finite and >= 0, got {}", self.0),
        ))
    }
}

/// The schedule a [`crate::TrainConfig`] holds: any [`LrSchedule`], shared (cheap to
/// clone). Made from a schedule with `.into()`. Two are equal when their `Debug` texts
/// are (the settings of value-like schedules; f64 values print exactly).
#[derive(Clone)]
pub struct Schedule(Arc<dyn LrSchedule>);

impl Schedule {
    /// The rate at step `step`.
    pub fn lr(&self, step: u64) -> f64 {
        self.0.lr(step)
    }

    /// The schedule's own checks.
    pub fn check(&self) -> mixprec_autograd::Result<()> {
        self.0.check()
    }
}

impl<S: LrSchedule + 'static> From<S> for Schedule {
    fn from(s: S) -> Schedule {
        Schedule(Arc::new(s))
    }
}

impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || format!("{self:?}") == format!("{other:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_rates_are_constant_and_checked() {
        let s: Schedule = ConstantLr(3e-4).into();
        assert_eq!((s.lr(0), s.lr(1 << 40)), (3e-4, 3e-4));
        assert!(s.check().is_ok());
        for bad in [f64::NAN, -1e-3, f64::INFINITY] {
            let e = Schedule::from(ConstantLr(bad))
                .check()
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("ConstantLr:"), "{e}");
        }
    }

    #[test]
    fn schedules_compare_by_settings() {
        let a: Schedule = WarmupCosine::default().into();
        assert_eq!(a, WarmupCosine::default().into());
        assert_ne!(a, ConstantLr(1e-3).into());
        assert_eq!(a.lr(10), WarmupCosine::default().lr(10));
    }
}
