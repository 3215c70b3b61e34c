//! A small model under each policy: the ops run in the precisions the policy names
//! (checked through the tape report), parameter casts are cached per step, gradients
//! reach the F32 masters, and low-precision gradients stay close to the F32 ones.

use mixprec_amp::{Autocast, Bf16Mixed, F16Mixed, Fp8Hybrid, Fp32, Policy};
use mixprec_autograd::{Tape, TapeReport, Var};
use mixprec_dtype::{DType, Dtype, F32};
use mixprec_tensor::{Indices, Rng, Tensor};

struct Model {
    w1: Tensor<F32>,
    b1: Tensor<F32>,
    w2: Tensor<F32>,
    g: Tensor<F32>,
}

fn model() -> Model {
    let mut rng = Rng::seed(5);
    Model {
        w1: Tensor::randn(&[32, 16], 0.0, 0.3, &mut rng).unwrap(),
        b1: Tensor::randn(&[32], 0.0, 0.1, &mut rng).unwrap(),
        w2: Tensor::randn(&[4, 32], 0.0, 0.3, &mut rng).unwrap(),
        g: Tensor::ones(&[32]),
    }
}

/// Linear -> layer norm -> gelu -> linear (w1 used twice: the cache must hit) -> loss.
/// Returns the report and the gradient of w1.
fn run<P: Policy<Param = F32>>() -> (TapeReport, Tensor<F32>, usize) {
    let m = model();
    let mut rng = Rng::seed(6);
    let x = Tensor::<F32>::randn(&[8, 16], 0.0, 1.0, &mut rng).unwrap();
    let labels = Indices::from_slice(&[0, 1, 2, 3, 0, 1, 2, 3]);
    let tape = Tape::new();
    let ac = Autocast::<P>::new(&tape);
    let (w1, b1, w2, g): (Var<F32>, Var<F32>, Var<F32>, Var<F32>) = (
        tape.leaf(m.w1),
        tape.leaf(m.b1),
        tape.leaf(m.w2),
        tape.leaf(m.g),
    );
    let xv = tape.constant(x);
    let h = ac.linear(&xv, &w1, Some(&b1)).unwrap();
    let h2 = ac.linear(&xv, &w1, None).unwrap(); // same weight again: cached cast
    let h = h.add(&h2).unwrap();
    let n = ac.layer_norm(&h, &[32], Some(&g), None, 1e-5).unwrap();
    let a = ac.gelu(&n);
    let logits = ac.linear(&a, &w2, None).unwrap();
    let loss = ac.cross_entropy(&logits, &labels).unwrap();
    let grads = loss.backward().unwrap();
    let gw1 = grads
        .get(&w1)
        .expect("F32 gradient for the F32 master")
        .clone();
    (tape.report(), gw1, ac.cached_casts())
}

fn dtype_of(r: &TapeReport, op: &str) -> Vec<DType> {
    r.ops
        .iter()
        .filter(|o| o.op == op)
        .map(|o| o.dtype)
        .collect()
}

fn check_policy<P: Policy<Param = F32>>() -> Tensor<F32> {
    let (r, g, cached) = run::<P>();
    let gemm = <P::GemmFwd as Dtype>::DTYPE;
    let act = <P::Activation as Dtype>::DTYPE;
    let sens = <P::Sensitive as Dtype>::DTYPE;
    if gemm.is_fp8() {
        assert_eq!(dtype_of(&r, "fp8_matmul"), vec![act], "{}", P::name());
    } else {
        assert_eq!(dtype_of(&r, "matmul"), vec![gemm], "{}", P::name());
    }
    assert_eq!(dtype_of(&r, "gelu"), vec![act], "{}", P::name());
    assert_eq!(dtype_of(&r, "layer_norm"), vec![sens], "{}", P::name());
    assert_eq!(dtype_of(&r, "cross_entropy"), vec![sens], "{}", P::name());
    // w1, b1 and w2 are cast once each although w1 is used twice; the layer-norm weight
    // stays F32 (sensitive class) and, under FP32, nothing changes precision: no cast
    // (and no cast point) where the precision stays the same.
    let expected = if gemm == DType::F32 { 0 } else { 3 };
    assert_eq!(cached, expected, "{}", P::name());
    if gemm == DType::F32 {
        assert!(r.casts.is_empty(), "FP32 records no cast points: {r}");
    }
    assert!(g.to_f32_vec().iter().all(|v| v.is_finite()));
    g
}

