//! Ops are data: every variant of [`UnaryOp`], [`BinaryOp`], [`ReduceOp`],
//! [`ArgReduceOp`], [`CompareOp`], [`RowOp`], [`IndexOp`] and [`PoolOp`] has a CPU
//! implementation (its forward and backward forms run and give values of the right shape;
//! a variant equals its familiar method bit for bit), a name, and a device kernel name,
//! unique across variants; every [`Primitive`] of the backend contract has a unique name
//! and kernel.

use mixprec_dtype::{Bf16, Dtype, E4M3, F32, F64};
use mixprec_tensor::{
    ArgReduceOp, BinaryOp, CompareOp, IndexOp, Indices, Pool2dParams, PoolOp, Primitive, ReduceOp,
    RowOp, Saves, Tensor, UnaryOp,
};
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

fn bits<D: Dtype>(t: &Tensor<D>) -> Vec<u64> {
    t.to_f64_vec().iter().map(|v| v.to_bits()).collect()
}

fn every_compare_op_runs<D: Dtype>() {
    let a = Tensor::<D>::from_f64(&[0.25, 0.5, 1.0, 2.0, 0.5, 0.75], &[2, 3]).unwrap();
    let b = Tensor::<D>::from_f64(&[1.0, 0.5, 2.0], &[3]).unwrap();
    for op in CompareOp::ALL {
        let m = a.compare(op, &b).unwrap();
        let by_method = match op {
            CompareOp::Eq => a.eq(&b),
            CompareOp::Ne => a.ne(&b),
            CompareOp::Lt => a.lt(&b),
            CompareOp::Le => a.le(&b),
            CompareOp::Gt => a.gt(&b),
            CompareOp::Ge => a.ge(&b),
        }
        .unwrap();
        assert_eq!(m.as_slice(), by_method.as_slice(), "{op:?}");
        // The scalar form is the broadcast of a one-element tensor.
        let one = Tensor::<D>::from_f64(&[0.5], &[1]).unwrap();
        let s = a.compare_scalar(op, 0.5).unwrap();
        assert_eq!(
            s.as_slice(),
            a.compare(op, &one).unwrap().as_slice(),
            "{op:?}"
        );
    }
}

fn every_arg_reduce_op_runs<D: Dtype>() {
    let x = Tensor::<D>::from_f64(&[0.25, 3.0, 1.0, 2.0, 0.5, 0.75], &[2, 3]).unwrap();
    for op in ArgReduceOp::ALL {
        let i = x.arg_reduce(op, -1, false).unwrap();
        let by_method = match op {
            ArgReduceOp::Argmax => x.argmax(-1, false),
            ArgReduceOp::Argmin => x.argmin(-1, false),
        }
        .unwrap();
        assert_eq!(i.as_slice(), by_method.as_slice(), "{op:?}");
    }
}

fn every_row_op_runs<D: Dtype>() {
    let x = Tensor::<D>::from_f64(&[0.25, 3.0, 1.0, 2.0, 0.5, 0.75], &[2, 3]).unwrap();
    let g = Tensor::<D>::from_f64(&[1.0, -1.0, 0.5, 2.0, 1.0, -0.5], &[2, 3]).unwrap();
    for op in RowOp::ALL {
        let y = x.row_op(op, -1).unwrap();
        let dx = y.row_op_backward(op, &g, -1).unwrap();
        let (by_method, dx_by_method) = match op {
            RowOp::Softmax => (x.softmax(-1), y.softmax_backward(&g, -1)),
            RowOp::LogSoftmax => (x.log_softmax(-1), y.log_softmax_backward(&g, -1)),
        };
        assert_eq!(bits(&y), bits(&by_method.unwrap()), "{op:?}");
        assert_eq!(bits(&dx), bits(&dx_by_method.unwrap()), "{op:?} backward");
    }
}

fn every_index_op_runs<D: Dtype>() {
    let x = Tensor::<D>::from_f64(&[0.25, 3.0, 1.0, 2.0, 0.5, 0.75], &[2, 3]).unwrap();
    let ids = Indices::from_vec(vec![2, 0, 0, 1], &[2, 2]).unwrap();
    for op in IndexOp::ALL {
        let y = x.index(op, 1, &ids).unwrap();
        let by_method = match op {
            IndexOp::IndexSelect => x.index_select(1, &ids),
            IndexOp::Gather => x.gather(1, &ids),
        }
        .unwrap();
        assert_eq!(bits(&y), bits(&by_method), "{op:?}");
        let dx = y.index_backward(op, x.shape(), 1, &ids).unwrap();
        assert_eq!(dx.shape(), x.shape(), "{op:?} backward");
        let dx_by_method = match op {
            IndexOp::IndexSelect => y.index_select_backward(x.shape(), 1, &ids),
            IndexOp::Gather => y.gather_backward(x.shape(), 1, &ids),
        }
        .unwrap();
        assert_eq!(bits(&dx), bits(&dx_by_method), "{op:?} backward");
    }
}

