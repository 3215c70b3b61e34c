//! Ops are data: every [`UnaryOp`], [`BinaryOp`] and [`ReduceOp`] variant has a CPU
//! implementation (its forward and backward forms run and give values of the right shape;
//! a reduction equals its method), a name, and a device kernel name, unique across
//! variants.

use mixprec_dtype::{Bf16, Dtype, E4M3, F32, F64};
use mixprec_tensor::{BinaryOp, ReduceOp, Saves, Tensor, UnaryOp};
use std::collections::HashSet;

fn every_unary_op_runs<D: Dtype>() {
    let x = Tensor::<D>::from_f64(&[0.25, 0.5, 1.0, 2.0, 3.0, 0.75], &[2, 3]).unwrap();
    let g = Tensor::<D>::from_f64(&[1.0, -1.0, 0.5, 2.0, 1.0, -0.5], &[2, 3]).unwrap();
    for op in UnaryOp::EXAMPLES {
        let y = x.unary(op).unwrap();
        assert_eq!(y.shape(), x.shape(), "{op:?}");
        let saved = match op.saves() {
            Saves::Input => &x,
            Saves::Output => &y,
            Saves::Nothing => &g,
        };
        let dx = Tensor::unary_backward(op, saved, &g).unwrap();
        assert_eq!(dx.shape(), x.shape(), "{op:?} backward");
        // Every backward form is linear in g: a zero gradient gives zeros (positive
        // inputs, so no 0 * inf).
        let zero = Tensor::unary_backward(op, saved, &g.mul_scalar(0.0)).unwrap();
        assert!(zero.to_f64_vec().iter().all(|v| *v == 0.0), "{op:?}");
    }
}

fn every_binary_op_runs<D: Dtype>() {
    let a = Tensor::<D>::from_f64(&[0.25, 0.5, 1.0, 2.0, 3.0, 0.75], &[2, 3]).unwrap();
    let b = Tensor::<D>::from_f64(&[1.0, 0.5, 2.0], &[3]).unwrap();
    for op in BinaryOp::EXAMPLES {
        let y = a.binary(op, &b).unwrap();
        assert_eq!(y.shape(), a.shape(), "{op:?}");
        // The scalar form is the broadcast of a one-element tensor.
        let s = a.binary_scalar(op, 0.5).unwrap();
        let one = Tensor::<D>::from_f64(&[0.5], &[1]).unwrap();
        assert_eq!(
            s.to_f64_vec(),
            a.binary(op, &one).unwrap().to_f64_vec(),
            "{op:?}"
        );
    }
}

fn every_reduce_op_runs<D: Dtype>() {
    let x = Tensor::<D>::from_f64(&[0.25, 0.5, 1.0, 2.0, 3.0, 0.75], &[2, 3]).unwrap();
    for op in ReduceOp::EXAMPLES {
        for (axes, keepdim, shape) in [
            (&[-1][..], false, &[2][..]),
            (&[0][..], true, &[1, 3][..]),
            (&[0, 1][..], false, &[][..]),
        ] {
            let y = x.reduce(op, axes, keepdim).unwrap();
            assert_eq!(y.shape(), shape, "{op:?} over {axes:?}");
            let by_method = match op {
                ReduceOp::Sum => x.sum(axes, keepdim),
                ReduceOp::Mean => x.mean(axes, keepdim),
                ReduceOp::Max => x.max(axes, keepdim),
                ReduceOp::Min => x.min(axes, keepdim),
                ReduceOp::Var { correction } => x.var(axes, keepdim, correction),
            }
            .unwrap();
            let bits = |t: &Tensor<D>| {
                t.to_f64_vec()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(&y), bits(&by_method), "{op:?} over {axes:?}");
        }
    }
}

#[test]
fn every_variant_has_a_cpu_implementation() {
    every_reduce_op_runs::<F32>();
    every_reduce_op_runs::<Bf16>();
    every_reduce_op_runs::<E4M3>();
    every_reduce_op_runs::<F64>();
    every_unary_op_runs::<F32>();
    every_unary_op_runs::<Bf16>();
    every_unary_op_runs::<E4M3>();
    every_unary_op_runs::<F64>();
    every_binary_op_runs::<F32>();
    every_binary_op_runs::<Bf16>();
    every_binary_op_runs::<E4M3>();
    every_binary_op_runs::<F64>();
}

#[test]
fn every_variant_has_a_unique_name_and_kernel() {
    let mut names = HashSet::new();
    let mut kernels = HashSet::new();
    for op in UnaryOp::EXAMPLES {
        let (fwd, bwd) = op.kernel();
        assert!(
            names.insert(op.name()) && names.insert(op.backward_name()),
            "{op:?}"
        );
        assert!(kernels.insert(fwd) && kernels.insert(bwd), "{op:?}");
    }
    for op in BinaryOp::EXAMPLES {
        assert!(
            names.insert(op.name()) && names.insert(op.scalar_name()),
            "{op:?}"
        );
        assert!(kernels.insert(op.kernel()), "{op:?}");
    }
    for op in ReduceOp::EXAMPLES {
        assert!(names.insert(op.name()), "{op:?}");
        assert!(kernels.insert(op.kernel()), "{op:?}");
    }
}

/// The examples list every variant: this match stops compiling when a variant is added,
/// and the test fails until the new variant is in `EXAMPLES`.
#[test]
fn the_examples_cover_every_variant() {
    let unary = |op: UnaryOp| match op {
        UnaryOp::Neg => 0,
        UnaryOp::Abs => 1,
        UnaryOp::Exp => 2,
        UnaryOp::Log => 3,
        UnaryOp::Sqrt => 4,
        UnaryOp::Rsqrt => 5,
        UnaryOp::Recip => 6,
        UnaryOp::Square => 7,
        UnaryOp::Tanh => 8,
        UnaryOp::Sigmoid => 9,
        UnaryOp::Relu => 10,
        UnaryOp::Gelu => 11,
        UnaryOp::GeluTanh => 12,
        UnaryOp::Silu => 13,
        UnaryOp::Powf(_) => 14,
        UnaryOp::Clamp(..) => 15,
    };
    let seen: HashSet<usize> = UnaryOp::EXAMPLES.iter().map(|&op| unary(op)).collect();
    assert_eq!(seen.len(), 16);
    let binary = |op: BinaryOp| match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
        BinaryOp::Maximum => 4,
        BinaryOp::Minimum => 5,
        BinaryOp::DivRhsBackward => 6,
        BinaryOp::MaximumShare => 7,
        BinaryOp::MinimumShare => 8,
        BinaryOp::Equal => 9,
        BinaryOp::ScaledMul(_) => 10,
    };
    let seen: HashSet<usize> = BinaryOp::EXAMPLES.iter().map(|&op| binary(op)).collect();
    assert_eq!(seen.len(), 11);
    let reduce = |op: ReduceOp| match op {
        ReduceOp::Sum => 0,
        ReduceOp::Mean => 1,
        ReduceOp::Max => 2,
        ReduceOp::Min => 3,
        ReduceOp::Var { .. } => 4,
    };
    let seen: HashSet<usize> = ReduceOp::EXAMPLES.iter().map(|&op| reduce(op)).collect();
    assert_eq!(seen.len(), 5);
}
