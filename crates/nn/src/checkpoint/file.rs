//! [`TensorFile`]: named tensors of any precision type plus string metadata, in the
//! safetensors format (read and written with the `safetensors` crate).

use super::atomic::write_atomic;
use super::header;
use mixprec_autograd::{Error, Result};
use mixprec_dtype::{DType, Dtype};
use mixprec_tensor::Tensor;
use safetensors::tensor::{Dtype as StDtype, SafeTensors, TensorInfo};
use std::collections::BTreeMap;
use std::path::Path;

/// One tensor as stored: its precision, shape and elements as little-endian bytes of
/// their bit patterns (row-major). The FP8 scale is not part of it (see
/// [`super::export_weights`] for the companion tensor that carries it).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredTensor {
    dtype: DType,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl StoredTensor {
    /// The elements of `t` (gathered if it is a view).
    pub fn from_tensor<D: Dtype>(t: &Tensor<D>) -> StoredTensor {
        StoredTensor {
            dtype: D::DTYPE,
            shape: t.shape().to_vec(),
            bytes: t.to_le_bytes(),
        }
    }

    /// The precision stored.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The raw little-endian bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The tensor as `D`, bit for bit (FP8 with scale 1). Errors, naming `name`, when it
    /// is stored in another precision.
    pub fn to_tensor<D: Dtype>(&self, name: &str) -> Result<Tensor<D>> {
        if self.dtype != D::DTYPE {
            return Err(Error::invalid(
                "TensorFile::tensor",
                format!(
                    "{name:?} is stored as {}, asked for {}",
                    self.dtype,
                    D::DTYPE
                ),
            ));
        }
        Ok(Tensor::from_le_bytes(&self.bytes, &self.shape, 1.0)?)
    }
}

/// The safetensors name of a precision type.
fn to_st_dtype(d: DType) -> StDtype {
    match d {
        DType::F64 => StDtype::F64,
        DType::F32 => StDtype::F32,
        DType::Bf16 => StDtype::BF16,
        DType::F16 => StDtype::F16,
        DType::E4M3 => StDtype::F8_E4M3,
        DType::E5M2 => StDtype::F8_E5M2,
    }
}

/// The precision type of a safetensors dtype, when it is one of ours.
fn from_st_dtype(d: StDtype) -> Option<DType> {
    Some(match d {
        StDtype::F64 => DType::F64,
        StDtype::F32 => DType::F32,
        StDtype::BF16 => DType::Bf16,
        StDtype::F16 => DType::F16,
        StDtype::F8_E4M3 => DType::E4M3,
        StDtype::F8_E5M2 => DType::E5M2,
        _ => return None,
    })
}

/// Named tensors (in name order) and string metadata: one safetensors file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TensorFile {
    tensors: BTreeMap<String, StoredTensor>,
    metadata: BTreeMap<String, String>,
}

impl TensorFile {
    /// An empty file.
    pub fn new() -> TensorFile {
        TensorFile::default()
    }

    /// Adds `t` under `name`. Errors when the name is taken.
    pub fn insert<D: Dtype>(&mut self, name: &str, t: &Tensor<D>) -> Result<()> {
        self.insert_stored(name, StoredTensor::from_tensor(t))
    }

    /// Adds a stored tensor under `name`. Errors when the name is taken.
    pub fn insert_stored(&mut self, name: &str, t: StoredTensor) -> Result<()> {
        if self.tensors.contains_key(name) {
            return Err(Error::invalid(
                "TensorFile::insert",
                format!("{name:?} is already in the file"),
            ));
        }
        self.tensors.insert(name.to_string(), t);
        Ok(())
    }

    /// Takes the tensor called `name` out of the file (to rename or replace it).
    pub fn remove(&mut self, name: &str) -> Option<StoredTensor> {
        self.tensors.remove(name)
    }

