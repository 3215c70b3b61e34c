//! Public ops on random shapes (zero-sized and overflowing ones included) and random values
//! (NaN, ±inf, subnormals, ±0, near-overflow): each returns an error or a result, never a
//! panic or an abort.

use mixprec_dtype::{Bf16, Dtype, E4M3, F16, F32, F64};
use mixprec_tensor::{
    CastOptions, CastRounding, Conv2dParams, Indices, Mask, Pool2dParams, Rng, Tensor,
};
use proptest::prelude::*;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Values that reach the hard cases of every format.
fn hard_value() -> impl Strategy<Value = f32> {
    prop_oneof![
        3 => -4.0f32..4.0,
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
        1 => Just(f32::NEG_INFINITY),
        1 => Just(0.0f32),
        1 => Just(-0.0f32),
        1 => Just(1e-40f32),          // f32 subnormal
        1 => Just(65520.0f32),        // F16 overflow threshold
        1 => Just(448.0f32),          // E4M3 max
        1 => Just(f32::MAX),
        1 => Just(-f32::MIN_POSITIVE),
    ]
}

/// Dimension sizes, zero and one included.
fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0usize), Just(1), Just(2), Just(3), Just(5)]
}

/// Dimension sizes that overflow when multiplied (or are too large to allocate).
fn huge_dim() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(1usize << 32),
        Just(1usize << 40),
        Just(usize::MAX),
        Just(usize::MAX / 2 + 1),
        dim(),
    ]
}

fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(dim(), 0..4)
}

/// Runs `f`, failing the property (naming `what`) if it panics.
fn no_panic<R>(what: &str, f: impl FnOnce() -> R) -> Result<(), TestCaseError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => Ok(()),
        Err(_) => Err(TestCaseError::fail(format!("{what} panicked"))),
    }
}

