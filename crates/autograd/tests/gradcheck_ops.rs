//! Every differentiable op passes a central-difference gradient check in F64, and its
//! gradients in F32, Bf16 and F16 match the F64 gradients at per-type tolerances.

use mixprec_autograd::{Result, Tape, Var, gradcheck};
use mixprec_dtype::{Dtype, F64};
use mixprec_tensor::{Conv2dParams, Indices, Mask, Pool2dParams, Rng, Tensor};
use mixprec_testing::{TestRng, Tolerance, assert_close, for_each_dtype};

/// An op under test: builds a scalar from its inputs, generic over the precision.
trait Case {
    /// Input shapes and ranges (kept away from kinks: relu/abs at 0, max ties).
    fn inputs(&self) -> Vec<(Vec<usize>, f64, f64)>;
    fn run<D: Dtype>(&self, v: &[Var<D>]) -> Result<Var<D>>;
}

macro_rules! case {
    ($name:ident, [$(($shape:expr, $lo:expr, $hi:expr)),*], |$v:ident| $body:expr) => {
        struct $name;
        impl Case for $name {
            fn inputs(&self) -> Vec<(Vec<usize>, f64, f64)> { vec![$(($shape.to_vec(), $lo, $hi)),*] }
            fn run<D: Dtype>(&self, $v: &[Var<D>]) -> Result<Var<D>> { $body }
        }
    };
}

/// A fixed random weighting, so the scalar depends on every output element differently.
fn weigh<D: Dtype>(y: Var<D>) -> Result<Var<D>> {
    let n = y.value().numel();
    let w: Vec<f64> = (0..n)
        .map(|i| 0.5 + ((i * 7919) % 13) as f64 / 13.0)
        .collect();
    let wt = y.tape().constant(Tensor::<D>::from_f64(&w, y.shape())?);
    Ok(y.mul(&wt)?.sum_all())
}

case!(Neg, [([3, 4], -2.0, 2.0)], |v| weigh(v[0].neg()));
case!(Abs, [([3, 4], 0.2, 2.0)], |v| weigh(v[0].abs()));
case!(Exp, [([3, 4], -2.0, 2.0)], |v| weigh(v[0].exp()));
case!(Log, [([3, 4], 0.5, 3.0)], |v| weigh(v[0].log()));
case!(Sqrt, [([3, 4], 0.5, 3.0)], |v| weigh(v[0].sqrt()));
case!(Rsqrt, [([3, 4], 0.5, 3.0)], |v| weigh(v[0].rsqrt()));
case!(Recip, [([3, 4], 0.5, 3.0)], |v| weigh(v[0].recip()));
case!(Square, [([3, 4], -2.0, 2.0)], |v| weigh(v[0].square()));
case!(Tanh, [([3, 4], -2.0, 2.0)], |v| weigh(v[0].tanh()));
case!(Sigmoid, [([3, 4], -3.0, 3.0)], |v| weigh(v[0].sigmoid()));
case!(Relu, [([3, 4], 0.1, 2.0)], |v| weigh(v[0].relu()));
case!(Gelu, [([3, 4], -3.0, 3.0)], |v| weigh(v[0].gelu()));
case!(GeluTanh, [([3, 4], -3.0, 3.0)], |v| weigh(v[0].gelu_tanh()));
case!(Silu, [([3, 4], -3.0, 3.0)], |v| weigh(v[0].silu()));
case!(Powf, [([3, 4], 0.5, 2.0)], |v| weigh(v[0].powf(2.5)?));
case!(Clamp, [([3, 4], -0.9, 0.9)], |v| weigh(
    v[0].clamp(-1.0, 1.0)?
));
case!(AddBroadcast, [([3, 4], -1.0, 1.0), ([4], -1.0, 1.0)], |v| {
    weigh(v[0].add(&v[1])?)
});
case!(
    SubBroadcast,
    [([3, 1], -1.0, 1.0), ([2, 3, 4], -1.0, 1.0)],
    |v| weigh(v[0].sub(&v[1])?)
);
case!(
    MulBroadcast,
    [([2, 3, 4], -1.0, 1.0), ([3, 1], -1.0, 1.0)],
    |v| weigh(v[0].mul(&v[1])?)
);
case!(DivBroadcast, [([3, 4], -1.0, 1.0), ([4], 0.5, 2.0)], |v| {
    weigh(v[0].div(&v[1])?)
});
case!(Maximum, [([3, 4], -1.0, 1.0), ([3, 4], 1.5, 2.0)], |v| {
    weigh(v[0].maximum(&v[1].mul_scalar(-1.0).add_scalar(1.0))?)
});
case!(Minimum, [([3, 4], -1.0, 1.0), ([4], -0.2, 0.2)], |v| weigh(
    v[0].minimum(&v[1])?
));
case!(Scalars, [([3, 4], -1.0, 1.0)], |v| weigh(
    v[0].mul_scalar(1.5).add_scalar(0.25)
));
case!(Matmul, [([2, 3, 5], -1.0, 1.0), ([5, 4], -1.0, 1.0)], |v| {
    weigh(v[0].matmul(&v[1])?)
});
case!(
    MatmulBias,
    [
        ([2, 3, 5], -1.0, 1.0),
        ([5, 4], -1.0, 1.0),
        ([4], -1.0, 1.0)
    ],
    |v| weigh(v[0].matmul_bias(&v[1], &v[2])?)
);
case!(
    MatmulTransposed,
    [([4, 5], -1.0, 1.0), ([3, 5], -1.0, 1.0)],
    |v| weigh(v[0].matmul(&v[1].transpose(0, 1)?)?)
);
case!(Sum, [([3, 4, 2], -1.0, 1.0)], |v| weigh(
    v[0].sum(&[0, 2], false)?
));
case!(MeanKeep, [([3, 4, 2], -1.0, 1.0)], |v| weigh(
    v[0].mean(&[1], true)?
));
case!(SumAll, [([3, 4], -1.0, 1.0)], |v| Ok(v[0]
    .square()
    .sum_all()));
