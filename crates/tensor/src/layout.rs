//! [`Layout`]: shape, strides (in elements) and offset of a view into storage.

use crate::error::{Error, ErrorKind, Result};

/// Where a tensor's elements sit in its storage. Strides are in elements and never
/// negative; a stride of 0 repeats an element (broadcast).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub shape: Vec<usize>,
    pub strides: Vec<usize>,
    pub offset: usize,
}

/// `shape` without its leading size-1 axes: the part that repeats when a tensor of this
/// shape broadcasts along leading axes.
pub(crate) fn without_leading_ones(shape: &[usize]) -> &[usize] {
    let ones = shape.iter().take_while(|&&d| d == 1).count();
    &shape[ones..]
}

/// Row-major strides of a shape.
pub(crate) fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

/// Element count of a shape (1 for a scalar, 0 if any dimension is 0). For shapes that
/// came from an existing tensor (their count was checked when it was made); a shape that
/// enters from outside goes through [`checked_numel`].
pub(crate) fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Element count of a shape a user (or an op's output rule) asks for: an error naming `op`
/// and the shape when the count, or its size at 8 bytes per element (the widest type and
/// accumulator), does not fit the address space. The product of the non-zero dimensions
/// must fit too (strides are products of trailing dimensions, also of an empty tensor).
pub(crate) fn checked_numel(op: &'static str, shape: &[usize]) -> Result<usize> {
    let fits = |n: &usize| n.checked_mul(8).is_some_and(|b| b <= isize::MAX as usize);
    let span = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d.max(1)))
        .filter(fits);
    match span {
        Some(_) => Ok(shape.iter().product()),
        None => Err(Error::size_overflow(op, shape)),
    }
}

/// [`checked_numel`] for constructors that return no `Result`: panics with the op's error
/// message (as `Vec::with_capacity` panics on capacity overflow).
pub(crate) fn expect_numel(op: &'static str, shape: &[usize]) -> usize {
    checked_numel(op, shape).unwrap_or_else(|e| panic!("{e}"))
}

/// Maps a possibly negative axis (`-1` is the last) to `0..rank`.
pub(crate) fn normalize_axis(op: &'static str, axis: isize, rank: usize) -> Result<usize> {
    let r = rank as isize;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(Error::new(op, ErrorKind::AxisOutOfRange { axis, rank }));
    }
    Ok(a as usize)
}

/// NumPy broadcasting: align trailing dimensions; each pair must be equal or contain a 1.
pub(crate) fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(Error::shapes(
                op,
                a,
                b,
                "trailing dimensions must be equal or 1 (broadcasting)",
            ));
        };
    }
    checked_numel(op, &out)?;
    Ok(out)
}

impl Layout {
    /// A fresh row-major layout.
    pub fn contiguous(shape: &[usize]) -> Self {
        Layout {
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: 0,
        }
    }

    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// True when the elements are row-major and dense from `offset` (size-1 dimensions
    /// may have any stride).
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev() {
            if d != 1 && s != expected {
                return false;
            }
            expected *= d;
        }
        true
    }

    /// The storage range of a contiguous layout.
    pub fn contiguous_range(&self) -> Option<std::ops::Range<usize>> {
        self.is_contiguous()
            .then(|| self.offset..self.offset + self.numel())
    }

    /// This layout seen with `target` shape by broadcasting (stride 0 on new or size-1
    /// dimensions). The caller has checked compatibility.
    pub fn broadcast_to(&self, target: &[usize]) -> Layout {
        let extra = target.len() - self.shape.len();
        let mut strides = vec![0; target.len()];
        for i in 0..self.shape.len() {
            strides[extra + i] = if self.shape[i] == 1 && target[extra + i] != 1 {
                0
            } else {
                self.strides[i]
            };
        }
        Layout {
            shape: target.to_vec(),
            strides,
            offset: self.offset,
        }
    }

    /// Calls `f(start, stride, len)` for every run along the last dimension, in logical
    /// order. A scalar is one run of length 1.
    pub fn for_each_row(&self, mut f: impl FnMut(usize, usize, usize)) {
        for_each_row_n([self], |starts, strides, len| f(starts[0], strides[0], len));
    }

    /// The same elements in logical order under `shape` without moving them, when strides
    /// allow it (PyTorch's `view` rule): each run of dimensions that are laid out one
    /// inside the other may be split or merged freely. `None` when a copy is needed (for
    /// example merging the axes of a transposed matrix). `shape` has the same element
    /// count (checked by the caller).
    pub fn reshaped(&self, shape: &[usize]) -> Option<Layout> {
        if self.numel() == 0 || self.shape.is_empty() {
            return Some(Layout::contiguous(shape).with_offset(self.offset));
        }
        let (old, old_strides) = (&self.shape, &self.strides);
        let mut strides = vec![0; shape.len()];
        // Walk the old dimensions from the last, in chunks whose dimensions nest (stride
        // of one = size times stride of the next); each chunk must be covered exactly by
        // a run of new dimensions, which then get strides inside the chunk.
        let mut view_d = shape.len();
        let mut base = old_strides[old.len() - 1];
        let (mut chunk_numel, mut view_numel) = (1usize, 1usize);
        for d in (0..old.len()).rev() {
            chunk_numel *= old[d];
            let chunk_ends =
                d == 0 || (old[d - 1] != 1 && old_strides[d - 1] != chunk_numel * base);
            if !chunk_ends {
                continue;
            }
            while view_d > 0 && (view_numel < chunk_numel || shape[view_d - 1] == 1) {
                strides[view_d - 1] = view_numel * base;
                view_numel *= shape[view_d - 1];
                view_d -= 1;
            }
            if view_numel != chunk_numel {
                return None;
            }
            if d > 0 {
                base = old_strides[d - 1];
                chunk_numel = 1;
                view_numel = 1;
            }
        }
        (view_d == 0).then(|| Layout {
            shape: shape.to_vec(),
            strides,
            offset: self.offset,
        })
    }

    /// Storage offset of the element at logical (row-major) `index` (below `numel`).
    pub fn offset_of(&self, index: usize) -> usize {
        let mut rem = index;
        let mut off = self.offset;
        for (&size, &stride) in self.shape.iter().zip(&self.strides).rev() {
            off += (rem % size) * stride;
            rem /= size;
        }
        off
    }

    /// Storage offsets of every element in logical (row-major) order.
    #[cfg(test)]
    pub fn offsets(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.numel());
        self.for_each_row(|start, stride, len| out.extend((0..len).map(|i| start + i * stride)));
        out
    }
}

