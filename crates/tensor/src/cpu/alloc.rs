//! Buffers for op results. A large buffer is asked to be backed by transparent huge
//! pages before it is first touched (Linux `madvise(MADV_HUGEPAGE)`, as numpy does for
//! arrays of 4 MiB and more): a fresh 64 MiB result otherwise costs 16384 page faults,
//! which took longer than the arithmetic of a memory-bound op (measured: an f32 add of
//! 16M elements spent most of its 53 ms in faults; see docs/tensor.md).

/// Buffers at least this large get the huge-page hint.
const HUGE_MIN_BYTES: usize = 4 << 20;

use mixprec_dtype::ZeroBits;

/// What `Vec` does when an allocation of `n` elements fails: the allocation-error handler
/// (an abort), or a panic when the size overflows.
fn alloc_failed<T>(n: usize) -> ! {
    match std::alloc::Layout::array::<T>(n) {
        Ok(layout) => std::alloc::handle_alloc_error(layout),
        Err(_) => panic!("allocation of {n} elements overflows"),
    }
}

/// `n` zeros of a type that may be zero-filled, from the allocator's zeroed memory
/// (fresh large allocations come zeroed from the kernel: no fill pass), with the
/// huge-page hint for large sizes; `None` when the size overflows or the allocator
/// refuses.
fn try_zeroed_vec<T: ZeroBits>(n: usize) -> Option<Vec<T>> {
    if n == 0 || std::mem::size_of::<T>() == 0 {
        return Some(Vec::new());
    }
    let layout = std::alloc::Layout::array::<T>(n).ok()?;
    // SAFETY: the layout has non-zero size (checked above).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        return None;
    }
    advise_huge(ptr.cast::<u8>(), layout.size());
    // SAFETY: allocated by the global allocator with exactly `Layout::array::<T>(n)`, the
    // layout `Vec<T>` uses for capacity `n`; zero bytes are valid `T`s (ZeroBits).
    Some(unsafe { Vec::from_raw_parts(ptr, n, n) })
}

/// `n` zeros of a precision type `D` for a result of `shape`, or an error naming `op`
/// when the allocator cannot provide them (never an abort). Like [`zeroed`], large
/// buffers come zeroed from the kernel without being touched.
pub(crate) fn try_zeroed<D: mixprec_dtype::Dtype>(
    op: &'static str,
    shape: &[usize],
    n: usize,
) -> crate::Result<Vec<D>> {
    try_zeroed_vec::<D>(n).ok_or_else(|| allocation_error::<D>(op, shape, n))
}

/// `n` zeros of `D`'s compute precision for a result of `shape`, or an error naming `op`.
pub(crate) fn try_zeroed_acc<D: mixprec_dtype::Dtype>(
    op: &'static str,
    shape: &[usize],
    n: usize,
) -> crate::Result<Vec<D::Acc>> {
    try_zeroed_vec::<D::Acc>(n).ok_or_else(|| allocation_error::<D::Acc>(op, shape, n))
}

/// `K` buffers of `len` zeros of `D`'s compute precision (the row-sized scratch of a
/// parallel task), or an error naming `op` when one cannot be allocated.
pub(crate) fn try_zeroed_acc_buffers<D: mixprec_dtype::Dtype, const K: usize>(
    op: &'static str,
    len: usize,
) -> crate::Result<[Vec<D::Acc>; K]> {
    let mut out: [Vec<D::Acc>; K] = std::array::from_fn(|_| Vec::new());
    for buffer in &mut out {
        *buffer = try_zeroed_acc::<D>(op, &[len], len)?;
    }
    Ok(out)
}

/// `n` zeros of a precision type `D` (all of which are zero-fillable).
pub(crate) fn zeroed<D: mixprec_dtype::Dtype>(n: usize) -> Vec<D> {
    zeroed_vec::<D>(n)
}

/// `n` zeros of `D`'s compute precision (f32 or f64).
pub(crate) fn zeroed_acc<D: mixprec_dtype::Dtype>(n: usize) -> Vec<D::Acc> {
    zeroed_vec::<D::Acc>(n)
}

/// Buffers of dropped tensors, kept for reuse by op outputs that overwrite every
/// element: a reused buffer needs neither a fresh allocation nor a zero-fill (for a
/// 256 KiB activation both cost more than the op). Bounded in count and bytes.
struct Recycler {
    free: std::collections::HashMap<(std::any::TypeId, usize), Vec<Box<dyn std::any::Any + Send>>>,
    bytes: usize,
}

/// At most this many bytes wait for reuse.
const RECYCLE_MAX_BYTES: usize = 256 << 20;
/// At most this many buffers of one type and length wait for reuse.
const RECYCLE_MAX_PER_SIZE: usize = 8;
/// Smaller buffers are cheap to allocate and are not kept.
const RECYCLE_MIN_BYTES: usize = 16 << 10;

static RECYCLER: std::sync::Mutex<Option<Recycler>> = std::sync::Mutex::new(None);

