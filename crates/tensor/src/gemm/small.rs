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
    let af = to_f32_rows(a, m, k);
    let bf = to_f32_rows(b, k, n);
    for (i, crow) in c.chunks_exact_mut(n).enumerate().take(m) {
        crow.fill(0.0);
        for (p, brow) in bf.chunks_exact(n).enumerate() {
            let av = af[i * k + p];
            for (cv, &bv) in crow.iter_mut().zip(brow) {
                *cv += av * bv;
            }
        }
    }
}

/// The `rows x cols` matrix as f32, row-major.
fn to_f32_rows<T: Dtype>(x: MatRef<'_, T>, rows: usize, cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        let base = x.offset + r * x.rs;
        out.extend((0..cols).map(|q| x.data[base + q * x.cs].to_f32()));
    }
    out
}