case!(MeanAll, [([3, 4], -1.0, 1.0)], |v| v[0].square().mean_all());
case!(Max, [([3, 4], -1.0, 1.0)], |v| weigh(
    v[0].max(&[1], false)?
));
case!(Min, [([3, 4], -1.0, 1.0)], |v| weigh(v[0].min(&[0], true)?));
case!(Var_, [([3, 6], -1.0, 1.0)], |v| weigh(v[0].var(
    &[1],
    false,
    1
)?));
case!(Softmax, [([3, 5], -2.0, 2.0)], |v| weigh(
    v[0].softmax_low_precision(-1)?
));
case!(SoftmaxAxis0, [([3, 5], -2.0, 2.0)], |v| weigh(
    v[0].softmax_low_precision(0)?
));
case!(LogSoftmax, [([3, 5], -2.0, 2.0)], |v| weigh(
    v[0].log_softmax_low_precision(-1)?
));
case!(CrossEntropy, [([4, 5], -2.0, 2.0)], |v| v[0]
    .cross_entropy_low_precision(&Indices::from_slice(&[
        1, 0, 4, 2
    ])));
case!(
    LayerNorm,
    [([3, 6], -2.0, 2.0), ([6], 0.5, 1.5), ([6], -0.5, 0.5)],
    |v| weigh(v[0].layer_norm_low_precision(&[6], Some(&v[1]), Some(&v[2]), 1e-5)?)
);
case!(Reshape, [([3, 4], -1.0, 1.0)], |v| weigh(
    v[0].reshape(&[2, 6])?.exp()
));
case!(Permute, [([2, 3, 4], -1.0, 1.0)], |v| weigh(
    v[0].permute(&[2, 0, 1])?.exp()
));
case!(Narrow, [([3, 6], -1.0, 1.0)], |v| weigh(
    v[0].narrow(1, 2, 3)?.exp()
));
case!(BroadcastTo, [([3, 1], -1.0, 1.0)], |v| weigh(
    v[0].broadcast_to(&[2, 3, 4])?.exp()
));
case!(Squeeze, [([3, 1], -1.0, 1.0)], |v| weigh(
    v[0].squeeze(1)?.unsqueeze(0)?.exp()
));
case!(Embedding, [([5, 3], -1.0, 1.0)], |v| weigh(
    v[0].embedding(&Indices::from_vec(vec![4, 0, 4, 2], &[2, 2]).expect("shape"))?
));
case!(IndexSelect, [([3, 5], -1.0, 1.0)], |v| weigh(
    v[0].index_select(1, &Indices::from_slice(&[3, 3, 0]))?
));
case!(Concat, [([2, 3], -1.0, 1.0), ([2, 2], -1.0, 1.0)], |v| {
    weigh(Var::concat(&[&v[0].exp(), &v[1]], 1)?)
});
case!(
    Stack,
    [([2, 3], -1.0, 1.0), ([2, 3], -1.0, 1.0)],
    |v| weigh(Var::stack(&[&v[0], &v[1].tanh()], 0)?)
);
case!(WhereCond, [([3, 3], -1.0, 1.0), ([3], -1.0, 1.0)], |v| {
    weigh(v[0].where_cond(&Mask::causal(3), &v[1])?.exp())
});
case!(MaskedFill, [([3, 3], -1.0, 1.0)], |v| weigh(
    v[0].masked_fill(&Mask::causal(3), -1e9)?
        .softmax_low_precision(-1)?
));
case!(Dropout, [([4, 5], -1.0, 1.0)], |v| weigh(
    v[0].dropout(0.3, &mut Rng::seed(7))?.0
));
case!(Gather, [([3, 4], -1.0, 1.0)], |v| weigh(v[0].gather(
    1,
    &Indices::from_vec(vec![0, 3, 3, 1, 2, 2], &[3, 2]).expect("shape")
)?));
case!(
    Conv2d,
    [
        ([2, 4, 5, 5], -1.0, 1.0),
        ([6, 2, 3, 2], -1.0, 1.0),
        ([6], -1.0, 1.0)
    ],
    |v| weigh(v[0].conv2d(
        &v[1],
        Some(&v[2]),
        Conv2dParams {
            stride: (2, 1),
            padding: (1, 1),
            dilation: (1, 2),
            groups: 2
        }
    )?)
);
case!(MaxPool, [([1, 2, 4, 4], -1.0, 1.0)], |v| weigh(
    v[0].max_pool2d(Pool2dParams {
        kernel: (3, 3),
        stride: (2, 2),
        padding: (1, 1)
    })?
));
case!(AvgPool, [([1, 2, 4, 4], -1.0, 1.0)], |v| weigh(
    v[0].avg_pool2d(Pool2dParams {
        kernel: (2, 2),
        stride: (2, 2),
        padding: (1, 1)
    })?
));
case!(UsedTwice, [([3, 4], -1.0, 1.0)], |v| weigh(
    v[0].mul(&v[0].tanh())?
));

