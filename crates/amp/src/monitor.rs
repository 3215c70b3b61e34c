//! [`NumericsMonitor`]: fed once per step, it watches loss, gradient norm, loss scale,
//! skipped steps and the cast points of the tape, and raises [`Alert`]s for loss spikes,
//! gradient-norm explosions, slow divergence and non-finite values; it also says which
//! cast point underflows most.

use crate::fp8::Fp8TensorStats;
use mixprec_autograd::{Tape, TapeReport};
use mixprec_dtype::DType;
use mixprec_tensor::CastReport;
use std::collections::VecDeque;
use std::sync::Arc;

/// Thresholds of the monitor; `Default` is a 100-step window, spikes at 4 standard
/// deviations, explosions at 10x the rolling median norm, divergence over 200 steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MonitorConfig {
    /// Steps in the rolling window for spike and explosion statistics (at least 2).
    pub window: usize,
    /// A loss above the rolling mean by this many standard deviations is a spike.
    pub spike_sigmas: f64,
    /// A gradient norm above this multiple of the rolling median is an explosion.
    pub explosion_factor: f64,
    /// Steps over which a rising least-squares loss trend is reported as divergence.
    pub divergence_window: usize,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            window: 100,
            spike_sigmas: 4.0,
            explosion_factor: 10.0,
            divergence_window: 200,
        }
    }
}

/// What one training step reports to the monitor.
#[derive(Clone, Debug, PartialEq)]
pub struct StepStats {
    /// Step number.
    pub step: u64,
    /// Loss (unscaled).
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Loss scale, when the policy scales the loss.
    pub loss_scale: Option<f32>,
    /// True when the optimizer step was skipped (inf/NaN gradients).
    pub skipped: bool,
    /// Cast points of the step's tape, forward casts and the backward casts of their
    /// gradients.
    pub casts: Vec<CastStats>,
    /// FP8 amaxes and scales of the step ([`crate::Fp8Scaling::update`]'s result).
    pub fp8: Vec<Fp8TensorStats>,
}

/// One cast point's counts.
#[derive(Clone, Debug, PartialEq)]
pub struct CastStats {
    /// Node on the step's tape.
    pub node: usize,
    /// The layer ([`mixprec_autograd::Tape::scope`]) the cast ran in, if any.
    pub scope: Option<Arc<str>>,
    /// True for the backward cast of the gradient (from `to` back to `from`'s side).
    pub backward: bool,
    /// Source precision.
    pub from: DType,
    /// Target precision.
    pub to: DType,
    /// Elements cast.
    pub elements: usize,
    /// Non-zero values that became zero.
    pub underflowed: usize,
    /// Finite values that became infinite or NaN.
    pub overflowed: usize,
}

impl CastStats {
    /// Fraction of elements that underflowed.
    pub fn underflow_fraction(&self) -> f64 {
        if self.elements == 0 {
            0.0
        } else {
            self.underflowed as f64 / self.elements as f64
        }
    }
}

impl StepStats {
    /// Stats of a step with the cast points read from its tape (after backward, so that
    /// the gradients' casts are included) and no FP8 numbers (see [`StepStats::with_fp8`]).
    pub fn from_tape(
        step: u64,
        loss: f64,
        grad_norm: f64,
        loss_scale: Option<f32>,
        skipped: bool,
        tape: &Tape,
    ) -> StepStats {
        Self::from_report(step, loss, grad_norm, loss_scale, skipped, &tape.report())
    }

    /// As [`StepStats::from_tape`], from a report already taken.
    pub fn from_report(
        step: u64,
        loss: f64,
        grad_norm: f64,
        loss_scale: Option<f32>,
        skipped: bool,
        report: &TapeReport,
    ) -> StepStats {
        StepStats {
            step,
            loss,
            grad_norm,
            loss_scale,
            skipped,
            casts: casts_of(report),
            fp8: Vec::new(),
        }
    }

    /// Adds the step's FP8 amaxes and scales.
    pub fn with_fp8(self, fp8: Vec<Fp8TensorStats>) -> StepStats {
        StepStats { fp8, ..self }
    }

