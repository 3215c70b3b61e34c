//! The CPU GEMM behind `matmul`, `linear` and `conv2d`: `C = A * B` with `A` (m x k) and
//! `B` (k x n) in any precision and any strides, `C` (m x n) row-major f32.
//!
//! BLIS structure: B is packed into `KC x NR` panels and A into `MR x KC` panels, converting
//! to f32 *while packing* (SIMD slice conversions, so BF16/F16/FP8 operands cost no separate
//! pass), and a register-tiled micro-kernel runs over the panels: 12 x 32 with AVX-512
//! (24 accumulator registers), 6 x 16 with AVX2+FMA (12), or a portable loop, picked at
//! run time ([`Kernel::best`]; `MIXPREC_GEMM_KERNEL=avx2|avx512|portable` overrides it).
//! Work is cut into (row block, column group) tasks that the pool's threads claim dynamically. Accumulation is f32
//! throughout, as on tensor cores. F64 has its own simpler f64 kernel.

mod f64_kernel;
mod kernel;
mod pack;
mod small;

pub(crate) use f64_kernel::gemm_f64;

use crate::cpu::pool::{Chunks, Pool, TASKS_PER_THREAD};
pub(crate) use kernel::{ARows, Kernel};
use mixprec_dtype::Dtype;
use pack::{pack_a_panel, pack_b_panel};
pub(crate) use small::{SMALL_MACS, gemm_small};

/// Columns per block of B (KC x 2048 f32 = 1-2 MiB: L2/L3).
const NC: usize = 2048;

/// The largest packed B block (bytes) for which a row-major f32 A is read in place
/// (measured on an Ice Lake-SP with 1.25 MiB L2 per core, two threads: in place wins
/// up to 256 KiB blocks, e.g. 2048x64x1024 at 195-239 vs 217 GFLOP/s packed, and loses
/// from 512 KiB, e.g. 512^3 at 176-195 vs 227, 1024^3 at 187 vs 217-220).
const DIRECT_A_MAX_B_BLOCK: usize = 256 << 10;

/// A read-only strided matrix view: element (i, j) is `data[offset + i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a, T> {
    pub data: &'a [T],
    pub offset: usize,
    pub rs: usize,
    pub cs: usize,
}

/// Raw pointer to C shared by tasks that write disjoint tiles.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: tasks write disjoint regions of C (distinct row blocks or column groups) and
// the pointer outlives the parallel section (it borrows the caller's slice).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// `c = a * b` (overwriting `c`, row-major m x n), f32 accumulation, with the best
/// micro-kernel for this CPU (the direct path for small shapes).
pub(crate) fn gemm_f32<TA: Dtype, TB: Dtype>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, TA>,
    b: MatRef<'_, TB>,
    c: &mut [f32],
) {
    if m * n * k < SMALL_MACS {
        return gemm_small(m, n, k, a, b, c);
    }
    gemm_f32_with(Kernel::best(), m, n, k, a, b, c)
}

