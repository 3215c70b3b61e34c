//! The CUDA backend's slot. This build has no CUDA backend: [`CudaBackend`] is a stand-in
//! (candle's dummy backend is the model) whose every primitive returns the error
//! "<op>: cuda:N: built without CUDA support", so op fronts carry no `#[cfg]`. A tensor
//! cannot reach it in this build (moving one to a GPU fails first), but each slot of the
//! contract exists, names its op and its kernel, and is tested.

use super::{Backend, Conv2dGrads, Primitive};
use crate::error::{Error, ErrorKind, Result};
use crate::mask::{Indices, Mask};
use crate::ops::{
    AdamWStep, ArgReduceOp, BinaryOp, CastOptions, CastReport, CompareOp, Conv2dParams, IndexOp,
    LayerNormGrads, Pool2dParams, PoolOp, ReduceOp, RowOp, SgdStep, UnaryOp,
};
use crate::storage::Device;
use crate::tensor::Tensor;
use mixprec_dtype::{Dtype, F32};

/// The backend of GPU `ordinal`: here a stand-in whose primitives all fail.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CudaBackend {
    ordinal: usize,
}

impl CudaBackend {
    /// The backend of GPU `ordinal`.
    pub(crate) fn new(ordinal: usize) -> Self {
        CudaBackend { ordinal }
    }

    /// "`op`: cuda:N: built without CUDA support (...)", naming the kernel that a CUDA
    /// build would run.
    fn unsupported(&self, op: &'static str, kernel: &'static str) -> Error {
        Error::new(
            op,
            ErrorKind::Unsupported {
                device: Device::Cuda(self.ordinal),
                what: format!(
                    "built without CUDA support (enable the `cuda` feature); kernel `{kernel}`"
                ),
            },
        )
    }
}

impl Backend for CudaBackend {
    fn unary<D: Dtype>(&self, op: UnaryOp, _x: &Tensor<D>) -> Result<Tensor<D>> {
        Err(self.unsupported(op.name(), op.kernel().0))
    }

    fn unary_backward<D: Dtype>(
        &self,
        op: UnaryOp,
        _saved: &Tensor<D>,
        _g: &Tensor<D>,
    ) -> Result<Tensor<D>> {
        Err(self.unsupported(op.backward_name(), op.kernel().1))
    }

    fn gelu_with_derivative(&self, _x: &Tensor<F32>) -> Result<(Tensor<F32>, Tensor<F32>)> {
        Err(self.unsupported(
            Primitive::GeluWithDerivative.name(),
            Primitive::GeluWithDerivative.kernel(),
        ))
    }

    fn binary<D: Dtype>(&self, op: BinaryOp, _a: &Tensor<D>, _b: &Tensor<D>) -> Result<Tensor<D>> {
        Err(self.unsupported(op.name(), op.kernel()))
    }

    fn binary_scalar<D: Dtype>(&self, op: BinaryOp, _a: &Tensor<D>, _s: f64) -> Result<Tensor<D>> {
        Err(self.unsupported(op.scalar_name(), op.kernel()))
    }

    fn compare<D: Dtype>(&self, op: CompareOp, _a: &Tensor<D>, _b: &Tensor<D>) -> Result<Mask> {
        Err(self.unsupported(op.name(), op.kernel()))
    }

    fn compare_scalar<D: Dtype>(&self, op: CompareOp, _a: &Tensor<D>, _s: f64) -> Result<Mask> {
        Err(self.unsupported(op.scalar_name(), op.kernel()))
    }

    fn where_cond<D: Dtype>(
        &self,
        _x: &Tensor<D>,
        _mask: &Mask,
        _other: &Tensor<D>,
    ) -> Result<Tensor<D>> {
        Err(self.unsupported(Primitive::WhereCond.name(), Primitive::WhereCond.kernel()))
    }

