//! Views: reshape, transpose, permute, narrow, broadcast, (un)squeeze. None copies,
//! except `reshape` of a non-contiguous tensor and `contiguous`.

use crate::backend::on_device;
use crate::error::{Error, Result};
use crate::layout::{Layout, broadcast_shapes, normalize_axis};
use crate::tensor::Tensor;
use mixprec_dtype::Dtype;

impl<D: Dtype> Tensor<D> {
    /// The same elements with another shape of equal element count. A view (no copy)
    /// whenever the strides allow it — always for contiguous tensors, and for splitting
    /// or merging axes that are laid out one inside the other (PyTorch's `view` rule);
    /// a contiguous copy otherwise.
    pub fn reshape(&self, shape: &[usize]) -> Result<Self> {
        if crate::layout::checked_numel("reshape", shape)? != self.numel() {
            return Err(Error::shapes(
                "reshape",
                self.shape(),
                shape,
                "element counts differ",
            ));
        }
        if let Some(layout) = self.layout.reshaped(shape) {
            return Ok(self.view(layout));
        }
        Ok(self
            .try_contiguous("reshape")?
            .view(Layout::contiguous(shape)))
    }

    /// A contiguous copy (or `self` shared, when already contiguous). Panics with the
    /// op's message when the copy cannot be allocated; see [`Tensor::try_contiguous`].
    pub fn contiguous(&self) -> Self {
        crate::error::or_panic(self.try_contiguous("contiguous"))
    }

    /// [`Tensor::contiguous`], or an error naming `op` and the shape when the copy cannot
    /// be allocated.
    pub fn try_contiguous(&self, op: &'static str) -> Result<Self> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        on_device!(self.device(), b => b.contiguous(op, self))
    }

    /// The CPU kernel of [`Tensor::try_contiguous`], after its front's checks.
    pub(crate) fn contiguous_on_cpu(&self, op: &'static str) -> Result<Self> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        let copy = self.try_elements(op)?.into_owned();
        Ok(Tensor::from_parts(copy, self.shape(), self.scale))
    }

    /// Swaps two axes (negative axes count from the end). No copy.
    pub fn transpose(&self, a: isize, b: isize) -> Result<Self> {
        let a = normalize_axis("transpose", a, self.rank())?;
        let b = normalize_axis("transpose", b, self.rank())?;
        let mut layout = self.layout.clone();
        layout.shape.swap(a, b);
        layout.strides.swap(a, b);
        Ok(self.view(layout))
    }

    /// Reorders the axes: output axis `i` is input axis `order[i]`. No copy.
    pub fn permute(&self, order: &[usize]) -> Result<Self> {
        let mut seen = vec![false; self.rank()];
        if order.len() != self.rank()
            || order
                .iter()
                .any(|&a| a >= self.rank() || std::mem::replace(&mut seen[a], true))
        {
            return Err(Error::invalid(
                "permute",
                format!(
                    "{order:?} is not a permutation of the {} axes of shape {:?}",
                    self.rank(),
                    self.shape()
                ),
            ));
        }
        let layout = Layout {
            shape: order.iter().map(|&a| self.layout.shape[a]).collect(),
            strides: order.iter().map(|&a| self.layout.strides[a]).collect(),
            offset: self.layout.offset,
        };
        Ok(self.view(layout))
    }

