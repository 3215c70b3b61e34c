//! The ops-as-data entry points (`compare`, `arg_reduce`, `row_op`, `index`, `pool2d` and
//! their backward forms) check their inputs in the front, before any backend runs: bad
//! input is an error naming the variant's op, never a panic.

use mixprec_dtype::F32;
use mixprec_tensor::{
    ArgReduceOp, CompareOp, IndexOp, Indices, Pool2dParams, PoolOp, ReduceOp, RowOp, Tensor,
};

fn message<T: std::fmt::Debug>(r: mixprec_tensor::Result<T>) -> String {
    r.expect_err("bad input must be an error").to_string()
}

#[test]
fn comparisons_name_the_op_and_both_shapes() {
    let (a, b) = (Tensor::<F32>::zeros(&[3]), Tensor::<F32>::zeros(&[2]));
    for op in CompareOp::ALL {
        let e = message(a.compare(op, &b));
        assert!(
            e.starts_with(&format!("{}: shapes [3] and [2]", op.name())),
            "{e}"
        );
    }
}

#[test]
fn arg_reductions_reject_bad_axes_and_empty_rows() {
    let x = Tensor::<F32>::zeros(&[2, 0]);
    for op in ArgReduceOp::ALL {
        assert!(message(x.arg_reduce(op, 2, false)).starts_with(op.name()));
        assert!(message(x.arg_reduce(op, 1, false)).starts_with(op.name()));
        assert!(
            x.arg_reduce(op, 0, false).is_ok(),
            "an axis of 2 over no columns"
        );
    }
}

#[test]
fn reductions_check_axes_rows_and_the_correction_in_the_front() {
    let x = Tensor::<F32>::zeros(&[2, 3]);
    assert!(message(x.reduce(ReduceOp::Sum, &[], false)).contains("needs at least one axis"));
    assert!(message(x.reduce(ReduceOp::Mean, &[0, -2], false)).contains("listed twice"));
    let e = message(x.reduce(ReduceOp::Var { correction: 3 }, &[1], false));
    assert!(e.starts_with("var: needs more than 3 elements"), "{e}");
    let empty = Tensor::<F32>::zeros(&[0, 3]);
    assert!(message(empty.reduce(ReduceOp::Max, &[0], false)).starts_with("max:"));
}

#[test]
fn row_ops_reject_a_bad_axis_and_a_gradient_of_another_shape() {
    let x = Tensor::<F32>::zeros(&[2, 3]);
    for op in RowOp::ALL {
        assert!(message(x.row_op(op, 2)).starts_with(op.name()));
        let g = Tensor::<F32>::zeros(&[3, 2]);
        let e = message(x.row_op_backward(op, &g, -1));
        assert!(e.starts_with(op.backward_name()), "{e}");
        assert!(message(x.row_op_backward(op, &x, 5)).starts_with(op.backward_name()));
    }
}

#[test]
fn indexing_rejects_bad_axes_ids_and_gradients() {
    let x = Tensor::<F32>::zeros(&[2, 3]);
    let ids = Indices::from_vec(vec![0, 3], &[1, 2]).unwrap();
    for op in IndexOp::ALL {
        let e = message(x.index(op, 1, &ids));
        assert!(e.starts_with(op.name()), "{e}: id 3 is out of range");
        assert!(message(x.index(op, 2, &ids)).starts_with(op.name()));
        let ok = Indices::from_vec(vec![0, 2], &[1, 2]).unwrap();
        let g = Tensor::<F32>::zeros(&[5]);
        let e = message(g.index_backward(op, x.shape(), 1, &ok));
        assert!(e.starts_with(op.backward_name()), "{e}");
    }
}

#[test]
fn pooling_rejects_bad_params_and_gradients_before_computing() {
    let x = Tensor::<F32>::zeros(&[1, 1, 4, 4]);
    let p = Pool2dParams::square(2);
    for op in PoolOp::ALL {
        assert!(message(Tensor::<F32>::zeros(&[4, 4]).pool2d(op, p)).starts_with(op.name()));
        assert!(message(x.pool2d(op, Pool2dParams::square(5))).starts_with(op.name()));
        let g = Tensor::<F32>::zeros(&[1, 1, 3, 3]);
        let e = message(x.pool2d_backward(op, &g, p));
        assert!(
            e.starts_with(&format!(
                "{}: shapes [1, 1, 3, 3] and [1, 1, 2, 2]",
                op.backward_name()
            )),
            "{e}"
        );
    }
}
