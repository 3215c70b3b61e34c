//! `concat` and `stack`: join tensors along an axis. Values are copied exactly; FP8
//! inputs with different scales are requantised with current scaling.

use crate::backend::on_device;
use crate::error::{Error, Result};
use crate::layout::normalize_axis;
use crate::storage::one_device;
use crate::tensor::Tensor;
use mixprec_dtype::Dtype;
use num_traits::Zero;

/// True when two shapes have the same rank and sizes everywhere but along `axis`.
fn same_off_axis(a: &[usize], b: &[usize], axis: usize) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .enumerate()
            .all(|(d, (x, y))| d == axis || x == y)
}

/// The axis and shape of [`Tensor::pad_axis`]'s result, or its errors: an axis out of
/// range, a size that overflows.
fn padded_shape(
    shape: &[usize],
    axis: isize,
    before: usize,
    after: usize,
) -> Result<(usize, Vec<usize>)> {
    let a = normalize_axis("pad_axis", axis, shape.len())?;
    let mut padded = shape.to_vec();
    let len = padded[a];
    padded[a] = len
        .checked_add(before)
        .and_then(|n| n.checked_add(after))
        .ok_or_else(|| Error::size_overflow("pad_axis", shape))?;
    crate::layout::checked_numel("pad_axis", &padded)?;
    Ok((a, padded))
}

/// The axis and shape of [`Tensor::concat`]'s result, or its errors: no tensor, an axis
/// out of range, sizes off the axis that differ, a size that overflows.
fn concat_shape<D: Dtype>(tensors: &[&Tensor<D>], axis: isize) -> Result<(usize, Vec<usize>)> {
    let first = tensors
        .first()
        .ok_or_else(|| Error::invalid("concat", "needs at least one tensor"))?;
    let a = normalize_axis("concat", axis, first.rank())?;
    for t in &tensors[1..] {
        if !same_off_axis(first.shape(), t.shape(), a) {
            return Err(Error::shapes(
                "concat",
                first.shape(),
                t.shape(),
                "all sizes but the concatenation axis must match",
            ));
        }
    }
    let mut shape = first.shape().to_vec();
    shape[a] = tensors
        .iter()
        .try_fold(0usize, |n, t| n.checked_add(t.shape()[a]))
        .ok_or_else(|| Error::size_overflow("concat", first.shape()))?;
    crate::layout::checked_numel("concat", &shape)?;
    Ok((a, shape))
}

