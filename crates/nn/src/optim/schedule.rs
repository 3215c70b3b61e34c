//! [`WarmupCosine`]: linear warmup to the base rate, then cosine decay to a floor.

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
