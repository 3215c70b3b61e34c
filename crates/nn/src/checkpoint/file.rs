//! [`TensorFile`]: named tensors of any precision type plus string metadata, in the
//! safetensors format (read and written with the `safetensors` crate).

use super::atomic::write_atomic;
use mixprec_autograd::{Error, Result};
use mixprec_dtype::{DType, Dtype};
use mixprec_tensor::Tensor;
use safetensors::tensor::{Dtype as StDtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
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

impl View for &StoredTensor {
    fn dtype(&self) -> StDtype {
        to_st_dtype(self.dtype)
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
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

    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let metadata: HashMap<String, String> = self.metadata.clone().into_iter().collect();
        let metadata = (!metadata.is_empty()).then_some(metadata);
        safetensors::serialize(self.tensors.iter(), metadata)
            .map_err(|e| Error::invalid("TensorFile::to_bytes", e.to_string()))
    }

    /// Parses a whole file; `source` names it in errors. Every header field and offset is
    /// checked before anything is returned.
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<TensorFile> {
        const OP: &str = "TensorFile::load";
        let bad = |msg: String| Error::invalid(OP, format!("{source}: {msg}"));
        let st = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        let mut file = TensorFile::new();
        for (name, view) in st.iter() {
            let dtype = from_st_dtype(view.dtype()).ok_or_else(|| {
                bad(format!(
                    "tensor {name:?} has dtype {:?}, not a precision type of mixprec",
                    view.dtype()
                ))
            })?;
            let stored = StoredTensor {
                dtype,
                shape: view.shape().to_vec(),
                bytes: view.data().to_vec(),
            };
            file.tensors.insert(name.to_string(), stored);
        }
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        if let Some(m) = header.metadata() {
            file.metadata = m.clone().into_iter().collect();
        }
        Ok(file)
    }

    /// Writes the file atomically ([`write_atomic`]).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = self.to_bytes()?;
        write_atomic(path, &bytes)
            .map_err(|e| Error::invalid("TensorFile::save", format!("{}: {e}", path.display())))
    }

    /// Reads and checks a whole file.
    pub fn load(path: impl AsRef<Path>) -> Result<TensorFile> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| Error::invalid("TensorFile::load", format!("{}: {e}", path.display())))?;
        TensorFile::from_bytes(&bytes, &path.display().to_string())
    }
}
