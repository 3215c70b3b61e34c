//! Packing: copy a block of A into `mr`-row panels and a block of B into `nr`-column
//! panels, k-major and zero-padded, converting to f32 on the way. Contiguous runs go
//! through the SIMD slice conversion straight into the panel where the layout allows;
//! other strides gather element by element.

use super::MatRef;
use mixprec_dtype::{Dtype, convert_slice_to_f32};

/// `out.len()` elements starting at `start` with `stride`, as f32.
#[inline]
fn read_run<T: Dtype>(data: &[T], start: usize, stride: usize, out: &mut [f32]) {
    if stride == 1 {
        let src = &data[start..start + out.len()];
        match crate::cpu::simd::f32_view(src) {
            Some(src) => copy_short(src, out),
            // An A panel group (12 values): an inlined loop costs less than the call.
            None if out.len() <= SHORT_RUN => {
                out.iter_mut().zip(src).for_each(|(o, v)| *o = v.to_f32())
            }
            None => convert_slice_to_f32(src, out).expect("equal lengths"),
        }
    } else {
        for (q, o) in out.iter_mut().enumerate() {
            *o = data[start + q * stride].to_f32();
        }
    }
}

/// Runs of at most this many values are converted element by element, inline.
const SHORT_RUN: usize = 16;

/// `dst = src` for the short runs of packing (one k-group of a panel, 6 to 32 values):
/// fixed eight-value copies in registers instead of a `memcpy` call per run, which
/// costs more than the copy at these lengths.
#[inline(always)]
fn copy_short(src: &[f32], dst: &mut [f32]) {
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d, s) in (&mut d).zip(&mut s) {
        let v: [f32; 8] = s.try_into().expect("eight values");
        d.copy_from_slice(&v);
    }
    for (d, &s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = s;
    }
}

/// Values per piece when a row (or column) is converted before being scattered.
const RUN: usize = 64;

/// Packs `lines` lines (rows of A or columns of B; the first `valid` exist, the rest are
/// zero) of `kc` values each, line `l`'s value `q` at `data[start(l, q) + ...]` with
/// element step `step`, into `dst` as `kc` groups of `lines` values (the transposing
/// scatter; each line is converted in pieces of [`RUN`] first).
fn scatter_lines<T: Dtype>(
    data: &[T],
    (lines, valid): (usize, usize),
    kc: usize,
    step: usize,
    start: impl Fn(usize, usize) -> usize,
    dst: &mut [f32],
) {
    let mut run = [0.0f32; RUN];
    for l in 0..lines {
        for q0 in (0..kc).step_by(RUN) {
            let run = &mut run[..RUN.min(kc - q0)];
            if l < valid {
                read_run(data, start(l, q0), step, run);
            } else {
                run.fill(0.0);
            }
            for (p, &v) in run.iter().enumerate() {
                dst[(q0 + p) * lines + l] = v;
            }
        }
    }
}

/// Packs panel `panel` of rows `i0..i0 + mc`, columns `p0..p0 + kc` of A into `dst`
/// (`mr * kc` floats): rows `i0 + panel*mr ..` as `kc` groups of `mr` values, missing rows
/// zero.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(super) fn pack_a_panel<T: Dtype>(
    a: MatRef<'_, T>,
    i0: usize,
    mc: usize,
    p0: usize,
    kc: usize,
    mr: usize,
    panel: usize,
    dst: &mut [f32],
) {
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
        // Row-major A: each row's run of k values scatters to stride mr.
        let start = |r: usize, q: usize| a.offset + (base_row + r) * a.rs + (p0 + q) * a.cs;
        scatter_lines(a.data, (mr, rows), kc, a.cs, start, dst);
    }
}

/// Packs panel `panel` of rows `p0..p0 + kc`, columns `j0..j0 + nc` of B into `dst`
/// (`nr * kc` floats): columns `j0 + panel*nr ..` as `kc` groups of `nr` values, missing
/// columns zero.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(super) fn pack_b_panel<T: Dtype>(
    b: MatRef<'_, T>,
    p0: usize,
    kc: usize,
    j0: usize,
    nc: usize,
    nr: usize,
    panel: usize,
    dst: &mut [f32],
) {
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
        // Column-major B (a transposed weight): each column's run scatters to stride nr.
        let start = |c: usize, q: usize| b.offset + (p0 + q) * b.rs + (base_col + c) * b.cs;
        scatter_lines(b.data, (nr, cols), kc, b.rs, start, dst);
    }
}
