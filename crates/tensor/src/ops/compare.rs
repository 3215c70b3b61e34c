//! Comparisons producing a [`Mask`] (not differentiable), with NumPy broadcasting.
//! Values compare in `D::Acc`; NaN compares unequal to everything, as in IEEE.

use crate::cpu::map::broadcast_values;
use crate::error::Result;
use crate::layout::broadcast_shapes;
use crate::mask::Mask;
use crate::tensor::Tensor;
use mixprec_dtype::{Acc, Dtype};
use num_traits::{One, Zero};

macro_rules! compare_ops {
    ($($(#[$doc:meta])* $name:ident, $scalar:ident => |$a:ident, $b:ident| $body:expr;)*) => {
        impl<D: Dtype> Tensor<D> {
            $(
                $(#[$doc])*
                /// Broadcasts by NumPy rules; errors when the shapes do not broadcast.
                pub fn $name(&self, other: &Tensor<D>) -> Result<Mask> {
                    let shape = broadcast_shapes(stringify!($name), self.shape(), other.shape())?;
                    let bits = broadcast_values(stringify!($name), &shape, [self, other], |[$a, $b]| {
                        if $body { D::Acc::one() } else { D::Acc::zero() }
                    })?;
                    let flags = bits.iter().map(|v| !v.is_zero());
                    Mask::from_vec(crate::cpu::alloc::try_collect(stringify!($name), &shape, flags)?, &shape)
                }

                $(#[$doc])*
                /// Scalar form (the scalar is rounded to the compute precision).
                pub fn $scalar(&self, scalar: f64) -> Mask {
                    let $b = D::Acc::from_f64(scalar);
                    let data = self.to_acc_vec().into_iter().map(|$a| $body).collect();
                    Mask::from_vec(data, self.shape()).expect("shape matches")
                }
            )*
        }
    };
}

compare_ops! {
    /// `a == b` elementwise.
    eq, eq_scalar => |a, b| a == b;
    /// `a != b` elementwise (true where either is NaN).
    ne, ne_scalar => |a, b| a != b;
    /// `a < b` elementwise.
    lt, lt_scalar => |a, b| a < b;
    /// `a <= b` elementwise.
    le, le_scalar => |a, b| a <= b;
    /// `a > b` elementwise.
    gt, gt_scalar => |a, b| a > b;
    /// `a >= b` elementwise.
    ge, ge_scalar => |a, b| a >= b;
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::F32;
    use mixprec_testing::for_each_dtype;

    fn comparisons<D: Dtype>() {
        let a = Tensor::<D>::from_f64(&[1.0, 2.0, 3.0, -1.0], &[2, 2]).unwrap();
        let b = Tensor::<D>::from_f64(&[2.0, 2.0], &[2]).unwrap();
        assert_eq!(a.lt(&b).unwrap().as_slice(), &[true, false, false, true]);
        assert_eq!(a.le(&b).unwrap().as_slice(), &[true, true, false, true]);
        assert_eq!(a.eq(&b).unwrap().as_slice(), &[false, true, false, false]);
        assert_eq!(a.ne(&b).unwrap().as_slice(), &[true, false, true, true]);
        assert_eq!(a.gt_scalar(1.5).as_slice(), &[false, true, true, false]);
        assert_eq!(a.ge(&b).unwrap().shape(), &[2, 2]);
    }
    for_each_dtype!(comparisons);

    #[test]
    fn nan_and_errors() {
        let a = Tensor::<F32>::from_f32(&[f32::NAN], &[1]).unwrap();
        assert_eq!(a.eq(&a).unwrap().as_slice(), &[false]);
        assert_eq!(a.ne(&a).unwrap().as_slice(), &[true]);
        let e = Tensor::<F32>::zeros(&[3])
            .lt(&Tensor::<F32>::zeros(&[2]))
            .unwrap_err();
        assert!(e.to_string().starts_with("lt: shapes [3] and [2]"));
    }
}