/// [`gemm_f32`] with a chosen micro-kernel.
pub(crate) fn gemm_f32_with<TA: Dtype, TB: Dtype>(
    kern: Kernel,
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, TA>,
    b: MatRef<'_, TB>,
    c: &mut [f32],
) {
    let (mr, nr) = (kern.mr, kern.nr);
    assert_eq!(c.len(), m * n, "gemm: C has the wrong size");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.fill(0.0);
        return;
    }
    let pool = Pool::global();
    let threads = pool.parts();
    // Below ~0.5M multiply-adds the second core does not pay for itself even with the
    // spinning pool.
    let parallel = threads > 1 && m * n * k >= 1 << 19;
    let parts = if parallel { threads } else { 1 };
    // Tasks are claimed dynamically (a stalled thread's share is taken by the others), so
    // each section is cut into a few tasks per thread.
    let slots = if parallel {
        parts * TASKS_PER_THREAD
    } else {
        1
    };
    // Split the work into row blocks (each a multiple of mr rows and at most mc_max;
    // as many as there are threads, or a multiple) and, when that balances worse (few
    // rows), column panels.
    let by_rows = m.div_ceil(kern.mc_max).div_ceil(parts) * parts;
    let rows_per_part = m.div_ceil(by_rows).div_ceil(mr) * mr * by_rows.div_ceil(parts);
    let cols_per_part = NC.min(n).div_ceil(nr).div_ceil(parts) * nr;
    let split_rows = rows_per_part * n.div_ceil(nr) * nr <= m.div_ceil(mr) * mr * cols_per_part;
    let n_blocks = if split_rows {
        by_rows
    } else {
        m.div_ceil(kern.mc_max)
    };
    let mc_block = m.div_ceil(n_blocks).div_ceil(mr) * mr;
    let n_blocks = m.div_ceil(mc_block);
    let c_ptr = SendPtr(c.as_mut_ptr());
    // A row-major f32 A is read in place when the packed B block is small enough to
    // stay cached while every 12-row strip of A streams it (narrow outputs, small K);
    // otherwise packing A into panels costs less than streaming a large B block once per
    // strip from L3.
    let b_block_bytes = kern.kc.min(k) * NC.min(n) * 4;
    let direct_a = as_f32_matrix(a).filter(|d| d.cs == 1 && b_block_bytes <= DIRECT_A_MAX_B_BLOCK);
    // Packing buffers are reused across calls on this thread (fresh multi-megabyte
    // allocations cost a page fault per 4 KiB on first touch).
    let (mut packed_a, mut packed_b) = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    let held = 4 * (packed_a.capacity() + packed_b.capacity());
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        let n_panels = nc.div_ceil(nr);
        // Column groups: enough that every thread has a few tasks; a task keeps its A
        // block in L2 while it streams its group's B panels.
        let groups = slots.div_ceil(n_blocks).clamp(1, n_panels);
        let per_group = n_panels.div_ceil(groups);
        let groups = n_panels.div_ceil(per_group);
        for pc in (0..k).step_by(kern.kc) {
            let kc = kern.kc.min(k - pc);
            let block = Block {
                kc,
                jc,
                nc,
                ldc: n,
                accumulate: pc > 0,
            };
            // A row-major f32 A is read in place by the tiles (no packing pass); others
            // are packed (and converted) panel by panel.
            let a_panels = if direct_a.is_some() {
                0
            } else {
                m.div_ceil(mr)
            };
            // One section packs A and B, the next computes: two synchronisations per block.
            grow(&mut packed_a, a_panels * mr * kc);
            grow(&mut packed_b, n_panels * nr * kc);
            let a_run = a_panels.div_ceil(slots).max(1);
            let b_run = n_panels.div_ceil(slots).max(1);
            let pa = Chunks::new(&mut packed_a[..a_panels * mr * kc], a_run * mr * kc);
            let pb = Chunks::new(&mut packed_b[..n_panels * nr * kc], b_run * nr * kc);
            let (ta, tb) = (pa.count(), pb.count());
            let pack = |t: usize| {
                if t < ta {
                    // SAFETY: the pool runs each task index once, so each piece is taken once.
                    let (off, dst) = unsafe { pa.piece(t) };
                    for (q, d) in dst.chunks_mut(mr * kc).enumerate() {
                        pack_a_panel(a, 0, m, pc, kc, mr, off / (mr * kc) + q, d);
                    }
                } else {
                    // SAFETY: as above (task indices ta.. map one-to-one onto B's pieces).
                    let (off, dst) = unsafe { pb.piece(t - ta) };
                    for (q, d) in dst.chunks_mut(nr * kc).enumerate() {
                        pack_b_panel(b, pc, kc, jc, nc, nr, off / (nr * kc) + q, d);
                    }
                }
            };
            pool_or_here(parallel, ta + tb, &pack);
            let pb = &packed_b[..n_panels * nr * kc];
            let source = match direct_a {
                Some(d) => ASource::Direct {
                    data: d.data,
                    offset: d.offset + pc * d.cs,
                    rs: d.rs,
                    cs: d.cs,
                },
                None => ASource::Packed(&packed_a[..a_panels * mr * kc]),
            };
            let work = |t: usize| {
                let (ib, g) = (t / groups, t % groups);
                let i0 = ib * mc_block;
                let rows = i0..i0 + mc_block.min(m - i0);
                let panels = (g * per_group).min(n_panels)..((g + 1) * per_group).min(n_panels);
                macro_kernel(kern, source, pb, rows, panels, &block, c_ptr);
            };
            pool_or_here(parallel, n_blocks * groups, &work);
        }
    }
    // The buffers were counted at their size when taken; count the growth.
    let after = 4 * (packed_a.capacity() + packed_b.capacity());
    if after != held {
        use std::sync::atomic::Ordering::Relaxed;
        crate::cpu::alloc::PACKING_BYTES.fetch_add(after, Relaxed);
        crate::cpu::alloc::PACKING_BYTES.fetch_sub(held, Relaxed);
    }
    SCRATCH.with(|s| *s.borrow_mut() = (packed_a, packed_b));
}