    /// The largest underflow fraction among the casts of gradients (backward casts).
    pub fn worst_gradient_underflow(&self) -> f64 {
        self.casts
            .iter()
            .filter(|c| c.backward)
            .map(CastStats::underflow_fraction)
            .fold(0.0, f64::max)
    }
}

fn casts_of(report: &TapeReport) -> Vec<CastStats> {
    let mut out = Vec::with_capacity(2 * report.casts.len());
    for c in &report.casts {
        let stats = |r: &CastReport, backward| CastStats {
            node: c.node,
            scope: c.scope.clone(),
            backward,
            from: r.from,
            to: r.to,
            elements: r.elements,
            underflowed: r.underflowed,
            overflowed: r.overflowed,
        };
        out.push(stats(&c.report, false));
        if let Some(g) = &c.grad {
            out.push(stats(g, true));
        }
    }
    out
}

/// Something the monitor noticed.
#[derive(Clone, Debug, PartialEq)]
pub enum Alert {
    /// Loss or gradient norm is inf or NaN.
    NonFinite {
        /// Step.
        step: u64,
    },
    /// An FP8 GEMM operand held an inf or NaN: its quantisation would have clamped an
    /// infinity to a finite value, so the step is treated as non-finite.
    Fp8NonFinite {
        /// Step.
        step: u64,
        /// Position of the GEMM in the step.
        gemm: usize,
        /// Which operand.
        role: crate::Fp8Role,
        /// Infinite or NaN elements.
        count: usize,
    },
    /// Loss above the rolling mean by more than `spike_sigmas` standard deviations.
    LossSpike {
        /// Step.
        step: u64,
        /// The loss.
        loss: f64,
        /// Rolling mean.
        mean: f64,
        /// Rolling standard deviation.
        std: f64,
    },
    /// Gradient norm above `explosion_factor` times the rolling median.
    GradNormExplosion {
        /// Step.
        step: u64,
        /// The norm.
        norm: f64,
        /// Rolling median norm.
        median: f64,
    },
    /// The least-squares slope of the loss over `divergence_window` steps is positive
    /// and significant (more than 2 standard errors).
    SlowDivergence {
        /// Step.
        step: u64,
        /// Loss change per step.
        slope: f64,
    },
}

/// Watches training numerics step by step.
#[derive(Clone, Debug)]
pub struct NumericsMonitor {
    cfg: MonitorConfig,
    losses: VecDeque<f64>,
    norms: VecDeque<f64>,
    last: Option<StepStats>,
    skipped: u64,
    alerts: Vec<Alert>,
}

impl NumericsMonitor {
    /// A monitor with these thresholds (windows below 2 are raised to 2).
    pub fn new(cfg: MonitorConfig) -> Self {
        let cfg = MonitorConfig {
            window: cfg.window.max(2),
            divergence_window: cfg.divergence_window.max(3),
            ..cfg
        };
        NumericsMonitor {
            cfg,
            losses: VecDeque::new(),
            norms: VecDeque::new(),
            last: None,
            skipped: 0,
            alerts: Vec::new(),
        }
    }

