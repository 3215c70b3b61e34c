//! Creation: from data, constants, ranges, identity, and seeded random tensors.

use crate::cpu::alloc::{try_collect, try_scratch, try_zeroed, zeroed};
use crate::error::{Error, Result};
use crate::layout::{checked_numel, expect_numel};
use crate::rng::Rng;
use crate::tensor::{Tensor, check_len, fp8_current_scale};
use mixprec_dtype::{Acc, Dtype, convert_slice_scaled_saturating};

impl<D: Dtype> Tensor<D> {
    /// A tensor owning `data` (row-major) with `shape`. For FP8 types the scale is 1, so
    /// the elements are the values; use [`Tensor::from_f32_scaled`] to quantise.
    ///
    /// ```
    /// use mixprec_tensor::Tensor;
    /// use mixprec_dtype::{Bf16, Dtype};
    /// let t = Tensor::from_vec(vec![Bf16::ONE; 6], &[2, 3]).unwrap();
    /// assert_eq!(t.shape(), &[2, 3]);
    /// assert!(Tensor::from_vec(vec![Bf16::ONE; 5], &[2, 3]).is_err());
    /// ```
    pub fn from_vec(data: Vec<D>, shape: &[usize]) -> Result<Self> {
        check_len("from_vec", shape, data.len())?;
        Ok(Self::from_parts(data, shape, 1.0))
    }

    /// Like [`Tensor::from_vec`], copying from a slice.
    pub fn from_slice(data: &[D], shape: &[usize]) -> Result<Self> {
        check_len("from_slice", shape, data.len())?;
        let copy = try_collect("from_slice", shape, data.iter().copied())?;
        Ok(Self::from_parts(copy, shape, 1.0))
    }

    /// Rounds f32 values into `D` once (nearest even; FP8 with current scaling).
    pub fn from_f32(values: &[f32], shape: &[usize]) -> Result<Self> {
        check_len("from_f32", shape, values.len())?;
        let acc = try_collect(
            "from_f32",
            shape,
            values.iter().map(|&v| D::Acc::from_f32(v)),
        )?;
        Self::from_acc_vec("from_f32", &acc, shape)
    }

    /// Rounds f64 values into `D` once (nearest even, no double rounding through f32;
    /// FP8: current scaling, then one saturating rounding of the f32 product).
    pub fn from_f64(values: &[f64], shape: &[usize]) -> Result<Self> {
        check_len("from_f64", shape, values.len())?;
        if D::DTYPE.is_fp8() {
            let acc = try_collect(
                "from_f64",
                shape,
                values.iter().map(|&v| D::Acc::from_f64(v)),
            )?;
            return Self::from_acc_vec("from_f64", &acc, shape);
        }
        let data = try_collect("from_f64", shape, values.iter().map(|&v| D::from_f64(v)))?;
        Ok(Self::from_parts(data, shape, 1.0))
    }

    /// FP8 quantisation with an explicit scale: stores `from_f32_saturating(v * scale)`
    /// and remembers the scale. For non-FP8 types the scale must be 1.
    pub fn from_f32_scaled(values: &[f32], shape: &[usize], scale: f32) -> Result<Self> {
        check_len("from_f32_scaled", shape, values.len())?;
        if !D::DTYPE.is_fp8() && scale != 1.0 {
            return Err(Error::invalid(
                "from_f32_scaled",
                format!(
                    "only FP8 tensors carry a scale; {} needs scale 1, got {scale}",
                    D::NAME
                ),
            ));
        }
        let mut data = try_scratch::<D>("from_f32_scaled", shape, values.len())?;
        convert_slice_scaled_saturating(values, &mut data, scale)
            .map_err(|e| Error::new("from_f32_scaled", crate::ErrorKind::Dtype(e)))?;
        Ok(Self::from_parts(data, shape, scale))
    }

