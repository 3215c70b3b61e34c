//! [`Mask`] (booleans from comparisons, for `where_cond` and `masked_fill`) and
//! [`Indices`] (integer ids: class labels, token ids, argmax results).

use crate::error::{Error, ErrorKind, Result};
use crate::layout::numel;

/// A boolean tensor, row-major and contiguous. Not differentiable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mask {
    shape: Vec<usize>,
    data: Vec<bool>,
}

impl Mask {
    /// A mask from row-major values; errors if the length does not match the shape.
    pub fn from_vec(data: Vec<bool>, shape: &[usize]) -> Result<Self> {
        if data.len() != numel(shape) {
            return Err(Error::new(
                "Mask::from_vec",
                ErrorKind::LengthMismatch {
                    shape: shape.to_vec(),
                    len: data.len(),
                },
            ));
        }
        Ok(Mask {
            shape: shape.to_vec(),
            data,
        })
    }

    /// The `n x n` causal attention mask: `true` above the diagonal (the future positions
    /// to hide), `false` on and below it.
    pub fn causal(n: usize) -> Self {
        let data = (0..n * n).map(|i| i % n > i / n).collect();
        Mask {
            shape: vec![n, n],
            data,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The values, row-major.
    pub fn as_slice(&self) -> &[bool] {
        &self.data
    }

    /// How many entries are `true`.
    pub fn count(&self) -> usize {
        self.data.iter().filter(|&&b| b).count()
    }

    /// Elementwise negation.
    pub fn not(&self) -> Mask {
        Mask {
            shape: self.shape.clone(),
            data: self.data.iter().map(|b| !b).collect(),
        }
    }
}

/// Integer indices (class labels, token ids, positions), row-major and contiguous.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Indices {
    shape: Vec<usize>,
    data: Vec<usize>,
}

impl Indices {
    /// Indices from row-major values; errors if the length does not match the shape.
    pub fn from_vec(data: Vec<usize>, shape: &[usize]) -> Result<Self> {
        if data.len() != numel(shape) {
            return Err(Error::new(
                "Indices::from_vec",
                ErrorKind::LengthMismatch {
                    shape: shape.to_vec(),
                    len: data.len(),
                },
            ));
        }
        Ok(Indices {
            shape: shape.to_vec(),
            data,
        })
    }

    /// A 1-D index vector.
    pub fn from_slice(data: &[usize]) -> Self {
        Indices {
            shape: vec![data.len()],
            data: data.to_vec(),
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The values, row-major.
    pub fn as_slice(&self) -> &[usize] {
        &self.data
    }

    /// Number of indices.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Errors (naming `op`) unless every index is below `bound`.
    pub(crate) fn check_bound(&self, op: &'static str, bound: usize) -> Result<()> {
        match self.data.iter().find(|&&i| i >= bound) {
            Some(&i) => Err(Error::index(op, i, bound)),
            None => Ok(()),
        }
    }
}