    fn masked_fill<D: Dtype>(
        &self,
        _x: &Tensor<D>,
        _mask: &Mask,
        _value: f64,
    ) -> Result<Tensor<D>> {
        Err(self.unsupported(Primitive::MaskedFill.name(), Primitive::MaskedFill.kernel()))
    }

    fn dropout_with_mask<D: Dtype>(
        &self,
        _x: &Tensor<D>,
        _keep: &Mask,
        _p: f64,
    ) -> Result<Tensor<D>> {
        Err(self.unsupported(Primitive::Dropout.name(), Primitive::Dropout.kernel()))
    }

    fn reduce<D: Dtype>(
        &self,
        op: ReduceOp,
        _x: &Tensor<D>,
        _axes: &[isize],
        _keepdim: bool,
    ) -> Result<Tensor<D>> {
        Err(self.unsupported(op.name(), op.kernel()))
    }

    fn arg_reduce<D: Dtype>(
        &self,
        op: ArgReduceOp,
        _x: &Tensor<D>,
        _axis: isize,
        _keepdim: bool,
    ) -> Result<Indices> {
        Err(self.unsupported(op.name(), op.kernel()))
    }

    fn abs_max<D: Dtype>(&self, op: &'static str, _x: &Tensor<D>) -> Result<D::Acc> {
        Err(self.unsupported(op, Primitive::AbsMax.kernel()))
    }

    fn all_finite<D: Dtype>(&self, _x: &Tensor<D>) -> Result<bool> {
        Err(self.unsupported(Primitive::AllFinite.name(), Primitive::AllFinite.kernel()))
    }

    fn unscale_checked(&self, _g: &Tensor<F32>, _inv_scale: f32) -> Result<(Tensor<F32>, bool)> {
        Err(self.unsupported(
            Primitive::UnscaleChecked.name(),
            Primitive::UnscaleChecked.kernel(),
        ))
    }

    fn norm_l2<D: Dtype>(&self, _x: &Tensor<D>) -> Result<D::Acc> {
        Err(self.unsupported(Primitive::NormL2.name(), Primitive::NormL2.kernel()))
    }

    fn cast<S: Dtype, T: Dtype>(
        &self,
        _x: &Tensor<S>,
        _opts: CastOptions,
    ) -> Result<(Tensor<T>, CastReport)> {
        Err(self.unsupported(Primitive::Cast.name(), Primitive::Cast.kernel()))
    }

    fn matmul<A: Dtype, B: Dtype, O: Dtype>(
        &self,
        op: &'static str,
        _a: &Tensor<A>,
        _b: &Tensor<B>,
        _bias: Option<&Tensor<O>>,
    ) -> Result<Tensor<O>> {
        Err(self.unsupported(op, Primitive::Matmul.kernel()))
    }

    fn row_op<D: Dtype>(&self, op: RowOp, _x: &Tensor<D>, _axis: isize) -> Result<Tensor<D>> {
        Err(self.unsupported(op.name(), op.kernel().0))
    }

    fn row_op_backward<D: Dtype>(
        &self,
        op: RowOp,
        _y: &Tensor<D>,
        _g: &Tensor<D>,
        _axis: isize,
    ) -> Result<Tensor<D>> {
        Err(self.unsupported(op.backward_name(), op.kernel().1))
    }

    fn layer_norm<D: Dtype>(
        &self,
        _x: &Tensor<D>,
        _normalized_shape: &[usize],
        _weight: Option<&Tensor<D>>,
        _bias: Option<&Tensor<D>>,
        _eps: f64,
    ) -> Result<Tensor<D>> {
        Err(self.unsupported(Primitive::LayerNorm.name(), Primitive::LayerNorm.kernel()))
    }

    fn layer_norm_backward<D: Dtype>(
        &self,
        _x: &Tensor<D>,
        _g: &Tensor<D>,
        _n: usize,
        _weight: Option<&Tensor<D>>,
        _eps: f64,
    ) -> Result<LayerNormGrads<D>> {
        Err(self.unsupported(
            Primitive::LayerNormBackward.name(),
            Primitive::LayerNormBackward.kernel(),
        ))
    }

