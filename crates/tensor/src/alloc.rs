//! Buffers for op results. A large buffer is asked to be backed by transparent huge
//! pages before it is first touched (Linux `madvise(MADV_HUGEPAGE)`, as numpy does for
//! arrays of 4 MiB and more): a fresh 64 MiB result otherwise costs 16384 page faults,
//! which took longer than the arithmetic of a memory-bound op (measured: an f32 add of
//! 16M elements spent most of its 53 ms in faults; see docs/tensor.md).

/// Buffers at least this large get the huge-page hint.
const HUGE_MIN_BYTES: usize = 4 << 20;

/// Element types whose all-zero bit pattern is a valid value (zero).
///
/// # Safety
/// Implement only for types for which every zero-filled byte pattern is a valid value.
pub(crate) unsafe trait ZeroBits: Copy {}
// SAFETY: IEEE zero is all bits zero; every precision type is a repr(transparent) wrapper
// of a float or integer whose every bit pattern is valid.
unsafe impl ZeroBits for f32 {}
// SAFETY: as above.
unsafe impl ZeroBits for f64 {}
// SAFETY: as above (repr(transparent) over f32/f64/half/u8, any bits valid).
unsafe impl ZeroBits for mixprec_dtype::F32 {}
// SAFETY: as above.
unsafe impl ZeroBits for mixprec_dtype::F64 {}
// SAFETY: as above.
unsafe impl ZeroBits for mixprec_dtype::Bf16 {}
// SAFETY: as above.
unsafe impl ZeroBits for mixprec_dtype::F16 {}
// SAFETY: as above.
unsafe impl ZeroBits for mixprec_dtype::E4M3 {}
// SAFETY: as above.
unsafe impl ZeroBits for mixprec_dtype::E5M2 {}

/// `n` zeros of a type that may be zero-filled, from the allocator's zeroed memory
/// (fresh large allocations come zeroed from the kernel: no fill pass), with the
/// huge-page hint for large sizes.
pub(crate) fn zeroed_vec<T: ZeroBits>(n: usize) -> Vec<T> {
    if n == 0 || std::mem::size_of::<T>() == 0 {
        return Vec::new();
    }
    let layout = std::alloc::Layout::array::<T>(n).expect("allocation size overflows");
    // SAFETY: the layout has non-zero size (checked above).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    advise_huge(ptr.cast::<u8>(), layout.size());
    // SAFETY: allocated by the global allocator with exactly `Layout::array::<T>(n)`, the
    // layout `Vec<T>` uses for capacity `n`; zero bytes are valid `T`s (ZeroBits).
    unsafe { Vec::from_raw_parts(ptr, n, n) }
}

/// `n` zeros of a precision type `D` (all of which are zero-fillable).
pub(crate) fn zeroed<D: mixprec_dtype::Dtype>(n: usize) -> Vec<D> {
    dispatch_zeroed::<D>(n)
}

/// `n` zeros of `D`'s compute precision (f32 or f64).
pub(crate) fn zeroed_acc<D: mixprec_dtype::Dtype>(n: usize) -> Vec<D::Acc> {
    dispatch_zeroed::<D::Acc>(n)
}

/// Zeroed vector for a type known (by the sealed `Dtype`/`Acc` pairing) to be one of the
/// `ZeroBits` types; checked at run time through `TypeId`, falling back to a fill.
fn dispatch_zeroed<T: Copy + 'static>(n: usize) -> Vec<T> {
    use std::any::TypeId;
    macro_rules! try_types {
        ($($t:ty),*) => {$(
            if TypeId::of::<T>() == TypeId::of::<$t>() {
                let v: Vec<$t> = zeroed_vec::<$t>(n);
                let boxed: Box<dyn std::any::Any> = Box::new(v);
                return *boxed.downcast::<Vec<T>>().expect("same type");
            }
        )*};
    }
    try_types!(
        f32,
        f64,
        mixprec_dtype::F32,
        mixprec_dtype::F64,
        mixprec_dtype::Bf16,
        mixprec_dtype::F16,
        mixprec_dtype::E4M3,
        mixprec_dtype::E5M2
    );
    unreachable!("every Dtype and its Acc are zero-fillable types")
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
