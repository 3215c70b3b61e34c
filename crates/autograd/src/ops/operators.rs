//! `std::ops` for vars, as for tensors: `+ - * /` between vars of one precision (NumPy
//! broadcasting, gradients summed back), with an `f64` scalar on the right (and on the
//! left for `+ - *`), and unary `-`; owned or borrowed operands alike. Each records the
//! named method's op ([`Var::add`], [`Var::add_scalar`], ...). Shapes that do not
//! broadcast panic with the op's error message; the methods return a `Result`.
//!
//! Mixing precisions does not compile; the message says to cast:
//!
//! ```compile_fail,E0277
//! use mixprec_autograd::Tape;
//! use mixprec_dtype::{Bf16, F32};
//! use mixprec_tensor::Tensor;
//! let tape = Tape::new();
//! let a = tape.leaf(Tensor::<F32>::zeros(&[2]));
//! let b = tape.leaf(Tensor::<Bf16>::zeros(&[2]));
//! let c = &a * &b; // error: `Bf16` is not the precision `F32`; cast with `.cast::<F32>()`
//! ```
//!
//! ```
//! use mixprec_autograd::Tape;
//! use mixprec_dtype::F32;
//! use mixprec_tensor::Tensor;
//! let tape = Tape::new();
//! let x = tape.leaf(Tensor::<F32>::from_f32(&[1.0, 2.0], &[2]).unwrap());
//! let y = (&x * &x) * 3.0 - &x; // 3x^2 - x
//! let g = y.sum_all().backward().unwrap();
//! assert_eq!(g.get(&x).unwrap().to_f32_vec(), vec![5.0, 11.0]); // 6x - 1
//! ```

use crate::var::Var;
use mixprec_dtype::Dtype;
use std::ops::{Add, Div, Mul, Neg, Sub};

/// `Self` is the precision `D`: what lets operators take a right operand of the left
/// one's precision only, with a message that says to cast otherwise.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not the precision `{D}`: operators take vars of one precision",
    label = "a `{Self}` operand where `{D}` is needed",
    note = "cast one operand first: `.cast::<{D}>()` (or `.cast::<{Self}>()` on the other)"
)]
pub trait SameVarDtype<D: Dtype>: Dtype {
    /// The var, as the var of `D` it is.
    fn same(v: &Var<Self>) -> &Var<D>;
}

impl<D: Dtype> SameVarDtype<D> for D {
    fn same(v: &Var<D>) -> &Var<D> {
        v
    }
}

macro_rules! var_operator {
    ($Trait:ident, $method:ident, $scalar:ident) => {
        impl<D: Dtype, E: SameVarDtype<D>> $Trait<&Var<E>> for &Var<D> {
            type Output = Var<D>;
            fn $method(self, rhs: &Var<E>) -> Var<D> {
                Var::$method(self, E::same(rhs)).unwrap_or_else(|e| panic!("{e}"))
            }
        }
        impl<D: Dtype, E: SameVarDtype<D>> $Trait<Var<E>> for &Var<D> {
            type Output = Var<D>;
            fn $method(self, rhs: Var<E>) -> Var<D> {
                $Trait::$method(self, &rhs)
            }
        }
        impl<D: Dtype, E: SameVarDtype<D>> $Trait<&Var<E>> for Var<D> {
            type Output = Var<D>;
            fn $method(self, rhs: &Var<E>) -> Var<D> {
                $Trait::$method(&self, rhs)
            }
        }
        impl<D: Dtype, E: SameVarDtype<D>> $Trait<Var<E>> for Var<D> {
            type Output = Var<D>;
            fn $method(self, rhs: Var<E>) -> Var<D> {
                $Trait::$method(&self, &rhs)
            }
        }
        impl<D: Dtype> $Trait<f64> for &Var<D> {
            type Output = Var<D>;
            fn $method(self, rhs: f64) -> Var<D> {
                self.$scalar(rhs)
            }
        }
        impl<D: Dtype> $Trait<f64> for Var<D> {
            type Output = Var<D>;
            fn $method(self, rhs: f64) -> Var<D> {
                self.$scalar(rhs)
            }
        }
    };
}

