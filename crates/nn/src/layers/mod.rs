//! Layers, one per file. Each is generic over a [`crate::TrainPolicy`], owns named
//! parameters created by [`crate::Init`], and runs its forward on a [`crate::Step`] inside
//! a tape scope named after it (so reports say which layer a cast belongs to).

pub(crate) mod attention;
pub(crate) mod block;
pub(crate) mod conv;
pub(crate) mod dropout;
pub(crate) mod embedding;
pub(crate) mod layer_norm;
pub(crate) mod linear;
pub(crate) mod mlp;
pub(crate) mod pool;

pub use attention::CausalSelfAttention;
pub use block::TransformerBlock;
pub use conv::Conv2d;
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use layer_norm::LayerNorm;
pub use linear::Linear;
pub use mlp::Mlp;
pub use pool::{AvgPool2d, MaxPool2d};

/// Errors, naming the layer, its instance name and the size, when any of `sizes` is 0: a
/// layer with an empty weight trains nothing and fails later in an op with no name.
pub(crate) fn check_sizes(
    layer: &'static str,
    name: &str,
    sizes: &[(&str, usize)],
) -> mixprec_autograd::Result<()> {
    match sizes.iter().find(|(_, v)| *v == 0) {
        Some((what, _)) => Err(mixprec_autograd::Error::invalid(
            layer,
            format!("{name}: {what} must be at least 1, got 0"),
        )),
        None => Ok(()),
    }
}
