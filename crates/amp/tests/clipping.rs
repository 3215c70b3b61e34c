//! Gradient clipping by global norm (L2 and infinity norms, `error_if_nonfinite`)
//! against f64 references, and the cases where we differ from PyTorch on purpose.

use mixprec_amp::{
    ClipOptions, MasterWeights, NormType, UnscaledGrads, clip_grad_norm_with, grad_norm_of,
};
use mixprec_dtype::F32;
use mixprec_tensor::Tensor;

fn grads(a: &[f32], b: &[f32]) -> UnscaledGrads {
    let mut m = MasterWeights::new();
    m.add("a", Tensor::zeros(&[a.len()]));
    m.add("b", Tensor::zeros(&[b.len()]));
    let t = |v: &[f32]| Tensor::<F32>::from_f32(v, &[v.len()]).unwrap();
    UnscaledGrads::from_named(&m, [("a", t(a)), ("b", t(b))]).unwrap()
}

fn values(g: &UnscaledGrads) -> Vec<f32> {
    g.iter().flatten().flat_map(|t| t.to_f32_vec()).collect()
}

const A: [f32; 3] = [0.5, -3.0, 1.25];
const B: [f32; 2] = [-7.5, 2.0];

#[test]
fn both_norms_match_f64_and_clip_to_the_maximum() {
    let all: Vec<f64> = A.iter().chain(&B).map(|&x| f64::from(x)).collect();
    let l2 = all.iter().map(|x| x * x).sum::<f64>().sqrt();
    let inf = all.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    for (norm_type, want) in [(NormType::L2, l2), (NormType::Inf, inf)] {
        let mut g = grads(&A, &B);
        let got = grad_norm_of(&g, norm_type);
        // The infinity norm is exact; the L2 norm is a few f32 roundings: 1e-6 relative.
        assert!(
            (f64::from(got) - want).abs() <= 1e-6 * want,
            "{norm_type:?}: {got} vs {want}"
        );
        let opts = ClipOptions {
            norm_type,
            error_if_nonfinite: true,
        };
        assert_eq!(clip_grad_norm_with(&mut g, 1.0, opts).unwrap(), got);
        let after = grad_norm_of(&g, norm_type);
        // Multiplied by max_norm / (norm + 1e-6): just under 1, within f32 rounding.
        assert!(
            (f64::from(after) - 1.0).abs() < 1e-5,
            "{norm_type:?}: {after}"
        );
        // Below the maximum nothing changes.
        let mut small = grads(&A, &B);
        clip_grad_norm_with(&mut small, 100.0, opts).unwrap();
        assert_eq!(values(&small), values(&grads(&A, &B)));
    }
}

#[test]
fn a_non_finite_norm_is_an_error_when_asked_and_changes_nothing() {
    for bad in [f32::NAN, f32::INFINITY] {
        for norm_type in [NormType::L2, NormType::Inf] {
            let mut g = grads(&[bad, 1.0], &B);
            let before = values(&g);
            let strict = ClipOptions {
                norm_type,
                error_if_nonfinite: true,
            };
            let e = clip_grad_norm_with(&mut g, 1.0, strict).unwrap_err();
            assert!(
                e.to_string().starts_with("clip_grad_norm") && e.to_string().contains("norm"),
                "{e}"
            );
            let lenient = ClipOptions {
                error_if_nonfinite: false,
                ..strict
            };
            let n = clip_grad_norm_with(&mut g, 1.0, lenient).unwrap();
            assert!(!n.is_finite());
            let same = values(&g)
                .iter()
                .zip(&before)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{norm_type:?} {bad}: gradients untouched");
        }
    }
}

#[test]
fn large_gradients_have_a_finite_l2_norm() {
    // Squares of 1e20 overflow f32: PyTorch's norm reports inf here; ours stays finite.
    let mut g = grads(&[1e20, -1e20], &[1e20, 0.0]);
    let n = clip_grad_norm_with(&mut g, 1.0, ClipOptions::default()).unwrap();
    let want = 3f64.sqrt() * 1e20;
    assert!((f64::from(n) - want).abs() <= 1e-6 * want, "{n}");
    assert!((grad_norm_of(&g, NormType::L2) - 1.0).abs() < 1e-5);
}
