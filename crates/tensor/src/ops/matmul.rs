//! `matmul`: 2-D and batched matrix products with NumPy batch broadcasting. Transposed
//! (or otherwise strided) operands are read in place by the GEMM's packing, not copied.
//! Accumulation is f32 (f64 for `F64`); the result rounds once into `D`.

use crate::backend::on_device;
use crate::cpu::gemm::{MatRef, SMALL_MACS, gemm_f32, gemm_f64, gemm_small};
use crate::cpu::pool::par_pieces;
use crate::error::{Error, Result};
use crate::layout::{broadcast_shapes, numel};
use crate::storage::one_device;
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
        matmul_front("matmul", self, other, None)
    }

    /// `self @ other + bias` with `bias` of shape `[n]` added to every row in f32 before
    /// the one rounding into `D` (a linear layer's forward with a single rounding, where
    /// matmul-then-add rounds twice and makes a second pass). Shapes as
    /// [`Tensor::matmul`]; errors when `bias` is not `[n]`.
    ///
    /// ```
    /// use mixprec_tensor::Tensor;
    /// use mixprec_dtype::F32;
    /// let a = Tensor::<F32>::from_f32(&[1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// let b = Tensor::<F32>::eye(2);
    /// let bias = Tensor::<F32>::from_f32(&[10.0, 20.0], &[2]).unwrap();
    /// assert_eq!(a.matmul_bias(&b, &bias).unwrap().to_f32_vec(), vec![11.0, 22.0, 13.0, 24.0]);
    /// ```
    pub fn matmul_bias(&self, other: &Tensor<D>, bias: &Tensor<D>) -> Result<Tensor<D>> {
        let n = other.shape().last().copied().unwrap_or(0);
        if bias.shape() != [n] {
            return Err(Error::shapes(
                "matmul_bias",
                other.shape(),
                bias.shape(),
                "bias must have shape [n], n the last axis of the right operand",
            ));
        }
        matmul_front("matmul_bias", self, other, Some(bias))
    }

    /// Matrix product with operands of different precisions and the result rounded once
    /// into `O` (like cuBLAS's BF16-in / F32-out GEMMs, or FP8 E5M2 x E4M3 gradients):
    /// shapes and broadcasting as [`Tensor::matmul`]; accumulation in f32 (f64 when any of
    /// the three types is `F64`).
    pub fn matmul_as<B: Dtype, O: Dtype>(&self, other: &Tensor<B>) -> Result<Tensor<O>> {
        matmul_front("matmul_as", self, other, None)
    }
}

/// The sizes of a product `[.., m, k] x [.., k, n] -> [batch.., m, n]`: found (and
/// checked) by the front, read again by the kernels.
struct MatmulDims {
    m: usize,
    k: usize,
    n: usize,
    batch: Vec<usize>,
    out_shape: Vec<usize>,
}

/// The product's sizes for operands of shapes `a` and `b`, or an error naming `op`:
/// ranks below 2, inner sizes that differ, batch shapes that do not broadcast, or an
/// output whose element count overflows.
fn matmul_dims(op: &'static str, a: &[usize], b: &[usize]) -> Result<MatmulDims> {
    let (ra, rb) = (a.len(), b.len());
    if ra < 2 || rb < 2 {
        return Err(Error::shapes(
            op,
            a,
            b,
            "both operands need rank >= 2 ([.., m, k] x [.., k, n])",
        ));
    }
    let (m, k) = (a[ra - 2], a[ra - 1]);
    let (k2, n) = (b[rb - 2], b[rb - 1]);
    if k != k2 {
        return Err(Error::shapes(op, a, b, "inner dimensions differ"));
    }
    let batch = broadcast_shapes(op, &a[..ra - 2], &b[..rb - 2])?;
    let mut out_shape = batch.clone();
    out_shape.extend([m, n]);
    crate::layout::checked_numel("matmul", &out_shape)?;
    Ok(MatmulDims {
        m,
        k,
        n,
        batch,
        out_shape,
    })
}

/// The front of the three products: one device, then the backend's `matmul`.
fn matmul_front<A: Dtype, B: Dtype, O: Dtype>(
    op: &'static str,
    this: &Tensor<A>,
    other: &Tensor<B>,
    bias: Option<&Tensor<O>>,
) -> Result<Tensor<O>> {
    let bias_device = bias.map(Tensor::device);
    let device = one_device(
        op,
        [this.device(), other.device()]
            .into_iter()
            .chain(bias_device),
    )?;
    matmul_dims(op, this.shape(), other.shape())?;
    on_device!(device, b => b.matmul(op, this, other, bias))
}