/// Walks `N` layouts of one shape together: `f(starts, inner_strides, len)` for every
/// run along the last dimension, in logical order (a scalar is one run of length 1).
pub(crate) fn for_each_row_n<const N: usize>(
    layouts: [&Layout; N],
    mut f: impl FnMut([usize; N], [usize; N], usize),
) {
    let shape = &layouts[0].shape;
    debug_assert!(layouts.iter().all(|l| &l.shape == shape));
    let rank = shape.len();
    let mut starts = layouts.map(|l| l.offset);
    if rank == 0 {
        f(starts, [1; N], 1);
        return;
    }
    if numel(shape) == 0 {
        return;
    }
    let inner = shape[rank - 1];
    let inner_strides = layouts.map(|l| l.strides[rank - 1]);
    let mut index = vec![0usize; rank - 1];
    loop {
        f(starts, inner_strides, inner);
        // Advance the multi-index over the outer dimensions, last fastest.
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            for (s, l) in starts.iter_mut().zip(&layouts) {
                *s += l.strides[d];
            }
            if index[d] < shape[d] {
                break;
            }
            for (s, l) in starts.iter_mut().zip(&layouts) {
                *s -= l.strides[d] * shape[d];
            }
            index[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposed_offsets_walk_columns() {
        let l = Layout {
            shape: vec![3, 2],
            strides: vec![1, 3],
            offset: 0,
        };
        assert_eq!(l.offsets(), vec![0, 3, 1, 4, 2, 5]);
        assert!(!l.is_contiguous());
        assert!(Layout::contiguous(&[2, 1, 3]).is_contiguous());
    }

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(
            broadcast_shapes("t", &[4, 1, 3], &[2, 1]).unwrap(),
            vec![4, 2, 3]
        );
        assert_eq!(broadcast_shapes("t", &[], &[5]).unwrap(), vec![5]);
        let e = broadcast_shapes("add", &[2, 3], &[4]).unwrap_err();
        assert!(e.to_string().contains("add: shapes [2, 3] and [4]"));
    }

    #[test]
    fn reshaped_views_split_and_merge_nested_axes_only() {
        // [4, 6] transposed to [6, 4] (strides [1, 6]): splitting an axis keeps a view...
        let t = Layout {
            shape: vec![6, 4],
            strides: vec![1, 6],
            offset: 2,
        };
        let split = t.reshaped(&[2, 3, 4]).unwrap();
        assert_eq!(split.offsets(), t.offsets());
        assert_eq!(split.strides, vec![3, 1, 6]);
        // ...merging the transposed axes cannot.
        assert!(t.reshaped(&[24]).is_none());
        // A narrowed last axis ([2, 5] of a [2, 8] row-major buffer) splits into views.
        let n = Layout {
            shape: vec![2, 4],
            strides: vec![8, 1],
            offset: 1,
        };
        assert_eq!(n.reshaped(&[2, 2, 2]).unwrap().offsets(), n.offsets());
        assert!(n.reshaped(&[8]).is_none());
        // Size-1 axes anywhere, and broadcast (stride 0) axes kept whole.
        assert_eq!(n.reshaped(&[1, 2, 1, 4, 1]).unwrap().offsets(), n.offsets());
        let b = Layout::contiguous(&[3]).broadcast_to(&[2, 3]);
        assert_eq!(b.reshaped(&[2, 1, 3]).unwrap().offsets(), b.offsets());
    }

    #[test]
    fn broadcast_layout_repeats_with_zero_stride() {
        let l = Layout::contiguous(&[3]).broadcast_to(&[2, 3]);
        assert_eq!(l.offsets(), vec![0, 1, 2, 0, 1, 2]);
    }
}
