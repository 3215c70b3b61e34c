//! Exact GELU and its derivative, evaluated [`fast_math::LANES`] elements at a time.
//!
//! Both compute in f64 for f32 compute precision (error near 1e-12 relative, far below
//! half an f32 ulp) and round once into `D`; for f64 compute they use libm's `erfc`.

use crate::backend::on_device;
use crate::cpu::alloc::try_scratch;
use crate::cpu::fast_math;
use crate::cpu::map::{CHUNK, PARALLEL_MIN_EXPENSIVE, zip_binary, zip_same_shape_chunks};
use crate::cpu::pool::par_pieces;
use crate::cpu::simd::f32_view_mut;
use crate::error::Result;
use crate::tensor::Tensor;
use mixprec_dtype::Dtype;
use mixprec_dtype::F32;
use std::sync::Mutex;

impl<D: Dtype> Tensor<D> {
    /// The gradient through [`Tensor::gelu`]: `grad * (Phi(x) + x phi(x))` for `self = x`,
    /// computed like `gelu` and rounded once into `D`. `grad` broadcasts to `x`'s shape.
    /// Errors when the shapes do not broadcast.
    pub fn gelu_backward(&self, grad: &Tensor<D>) -> Result<Tensor<D>> {
        Tensor::unary_backward(crate::UnaryOp::Gelu, self, grad)
    }

    /// The CPU kernel of [`Tensor::gelu_backward`], after its front's checks.
    pub(crate) fn gelu_backward_on_cpu(&self, grad: &Tensor<D>) -> Result<Tensor<D>> {
        if let Some(dx) = zip_same_shape_chunks(
            "gelu_backward",
            self,
            grad,
            PARALLEL_MIN_EXPENSIVE,
            fast_math::gelu_grad_in_place,
        ) {
            return dx;
        }
        zip_binary("gelu_backward", self, grad, fast_math::gelu_grad)
    }
}

impl Tensor<F32> {
    /// [`Tensor::gelu`] and the derivative `gelu'(x) = Phi(x) + x phi(x)` from one
    /// evaluation (the costly `exp` and `erfc` parts are shared), each rounded once to
    /// f32: the values of `gelu()` and of `gelu_backward(ones)`. A training step keeps
    /// the derivative instead of the input, so the backward pass is one multiply.
    ///
    /// Panics (with the op's message) only when memory cannot be had; see
    /// [`Tensor::try_gelu_with_derivative`].
    pub fn gelu_with_derivative(&self) -> (Tensor<F32>, Tensor<F32>) {
        crate::error::or_panic(self.try_gelu_with_derivative())
    }

    /// [`Tensor::gelu_with_derivative`], or an error when memory cannot be had.
    pub fn try_gelu_with_derivative(&self) -> Result<(Tensor<F32>, Tensor<F32>)> {
        on_device!(self.device(), b => b.gelu_with_derivative(self))
    }

