//! [`Tensor`]: a view (shape, strides, offset) into shared storage of one precision.

use crate::cpu::alloc::{try_collect, try_scratch, try_with_capacity, try_zeroed_acc, zeroed_acc};
use crate::error::{Error, ErrorKind, Result};
use crate::layout::{Layout, numel};
use crate::storage::{Device, Storage};
use mixprec_dtype::{Acc, DType, Dtype, F32, convert_slice, convert_slice_scaled_saturating};
use std::any::Any;
use std::borrow::Cow;
use std::sync::Arc;

/// An n-dimensional array whose elements are stored at `D`'s own width: a `Tensor<Bf16>`
/// of n elements holds 2n bytes, a `Tensor<E4M3>` n bytes plus its scale.
///
/// Cloning shares the storage; views (reshape of contiguous data, transpose, permute,
/// narrow, broadcast) share it too and copy nothing. Ops never write into an existing
/// tensor, so sharing is safe.
///
/// **FP8 scale.** Every tensor carries an f32 `scale` that is 1 except for `E4M3`/`E5M2`:
/// the value of an element is `decode(bits) / scale`. FP8 results of ops use *current
/// scaling* with a power-of-two scale ([`fp8_current_scale`]: the largest `2^k` with
/// `amax * 2^k <= MAX`), so scaling adds no rounding: one saturating round-to-nearest-even
/// of `value * scale`. (The amp layer's delayed scaling sets scales explicitly.)
///
/// **Arithmetic contract.** Every op decodes its inputs to `D::Acc` (f32; f64 for `F64`),
/// computes, and rounds its result once into `D` (nearest even). Sums, means, norms,
/// matmul and softmax denominators accumulate in `D::Acc`.
pub struct Tensor<D: Dtype> {
    pub(crate) storage: Arc<Storage<D>>,
    pub(crate) layout: Layout,
    pub(crate) scale: f32,
}

impl<D: Dtype> Clone for Tensor<D> {
    fn clone(&self) -> Self {
        Tensor {
            storage: Arc::clone(&self.storage),
            layout: self.layout.clone(),
            scale: self.scale,
        }
    }
}

impl<D: Dtype> std::fmt::Debug for Tensor<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The first elements only, each found from its index (no copy of the tensor: a
        // broadcast view may have more elements than memory holds).
        let shown: Vec<f64> = (0..self.numel().min(8)).map(|i| self.value_at(i)).collect();
        write!(f, "Tensor<{}>{:?} {:?}", D::NAME, self.shape(), shown)?;
        if self.numel() > 8 {
            write!(f, " ... ({} elements)", self.numel())?;
        }
        if D::DTYPE.is_fp8() {
            write!(f, " scale {}", self.scale)?;
        }
        Ok(())
    }
}

/// The scale current scaling picks for op results with this amax: the largest power of
/// two `2^k` with `amax * 2^k <= max` (so multiplying and dividing by it is exact), `k` in
/// -126..=127; 1 when amax is 0 or not finite.
pub fn fp8_current_scale(amax: f32, max: f32) -> f32 {
    if !(amax.is_finite() && amax > 0.0) {
        return 1.0;
    }
    let ratio = f64::from(max) / f64::from(amax);
    let k = ratio.log2().floor().clamp(-126.0, 127.0) as i32;
    // log2 of an exact power of two is exact, so k is never one too high.
    2f32.powi(k)
}

impl<D: Dtype> Tensor<D> {
    /// A fresh contiguous tensor owning `data` (length already checked).
    pub(crate) fn from_parts(data: Vec<D>, shape: &[usize], scale: f32) -> Self {
        debug_assert_eq!(data.len(), numel(shape));
        Tensor {
            storage: Arc::new(Storage::Cpu(data)),
            layout: Layout::contiguous(shape),
            scale,
        }
    }

    /// A view of the same storage with another layout.
    /// The stored elements for writing, when no other tensor shares the storage.
    pub(crate) fn storage_mut(&mut self) -> Option<&mut [D]> {
        Arc::get_mut(&mut self.storage).map(|s| s.as_mut_slice())
    }

