//! The element-wise engines behind unary and binary ops: decode a chunk to `D::Acc`,
//! apply the function, round the chunk back into `D` once. Contiguous inputs run in
//! cache-sized chunks, on both cores when large; broadcast or strided inputs walk their
//! layouts row by row.

use crate::alloc::scratch;
use crate::error::Result;
use crate::layout::{Layout, broadcast_shapes, for_each_row_n};
use crate::pool::{par_pieces, par_zip_chunks};
use crate::tensor::Tensor;
use mixprec_dtype::{Acc, Dtype};
use num_traits::Zero;

/// Elements per chunk: 4096 f32 (16 KiB) stay in L1 between decode, compute and encode.
pub(crate) const CHUNK: usize = 4096;
/// Below this many elements the work is too small to split over threads.
pub(crate) const PARALLEL_MIN: usize = 1 << 16;
/// The same for functions costing ~1-3 ns per element (GELU, `exp`): split sooner.
pub(crate) const PARALLEL_MIN_EXPENSIVE: usize = 1 << 12;

/// `buf[i] = f(buf[i])`, multiversioned (see [`crate::simd::multiversion`]).
#[inline(always)]
pub(crate) fn apply_unary<A: Copy>(buf: &mut [A], f: &impl Fn(A) -> A) {
    crate::simd::multiversion(|| buf.iter_mut().for_each(|v| *v = f(*v)));
}

/// `a[i] = f(a[i], b[i])`, multiversioned (see [`crate::simd::multiversion`]).
#[inline(always)]
pub(crate) fn apply_binary<A: Copy>(a: &mut [A], b: &[A], f: &impl Fn(A, A) -> A) {
    crate::simd::multiversion(|| a.iter_mut().zip(b).for_each(|(u, &v)| *u = f(*u, v)));
}

/// True when elements can be converted straight through `to_acc_slice` (no FP8 scale).
fn unscaled<D: Dtype>(t: &Tensor<D>) -> bool {
    !D::DTYPE.is_fp8() && t.scale == 1.0
}

/// `f` applied to every element, rounded once into `D`.
pub(crate) fn map_unary<D: Dtype>(x: &Tensor<D>, f: impl Fn(D::Acc) -> D::Acc + Sync) -> Tensor<D> {
    map_unary_chunks(x, PARALLEL_MIN, |buf| apply_unary(buf, &f))
}

/// `f` applied to chunks of elements decoded into `D::Acc` (in place), each result
/// rounded once into `D`: for functions that evaluate several elements together.
pub(crate) fn map_unary_chunks<D: Dtype>(
    x: &Tensor<D>,
    parallel_min: usize,
    f: impl Fn(&mut [D::Acc]) + Sync,
) -> Tensor<D> {
    let shape = x.shape().to_vec();
    if !unscaled(x) {
        let mut v = x.to_acc_vec();
        f(&mut v);
        return Tensor::from_acc_vec(&v, &shape);
    }
    let src = x.elements();
    let mut out = scratch::<D>(src.len());
    let body = |(o, s): (&mut [D], &[D])| {
        let mut buf = [D::Acc::zero(); CHUNK];
        let buf = &mut buf[..s.len()];
        D::to_acc_slice(s, buf);
        f(buf);
        D::from_acc_slice(buf, o);
    };
    par_zip_chunks(&mut out, &src, CHUNK, parallel_min, |o, s| body((o, s)));
    Tensor::from_parts(out, &shape, 1.0)
}

/// `f(a, b)` with NumPy broadcasting, rounded once into `D`.
pub(crate) fn zip_binary<D: Dtype>(
    op: &'static str,
    a: &Tensor<D>,
    b: &Tensor<D>,
    f: impl Fn(D::Acc, D::Acc) -> D::Acc + Sync,
) -> Result<Tensor<D>> {
    let shape = broadcast_shapes(op, a.shape(), b.shape())?;
    let same = |x: &mut [D::Acc], y: &[D::Acc]| apply_binary(x, y, &f);
    if let Some(out) = zip_same_shape_chunks(op, a, b, PARALLEL_MIN, same) {
        return out;
    }
    if let Some(out) = trailing_broadcast(op, a, b, &shape, &f)
        .or_else(|| trailing_broadcast(op, b, a, &shape, &|y, x| f(x, y)))
    {
        return out;
    }
    let values = broadcast_values(op, &shape, [a, b], |[x, y]| f(x, y))?;
    Ok(Tensor::from_acc_vec(&values, &shape))
}

