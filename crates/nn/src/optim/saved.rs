//! Optimizer state in a [`TensorFile`]: per parameter, PyTorch's state keys as F32
//! tensors named `optim.<parameter>.<key>` (`exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`,
//! `momentum_buffer`), integer counters (`step`) and the optimizer's kind and settings
//! as metadata. A file is only read back by an optimizer of the same kind and settings.

use crate::checkpoint::TensorFile;
use mixprec_amp::MasterWeights;
use mixprec_autograd::{Error, Result};
use mixprec_dtype::F32;
use mixprec_tensor::Tensor;
use std::fmt::Debug;

/// Prefix of every optimizer entry.
const PREFIX: &str = "optim.";

/// The name of `param`'s state entry `key`.
pub(crate) fn entry(param: &str, key: &str) -> String {
    format!("{PREFIX}{param}.{key}")
}

/// Records the optimizer's kind and settings (`Debug` of the settings: f64 values print
/// exactly).
pub(crate) fn write_header(file: &mut TensorFile, kind: &str, config: &impl Debug) {
    file.set_metadata("optim.kind", kind);
    file.set_metadata("optim.config", format!("{config:?}"));
}

/// Errors unless `file` holds the state of a `kind` optimizer with these settings.
pub(crate) fn check_header(
    op: &'static str,
    file: &TensorFile,
    kind: &str,
    config: &impl Debug,
) -> Result<()> {
    let saved_kind = file.metadata("optim.kind").unwrap_or("none");
    if saved_kind != kind {
        return Err(Error::invalid(
            op,
            format!("the file holds the state of a {saved_kind:?} optimizer, not of {kind:?}"),
        ));
    }
    let ours = format!("{config:?}");
    let saved = file.metadata("optim.config").unwrap_or("none");
    if saved != ours {
        return Err(Error::invalid(
            op,
            format!("the state was saved under {saved}; this optimizer runs under {ours}"),
        ));
    }
    Ok(())
}

/// Adds `param`'s state tensor `key`.
pub(crate) fn write_tensor(
    file: &mut TensorFile,
    param: &str,
    key: &str,
    t: &Tensor<F32>,
) -> Result<()> {
    file.insert(&entry(param, key), t)
}

/// `param`'s state tensor `key`, if the file has it (an error when it is not F32).
pub(crate) fn read_tensor(
    file: &TensorFile,
    param: &str,
    key: &str,
) -> Result<Option<Tensor<F32>>> {
    let name = entry(param, key);
    file.get(&name).map(|t| t.to_tensor(&name)).transpose()
}

/// Records `param`'s counter `key`.
pub(crate) fn write_count(file: &mut TensorFile, param: &str, key: &str, n: u64) {
    file.set_metadata(&entry(param, key), n.to_string());
}

/// `param`'s counter `key`, if the file has it; an error naming it when it is not a
/// number.
pub(crate) fn read_count(
    op: &'static str,
    file: &TensorFile,
    param: &str,
    key: &str,
) -> Result<Option<u64>> {
    let name = entry(param, key);
    file.metadata(&name)
        .map(|v| {
            v.parse().map_err(|_| {
                Error::invalid(op, format!("{name:?} is {v:?}, not a non-negative integer"))
            })
        })
        .transpose()
}

/// Errors when the file holds optimizer tensors of parameters `master` does not have
/// (a state saved for another model). `read` is how many optimizer tensors were read.
pub(crate) fn check_all_read(
    op: &'static str,
    file: &TensorFile,
    master: &MasterWeights,
    read: usize,
) -> Result<()> {
    let stored: Vec<&str> = file
        .iter()
        .map(|(n, _)| n)
        .filter(|n| n.starts_with(PREFIX))
        .collect();
    if stored.len() == read {
        return Ok(());
    }
    let unknown = stored
        .iter()
        .find(|n| !master.iter().any(|(p, _)| n.starts_with(&entry(p, ""))))
        .unwrap_or(&"(an unexpected key)");
    Err(Error::invalid(
        op,
        format!(
            "the file holds optimizer state this model has no place for: {unknown:?} \
             ({} stored, {read} read)",
            stored.len()
        ),
    ))
}
