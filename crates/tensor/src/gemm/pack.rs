//! Packing: copy a block of A into `mr`-row panels and a block of B into `nr`-column
//! panels, k-major and zero-padded, converting to f32 on the way. Contiguous runs go
//! through the SIMD slice conversion straight into the panel where the layout allows;
//! other strides gather element by element.

use super::MatRef;
use mixprec_dtype::{Dtype, convert_slice_to_f32};
use rayon::prelude::*;

/// `out.len()` elements starting at `start` with `stride`, as f32.
#[inline]
fn read_run<T: Dtype>(data: &[T], start: usize, stride: usize, out: &mut [f32]) {
    if stride == 1 {
        convert_slice_to_f32(&data[start..start + out.len()], out).expect("equal lengths");
    } else {
        for (q, o) in out.iter_mut().enumerate() {
            *o = data[start + q * stride].to_f32();
        }
    }
}

/// Makes `out` exactly `len` long without clearing what it held (every element is
/// overwritten by the packing, padding included).
fn sized(out: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if out.len() < len {
        out.resize(len, 0.0);
    }
    &mut out[..len]
}

/// Packs rows `i0..i0 + mc`, columns `p0..p0 + kc` of A: panel `r` holds rows
/// `i0 + r*mr ..` as `kc` groups of `mr` values (missing rows are zero).
#[allow(clippy::too_many_arguments)]
pub(super) fn pack_a<T: Dtype>(
    a: MatRef<'_, T>,
    i0: usize,
    mc: usize,
    p0: usize,
    kc: usize,
    mr: usize,
    out: &mut Vec<f32>,
    parallel: bool,
) {
    let panels = mc.div_ceil(mr);
    let out = sized(out, panels * mr * kc);
    let job = |(panel, dst): (usize, &mut [f32])| {
        let rows = mr.min(mc - panel * mr);
        let base_row = i0 + panel * mr;
        if a.cs != 1 && a.rs == 1 {
            // Column-major A (a transposed view): the mr values of one k are contiguous.
            for p in 0..kc {
                let group = &mut dst[p * mr..(p + 1) * mr];
                read_run(
                    a.data,
                    a.offset + base_row + (p0 + p) * a.cs,
                    1,
                    &mut group[..rows],
                );
                group[rows..].fill(0.0);
            }
        } else {
            let mut run = vec![0.0f32; kc];
            for r in 0..mr {
                if r < rows {
                    read_run(
                        a.data,
                        a.offset + (base_row + r) * a.rs + p0 * a.cs,
                        a.cs,
                        &mut run,
                    );
                } else {
                    run.fill(0.0);
                }
                for (p, &v) in run.iter().enumerate() {
                    dst[p * mr + r] = v;
                }
            }
        }
    };
    if parallel {
        out.par_chunks_mut(mr * kc).enumerate().for_each(job);
    } else {
        out.chunks_mut(mr * kc).enumerate().for_each(job);
    }
}

/// Packs rows `p0..p0 + kc`, columns `j0..j0 + nc` of B: panel `q` holds columns
/// `j0 + q*nr ..` as `kc` groups of `nr` values (missing columns are zero).
#[allow(clippy::too_many_arguments)]
pub(super) fn pack_b<T: Dtype>(
    b: MatRef<'_, T>,
    p0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    nr: usize,
    out: &mut Vec<f32>,
    parallel: bool,
) {
    let panels = nc.div_ceil(nr);
    let out = sized(out, panels * nr * kc);
    let job = |(panel, dst): (usize, &mut [f32])| {
        let cols = nr.min(nc - panel * nr);
        let base_col = j0 + panel * nr;
        if b.rs != 1 && b.cs == 1 || b.rs == 0 {
            // Row-major B: the nr values of one k are contiguous; convert in place.
            for p in 0..kc {
                let group = &mut dst[p * nr..(p + 1) * nr];
                read_run(
                    b.data,
                    b.offset + (p0 + p) * b.rs + base_col,
                    1,
                    &mut group[..cols],
                );
                group[cols..].fill(0.0);
            }
        } else {
            let mut run = vec![0.0f32; kc];
            for q in 0..nr {
                if q < cols {
                    read_run(
                        b.data,
                        b.offset + p0 * b.rs + (base_col + q) * b.cs,
                        b.rs,
                        &mut run,
                    );
                } else {
                    run.fill(0.0);
                }
                for (p, &v) in run.iter().enumerate() {
                    dst[p * nr + q] = v;
                }
            }
        }
    };
    if parallel {
        out.par_chunks_mut(nr * kc).enumerate().for_each(job);
    } else {
        out.chunks_mut(nr * kc).enumerate().for_each(job);
    }
}
