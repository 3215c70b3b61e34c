//! The 6 x 16 micro-kernel: `tile = A_panel * B_panel` over `kc`, f32 accumulation.
//! AVX2+FMA where the CPU has it (12 accumulator registers, two B loads and six A
//! broadcasts per k), a portable loop of the same shape elsewhere.

use super::{MR, NR};

/// `tile (MR x NR, row-major) = sum_p a[p*MR + r] * b[p*NR + q]`.
#[cfg(test)]
pub(super) fn tile(kc: usize, a: &[f32], b: &[f32], tile: &mut [f32; MR * NR]) {
    // SAFETY: the tile is MR x NR with row stride NR.
    unsafe { full_tile(kc, a, b, tile.as_mut_ptr(), NR, false) }
}

/// `C[r][q] (+)= sum_p a[p*MR + r] * b[p*NR + q]` for a whole MR x NR tile of C at `c`
/// with row stride `ldc`; adds to C when `accumulate`, overwrites it otherwise.
///
/// # Safety
/// `c` must be valid for reads and writes of MR rows of NR floats at stride `ldc`.
pub(super) unsafe fn full_tile(
    kc: usize,
    a: &[f32],
    b: &[f32],
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    assert!(
        a.len() >= kc * MR && b.len() >= kc * NR,
        "micro-kernel panels too short"
    );
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked), the panel lengths were checked, and
        // the caller guarantees the C tile.
        unsafe { tile_avx2(kc, a.as_ptr(), b.as_ptr(), c, ldc, accumulate) };
        return;
    }
    let mut t = [0.0f32; MR * NR];
    tile_portable(kc, a, b, &mut t);
    for r in 0..MR {
        for q in 0..NR {
            // SAFETY: inside the tile the caller guarantees.
            unsafe {
                let p = c.add(r * ldc + q);
                *p = if accumulate {
                    *p + t[r * NR + q]
                } else {
                    t[r * NR + q]
                };
            }
        }
    }
}

/// True when the AVX2+FMA micro-kernel may run (cached by std after the first query).
#[cfg(target_arch = "x86_64")]
pub(super) fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

pub(super) fn tile_portable(kc: usize, a: &[f32], b: &[f32], tile: &mut [f32; MR * NR]) {
    let mut acc = [[0.0f32; NR]; MR];
    for p in 0..kc {
        let bp = &b[p * NR..p * NR + NR];
        for (r, row) in acc.iter_mut().enumerate() {
            let av = a[p * MR + r];
            for (c, &bv) in row.iter_mut().zip(bp) {
                *c += av * bv;
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        tile[r * NR..r * NR + NR].copy_from_slice(row);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    // Start fetching the C tile now: it is usually not cached (C is touched once per
    // KC block), and the loads at the end would otherwise stall for DRAM latency.
    for r in 0..MR {
        // SAFETY: prefetching is a hint; the addresses are inside the caller's tile.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(c.add(r * ldc).cast::<i8>());
            _mm_prefetch::<_MM_HINT_T0>(c.add(r * ldc + NR - 1).cast::<i8>());
        }
    }
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    for p in 0..kc {
        // SAFETY: p < kc and the caller checked a has kc*MR and b has kc*NR elements.
        unsafe {
            let b0 = _mm256_loadu_ps(b.add(p * NR));
            let b1 = _mm256_loadu_ps(b.add(p * NR + 8));
            let ap = a.add(p * MR);
            for (r, cr) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*ap.add(r));
                cr[0] = _mm256_fmadd_ps(av, b0, cr[0]);
                cr[1] = _mm256_fmadd_ps(av, b1, cr[1]);
            }
        }
    }
    for (r, cr) in acc.iter().enumerate() {
        // SAFETY: the caller guarantees MR rows of NR floats at stride ldc.
        unsafe {
            let row = c.add(r * ldc);
            let (mut v0, mut v1) = (cr[0], cr[1]);
            if accumulate {
                v0 = _mm256_add_ps(v0, _mm256_loadu_ps(row));
                v1 = _mm256_add_ps(v1, _mm256_loadu_ps(row.add(8)));
            }
            _mm256_storeu_ps(row, v0);
            _mm256_storeu_ps(row.add(8), v1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simd_and_portable_agree_bitwise() {
        let kc = 37;
        let a: Vec<f32> = (0..kc * MR)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 8.0)
            .collect();
        let b: Vec<f32> = (0..kc * NR)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 4.0)
            .collect();
        let mut t1 = [0.0; MR * NR];
        let mut t2 = [0.0; MR * NR];
        tile(kc, &a, &b, &mut t1);
        tile_portable(kc, &a, &b, &mut t2);
        // Exact: small dyadic values, sums far below 2^24 ulps.
        assert_eq!(t1, t2);
    }
}