fn ops_on<D: Dtype>(
    sa: &[usize],
    sb: &[usize],
    values: &[f32],
    axis: isize,
    k: usize,
) -> Result<(), TestCaseError> {
    let make = |s: &[usize]| {
        let n: usize = s.iter().product();
        let v: Vec<f32> = values.iter().copied().cycle().take(n).collect();
        Tensor::<D>::from_f32(&v, s).expect("a valid small tensor")
    };
    let (a, b) = (make(sa), make(sb));
    let labels = Indices::from_slice(&[k, 0, 1, k.wrapping_mul(7)]);
    no_panic("add", || a.add(&b))?;
    no_panic("mul", || a.mul(&b))?;
    no_panic("div", || a.div(&b))?;
    no_panic("matmul", || a.matmul(&b))?;
    no_panic("exp/log/sqrt", || (a.exp(), a.log(), a.sqrt(), a.gelu()))?;
    no_panic("powf", || a.powf(values[0] as f64))?;
    no_panic("clamp", || a.clamp(values[0] as f64, values[1] as f64))?;
    no_panic("softmax", || a.softmax(axis))?;
    no_panic("log_softmax", || a.log_softmax(axis))?;
    no_panic("layer_norm", || {
        a.layer_norm(&sa[sa.len().saturating_sub(1)..], None, None, 1e-5)
    })?;
    no_panic("sum", || a.sum(&[axis], false))?;
    no_panic("mean", || a.mean(&[axis, axis], true))?;
    no_panic("max", || a.max(&[axis], false))?;
    no_panic("var", || a.var(&[axis], false, k))?;
    no_panic("mean_all", || a.mean_all())?;
    no_panic("argmax", || a.argmax(axis, false))?;
    no_panic("cross_entropy", || a.cross_entropy(&labels))?;
    no_panic("index_select", || a.index_select(axis, &labels))?;
    no_panic("gather", || a.gather(axis, &labels))?;
    no_panic("embedding", || a.embedding(&labels))?;
    no_panic("transpose", || a.transpose(axis, -axis - 1))?;
    no_panic("narrow", || a.narrow(axis, k, k))?;
    no_panic("narrow far", || a.narrow(axis, usize::MAX, 2))?;
    no_panic("pad_axis", || a.pad_axis(axis, k, usize::MAX))?;
    no_panic("reshape", || a.reshape(sb))?;
    no_panic("broadcast_to", || a.broadcast_to(sb))?;
    no_panic("squeeze", || (a.squeeze(axis), a.unsqueeze(axis)))?;
    no_panic("permute", || a.permute(&[1, 0]))?;
    no_panic("concat", || Tensor::concat(&[&a, &b], axis))?;
    no_panic("stack", || Tensor::stack(&[&a, &b], axis))?;
    no_panic("masked_fill", || {
        a.masked_fill(&Mask::causal(k), values[0] as f64)
    })?;
    no_panic("dropout", || a.dropout(values[0] as f64, &mut Rng::seed(1)))?;
    no_panic("conv2d", || {
        a.conv2d(
            &b,
            None,
            Conv2dParams {
                stride: (k, 1),
                padding: (k, usize::MAX / 4),
                ..Default::default()
            },
        )
    })?;
    no_panic("max_pool2d", || a.max_pool2d(Pool2dParams::square(k)))?;
    no_panic("avg_pool2d", || {
        a.avg_pool2d(Pool2dParams::square(k.max(1)))
    })?;
    no_panic("casts", || {
        (
            a.cast::<F32>(),
            a.cast::<Bf16>(),
            a.cast::<E4M3>(),
            a.cast_with::<F16>(CastOptions::default()),
        )
    })?;
    no_panic("norms", || {
        (a.norm_l2(), a.abs_max(), a.all_finite(), a.item())
    })?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ops_return_errors_not_panics(
        sa in shape(),
        sb in shape(),
        values in prop::collection::vec(hard_value(), 2..16),
        axis in -4isize..4,
        k in 0usize..4,
    ) {
        ops_on::<F32>(&sa, &sb, &values, axis, k)?;
        ops_on::<Bf16>(&sa, &sb, &values, axis, k)?;
        ops_on::<E4M3>(&sa, &sb, &values, axis, k)?;
        ops_on::<F64>(&sa, &sb, &values, axis, k)?;
    }

    #[test]
    fn constructors_refuse_overflowing_shapes(
        s in prop::collection::vec(huge_dim(), 0..4),
    ) {
        // The product of the non-zero dimensions (what strides need to hold).
        let total = s.iter().try_fold(1usize, |n, &d| n.checked_mul(d.max(1)));
        let z = catch_unwind(|| Tensor::<F32>::try_zeros(&s));
        prop_assert!(z.is_ok(), "try_zeros panicked");
        let z = z.unwrap();
        // Small shapes succeed, overflowing ones are errors; between, the allocator decides
        // (an error, never an abort).
        if total.is_some_and(|n| n <= 1 << 20) {
            prop_assert!(z.is_ok());
        }
        if total.is_none() {
            prop_assert!(z.is_err());
        }
        drop(z);
        no_panic("from_f32", || Tensor::<F32>::from_f32(&[1.0], &s))?;
        no_panic("from_vec", || Tensor::<Bf16>::from_vec(vec![], &s))?;
        no_panic("rand", || Tensor::<F32>::rand(&s, 0.0, 1.0, &mut Rng::seed(0)))?;
        no_panic("randn", || Tensor::<F16>::randn(&s, 0.0, 1.0, &mut Rng::seed(0)))?;
        let small = Tensor::<F32>::ones(&[2, 1]);
        no_panic("reshape", || small.reshape(&s))?;
        no_panic("broadcast_to", || small.broadcast_to(&s))?;
        no_panic("expand", || small.expand(&s))?;
        let wide = Tensor::<F32>::ones(&[2, 0]);
        no_panic("matmul", || wide.matmul(&Tensor::<F32>::zeros(&[0, 3])))?;
        if let [a, b, ..] = s[..] {
            no_panic("add broadcast", || {
                Tensor::<F32>::try_zeros(&[a.min(4), 1])
                    .and_then(|x| x.broadcast_to(&[a, b]))
            })?;
        }
    }
}

