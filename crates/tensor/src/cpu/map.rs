//! The element-wise engines behind unary and binary ops: decode a chunk to `D::Acc`,
//! apply the function, round the chunk back into `D` once. Contiguous inputs run in
//! cache-sized chunks, on both cores when large; broadcast or strided inputs walk their
//! layouts row by row.

use crate::cpu::alloc::{FirstError, try_scratch, try_zeroed_acc};
use crate::cpu::pool::{par_pieces, par_zip_chunks_with};
use crate::error::{Error, ErrorKind, Result, or_panic};
use crate::layout::{Layout, broadcast_shapes, for_each_row_n};
use crate::storage::Device;
use crate::tensor::Tensor;
use mixprec_dtype::{Acc, Dtype};
use num_traits::Zero;

/// Elements per chunk: 4096 f32 (16 KiB) stay in L1 between decode, compute and encode.
pub(crate) const CHUNK: usize = 4096;
/// Below this many elements the work is too small to split over threads.
pub(crate) const PARALLEL_MIN: usize = 1 << 16;
/// The same for functions costing ~1-3 ns per element (GELU, `exp`): split sooner.
pub(crate) const PARALLEL_MIN_EXPENSIVE: usize = 1 << 12;

/// `buf[i] = f(buf[i])`, multiversioned (see [`crate::cpu::simd::multiversion`]).
#[inline(always)]
pub(crate) fn apply_unary<A: Copy>(buf: &mut [A], f: &impl Fn(A) -> A) {
    crate::cpu::simd::multiversion(|| buf.iter_mut().for_each(|v| *v = f(*v)));
}

/// `a[i] = f(a[i], b[i])`, multiversioned (see [`crate::cpu::simd::multiversion`]).
#[inline(always)]
pub(crate) fn apply_binary<A: Copy>(a: &mut [A], b: &[A], f: &impl Fn(A, A) -> A) {
    crate::cpu::simd::multiversion(|| a.iter_mut().zip(b).for_each(|(u, &v)| *u = f(*u, v)));
}

/// True when elements can be converted straight through `to_acc_slice` (no FP8 scale).
fn unscaled<D: Dtype>(t: &Tensor<D>) -> bool {
    !D::DTYPE.is_fp8() && t.scale == 1.0
}

/// `f` applied to every element, rounded once into `D`; an error naming `op` when the
/// result's memory cannot be had.
pub(crate) fn map_unary<D: Dtype>(
    op: &'static str,
    x: &Tensor<D>,
    f: impl Fn(D::Acc) -> D::Acc + Sync,
) -> Result<Tensor<D>> {
    map_unary_chunks(op, x, PARALLEL_MIN, |buf| apply_unary(buf, &f))
}

/// `f` applied to chunks of elements decoded into `D::Acc` (in place), each result
/// rounded once into `D`: for functions that evaluate several elements together.
pub(crate) fn map_unary_chunks<D: Dtype>(
    op: &'static str,
    x: &Tensor<D>,
    parallel_min: usize,
    f: impl Fn(&mut [D::Acc]) + Sync,
) -> Result<Tensor<D>> {
    let shape = x.shape();
    if !unscaled(x) {
        let mut v = x.try_to_acc_vec(op)?;
        f(&mut v);
        return Tensor::from_acc_vec(op, &v, shape);
    }
    let src = x.try_elements(op)?;
    let mut out = try_scratch::<D>(op, shape, src.len())?;
    let scratch = |n: usize| vec![D::Acc::zero(); n];
    par_zip_chunks_with(&mut out, &src, CHUNK, parallel_min, scratch, |buf, o, s| {
        let buf = &mut buf[..s.len()];
        D::to_acc_slice(s, buf);
        f(buf);
        D::from_acc_slice(buf, o);
    });
    Ok(Tensor::from_parts(out, shape, 1.0))
}

/// `f(a, b)` with NumPy broadcasting, rounded once into `D`.
pub(crate) fn zip_binary<D: Dtype>(
    op: &'static str,
    a: &Tensor<D>,
    b: &Tensor<D>,
    f: impl Fn(D::Acc, D::Acc) -> D::Acc + Sync,
) -> Result<Tensor<D>> {
    crate::storage::same_device(op, a.device(), b.device())?;
    let shape = broadcast_shapes(op, a.shape(), b.shape())?;
    // One operand a single value (a scalar tensor): the unary engine with it fixed.
    if b.numel() == 1 && a.shape() == shape.as_slice() {
        let y = b.try_to_acc_vec(op)?[0];
        return map_unary(op, a, |x| f(x, y));
    }
    if a.numel() == 1 && b.shape() == shape.as_slice() {
        let x = a.try_to_acc_vec(op)?[0];
        return map_unary(op, b, |y| f(x, y));
    }
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
    Tensor::from_acc_vec(op, &values, &shape)
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
    Some(zip_same_shape(op, a, b, parallel_min, f))
}