    /// The elements for writing in place: `Some` when this tensor alone owns its storage
    /// and covers all of it contiguously from the start, so a write changes no other
    /// tensor and reaches every element.
    pub(crate) fn owned_elements_mut(&mut self) -> Option<&mut [D]> {
        let n = self.numel();
        let covers_from_start = self.layout.contiguous_range() == Some(0..n);
        let storage = Arc::get_mut(&mut self.storage)?;
        (covers_from_start && storage.len() == n).then(|| storage.as_mut_slice())
    }

    /// Makes this tensor the sole owner of contiguous storage that holds exactly its
    /// elements, copying them when the storage is shared (a clone, a tape's saved value)
    /// or the tensor is a view. Values, shape and scale do not change. After it, an
    /// in-place op on this tensor (the fused optimizer updates) writes without
    /// allocating. Errors, naming `op` and the shape, when the copy cannot be allocated
    /// (and then nothing changed).
    ///
    /// ```
    /// use mixprec_tensor::Tensor;
    /// use mixprec_dtype::F32;
    /// let a = Tensor::<F32>::from_f32(&[1.0, 2.0], &[2]).unwrap();
    /// let mut b = a.clone(); // shares a's storage
    /// b.try_make_owned("example").unwrap();
    /// assert_eq!(b.to_f32_vec(), a.to_f32_vec());
    /// ```
    pub fn try_make_owned(&mut self, op: &'static str) -> Result<()> {
        if self.owned_elements_mut().is_some() {
            return Ok(());
        }
        let copy = match self.try_elements(op)? {
            Cow::Owned(gathered) => gathered,
            Cow::Borrowed(elements) => {
                let mut copy = try_with_capacity(op, self.shape(), elements.len())?;
                copy.extend_from_slice(elements);
                copy
            }
        };
        *self = Tensor::from_parts(copy, self.shape(), self.scale);
        Ok(())
    }

    /// The elements for writing in place, after [`Tensor::try_make_owned`]: the one
    /// fallible step of an in-place op (a copy when the storage is shared or the tensor a
    /// view). Errors, naming `op`, when that copy cannot be allocated.
    pub(crate) fn try_owned_elements_mut(&mut self, op: &'static str) -> Result<&mut [D]> {
        self.try_make_owned(op)?;
        self.owned_elements_mut()
            .ok_or_else(|| Error::invalid(op, "the tensor still shares its storage after a copy"))
    }

    pub(crate) fn view(&self, layout: Layout) -> Self {
        Tensor {
            storage: Arc::clone(&self.storage),
            layout,
            scale: self.scale,
        }
    }

    /// Rounds values computed in `D::Acc` into a new contiguous tensor, once (nearest
    /// even; FP8 with current scaling, saturating). Errors, naming `op` and `shape`, when
    /// the result's memory cannot be had.
    pub(crate) fn from_acc_vec(
        op: &'static str,
        values: &[D::Acc],
        shape: &[usize],
    ) -> Result<Self> {
        debug_assert_eq!(values.len(), numel(shape));
        let mut data = try_scratch::<D>(op, shape, values.len())?;
        if D::DTYPE.is_fp8() {
            let mut f32s: Vec<f32> = try_with_capacity(op, shape, values.len())?;
            f32s.extend(values.iter().map(|v| v.to_f32()));
            let amax = f32s
                .iter()
                .filter(|v| v.is_finite())
                .fold(0.0f32, |m, v| m.max(v.abs()));
            let scale = fp8_current_scale(amax, D::MAX.to_f32());
            convert_slice_scaled_saturating(&f32s, &mut data, scale)
                .expect("lengths equal, scale finite and positive");
            return Ok(Self::from_parts(data, shape, scale));
        }
        D::from_acc_slice(values, &mut data);
        Ok(Self::from_parts(data, shape, 1.0))
    }

