//! Errors of layers, optimizers and data: autograd's error type, with the layer or
//! component named as the op.

use mixprec_autograd::Error;
use mixprec_tensor::ErrorKind;

/// An invalid-argument error naming `op` (a layer, an optimizer, a data set).
pub(crate) fn invalid(op: &'static str, msg: String) -> Error {
    Error::Tensor(mixprec_tensor::Error {
        op,
        kind: ErrorKind::InvalidArgument(msg),
    })
}