impl<D: Dtype> Tensor<D> {
    /// Pads `axis` with `before` zeros in front and `after` behind (keeping the scale):
    /// the gradient of `narrow`. Written in one pass into a reused buffer.
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
        padded_shape(self.shape(), axis, before, after)?;
        on_device!(self.device(), b => b.pad_axis(self, axis, before, after))
    }

    /// The CPU kernel of [`Tensor::pad_axis`], after its front's checks.
    pub(crate) fn pad_axis_on_cpu(
        &self,
        axis: isize,
        before: usize,
        after: usize,
    ) -> Result<Tensor<D>> {
        let (a, shape) = padded_shape(self.shape(), axis, before, after)?;
        let len = self.shape()[a];
        let inner: usize = shape[a + 1..].iter().product();
        let src = self.try_elements("pad_axis")?;
        // A reused buffer (no page faults) written in one pass: zeros, the run, zeros.
        let mut out: Vec<D> =
            crate::cpu::alloc::try_scratch::<D>("pad_axis", &shape, shape.iter().product())?;
        let (run, full) = (len * inner, shape[a] * inner);
        let zero = D::from_acc(D::Acc::zero());
        if full > 0 {
            for (o, dst) in out.chunks_exact_mut(full).enumerate() {
                let (head, rest) = dst.split_at_mut(before * inner);
                let (mid, tail) = rest.split_at_mut(run);
                head.fill(zero);
                mid.copy_from_slice(&src[o * run..][..run]);
                tail.fill(zero);
            }
        }
        Ok(Tensor::from_parts(out, &shape, self.scale))
    }

    /// `self + src.pad_axis(axis, start, ..)` without building the padded tensor: `src`
    /// (shaped like `self` except along `axis`) is added into the range
    /// `start..start + len` of `axis`, each sum rounded once into `D`; elements outside the
    /// range are kept as they are (so a `-0` there stays `-0`, where adding a padded zero
    /// would give `+0`). Consumes `self` and updates its storage in place when nothing
    /// else shares it (the accumulation of `narrow` gradients). Errors when the ranks or
    /// the other sizes differ or the range exceeds the axis.
    pub fn add_narrow(self, axis: isize, start: usize, src: &Tensor<D>) -> Result<Tensor<D>> {
        let device = one_device("add_narrow", [self.device(), src.device()])?;
        let a = normalize_axis("add_narrow", axis, self.rank())?;
        let len = src.shape().get(a).copied().unwrap_or(0);
        let fits = same_off_axis(self.shape(), src.shape(), a)
            && start
                .checked_add(len)
                .is_some_and(|end| end <= self.shape()[a]);
        if !fits {
            return Err(Error::shapes(
                "add_narrow",
                self.shape(),
                src.shape(),
                "src must match self off the axis and fit in the range start..start + len",
            ));
        }
        on_device!(device, b => b.add_narrow(self, axis, start, src))
    }

    /// The CPU kernel of [`Tensor::add_narrow`], after its front's checks.
    pub(crate) fn add_narrow_on_cpu(
        mut self,
        axis: isize,
        start: usize,
        src: &Tensor<D>,
    ) -> Result<Tensor<D>> {
        let a = normalize_axis("add_narrow", axis, self.rank())?;
        let len = src.shape()[a];
        let shape = self.shape().to_vec();
        let outer: usize = shape[..a].iter().product();
        let inner: usize = shape[a + 1..].iter().product();
        let (run, full) = (len * inner, shape[a] * inner);
        let plain = |t: &Tensor<D>| t.scale == 1.0 && !D::DTYPE.is_fp8();
        let whole = self.layout.offset == 0 && self.is_contiguous() && plain(&self);
        if whole
            && plain(src)
            && let Some(dst) = self.storage_mut()
        {
            let src = src.try_elements("add_padded")?;
            if let (Some(dst), Some(src)) = (
                crate::cpu::simd::f32_view_mut(dst),
                crate::cpu::simd::f32_view(&src),
            ) {
                // F32: add the stored values directly (the same f32 sums).
                crate::cpu::simd::multiversion(|| {
                    for o in 0..outer {
                        let d = &mut dst[o * full + start * inner..][..run];
                        d.iter_mut()
                            .zip(&src[o * run..][..run])
                            .for_each(|(x, &y)| *x += y);
                    }
                });
                return Ok(self);
            }
            const CHUNK: usize = crate::cpu::map::CHUNK;
            let (mut bd, mut bs) = ([D::Acc::zero(); CHUNK], [D::Acc::zero(); CHUNK]);
            for o in 0..outer {
                let d = &mut dst[o * full + start * inner..][..run];
                for (d, s) in d.chunks_mut(CHUNK).zip(src[o * run..][..run].chunks(CHUNK)) {
                    let (bd, bs) = (&mut bd[..d.len()], &mut bs[..d.len()]);
                    D::to_acc_slice(d, bd);
                    D::to_acc_slice(s, bs);
                    crate::cpu::map::apply_binary(bd, bs, &|x, y| x + y);
                    D::from_acc_slice(bd, d);
                }
            }
            return Ok(self);
        }
        self.add(&src.pad_axis(a as isize, start, shape[a] - start - len)?)
    }

    /// Joins `tensors` along existing `axis`. All must have the same rank and equal sizes
    /// off `axis`. Errors on an empty list or mismatched shapes.
    pub fn concat(tensors: &[&Tensor<D>], axis: isize) -> Result<Tensor<D>> {
        concat_shape(tensors, axis)?;
        let device = one_device("concat", tensors.iter().map(|t| t.device()))?;
        on_device!(device, b => b.concat(tensors, axis))
    }

    /// The CPU kernel of [`Tensor::concat`], after its front's checks.
    pub(crate) fn concat_on_cpu(tensors: &[&Tensor<D>], axis: isize) -> Result<Tensor<D>> {
        let (a, shape) = concat_shape(tensors, axis)?;
        let first = tensors[0];
        let outer: usize = shape[..a].iter().product();
        let inner: usize = shape[a + 1..].iter().product();
        let same_scale = tensors.iter().all(|t| t.scale == first.scale);
        if !same_scale {
            // FP8 with differing scales: join the values and requantise once.
            let parts = tensors
                .iter()
                .map(|t| t.try_to_acc_vec("concat"))
                .collect::<Result<Vec<_>>>()?;
            let mut out =
                crate::cpu::alloc::try_with_capacity("concat", &shape, shape.iter().product())?;
            for o in 0..outer {
                for (t, p) in tensors.iter().zip(&parts) {
                    let len = t.shape()[a] * inner;
                    out.extend_from_slice(&p[o * len..(o + 1) * len]);
                }
            }
            return Tensor::from_acc_vec("concat", &out, &shape);
        }
        let parts = tensors
            .iter()
            .map(|t| t.try_elements("concat"))
            .collect::<Result<Vec<_>>>()?;
        let mut out =
            crate::cpu::alloc::try_with_capacity("concat", &shape, shape.iter().product())?;
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

    /// `add_narrow` gives `self + pad(src)` (one rounding per sum, in every type) along
    /// each axis, in place when the storage is unshared and by copy when it is shared;
    /// the shared original is left untouched.
    fn add_narrow_matches_add_of_padded<D: Dtype>() {
        let mut rng = mixprec_testing::TestRng::new(77);
        let shape = [3, 5, 4];
        let base = Tensor::<D>::from_f64(&rng.vec(60, -4.0, 4.0), &shape).unwrap();
        for axis in 0..3 {
            let mut part = shape;
            part[axis] = 2;
            let src =
                Tensor::<D>::from_f64(&rng.vec(part.iter().product(), -4.0, 4.0), &part).unwrap();
            let start = shape[axis] - 2 - 1;
            let padded = src.pad_axis(axis as isize, start, 1).unwrap();
            let want = base.add(&padded).unwrap().to_f64_vec();
            let kept = base.clone();
            let shared = base.clone().add_narrow(axis as isize, start, &src).unwrap();
            assert_eq!(shared.to_f64_vec(), want, "shared storage, axis {axis}");
            assert_eq!(kept.to_f64_vec(), base.to_f64_vec());
            let own = Tensor::<D>::from_f64(&base.to_f64_vec(), &shape).unwrap();
            let own = own.add_narrow(axis as isize, start, &src).unwrap();
            assert_eq!(own.to_f64_vec(), want, "in place, axis {axis}");
        }
        let err = base
            .add_narrow(1, 4, &Tensor::<D>::zeros(&[3, 2, 4]))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("add_narrow: shapes [3, 5, 4] and [3, 2, 4]")
        );
    }
    for_each_dtype!(add_narrow_matches_add_of_padded);

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
