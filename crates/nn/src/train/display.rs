//! `Display` for [`StepRecord`] and [`SkipReason`]: a step as one log line.

use super::{SkipReason, StepRecord};
use std::fmt;

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::NonFiniteGradients => "inf/NaN gradients",
            SkipReason::NonFiniteLoss => "inf/NaN loss",
            SkipReason::NonFiniteFp8 => "inf/NaN FP8 operand",
        })
    }
}

impl fmt::Display for StepRecord {
    /// `step 12 loss 0.4321 lr 1.00e-3 grad_norm 0.8123 [scale 65536] underflow 0.00%
    /// 1.23 ms`, then `skipped (reason)` and the alerts when there are any.
    ///
    /// ```
    /// use mixprec_nn::{SkipReason, StepRecord};
    /// let r = StepRecord {
    ///     step: 12, loss: 0.43216, lr: 1e-3, grad_norm: 0.8, loss_scale: Some(65536.0),
    ///     skipped: true, skip_reason: Some(SkipReason::NonFiniteGradients),
    ///     worst_underflow: 0.0125, grad_underflow: 0.0, casts: 40, alerts: vec![],
    ///     seconds: 0.00123,
    /// };
    /// assert_eq!(
    ///     r.to_string(),
    ///     "step 12 loss 0.4322 lr 1.00e-3 grad_norm 0.8000 scale 65536 underflow 1.25% \
    ///      1.23 ms, skipped (inf/NaN gradients)"
    /// );
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "step {} loss {:.4} lr {:.2e} grad_norm {:.4}",
            self.step, self.loss, self.lr, self.grad_norm
        )?;
        if let Some(s) = self.loss_scale {
            write!(f, " scale {s}")?;
        }
        write!(
            f,
            " underflow {:.2}% {:.2} ms",
            100.0 * self.worst_underflow,
            1e3 * self.seconds
        )?;
        if self.skipped {
            match self.skip_reason {
                Some(r) => write!(f, ", skipped ({r})")?,
                None => f.write_str(", skipped")?,
            }
        }
        for a in &self.alerts {
            write!(f, "; {a}")?;
        }
        Ok(())
    }
}
