//! [`ComputeCopies`]: the low-precision copies of master weights made in one step, held in
//! one place and keyed by parameter, so a parameter used by several layers (a tied
//! embedding, a weight shared across blocks) is cast once per step, and the memory
//! accounting reads the same table the casts come from.

use crate::fp8::Fp8Scaling;
use mixprec_autograd::{NodeId, Result, Tape, Var};
use mixprec_dtype::{DType, Dtype};
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// What identifies one compute copy: the parameter (its leaf on the step's tape), the
/// precision, and for FP8 quantised with a layer's [`Fp8Scaling`] that state (its scales
/// are the layer's own, so two layers' FP8 copies of one weight differ).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CopyKey {
    param: NodeId,
    dtype: DType,
    scaling: Option<usize>,
}

impl CopyKey {
    /// The key of `param`'s copy in `T`, quantised with `scaling` when given.
    pub(crate) fn new<T: Dtype>(param: NodeId, scaling: Option<&Fp8Scaling>) -> CopyKey {
        CopyKey {
            param,
            dtype: T::DTYPE,
            scaling: scaling.map(Fp8Scaling::address),
        }
    }
}

struct Entry {
    /// The copy as a `Var<T>` (`None` for a same-precision use, which copies nothing).
    value: Option<Box<dyn Any + Send>>,
    bytes: usize,
    /// The FP8 state named in the key, kept alive with the entry so that its address
    /// (the key) cannot be reused by another state during the step.
    _scaling: Option<Fp8Scaling>,
}

/// The compute copies of one step. Cheap to clone: clones share the table. An
/// [`crate::Autocast`] made with [`crate::Autocast::new`] has its own; autocasts of one
/// step share one with [`crate::Autocast::sharing`] (the nn crate's `Step` does).
#[derive(Clone, Default)]
pub struct ComputeCopies(Arc<Mutex<HashMap<CopyKey, Entry>>>);

impl std::fmt::Debug for ComputeCopies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ComputeCopies({} casts, {:?})",
            self.len(),
            self.bytes_by_dtype()
        )
    }
}

