//! [`Saved`]: what a backward rule keeps alive, counted once per storage.
//!
//! Two rules that save the same tensor (or views of one storage) hold its bytes once,
//! so the tape counts a storage when the first rule saves it and releases it when the
//! last such rule has run. Storages registered with [`Tape::exclude_from_saved`] (the
//! per-step compute copies of the weights, accounted as their own memory role) are not
//! counted as saved activations at all.

use crate::tape::{Inner, Tape};
use mixprec_dtype::{DType, Dtype};
use mixprec_tensor::Tensor;
use std::any::Any;

/// Memory a backward rule keeps alive: a tensor's storage, or an opaque byte count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Saved {
    pub(crate) dtype: DType,
    pub(crate) bytes: usize,
    /// The storage's identity, for counting shared storages once; `None` for opaque bytes.
    pub(crate) storage: Option<usize>,
}

impl Saved {
    /// The rule keeps `t` (its whole storage: a view keeps all of it alive).
    pub fn tensor<D: Dtype>(t: &Tensor<D>) -> Saved {
        Saved {
            dtype: D::DTYPE,
            bytes: t.storage_nbytes(),
            storage: Some(t.storage_id()),
        }
    }

    /// The rule keeps `bytes` of precision `dtype` not held by any tensor the tape can see.
    pub fn bytes(dtype: DType, bytes: usize) -> Saved {
        Saved {
            dtype,
            bytes,
            storage: None,
        }
    }
}

impl Inner {
    /// Counts `s` as held by one more rule.
    pub(crate) fn hold(&mut self, s: &Saved) {
        if let Some(id) = s.storage {
            if self.excluded.contains_key(&id) {
                return;
            }
            let holders = self.holders.entry(id).or_insert(0);
            *holders += 1;
            if *holders > 1 {
                return;
            }
        }
        let i = s.dtype.index();
        self.saved_bytes[i] += s.bytes;
        self.peak_saved_bytes[i] = self.peak_saved_bytes[i].max(self.saved_bytes[i]);
    }

    /// Counts `s` as released by one rule.
    pub(crate) fn release(&mut self, s: &Saved) {
        if let Some(id) = s.storage {
            let Some(holders) = self.holders.get_mut(&id) else {
                return; // excluded
            };
            *holders -= 1;
            if *holders > 0 {
                return;
            }
            self.holders.remove(&id);
        }
        self.saved_bytes[s.dtype.index()] -= s.bytes;
    }
}

impl Tape {
    /// Keeps `t`'s storage out of the saved-for-backward count (and alive as long as the
    /// tape): for tensors accounted elsewhere, such as the per-step compute copies of the
    /// weights that GEMMs save. Call before the ops that save it.
    pub fn exclude_from_saved<D: Dtype>(&self, t: &Tensor<D>) {
        let keep: Box<dyn Any + Send> = Box::new(t.clone());
        self.lock().excluded.insert(t.storage_id(), keep);
    }
}