#[test]
fn overflowing_and_unallocatable_sizes_are_errors_naming_the_op() {
    let e = Tensor::<F32>::try_zeros(&[1 << 32, 1 << 32]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("zeros: shape [4294967296, 4294967296]"),
        "{e}"
    );
    let e = Tensor::<F32>::try_zeros(&[1 << 40, 1 << 10]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "zeros: cannot allocate 4.0 PiB for shape [1099511627776, 1024]"
    );
    let e = Tensor::<F32>::randn(&[1 << 40, 1 << 10], 0.0, 1.0, &mut Rng::seed(0)).unwrap_err();
    assert!(e.to_string().starts_with("randn: cannot allocate"), "{e}");
    let e = Tensor::<F32>::ones(&[2])
        .reshape(&[1 << 32, 1 << 32])
        .unwrap_err();
    assert!(e.to_string().starts_with("reshape:"), "{e}");
    let x = Tensor::<F32>::ones(&[1, 0]);
    let e = x
        .broadcast_to(&[1 << 40, 0])
        .and_then(|y| y.matmul(&Tensor::<F32>::zeros(&[0, 1 << 40])))
        .unwrap_err();
    assert!(e.to_string().starts_with("matmul:"), "{e}");
    // Results that outgrow their inputs: a broadcast of two 4 MiB tensors, an embedding
    // of 2^20 ids into 2^20-wide rows (4 TiB each): errors, not aborts.
    let col = Tensor::<F32>::zeros(&[1 << 20, 1]);
    let row = Tensor::<F32>::zeros(&[1, 1 << 20]);
    let e = col.add(&row).unwrap_err();
    assert!(
        e.to_string().starts_with("add: cannot allocate 4.0 TiB"),
        "{e}"
    );
    let ids = Indices::from_slice(&vec![0; 1 << 20]);
    let e = row.embedding(&ids).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("embedding: cannot allocate 4.0 TiB"),
        "{e}"
    );
    // Constructors that return no Result panic with the op's message instead of wrapping.
    let p = catch_unwind(|| Tensor::<F32>::zeros(&[1 << 32, 1 << 32])).unwrap_err();
    let msg = p.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.starts_with("zeros: shape"), "{msg}");
}

/// A view of 2^50 elements over one stored element (stride 0): every op that must
/// materialise it (or a temporary of its size) asks for petabytes.
fn huge_view<D: Dtype>(shape: &[usize]) -> Tensor<D> {
    let one = vec![1usize; shape.len()];
    Tensor::<D>::zeros(&one).broadcast_to(shape).unwrap()
}

/// `r` is an allocation error (never an abort): its message says "cannot allocate".
fn assert_alloc_error<T: std::fmt::Debug>(what: &str, r: mixprec_tensor::Result<T>) {
    let e = r.expect_err(what).to_string();
    assert!(e.contains("cannot allocate"), "{what}: {e}");
}