    fn cross_entropy<D: Dtype>(&self, _logits: &Tensor<D>, _labels: &Indices) -> Result<Tensor<D>> {
        Err(self.unsupported(
            Primitive::CrossEntropy.name(),
            Primitive::CrossEntropy.kernel(),
        ))
    }

    fn cross_entropy_backward<D: Dtype>(
        &self,
        _logits: &Tensor<D>,
        _labels: &Indices,
        _grad: &Tensor<D>,
    ) -> Result<Tensor<D>> {
        Err(self.unsupported(
            Primitive::CrossEntropyBackward.name(),
            Primitive::CrossEntropyBackward.kernel(),
        ))
    }

    fn index<D: Dtype>(
        &self,
        op: IndexOp,
        _x: &Tensor<D>,
        _axis: isize,
        _ids: &Indices,
    ) -> Result<Tensor<D>> {
        Err(self.unsupported(op.name(), op.kernel().0))
    }

    fn index_backward<D: Dtype>(
        &self,
        op: IndexOp,
        _g: &Tensor<D>,
        _input_shape: &[usize],
        _axis: isize,
        _ids: &Indices,
    ) -> Result<Tensor<D>> {
        Err(self.unsupported(op.backward_name(), op.kernel().1))
    }

    fn conv2d<D: Dtype>(
        &self,
        _x: &Tensor<D>,
        _weight: &Tensor<D>,
        _bias: Option<&Tensor<D>>,
        _p: Conv2dParams,
    ) -> Result<Tensor<D>> {
        Err(self.unsupported(Primitive::Conv2d.name(), Primitive::Conv2d.kernel()))
    }

    fn conv2d_backward<D: Dtype>(
        &self,
        _x: &Tensor<D>,
        _weight: &Tensor<D>,
        _grad: &Tensor<D>,
        _p: Conv2dParams,
    ) -> Result<Conv2dGrads<D>> {
        Err(self.unsupported(
            Primitive::Conv2dBackward.name(),
            Primitive::Conv2dBackward.kernel(),
        ))
    }

    fn pool2d<D: Dtype>(&self, op: PoolOp, _x: &Tensor<D>, _p: Pool2dParams) -> Result<Tensor<D>> {
        Err(self.unsupported(op.name(), op.kernel().0))
    }

    fn pool2d_backward<D: Dtype>(
        &self,
        op: PoolOp,
        _x: &Tensor<D>,
        _grad: &Tensor<D>,
        _p: Pool2dParams,
    ) -> Result<Tensor<D>> {
        Err(self.unsupported(op.backward_name(), op.kernel().1))
    }

    fn adamw_update(
        &self,
        _param: &mut Tensor<F32>,
        _grad: &Tensor<F32>,
        _m: &mut Tensor<F32>,
        _v: &mut Tensor<F32>,
        _max_v: Option<&mut Tensor<F32>>,
        _h: AdamWStep,
    ) -> Result<()> {
        Err(self.unsupported(
            Primitive::AdamWUpdate.name(),
            Primitive::AdamWUpdate.kernel(),
        ))
    }

    fn sgd_update(
        &self,
        _param: &mut Tensor<F32>,
        _grad: &Tensor<F32>,
        _momentum_buffer: Option<&mut Tensor<F32>>,
        _h: SgdStep,
    ) -> Result<()> {
        Err(self.unsupported(Primitive::SgdUpdate.name(), Primitive::SgdUpdate.kernel()))
    }

    fn contiguous<D: Dtype>(&self, op: &'static str, _x: &Tensor<D>) -> Result<Tensor<D>> {
        Err(self.unsupported(op, Primitive::Contiguous.kernel()))
    }

    fn concat<D: Dtype>(&self, _tensors: &[&Tensor<D>], _axis: isize) -> Result<Tensor<D>> {
        Err(self.unsupported(Primitive::Concat.name(), Primitive::Concat.kernel()))
    }

