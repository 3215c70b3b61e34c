//! Direct product for small matrices (attention's per-head GEMMs, tiny layers): packing
//! and the blocked machinery cost more than the arithmetic there. A and B are read into
//! f32 row-major scratch (any precision and strides), then `c[i, :] += a[i, p] * b[p, :]`
//! in `p` order — one f32 fused multiply-add per product, as in the blocked kernels.

use super::MatRef;
use mixprec_dtype::Dtype;

/// Below this many multiply-adds a GEMM takes the direct path.
pub(crate) const SMALL_MACS: usize = 1 << 15;

/// `c = a * b` (c row-major m x n) for small shapes.
pub(crate) fn gemm_small<TA: Dtype, TB: Dtype>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, TA>,
    b: MatRef<'_, TB>,
    c: &mut [f32],
) {
    if m == 0 || n == 0 || k == 0 {
        c.fill(0.0);
        return;
    }
    OPERANDS.with(|buf| {
        let (af, bf) = &mut *buf.borrow_mut();
        to_f32_rows(a, m, k, k, af);
        to_f32_rows(b, k, n, n.next_multiple_of(WIDTH), bf);
        small_kernel(m, n, k, af, bf, c);
    })
}

/// Columns per register block (one AVX-512 register, two AVX2 ones).
const WIDTH: usize = 16;
/// Rows per register block: independent accumulator chains.
const ROWS: usize = 4;

crate::cpu::simd::multiversioned! {
    /// `c = a b` for f32 row-major `a` (m x k) and `b` (k x n, rows padded with zeros to
    /// a multiple of [`WIDTH`]): blocks of [`ROWS`] x [`WIDTH`] accumulated in registers,
    /// one fused multiply-add per product in `p` order (the blocked kernels' rounding
    /// for `k` within one packed block).
    fn small_kernel(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
        let np = n.next_multiple_of(WIDTH);
        for i0 in (0..m).step_by(ROWS) {
            let rows = ROWS.min(m - i0);
            // Rows past the end repeat the last one (computed, not stored).
            let a_rows: [&[f32]; ROWS] =
                std::array::from_fn(|r| &a[(i0 + r.min(rows - 1)) * k..][..k]);
            for j0 in (0..n).step_by(WIDTH) {
                let mut acc = [[0.0f32; WIDTH]; ROWS];
                for p in 0..k {
                    let brow: &[f32; WIDTH] = b[p * np + j0..][..WIDTH]
                        .try_into()
                        .expect("WIDTH columns");
                    for (acc_r, a_r) in acc.iter_mut().zip(&a_rows) {
                        let av = a_r[p];
                        for (x, &bv) in acc_r.iter_mut().zip(brow) {
                            *x = av.mul_add(bv, *x);
                        }
                    }
                }
                let w = WIDTH.min(n - j0);
                for (r, acc_r) in acc.iter().enumerate().take(rows) {
                    c[(i0 + r) * n + j0..][..w].copy_from_slice(&acc_r[..w]);
                }
            }
        }
    }
}

thread_local! {
    /// The f32 copies of A and B, reused across calls on this thread (attention runs
    /// hundreds of these products per layer).
    static OPERANDS: std::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// The `rows x cols` matrix as f32, row-major with rows of `stride >= cols` (the rest
/// zero), into `out`.
fn to_f32_rows<T: Dtype>(
    x: MatRef<'_, T>,
    rows: usize,
    cols: usize,
    stride: usize,
    out: &mut Vec<f32>,
) {
    out.clear();
    out.resize(rows * stride, 0.0);
    for (r, o) in out.chunks_exact_mut(stride).enumerate() {
        let base = x.offset + r * x.rs;
        let o = &mut o[..cols];
        if x.cs == 1 {
            o.iter_mut()
                .zip(&x.data[base..base + cols])
                .for_each(|(o, v)| *o = v.to_f32());
        } else {
            o.iter_mut()
                .enumerate()
                .for_each(|(q, o)| *o = x.data[base + q * x.cs].to_f32());
        }
    }
}