/// `f(a, b)` over chunks decoded into `D::Acc` (`f` writes its results into the first
/// chunk), each result rounded once into `D`, when both tensors have the same shape and
/// are contiguous and unscaled; `None` otherwise (the caller takes a general path). An
/// allocation failure is an error naming `op`.
pub(crate) fn zip_same_shape_chunks<D: Dtype>(
    op: &'static str,
    a: &Tensor<D>,
    b: &Tensor<D>,
    parallel_min: usize,
    f: impl Fn(&mut [D::Acc], &[D::Acc]) + Sync,
) -> Option<Result<Tensor<D>>> {
    if a.shape() != b.shape()
        || !a.is_contiguous()
        || !b.is_contiguous()
        || !unscaled(a)
        || !unscaled(b)
    {
        return None;
    }
    let (sa, sb) = (a.elements(), b.elements());
    let mut out = match crate::alloc::try_scratch::<D>(op, a.shape(), sa.len()) {
        Ok(out) => out,
        Err(e) => return Some(Err(e)),
    };
    let body = |((o, x), y): ((&mut [D], &[D]), &[D])| {
        let mut bx = [D::Acc::zero(); CHUNK];
        let mut by = [D::Acc::zero(); CHUNK];
        let (bx, by) = (&mut bx[..x.len()], &mut by[..x.len()]);
        D::to_acc_slice(x, bx);
        D::to_acc_slice(y, by);
        f(bx, by);
        D::from_acc_slice(bx, o);
    };
    par_pieces(&mut out, CHUNK, parallel_min, |off, piece| {
        let end = off + piece.len();
        piece
            .chunks_mut(CHUNK)
            .zip(sa[off..end].chunks(CHUNK))
            .zip(sb[off..end].chunks(CHUNK))
            .for_each(body)
    });
    Some(Ok(Tensor::from_parts(out, a.shape(), 1.0)))
}

/// Fast path for `big op small` where `small` repeats along leading axes (a bias added
/// to every row): both contiguous and unscaled, `small`'s shape (without leading 1s) a
/// suffix of `big`'s. `small` is decoded once; `big` streams in row chunks.
fn trailing_broadcast<D: Dtype>(
    op: &'static str,
    big: &Tensor<D>,
    small: &Tensor<D>,
    shape: &[usize],
    f: &(impl Fn(D::Acc, D::Acc) -> D::Acc + Sync),
) -> Option<Result<Tensor<D>>> {
    let core = crate::layout::without_leading_ones(small.shape());
    let row = crate::layout::numel(core);
    if big.shape() != shape
        || !big.is_contiguous()
        || !small.is_contiguous()
        || !unscaled(big)
        || !unscaled(small)
        || row == 0
        || !shape.ends_with(core)
    {
        return None;
    }
    let mut s = vec![D::Acc::zero(); row];
    D::to_acc_slice(&small.elements(), &mut s);
    let src = big.elements();
    let mut out = match crate::alloc::try_scratch::<D>(op, shape, src.len()) {
        Ok(out) => out,
        Err(e) => return Some(Err(e)),
    };
    let rows_per_task = (CHUNK / row).max(1) * row;
    let job = |(o, x): (&mut [D], &[D])| {
        let mut buf = vec![D::Acc::zero(); x.len()];
        D::to_acc_slice(x, &mut buf);
        for r in buf.chunks_mut(row) {
            apply_binary(r, &s, f);
        }
        D::from_acc_slice(&buf, o);
    };
    par_zip_chunks(&mut out, &src, rows_per_task, PARALLEL_MIN, |o, x| {
        job((o, x))
    });
    Some(Ok(Tensor::from_parts(out, shape, 1.0)))
}

/// `f` over `N` tensors broadcast to `shape` (already checked), in logical order, in
/// the compute precision. The general (strided) path of the element-wise ops.
pub(crate) fn broadcast_values<D: Dtype, const N: usize>(
    op: &'static str,
    shape: &[usize],
    inputs: [&Tensor<D>; N],
    mut f: impl FnMut([D::Acc; N]) -> D::Acc,
) -> Result<Vec<D::Acc>> {
    let layouts: [Layout; N] = inputs.map(|t| t.layout.broadcast_to(shape));
    let data = inputs.map(|t| t.storage.as_slice());
    let scales = inputs.map(|t| D::Acc::from_f32(t.scale));
    let mut out = crate::alloc::try_with_capacity(op, shape, crate::layout::numel(shape))?;
    for_each_row_n(layouts.each_ref(), |starts, strides, len| {
        for i in 0..len {
            let args: [D::Acc; N] =
                std::array::from_fn(|k| data[k][starts[k] + i * strides[k]].to_acc() / scales[k]);
            out.push(f(args));
        }
    });
    Ok(out)
}

impl<D: Dtype> Tensor<D> {
    /// A custom element-wise op: `f` applied in the compute precision `D::Acc`, result
    /// rounded once into `D` (chunked and parallel like the built-in ops). Backward rules
    /// and user-defined layers use it for fused derivatives.
    pub fn map(&self, f: impl Fn(D::Acc) -> D::Acc + Sync) -> Tensor<D> {
        map_unary(self, f)
    }

    /// A custom binary element-wise op with NumPy broadcasting, computed in `D::Acc` and
    /// rounded once. Errors when the shapes do not broadcast.
    pub fn zip_map(
        &self,
        other: &Tensor<D>,
        f: impl Fn(D::Acc, D::Acc) -> D::Acc + Sync,
    ) -> Result<Tensor<D>> {
        zip_binary("zip_map", self, other, f)
    }
}