    /// All zeros. Panics (with the op's message) when the shape's size overflows; see
    /// [`Tensor::try_zeros`] for an error instead, and for a fallible allocation.
    pub fn zeros(shape: &[usize]) -> Self {
        Self::from_parts(zeroed::<D>(expect_numel("zeros", shape)), shape, 1.0)
    }

    /// All zeros, or an error naming the shape when its size overflows or the memory
    /// cannot be allocated (`zeros: cannot allocate 4.0 PiB for shape [...]`).
    ///
    /// ```
    /// use mixprec_tensor::Tensor;
    /// use mixprec_dtype::F32;
    /// assert!(Tensor::<F32>::try_zeros(&[1 << 32, 1 << 32]).is_err()); // overflows
    /// assert!(Tensor::<F32>::try_zeros(&[1 << 40, 1 << 10]).is_err()); // 4 PiB
    /// assert_eq!(Tensor::<F32>::try_zeros(&[2, 3]).unwrap().numel(), 6);
    /// ```
    pub fn try_zeros(shape: &[usize]) -> Result<Self> {
        let n = checked_numel("zeros", shape)?;
        Ok(Self::from_parts(
            try_zeroed::<D>("zeros", shape, n)?,
            shape,
            1.0,
        ))
    }

    /// All ones. Panics (with the op's message) when the shape's size overflows.
    pub fn ones(shape: &[usize]) -> Self {
        Self::from_parts(vec![D::ONE; expect_numel("ones", shape)], shape, 1.0)
    }

    /// Every element `value`, rounded once into `D` (FP8: current scaling). Panics (with
    /// the op's message) when the shape's size overflows.
    pub fn full(shape: &[usize], value: f64) -> Self {
        let n = expect_numel("full", shape);
        if D::DTYPE.is_fp8() {
            let scale = fp8_current_scale((value as f32).abs(), D::MAX.to_f32());
            return Self::from_parts(
                vec![D::from_f32_saturating(value as f32 * scale); n],
                shape,
                scale,
            );
        }
        Self::from_parts(vec![D::from_f64(value); n], shape, 1.0)
    }

    /// `start, start + step, ...` while below `end` (above, for a negative step), computed
    /// in f64 as `start + i * step` and rounded once.
    pub fn arange(start: f64, end: f64, step: f64) -> Result<Self> {
        if step == 0.0 || !step.is_finite() || !start.is_finite() || !end.is_finite() {
            return Err(Error::invalid(
                "arange",
                format!(
                    "start {start}, end {end} and step {step} must be finite and step non-zero"
                ),
            ));
        }
        let count = ((end - start) / step).ceil().max(0.0) as usize;
        let values = try_collect(
            "arange",
            &[count],
            (0..count).map(|i| start + i as f64 * step),
        )?;
        Self::from_f64(&values, &[count])
    }

    /// The `n x n` identity.
    pub fn eye(n: usize) -> Self {
        let mut data = vec![D::ZERO; expect_numel("eye", &[n, n])];
        for i in 0..n {
            data[i * n + i] = D::ONE;
        }
        Self::from_parts(data, &[n, n], 1.0)
    }

    /// Uniform in `[lo, hi)` from the explicit generator, drawn in f64 and rounded once.
    pub fn rand(shape: &[usize], lo: f64, hi: f64, rng: &mut Rng) -> Result<Self> {
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(Error::invalid(
                "rand",
                format!("need finite lo < hi, got lo {lo}, hi {hi}"),
            ));
        }
        let mut values = try_values("rand", shape)?;
        values.extend((0..values.capacity()).map(|_| lo + (hi - lo) * rng.next_f64()));
        Self::from_f64(&values, shape)
    }

    /// Normal with `mean` and `std` from the explicit generator, drawn in f64 and rounded
    /// once.
    pub fn randn(shape: &[usize], mean: f64, std: f64, rng: &mut Rng) -> Result<Self> {
        if !(mean.is_finite() && std.is_finite() && std >= 0.0) {
            return Err(Error::invalid(
                "randn",
                format!("need finite mean and std >= 0, got mean {mean}, std {std}"),
            ));
        }
        let mut values = try_values("randn", shape)?;
        values.extend((0..values.capacity()).map(|_| mean + std * rng.next_normal()));
        Self::from_f64(&values, shape)
    }
}

