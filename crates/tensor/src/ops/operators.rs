//! `std::ops` for tensors: `+ - * /` between tensors of one precision (NumPy
//! broadcasting), with an `f64` scalar on the right (and on the left for `+ - *`), and
//! unary `-`; owned or borrowed operands alike. Each is the named method's op with its
//! single rounding ([`Tensor::add`], [`Tensor::add_scalar`], ...). Shapes that do not
//! broadcast panic with the op's error message, as `ndarray`'s operators do; code that
//! wants the error calls the method, which returns a `Result`.
//!
//! Mixing precisions does not compile; the message says to cast:
//!
//! ```compile_fail,E0277
//! use mixprec_dtype::{Bf16, F32};
//! use mixprec_tensor::Tensor;
//! let a = Tensor::<F32>::zeros(&[2]);
//! let b = Tensor::<Bf16>::zeros(&[2]);
//! let c = &a + &b; // error: `Bf16` is not the precision `F32`; cast with `.cast::<F32>()`
//! ```
//!
//! ```
//! use mixprec_dtype::F32;
//! use mixprec_tensor::Tensor;
//! let a = Tensor::<F32>::from_f32(&[1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
//! let b = Tensor::<F32>::from_f32(&[10.0, 20.0], &[2]).unwrap();
//! let c = (&a + &b) * 2.0 - &a;
//! assert_eq!(c.to_f32_vec(), vec![21.0, 42.0, 23.0, 44.0]);
//! assert_eq!((-&a).to_f32_vec(), vec![-1.0, -2.0, -3.0, -4.0]);
//! ```

use super::binary::BinaryOp;
use super::unary::UnaryOp;
use crate::error::or_panic;
use crate::tensor::Tensor;
use mixprec_dtype::Dtype;
use std::ops::{Add, Div, Mul, Neg, Sub};

/// `Self` is the precision `D`: what lets operators take a right operand of the left
/// one's precision only, with a message that says to cast otherwise.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not the precision `{D}`: operators take tensors of one precision",
    label = "a `{Self}` operand where `{D}` is needed",
    note = "cast one operand first: `.cast::<{D}>()` (or `.cast::<{Self}>()` on the other)"
)]
pub trait SameDtype<D: Dtype>: Dtype {
    /// The tensor, as the tensor of `D` it is.
    fn same(t: &Tensor<Self>) -> &Tensor<D>;
}

impl<D: Dtype> SameDtype<D> for D {
    fn same(t: &Tensor<D>) -> &Tensor<D> {
        t
    }
}

macro_rules! tensor_operator {
    ($Trait:ident, $method:ident, $variant:ident) => {
        impl<D: Dtype, E: SameDtype<D>> $Trait<&Tensor<E>> for &Tensor<D> {
            type Output = Tensor<D>;
            fn $method(self, rhs: &Tensor<E>) -> Tensor<D> {
                or_panic(self.binary(BinaryOp::$variant, E::same(rhs)))
            }
        }
        impl<D: Dtype, E: SameDtype<D>> $Trait<Tensor<E>> for &Tensor<D> {
            type Output = Tensor<D>;
            fn $method(self, rhs: Tensor<E>) -> Tensor<D> {
                or_panic(self.binary(BinaryOp::$variant, E::same(&rhs)))
            }
        }
        impl<D: Dtype, E: SameDtype<D>> $Trait<&Tensor<E>> for Tensor<D> {
            type Output = Tensor<D>;
            fn $method(self, rhs: &Tensor<E>) -> Tensor<D> {
                or_panic(self.binary(BinaryOp::$variant, E::same(rhs)))
            }
        }
        impl<D: Dtype, E: SameDtype<D>> $Trait<Tensor<E>> for Tensor<D> {
            type Output = Tensor<D>;
            fn $method(self, rhs: Tensor<E>) -> Tensor<D> {
                or_panic(self.binary(BinaryOp::$variant, E::same(&rhs)))
            }
        }
        impl<D: Dtype> $Trait<f64> for &Tensor<D> {
            type Output = Tensor<D>;
            fn $method(self, rhs: f64) -> Tensor<D> {
                or_panic(self.binary_scalar(BinaryOp::$variant, rhs))
            }
        }
        impl<D: Dtype> $Trait<f64> for Tensor<D> {
            type Output = Tensor<D>;
            fn $method(self, rhs: f64) -> Tensor<D> {
                or_panic(self.binary_scalar(BinaryOp::$variant, rhs))
            }
        }
    };
}

tensor_operator!(Add, add, Add);
tensor_operator!(Sub, sub, Sub);
tensor_operator!(Mul, mul, Mul);
tensor_operator!(Div, div, Div);

