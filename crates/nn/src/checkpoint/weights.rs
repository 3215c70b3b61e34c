//! Model weights alone, in any precision type: [`export_weights`] and [`load_weights`].

use super::file::{StoredTensor, TensorFile};
use mixprec_amp::MasterWeights;
use mixprec_autograd::{Error, Result};
use mixprec_dtype::{Bf16, DType, Dtype, E4M3, E5M2, F16, F32, F64};
use mixprec_tensor::{BinaryOp, Tensor};
use std::path::Path;

/// The suffix of an FP8 tensor's companion: `<name>_scale_inv`, an F32 scalar with
/// `value = decode(bits) * scale_inv` (Transformer Engine's and the Hugging Face FP8
/// checkpoints' convention).
pub const SCALE_INV_SUFFIX: &str = "_scale_inv";

/// Options of [`load_weights`]; `Default` accepts any precision type and does not scan
/// for non-finite values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Refuse weights holding an inf or NaN (the error names the tensor).
    pub check_finite: bool,
    /// Refuse weights stored in another precision type than this one.
    pub expect_dtype: Option<DType>,
}

/// The weights of `master` cast to `D` (nearest even; FP8 with a power-of-two
/// per-tensor scale from the tensor's amax, stored as a companion `<name>_scale_inv`),
/// as a file with metadata `format = mixprec-weights` and `dtype = <D's name>`.
pub fn weights_file<D: Dtype>(master: &MasterWeights) -> Result<TensorFile> {
    let mut file = TensorFile::new();
    for (name, p) in master.iter() {
        let t = p.cast::<D>();
        file.insert(name, &t)?;
        if D::DTYPE.is_fp8() {
            let scale_inv = Tensor::<F32>::from_f32(&[1.0 / t.scale()], &[])?;
            file.insert(&format!("{name}{SCALE_INV_SUFFIX}"), &scale_inv)?;
        }
    }
    file.set_metadata("format", "mixprec-weights");
    file.set_metadata("dtype", D::NAME);
    Ok(file)
}

/// Writes the weights of `master` in precision `D` to `path`, atomically
/// ([`weights_file`], [`super::write_atomic`]): an FP32 file to resume from, BF16 or FP8
/// for inference.
///
/// ```
/// use mixprec_amp::MasterWeights;
/// use mixprec_dtype::Bf16;
/// use mixprec_nn::checkpoint::{LoadOptions, export_weights, load_weights};
/// use mixprec_tensor::Tensor;
/// let dir = std::env::temp_dir().join(format!("mixprec-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let mut master = MasterWeights::new();
/// master.add("w", Tensor::from_f32(&[1.0, 1.0 / 3.0], &[2])?);
/// export_weights::<Bf16>(&master, dir.join("w.safetensors"))?;
/// load_weights(&mut master, dir.join("w.safetensors"), LoadOptions::default())?;
/// assert_eq!(master.get(0).unwrap().to_f32_vec(), vec![1.0, 0.333984375]); // BF16's 1/3
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn export_weights<D: Dtype>(master: &MasterWeights, path: impl AsRef<Path>) -> Result<()> {
    weights_file::<D>(master)?.save(path)
}

/// Reads weights from `path` into `master`, by name: every parameter must be in the file
/// with its shape (any precision type, decoded to F32; FP8 times its `<name>_scale_inv`),
/// and the file must hold nothing else. All or nothing: on any error (a missing or
/// unexpected tensor, a shape or precision mismatch, a bad file, a non-finite value under
/// `check_finite`) the error names the tensor and `master` is unchanged.
pub fn load_weights(
    master: &mut MasterWeights,
    path: impl AsRef<Path>,
    opts: LoadOptions,
) -> Result<()> {
    load_weights_from(master, &TensorFile::load(path)?, opts)
}

/// [`load_weights`] from a file already read.
pub fn load_weights_from(
    master: &mut MasterWeights,
    file: &TensorFile,
    opts: LoadOptions,
) -> Result<()> {
    const OP: &str = "load_weights";
    let mut values = Vec::with_capacity(master.len());
    let mut used = 0;
    for (name, p) in master.iter() {
        let stored = file.require(name)?;
        if stored.shape() != p.shape() {
            return Err(Error::invalid(
                OP,
                format!(
                    "{name:?} has shape {:?} in the file, {:?} in the model",
                    stored.shape(),
                    p.shape()
                ),
            ));
        }
        if let Some(want) = opts.expect_dtype
            && stored.dtype() != want
        {
            return Err(Error::invalid(
                OP,
                format!("{name:?} is stored as {}, expected {want}", stored.dtype()),
            ));
        }
        let mut value = decode_to_f32(stored, name)?;
        used += 1;
        if stored.dtype().is_fp8() {
            let scale_inv = scale_inv_of(file, name)?;
            value = value.binary_scalar(BinaryOp::Mul, f64::from(scale_inv))?;
            used += 1;
        }
        if opts.check_finite && !value.all_finite() {
            return Err(Error::invalid(OP, format!("{name:?} holds an inf or NaN")));
        }
        values.push(value);
    }
    if used != file.len() {
        let unexpected: Vec<&str> = file
            .iter()
            .map(|(n, _)| n)
            .filter(|n| master.index_of(n).is_none() && !is_companion(master, file, n))
            .collect();
        return Err(Error::invalid(
            OP,
            format!("the file holds tensors the model does not: {unexpected:?}"),
        ));
    }
    master.set_values(values)
}

/// The F32 values of a stored tensor of any precision type (F64 rounded to nearest even;
/// FP8 unscaled).
fn decode_to_f32(stored: &StoredTensor, name: &str) -> Result<Tensor<F32>> {
    fn via<D: Dtype>(s: &StoredTensor, name: &str) -> Result<Tensor<F32>> {
        Ok(s.to_tensor::<D>(name)?.cast::<F32>())
    }
    match stored.dtype() {
        DType::F64 => via::<F64>(stored, name),
        DType::F32 => via::<F32>(stored, name),
        DType::Bf16 => via::<Bf16>(stored, name),
        DType::F16 => via::<F16>(stored, name),
        DType::E4M3 => via::<E4M3>(stored, name),
        DType::E5M2 => via::<E5M2>(stored, name),
    }
}

/// The companion scale of FP8 tensor `name`: one finite, positive F32 value.
fn scale_inv_of(file: &TensorFile, name: &str) -> Result<f32> {
    let key = format!("{name}{SCALE_INV_SUFFIX}");
    let t = file.get(&key).ok_or_else(|| {
        Error::invalid(
            "load_weights",
            format!("FP8 tensor {name:?} comes without its scale {key:?}"),
        )
    })?;
    let v = t.to_tensor::<F32>(&key)?.to_f32_vec();
    match v[..] {
        [s] if s.is_finite() && s > 0.0 => Ok(s),
        _ => Err(Error::invalid(
            "load_weights",
            format!("{key:?} must be one finite value > 0, got {v:?}"),
        )),
    }
}

/// True when `name` is the scale companion of an FP8 parameter tensor in `file`.
fn is_companion(master: &MasterWeights, file: &TensorFile, name: &str) -> bool {
    name.strip_suffix(SCALE_INV_SUFFIX).is_some_and(|base| {
        master.index_of(base).is_some() && file.get(base).is_some_and(|t| t.dtype().is_fp8())
    })
}