    /// Takes metadata entry `key` out of the file.
    pub fn remove_metadata(&mut self, key: &str) -> Option<String> {
        self.metadata.remove(key)
    }

    /// The tensor called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&StoredTensor> {
        self.tensors.get(name)
    }

    /// The tensor called `name` as `D`. Errors when it is missing or stored in another
    /// precision.
    pub fn tensor<D: Dtype>(&self, name: &str) -> Result<Tensor<D>> {
        self.require(name)?.to_tensor(name)
    }

    /// The tensor called `name`, or an error naming it.
    pub fn require(&self, name: &str) -> Result<&StoredTensor> {
        self.get(name).ok_or_else(|| {
            Error::invalid(
                "TensorFile::tensor",
                format!("the file has no tensor {name:?}"),
            )
        })
    }

    /// Names and tensors, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &StoredTensor)> {
        self.tensors.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Sets a metadata entry (safetensors' `__metadata__`, strings only).
    pub fn set_metadata(&mut self, key: &str, value: impl Into<String>) {
        self.metadata.insert(key.to_string(), value.into());
    }

    /// A metadata entry.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// All metadata, in key order.
    pub fn metadata_entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The file's bytes: the same file gives the same bytes (metadata in key order;
    /// tensors laid out as the `safetensors` crate lays them out, by descending alignment
    /// then name).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut order: Vec<(&String, &StoredTensor)> = self.tensors.iter().collect();
        order.sort_by(|(ln, l), (rn, r)| {
            let (l, r) = (to_st_dtype(l.dtype), to_st_dtype(r.dtype));
            r.cmp(&l).then(ln.cmp(rn))
        });
        let mut offset = 0;
        let infos = order.iter().map(|(name, t)| {
            let info = TensorInfo {
                dtype: to_st_dtype(t.dtype),
                shape: t.shape.clone(),
                data_offsets: (offset, offset + t.bytes.len()),
            };
            offset += t.bytes.len();
            (name.as_str(), info)
        });
        let mut bytes = vec![0; 8];
        header::write(&mut bytes, &self.metadata, infos)
            .map_err(|e| Error::invalid("TensorFile::to_bytes", e))?;
        let n = (bytes.len() - 8) as u64;
        bytes[..8].copy_from_slice(&n.to_le_bytes());
        for (_, t) in order {
            bytes.extend_from_slice(&t.bytes);
        }
        Ok(bytes)
    }

    /// Parses a whole file; `source` names it in errors. Every header field and offset is
    /// checked (by the `safetensors` crate) before anything is returned.
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<TensorFile> {
        const OP: &str = "TensorFile::load";
        let bad = |msg: String| Error::invalid(OP, format!("{source}: {msg}"));
        let (n, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        // Checked by `read_metadata`: the offsets are contiguous and end at the file's end.
        let data = &bytes[8 + n..];
        let mut file = TensorFile::new();
        for (name, info) in header.tensors() {
            let dtype = from_st_dtype(info.dtype).ok_or_else(|| {
                bad(format!(
                    "tensor {name:?} has dtype {:?}, not a precision type of mixprec",
                    info.dtype
                ))
            })?;
            let (start, end) = info.data_offsets;
            let stored = StoredTensor {
                dtype,
                shape: info.shape.clone(),
                bytes: data[start..end].to_vec(),
            };
            file.tensors.insert(name, stored);
        }
        if let Some(m) = header.metadata() {
            file.metadata = m.clone().into_iter().collect();
        }
        Ok(file)
    }

    /// Writes the file atomically ([`write_atomic`]).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = self.to_bytes()?;
        write_atomic(path, &bytes).map_err(|e| Error::io("TensorFile::save", Some(path), &e))
    }

    /// Reads and checks a whole file.
    pub fn load(path: impl AsRef<Path>) -> Result<TensorFile> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|e| Error::io("TensorFile::load", Some(path), &e))?;
        TensorFile::from_bytes(&bytes, &path.display().to_string())
    }
}