/// Bytes of the GEMM packing buffers of all threads (updated when one grows or shrinks).
pub(crate) static PACKING_BYTES: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// Frees the buffers kept for reuse and this thread's GEMM packing buffers (other
/// threads keep theirs, bounded by the GEMM block sizes): what `torch.cuda.empty_cache`
/// is to PyTorch. Later ops allocate afresh until the reuse pool fills again.
pub fn release_workspace() {
    if let Ok(mut g) = RECYCLER.lock()
        && let Some(r) = g.as_mut()
    {
        r.free.clear();
        r.bytes = 0;
    }
    crate::cpu::gemm::release_packing();
}

/// Memory the library holds outside tensors: the GEMM packing buffers of every thread and
/// the buffers of dropped tensors kept for reuse. This is the "workspace" of the memory
/// accounting; it is bounded (packing by the block sizes, reuse by 256 MiB).
pub fn workspace_bytes() -> usize {
    let recycled = RECYCLER
        .lock()
        .map(|g| g.as_ref().map_or(0, |r| r.bytes))
        .unwrap_or(0);
    PACKING_BYTES.load(std::sync::atomic::Ordering::Relaxed) + recycled
}

/// Offers a dropped tensor's buffer for reuse (kept only if it fits the bounds).
pub(crate) fn recycle<T: Send + 'static>(v: Vec<T>) {
    let bytes = v.capacity() * std::mem::size_of::<T>();
    if bytes < RECYCLE_MIN_BYTES || v.len() != v.capacity() {
        return;
    }
    let Ok(mut guard) = RECYCLER.try_lock() else {
        return;
    };
    let r = guard.get_or_insert_with(|| Recycler {
        free: std::collections::HashMap::new(),
        bytes: 0,
    });
    if r.bytes + bytes > RECYCLE_MAX_BYTES {
        return;
    }
    let slot = r
        .free
        .entry((std::any::TypeId::of::<T>(), v.len()))
        .or_default();
    if slot.len() < RECYCLE_MAX_PER_SIZE {
        slot.push(Box::new(v));
        r.bytes += bytes;
    }
}

/// A buffer of `n` elements whose contents are unspecified (a reused buffer, or zeros),
/// for an op output that writes every element: the result of `op` with `shape`, or an
/// error naming them when the memory cannot be had.
pub(crate) fn try_scratch<D: mixprec_dtype::Dtype>(
    op: &'static str,
    shape: &[usize],
    n: usize,
) -> crate::Result<Vec<D>> {
    match reuse::<D>(n) {
        Some(v) => Ok(v),
        None => try_zeroed::<D>(op, shape, n),
    }
}

/// An f32 buffer of `n` unspecified values (reusing a dropped `F32` tensor's storage, or
/// zeros) for the result of `op` with `shape`, or an error naming them.
pub(crate) fn try_scratch_f32(
    op: &'static str,
    shape: &[usize],
    n: usize,
) -> crate::Result<Vec<f32>> {
    match reuse::<mixprec_dtype::F32>(n) {
        Some(v) => Ok(v.into_iter().map(|x| x.0).collect()),
        None => try_zeroed_vec::<f32>(n).ok_or_else(|| allocation_error::<f32>(op, shape, n)),
    }
}

/// An empty vector with room for `n` elements of the result of `op` with `shape`, or an
/// error naming them.
pub(crate) fn try_with_capacity<T>(
    op: &'static str,
    shape: &[usize],
    n: usize,
) -> crate::Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| allocation_error::<T>(op, shape, n))?;
    Ok(v)
}

/// `n` zeros of a zero-fillable type (a temporary of `op` shaped `shape`) from the
/// allocator's zeroed memory, or an error naming them when the memory cannot be had.
pub(crate) fn try_zeros_of<T: ZeroBits>(
    op: &'static str,
    shape: &[usize],
    n: usize,
) -> crate::Result<Vec<T>> {
    try_zeroed_vec::<T>(n).ok_or_else(|| allocation_error::<T>(op, shape, n))
}

/// The items of `iter` in a vector sized up front (a temporary or result of `op` shaped
/// `shape`), or an error naming them when the memory cannot be had: the fallible
/// `collect`.
pub(crate) fn try_collect<T>(
    op: &'static str,
    shape: &[usize],
    iter: impl ExactSizeIterator<Item = T>,
) -> crate::Result<Vec<T>> {
    let mut v = try_with_capacity(op, shape, iter.len())?;
    v.extend(iter);
    Ok(v)
}

/// The first error met inside parallel tasks, which cannot return one: a task that fails
/// to allocate its temporaries records the error and stops; the op returns it after the
/// run (its partial output is dropped).
pub(crate) struct FirstError(std::sync::Mutex<Option<crate::Error>>);

impl FirstError {
    pub(crate) fn new() -> Self {
        FirstError(std::sync::Mutex::new(None))
    }

