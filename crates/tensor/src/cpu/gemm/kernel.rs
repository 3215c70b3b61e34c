//! Micro-kernels: `C[r][q] (+)= sum_p a[r*a_rs + p*a_cs] * b[p*nr + q]` over `mr` rows of A
//! (a packed panel, `a_rs = 1, a_cs = mr`, or an f32 matrix read in place with its own
//! strides) and one packed B panel (`nr` columns), f32 accumulation in registers.
//!
//! | kernel | tile | accumulators | per k |
//! |---|---|---|---|
//! | `avx512` | 12 x 32 | 24 zmm | 2 loads of B, 12 broadcasts, 24 FMAs (768 flops) |
//! | `avx2` | 6 x 16 | 12 ymm | 2 loads of B, 6 broadcasts, 12 FMAs (192 flops) |
//! | `portable` | 6 x 16 | arrays | plain loops, auto-vectorised |

use std::sync::OnceLock;

/// `(kc, a, a_rs, a_cs, b, c, ldc, accumulate)`: see [`Kernel::run`].
type TileFn = unsafe fn(usize, *const f32, usize, usize, *const f32, *mut f32, usize, bool);

/// Where the `mr` rows of A a tile reads come from: element `(r, p)` at
/// `data[r * rs + p * cs]`. A packed panel is `(rs, cs) = (1, mr)`.
#[derive(Clone, Copy)]
pub(crate) struct ARows<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

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
    /// The tile function (depth, A and its strides, packed B, C tile, its row stride,
    /// accumulate).
    tile: TileFn,
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
            if crate::cpu::simd::has_avx2_fma() {
                out.push(Kernel::AVX2);
            }
            if crate::cpu::simd::has_avx512() {
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
        a: ARows<'_>,
        b: &[f32],
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
    ) {
        let a_last = (self.mr - 1) * a.rs + kc.saturating_sub(1) * a.cs;
        assert!(
            kc == 0 || (a.data.len() > a_last && b.len() >= kc * self.nr),
            "micro-kernel operands too short"
        );
        // SAFETY: operand lengths checked above; the C tile is the caller's guarantee;
        // the kernel was only listed if the CPU has its instructions.
        unsafe {
            (self.tile)(
                kc,
                a.data.as_ptr(),
                a.rs,
                a.cs,
                b.as_ptr(),
                c,
                ldc,
                accumulate,
            )
        }
    }

    /// A packed A panel of this kernel (`kc` groups of `mr` values).
    pub fn packed<'a>(&self, panel: &'a [f32]) -> ARows<'a> {
        ARows {
            data: panel,
            rs: 1,
            cs: self.mr,
        }
    }
}