impl<D: Dtype> Neg for &Tensor<D> {
    type Output = Tensor<D>;
    /// `-x` (exact).
    fn neg(self) -> Tensor<D> {
        or_panic(self.unary(UnaryOp::Neg))
    }
}

impl<D: Dtype> Neg for Tensor<D> {
    type Output = Tensor<D>;
    /// `-x` (exact).
    fn neg(self) -> Tensor<D> {
        -&self
    }
}

/// `s op x` for the operators where the scalar may come first: `s + x` and `s * x` as
/// `x + s` and `x * s`; `s - x` as `(-x) + s` (the negation is exact, so one rounding).
macro_rules! scalar_first {
    ($Trait:ident, $method:ident, |$s:ident, $x:ident| $body:expr) => {
        impl<D: Dtype> $Trait<&Tensor<D>> for f64 {
            type Output = Tensor<D>;
            fn $method(self, rhs: &Tensor<D>) -> Tensor<D> {
                let ($s, $x) = (self, rhs);
                $body
            }
        }
        impl<D: Dtype> $Trait<Tensor<D>> for f64 {
            type Output = Tensor<D>;
            fn $method(self, rhs: Tensor<D>) -> Tensor<D> {
                $Trait::$method(self, &rhs)
            }
        }
    };
}

scalar_first!(Add, add, |s, x| x + s);
scalar_first!(Mul, mul, |s, x| x * s);
scalar_first!(Sub, sub, |s, x| -x + s);

#[cfg(test)]
mod tests {
    use crate::{Rng, Tensor};
    use mixprec_dtype::Dtype;
    use mixprec_dtype::F32;
    use mixprec_testing::for_each_dtype;

    fn bits<D: Dtype>(t: &Tensor<D>) -> (Vec<usize>, Vec<u8>) {
        (t.shape().to_vec(), t.to_le_bytes())
    }

    /// Every operator form is its method, bit for bit (the same single rounding), with
    /// broadcasting, owned and borrowed operands and scalars on either side.
    fn operators_are_their_methods<D: Dtype>() {
        let mut rng = Rng::seed(5);
        let a = Tensor::<F32>::randn(&[3, 4], 0.0, 3.0, &mut rng)
            .unwrap()
            .cast::<D>();
        let b = Tensor::<F32>::randn(&[4], 1.0, 2.0, &mut rng)
            .unwrap()
            .cast::<D>();
        let s = 0.3;
        let pairs: [(Tensor<D>, Tensor<D>); 4] = [
            (&a + &b, Tensor::add(&a, &b).unwrap()),
            (a.clone() - &b, Tensor::sub(&a, &b).unwrap()),
            (&a * b.clone(), Tensor::mul(&a, &b).unwrap()),
            (a.clone() / b.clone(), Tensor::div(&a, &b).unwrap()),
        ];
        for (op, method) in &pairs {
            assert_eq!(bits(op), bits(method));
        }
        let scalars: [(Tensor<D>, Tensor<D>); 8] = [
            (&a + s, a.add_scalar(s)),
            (a.clone() - s, a.sub_scalar(s)),
            (&a * s, a.mul_scalar(s)),
            (&a / s, a.div_scalar(s)),
            (s + &a, a.add_scalar(s)),
            (s * a.clone(), a.mul_scalar(s)),
            (s - &a, Tensor::neg(&a).add_scalar(s)),
            (-a.clone(), Tensor::neg(&a)),
        ];
        for (op, method) in &scalars {
            assert_eq!(bits(op), bits(method));
        }
    }
    for_each_dtype!(operators_are_their_methods);

    #[test]
    fn negation_is_exact_and_keeps_signed_zeros_and_nan() {
        let a = Tensor::<F32>::from_f32(&[0.0, -0.0, f32::INFINITY, 1e-45], &[4]).unwrap();
        let n: Vec<u32> = (-&a).to_f32_vec().iter().map(|v| v.to_bits()).collect();
        let want: Vec<u32> = [-0.0f32, 0.0, f32::NEG_INFINITY, -1e-45]
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(n, want);
        assert!((-Tensor::<F32>::from_f32(&[f32::NAN], &[1]).unwrap()).to_f32_vec()[0].is_nan());
    }

    #[test]
    #[should_panic(expected = "add")]
    fn shapes_that_do_not_broadcast_panic_with_the_op_error() {
        let a = Tensor::<F32>::zeros(&[2, 3]);
        let b = Tensor::<F32>::zeros(&[4]);
        let _ = &a + &b;
    }
}
