//! The whole training state of a [`Trainer`] in one [`TensorFile`], for exact resume:
//! F32 master weights, optimizer state, loss-scaler state with its settings, the model's
//! FP8 scaling state (scale, amax history and format maximum per GEMM and role), the
//! step counter and the policy's name. Dropout masks are a pure function of the seed and
//! the step index, so the counter restores them; the data order is saved next to it by
//! [`crate::data::Batches::write_state`].
//!
//! Layout (tensor names; every tensor's role and dtype is also in the metadata under
//! `role.<tensor>`):
//! - `master.<param>`: F32 master weights;
//! - `optim.<param>.<key>`: optimizer state under PyTorch's keys
//!   ([`crate::optim::Optimizer::write_state`]);
//! - `scaler.scale`: the loss scale (dynamic loss scaling only; trackers and settings in
//!   metadata);
//! - `fp8.<layer>.<gemm>.<role>.{scale,amax_history,fp8_max}`: FP8 scaling state.

use super::Trainer;
use crate::checkpoint::TensorFile;
use crate::models::Model;
use crate::optim::Optimizer;
use mixprec_amp::{Fp8Role, Fp8Scaling, Fp8TensorState, GradScalerState, Policy, Scaler};
use mixprec_autograd::{Error, Result};
use mixprec_dtype::F32;
use mixprec_tensor::Tensor;
use std::collections::HashSet;

/// Value of `mixprec.format` in a training-state file.
const FORMAT: &str = "mixprec-training-state-1";
const OP_SAVE: &str = "Trainer::state_file";
const OP_LOAD: &str = "Trainer::load_state_file";

impl<O: Optimizer, S: Scaler> Trainer<O, S> {
    /// The whole training state, between steps, as one file (save it with
    /// [`crate::checkpoint::Checkpoints::save`] or [`TensorFile::save`], both atomic).
    /// Errors when two FP8 states of `model` share a name.
    pub fn state_file<M: Model>(&self, model: &M) -> Result<TensorFile> {
        let mut file = TensorFile::new();
        file.set_metadata("mixprec.format", FORMAT);
        file.set_metadata("mixprec.policy", <M::Policy as Policy>::name());
        file.set_metadata("mixprec.next_step", self.next_step.to_string());
        file.set_metadata("mixprec.seed", self.cfg.seed.to_string());
        file.set_metadata("mixprec.train_config", format!("{:?}", self.cfg));
        for (name, value) in self.master.iter() {
            file.insert(&format!("master.{name}"), value)?;
        }
        self.optimizer.write_state(&self.master, &mut file)?;
        if let Some(s) = self.scaler.grad_scaler() {
            write_scaler(&mut file, &s.state())?;
        }
        let mut seen = HashSet::new();
        for (layer, fp8) in model.fp8_states() {
            if !seen.insert(layer.clone()) {
                return Err(Error::invalid(
                    OP_SAVE,
                    format!("two FP8 states are called {layer:?}; names must be unique"),
                ));
            }
            for s in fp8.tensor_states() {
                write_fp8(&mut file, &layer, &s)?;
            }
        }
        let roles: Vec<(String, String)> = file
            .iter()
            .map(|(n, t)| {
                (
                    format!("role.{n}"),
                    format!("{} {:?}", role_of(n), t.dtype()),
                )
            })
            .collect();
        for (key, value) in roles {
            file.set_metadata(&key, value);
        }
        Ok(file)
    }