    /// Rounds f32 results (of an op that computed in f32) into a new contiguous tensor,
    /// once: `F32` takes the buffer as it is (no copy), FP8 uses current scaling, the rest
    /// round to nearest even through the SIMD slice conversion. Not for `F64`, whose ops
    /// compute in f64. Errors, naming `op` and `shape`, when memory cannot be had.
    pub(crate) fn from_f32_results(
        op: &'static str,
        values: Vec<f32>,
        shape: &[usize],
    ) -> Result<Self> {
        debug_assert_eq!(values.len(), numel(shape));
        debug_assert!(D::DTYPE != DType::F64, "F64 ops compute in f64");
        if D::DTYPE == DType::F32 {
            // Same layout (F32 is repr(transparent) over f32): collect reuses the buffer.
            let same: Vec<F32> = values.into_iter().map(F32).collect();
            let boxed: Box<dyn Any> = Box::new(same);
            let data = *boxed.downcast::<Vec<D>>().expect("D is F32");
            return Ok(Self::from_parts(data, shape, 1.0));
        }
        if D::DTYPE.is_fp8() {
            // FP8 computes in f32 (`Acc = f32`): the collect reuses the buffer in place.
            let acc: Vec<D::Acc> = values.into_iter().map(D::Acc::from_f32).collect();
            return Self::from_acc_vec(op, &acc, shape);
        }
        let mut data = try_scratch::<D>(op, shape, values.len())?;
        convert_slice(&values, &mut data).expect("equal lengths");
        Ok(Self::from_parts(data, shape, 1.0))
    }

    /// A tensor from values in the compute precision, rounded once into `D` (FP8: current
    /// scaling). Errors if the length does not match the shape.
    pub fn from_acc(values: &[D::Acc], shape: &[usize]) -> Result<Self> {
        check_len("from_acc", shape, values.len())?;
        Self::from_acc_vec("from_acc", values, shape)
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.layout.shape
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.layout.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.layout.numel()
    }

    /// Strides in elements (0 on broadcast dimensions).
    pub fn strides(&self) -> &[usize] {
        &self.layout.strides
    }

    /// True when the elements are dense and row-major in storage.
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// The runtime precision tag.
    pub fn dtype(&self) -> DType {
        D::DTYPE
    }

    /// Where the storage lives.
    pub fn device(&self) -> Device {
        self.storage.device()
    }

    /// This tensor on `device`: itself (sharing storage) when it is there already, else a
    /// copy there. Errors when the device cannot hold it (a GPU in a build without the
    /// CUDA backend: "built without CUDA support").
    pub fn to_device(&self, device: Device) -> Result<Tensor<D>> {
        if device == self.device() {
            return Ok(self.clone());
        }
        match device {
            Device::Cpu => Ok(self.try_contiguous("to_device")?),
            Device::Cuda(ordinal) => {
                let host = self.try_elements("to_device")?;
                let storage = crate::storage::CudaStorage::from_host("to_device", ordinal, &host)?;
                Ok(Tensor {
                    storage: Arc::new(Storage::Cuda(storage)),
                    layout: Layout::contiguous(self.shape()),
                    scale: self.scale,
                })
            }
        }
    }

    /// The FP8 per-tensor scale (`value = decode(bits) / scale`); 1 for other types.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// Bytes of the storage this tensor references (shared with its views).
    pub fn storage_bytes(&self) -> usize {
        self.storage.bytes()
    }

    /// Bytes of this tensor's elements at `D`'s width (`numel * D::BYTES`).
    pub fn nbytes(&self) -> usize {
        self.numel() * D::BYTES
    }

    /// Identity of the storage allocation (equal for tensors and views that share it;
    /// unique among live storages).
    pub fn storage_id(&self) -> usize {
        Arc::as_ptr(&self.storage) as *const () as usize
    }

    /// Bytes of the whole storage this tensor keeps alive (a view keeps all of it).
    pub fn storage_nbytes(&self) -> usize {
        self.storage.bytes()
    }