fn every_pool_op_runs<D: Dtype>() {
    let values: Vec<f64> = (0..16).map(|i| f64::from(i) * 0.25).collect();
    let x = Tensor::<D>::from_f64(&values, &[1, 1, 4, 4]).unwrap();
    let p = Pool2dParams::square(2);
    for op in PoolOp::ALL {
        let y = x.pool2d(op, p).unwrap();
        assert_eq!(y.shape(), &[1, 1, 2, 2], "{op:?}");
        let by_method = match op {
            PoolOp::Max => x.max_pool2d(p),
            PoolOp::Avg => x.avg_pool2d(p),
        }
        .unwrap();
        assert_eq!(bits(&y), bits(&by_method), "{op:?}");
        let dx = x.pool2d_backward(op, &y, p).unwrap();
        assert_eq!(dx.shape(), x.shape(), "{op:?} backward");
    }
}

#[test]
fn every_variant_has_a_cpu_implementation() {
    every_compare_op_runs::<F32>();
    every_compare_op_runs::<Bf16>();
    every_compare_op_runs::<E4M3>();
    every_compare_op_runs::<F64>();
    every_arg_reduce_op_runs::<F32>();
    every_arg_reduce_op_runs::<Bf16>();
    every_arg_reduce_op_runs::<E4M3>();
    every_arg_reduce_op_runs::<F64>();
    every_row_op_runs::<F32>();
    every_row_op_runs::<Bf16>();
    every_row_op_runs::<E4M3>();
    every_row_op_runs::<F64>();
    every_index_op_runs::<F32>();
    every_index_op_runs::<Bf16>();
    every_index_op_runs::<E4M3>();
    every_index_op_runs::<F64>();
    every_pool_op_runs::<F32>();
    every_pool_op_runs::<Bf16>();
    every_pool_op_runs::<E4M3>();
    every_pool_op_runs::<F64>();
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
    for op in ArgReduceOp::ALL {
        assert!(names.insert(op.name()), "{op:?}");
        assert!(kernels.insert(op.kernel()), "{op:?}");
    }
    for op in CompareOp::ALL {
        assert!(
            names.insert(op.name()) && names.insert(op.scalar_name()),
            "{op:?}"
        );
        assert!(kernels.insert(op.kernel()), "{op:?}");
    }
    for (name, backward_name, (fwd, bwd)) in RowOp::ALL
        .map(|op| (op.name(), op.backward_name(), op.kernel()))
        .into_iter()
        .chain(IndexOp::ALL.map(|op| (op.name(), op.backward_name(), op.kernel())))
        .chain(PoolOp::ALL.map(|op| (op.name(), op.backward_name(), op.kernel())))
    {
        assert!(names.insert(name) && names.insert(backward_name), "{name}");
        assert!(kernels.insert(fwd) && kernels.insert(bwd), "{name}");
    }
    // The contract's primitives: unique among themselves and against the families'
    // kernels (a family's entry is not one of its variants' kernels).
    let mut primitive_names = HashSet::new();
    for p in Primitive::ALL {
        assert!(primitive_names.insert(p.name()), "{p:?}");
        assert!(kernels.insert(p.kernel()), "{p:?}");
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
    let arg = |op: ArgReduceOp| match op {
        ArgReduceOp::Argmax => 0,
        ArgReduceOp::Argmin => 1,
    };
    assert_eq!(ArgReduceOp::ALL.map(arg), [0, 1]);
    let compare = |op: CompareOp| match op {
        CompareOp::Eq => 0,
        CompareOp::Ne => 1,
        CompareOp::Lt => 2,
        CompareOp::Le => 3,
        CompareOp::Gt => 4,
        CompareOp::Ge => 5,
    };
    assert_eq!(CompareOp::ALL.map(compare), [0, 1, 2, 3, 4, 5]);
    let row = |op: RowOp| match op {
        RowOp::Softmax => 0,
        RowOp::LogSoftmax => 1,
    };
    assert_eq!(RowOp::ALL.map(row), [0, 1]);
    let index = |op: IndexOp| match op {
        IndexOp::IndexSelect => 0,
        IndexOp::Gather => 1,
    };
    assert_eq!(IndexOp::ALL.map(index), [0, 1]);
    let pool = |op: PoolOp| match op {
        PoolOp::Max => 0,
        PoolOp::Avg => 1,
    };
    assert_eq!(PoolOp::ALL.map(pool), [0, 1]);
}