/// An empty f64 buffer with room for exactly `shape`'s elements (capacity == count), or an
/// error naming `op` when the count overflows or the memory cannot be had.
fn try_values(op: &'static str, shape: &[usize]) -> Result<Vec<f64>> {
    let n = checked_numel(op, shape)?;
    crate::cpu::alloc::try_with_capacity(op, shape, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::{Bf16, E4M3, F32, F64};
    use mixprec_testing::for_each_dtype;

    fn creation_matches_f64<D: Dtype>() {
        let t = Tensor::<D>::arange(0.0, 5.0, 1.0).unwrap();
        assert_eq!(
            t.to_f64_vec(),
            vec![0.0, 1.0, 2.0, 3.0, 4.0],
            "small integers are exact in every type"
        );
        assert_eq!(
            Tensor::<D>::eye(3).to_f64_vec(),
            vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        );
        assert_eq!(Tensor::<D>::zeros(&[2, 0]).numel(), 0);
        assert_eq!(Tensor::<D>::ones(&[]).item().unwrap().to_f64(), 1.0);
        assert_eq!(Tensor::<D>::full(&[2], -3.0).to_f64_vec(), vec![-3.0, -3.0]);
        let mut rng = Rng::seed(3);
        let r = Tensor::<D>::rand(&[1000], -2.0, 2.0, &mut rng).unwrap();
        assert!(r.to_f64_vec().iter().all(|v| (-2.0..=2.0).contains(v)));
        assert_eq!(
            r.nbytes(),
            1000 * D::BYTES,
            "stored at the type's own width"
        );
    }
    for_each_dtype!(creation_matches_f64);

    #[test]
    fn bad_input_errors_name_the_op() {
        let e = Tensor::<F32>::from_vec(vec![F32(1.0); 5], &[2, 3]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "from_vec: shape [2, 3] holds 6 elements but 5 were given"
        );
        assert!(
            Tensor::<F32>::arange(0.0, 1.0, 0.0)
                .unwrap_err()
                .to_string()
                .starts_with("arange:")
        );
        assert!(Tensor::<F32>::rand(&[2], 1.0, 1.0, &mut Rng::seed(0)).is_err());
        assert!(Tensor::<F32>::randn(&[2], 0.0, -1.0, &mut Rng::seed(0)).is_err());
        assert!(Tensor::<Bf16>::from_f32_scaled(&[1.0], &[1], 2.0).is_err());
        assert!(Tensor::<E4M3>::from_f32_scaled(&[1.0], &[1], 0.0).is_err());
        let e = Tensor::<F64>::zeros(&[2]).item().unwrap_err();
        assert!(e.to_string().starts_with("item: shape [2]"));
    }

    #[test]
    fn fp8_uses_current_scaling() {
        let t = Tensor::<E4M3>::from_f32(&[0.5, -2.0, 0.001], &[3]).unwrap();
        assert_eq!(t.scale(), 128.0, "largest power of two <= 448 / amax 2");
        let v = t.to_f64_vec();
        assert_eq!(&v[..2], &[0.5, -2.0]);
        assert!(
            (v[2] - 0.001).abs() <= 0.001 * 2f64.powi(-3),
            "within one E4M3 ulp"
        );
        let q = Tensor::<E4M3>::from_f32_scaled(&[1000.0], &[1], 1.0).unwrap();
        assert_eq!(q.to_f64_vec(), vec![448.0], "explicit scale saturates");
    }

    #[test]
    fn from_f64_rounds_once() {
        let x = 1.0 + 2f64.powi(-8) + 2f64.powi(-40);
        let t = Tensor::<Bf16>::from_f64(&[x], &[1]).unwrap();
        assert_eq!(t.to_f64_vec(), vec![1.0 + 2f64.powi(-7)]);
    }
}