    /// Continues from a state [`Trainer::state_file`] made, for the same model, policy,
    /// optimizer (kind and settings), loss scaler settings and dropout seed: the next
    /// steps, from [`Trainer::next_step`], give bit for bit what the saved run would
    /// have. All or nothing: any fault — another format or policy, a missing, extra or
    /// misshapen tensor, a bad counter, an FP8 state that does not fit its recipe — is an
    /// error naming it, and the trainer and the model's FP8 state are unchanged.
    pub fn load_state_file<M: Model>(&mut self, model: &M, file: &TensorFile) -> Result<()>
    where
        O: Clone,
    {
        check_meta(file, "mixprec.format", FORMAT)?;
        check_meta(file, "mixprec.policy", <M::Policy as Policy>::name())?;
        check_meta(file, "mixprec.seed", &self.cfg.seed.to_string())?;
        let next_step = parse_meta(file, "mixprec.next_step")?;
        // Stage everything; commit only when all of it is good.
        let master = self.read_master(file)?;
        let scaler = self.read_scaler(file)?;
        let fp8 = read_fp8(model, file)?;
        let mut optimizer = self.optimizer.clone();
        optimizer.read_state(&self.master, file)?;
        self.master.set_values(master)?;
        self.optimizer = optimizer;
        if let (Some(s), Some(state)) = (self.scaler.grad_scaler_mut(), scaler) {
            s.load_state(state)?;
        }
        for (scaling, states) in fp8 {
            scaling.load_tensor_states(&states)?;
        }
        self.next_step = next_step;
        Ok(())
    }

    /// Every master weight from `master.<param>`, checked against this trainer's.
    fn read_master(&self, file: &TensorFile) -> Result<Vec<Tensor<F32>>> {
        let mut values = Vec::with_capacity(self.master.len());
        for (name, ours) in self.master.iter() {
            let key = format!("master.{name}");
            let value = file.tensor::<F32>(&key).map_err(|e| relabel(e, OP_LOAD))?;
            if value.shape() != ours.shape() {
                return Err(Error::invalid(
                    OP_LOAD,
                    format!(
                        "{key:?} has shape {:?}, the model's parameter {:?}",
                        value.shape(),
                        ours.shape()
                    ),
                ));
            }
            values.push(value);
        }
        let stored = file
            .iter()
            .filter(|(n, _)| n.starts_with("master."))
            .count();
        if stored != values.len() {
            return Err(Error::invalid(
                OP_LOAD,
                format!(
                    "the file holds {stored} master weights, the model has {}",
                    values.len()
                ),
            ));
        }
        Ok(values)
    }

    /// The loss-scaler state saved in `file`, checked against this trainer's scaler
    /// (`None` without dynamic loss scaling).
    fn read_scaler(&self, file: &TensorFile) -> Result<Option<GradScalerState>> {
        let saved = file.get("scaler.scale").is_some();
        let Some(ours) = self.scaler.grad_scaler() else {
            if saved {
                return Err(Error::invalid(
                    OP_LOAD,
                    "the file holds a loss scaler's state; this trainer has none",
                ));
            }
            return Ok(None);
        };
        check_meta(file, "scaler.config", &format!("{:?}", ours.config()))?;
        let state = GradScalerState {
            config: ours.config(),
            scale: scalar(file, "scaler.scale")?,
            growth_tracker: parse_meta(file, "scaler.growth_tracker")?,
            hysteresis_tracker: parse_meta(file, "scaler.hysteresis_tracker")?,
        };
        // The scaler's own checks, on a copy.
        ours.clone().load_state(state)?;
        Ok(Some(state))
    }
}

fn write_scaler(file: &mut TensorFile, s: &GradScalerState) -> Result<()> {
    file.insert("scaler.scale", &Tensor::<F32>::from_f32(&[s.scale], &[])?)?;
    file.set_metadata("scaler.growth_tracker", s.growth_tracker.to_string());
    file.set_metadata(
        "scaler.hysteresis_tracker",
        s.hysteresis_tracker.to_string(),
    );
    file.set_metadata("scaler.config", format!("{:?}", s.config));
    Ok(())
}

/// `fp8.<layer>.<gemm>.<role>.`
fn fp8_prefix(layer: &str, gemm: usize, role: Fp8Role) -> String {
    format!("fp8.{layer}.{gemm}.{}.", role.name())
}

fn write_fp8(file: &mut TensorFile, layer: &str, s: &Fp8TensorState) -> Result<()> {
    let p = fp8_prefix(layer, s.gemm, s.role);
    file.insert(
        &format!("{p}scale"),
        &Tensor::<F32>::from_f32(&[s.scale], &[])?,
    )?;
    let history = Tensor::<F32>::from_f32(&s.amax_history, &[s.amax_history.len()])?;
    file.insert(&format!("{p}amax_history"), &history)?;
    file.insert(
        &format!("{p}fp8_max"),
        &Tensor::<F32>::from_f32(&[s.fp8_max], &[])?,
    )
}

