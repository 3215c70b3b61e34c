//! Micro-kernels: `C[r][q] (+)= sum_p a[p*mr + r] * b[p*nr + q]` over one packed A panel
//! (`mr` rows) and one packed B panel (`nr` columns), f32 accumulation in registers.
//!
//! | kernel | tile | accumulators | per k |
//! |---|---|---|---|
//! | `avx512` | 12 x 32 | 24 zmm | 2 loads of B, 12 broadcasts, 24 FMAs (768 flops) |
//! | `avx2` | 6 x 16 | 12 ymm | 2 loads of B, 6 broadcasts, 12 FMAs (192 flops) |
//! | `portable` | 6 x 16 | arrays | plain loops, auto-vectorised |

use std::sync::OnceLock;

/// A micro-kernel and the blocking that suits it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Kernel {
    /// Name for logs and the `MIXPREC_GEMM_KERNEL` override.
    pub name: &'static str,
    /// Rows of the register tile.
    pub mr: usize,
    /// Columns of the register tile.
    pub nr: usize,
    /// Depth of a packed block (a B micro-panel of kc x nr f32 stays in L1).
    pub kc: usize,
    /// Largest rows per A block (mc_max x kc f32 stays in L2).
    pub mc_max: usize,
    /// The tile function (raw panels, C tile pointer, row stride, accumulate).
    tile: unsafe fn(usize, *const f32, *const f32, *mut f32, usize, bool),
}

impl Kernel {
    const PORTABLE: Kernel = Kernel {
        name: "portable",
        mr: 6,
        nr: 16,
        kc: 256,
        mc_max: 192,
        tile: tile_portable,
    };
    #[cfg(target_arch = "x86_64")]
    const AVX2: Kernel = Kernel {
        name: "avx2",
        mr: 6,
        nr: 16,
        kc: 256,
        mc_max: 192,
        tile: tile_avx2_entry,
    };
    #[cfg(target_arch = "x86_64")]
    const AVX512: Kernel = Kernel {
        name: "avx512",
        mr: 12,
        nr: 32,
        kc: 256,
        mc_max: 192,
        tile: tile_avx512_entry,
    };

    /// Every kernel this CPU can run, fastest last.
    pub fn available() -> Vec<Kernel> {
        let mut out = vec![Kernel::PORTABLE];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                out.push(Kernel::AVX2);
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                out.push(Kernel::AVX512);
            }
        }
        out
    }

    /// The fastest available kernel, or the one `MIXPREC_GEMM_KERNEL` names (if
    /// available). Chosen once per process.
    pub fn best() -> Kernel {
        static BEST: OnceLock<Kernel> = OnceLock::new();
        *BEST.get_or_init(|| {
            let all = Kernel::available();
            let wanted = std::env::var("MIXPREC_GEMM_KERNEL").ok();
            wanted
                .and_then(|w| all.iter().copied().find(|k| k.name == w))
                .unwrap_or(*all.last().expect("the portable kernel is always available"))
        })
    }

    /// Runs the tile over `kc` steps.
    ///
    /// # Safety
    /// `c` must be valid for reads and writes of `mr` rows of `nr` floats at stride `ldc`.
    pub unsafe fn run(
        &self,
        kc: usize,
        a: &[f32],
        b: &[f32],
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
    ) {
        assert!(
            a.len() >= kc * self.mr && b.len() >= kc * self.nr,
            "micro-kernel panels too short"
        );
        // SAFETY: panel lengths checked above; the C tile is the caller's guarantee; the
        // kernel was only listed if the CPU has its instructions.
        unsafe { (self.tile)(kc, a.as_ptr(), b.as_ptr(), c, ldc, accumulate) }
    }
}

