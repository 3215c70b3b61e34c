//! The JSON header of a safetensors file, written deterministically: `__metadata__`
//! first with its keys in order, then each tensor in data order — the layout the
//! `safetensors` crate writes, without its hash-ordered metadata. Padded with spaces to
//! a multiple of 8 bytes, as the format asks.

use safetensors::tensor::TensorInfo;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Largest header the `safetensors` crate reads (100 MB).
const MAX_HEADER: usize = 100_000_000;

/// Appends the padded header for `metadata` and `tensors` (in data order) to `out`.
/// Errors when it would be larger than readers accept.
pub(super) fn write<'a>(
    out: &mut Vec<u8>,
    metadata: &BTreeMap<String, String>,
    tensors: impl Iterator<Item = (&'a str, TensorInfo)>,
) -> Result<(), String> {
    let mut h = String::from("{");
    if !metadata.is_empty() {
        h.push_str("\"__metadata__\":");
        h.push_str(&serde_json::to_string(metadata).map_err(text)?);
    }
    for (name, info) in tensors {
        if h.len() > 1 {
            h.push(',');
        }
        let name = serde_json::to_string(name).map_err(text)?;
        let info = serde_json::to_string(&info).map_err(text)?;
        let _ = write!(h, "{name}:{info}");
    }
    h.push('}');
    while h.len() % 8 != 0 {
        h.push(' ');
    }
    if h.len() > MAX_HEADER {
        return Err(format!(
            "the header would take {} bytes, more than the {MAX_HEADER} readers accept",
            h.len()
        ));
    }
    out.extend_from_slice(h.as_bytes());
    Ok(())
}

fn text(e: serde_json::Error) -> String {
    e.to_string()
}