var_operator!(Add, add, add_scalar);
var_operator!(Sub, sub, sub_scalar);
var_operator!(Mul, mul, mul_scalar);
var_operator!(Div, div, div_scalar);

impl<D: Dtype> Neg for &Var<D> {
    type Output = Var<D>;
    /// `-x` (exact); `dx = -g`.
    fn neg(self) -> Var<D> {
        Var::neg(self)
    }
}

impl<D: Dtype> Neg for Var<D> {
    type Output = Var<D>;
    /// `-x` (exact); `dx = -g`.
    fn neg(self) -> Var<D> {
        Var::neg(&self)
    }
}

/// `s + x` and `s * x` as `x + s` and `x * s`; `s - x` as `(-x) + s` (one rounding).
macro_rules! scalar_first {
    ($Trait:ident, $method:ident, |$s:ident, $x:ident| $body:expr) => {
        impl<D: Dtype> $Trait<&Var<D>> for f64 {
            type Output = Var<D>;
            fn $method(self, rhs: &Var<D>) -> Var<D> {
                let ($s, $x) = (self, rhs);
                $body
            }
        }
        impl<D: Dtype> $Trait<Var<D>> for f64 {
            type Output = Var<D>;
            fn $method(self, rhs: Var<D>) -> Var<D> {
                $Trait::$method(self, &rhs)
            }
        }
    };
}

scalar_first!(Add, add, |s, x| x.add_scalar(s));
scalar_first!(Mul, mul, |s, x| x.mul_scalar(s));
scalar_first!(Sub, sub, |s, x| Var::neg(x).add_scalar(s));

#[cfg(test)]
mod tests {
    use crate::Tape;
    use mixprec_dtype::{Bf16, F32};
    use mixprec_tensor::{Rng, Tensor};

    /// Operator expressions record the same ops as the methods: same values and
    /// gradients, bit for bit (BF16, so roundings show).
    #[test]
    fn operators_record_the_methods() {
        let mut rng = Rng::seed(9);
        let a0 = Tensor::<F32>::randn(&[3, 4], 0.0, 2.0, &mut rng)
            .unwrap()
            .cast::<Bf16>();
        let b0 = Tensor::<F32>::randn(&[4], 1.0, 1.0, &mut rng)
            .unwrap()
            .cast::<Bf16>();
        let run = |ops: bool| {
            let tape = Tape::new();
            let (a, b) = (tape.leaf(a0.clone()), tape.leaf(b0.clone()));
            let y = if ops {
                (0.5 - (&a * &b + 1.5) / (a.clone() - &b) * 0.25) * 3.0 + -&a
            } else {
                let q = a
                    .mul(&b)
                    .unwrap()
                    .add_scalar(1.5)
                    .div(&a.sub(&b).unwrap())
                    .unwrap();
                let t = q.mul_scalar(0.25).neg().add_scalar(0.5).mul_scalar(3.0);
                t.add(&a.neg()).unwrap()
            };
            let g = y.cast::<F32>().sum_all().backward().unwrap();
            let bits = |t: &Tensor<Bf16>| t.to_le_bytes();
            (
                bits(y.value()),
                bits(g.get(&a).unwrap()),
                bits(g.get(&b).unwrap()),
            )
        };
        assert_eq!(run(true), run(false));
    }

    #[test]
    fn division_by_a_scalar_has_its_gradient() {
        let tape = Tape::new();
        let x = tape.leaf(Tensor::<F32>::from_f32(&[3.0, -6.0], &[2]).unwrap());
        let y = &x / 3.0 - 1.0;
        assert_eq!(y.value().to_f32_vec(), vec![0.0, -3.0]);
        let g = y.sum_all().backward().unwrap();
        assert_eq!(g.get(&x).unwrap().to_f32_vec(), vec![1.0 / 3.0; 2]);
    }

    #[test]
    #[should_panic(expected = "mul")]
    fn shapes_that_do_not_broadcast_panic_with_the_op_error() {
        let tape = Tape::new();
        let a = tape.leaf(Tensor::<F32>::zeros(&[2, 3]));
        let b = tape.leaf(Tensor::<F32>::zeros(&[4]));
        let _ = &a * &b;
    }
}