/// Grows `buf` to at least `len` floats.
fn grow(buf: &mut Vec<f32>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
}

/// Runs `tasks` tasks on the pool when `parallel`, else in order on this thread.
fn pool_or_here(parallel: bool, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
    if parallel {
        Pool::global().run(tasks, f);
    } else {
        (0..tasks).for_each(f);
    }
}

/// True when this thread holds no packing buffers.
#[cfg(test)]
pub(crate) fn packing_is_empty() -> bool {
    SCRATCH.with(|s| {
        let s = s.borrow();
        s.0.capacity() == 0 && s.1.capacity() == 0
    })
}

/// Drops this thread's packing buffers (see `release_workspace`).
pub(crate) fn release_packing() {
    let (a, b) = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    crate::cpu::alloc::PACKING_BYTES.fetch_sub(
        4 * (a.capacity() + b.capacity()),
        std::sync::atomic::Ordering::Relaxed,
    );
}

thread_local! {
    /// Packed A and B buffers of the last GEMM on this thread.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// One packed block: depth, column range and how it lands in C.
struct Block {
    kc: usize,
    jc: usize,
    nc: usize,
    ldc: usize,
    accumulate: bool,
}

/// The A operand of one block for the tiles.
#[derive(Clone, Copy)]
enum ASource<'a> {
    /// Packed panels, `mr x kc` each.
    Packed(&'a [f32]),
    /// An f32 matrix read in place: row `i`, column `p` of the block at
    /// `data[offset + i * rs + p * cs]`.
    Direct {
        data: &'a [f32],
        offset: usize,
        rs: usize,
        cs: usize,
    },
}

/// `a` as an f32 matrix, when its element type is `F32`.
fn as_f32_matrix<T: Dtype>(a: MatRef<'_, T>) -> Option<MatRef<'_, f32>> {
    crate::cpu::simd::f32_view(a.data).map(|data| MatRef {
        data,
        offset: a.offset,
        rs: a.rs,
        cs: a.cs,
    })
}

/// Runs the micro-kernel over `rows` (a row block starting on a panel boundary) and the
/// given column panels of one packed block, writing (or adding to) C.
fn macro_kernel(
    kern: Kernel,
    a: ASource<'_>,
    packed_b: &[f32],
    rows: std::ops::Range<usize>,
    panels: std::ops::Range<usize>,
    blk: &Block,
    c: SendPtr,
) {
    let (mr_full, nr_full, kc) = (kern.mr, kern.nr, blk.kc);
    let mut tile = vec![0.0f32; mr_full * nr_full];
    // A short last row panel of an in-place A is packed (zero rows past the end).
    let mut edge = Vec::new();
    let mut run_tile = |row: usize, jp: usize, a_rows: ARows<'_>| {
        let j = jp * nr_full;
        let (mr, nr) = (mr_full.min(rows.end - row), nr_full.min(blk.nc - j));
        let b_panel = &packed_b[jp * nr_full * kc..(jp + 1) * nr_full * kc];
        // SAFETY (both branches): rows row..row+mr and columns jc+j..jc+j+nr of C lie
        // inside the m x n buffer, no other task writes this tile (see SendPtr), and the
        // operands hold kc groups of mr_full / nr_full values (checked by `run`).
        unsafe {
            let dst = c.0.add(row * blk.ldc + blk.jc + j);
            if mr == mr_full && nr == nr_full {
                kern.run(kc, a_rows, b_panel, dst, blk.ldc, blk.accumulate);
                return;
            }
            kern.run(kc, a_rows, b_panel, tile.as_mut_ptr(), nr_full, false);
            for r in 0..mr {
                for q in 0..nr {
                    let p = dst.add(r * blk.ldc + q);
                    let v = tile[r * nr_full + q];
                    *p = if blk.accumulate { *p + v } else { v };
                }
            }
        }
    };
    match a {
        // Packed A streams from L2 panel after panel while one B panel stays in L1.
        ASource::Packed(p) => {
            for jp in panels {
                for row in rows.clone().step_by(mr_full) {
                    let panel = &p[(row / mr_full) * mr_full * kc..][..mr_full * kc];
                    run_tile(row, jp, kern.packed(panel));
                }
            }
        }
        // In-place A rows are strided: keep `mr` of them in L1 and stream the
        // (contiguous) packed B panels instead.
        ASource::Direct {
            data,
            offset,
            rs,
            cs,
        } => {
            for row in rows.clone().step_by(mr_full) {
                let mr = mr_full.min(rows.end - row);
                let a_rows = if mr == mr_full {
                    ARows {
                        data: &data[offset + row * rs..],
                        rs,
                        cs,
                    }
                } else {
                    edge.clear();
                    edge.extend((0..kc).flat_map(|p| {
                        (0..mr_full).map(move |r| match r < mr {
                            true => data[offset + (row + r) * rs + p * cs],
                            false => 0.0,
                        })
                    }));
                    kern.packed(&edge)
                };
                for jp in panels.clone() {
                    run_tile(row, jp, a_rows);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::{Bf16, F32};
    use mixprec_testing::TestRng;

    fn naive(m: usize, n: usize, k: usize, a: &[f64], b: &[f64]) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn odd_sizes_and_strides_match_naive() {
        let mut rng = TestRng::new(5);
        for &(m, n, k) in &[
            (1, 1, 1),
            (7, 17, 5),
            (13, 33, 300),
            (200, 40, 70),
            (6, 16, 256),
            (5, 2100, 3),
            // A packed B block over DIRECT_A_MAX_B_BLOCK: a row-major f32 A is packed.
            (20, 600, 300),
        ] {
            let a: Vec<f64> = rng
                .vec(m * k, -1.0, 1.0)
                .iter()
                .map(|v| (v * 64.0).round() / 64.0)
                .collect();
            let b: Vec<f64> = rng
                .vec(k * n, -1.0, 1.0)
                .iter()
                .map(|v| (v * 64.0).round() / 64.0)
                .collect();
            let af: Vec<F32> = a.iter().map(|&v| F32(v as f32)).collect();
            // B given transposed in memory (column-major view).
            let mut bt = vec![F32(0.0); k * n];
            for p in 0..k {
                for j in 0..n {
                    bt[j * k + p] = F32(b[p * n + j] as f32);
                }
            }
            for kern in Kernel::available() {
                let mut c = vec![0.0f32; m * n];
                gemm_f32_with(
                    kern,
                    m,
                    n,
                    k,
                    MatRef {
                        data: &af,
                        offset: 0,
                        rs: k,
                        cs: 1,
                    },
                    MatRef {
                        data: &bt,
                        offset: 0,
                        rs: 1,
                        cs: k,
                    },
                    &mut c,
                );
                let want = naive(m, n, k, &a, &b);
                for (i, (&g, &w)) in c.iter().zip(&want).enumerate() {
                    // Products of 6-bit fractions are exact; f32 sums of k of them err by at
                    // most k * 2^-24 relative to the sum of magnitudes (at most k).
                    assert!(
                        (f64::from(g) - w).abs() <= k as f64 * k as f64 * 2f64.powi(-24),
                        "{m}x{n}x{k} element {i}: {g} vs {w}"
                    );
                }
            }
            // Bf16 operands (exact for these values) give the same bits as F32 ones.
            let ab: Vec<Bf16> = a.iter().map(|&v| Bf16::from_f64(v)).collect();
            let bb: Vec<Bf16> = b.iter().map(|&v| Bf16::from_f64(v)).collect();
            let mut cb = vec![0.0f32; m * n];
            gemm_f32(
                m,
                n,
                k,
                MatRef {
                    data: &ab,
                    offset: 0,
                    rs: k,
                    cs: 1,
                },
                MatRef {
                    data: &bb,
                    offset: 0,
                    rs: n,
                    cs: 1,
                },
                &mut cb,
            );
            let mut cf = vec![0.0f32; m * n];
            let bf: Vec<F32> = b.iter().map(|&v| F32(v as f32)).collect();
            gemm_f32(
                m,
                n,
                k,
                MatRef {
                    data: &af,
                    offset: 0,
                    rs: k,
                    cs: 1,
                },
                MatRef {
                    data: &bf,
                    offset: 0,
                    rs: n,
                    cs: 1,
                },
                &mut cf,
            );
            assert_eq!(cb, cf, "{m}x{n}x{k}");
        }
    }
}