    /// Elements `start..start + len` along `axis`. No copy.
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Result<Self> {
        let a = normalize_axis("narrow", axis, self.rank())?;
        let size = self.shape()[a];
        if start.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::invalid(
                "narrow",
                format!(
                    "range {start}..{} exceeds size {size} of axis {a} in shape {:?}",
                    start.saturating_add(len),
                    self.shape()
                ),
            ));
        }
        let mut layout = self.layout.clone();
        layout.shape[a] = len;
        if len > 0 {
            layout.offset += start * layout.strides[a];
        }
        Ok(self.view(layout))
    }

    /// Broadcasts to `shape` by NumPy rules (new leading axes, size-1 axes repeated) with
    /// stride 0. No copy.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Self> {
        let target = broadcast_shapes("broadcast_to", self.shape(), shape)?;
        if target != shape {
            return Err(Error::shapes(
                "broadcast_to",
                self.shape(),
                shape,
                "the tensor must broadcast to exactly the target shape",
            ));
        }
        Ok(self.view(self.layout.broadcast_to(shape)))
    }

    /// Same as [`Tensor::broadcast_to`] (PyTorch's name).
    pub fn expand(&self, shape: &[usize]) -> Result<Self> {
        self.broadcast_to(shape)
            .map_err(|e| Error { op: "expand", ..e })
    }

    /// Inserts a size-1 axis at `axis` (in `-(rank+1)..=rank`). No copy.
    pub fn unsqueeze(&self, axis: isize) -> Result<Self> {
        let a = normalize_axis("unsqueeze", axis, self.rank() + 1)?;
        let mut layout = self.layout.clone();
        let stride = layout.strides.get(a).map_or(1, |&s| s * layout.shape[a]);
        layout.shape.insert(a, 1);
        layout.strides.insert(a, stride);
        Ok(self.view(layout))
    }

    /// Removes the size-1 axis `axis`. No copy.
    pub fn squeeze(&self, axis: isize) -> Result<Self> {
        let a = normalize_axis("squeeze", axis, self.rank())?;
        if self.shape()[a] != 1 {
            return Err(Error::bad_shape(
                "squeeze",
                self.shape(),
                format!("size 1 on axis {a}"),
            ));
        }
        let mut layout = self.layout.clone();
        layout.shape.remove(a);
        layout.strides.remove(a);
        Ok(self.view(layout))
    }

    /// All elements as a 1-D tensor (a view when contiguous).
    pub fn flatten(&self) -> Self {
        self.reshape(&[self.numel()]).expect("same element count")
    }
}

