//! [`MaxPool2d`] and [`AvgPool2d`]: parameter-free pooling in the input's precision
//! (max is exact in any precision; the average accumulates in the type's compute
//! precision and rounds once).

use mixprec_autograd::{Result, Var};
use mixprec_dtype::Dtype;
use mixprec_tensor::Pool2dParams;

/// Max pooling over windows of NCHW input.
#[derive(Clone, Copy, Debug)]
pub struct MaxPool2d(pub Pool2dParams);

impl MaxPool2d {
    /// Pools `x`.
    pub fn forward<D: Dtype>(&self, x: &Var<D>) -> Result<Var<D>> {
        x.max_pool2d(self.0)
    }
}

/// Average pooling over windows of NCHW input.
#[derive(Clone, Copy, Debug)]
pub struct AvgPool2d(pub Pool2dParams);

impl AvgPool2d {
    /// Pools `x`.
    pub fn forward<D: Dtype>(&self, x: &Var<D>) -> Result<Var<D>> {
        x.avg_pool2d(self.0)
    }
}
