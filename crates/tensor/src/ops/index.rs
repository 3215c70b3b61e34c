//! Indexing by integer ids: `index_select` along an axis, `embedding` lookup and
//! `gather`. Values are copied, so results are exact (FP8 keeps its scale).

use crate::backend::on_device;
use crate::error::{Error, Result};
use crate::layout::{contiguous_strides, normalize_axis, numel};
use crate::mask::Indices;
use crate::tensor::Tensor;
use mixprec_dtype::Dtype;

/// An indexing op, as data: what [`Tensor::index`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IndexOp {
    /// [`Tensor::index_select`] (and [`Tensor::embedding`]); backward: index-add.
    IndexSelect,
    /// [`Tensor::gather`]; backward: scatter-add.
    Gather,
}

impl IndexOp {
    /// Every variant.
    pub const ALL: [IndexOp; 2] = [IndexOp::IndexSelect, IndexOp::Gather];

    /// The op's name (the public method's), used in errors.
    pub const fn name(self) -> &'static str {
        match self {
            IndexOp::IndexSelect => "index_select",
            IndexOp::Gather => "gather",
        }
    }

    /// The backward op's name.
    pub const fn backward_name(self) -> &'static str {
        match self {
            IndexOp::IndexSelect => "index_select_backward",
            IndexOp::Gather => "gather_backward",
        }
    }

    /// A device's kernels for the op: (forward, backward).
    pub const fn kernel(self) -> (&'static str, &'static str) {
        match self {
            IndexOp::IndexSelect => ("index_select", "index_add"),
            IndexOp::Gather => ("gather", "scatter_add"),
        }
    }
}

/// The checks of [`Tensor::index`]: `axis` in range, ids below its size, and for
/// `gather` an index of the input's rank that fits the input off the axis.
fn check_index(op: IndexOp, shape: &[usize], axis: isize, ids: &Indices) -> Result<()> {
    let name = op.name();
    let a = normalize_axis(name, axis, shape.len())?;
    if op == IndexOp::Gather
        && (ids.shape().len() != shape.len()
            || ids
                .shape()
                .iter()
                .zip(shape)
                .enumerate()
                .any(|(d, (&i, &s))| d != a && i > s))
    {
        return Err(Error::shapes(
            name,
            shape,
            ids.shape(),
            "index needs the same rank and sizes no larger than the input off the gather axis",
        ));
    }
    ids.check_bound(name, shape[a])
}

/// The checks of [`Tensor::index_backward`]: `axis` in range, ids below its size, and a
/// gradient of the forward op's output shape.
fn check_index_backward(
    op: IndexOp,
    g_shape: &[usize],
    input_shape: &[usize],
    axis: isize,
    ids: &Indices,
) -> Result<()> {
    let name = op.backward_name();
    let a = normalize_axis(name, axis, input_shape.len())?;
    match op {
        IndexOp::IndexSelect => {
            ids.check_bound(name, input_shape[a])?;
            let mut want = input_shape[..a].to_vec();
            want.extend_from_slice(ids.shape());
            want.extend_from_slice(&input_shape[a + 1..]);
            if g_shape != want {
                return Err(Error::shapes(
                    name,
                    g_shape,
                    &want,
                    "the gradient must have index_select's output shape",
                ));
            }
            Ok(())
        }
        IndexOp::Gather => {
            let ishape = ids.shape();
            if g_shape != ishape
                || ishape.len() != input_shape.len()
                || ishape
                    .iter()
                    .zip(input_shape)
                    .enumerate()
                    .any(|(d, (&i, &s))| d != a && i > s)
            {
                return Err(Error::shapes(
                    name,
                    g_shape,
                    input_shape,
                    "the gradient must have the index's shape, which fits the input off the axis",
                ));
            }
            ids.check_bound(name, input_shape[a])
        }
    }
}

impl<D: Dtype> Tensor<D> {
    /// `op` along `axis` with `ids` ([`Tensor::index_select`] or [`Tensor::gather`]),
    /// with that op's errors.
    pub fn index(&self, op: IndexOp, axis: isize, ids: &Indices) -> Result<Tensor<D>> {
        check_index(op, self.shape(), axis, ids)?;
        on_device!(self.device(), b => b.index(op, self, axis, ids))
    }

    /// The gradient of `op` for an input of `input_shape`, `self` being the output
    /// gradient ([`Tensor::index_select_backward`] or [`Tensor::gather_backward`]).
    pub fn index_backward(
        &self,
        op: IndexOp,
        input_shape: &[usize],
        axis: isize,
        ids: &Indices,
    ) -> Result<Tensor<D>> {
        check_index_backward(op, self.shape(), input_shape, axis, ids)?;
        on_device!(self.device(), b => b.index_backward(op, self, input_shape, axis, ids))
    }