    fn pad_axis<D: Dtype>(
        &self,
        _x: &Tensor<D>,
        _axis: isize,
        _before: usize,
        _after: usize,
    ) -> Result<Tensor<D>> {
        Err(self.unsupported(Primitive::PadAxis.name(), Primitive::PadAxis.kernel()))
    }

    fn add_narrow<D: Dtype>(
        &self,
        _x: Tensor<D>,
        _axis: isize,
        _start: usize,
        _src: &Tensor<D>,
    ) -> Result<Tensor<D>> {
        Err(self.unsupported(Primitive::AddNarrow.name(), Primitive::AddNarrow.kernel()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::CastOptions;
    use mixprec_dtype::Bf16;

    /// Calls the stand-in's method for `p` with host tensors (it never reads them).
    fn call(p: Primitive, b: &CudaBackend) -> Error {
        let x = Tensor::<F32>::ones(&[1, 1, 2, 2]);
        let mask = Mask::from_vec(vec![true; 4], &[1, 1, 2, 2]).unwrap();
        let ids = Indices::from_vec(vec![0], &[1]).unwrap();
        let (mut p1, mut m, mut v, mut buf) = (x.clone(), x.clone(), x.clone(), x.clone());
        let adamw = AdamWStep {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            maximize: false,
            step: 1,
        };
        let sgd = SgdStep {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
            first_step: true,
        };
        let pool = Pool2dParams::square(2);
        let conv = Conv2dParams::default();
        // One arm per primitive: adding one fails to compile until it is called here.
        let result: std::result::Result<(), Error> = match p {
            Primitive::Unary => b.unary(UnaryOp::Exp, &x).map(drop),
            Primitive::UnaryBackward => b.unary_backward(UnaryOp::Exp, &x, &x).map(drop),
            Primitive::GeluWithDerivative => b.gelu_with_derivative(&x).map(drop),
            Primitive::Binary => b.binary(BinaryOp::Add, &x, &x).map(drop),
            Primitive::BinaryScalar => b.binary_scalar(BinaryOp::Mul, &x, 2.0).map(drop),
            Primitive::Compare => b.compare(CompareOp::Lt, &x, &x).map(drop),
            Primitive::CompareScalar => b.compare_scalar(CompareOp::Lt, &x, 1.0).map(drop),
            Primitive::WhereCond => b.where_cond(&x, &mask, &x).map(drop),
            Primitive::MaskedFill => b.masked_fill(&x, &mask, 0.0).map(drop),
            Primitive::Dropout => b.dropout_with_mask(&x, &mask, 0.5).map(drop),
            Primitive::Reduce => b.reduce(ReduceOp::Sum, &x, &[0], false).map(drop),
            Primitive::ArgReduce => b.arg_reduce(ArgReduceOp::Argmax, &x, 0, false).map(drop),
            Primitive::AbsMax => b.abs_max("abs_max", &x).map(drop),
            Primitive::AllFinite => b.all_finite(&x).map(drop),
            Primitive::UnscaleChecked => b.unscale_checked(&x, 0.5).map(drop),
            Primitive::NormL2 => b.norm_l2(&x).map(drop),
            Primitive::Cast => b.cast::<F32, Bf16>(&x, CastOptions::default()).map(drop),
            Primitive::Matmul => b.matmul::<F32, F32, F32>("matmul", &x, &x, None).map(drop),
            Primitive::RowOp => b.row_op(RowOp::Softmax, &x, -1).map(drop),
            Primitive::RowOpBackward => b.row_op_backward(RowOp::Softmax, &x, &x, -1).map(drop),
            Primitive::LayerNorm => b.layer_norm(&x, &[2], None, None, 1e-5).map(drop),
            Primitive::LayerNormBackward => b.layer_norm_backward(&x, &x, 2, None, 1e-5).map(drop),
            Primitive::CrossEntropy => b.cross_entropy(&x, &ids).map(drop),
            Primitive::CrossEntropyBackward => b.cross_entropy_backward(&x, &ids, &x).map(drop),
            Primitive::Index => b.index(IndexOp::Gather, &x, 0, &ids).map(drop),
            Primitive::IndexBackward => b
                .index_backward(IndexOp::Gather, &x, &[2], 0, &ids)
                .map(drop),
            Primitive::Conv2d => b.conv2d(&x, &x, None, conv).map(drop),
            Primitive::Conv2dBackward => b.conv2d_backward(&x, &x, &x, conv).map(drop),
            Primitive::Pool2d => b.pool2d(PoolOp::Max, &x, pool).map(drop),
            Primitive::Pool2dBackward => b.pool2d_backward(PoolOp::Avg, &x, &x, pool).map(drop),
            Primitive::AdamWUpdate => b.adamw_update(&mut p1, &x, &mut m, &mut v, None, adamw),
            Primitive::SgdUpdate => b.sgd_update(&mut p1, &x, Some(&mut buf), sgd),
            Primitive::Contiguous => b.contiguous("contiguous", &x).map(drop),
            Primitive::Concat => b.concat(&[&x, &x], 0).map(drop),
            Primitive::PadAxis => b.pad_axis(&x, 0, 1, 1).map(drop),
            Primitive::AddNarrow => b.add_narrow(x.clone(), 0, 0, &x).map(drop),
        };
        result.expect_err("the stand-in has no kernels")
    }

    /// The kernels of every variant of the op families.
    fn family_kernels() -> std::collections::HashSet<&'static str> {
        let pairs = UnaryOp::EXAMPLES
            .map(|op| op.kernel())
            .into_iter()
            .chain(RowOp::ALL.map(|op| op.kernel()))
            .chain(IndexOp::ALL.map(|op| op.kernel()))
            .chain(PoolOp::ALL.map(|op| op.kernel()));
        let singles = BinaryOp::EXAMPLES
            .map(|op| op.kernel())
            .into_iter()
            .chain(CompareOp::ALL.map(|op| op.kernel()))
            .chain(ReduceOp::EXAMPLES.map(|op| op.kernel()))
            .chain(ArgReduceOp::ALL.map(|op| op.kernel()));
        pairs.flat_map(|(f, b)| [f, b]).chain(singles).collect()
    }

    #[test]
    fn every_primitive_of_the_stand_in_says_it_was_built_without_cuda() {
        let b = CudaBackend::new(1);
        for &p in Primitive::ALL {
            let e = call(p, &b).to_string();
            assert!(
                e.contains(": cuda:1: built without CUDA support (enable the `cuda` feature)"),
                "{p:?}: {e}"
            );
            // The error names the kernel a CUDA build runs: the primitive's own, or for a
            // family the variant's.
            let kernel = e.rsplit("kernel `").next().unwrap().trim_end_matches('`');
            assert!(!kernel.is_empty(), "{p:?}: {e}");
            assert!(
                kernel == p.kernel() || family_kernels().contains(kernel),
                "{p:?}: {e}"
            );
        }
        assert_eq!(
            call(Primitive::Unary, &b).to_string(),
            "exp: cuda:1: built without CUDA support (enable the `cuda` feature); kernel `unary_exp`"
        );
    }

    #[test]
    fn an_op_front_dispatches_a_cuda_device_to_the_stand_in() {
        let x = Tensor::<F32>::ones(&[2]);
        let e = crate::backend::on_device!(crate::Device::Cuda(0), b => b.unary(UnaryOp::Relu, &x))
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("relu: cuda:0: built without CUDA support"),
            "{e}"
        );
        let y = crate::backend::on_device!(crate::Device::Cpu, b => b.unary(UnaryOp::Relu, &x));
        assert_eq!(y.unwrap().to_f32_vec(), vec![1.0, 1.0]);
    }
}