/// Portable 6 x 16 tile: fused multiply-adds in `p` order, then the C tile added once,
/// exactly the arithmetic of the SIMD tiles (without FMA hardware `mul_add` is slower
/// but still correctly rounded).
///
/// # Safety
/// `a` holds element `(r, p)` at `r * a_rs + p * a_cs` for `r < 6, p < kc`, `b` holds
/// `kc * 16` floats; `c` is a valid 6 x 16 tile at stride `ldc`.
#[allow(clippy::too_many_arguments)]
unsafe fn tile_portable(
    kc: usize,
    a: *const f32,
    a_rs: usize,
    a_cs: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    const MR: usize = 6;
    const NR: usize = 16;
    // SAFETY: lengths as documented.
    let b = unsafe { std::slice::from_raw_parts(b, kc * NR) };
    let mut acc = [[0.0f32; NR]; MR];
    for p in 0..kc {
        let bp = &b[p * NR..p * NR + NR];
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: (r, p) inside A as documented.
            let av = unsafe { *a.add(r * a_rs + p * a_cs) };
            for (x, &bv) in row.iter_mut().zip(bp) {
                // One rounding per product and sum, as the AVX2 / AVX-512 tiles' FMA:
                // the same bits on every CPU.
                *x = av.mul_add(bv, *x);
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
#[allow(clippy::too_many_arguments)]
unsafe fn tile_avx2_entry(
    kc: usize,
    a: *const f32,
    a_rs: usize,
    a_cs: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    // SAFETY: listed only when the CPU has the instructions; pointers per `Kernel::run`.
    // A packed panel takes the copy compiled for its constant strides.
    unsafe {
        if (a_rs, a_cs) == (1, 6) {
            tile_avx2::<true>(kc, a, 1, 6, b, c, ldc, accumulate)
        } else {
            tile_avx2::<false>(kc, a, a_rs, a_cs, b, c, ldc, accumulate)
        }
    }
}

/// 6 x 16 tile; `PACKED` fixes A's strides to a packed panel's `(1, 6)`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_avx2<const PACKED: bool>(
    kc: usize,
    a: *const f32,
    a_rs: usize,
    a_cs: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    const MR: usize = 6;
    const NR: usize = 16;
    let (a_rs, a_cs) = if PACKED { (1, MR) } else { (a_rs, a_cs) };
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
        // SAFETY: p < kc; A holds (r, p) at r * a_rs + p * a_cs and B kc*NR floats.
        unsafe {
            let b0 = _mm256_loadu_ps(b.add(p * NR));
            let b1 = _mm256_loadu_ps(b.add(p * NR + 8));
            let ap = a.add(p * a_cs);
            for (r, cr) in acc.iter_mut().enumerate() {
                let av = _mm256_set1_ps(*ap.add(r * a_rs));
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
#[allow(clippy::too_many_arguments)]
unsafe fn tile_avx512_entry(
    kc: usize,
    a: *const f32,
    a_rs: usize,
    a_cs: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    // SAFETY: listed only when the CPU has the instructions; pointers per `Kernel::run`.
    // A packed panel takes the copy compiled for its constant strides.
    unsafe {
        if (a_rs, a_cs) == (1, 12) {
            tile_avx512::<true>(kc, a, 1, 12, b, c, ldc, accumulate)
        } else {
            tile_avx512::<false>(kc, a, a_rs, a_cs, b, c, ldc, accumulate)
        }
    }
}

/// 12 x 32 tile; `PACKED` fixes A's strides to a packed panel's `(1, 12)`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_avx512<const PACKED: bool>(
    kc: usize,
    a: *const f32,
    a_rs: usize,
    a_cs: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    const MR: usize = 12;
    const NR: usize = 32;
    let (a_rs, a_cs) = if PACKED { (1, MR) } else { (a_rs, a_cs) };
    // Start fetching the C tile now: it is usually not cached (C is touched once per
    // KC block), and the loads at the end would otherwise stall for DRAM latency.
    for r in 0..MR {
        // SAFETY: prefetching is a hint; the addresses are inside the caller's tile.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(c.add(r * ldc).cast::<i8>());
            _mm_prefetch::<_MM_HINT_T0>(c.add(r * ldc + NR - 1).cast::<i8>());
        }
    }
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    for p in 0..kc {
        // SAFETY: p < kc; A holds (r, p) at r * a_rs + p * a_cs and B kc*NR floats.
        unsafe {
            let b0 = _mm512_loadu_ps(b.add(p * NR));
            let b1 = _mm512_loadu_ps(b.add(p * NR + 16));
            let ap = a.add(p * a_cs);
            for (r, cr) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*ap.add(r * a_rs));
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
            // Non-dyadic values: every product rounds, so a tile that multiplied and
            // added separately (two roundings) would differ from the FMA tiles.
            let a: Vec<f32> = (0..kc * kern.mr)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0 + 0.1)
                .collect();
            let b: Vec<f32> = (0..kc * kern.nr)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) / 3.0 - 0.3)
                .collect();
            let mut got = vec![1.0f32 / 3.0; kern.mr * kern.nr];
            // SAFETY: the tile buffer is mr x nr with row stride nr.
            unsafe { kern.run(kc, kern.packed(&a), &b, got.as_mut_ptr(), kern.nr, true) };
            // The same tile from 6 x 16 portable pieces: bit for bit.
            let mut want = vec![1.0f32 / 3.0; kern.mr * kern.nr];
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
                            reference.packed(&ap),
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