    /// Slices `ids` (any shape) along `axis`: the output shape replaces `axis` by the ids'
    /// shape. Errors if an id is not below the axis size.
    pub fn index_select(&self, axis: isize, ids: &Indices) -> Result<Tensor<D>> {
        self.index(IndexOp::IndexSelect, axis, ids)
    }

    /// The CPU kernel of [`Tensor::index_select`], after its front's checks.
    pub(crate) fn index_select_on_cpu(&self, axis: isize, ids: &Indices) -> Result<Tensor<D>> {
        let a = normalize_axis("index_select", axis, self.rank())?;
        let size = self.shape()[a];
        let data = self.try_elements("index_select")?;
        let outer: usize = self.shape()[..a].iter().product();
        let inner: usize = self.shape()[a + 1..].iter().product();
        let mut shape = self.shape()[..a].to_vec();
        shape.extend_from_slice(ids.shape());
        shape.extend_from_slice(&self.shape()[a + 1..]);
        // Few ids can select a result far larger than the input: checked and fallible.
        let n = crate::layout::checked_numel("index_select", &shape)?;
        let mut out = crate::cpu::alloc::try_with_capacity("index_select", &shape, n)?;
        for o in 0..outer {
            for &id in ids.as_slice() {
                let start = (o * size + id) * inner;
                out.extend_from_slice(&data[start..start + inner]);
            }
        }
        Ok(Tensor::from_parts(out, &shape, self.scale))
    }

    /// Embedding lookup: `self` is a `[vocab, dim]` table, the result has shape
    /// `[ids.shape.., dim]`. Errors if the table is not 2-D or an id is not below `vocab`.
    pub fn embedding(&self, ids: &Indices) -> Result<Tensor<D>> {
        if self.rank() != 2 {
            return Err(Error::bad_shape(
                "embedding",
                self.shape(),
                "a table of rank 2 ([vocab, dim])",
            ));
        }
        self.index_select(0, ids).map_err(|e| Error {
            op: "embedding",
            ..e
        })
    }

    /// PyTorch's `gather`: `out[i][j][k] = self[i][index[i][j][k]][k]` for `axis = 1`
    /// (likewise for any axis). `index` has the rank of `self` and, off `axis`, sizes no
    /// larger than `self`'s; the output has `index`'s shape.
    pub fn gather(&self, axis: isize, index: &Indices) -> Result<Tensor<D>> {
        self.index(IndexOp::Gather, axis, index)
    }

    /// The CPU kernel of [`Tensor::gather`], after its front's checks.
    pub(crate) fn gather_on_cpu(&self, axis: isize, index: &Indices) -> Result<Tensor<D>> {
        let a = normalize_axis("gather", axis, self.rank())?;
        let data = self.try_elements("gather")?;
        let strides = contiguous_strides(self.shape());
        let ishape = index.shape();
        let mut out = crate::cpu::alloc::try_with_capacity("gather", ishape, numel(ishape))?;
        for (flat, &id) in index.as_slice().iter().enumerate() {
            let mut rem = flat;
            let mut offset = 0;
            for d in (0..ishape.len()).rev() {
                let coord = rem % ishape[d];
                rem /= ishape[d];
                offset += if d == a { id } else { coord } * strides[d];
            }
            out.push(data[offset]);
        }
        Ok(Tensor::from_parts(out, ishape, self.scale))
    }

    /// The gradient of [`Tensor::index_select`] (and [`Tensor::embedding`], `axis` 0):
    /// `self` is the output gradient, of shape `input_shape` with `axis` replaced by
    /// `ids`' shape; returns a tensor of `input_shape` with every row of `self`
    /// scatter-added to the row its id selected (rows never selected stay zero), summed in
    /// `D::Acc` in id order and rounded once into `D`. Errors when the shapes do not fit
    /// or an id is out of range.
    pub fn index_select_backward(
        &self,
        input_shape: &[usize],
        axis: isize,
        ids: &Indices,
    ) -> Result<Tensor<D>> {
        self.index_backward(IndexOp::IndexSelect, input_shape, axis, ids)
    }