impl<O: Dtype> Tensor<O> {
    /// The CPU kernel of the products ([`Tensor::matmul`], [`Tensor::matmul_bias`],
    /// [`Tensor::matmul_as`]), after the front's checks.
    pub(crate) fn matmul_on_cpu<A: Dtype, B: Dtype>(
        op: &'static str,
        this: &Tensor<A>,
        other: &Tensor<B>,
        bias: Option<&Tensor<O>>,
    ) -> Result<Tensor<O>> {
        let bias = bias.map(|b| b.try_to_f64_vec(op)).transpose()?;
        matmul_impl(op, this, other, bias)
    }
}

fn matmul_impl<A: Dtype, B: Dtype, O: Dtype>(
    op: &'static str,
    this: &Tensor<A>,
    other: &Tensor<B>,
    bias: Option<Vec<f64>>,
) -> Result<Tensor<O>> {
    let MatmulDims {
        m,
        k,
        n,
        batch,
        out_shape,
    } = matmul_dims(op, this.shape(), other.shape())?;
    let mut a_shape = batch.clone();
    a_shape.extend([m, k]);
    let mut b_shape = batch.clone();
    b_shape.extend([k, n]);
    let la = this.layout.broadcast_to(&a_shape);
    let lb = other.layout.broadcast_to(&b_shape);
    let batches = numel(&batch);
    let (da, db) = (this.storage.as_slice(), other.storage.as_slice());
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
    let mn = m * n;
    if A::DTYPE == DType::F64 || B::DTYPE == DType::F64 || O::DTYPE == DType::F64 {
        let mut c = crate::cpu::alloc::try_zeros_of::<f64>(op, &out_shape, batches * mn)?;
        for bi in 0..batches {
            let (ma, mb) = (
                mat_at(da, &la, nb, batch_offset(&la, bi)),
                mat_at(db, &lb, nb, batch_offset(&lb, bi)),
            );
            gemm_f64(m, n, k, ma, mb, &mut c[bi * mn..(bi + 1) * mn]);
        }
        let descale = f64::from(this.scale) * f64::from(other.scale);
        let values = c.into_iter().enumerate().map(|(i, v)| {
            let b = bias.as_ref().map_or(0.0, |b| b[i % n]);
            O::Acc::from_f64(v / descale + b)
        });
        let acc = crate::cpu::alloc::try_collect(op, &out_shape, values)?;
        return Tensor::from_acc_vec(op, &acc, &out_shape);
    }
    let mut c = crate::cpu::alloc::try_scratch_f32(op, &out_shape, batches * mn)?;
    if batches > 1 && lb.strides[..nb].iter().all(|&s| s == 0) && rows_fold(&la, &batch, m) {
        // B is shared by every batch entry and A's rows run evenly through the batch axes
        // (a [.., m, k] activation times a weight): one GEMM with batches * m rows.
        let ma = MatRef {
            data: da,
            offset: la.offset,
            rs: la.strides[nb],
            cs: la.strides[nb + 1],
        };
        let mb = mat_at(db, &lb, nb, lb.offset);
        gemm_f32(batches * m, n, k, ma, mb, &mut c);
    } else if batches > 1 && mn > 0 && m * n * k < SMALL_MACS {
        // Many small products (attention heads): the batch entries split over the pool.
        par_pieces(&mut c, mn, 2 * SMALL_MACS / k.max(1), |off, piece| {
            for (q, ci) in piece.chunks_exact_mut(mn).enumerate() {
                let bi = off / mn + q;
                let (ma, mb) = (
                    mat_at(da, &la, nb, batch_offset(&la, bi)),
                    mat_at(db, &lb, nb, batch_offset(&lb, bi)),
                );
                gemm_small(m, n, k, ma, mb, ci);
            }
        });
    } else {
        for bi in 0..batches {
            let (ma, mb) = (
                mat_at(da, &la, nb, batch_offset(&la, bi)),
                mat_at(db, &lb, nb, batch_offset(&lb, bi)),
            );
            gemm_f32(m, n, k, ma, mb, &mut c[bi * mn..(bi + 1) * mn]);
        }
    }
    let descale = f64::from(this.scale) * f64::from(other.scale);
    if descale != 1.0 {
        c.iter_mut()
            .for_each(|v| *v = (f64::from(*v) / descale) as f32);
    }
    if let Some(b) = &bias
        && n > 0
    {
        // Exact in f32: the bias has a non-F64 precision on this path.
        let b = crate::cpu::alloc::try_collect(op, &[n], b.iter().map(|&v| v as f32))?;
        for row in c.chunks_exact_mut(n) {
            row.iter_mut().zip(&b).for_each(|(v, &bv)| *v += bv);
        }
    }
    Tensor::from_f32_results(op, c, &out_shape)
}