    /// The CPU kernel of [`Tensor::try_gelu_with_derivative`], after its front's checks.
    pub(crate) fn gelu_with_derivative_on_cpu(&self) -> Result<(Tensor<F32>, Tensor<F32>)> {
        let op = "gelu_with_derivative";
        let src = self.try_elements(op)?;
        let n = src.len();
        let y = try_scratch::<F32>(op, self.shape(), n)?;
        let (mut y, mut d) = (y, try_scratch::<F32>(op, self.shape(), n)?);
        let d_chunks: Vec<Mutex<&mut [F32]>> = d.chunks_mut(CHUNK).map(Mutex::new).collect();
        par_pieces(&mut y, CHUNK, PARALLEL_MIN_EXPENSIVE, |off, piece| {
            for (k, yc) in piece.chunks_mut(CHUNK).enumerate() {
                let at = off + k * CHUNK;
                yc.copy_from_slice(&src[at..at + yc.len()]);
                let mut dc = d_chunks[at / CHUNK]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let (yv, dv) = (f32_view_mut(yc), f32_view_mut(&mut dc));
                fast_math::gelu_and_derivative_f32(
                    yv.expect("F32 is stored as f32"),
                    dv.expect("F32 is stored as f32"),
                );
            }
        });
        drop(d_chunks);
        Ok((
            Tensor::from_parts(y, self.shape(), 1.0),
            Tensor::from_parts(d, self.shape(), 1.0),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mixprec_dtype::Acc;
    use mixprec_testing::{TestRng, Tolerance, assert_close, for_each_dtype};

    /// `d/dx (x Phi(x))` in f64 with libm's `erfc` (an oracle apart from the fast path).
    fn gelu_derivative(x: f64) -> f64 {
        0.5 * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2)
            + x * (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
    }

    /// The gradient matches `g * gelu'(x)` computed in f64 to one rounding into `D`, on
    /// the blocked path (same shapes, with a block-sized tail) and the broadcast path.
    fn gelu_backward_matches_f64<D: Dtype>() {
        let mut rng = TestRng::new(5);
        let n = 2 * fast_math::LANES + 7;
        let x = Tensor::<D>::from_f64(&rng.vec(n, -8.0, 6.0), &[n]).unwrap();
        let g = Tensor::<D>::from_f64(&rng.vec(n, -2.0, 2.0), &[n]).unwrap();
        let want: Vec<f64> = x
            .to_f64_vec()
            .iter()
            .zip(g.to_f64_vec())
            .map(|(&x, g)| g * gelu_derivative(x))
            .collect();
        let got = x.gelu_backward(&g).unwrap().to_f64_vec();
        assert_close("gelu_backward", &got, &want, Tolerance::rounded_once::<D>());
        // A scalar gradient broadcast over x takes the element-wise path.
        let one = Tensor::<D>::from_f64(&[1.0], &[1]).unwrap();
        let d: Vec<f64> = x.to_f64_vec().into_iter().map(gelu_derivative).collect();
        let got = x.gelu_backward(&one).unwrap().to_f64_vec();
        assert_close(
            "gelu_backward (broadcast)",
            &got,
            &d,
            Tolerance::rounded_once::<D>(),
        );
    }
    for_each_dtype!(gelu_backward_matches_f64);

    /// Hard values through both directions, blocked path against the scalar functions bit
    /// for bit: signed zeros, subnormals, the f32 extremes, infinities and NaN.
    #[test]
    fn blocks_and_scalar_functions_agree_on_hard_values() {
        let hard = [
            0.0f32,
            -0.0,
            f32::from_bits(1),
            -f32::from_bits(1),
            f32::MIN_POSITIVE,
            -5.5,
            -13.0,
            -19.9,
            9.5,
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
        ];
        let x = Tensor::<F32>::from_f32(&hard, &[hard.len()]).unwrap();
        let y = x.gelu().to_f32_vec();
        let g = Tensor::<F32>::ones(&[hard.len()]);
        let dx = x.gelu_backward(&g).unwrap().to_f32_vec();
        for (i, &v) in hard.iter().enumerate() {
            let (want, dwant) = (fast_math::gelu(v), fast_math::gelu_grad(v, 1.0));
            assert_eq!(y[i].to_bits(), want.to_bits(), "gelu({v})");
            assert_eq!(dx[i].to_bits(), dwant.to_bits(), "gelu'({v})");
        }
        // The limits: gelu(-inf) = -0, gelu(inf) = inf, derivative 0 and 1.
        assert_eq!(y[12].to_bits(), (-0.0f32).to_bits());
        assert_eq!((y[11], dx[11], dx[12]), (f32::INFINITY, 1.0, 0.0));
        assert!(y[13].is_nan() && dx[13].is_nan());
        // Below -5.5 the exact function is tiny but not zero (PyTorch's 1 + erf form
        // gives 0 there); -19.9 underflows f32.
        assert!(y[5] < 0.0 && f64::from(y[5]) > -1e-6);
        assert_eq!(f32::to_f64(y[7]), -0.0);
    }

    /// One evaluation gives both results bit for bit: on several chunks split over both
    /// cores, a transposed (strided) input, and the hard values.
    #[test]
    fn gelu_with_derivative_matches_the_separate_ops_bitwise() {
        let mut rng = TestRng::new(9);
        let mut v = rng.vec(3 * CHUNK + 77, -10.0, 8.0);
        v.extend([
            0.0,
            -0.0,
            1e-40,
            -1e-40,
            40.0,
            -40.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ]);
        let n = v.len();
        let x = Tensor::<F32>::from_f64(&v, &[n]).unwrap();
        let strided = Tensor::<F32>::from_f64(&v[..6000], &[100, 60])
            .unwrap()
            .transpose(0, 1)
            .unwrap();
        for x in [x, strided] {
            let (y, d) = x.gelu_with_derivative();
            let ones = Tensor::<F32>::ones(x.shape());
            let bits = |t: &Tensor<F32>| -> Vec<u32> {
                t.to_f32_vec().iter().map(|v| v.to_bits()).collect()
            };
            assert_eq!(bits(&y), bits(&x.gelu()));
            assert_eq!(bits(&d), bits(&x.gelu_backward(&ones).unwrap()));
            assert_eq!(y.shape(), x.shape());
        }
    }

    #[test]
    fn gelu_backward_names_itself_on_bad_shapes() {
        let x = Tensor::<F32>::zeros(&[2, 3]);
        let err = x.gelu_backward(&Tensor::<F32>::zeros(&[4])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("gelu_backward: shapes [2, 3] and [4]")
        );
    }
}