impl ComputeCopies {
    /// An empty table (one per step).
    pub fn new() -> ComputeCopies {
        ComputeCopies::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<CopyKey, Entry>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of copies made (same-precision uses, which copy nothing, not counted).
    pub fn len(&self) -> usize {
        self.lock().values().filter(|e| e.value.is_some()).count()
    }

    /// True when no copy was made.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when both handles share one table.
    pub fn same(&self, other: &ComputeCopies) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Bytes of the copies, by precision (same-precision uses count nothing).
    pub fn bytes_by_dtype(&self) -> Vec<(DType, usize)> {
        let mut out: Vec<(DType, usize)> = Vec::new();
        for (key, e) in self.lock().iter() {
            if e.value.is_none() {
                continue;
            }
            match out.iter_mut().find(|(d, _)| *d == key.dtype) {
                Some(row) => row.1 += e.bytes,
                None => out.push((key.dtype, e.bytes)),
            }
        }
        out
    }

    /// The copy under `key`, made with `make` the first time (then kept out of `tape`'s
    /// saved-for-backward count: it is accounted here, once).
    pub(crate) fn get_or_make<T: Dtype>(
        &self,
        key: CopyKey,
        scaling: Option<&Fp8Scaling>,
        tape: &Tape,
        make: impl FnOnce() -> Result<Var<T>>,
    ) -> Result<Var<T>> {
        let mut table = self.lock();
        // Node ids are per tape: a table used with another tape (a user's mistake, or a
        // table kept past its step) never hands out a copy recorded on a different one.
        if let Some(v) = table
            .get(&key)
            .and_then(|e| e.value.as_ref())
            .and_then(|b| b.downcast_ref::<Var<T>>())
            .filter(|v| v.tape().same(tape))
        {
            return Ok(v.clone());
        }
        let v = make()?;
        tape.exclude_from_saved(v.value());
        let entry = Entry {
            value: Some(Box::new(v.clone())),
            bytes: v.value().nbytes(),
            _scaling: scaling.cloned(),
        };
        table.insert(key, entry);
        Ok(v)
    }

    /// Records that a parameter was used in its own precision (no copy); the first time,
    /// its value is kept out of `tape`'s saved count (it is the master weight itself).
    pub(crate) fn note_same_precision<T: Dtype>(&self, key: CopyKey, tape: &Tape, x: &Var<T>) {
        let mut table = self.lock();
        if table.contains_key(&key) {
            return;
        }
        tape.exclude_from_saved(x.value());
        let entry = Entry {
            value: None,
            bytes: x.value().nbytes(),
            _scaling: None,
        };
        table.insert(key, entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Autocast, Bf16Mixed, Fp8Hybrid, Fp8Recipe};
    use mixprec_dtype::{Bf16, F32, F64};
    use mixprec_tensor::Tensor;

    /// A weight and an input on a fresh tape.
    fn weight_and_input() -> (Tape, Var<F32>, Var<F32>) {
        let tape = Tape::new();
        let w = tape.leaf(Tensor::<F32>::from_f32(&[1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap());
        let x = tape.constant(Tensor::<F32>::from_f32(&[0.5, -1.5], &[1, 2]).unwrap());
        (tape, w, x)
    }

    #[test]
    fn layers_sharing_a_table_cast_a_tied_weight_once() {
        let (tape, w, x) = weight_and_input();
        let copies = ComputeCopies::new();
        let first = Autocast::<Bf16Mixed>::new(&tape).sharing(&copies);
        let second = Autocast::<Bf16Mixed>::new(&tape).sharing(&copies);
        let y1 = first.matmul(&x, &w).unwrap();
        let y2 = second.matmul(&x, &w).unwrap();
        assert_eq!(y1.value().to_f32_vec(), y2.value().to_f32_vec());
        assert_eq!(copies.len(), 1, "{copies:?}");
        // One BF16 copy of 4 elements, 2 bytes each.
        assert_eq!(copies.bytes_by_dtype(), vec![(DType::Bf16, 8)]);
        assert!(first.copies().same(&copies) && second.cached_casts() == 1);
        // Without sharing, each autocast makes its own copy.
        let (tape, w, x) = weight_and_input();
        let (a, b) = (
            Autocast::<Bf16Mixed>::new(&tape),
            Autocast::<Bf16Mixed>::new(&tape),
        );
        a.matmul(&x, &w).unwrap();
        b.matmul(&x, &w).unwrap();
        assert_eq!(a.cached_casts() + b.cached_casts(), 2);
        assert!(!a.copies().same(b.copies()));
    }

    #[test]
    fn fp8_copies_are_per_scaling_state() {
        let (tape, w, x) = weight_and_input();
        let copies = ComputeCopies::new();
        let (s1, s2) = (
            Fp8Scaling::new(Fp8Recipe::Current),
            Fp8Scaling::new(Fp8Recipe::Current),
        );
        for s in [&s1, &s1, &s2] {
            Autocast::<Fp8Hybrid>::with_fp8(&tape, s)
                .sharing(&copies)
                .matmul(&x, &w)
                .unwrap();
        }
        // One E4M3 copy per state: the two uses under s1 share one.
        assert_eq!(copies.len(), 2, "{copies:?}");
        assert_eq!(copies.bytes_by_dtype(), vec![(DType::E4M3, 8)]);
    }

    #[test]
    fn a_table_never_hands_out_a_copy_from_another_tape() {
        let copies = ComputeCopies::new();
        let (tape1, w1, _) = weight_and_input();
        let c1: Var<Bf16> = Autocast::<Bf16Mixed>::new(&tape1)
            .sharing(&copies)
            .cast(&w1);
        // The first leaf of a second tape has the same node id, other values.
        let tape2 = Tape::new();
        let w2 = tape2.leaf(Tensor::<F32>::from_f32(&[9.0, 8.0, 7.0, 6.0], &[2, 2]).unwrap());
        assert_eq!(w2.id(), w1.id(), "node ids are per tape");
        let c2: Var<Bf16> = Autocast::<Bf16Mixed>::new(&tape2)
            .sharing(&copies)
            .cast(&w2);
        assert!(c2.tape().same(&tape2));
        assert_eq!(c2.value().to_f32_vec(), vec![9.0, 8.0, 7.0, 6.0]);
        assert_eq!(c1.value().to_f32_vec(), vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn same_precision_uses_copy_nothing() {
        let tape = Tape::new();
        let w = tape.leaf(Tensor::<F64>::from_f32(&[1.0, 2.0], &[2]).unwrap());
        let copies = ComputeCopies::new();
        let ac = Autocast::<Bf16Mixed>::new(&tape).sharing(&copies);
        let same: Var<F64> = ac.cast(&w);
        assert_eq!(same.id(), w.id(), "no cast node");
        assert!(copies.is_empty());
        assert!(copies.bytes_by_dtype().is_empty());
    }
}
