//! `Display` for [`Alert`]: one line a training log can print as it is.

use crate::monitor::Alert;
use std::fmt;

impl fmt::Display for Alert {
    /// ```
    /// use mixprec_amp::Alert;
    /// let a = Alert::GradNormExplosion { step: 40, norm: 120.0, median: 1.5 };
    /// assert_eq!(a.to_string(), "step 40: gradient norm 120 is 80.0x the rolling median 1.5");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Alert::NonFinite { step } => {
                write!(
                    f,
                    "step {step}: the loss or the gradient norm is inf or NaN"
                )
            }
            Alert::Fp8NonFinite {
                step,
                gemm,
                role,
                count,
            } => write!(
                f,
                "step {step}: {count} inf/NaN values in the {} operand of FP8 GEMM {gemm}",
                role.name()
            ),
            Alert::LossSpike {
                step,
                loss,
                mean,
                std,
            } => write!(
                f,
                "step {step}: loss spike {loss:.4} (rolling mean {mean:.4}, std {std:.4})"
            ),
            Alert::GradNormExplosion { step, norm, median } => write!(
                f,
                "step {step}: gradient norm {norm} is {:.1}x the rolling median {median}",
                norm / median
            ),
            Alert::SlowDivergence { step, slope } => write!(
                f,
                "step {step}: the loss is rising by {slope:.3e} per step (slow divergence)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Alert, Fp8Role};

    #[test]
    fn every_alert_prints_one_line_naming_its_step() {
        let cases = [
            (
                Alert::NonFinite { step: 3 },
                "step 3: the loss or the gradient norm is inf or NaN",
            ),
            (
                Alert::Fp8NonFinite {
                    step: 4,
                    gemm: 2,
                    role: Fp8Role::Grad,
                    count: 7,
                },
                "step 4: 7 inf/NaN values in the grad operand of FP8 GEMM 2",
            ),
            (
                Alert::LossSpike {
                    step: 5,
                    loss: 3.25,
                    mean: 1.0,
                    std: 0.125,
                },
                "step 5: loss spike 3.2500 (rolling mean 1.0000, std 0.1250)",
            ),
            (
                Alert::SlowDivergence {
                    step: 6,
                    slope: 0.00125,
                },
                "step 6: the loss is rising by 1.250e-3 per step (slow divergence)",
            ),
        ];
        for (alert, want) in cases {
            assert_eq!(alert.to_string(), want);
        }
    }
}
