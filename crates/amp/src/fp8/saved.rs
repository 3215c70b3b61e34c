//! An [`Fp8Scaling`]'s state as plain values, for checkpoints and exact resume: per
//! quantised tensor its GEMM, role, format maximum, scale and amax history (Transformer
//! Engine's `scale` and `amax_history` buffers).

use super::{Fp8Role, Fp8Scaling, TensorState};
use crate::delayed::DelayedScaling;
use mixprec_autograd::{Error, Result};

/// The saved state of one quantised tensor of an [`Fp8Scaling`].
#[derive(Clone, Debug, PartialEq)]
pub struct Fp8TensorState {
    /// Position of the GEMM in the step.
    pub gemm: usize,
    /// Which operand.
    pub role: Fp8Role,
    /// Largest finite value of the tensor's FP8 format (E4M3: 448, E5M2: 57344).
    pub fp8_max: f32,
    /// The scale the next quantisation uses.
    pub scale: f32,
    /// The amax history, staging slot first (one entry under current scaling).
    pub amax_history: Vec<f32>,
}

impl Fp8Scaling {
    /// Every quantised tensor's state, GEMM by GEMM in [`Fp8Role::ALL`] order. Taken
    /// between steps, it is all a resumed run needs to quantise exactly as this one.
    pub fn tensor_states(&self) -> Vec<Fp8TensorState> {
        let inner = self.lock();
        let mut out = Vec::new();
        for (gemm, roles) in inner.gemms.iter().enumerate() {
            for (role, t) in Fp8Role::ALL.into_iter().zip(roles) {
                if let Some(t) = t {
                    out.push(Fp8TensorState {
                        gemm,
                        role,
                        fp8_max: t.delayed.fp8_max(),
                        scale: t.delayed.scale(),
                        amax_history: t.delayed.history().to_vec(),
                    });
                }
            }
        }
        out
    }

    /// Checks that `states` could be loaded: each history has the recipe's length, each
    /// scale and format maximum is finite and > 0, no (GEMM, role) appears twice, and
    /// no GEMM index is beyond the number of states. The
    /// error names the tensor and the fault.
    pub fn check_tensor_states(&self, states: &[Fp8TensorState]) -> Result<()> {
        self.staged(states).map(|_| ())
    }

    /// Replaces the whole state by `states` (tensors not listed start fresh on first
    /// use, as in a new model). All or nothing: on error ([`Self::check_tensor_states`])
    /// nothing changed.
    pub fn load_tensor_states(&self, states: &[Fp8TensorState]) -> Result<()> {
        let gemms = self.staged(states)?;
        self.lock().gemms = gemms;
        Ok(())
    }

    /// The per-GEMM table `states` describe, checked against this scaling's recipe.
    fn staged(&self, states: &[Fp8TensorState]) -> Result<Vec<[Option<TensorState>; 3]>> {
        const OP: &str = "Fp8Scaling::load_tensor_states";
        let cfg = self.recipe().tensor_config();
        let mut gemms: Vec<[Option<TensorState>; 3]> = Vec::new();
        for s in states {
            let what = format!("GEMM {} {}", s.gemm, s.role.name());
            let history_len = s.amax_history.len();
            let delayed =
                DelayedScaling::from_parts(cfg, s.fp8_max, s.amax_history.clone(), s.scale)
                    .ok_or_else(|| {
                        Error::invalid(
                            OP,
                            format!(
                                "{what}: expected a history of {} entries, a finite scale > 0 \
                                 and a finite format maximum > 0; got {history_len} entries, \
                                 scale {}, maximum {}",
                                cfg.history_len.max(1),
                                s.scale,
                                s.fp8_max
                            ),
                        )
                    })?;
            // Every GEMM has at least one state, so a larger index is not a saved one
            // (and must not size the table).
            if s.gemm >= states.len() {
                return Err(Error::invalid(
                    OP,
                    format!(
                        "{what}: GEMM index out of range for {} states",
                        states.len()
                    ),
                ));
            }
            if gemms.len() <= s.gemm {
                gemms.resize_with(s.gemm + 1, Default::default);
            }
            let slot = &mut gemms[s.gemm][s.role as usize];
            if slot.is_some() {
                return Err(Error::invalid(OP, format!("{what} is given twice")));
            }
            *slot = Some(TensorState::from_delayed(s.gemm, s.role, delayed));
        }
        Ok(gemms)
    }
}
