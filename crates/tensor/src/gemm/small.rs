//! Direct product for small matrices (attention's per-head GEMMs, tiny layers): packing
//! and the blocked machinery cost more than the arithmetic there. A and B are read into
//! f32 row-major scratch (any precision and strides), then `c[i, :] += a[i, p] * b[p, :]`
//! in `p` order — f32 products and sums, as in the blocked path.

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
    OPERANDS.with(|buf| {
        let (af, bf) = &mut *buf.borrow_mut();
        to_f32_rows(a, m, k, af);
        to_f32_rows(b, k, n, bf);
        for (i, crow) in c.chunks_exact_mut(n).enumerate().take(m) {
            crow.fill(0.0);
            for (p, brow) in bf.chunks_exact(n).enumerate() {
                let av = af[i * k + p];
                for (cv, &bv) in crow.iter_mut().zip(brow) {
                    *cv += av * bv;
                }
            }
        }
    })
}

thread_local! {
    /// The f32 copies of A and B, reused across calls on this thread (attention runs
    /// hundreds of these products per layer).
    static OPERANDS: std::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// The `rows x cols` matrix as f32, row-major, into `out`.
fn to_f32_rows<T: Dtype>(x: MatRef<'_, T>, rows: usize, cols: usize, out: &mut Vec<f32>) {
    out.clear();
    for r in 0..rows {
        let base = x.offset + r * x.rs;
        if x.cs == 1 {
            out.extend(x.data[base..base + cols].iter().map(|v| v.to_f32()));
        } else {
            out.extend((0..cols).map(|q| x.data[base + q * x.cs].to_f32()));
        }
    }
}