fn inputs_for<D: Dtype>(c: &impl Case, seed: u64) -> Vec<Tensor<D>> {
    let mut rng = TestRng::new(seed);
    c.inputs()
        .into_iter()
        .map(|(shape, lo, hi)| {
            Tensor::<D>::from_f64(&rng.vec(shape.iter().product(), lo, hi), &shape).expect("shape")
        })
        .collect()
}

/// F64: central differences with eps 1e-6; truncation error O(eps^2 f''') and rounding
/// O(1e-16 / eps) keep the difference below 1e-7 for these smooth, O(1) functions.
fn check_f64(c: &impl Case, name: &str) {
    let inputs = inputs_for::<F64>(c, 1);
    let r = gradcheck(|v| c.run(v), &inputs, 1e-6, 1e-7, 1e-6).expect("runs");
    assert!(r.passed(), "{name}: {r:?}");
    assert!(r.checked > 0);
}

/// Lower precisions: gradients computed on the rounded inputs match the F64 gradients of
/// the same (rounded) inputs within the accumulated preset of the type, scaled by 16 for
/// the chain of roundings a backward pass performs (each rule rounds once into D).
fn check_dtype<D: Dtype>(c: &impl Case, name: &str) {
    let inputs = inputs_for::<D>(c, 1);
    let tape = Tape::new();
    let leaves: Vec<Var<D>> = inputs.iter().map(|t| tape.leaf(t.clone())).collect();
    let grads = c.run(&leaves).expect("runs").backward().expect("backward");
    let tape64 = Tape::new();
    let leaves64: Vec<Var<F64>> = inputs
        .iter()
        .map(|t| tape64.leaf(Tensor::<F64>::from_f64(&t.to_f64_vec(), t.shape()).unwrap()))
        .collect();
    let grads64 = c
        .run(&leaves64)
        .expect("runs")
        .backward()
        .expect("backward");
    for (l, l64) in leaves.iter().zip(&leaves64) {
        let got = grads.get(l).expect("gradient").to_f64_vec();
        let want = grads64.get(l64).expect("gradient").to_f64_vec();
        let tol = Tolerance::accumulated::<D>(64).times(16.0);
        assert_close(
            &format!("{name}<{}> gradient vs F64", D::NAME),
            &got,
            &want,
            Tolerance {
                abs_of_max: tol.abs_of_max + tol.rel,
                ..tol
            },
        );
    }
}

macro_rules! all_cases {
    ($($case:ident),*) => {
        #[test]
        fn every_op_passes_gradcheck_in_f64() {
            $( check_f64(&$case, stringify!($case)); )*
        }

        fn low_precision_gradients_match_f64<D: Dtype>() {
            $( check_dtype::<D>(&$case, stringify!($case)); )*
        }
        for_each_dtype!(low_precision_gradients_match_f64: F32, Bf16, F16);
    };
}
all_cases!(
    Neg,
    Abs,
    Exp,
    Log,
    Sqrt,
    Rsqrt,
    Recip,
    Square,
    Tanh,
    Sigmoid,
    Relu,
    Gelu,
    GeluTanh,
    Silu,
    Powf,
    Clamp,
    AddBroadcast,
    SubBroadcast,
    MulBroadcast,
    DivBroadcast,
    Maximum,
    Minimum,
    Scalars,
    Matmul,
    MatmulBias,
    MatmulTransposed,
    Sum,
    MeanKeep,
    SumAll,
    MeanAll,
    Max,
    Min,
    Var_,
    Softmax,
    SoftmaxAxis0,
    LogSoftmax,
    CrossEntropy,
    LayerNorm,
    Reshape,
    Permute,
    Narrow,
    BroadcastTo,
    Squeeze,
    Embedding,
    IndexSelect,
    Concat,
    Stack,
    WhereCond,
    MaskedFill,
    Dropout,
    Gather,
    Conv2d,
    MaxPool,
    AvgPool,
    UsedTwice
);
