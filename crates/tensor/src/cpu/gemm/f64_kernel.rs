//! The F64 GEMM: f64 accumulation for the reference precision. Rows of C in parallel,
//! an i-p-j loop over a contiguous copy of B so the inner loop vectorises.

use super::MatRef;
use mixprec_dtype::Dtype;

/// `c = a * b` (overwriting `c`, row-major m x n), f64 accumulation.
pub(crate) fn gemm_f64<TA: Dtype, TB: Dtype>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, TA>,
    b: MatRef<'_, TB>,
    c: &mut [f64],
) {
    assert_eq!(c.len(), m * n, "gemm: C has the wrong size");
    let bc: Vec<f64> = (0..k * n)
        .map(|idx| b.data[b.offset + (idx / n) * b.rs + (idx % n) * b.cs].to_f64())
        .collect();
    let row = |(i, out): (usize, &mut [f64])| {
        out.fill(0.0);
        for p in 0..k {
            let av = a.data[a.offset + i * a.rs + p * a.cs].to_f64();
            for (o, &bv) in out.iter_mut().zip(&bc[p * n..(p + 1) * n]) {
                *o += av * bv;
            }
        }
    };
    if n == 0 {
        return;
    }
    let min_len = if m * n * k >= 1 << 18 { 0 } else { usize::MAX };
    crate::cpu::pool::par_pieces(c, n, min_len, |off, piece| {
        for (r, out) in piece.chunks_mut(n).enumerate() {
            row((off / n + r, out));
        }
    });
}
