//! `matmul`: 2-D and batched matrix products with NumPy batch broadcasting. Transposed
//! (or otherwise strided) operands are read in place by the GEMM's packing, not copied.
//! Accumulation is f32 (f64 for `F64`); the result rounds once into `D`.

use crate::alloc::zeroed_vec;
use crate::error::{Error, Result};
use crate::gemm::{MatRef, gemm_f32, gemm_f64};
use crate::layout::{broadcast_shapes, numel};
use crate::tensor::Tensor;
use mixprec_dtype::{Acc, DType, Dtype};

impl<D: Dtype> Tensor<D> {
    /// Matrix product over the last two axes: `[.., m, k] x [.., k, n] -> [.., m, n]`,
    /// leading (batch) axes broadcast by NumPy rules. Both operands need rank >= 2.
    ///
    /// Low-precision operands are widened to f32 while the GEMM packs them; products
    /// accumulate in f32, like tensor cores. FP8 operands multiply their codes and divide
    /// the f32 result by both scales once.
    ///
    /// ```
    /// use mixprec_tensor::Tensor;
    /// use mixprec_dtype::Bf16;
    /// let a = Tensor::<Bf16>::from_f64(&[1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// let b = Tensor::<Bf16>::eye(2);
    /// assert_eq!(a.matmul(&b).unwrap().to_f64_vec(), vec![1.0, 2.0, 3.0, 4.0]);
    /// ```
    pub fn matmul(&self, other: &Tensor<D>) -> Result<Tensor<D>> {
        let (ra, rb) = (self.rank(), other.rank());
        if ra < 2 || rb < 2 {
            return Err(Error::shapes(
                "matmul",
                self.shape(),
                other.shape(),
                "both operands need rank >= 2 ([.., m, k] x [.., k, n])",
            ));
        }
        let (m, k) = (self.shape()[ra - 2], self.shape()[ra - 1]);
        let (k2, n) = (other.shape()[rb - 2], other.shape()[rb - 1]);
        if k != k2 {
            return Err(Error::shapes(
                "matmul",
                self.shape(),
                other.shape(),
                "inner dimensions differ",
            ));
        }
        let batch = broadcast_shapes("matmul", &self.shape()[..ra - 2], &other.shape()[..rb - 2])?;
        let mut a_shape = batch.clone();
        a_shape.extend([m, k]);
        let mut b_shape = batch.clone();
        b_shape.extend([k, n]);
        let la = self.layout.broadcast_to(&a_shape);
        let lb = other.layout.broadcast_to(&b_shape);
        let mut out_shape = batch.clone();
        out_shape.extend([m, n]);
        let batches = numel(&batch);
        let (da, db) = (self.storage.as_slice(), other.storage.as_slice());
        // Storage offset of batch entry `bi` under a broadcast layout.
        let batch_offset = |l: &crate::layout::Layout, mut bi: usize| {
            let mut off = l.offset;
            for d in (0..batch.len()).rev() {
                off += (bi % batch[d]) * l.strides[d];
                bi /= batch[d];
            }
            off
        };
        let nb = batch.len();
        let mat = |data, l: &crate::layout::Layout, bi| MatRef {
            data,
            offset: batch_offset(l, bi),
            rs: l.strides[nb],
            cs: l.strides[nb + 1],
        };
        let mn = m * n;
        if D::DTYPE == DType::F64 {
            let mut c = vec![0.0f64; batches * mn];
            for bi in 0..batches {
                gemm_f64(
                    m,
                    n,
                    k,
                    mat(da, &la, bi),
                    mat(db, &lb, bi),
                    &mut c[bi * mn..(bi + 1) * mn],
                );
            }
            let acc: Vec<D::Acc> = c.into_iter().map(D::Acc::from_f64).collect();
            return Ok(Tensor::from_acc_vec(&acc, &out_shape));
        }
        let mut c = zeroed_vec::<f32>(batches * mn);
        for bi in 0..batches {
            gemm_f32(
                m,
                n,
                k,
                mat(da, &la, bi),
                mat(db, &lb, bi),
                &mut c[bi * mn..(bi + 1) * mn],
            );
        }
        let descale = f64::from(self.scale) * f64::from(other.scale);
        if descale != 1.0 {
            c.iter_mut()
                .for_each(|v| *v = (f64::from(*v) / descale) as f32);
        }
        Ok(Tensor::from_f32_results(c, &out_shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::F32;
    use mixprec_testing::{TestRng, Tolerance, assert_close, for_each_dtype};
    use proptest::prelude::*;

    /// F64 reference over row-major values.
    fn reference(a: &[f64], b: &[f64], batch: usize, m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; batch * m * n];
        for t in 0..batch {
            for i in 0..m {
                for j in 0..n {
                    c[t * m * n + i * n + j] = (0..k)
                        .map(|p| a[t * m * k + i * k + p] * b[t * k * n + p * n + j])
                        .sum();
                }
            }
        }
        c
    }

    fn matmul_matches_f64<D: Dtype>() {
        let mut rng = TestRng::new(77);
        for &(m, k, n) in &[(3, 4, 5), (37, 70, 19), (64, 300, 33)] {
            let a = Tensor::<D>::from_f64(&rng.vec(2 * m * k, -1.0, 1.0), &[2, m, k]).unwrap();
            let b = Tensor::<D>::from_f64(&rng.vec(k * n, -1.0, 1.0), &[k, n]).unwrap();
            let got = a.matmul(&b).unwrap();
            assert_eq!(got.shape(), &[2, m, n]);
            let bb = b.broadcast_to(&[2, k, n]).unwrap();
            let want = reference(&a.to_f64_vec(), &bb.to_f64_vec(), 2, m, k, n);
            // k products in f32, then one rounding into D; the absolute part scales with
            // the largest result (terms cancel).
            let tol = Tolerance::accumulated::<D>(k);
            let tol = Tolerance {
                abs_of_max: tol.abs_of_max + tol.rel,
                ..tol
            };
            assert_close(
                &format!("matmul<{}> {m}x{k}x{n}", D::NAME),
                &got.to_f64_vec(),
                &want,
                tol,
            );
            // A transposed view gives the same result as its contiguous copy, bit for bit.
            let bt = b
                .transpose(0, 1)
                .unwrap()
                .contiguous()
                .transpose(0, 1)
                .unwrap();
            assert!(!bt.is_contiguous());
            assert_eq!(a.matmul(&bt).unwrap().to_f64_vec(), got.to_f64_vec());
        }
    }
    for_each_dtype!(matmul_matches_f64);

    #[test]
    fn matmul_errors_name_shapes() {
        let a = Tensor::<F32>::zeros(&[2, 3]);
        let e = a.matmul(&Tensor::<F32>::zeros(&[4, 5])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "matmul: shapes [2, 3] and [4, 5] are incompatible: inner dimensions differ"
        );
        assert!(a.matmul(&Tensor::<F32>::zeros(&[3])).is_err());
        let e = Tensor::<F32>::zeros(&[2, 2, 3])
            .matmul(&Tensor::<F32>::zeros(&[3, 3, 4]))
            .unwrap_err();
        assert!(e.to_string().contains("broadcasting"));
        // Empty dimensions are fine: k = 0 gives zeros.
        let z = Tensor::<F32>::zeros(&[2, 0])
            .matmul(&Tensor::<F32>::zeros(&[0, 3]))
            .unwrap();
        assert_eq!(z.to_f32_vec(), vec![0.0; 6]);
    }

    proptest! {
        /// Random shapes with broadcast batch dims: F64 matmul equals the reference (integer
        /// data, so exactly).
        #[test]
        fn batched_shapes(m in 1usize..9, k in 0usize..9, n in 1usize..9, ba in 1usize..3, bb in prop::sample::select(vec![0usize, 1, 2])) {
            use mixprec_dtype::F64;
            let a_shape = vec![ba, m, k];
            let b_shape: Vec<usize> = if bb == 0 { vec![k, n] } else { vec![if bb == 1 { 1 } else { ba }, k, n] };
            let av: Vec<f64> = (0..ba * m * k).map(|i| (i % 7) as f64 - 3.0).collect();
            let bv: Vec<f64> = (0..b_shape.iter().product::<usize>()).map(|i| (i % 5) as f64 - 2.0).collect();
            let a = Tensor::<F64>::from_f64(&av, &a_shape).unwrap();
            let b = Tensor::<F64>::from_f64(&bv, &b_shape).unwrap();
            let c = a.matmul(&b).unwrap();
            prop_assert_eq!(c.shape(), &[ba, m, n][..]);
            let bfull = b.broadcast_to(&[ba, k, n]).unwrap().to_f64_vec();
            prop_assert_eq!(c.to_f64_vec(), reference(&av, &bfull, ba, m, k, n));
        }
    }
}