/// Portable 6 x 16 tile.
///
/// # Safety
/// `a` holds `kc * 6` and `b` `kc * 16` floats; `c` is a valid 6 x 16 tile at stride `ldc`.
unsafe fn tile_portable(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    const MR: usize = 6;
    const NR: usize = 16;
    // SAFETY: lengths as documented.
    let (a, b) = unsafe {
        (
            std::slice::from_raw_parts(a, kc * MR),
            std::slice::from_raw_parts(b, kc * NR),
        )
    };
    let mut acc = [[0.0f32; NR]; MR];
    for p in 0..kc {
        let bp = &b[p * NR..p * NR + NR];
        for (r, row) in acc.iter_mut().enumerate() {
            let av = a[p * MR + r];
            for (x, &bv) in row.iter_mut().zip(bp) {
                *x += av * bv;
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (q, &v) in row.iter().enumerate() {
            // SAFETY: inside the tile.
            unsafe {
                let p = c.add(r * ldc + q);
                *p = if accumulate { *p + v } else { v };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
unsafe fn tile_avx2_entry(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    // SAFETY: listed only when the CPU has AVX2 and FMA; pointers per `Kernel::run`.
    unsafe { tile_avx2(kc, a, b, c, ldc, accumulate) }
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
    const MR: usize = 6;
    const NR: usize = 16;
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
        // SAFETY: p < kc and the panels hold kc*MR and kc*NR floats.
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

#[cfg(target_arch = "x86_64")]
unsafe fn tile_avx512_entry(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    // SAFETY: listed only when the CPU has AVX-512F; pointers per `Kernel::run`.
    unsafe { tile_avx512(kc, a, b, c, ldc, accumulate) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    const MR: usize = 12;
    const NR: usize = 32;
    for r in 0..MR {
        // SAFETY: prefetching is a hint; the addresses are inside the caller's tile.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(c.add(r * ldc).cast::<i8>());
            _mm_prefetch::<_MM_HINT_T0>(c.add(r * ldc + NR - 1).cast::<i8>());
        }
    }
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    for p in 0..kc {
        // SAFETY: p < kc and the panels hold kc*MR and kc*NR floats.
        unsafe {
            let b0 = _mm512_loadu_ps(b.add(p * NR));
            let b1 = _mm512_loadu_ps(b.add(p * NR + 16));
            let ap = a.add(p * MR);
            for (r, cr) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*ap.add(r));
                cr[0] = _mm512_fmadd_ps(av, b0, cr[0]);
                cr[1] = _mm512_fmadd_ps(av, b1, cr[1]);
            }
        }
    }
    for (r, cr) in acc.iter().enumerate() {
        // SAFETY: the caller guarantees MR rows of NR floats at stride ldc.
        unsafe {
            let row = c.add(r * ldc);
            let (mut v0, mut v1) = (cr[0], cr[1]);
            if accumulate {
                v0 = _mm512_add_ps(v0, _mm512_loadu_ps(row));
                v1 = _mm512_add_ps(v1, _mm512_loadu_ps(row.add(16)));
            }
            _mm512_storeu_ps(row, v0);
            _mm512_storeu_ps(row.add(16), v1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_agrees_with_the_portable_one_bitwise() {
        let reference = Kernel::PORTABLE;
        for kern in Kernel::available() {
            let kc = 37;
            let a: Vec<f32> = (0..kc * kern.mr)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) / 8.0)
                .collect();
            let b: Vec<f32> = (0..kc * kern.nr)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) / 4.0)
                .collect();
            let mut got = vec![1.0f32; kern.mr * kern.nr];
            // SAFETY: the tile buffer is mr x nr with row stride nr.
            unsafe { kern.run(kc, &a, &b, got.as_mut_ptr(), kern.nr, true) };
            // The same tile from 6 x 16 portable pieces (exact: small dyadic values).
            let mut want = vec![1.0f32; kern.mr * kern.nr];
            for r0 in (0..kern.mr).step_by(6) {
                for q0 in (0..kern.nr).step_by(16) {
                    let ap: Vec<f32> = (0..kc)
                        .flat_map(|p| (0..6).map(move |r| (p, r)))
                        .map(|(p, r)| a[p * kern.mr + r0 + r])
                        .collect();
                    let bp: Vec<f32> = (0..kc)
                        .flat_map(|p| (0..16).map(move |q| (p, q)))
                        .map(|(p, q)| b[p * kern.nr + q0 + q])
                        .collect();
                    // SAFETY: the 6 x 16 sub-tile lies inside `want` at stride nr.
                    unsafe {
                        reference.run(
                            kc,
                            &ap,
                            &bp,
                            want.as_mut_ptr().add(r0 * kern.nr + q0),
                            kern.nr,
                            true,
                        )
                    };
                }
            }
            assert_eq!(got, want, "kernel {}", kern.name);
        }
    }
}