    /// Records a step; returns the alerts it raises. Non-finite or skipped steps do not
    /// enter the rolling statistics.
    pub fn record(&mut self, s: StepStats) -> Vec<Alert> {
        let mut alerts = Vec::new();
        if s.skipped {
            self.skipped += 1;
        }
        for t in s.fp8.iter().filter(|t| t.is_non_finite()) {
            alerts.push(Alert::Fp8NonFinite {
                step: s.step,
                gemm: t.gemm,
                role: t.role,
                count: t.non_finite,
            });
        }
        if !s.loss.is_finite() || !s.grad_norm.is_finite() {
            alerts.push(Alert::NonFinite { step: s.step });
        } else if !s.skipped {
            let recent: Vec<f64> = self
                .losses
                .iter()
                .rev()
                .take(self.cfg.window)
                .copied()
                .collect();
            if recent.len() >= self.cfg.window.min(10) {
                let mean = recent.iter().sum::<f64>() / recent.len() as f64;
                let std = (recent.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                    / recent.len() as f64)
                    .sqrt();
                if s.loss > mean + self.cfg.spike_sigmas * std.max(1e-12 * mean.abs()) {
                    alerts.push(Alert::LossSpike {
                        step: s.step,
                        loss: s.loss,
                        mean,
                        std,
                    });
                }
            }
            let mut norms: Vec<f64> = self
                .norms
                .iter()
                .rev()
                .take(self.cfg.window)
                .copied()
                .collect();
            if norms.len() >= self.cfg.window.min(10) {
                norms.sort_by(f64::total_cmp);
                let median = norms[norms.len() / 2];
                if s.grad_norm > self.cfg.explosion_factor * median {
                    alerts.push(Alert::GradNormExplosion {
                        step: s.step,
                        norm: s.grad_norm,
                        median,
                    });
                }
            }
            self.losses.push_back(s.loss);
            self.norms.push_back(s.grad_norm);
            let keep = self.cfg.window.max(self.cfg.divergence_window);
            while self.losses.len() > keep {
                self.losses.pop_front();
                self.norms.pop_front();
            }
            if let Some(slope) = self.divergence_slope() {
                alerts.push(Alert::SlowDivergence {
                    step: s.step,
                    slope,
                });
            }
        }
        self.last = Some(s);
        self.alerts.extend(alerts.iter().cloned());
        alerts
    }

    /// Every alert raised so far, oldest first.
    pub fn alerts(&self) -> &[Alert] {
        &self.alerts
    }

    /// The least-squares slope of the last `divergence_window` losses when it is positive
    /// by more than 2 standard errors.
    fn divergence_slope(&self) -> Option<f64> {
        let n = self.cfg.divergence_window;
        if self.losses.len() < n {
            return None;
        }
        let y: Vec<f64> = self.losses.iter().rev().take(n).rev().copied().collect();
        let nf = n as f64;
        let xm = (nf - 1.0) / 2.0;
        let ym = y.iter().sum::<f64>() / nf;
        let sxx: f64 = (0..n).map(|i| (i as f64 - xm).powi(2)).sum();
        let slope = (0..n).map(|i| (i as f64 - xm) * (y[i] - ym)).sum::<f64>() / sxx;
        let resid: f64 = (0..n)
            .map(|i| (y[i] - ym - slope * (i as f64 - xm)).powi(2))
            .sum();
        let se = (resid / (nf - 2.0) / sxx).sqrt();
        (slope > 2.0 * se && slope > 0.0).then_some(slope)
    }

    /// Steps skipped so far.
    pub fn skipped_steps(&self) -> u64 {
        self.skipped
    }

    /// The cast point of the last step with the largest underflow fraction, if any
    /// underflowed.
    pub fn worst_underflow(&self) -> Option<CastStats> {
        self.last
            .as_ref()?
            .casts
            .iter()
            .filter(|c| c.underflowed > 0)
            .max_by(|a, b| a.underflow_fraction().total_cmp(&b.underflow_fraction()))
            .cloned()
    }

    /// The layers (scopes) of the last step ranked by the underflow fraction of all their
    /// casts together, worst first: (scope, underflowed, elements). Casts outside any
    /// scope are grouped under `""`.
    pub fn underflow_by_layer(&self) -> Vec<(String, usize, usize)> {
        let mut out: Vec<(String, usize, usize)> = Vec::new();
        for c in self.last.iter().flat_map(|s| &s.casts) {
            let name = c.scope.as_deref().unwrap_or("");
            match out.iter_mut().find(|r| r.0 == name) {
                Some(r) => {
                    r.1 += c.underflowed;
                    r.2 += c.elements;
                }
                None => out.push((name.to_string(), c.underflowed, c.elements)),
            }
        }
        let frac = |r: &(String, usize, usize)| r.1 as f64 / r.2.max(1) as f64;
        out.sort_by(|a, b| frac(b).total_cmp(&frac(a)));
        out
    }