    /// The value of `r`, or `None` after recording its error (the first one is kept).
    pub(crate) fn keep<T>(&self, r: crate::Result<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                let mut first = self.0.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert(e);
                None
            }
        }
    }

    /// `Ok` when no task failed, else the first error.
    pub(crate) fn into_result(self) -> crate::Result<()> {
        match self.0.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// The error of `op` when `n` elements of `T` for a result shaped `shape` cannot be had.
fn allocation_error<T>(op: &'static str, shape: &[usize], n: usize) -> crate::Error {
    crate::Error::new(
        op,
        crate::ErrorKind::Allocation {
            shape: shape.to_vec(),
            bytes: n.saturating_mul(std::mem::size_of::<T>()),
        },
    )
}

fn reuse<T: 'static>(n: usize) -> Option<Vec<T>> {
    let bytes = n * std::mem::size_of::<T>();
    if bytes < RECYCLE_MIN_BYTES {
        return None;
    }
    let mut guard = RECYCLER.lock().unwrap_or_else(|e| e.into_inner());
    let r = guard.as_mut()?;
    let v = r.free.get_mut(&(std::any::TypeId::of::<T>(), n))?.pop()?;
    r.bytes -= bytes;
    v.downcast::<Vec<T>>().ok().map(|b| *b)
}

/// Zeroed vector; aborts like `Vec` when the allocator refuses.
fn zeroed_vec<T: ZeroBits>(n: usize) -> Vec<T> {
    try_zeroed_vec::<T>(n).unwrap_or_else(|| alloc_failed::<T>(n))
}

/// Hints the kernel to back the 2 MiB-aligned part of `[ptr, ptr + bytes)` with huge
/// pages. A hint only: failure (or another OS) changes nothing but speed.
fn advise_huge(ptr: *mut u8, bytes: usize) {
    if bytes < HUGE_MIN_BYTES {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = (ptr as usize).div_ceil(HUGE) * HUGE;
        let end = (ptr as usize + bytes) / HUGE * HUGE;
        if end > start {
            // SAFETY: the range lies inside the allocation `ptr..ptr + bytes` that the
            // caller owns; MADV_HUGEPAGE changes no contents, only the backing.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = ptr;
}

#[cfg(test)]
mod tests {
    use super::*;

    use mixprec_dtype::{Bf16, Dtype, E4M3, F32};

    #[test]
    fn workspace_counts_packing_buffers() {
        use crate::Tensor;
        let a = Tensor::<F32>::ones(&[256, 256]);
        a.matmul(&a).unwrap(); // above the small-GEMM path: packs both operands
        // At least this thread's packed A and B panels (256 x 256 f32 each, padded).
        assert!(
            workspace_bytes() >= 2 * 256 * 256 * 4,
            "{}",
            workspace_bytes()
        );
        // Freeing drops this thread's buffers (the total is not compared: tests on other
        // threads run GEMMs and recycle buffers concurrently).
        release_workspace();
        assert!(crate::cpu::gemm::packing_is_empty());
    }

    #[test]
    fn parallel_tasks_report_their_first_allocation_error() {
        let failed = FirstError::new();
        assert_eq!(failed.keep(Ok::<_, crate::Error>(3)), Some(3));
        // Two tasks fail: the op returns the first error, and nothing aborts.
        let huge = |op| try_zeros_of::<f32>(op, &[1 << 60], 1 << 60);
        crate::cpu::pool::par_pieces(&mut [0u8; 2], 1, 1, |off, _| {
            assert!(
                failed
                    .keep(huge(if off == 0 { "first" } else { "second" }))
                    .is_none()
            );
        });
        let e = failed.into_result().unwrap_err();
        assert!(e.to_string().contains("cannot allocate"), "{e}");
        assert!(FirstError::new().into_result().is_ok());
    }

    #[test]
    fn recycled_buffers_come_back_with_their_size() {
        let n = 100_003; // an unusual length, so other tests do not take it
        let mut v = zeroed::<F32>(n);
        v[5] = F32(7.0);
        let ptr = v.as_ptr();
        recycle(v);
        let w = try_scratch::<F32>("test", &[n], n).unwrap();
        assert_eq!(w.len(), n);
        assert_eq!(w.as_ptr(), ptr, "the same allocation is reused");
        assert_eq!(
            try_scratch::<F32>("test", &[n], n).unwrap().len(),
            n,
            "and a fresh one when the pool is empty"
        );
        assert_eq!(try_scratch_f32("test", &[3], 3).unwrap(), vec![0.0; 3]);
    }

    #[test]
    fn zeroed_buffers_are_zero_of_every_size() {
        let big = zeroed::<F32>(3 << 20);
        assert!(big.iter().all(|x| x.0 == 0.0));
        assert!(
            zeroed::<Bf16>(5)
                .iter()
                .all(|x| x.to_f32() == 0.0 && !x.is_sign_negative())
        );
        assert!(zeroed::<E4M3>(0).is_empty());
        assert_eq!(zeroed_acc::<Bf16>(3), vec![0.0f32; 3]);
        let mut v = zeroed::<F32>(10);
        v.push(F32(1.0)); // a real Vec: grows and frees normally
        assert_eq!(v.len(), 11);
    }
}