    /// True when both share one storage allocation.
    pub fn shares_storage_with(&self, other: &Tensor<D>) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    /// The stored elements in logical (row-major) order: borrowed when contiguous. A
    /// strided view is gathered into a new buffer, which aborts like `Vec` if the memory
    /// cannot be had; ops that return `Result` use [`Tensor::try_elements`].
    pub(crate) fn elements(&self) -> Cow<'_, [D]> {
        self.gather_elements(Vec::with_capacity(self.numel()))
    }

    /// [`Tensor::elements`], or an error naming `op` when a strided view's copy cannot be
    /// allocated.
    pub(crate) fn try_elements(&self, op: &'static str) -> Result<Cow<'_, [D]>> {
        if self.layout.contiguous_range().is_some() {
            return Ok(self.gather_elements(Vec::new()));
        }
        let out = crate::cpu::alloc::try_with_capacity(op, self.shape(), self.numel())?;
        Ok(self.gather_elements(out))
    }

    /// The elements in logical order: borrowed when contiguous, else appended to `out`
    /// (which should have room for them).
    fn gather_elements(&self, mut out: Vec<D>) -> Cow<'_, [D]> {
        let data = self.storage.as_slice();
        match self.layout.contiguous_range() {
            Some(range) => Cow::Borrowed(&data[range]),
            None => {
                out.reserve_exact(self.numel());
                self.layout.for_each_row(|start, stride, len| {
                    if stride == 1 {
                        out.extend_from_slice(&data[start..start + len]);
                    } else {
                        out.extend((0..len).map(|i| data[start + i * stride]));
                    }
                });
                Cow::Owned(out)
            }
        }
    }

    /// The raw stored elements in logical order (FP8: codes before dividing by the scale).
    pub fn to_vec(&self) -> Vec<D> {
        self.elements().into_owned()
    }

    /// The values in the compute precision, logical order (FP8 divided by the scale).
    /// Aborts like `Vec` when the memory cannot be had; see [`Tensor::try_to_acc_vec`].
    pub fn to_acc_vec(&self) -> Vec<D::Acc> {
        let elements = self.elements();
        let out = zeroed_acc::<D>(elements.len());
        self.fill_acc(&elements, out)
    }

    /// [`Tensor::to_acc_vec`], or an error naming `op` and this tensor's shape when the
    /// copy (or a strided view's gather) cannot be allocated.
    pub fn try_to_acc_vec(&self, op: &'static str) -> Result<Vec<D::Acc>> {
        let elements = self.try_elements(op)?;
        let out = try_zeroed_acc::<D>(op, self.shape(), elements.len())?;
        Ok(self.fill_acc(&elements, out))
    }

    /// Converts `elements` into `out` (same length), dividing FP8 by the scale.
    fn fill_acc(&self, elements: &[D], mut out: Vec<D::Acc>) -> Vec<D::Acc> {
        D::to_acc_slice(elements, &mut out);
        if self.scale != 1.0 {
            let s = D::Acc::from_f32(self.scale);
            out.iter_mut().for_each(|v| *v /= s);
        }
        out
    }

    /// The values as f32 (exact except for `F64`, and except FP8 division by the scale).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        self.to_acc_vec().into_iter().map(|v| v.to_f32()).collect()
    }

    /// The values as f64 (exact for every type but scaled FP8: `decode / scale` in f64).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        let elements = self.elements();
        let s = f64::from(self.scale);
        elements.iter().map(|v| v.to_f64() / s).collect()
    }

    /// [`Tensor::to_f32_vec`], or an error naming `op` and the shape when the copy cannot
    /// be allocated.
    pub fn try_to_f32_vec(&self, op: &'static str) -> Result<Vec<f32>> {
        let acc: Box<dyn Any> = Box::new(self.try_to_acc_vec(op)?);
        match acc.downcast::<Vec<f32>>() {
            // f32 compute: the values already.
            Ok(values) => Ok(*values),
            // F64: rounded into one more buffer, sized up front.
            Err(acc) => {
                let acc = acc.downcast::<Vec<D::Acc>>().expect("the compute type");
                try_collect(op, self.shape(), acc.iter().map(|v| v.to_f32()))
            }
        }
    }

    /// [`Tensor::to_f64_vec`], or an error naming `op` and the shape when the copy cannot
    /// be allocated.
    pub fn try_to_f64_vec(&self, op: &'static str) -> Result<Vec<f64>> {
        let elements = self.try_elements(op)?;
        let s = f64::from(self.scale);
        try_collect(op, self.shape(), elements.iter().map(|v| v.to_f64() / s))
    }

    /// The single value of a one-element tensor, in the compute precision.
    pub fn item(&self) -> Result<D::Acc> {
        if self.numel() != 1 {
            return Err(Error::bad_shape(
                "item",
                self.shape(),
                "exactly one element",
            ));
        }
        Ok(self.try_to_acc_vec("item")?[0])
    }
}

/// Errors unless `len` matches the element count of `shape`.
pub(crate) fn check_len(op: &'static str, shape: &[usize], len: usize) -> Result<()> {
    if crate::layout::checked_numel(op, shape)? != len {
        return Err(Error::new(
            op,
            ErrorKind::LengthMismatch {
                shape: shape.to_vec(),
                len,
            },
        ));
    }
    Ok(())
}
