//! `where_cond` and `masked_fill`: choose elements by a [`Mask`] (causal attention
//! masks). Values are copied, so results are exact (FP8: rescaled by current scaling).

use crate::backend::on_device;
use crate::cpu::map::broadcast_values;
use crate::error::{Error, Result};
use crate::layout::broadcast_shapes;
use crate::mask::Mask;
use crate::storage::one_device;
use crate::tensor::Tensor;
use mixprec_dtype::{Acc, Dtype};
use num_traits::{One, Zero};

impl<D: Dtype> Tensor<D> {
    /// `mask ? self : other`, elementwise, with the mask and both tensors broadcast
    /// together by NumPy rules.
    pub fn where_cond(&self, mask: &Mask, other: &Tensor<D>) -> Result<Tensor<D>> {
        let device = one_device("where_cond", [self.device(), other.device()])?;
        let shape = broadcast_shapes("where_cond", self.shape(), other.shape())?;
        broadcast_shapes("where_cond", &shape, mask.shape())?;
        on_device!(device, b => b.where_cond(self, mask, other))
    }

    /// The CPU kernel of [`Tensor::where_cond`], after its front's checks.
    pub(crate) fn where_cond_on_cpu(&self, mask: &Mask, other: &Tensor<D>) -> Result<Tensor<D>> {
        let shape = broadcast_shapes("where_cond", self.shape(), other.shape())?;
        let shape = broadcast_shapes("where_cond", &shape, mask.shape())?;
        let m = mask_tensor::<D>("where_cond", mask)?;
        let values = broadcast_values("where_cond", &shape, [&m, self, other], |[c, a, b]| {
            if c.is_zero() { b } else { a }
        })?;
        Tensor::from_acc_vec("where_cond", &values, &shape)
    }

    /// `self` with `value` wherever `mask` is true (mask broadcast to `self`'s shape).
    /// `value` may be `-inf` (the usual attention mask fill).
    pub fn masked_fill(&self, mask: &Mask, value: f64) -> Result<Tensor<D>> {
        let shape = broadcast_shapes("masked_fill", self.shape(), mask.shape())?;
        if shape != self.shape() {
            return Err(Error::shapes(
                "masked_fill",
                self.shape(),
                mask.shape(),
                "the mask must broadcast to the tensor's shape",
            ));
        }
        on_device!(self.device(), b => b.masked_fill(self, mask, value))
    }

    /// The CPU kernel of [`Tensor::masked_fill`], after its front's checks.
    pub(crate) fn masked_fill_on_cpu(&self, mask: &Mask, value: f64) -> Result<Tensor<D>> {
        let shape = self.shape();
        let fill = D::Acc::from_f64(value);
        if let Some(out) = fill_repeating(self, mask, fill) {
            return out;
        }
        let m = mask_tensor::<D>("masked_fill", mask)?;
        let values = broadcast_values("masked_fill", shape, [&m, self], |[c, a]| {
            if c.is_zero() { a } else { fill }
        })?;
        Tensor::from_acc_vec("masked_fill", &values, shape)
    }
}

/// Fast path of `masked_fill` for a contiguous, unscaled, non-FP8 tensor whose trailing
/// dimensions are the mask's (the mask repeats along the leading axes, as a causal mask
/// over `[batch, heads, t, t]` scores): elements are copied as stored, the fill rounded
/// once into `D` — the values of the general path, without decoding.
fn fill_repeating<D: Dtype>(t: &Tensor<D>, mask: &Mask, fill: D::Acc) -> Option<Result<Tensor<D>>> {
    let core = crate::layout::without_leading_ones(mask.shape());
    let period = crate::layout::numel(core);
    if !t.is_contiguous()
        || t.scale != 1.0
        || D::DTYPE.is_fp8()
        || period == 0
        || !t.shape().ends_with(core)
    {
        return None;
    }
    Some(fill_periods(t, mask, D::from_acc(fill), period))
}

/// The body of [`fill_repeating`]: `fill` where the mask, repeated every `period`
/// elements, is true.
fn fill_periods<D: Dtype>(t: &Tensor<D>, mask: &Mask, fill: D, period: usize) -> Result<Tensor<D>> {
    let src = t.try_elements("masked_fill")?;
    let mut out = crate::cpu::alloc::try_scratch::<D>("masked_fill", t.shape(), src.len())?;
    for (o, s) in out.chunks_exact_mut(period).zip(src.chunks_exact(period)) {
        for ((o, &s), &m) in o.iter_mut().zip(s).zip(mask.as_slice()) {
            *o = if m { fill } else { s };
        }
    }
    Ok(Tensor::from_parts(out, t.shape(), 1.0))
}

/// The mask as 0/1 in `D` (exact in every type), so it can walk the broadcast engine;
/// an error naming `op` when its memory cannot be had.
fn mask_tensor<D: Dtype>(op: &'static str, mask: &Mask) -> Result<Tensor<D>> {
    let (one, zero) = (D::from_acc(D::Acc::one()), D::from_acc(D::Acc::zero()));
    let flags = mask.as_slice().iter().map(|&b| if b { one } else { zero });
    Tensor::from_vec(
        crate::cpu::alloc::try_collect(op, mask.shape(), flags)?,
        mask.shape(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::F32;
    use mixprec_testing::for_each_dtype;

    fn causal_mask_fill<D: Dtype>() {
        // Values exact in every type (E5M2 holds 10 but not 9).
        let scores =
            Tensor::<D>::from_f64(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0], &[3, 3])
                .unwrap();
        let masked = scores
            .masked_fill(&Mask::causal(3), f64::NEG_INFINITY)
            .unwrap();
        let ninf = if D::DTYPE.is_fp8() {
            -D::MAX.to_f64() / f64::from(masked.scale())
        } else {
            f64::NEG_INFINITY
        };
        let v = masked.to_f64_vec();
        assert_eq!(v[0], 1.0);
        assert_eq!(v[3], 4.0);
        assert_eq!(v[8], 10.0);
        // FP8 results are quantised saturating (the scaling recipes' rule): -inf -> -max.
        assert_eq!(v[1], ninf, "{}", D::NAME);
        let picked = scores
            .where_cond(&Mask::causal(3), &scores.neg())
            .unwrap()
            .to_f64_vec();
        assert_eq!(
            picked,
            vec![-1.0, 2.0, 3.0, -4.0, -5.0, 6.0, -7.0, -8.0, -10.0]
        );
    }
    for_each_dtype!(causal_mask_fill);

    #[test]
    fn mask_shape_errors() {
        let t = Tensor::<F32>::zeros(&[2, 2]);
        let e = t.masked_fill(&Mask::causal(3), 0.0).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("masked_fill: shapes [2, 2] and [3, 3]")
        );
        let wide = Mask::from_vec(vec![true; 4], &[2, 1, 2]).unwrap();
        assert!(
            t.masked_fill(&wide, 0.0).is_err(),
            "mask may not enlarge the tensor"
        );
        assert!(t.where_cond(&Mask::causal(3), &t).is_err());
    }
}