#[test]
fn every_policy_runs_ops_in_its_precisions() {
    let g32 = check_policy::<Fp32>();
    let norm = g32.norm_l2();
    for (name, g, tol) in [
        // Relative L2 error of the gradient against F32, about 2 units of each format's
        // epsilon (measured: bf16 0.0056, f16 0.0006, fp8 0.094; BF16 eps 2^-7 = 0.0078,
        // F16 2^-10, E5M2 gradients 2^-2 with E4M3 operands 2^-3).
        ("bf16", check_policy::<Bf16Mixed>(), 2.0 * 2f32.powi(-7)),
        ("f16", check_policy::<F16Mixed>(), 2.0 * 2f32.powi(-10)),
        ("fp8", check_policy::<Fp8Hybrid>(), 2.0 * 2f32.powi(-3)),
    ] {
        let err = g.sub(&g32).unwrap().norm_l2() / norm;
        assert!(err < tol, "{name}: relative gradient error {err}");
    }
}

/// Per-layer override: the output projection under `Fp32` while the body runs under
/// `Fp8Hybrid`, both on one tape.
#[test]
fn one_layer_can_run_under_another_policy() {
    let m = model();
    let tape = Tape::new();
    let body = Autocast::<Fp8Hybrid>::new(&tape);
    let head = Autocast::<Fp32>::new(&tape);
    let (w1, w2) = (tape.leaf(m.w1), tape.leaf(m.w2));
    let x = tape.constant(Tensor::<F32>::ones(&[4, 16]));
    let h = body.gelu(&body.linear(&x, &w1, None).unwrap());
    let logits = head.linear(&h, &w2, None).unwrap();
    let loss = head
        .cross_entropy(&logits, &Indices::from_slice(&[0, 1, 2, 3]))
        .unwrap();
    let g = loss.backward().unwrap();
    assert!(g.get(&w1).is_some() && g.get(&w2).is_some());
    let r = tape.report();
    assert_eq!(
        dtype_of(&r, "fp8_matmul"),
        vec![DType::Bf16],
        "body GEMM in FP8, output BF16"
    );
    assert_eq!(dtype_of(&r, "matmul"), vec![DType::F32], "head GEMM in F32");
}

/// The promote rule: mixed-precision binary ops meet in the wider type.
#[test]
fn binary_ops_promote_to_the_wider_precision() {
    use mixprec_dtype::{Bf16, F16};
    let tape = Tape::new();
    let ac = Autocast::<Bf16Mixed>::new(&tape);
    let a = tape.leaf(Tensor::<Bf16>::ones(&[3]));
    let b = tape.leaf(Tensor::<F16>::full(&[3], 0.5));
    let c = ac.add(&a, &b).unwrap();
    assert_eq!(c.value().dtype(), DType::F32, "bf16 + f16 -> f32");
    assert_eq!(c.value().to_f32_vec(), vec![1.5; 3]);
    let d = ac.mul(&a, &a).unwrap();
    assert_eq!(d.value().dtype(), DType::Bf16);
    let g = c.sum_all().backward().unwrap();
    assert_eq!(
        g.get(&a).unwrap().to_f32_vec(),
        vec![1.0; 3],
        "gradients return in each input's precision"
    );
    assert_eq!(g.get(&b).unwrap().to_f32_vec(), vec![1.0; 3]);
}

/// Convolutions are GEMM-class: BF16 under Bf16Mixed; under Fp8Hybrid they run in the
/// activation precision (no FP8 convolution, as in Transformer Engine).
#[test]
fn conv2d_runs_in_the_gemm_class_precision() {
    use mixprec_tensor::Conv2dParams;
    fn conv_dtype<P: Policy<Param = F32>>() -> Vec<DType> {
        let tape = Tape::new();
        let ac = Autocast::<P>::new(&tape);
        let mut rng = Rng::seed(9);
        let w = tape.leaf(Tensor::<F32>::randn(&[4, 2, 3, 3], 0.0, 0.3, &mut rng).unwrap());
        let b = tape.leaf(Tensor::<F32>::zeros(&[4]));
        let x = tape.constant(Tensor::<F32>::randn(&[2, 2, 6, 6], 0.0, 1.0, &mut rng).unwrap());
        let y = ac
            .conv2d(&x, &w, Some(&b), Conv2dParams::default())
            .unwrap();
        assert_eq!(y.value().dtype(), <P::Activation as Dtype>::DTYPE);
        let g = y.cast::<F32>().sum_all().backward().unwrap();
        assert_eq!(g.get(&w).unwrap().shape(), &[4, 2, 3, 3]);
        dtype_of(&tape.report(), "conv2d")
    }
    assert_eq!(conv_dtype::<Fp32>(), vec![DType::F32]);
    assert_eq!(conv_dtype::<Bf16Mixed>(), vec![DType::Bf16]);
    assert_eq!(conv_dtype::<F16Mixed>(), vec![DType::F16]);
    assert_eq!(conv_dtype::<Fp8Hybrid>(), vec![DType::Bf16]);
}