/// True when the `m` rows of every batch entry of layout `l` follow each other at one
/// stride through all batch axes (row `r` of entry `bi` at `offset + (bi m + r) rs`), so
/// the batch folds into the rows.
fn rows_fold(l: &crate::layout::Layout, batch: &[usize], m: usize) -> bool {
    let nb = batch.len();
    let mut want = l.strides[nb] * m;
    for d in (0..nb).rev() {
        if batch[d] > 1 && l.strides[d] != want {
            return false;
        }
        want *= batch[d];
    }
    true
}

/// The matrix of one batch entry under a broadcast layout: the last two strides.
fn mat_at<'a, T>(
    data: &'a [T],
    l: &crate::layout::Layout,
    nb: usize,
    offset: usize,
) -> MatRef<'a, T> {
    MatRef {
        data,
        offset,
        rs: l.strides[nb],
        cs: l.strides[nb + 1],
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

    fn matmul_bias_rounds_once<D: Dtype>() {
        let mut rng = TestRng::new(78);
        for &(m, k, n) in &[(3, 4, 5), (37, 70, 19)] {
            let a = Tensor::<D>::from_f64(&rng.vec(2 * m * k, -1.0, 1.0), &[2, m, k]).unwrap();
            let b = Tensor::<D>::from_f64(&rng.vec(k * n, -1.0, 1.0), &[k, n]).unwrap();
            let bias = Tensor::<D>::from_f64(&rng.vec(n, -2.0, 2.0), &[n]).unwrap();
            let got = a.matmul_bias(&b, &bias).unwrap();
            let bb = b.broadcast_to(&[2, k, n]).unwrap();
            let mut want = reference(&a.to_f64_vec(), &bb.to_f64_vec(), 2, m, k, n);
            let bv = bias.to_f64_vec();
            want.iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v += bv[i % n]);
            // As matmul: k products and the bias summed in f32, one rounding into D.
            let tol = Tolerance::accumulated::<D>(k + 1);
            let tol = Tolerance {
                abs_of_max: tol.abs_of_max + tol.rel,
                ..tol
            };
            assert_close(
                &format!("matmul_bias<{}> {m}x{k}x{n}", D::NAME),
                &got.to_f64_vec(),
                &want,
                tol,
            );
        }
        let e = Tensor::<D>::zeros(&[2, 3])
            .matmul_bias(&Tensor::<D>::zeros(&[3, 4]), &Tensor::<D>::zeros(&[3]))
            .unwrap_err();
        assert!(e.to_string().starts_with("matmul_bias:"), "{e}");
    }
    for_each_dtype!(matmul_bias_rounds_once);

    #[test]
    fn mixed_operands_and_output_round_once() {
        use mixprec_dtype::{Bf16, E4M3, E5M2, F64};
        let mut rng = TestRng::new(3);
        let (m, k, n) = (9, 40, 7);
        let a = Tensor::<Bf16>::from_f64(&rng.vec(m * k, -1.0, 1.0), &[m, k]).unwrap();
        let b = Tensor::<Bf16>::from_f64(&rng.vec(k * n, -1.0, 1.0), &[k, n]).unwrap();
        let c: Tensor<F32> = a.matmul_as::<Bf16, F32>(&b).unwrap();
        let want = reference(&a.to_f64_vec(), &b.to_f64_vec(), 1, m, k, n);
        // BF16 inputs, f32 accumulation, F32 output: only the f32 accumulation error.
        let tol = Tolerance::accumulated::<F32>(k);
        assert_close(
            "bf16 x bf16 -> f32",
            &c.to_f64_vec(),
            &want,
            Tolerance {
                abs_of_max: tol.abs_of_max + tol.rel,
                ..tol
            },
        );
        // FP8 gradient GEMM: E5M2 x E4M3 -> Bf16, each with its own scale.
        let g = Tensor::<E5M2>::from_f64(&rng.vec(m * k, -1e-3, 1e-3), &[m, k]).unwrap();
        let w = Tensor::<E4M3>::from_f64(&rng.vec(k * n, -2.0, 2.0), &[k, n]).unwrap();
        let d: Tensor<Bf16> = g.matmul_as::<E4M3, Bf16>(&w).unwrap();
        let want = reference(&g.to_f64_vec(), &w.to_f64_vec(), 1, m, k, n);
        let tol = Tolerance::accumulated::<Bf16>(k);
        assert_close(
            "e5m2 x e4m3 -> bf16",
            &d.to_f64_vec(),
            &want,
            Tolerance {
                abs_of_max: tol.abs_of_max + tol.rel,
                ..tol
            },
        );
        // F64 output computes in f64.
        let e: Tensor<F64> = a.matmul_as::<Bf16, F64>(&b).unwrap();
        assert_close(
            "bf16 x bf16 -> f64",
            &e.to_f64_vec(),
            &reference(&a.to_f64_vec(), &b.to_f64_vec(), 1, m, k, n),
            Tolerance::accumulated::<F64>(k),
        );
    }

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
