//! `softmax` and `log_softmax` along an axis: max-subtracted, exponentials and their sum
//! in `D::Acc` (f32; f64 for `F64`), one rounding into `D`. These are precision-sensitive
//! ops: the amp layer runs them in F32.

use super::reduce::sum_acc;
use super::rows::map_row_blocks;
use crate::error::Result;
use crate::tensor::Tensor;
use mixprec_dtype::{Acc, Dtype};
use num_traits::Float;

/// Largest finite-or-infinite value of a row (NaN-free rows); `-inf` for an all `-inf` row.
#[inline(always)]
fn row_max<A: Acc>(row: &[A]) -> A {
    row.iter().fold(A::neg_infinity(), |m, &v| m.max(v))
}

crate::simd::multiversioned! {
    /// `out = exp(x - max(row))` for every row of `n` elements in `x` (the exponentials of
    /// a block of rows evaluated together, see [`crate::fast_math::exp_in_place`]).
    fn shifted_exp<A: Acc>(x: &[A], out: &mut [A], n: usize) {
        for (o, xr) in out.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
            let m = row_max(xr);
            o.iter_mut().zip(xr).for_each(|(o, &v)| *o = v - m);
        }
        crate::fast_math::exp_in_place(out);
    }
}

crate::simd::multiversioned! {
    /// Softmax of every row of `n` elements in `x` into `out`.
    fn softmax_rows<A: Acc>(x: &[A], out: &mut [A], n: usize) {
        shifted_exp(x, out, n);
        for o in out.chunks_exact_mut(n) {
            let s = sum_acc(o);
            o.iter_mut().for_each(|o| *o /= s);
        }
    }
}

impl<D: Dtype> Tensor<D> {
    /// `exp(x - max) / sum(exp(x - max))` along `axis`. A row of all `-inf` (a fully
    /// masked attention row) gives NaN, as in PyTorch; NaN in a row gives NaN.
    pub fn softmax(&self, axis: isize) -> Result<Tensor<D>> {
        map_row_blocks("softmax", self, axis, softmax_rows)
    }

    /// `x - max - log(sum(exp(x - max)))` along `axis`: the stable log-probabilities that
    /// cross-entropy uses.
    pub fn log_softmax(&self, axis: isize) -> Result<Tensor<D>> {
        map_row_blocks("log_softmax", self, axis, |x, out, n| {
            shifted_exp(x, out, n);
            for (o, xr) in out.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
                let m = row_max(xr);
                let log_sum = sum_acc(o).ln();
                for (o, &v) in o.iter_mut().zip(xr) {
                    *o = v - m - log_sum;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::Mask;
    use mixprec_dtype::F32;
    use mixprec_testing::{TestRng, Tolerance, assert_close, for_each_dtype};

    fn softmax_ref(row: &[f64]) -> Vec<f64> {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|v| v / s).collect()
    }

    fn softmax_matches_f64<D: Dtype>() {
        let mut rng = TestRng::new(12);
        let x = Tensor::<D>::from_f64(&rng.vec(4 * 30 * 3, -6.0, 6.0), &[4, 30, 3]).unwrap();
        for axis in [1isize, -1, 0] {
            let a = if axis < 0 { 2 } else { axis as usize };
            let moved_order: Vec<usize> = (0..3).filter(|&d| d != a).chain([a]).collect();
            let xm = x.permute(&moved_order).unwrap();
            let n = x.shape()[a];
            let rows: Vec<f64> = xm.to_f64_vec();
            let sm: Vec<f64> = rows.chunks(n).flat_map(softmax_ref).collect();
            let lsm: Vec<f64> = rows
                .chunks(n)
                .flat_map(|r| softmax_ref(r).into_iter().map(f64::ln).collect::<Vec<_>>())
                .collect();
            let got = x
                .softmax(axis)
                .unwrap()
                .permute(&moved_order)
                .unwrap()
                .to_f64_vec();
            // exp of arguments up to 12 in magnitude (condition 12) and a sum of n terms.
            let tol = Tolerance::accumulated::<D>(n).plus_conditioning::<D>(12.0);
            assert_close(&format!("softmax<{}> axis {axis}", D::NAME), &got, &sm, tol);
            let got = x
                .log_softmax(axis)
                .unwrap()
                .permute(&moved_order)
                .unwrap()
                .to_f64_vec();
            // log-probabilities: absolute error of the log-sum (sum of n terms) plus one
            // rounding of the result; scale the absolute part by the largest |value|.
            let ltol = Tolerance {
                abs_of_max: tol.rel + tol.abs_of_max,
                ..tol
            };
            assert_close(
                &format!("log_softmax<{}> axis {axis}", D::NAME),
                &got,
                &lsm,
                ltol,
            );
        }
    }
    for_each_dtype!(softmax_matches_f64);

    #[test]
    fn large_logits_and_masked_rows() {
        let x = Tensor::<F32>::from_f32(&[1000.0, 1001.0, -1000.0], &[1, 3]).unwrap();
        let s = x.softmax(-1).unwrap().to_f32_vec();
        assert!(
            (s[0] - 0.268_941_43).abs() < 1e-7 && (s[1] - 0.731_058_6).abs() < 1e-7 && s[2] == 0.0,
            "{s:?}"
        );
        let ls = x.log_softmax(-1).unwrap().to_f32_vec();
        assert!(
            (ls[2] + 2_001.313_3).abs() < 1e-3,
            "no -inf for a very negative logit: {ls:?}"
        );
        let scores = Tensor::<F32>::zeros(&[3, 3])
            .masked_fill(&Mask::causal(3), f64::NEG_INFINITY)
            .unwrap();
        let p = scores.softmax(-1).unwrap().to_f32_vec();
        assert_eq!(
            &p[..3],
            &[1.0, 0.0, 0.0],
            "causal row 0 attends to itself only"
        );
        assert!(
            x.softmax(2)
                .unwrap_err()
                .to_string()
                .starts_with("softmax: axis 2 is out of range")
        );
    }
}
