//! `concat` and `stack`: join tensors along an axis. Values are copied exactly; FP8
//! inputs with different scales are requantised with current scaling.

use crate::error::{Error, Result};
use crate::layout::normalize_axis;
use crate::tensor::Tensor;
use mixprec_dtype::Dtype;

impl<D: Dtype> Tensor<D> {
    /// Pads `axis` with `before` zeros in front and `after` behind (keeping the scale):
    /// the gradient of `narrow`. The zeros come from zero-initialised pages, so only the
    /// copied slice costs memory traffic.
    ///
    /// ```
    /// use mixprec_tensor::Tensor;
    /// use mixprec_dtype::F32;
    /// let t = Tensor::<F32>::from_f32(&[1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// let p = t.pad_axis(1, 1, 2).unwrap();
    /// assert_eq!(p.shape(), &[2, 5]);
    /// assert_eq!(p.to_f32_vec(), vec![0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 3.0, 4.0, 0.0, 0.0]);
    /// ```
    pub fn pad_axis(&self, axis: isize, before: usize, after: usize) -> Result<Tensor<D>> {
        let a = normalize_axis("pad_axis", axis, self.rank())?;
        let mut shape = self.shape().to_vec();
        let len = shape[a];
        shape[a] = len + before + after;
        let outer: usize = shape[..a].iter().product();
        let inner: usize = shape[a + 1..].iter().product();
        let src = self.elements();
        let mut out: Vec<D> = crate::alloc::zeroed::<D>(shape.iter().product());
        let (run, full) = (len * inner, shape[a] * inner);
        for o in 0..outer {
            out[o * full + before * inner..][..run].copy_from_slice(&src[o * run..][..run]);
        }
        Ok(Tensor::from_parts(out, &shape, self.scale))
    }

    /// Joins `tensors` along existing `axis`. All must have the same rank and equal sizes
    /// off `axis`. Errors on an empty list or mismatched shapes.
    pub fn concat(tensors: &[&Tensor<D>], axis: isize) -> Result<Tensor<D>> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::invalid("concat", "needs at least one tensor"))?;
        let a = normalize_axis("concat", axis, first.rank())?;
        for t in &tensors[1..] {
            let same_off_axis = t.rank() == first.rank()
                && t.shape()
                    .iter()
                    .zip(first.shape())
                    .enumerate()
                    .all(|(d, (x, y))| d == a || x == y);
            if !same_off_axis {
                return Err(Error::shapes(
                    "concat",
                    first.shape(),
                    t.shape(),
                    "all sizes but the concatenation axis must match",
                ));
            }
        }
        let mut shape = first.shape().to_vec();
        shape[a] = tensors.iter().map(|t| t.shape()[a]).sum();
        let outer: usize = shape[..a].iter().product();
        let inner: usize = shape[a + 1..].iter().product();
        let same_scale = tensors.iter().all(|t| t.scale == first.scale);
        if !same_scale {
            // FP8 with differing scales: join the values and requantise once.
            let parts: Vec<Vec<D::Acc>> = tensors.iter().map(|t| t.to_acc_vec()).collect();
            let mut out = Vec::with_capacity(shape.iter().product());
            for o in 0..outer {
                for (t, p) in tensors.iter().zip(&parts) {
                    let len = t.shape()[a] * inner;
                    out.extend_from_slice(&p[o * len..(o + 1) * len]);
                }
            }
            return Ok(Tensor::from_acc_vec(&out, &shape));
        }
        let parts: Vec<Vec<D>> = tensors.iter().map(|t| t.to_vec()).collect();
        let mut out = Vec::with_capacity(shape.iter().product());
        for o in 0..outer {
            for (t, p) in tensors.iter().zip(&parts) {
                let len = t.shape()[a] * inner;
                out.extend_from_slice(&p[o * len..(o + 1) * len]);
            }
        }
        Ok(Tensor::from_parts(out, &shape, first.scale))
    }

    /// Stacks equally shaped `tensors` along a new `axis` (in `-(rank+1)..=rank`).
    pub fn stack(tensors: &[&Tensor<D>], axis: isize) -> Result<Tensor<D>> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::invalid("stack", "needs at least one tensor"))?;
        for t in &tensors[1..] {
            if t.shape() != first.shape() {
                return Err(Error::shapes(
                    "stack",
                    first.shape(),
                    t.shape(),
                    "all tensors must have the same shape",
                ));
            }
        }
        let expanded: Vec<Tensor<D>> = tensors
            .iter()
            .map(|t| t.unsqueeze(axis))
            .collect::<Result<_>>()
            .map_err(|e| Error { op: "stack", ..e })?;
        let refs: Vec<&Tensor<D>> = expanded.iter().collect();
        Tensor::concat(&refs, axis).map_err(|e| Error { op: "stack", ..e })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::{E4M3, F32};
    use mixprec_testing::for_each_dtype;

    fn joins_copy_exactly<D: Dtype>() {
        let a = Tensor::<D>::arange(0.0, 6.0, 1.0)
            .unwrap()
            .reshape(&[2, 3])
            .unwrap();
        let b = Tensor::<D>::arange(6.0, 8.0, 1.0)
            .unwrap()
            .reshape(&[2, 1])
            .unwrap();
        let c = Tensor::concat(&[&a, &b], 1).unwrap();
        assert_eq!(c.shape(), &[2, 4]);
        assert_eq!(c.to_f64_vec(), vec![0.0, 1.0, 2.0, 6.0, 3.0, 4.0, 5.0, 7.0]);
        let s = Tensor::stack(&[&a, &a], 0).unwrap();
        assert_eq!(s.shape(), &[2, 2, 3]);
        let s1 = Tensor::stack(&[&a, &a], -1).unwrap();
        assert_eq!(s1.shape(), &[2, 3, 2]);
        assert_eq!(s1.to_f64_vec()[..4], [0.0, 0.0, 1.0, 1.0]);
    }
    for_each_dtype!(joins_copy_exactly);

    #[test]
    fn join_errors_and_fp8_rescale() {
        let a = Tensor::<F32>::zeros(&[2, 3]);
        let b = Tensor::<F32>::zeros(&[3, 3]);
        assert!(
            Tensor::concat(&[&a, &b], 1)
                .unwrap_err()
                .to_string()
                .starts_with("concat: shapes [2, 3] and [3, 3]")
        );
        assert!(Tensor::<F32>::concat(&[], 0).is_err());
        assert!(
            Tensor::stack(&[&a, &b], 0)
                .unwrap_err()
                .to_string()
                .starts_with("stack:")
        );
        let x = Tensor::<E4M3>::from_f32(&[1.0, 2.0], &[2]).unwrap();
        let y = Tensor::<E4M3>::from_f32(&[104.0], &[1]).unwrap();
        assert_ne!(x.scale(), y.scale());
        assert_eq!(
            Tensor::concat(&[&x, &y], 0).unwrap().to_f64_vec(),
            vec![1.0, 2.0, 104.0]
        );
    }
}
