//! Element-wise binary ops with NumPy broadcasting, and their scalar forms. Each
//! computes in `D::Acc` and rounds once into `D`.

use super::map::{map_unary, zip_binary};
use crate::error::{Result, or_panic};
use crate::tensor::Tensor;
use mixprec_dtype::{Acc, Dtype};
use num_traits::Float;

/// Defines broadcasting binary ops and their scalar forms.
macro_rules! binary_ops {
    ($($(#[$doc:meta])* $name:ident, $scalar:ident => |$a:ident, $b:ident| $body:expr;)*) => {
        impl<D: Dtype> Tensor<D> {
            $(
                $(#[$doc])*
                ///
                /// Broadcasts by NumPy rules; errors (naming the op and both shapes) when
                /// the shapes do not broadcast.
                pub fn $name(&self, other: &Tensor<D>) -> Result<Tensor<D>> {
                    zip_binary(stringify!($name), self, other, |$a: D::Acc, $b: D::Acc| $body)
                }

                $(#[$doc])*
                ///
                /// Scalar form: the scalar is rounded to the compute precision first.
                pub fn $scalar(&self, scalar: f64) -> Tensor<D> {
                    let $b = D::Acc::from_f64(scalar);
                    or_panic(map_unary(stringify!($scalar), self, |$a: D::Acc| $body))
                }
            )*
        }
    };
}

binary_ops! {
    /// `a + b`.
    add, add_scalar => |a, b| a + b;
    /// `a - b`.
    sub, sub_scalar => |a, b| a - b;
    /// `a * b`.
    mul, mul_scalar => |a, b| a * b;
    /// `a / b`.
    div, div_scalar => |a, b| a / b;
    /// `max(a, b)`; NaN if either is NaN (PyTorch's `maximum`).
    maximum, maximum_scalar => |a, b| if a.is_nan() || b.is_nan() { D::Acc::nan() } else { a.max(b) };
    /// `min(a, b)`; NaN if either is NaN (PyTorch's `minimum`).
    minimum, minimum_scalar => |a, b| if a.is_nan() || b.is_nan() { D::Acc::nan() } else { a.min(b) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::F32;
    use mixprec_testing::{TestRng, Tolerance, assert_close, for_each_dtype};
    use proptest::prelude::*;

    type Op<D> = fn(&Tensor<D>, &Tensor<D>) -> Result<Tensor<D>>;
    type Case<D> = (&'static str, Op<D>, fn(f64, f64) -> f64);

    fn binary_ops_match_f64<D: Dtype>() {
        let mut rng = TestRng::new(42);
        // Same shape, a row broadcast, and a column broadcast against a transposed view.
        let a = Tensor::<D>::from_f64(&rng.vec(6 * 50, -4.0, 4.0), &[6, 50]).unwrap();
        let b_full = Tensor::<D>::from_f64(&rng.vec(6 * 50, 0.5, 3.0), &[6, 50]).unwrap();
        let b_row = Tensor::<D>::from_f64(&rng.vec(50, 0.5, 3.0), &[50]).unwrap();
        let b_col = Tensor::<D>::from_f64(&rng.vec(6, 0.5, 3.0), &[6, 1]).unwrap();
        let a_t = a
            .transpose(0, 1)
            .unwrap()
            .contiguous()
            .transpose(0, 1)
            .unwrap();
        let ops: [Case<D>; 6] = [
            ("add", Tensor::add, |x, y| x + y),
            ("sub", Tensor::sub, |x, y| x - y),
            ("mul", Tensor::mul, |x, y| x * y),
            ("div", Tensor::div, |x, y| x / y),
            ("maximum", Tensor::maximum, f64::max),
            ("minimum", Tensor::minimum, f64::min),
        ];
        let tol = Tolerance::rounded_once::<D>();
        for (name, op, reference) in ops {
            for (x, y) in [(&a, &b_full), (&a, &b_row), (&a_t, &b_col)] {
                let got = op(x, y).unwrap();
                assert_eq!(got.shape(), &[6, 50]);
                let (xs, ys) = (
                    x.to_f64_vec(),
                    y.broadcast_to(&[6, 50]).unwrap().to_f64_vec(),
                );
                let want: Vec<f64> = xs.iter().zip(&ys).map(|(&u, &v)| reference(u, v)).collect();
                assert_close(
                    &format!("{name}<{}> {:?} {:?}", D::NAME, x.shape(), y.shape()),
                    &got.to_f64_vec(),
                    &want,
                    tol,
                );
            }
        }
        let s = a.mul_scalar(0.5).to_f64_vec();
        let want: Vec<f64> = a.to_f64_vec().iter().map(|v| v * 0.5).collect();
        assert_close("mul_scalar", &s, &want, tol);
    }
    for_each_dtype!(binary_ops_match_f64);

    #[test]
    fn mismatched_shapes_error_with_both_shapes() {
        let a = Tensor::<F32>::zeros(&[2, 3]);
        let b = Tensor::<F32>::zeros(&[4]);
        let e = a.add(&b).unwrap_err();
        assert_eq!(
            e.to_string(),
            "add: shapes [2, 3] and [4] are incompatible: trailing dimensions must be equal or 1 (broadcasting)"
        );
        assert!(a.div(&b).unwrap_err().to_string().starts_with("div:"));
    }

    #[test]
    fn maximum_propagates_nan() {
        let a = Tensor::<F32>::from_f32(&[f32::NAN, 1.0], &[2]).unwrap();
        let b = Tensor::<F32>::from_f32(&[0.0, f32::NAN], &[2]).unwrap();
        assert!(
            a.maximum(&b)
                .unwrap()
                .to_f32_vec()
                .iter()
                .all(|v| v.is_nan())
        );
    }

    proptest! {
        /// Broadcasting: output shape follows NumPy, and every element equals the f64 op on
        /// the broadcast operands (F64, so exact).
        #[test]
        fn broadcast_shapes_and_values(
            shape in prop::collection::vec(1usize..4, 0..4),
            ones in prop::collection::vec(any::<bool>(), 4),
            drop in 0usize..3,
        ) {
            use mixprec_dtype::F64;
            let n: usize = shape.iter().product();
            let a = Tensor::<F64>::from_f64(&(0..n).map(|i| i as f64).collect::<Vec<_>>(), &shape).unwrap();
            // b: drop leading axes, set some axes to 1.
            let b_shape: Vec<usize> = shape.iter().enumerate().skip(drop.min(shape.len()))
                .map(|(i, &d)| if ones[i] { 1 } else { d }).collect();
            let m: usize = b_shape.iter().product();
            let b = Tensor::<F64>::from_f64(&(0..m).map(|i| 100.0 * i as f64).collect::<Vec<_>>(), &b_shape).unwrap();
            let c = a.add(&b).unwrap();
            prop_assert_eq!(c.shape(), &shape[..]);
            let bb = b.broadcast_to(&shape).unwrap().to_f64_vec();
            let expected: Vec<f64> = a.to_f64_vec().iter().zip(&bb).map(|(x, y)| x + y).collect();
            prop_assert_eq!(c.to_f64_vec(), expected);
            let d = b.sub(&a).unwrap();
            prop_assert_eq!(d.shape(), &shape[..]);
        }
    }
}
