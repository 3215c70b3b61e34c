//! Buffers for op results. A large buffer is asked to be backed by transparent huge
//! pages before it is first touched (Linux `madvise(MADV_HUGEPAGE)`, as numpy does for
//! arrays of 4 MiB and more): a fresh 64 MiB result otherwise costs 16384 page faults,
//! which took longer than the arithmetic of a memory-bound op (measured: an f32 add of
//! 16M elements spent most of its 53 ms in faults; see docs/tensor.md).

/// Buffers at least this large get the huge-page hint.
const HUGE_MIN_BYTES: usize = 4 << 20;

/// A vector of `n` copies of `value`, with the huge-page hint for large sizes.
pub(crate) fn filled_vec<T: Copy>(n: usize, value: T) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(n);
    advise_huge(v.as_mut_ptr().cast::<u8>(), n * std::mem::size_of::<T>());
    v.resize(n, value);
    v
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

    #[test]
    fn large_and_small_buffers_hold_the_value() {
        let big = filled_vec(3 << 20, 7u32);
        assert!(big.iter().all(|&x| x == 7));
        assert_eq!(filled_vec(3, 1.5f32), vec![1.5; 3]);
        assert!(filled_vec::<u8>(0, 0).is_empty());
    }
}