    /// The FP8 amaxes and scales of the last step.
    pub fn fp8(&self) -> &[Fp8TensorStats] {
        self.last.as_ref().map_or(&[], |s| &s.fp8)
    }

    /// The last step recorded.
    pub fn last(&self) -> Option<&StepStats> {
        self.last.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(step: u64, loss: f64, norm: f64) -> StepStats {
        StepStats {
            step,
            loss,
            grad_norm: norm,
            loss_scale: None,
            skipped: false,
            casts: vec![],
            fp8: vec![],
        }
    }

    #[test]
    fn detects_spikes_explosions_and_non_finite_values() {
        let mut m = NumericsMonitor::new(MonitorConfig {
            window: 20,
            divergence_window: 1000,
            ..Default::default()
        });
        for i in 0..20 {
            // Loss around 1 with a small wobble, norm around 2.
            assert!(
                m.record(stats(
                    i,
                    1.0 + 0.01 * ((i % 3) as f64),
                    2.0 + 0.1 * ((i % 2) as f64)
                ))
                .is_empty()
            );
        }
        let a = m.record(stats(20, 1.5, 2.0));
        assert!(
            matches!(a.as_slice(), [Alert::LossSpike { step: 20, .. }]),
            "{a:?}"
        );
        let a = m.record(stats(21, 1.0, 50.0));
        assert!(
            matches!(a.as_slice(), [Alert::GradNormExplosion { step: 21, .. }]),
            "{a:?}"
        );
        let a = m.record(stats(22, f64::NAN, 2.0));
        assert_eq!(a, vec![Alert::NonFinite { step: 22 }]);
    }

    #[test]
    fn detects_slow_divergence_but_not_noise() {
        let mut m = NumericsMonitor::new(MonitorConfig {
            window: 50,
            divergence_window: 100,
            spike_sigmas: 100.0,
            ..Default::default()
        });
        let mut seen = false;
        for i in 0..100u64 {
            // Deterministic noise of amplitude 0.05 around a flat loss: no divergence.
            let noise = 0.05 * (((i * 7919) % 17) as f64 / 8.0 - 1.0);
            seen |= m
                .record(stats(i, 1.0 + noise, 1.0))
                .iter()
                .any(|a| matches!(a, Alert::SlowDivergence { .. }));
        }
        assert!(!seen, "flat noisy loss is not divergence");
        let mut m = NumericsMonitor::new(MonitorConfig {
            window: 50,
            divergence_window: 100,
            spike_sigmas: 100.0,
            ..Default::default()
        });
        let mut at = None;
        for i in 0..100u64 {
            let noise = 0.05 * (((i * 7919) % 17) as f64 / 8.0 - 1.0);
            if m.record(stats(i, 1.0 + 0.002 * i as f64 + noise, 1.0))
                .iter()
                .any(|a| matches!(a, Alert::SlowDivergence { .. }))
            {
                at = at.or(Some(i));
            }
        }
        assert_eq!(
            at,
            Some(99),
            "a rising trend is reported once the window is full"
        );
    }

    #[test]
    fn worst_underflow_names_the_cast_point() {
        let mut m = NumericsMonitor::new(MonitorConfig::default());
        let c = |node, under, scope: &str| CastStats {
            node,
            scope: Some(scope.into()),
            backward: node == 9,
            from: DType::F32,
            to: DType::F16,
            elements: 100,
            underflowed: under,
            overflowed: 0,
        };
        let mut s = stats(0, 1.0, 1.0);
        s.casts = vec![
            c(3, 1, "fc1"),
            c(7, 40, "fc2"),
            c(9, 30, "fc1"),
            c(11, 0, "fc1"),
        ];
        assert_eq!(
            s.worst_gradient_underflow(),
            0.3,
            "node 9 is the backward cast"
        );
        m.record(s);
        assert_eq!(m.worst_underflow().map(|c| c.node), Some(7));
        assert_eq!(
            m.underflow_by_layer(),
            vec![("fc2".to_string(), 40, 100), ("fc1".to_string(), 31, 300)]
        );
    }
}