impl Layout {
    pub(crate) fn with_offset(mut self, offset: usize) -> Layout {
        self.offset = offset;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::numel;
    use mixprec_dtype::{F32, F64};
    use mixprec_testing::for_each_dtype;
    use proptest::prelude::*;

    fn t(shape: &[usize]) -> Tensor<F64> {
        let n = numel(shape);
        Tensor::from_f64(&(0..n).map(|i| i as f64).collect::<Vec<_>>(), shape).unwrap()
    }

    fn views_share_storage<D: Dtype>() {
        let x = Tensor::<D>::arange(0.0, 6.0, 1.0)
            .unwrap()
            .reshape(&[2, 3])
            .unwrap();
        let y = x.transpose(0, 1).unwrap();
        assert!(y.shares_storage_with(&x));
        assert_eq!(y.to_f64_vec(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        let z = x.narrow(1, 1, 2).unwrap();
        assert!(z.shares_storage_with(&x));
        assert_eq!(z.to_f64_vec(), vec![1.0, 2.0, 4.0, 5.0]);
        let b = x.narrow(0, 1, 1).unwrap().broadcast_to(&[3, 3]).unwrap();
        assert_eq!(
            b.to_f64_vec(),
            vec![3.0, 4.0, 5.0, 3.0, 4.0, 5.0, 3.0, 4.0, 5.0]
        );
    }
    for_each_dtype!(views_share_storage);

    #[test]
    fn view_errors() {
        let x = t(&[2, 3]);
        assert!(
            x.reshape(&[4])
                .unwrap_err()
                .to_string()
                .contains("reshape: shapes [2, 3] and [4]")
        );
        assert!(
            x.transpose(0, 2)
                .unwrap_err()
                .to_string()
                .contains("axis 2 is out of range for a tensor of rank 2")
        );
        assert!(
            x.permute(&[0, 0])
                .unwrap_err()
                .to_string()
                .starts_with("permute:")
        );
        assert!(
            x.narrow(1, 2, 2)
                .unwrap_err()
                .to_string()
                .starts_with("narrow: range 2..4 exceeds size 3")
        );
        assert!(x.broadcast_to(&[3, 3]).is_err());
        assert!(
            x.squeeze(0)
                .unwrap_err()
                .to_string()
                .starts_with("squeeze:")
        );
        assert!(Tensor::<F32>::zeros(&[2]).broadcast_to(&[1]).is_err());
    }

    #[test]
    fn unsqueeze_squeeze_round_trip() {
        let x = t(&[2, 3]);
        let u = x.unsqueeze(1).unwrap();
        assert_eq!(u.shape(), &[2, 1, 3]);
        assert_eq!(u.squeeze(1).unwrap().to_f64_vec(), x.to_f64_vec());
        assert_eq!(x.unsqueeze(-1).unwrap().shape(), &[2, 3, 1]);
    }

    /// A random permutation of 0..n from proptest-drawn keys.
    fn permutation(keys: &[u32]) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..keys.len()).collect();
        idx.sort_by_key(|&i| (keys[i], i));
        idx
    }

    proptest! {
        /// A permuted view reads the same elements as materialising the permutation by
        /// index arithmetic.
        #[test]
        fn permuted_views_match_copies(shape in prop::collection::vec(1usize..4, 1..5), keys in prop::collection::vec(any::<u32>(), 5)) {
            let x = t(&shape);
            let order = permutation(&keys[..shape.len()]);
            let y = x.permute(&order).unwrap();
            let src = x.to_f64_vec();
            let strides = crate::layout::contiguous_strides(&shape);
            let out_shape: Vec<usize> = order.iter().map(|&a| shape[a]).collect();
            let mut expected = Vec::new();
            for flat in 0..numel(&out_shape) {
                let mut rem = flat;
                let mut offset = 0;
                for (i, &d) in out_shape.iter().enumerate().rev() {
                    offset += (rem % d) * strides[order[i]];
                    rem /= d;
                }
                expected.push(src[offset]);
            }
            prop_assert_eq!(y.to_f64_vec(), expected.clone());
            prop_assert_eq!(y.contiguous().to_f64_vec(), expected);
        }

        /// Reshaping a permuted, narrowed view (a view where strides allow, a copy
        /// otherwise) gives the elements of reshaping its contiguous copy, and is a view
        /// exactly when the new shape only splits or merges nested axes.
        #[test]
        fn reshape_of_views_matches_reshape_of_copies(
            shape in prop::collection::vec(1usize..4, 2..5),
            keys in prop::collection::vec(any::<u32>(), 5),
            cut in 0usize..2,
            split_at in 0usize..5,
        ) {
            let x = t(&shape);
            let order = permutation(&keys[..shape.len()]);
            let p = x.permute(&order).unwrap();
            let last = p.rank() - 1;
            let len = p.shape()[last];
            let v = p.narrow(last as isize, cut.min(len - 1), len - cut.min(len - 1)).unwrap();
            let dims = v.shape().to_vec();
            // New shapes: everything flat, two halves merged, and a size-1 axis inserted.
            let k = split_at.min(dims.len());
            let mut shapes = vec![vec![v.numel()]];
            shapes.push(vec![numel(&dims[..k]), numel(&dims[k..])]);
            let mut with_one = dims.clone();
            with_one.insert(k, 1);
            shapes.push(with_one);
            for new_shape in shapes {
                let r = v.reshape(&new_shape).unwrap();
                prop_assert_eq!(r.shape(), &new_shape[..]);
                prop_assert_eq!(r.to_f64_vec(), v.contiguous().reshape(&new_shape).unwrap().to_f64_vec());
                if r.shares_storage_with(&x) {
                    prop_assert!(v.layout.reshaped(&new_shape).is_some());
                }
            }
        }
    }
}