/// Temporaries and results sized like a huge input (its decoded copy, a strided gather,
/// the row buffers of row-wise ops, a gradient table): each is an error from every op
/// that returns `Result`, and a panic with the op's message from the infallible ones.
fn huge_temporaries_are_errors<D: Dtype>() {
    let x = huge_view::<D>(&[1 << 40, 1 << 10]);
    assert_alloc_error("try_to_acc_vec", x.try_to_acc_vec("test"));
    assert_alloc_error("try_contiguous", x.try_contiguous("test"));
    // Rows of two stored values repeated 2^40 times, transposed: no view can merge them.
    let pairs = Tensor::<D>::zeros(&[1, 2])
        .broadcast_to(&[1 << 40, 2])
        .unwrap();
    assert_alloc_error(
        "reshape",
        pairs.transpose(0, 1).unwrap().reshape(&[1 << 41]),
    );
    assert_alloc_error("sum", x.sum(&[1], false));
    assert_alloc_error("sum leading", x.sum(&[0], false));
    assert_alloc_error("mean", x.mean(&[0, 1], false));
    assert_alloc_error("max", x.max(&[1], false));
    assert_alloc_error("var", x.var(&[1], false, 1));
    assert_alloc_error("mean_all", x.mean_all());
    assert_alloc_error("argmax", x.argmax(1, false));
    assert_alloc_error("softmax", x.softmax(-1));
    assert_alloc_error("softmax axis 0", x.softmax(0));
    assert_alloc_error("log_softmax", x.log_softmax(-1));
    assert_alloc_error("softmax_backward", x.softmax_backward(&x, -1));
    assert_alloc_error("softmax_backward axis 0", x.softmax_backward(&x, 0));
    assert_alloc_error("log_softmax_backward", x.log_softmax_backward(&x, -1));
    assert_alloc_error("layer_norm", x.layer_norm(&[1 << 10], None, None, 1e-5));
    assert_alloc_error(
        "layer_norm_backward",
        x.layer_norm_backward(&x, 1 << 10, None, 1e-5),
    );
    assert_alloc_error("add", x.add(&x));
    assert_alloc_error("powf", x.powf(2.0));
    assert_alloc_error("clamp", x.clamp(-1.0, 1.0));
    let default = CastOptions::default();
    assert_alloc_error("cast", x.cast_with::<F16>(default));
    assert_alloc_error("cast to E4M3", x.cast_with::<E4M3>(default));
    assert_alloc_error("cast to F64", x.cast_with::<F64>(default));
    let stochastic = CastOptions {
        rounding: CastRounding::Stochastic { seed: 7 },
        ..default
    };
    assert_alloc_error("cast_with stochastic", x.cast_with::<Bf16>(stochastic));
    assert_alloc_error(
        "where_cond",
        x.where_cond(&Mask::from_vec(vec![true], &[1, 1]).unwrap(), &x),
    );
    assert_alloc_error(
        "masked_fill",
        x.masked_fill(&Mask::from_vec(vec![true], &[1]).unwrap(), 0.0),
    );
    assert_alloc_error("eq", x.eq(&x));
    assert_alloc_error("dropout", x.dropout(0.5, &mut Rng::seed(1)));
    assert_alloc_error(
        "index_select",
        x.index_select(1, &Indices::from_slice(&[0, 1])),
    );
    let index = Indices::from_vec(vec![0, 1, 2, 3], &[1, 4]).unwrap();
    assert_alloc_error("gather", x.gather(1, &index));
    let g = huge_view::<D>(&[1 << 40, 2]);
    assert_alloc_error(
        "index_select_backward",
        g.index_select_backward(&[1 << 40, 4], 1, &Indices::from_slice(&[0, 3])),
    );
    let small = Tensor::<D>::zeros(&[1, 4]);
    assert_alloc_error(
        "gather_backward",
        small.gather_backward(&[1 << 40, 4], 1, &index),
    );
    assert_alloc_error("concat", Tensor::concat(&[&x, &x], 0));
    assert_alloc_error("pad_axis", x.pad_axis(1, 1, 1));
    assert_alloc_error("matmul_bias", {
        let w = Tensor::<D>::zeros(&[1 << 10, 2]);
        x.matmul_bias(&w, &Tensor::<D>::zeros(&[2]))
    });
    let img = huge_view::<D>(&[1 << 20, 1 << 10, 32, 32]);
    assert_alloc_error("max_pool2d", img.max_pool2d(Pool2dParams::square(2)));
    let w = Tensor::<D>::zeros(&[1, 1 << 10, 1, 1]);
    assert_alloc_error("conv2d", img.conv2d(&w, None, Conv2dParams::default()));
    // Infallible ops (no Result in their signature) panic with the op's message.
    let p = catch_unwind(AssertUnwindSafe(|| x.exp())).unwrap_err();
    let msg = p.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.starts_with("exp: cannot allocate"), "{msg}");
    let p = catch_unwind(AssertUnwindSafe(|| x.add_scalar(1.0))).unwrap_err();
    let msg = p.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.starts_with("add_scalar: cannot allocate"), "{msg}");
}

#[test]
fn huge_temporaries_are_errors_for_every_type() {
    huge_temporaries_are_errors::<F32>();
    huge_temporaries_are_errors::<Bf16>();
    huge_temporaries_are_errors::<E4M3>();
    huge_temporaries_are_errors::<F64>();
}