/// The saved FP8 states of each of `model`'s scalings, checked against their recipes.
fn read_fp8<M: Model>(
    model: &M,
    file: &TensorFile,
) -> Result<Vec<(Fp8Scaling, Vec<Fp8TensorState>)>> {
    let mut out = Vec::new();
    let mut read = 0;
    for (layer, scaling) in model.fp8_states() {
        let prefix = format!("fp8.{layer}.");
        let mut states = Vec::new();
        for (name, _) in file.iter() {
            let Some((gemm, role)) = name
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(".scale"))
                .and_then(parse_gemm_role)
            else {
                continue;
            };
            let p = fp8_prefix(&layer, gemm, role);
            let history = file
                .tensor::<F32>(&format!("{p}amax_history"))
                .map_err(|e| relabel(e, OP_LOAD))?;
            states.push(Fp8TensorState {
                gemm,
                role,
                fp8_max: scalar(file, &format!("{p}fp8_max"))?,
                scale: scalar(file, &format!("{p}scale"))?,
                amax_history: history.to_f32_vec(),
            });
        }
        scaling
            .check_tensor_states(&states)
            .map_err(|e| Error::invalid(OP_LOAD, format!("FP8 state of {layer:?}: {e}")))?;
        read += 3 * states.len();
        out.push((scaling, states));
    }
    let stored = file.iter().filter(|(n, _)| n.starts_with("fp8.")).count();
    if stored != read {
        return Err(Error::invalid(
            OP_LOAD,
            format!(
                "the file holds {stored} FP8 tensors, the model's layers take {read} \
                 (saved from another model or recipe?)"
            ),
        ));
    }
    Ok(out)
}

/// `<gemm>.<role>` (what follows a layer's prefix, before `.scale`).
fn parse_gemm_role(s: &str) -> Option<(usize, Fp8Role)> {
    let (gemm, role) = s.split_once('.')?;
    Some((gemm.parse().ok()?, Fp8Role::from_name(role)?))
}

/// The role recorded for tensor `name` in the metadata.
fn role_of(name: &str) -> &'static str {
    let ends = |s| name.ends_with(s);
    match name.split('.').next() {
        Some("master") => "master_weight",
        Some("optim") => "optimizer_state",
        Some("scaler") => "loss_scale",
        Some("fp8") if ends(".amax_history") => "fp8_amax_history",
        Some("fp8") if ends(".fp8_max") => "fp8_format_max",
        Some("fp8") => "fp8_scale",
        _ => "other",
    }
}

/// A one-element F32 tensor's value.
fn scalar(file: &TensorFile, name: &str) -> Result<f32> {
    let t = file.tensor::<F32>(name).map_err(|e| relabel(e, OP_LOAD))?;
    match t.to_f32_vec()[..] {
        [v] => Ok(v),
        _ => Err(Error::invalid(
            OP_LOAD,
            format!("{name:?} has shape {:?}, expected one value", t.shape()),
        )),
    }
}

/// Errors unless metadata `key` is `want`.
fn check_meta(file: &TensorFile, key: &str, want: &str) -> Result<()> {
    match file.metadata(key) {
        Some(v) if v == want => Ok(()),
        v => Err(Error::invalid(
            OP_LOAD,
            format!("{key} is {v:?} in the file; this trainer needs {want:?}"),
        )),
    }
}

/// Metadata `key` as a number.
fn parse_meta<T: std::str::FromStr>(file: &TensorFile, key: &str) -> Result<T> {
    let v = file
        .metadata(key)
        .ok_or_else(|| Error::invalid(OP_LOAD, format!("the file has no {key:?}")))?;
    v.parse()
        .map_err(|_| Error::invalid(OP_LOAD, format!("{key} is {v:?}, not a number of its kind")))
}

/// `e` reported under `op` (keeping its message).
fn relabel(e: Error, op: &'static str) -> Error {
    Error::invalid(op, e.to_string())
}