    /// The CPU kernel of [`Tensor::index_select_backward`], after its front's checks.
    pub(crate) fn index_select_backward_on_cpu(
        &self,
        input_shape: &[usize],
        axis: isize,
        ids: &Indices,
    ) -> Result<Tensor<D>> {
        let op = "index_select_backward";
        let a = normalize_axis(op, axis, input_shape.len())?;
        let n = crate::layout::checked_numel(op, input_shape)?;
        let outer: usize = input_shape[..a].iter().product();
        let inner: usize = input_shape[a + 1..].iter().product();
        let gv = self.try_to_acc_vec(op)?;
        let mut table = crate::cpu::alloc::try_zeroed_acc::<D>(op, input_shape, n)?;
        let per_outer = ids.len() * inner;
        for o in 0..outer {
            for (k, &row) in ids.as_slice().iter().enumerate() {
                let src = &gv[o * per_outer + k * inner..][..inner];
                let dst = &mut table[(o * input_shape[a] + row) * inner..][..inner];
                dst.iter_mut().zip(src).for_each(|(d, &s)| *d += s);
            }
        }
        Tensor::from_acc_vec(op, &table, input_shape)
    }

    /// The gradient of [`Tensor::gather`]: `self` is the output gradient (of `index`'s
    /// shape); returns a tensor of `input_shape` where each gradient element is added at
    /// the position its index gathered from (in `D::Acc`, in the index's order; rounded
    /// once into `D`). Errors when the shapes do not fit or an index is out of range.
    pub fn gather_backward(
        &self,
        input_shape: &[usize],
        axis: isize,
        index: &Indices,
    ) -> Result<Tensor<D>> {
        self.index_backward(IndexOp::Gather, input_shape, axis, index)
    }

    /// The CPU kernel of [`Tensor::gather_backward`], after its front's checks.
    pub(crate) fn gather_backward_on_cpu(
        &self,
        input_shape: &[usize],
        axis: isize,
        index: &Indices,
    ) -> Result<Tensor<D>> {
        let op = "gather_backward";
        let a = normalize_axis(op, axis, input_shape.len())?;
        let n = crate::layout::checked_numel(op, input_shape)?;
        let strides = contiguous_strides(input_shape);
        let ishape = index.shape();
        let gv = self.try_to_acc_vec(op)?;
        let mut out = crate::cpu::alloc::try_zeroed_acc::<D>(op, input_shape, n)?;
        for (flat, (&i, &gval)) in index.as_slice().iter().zip(&gv).enumerate() {
            let mut rem = flat;
            let mut off = 0;
            for d in (0..ishape.len()).rev() {
                let coord = rem % ishape[d];
                rem /= ishape[d];
                off += if d == a { i } else { coord } * strides[d];
            }
            out[off] += gval;
        }
        Tensor::from_acc_vec(op, &out, input_shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::F32;
    use mixprec_testing::for_each_dtype;

    fn lookups_copy_exactly<D: Dtype>() {
        let table = Tensor::<D>::arange(0.0, 12.0, 1.0)
            .unwrap()
            .reshape(&[4, 3])
            .unwrap();
        let ids = Indices::from_vec(vec![3, 0, 3, 1], &[2, 2]).unwrap();
        let e = table.embedding(&ids).unwrap();
        assert_eq!(e.shape(), &[2, 2, 3]);
        let t = table.to_f64_vec();
        let want: Vec<f64> = [3, 0, 3, 1]
            .iter()
            .flat_map(|&i| t[i * 3..i * 3 + 3].to_vec())
            .collect();
        assert_eq!(e.to_f64_vec(), want);
        let cols = table
            .index_select(1, &Indices::from_slice(&[2, 0]))
            .unwrap();
        let want: Vec<f64> = (0..4).flat_map(|r| [t[r * 3 + 2], t[r * 3]]).collect();
        assert_eq!(cols.to_f64_vec(), want);
        let g = table
            .gather(
                1,
                &Indices::from_vec(vec![0, 2, 1, 1, 2, 0, 0, 0], &[4, 2]).unwrap(),
            )
            .unwrap();
        assert_eq!(
            g.to_f64_vec(),
            vec![t[0], t[2], t[4], t[4], t[8], t[6], t[9], t[9]]
        );
    }
    for_each_dtype!(lookups_copy_exactly);

    #[test]
    fn index_errors() {
        let table = Tensor::<F32>::zeros(&[4, 3]);
        assert_eq!(
            table
                .embedding(&Indices::from_slice(&[4]))
                .unwrap_err()
                .to_string(),
            "embedding: index 4 is out of range (must be below 4)"
        );
        assert!(
            Tensor::<F32>::zeros(&[4])
                .embedding(&Indices::from_slice(&[0]))
                .is_err()
        );
        assert!(table.index_select(2, &Indices::from_slice(&[0])).is_err());
        assert!(
            table
                .gather(0, &Indices::from_slice(&[0]))
                .unwrap_err()
                .to_string()
                .starts_with("gather: shapes [4, 3] and [1]")
        );
        assert!(
            table
                .gather(0, &Indices::from_vec(vec![9], &[1, 1]).unwrap())
                .is_err()
        );
    }
}