/// The body of [`zip_same_shape_chunks`], for contiguous unscaled inputs of one shape.
fn zip_same_shape<D: Dtype>(
    op: &'static str,
    a: &Tensor<D>,
    b: &Tensor<D>,
    parallel_min: usize,
    f: impl Fn(&mut [D::Acc], &[D::Acc]) + Sync,
) -> Result<Tensor<D>> {
    let (sa, sb) = (a.try_elements(op)?, b.try_elements(op)?);
    let mut out = try_scratch::<D>(op, a.shape(), sa.len())?;
    par_pieces(&mut out, CHUNK, parallel_min, |off, piece| {
        let end = off + piece.len();
        // Decode buffers once per piece (zero-filling them per chunk cost a third of
        // the decode).
        let n = piece.len().min(CHUNK);
        let (mut bx, mut by) = (vec![D::Acc::zero(); n], vec![D::Acc::zero(); n]);
        piece
            .chunks_mut(CHUNK)
            .zip(sa[off..end].chunks(CHUNK))
            .zip(sb[off..end].chunks(CHUNK))
            .for_each(|((o, x), y)| {
                let (bx, by) = (&mut bx[..x.len()], &mut by[..x.len()]);
                D::to_acc_slice(x, bx);
                D::to_acc_slice(y, by);
                f(bx, by);
                D::from_acc_slice(bx, o);
            })
    });
    Ok(Tensor::from_parts(out, a.shape(), 1.0))
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
    Some(trailing_broadcast_rows(op, big, small, shape, row, f))
}

/// The body of [`trailing_broadcast`]: `small` (of `row` elements) against every row of
/// `big`.
fn trailing_broadcast_rows<D: Dtype>(
    op: &'static str,
    big: &Tensor<D>,
    small: &Tensor<D>,
    shape: &[usize],
    row: usize,
    f: &(impl Fn(D::Acc, D::Acc) -> D::Acc + Sync),
) -> Result<Tensor<D>> {
    let mut s = try_zeroed_acc::<D>(op, small.shape(), row)?;
    D::to_acc_slice(&small.try_elements(op)?, &mut s);
    let src = big.try_elements(op)?;
    let mut out = try_scratch::<D>(op, shape, src.len())?;
    // A task holds at least one row: its buffer is fallible (a row may be huge).
    let rows_per_task = (CHUNK / row).max(1) * row;
    let failed = FirstError::new();
    // One buffer per piece, sized for its longest task.
    let scratch = |n: usize| failed.keep(try_zeroed_acc::<D>(op, &[n], n));
    let job = |buf: &mut Option<Vec<D::Acc>>, o: &mut [D], x: &[D]| {
        let Some(buf) = buf else {
            return;
        };
        let buf = &mut buf[..x.len()];
        D::to_acc_slice(x, buf);
        for r in buf.chunks_mut(row) {
            apply_binary(r, &s, f);
        }
        D::from_acc_slice(buf, o);
    };
    par_zip_chunks_with(&mut out, &src, rows_per_task, PARALLEL_MIN, scratch, job);
    failed.into_result()?;
    Ok(Tensor::from_parts(out, shape, 1.0))
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
    let mut out = crate::cpu::alloc::try_with_capacity(op, shape, crate::layout::numel(shape))?;
    for_each_row_n(layouts.each_ref(), |starts, strides, len| {
        for i in 0..len {
            let args: [D::Acc; N] =
                std::array::from_fn(|k| data[k][starts[k] + i * strides[k]].to_acc() / scales[k]);
            out.push(f(args));
        }
    });
    Ok(out)
}

/// Errors unless `device` is the CPU: a Rust closure runs on the host only.
fn closures_run_on_the_cpu(op: &'static str, device: Device) -> Result<()> {
    if device == Device::Cpu {
        return Ok(());
    }
    Err(Error::new(
        op,
        ErrorKind::Unsupported {
            device,
            what: "a closure runs on the CPU only: move the tensor with `to_device(Device::Cpu)`"
                .into(),
        },
    ))
}

impl<D: Dtype> Tensor<D> {
    /// A custom element-wise op: `f` applied in the compute precision `D::Acc`, result
    /// rounded once into `D` (chunked and parallel like the built-in ops). A CPU
    /// convenience for user-defined layers and tests: a closure cannot run on a device,
    /// so on a GPU tensor this panics with the error of [`Tensor::try_map`] (the built-in
    /// ops, [`Tensor::unary`], run everywhere).
    pub fn map(&self, f: impl Fn(D::Acc) -> D::Acc + Sync) -> Tensor<D> {
        or_panic(self.try_map(f))
    }

    /// [`Tensor::map`], or an error when the tensor is not on the CPU or the result
    /// cannot be allocated.
    pub fn try_map(&self, f: impl Fn(D::Acc) -> D::Acc + Sync) -> Result<Tensor<D>> {
        closures_run_on_the_cpu("map", self.device())?;
        map_unary("map", self, f)
    }

    /// A custom binary element-wise op with NumPy broadcasting, computed in `D::Acc` and
    /// rounded once. A CPU convenience like [`Tensor::map`]: errors when either tensor is
    /// not on the CPU, or the shapes do not broadcast.
    pub fn zip_map(
        &self,
        other: &Tensor<D>,
        f: impl Fn(D::Acc, D::Acc) -> D::Acc + Sync,
    ) -> Result<Tensor<D>> {
        closures_run_on_the_cpu("zip_map", self.device())?;
        closures_run_on_the_cpu("zip_map", other.device())?;
        zip_binary("zip_map", self, other, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::F32;

    #[test]
    fn closures_are_a_cpu_convenience() {
        let e = closures_run_on_the_cpu("map", Device::Cuda(0)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "map: cuda:0: a closure runs on the CPU only: move the tensor with \
             `to_device(Device::Cpu)`"
        );
        let x = Tensor::<F32>::from_f32(&[1.0, -2.0], &[2]).unwrap();
        assert_eq!(
            x.try_map(|v| v * 2.0).unwrap().to_f32_vec(),
            vec![2.0, -4.0]
        );
        let y = x.zip_map(&x, |a, b| a - b).unwrap();
        assert_eq!(y.to_f32_vec(), vec![0.0, 0.0]);
    }
}
