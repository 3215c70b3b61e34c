//! The ops, one unit each: public functions with docs, CPU kernels and tests side by side.

pub use binary::BinaryOp;
pub use cast::{CastOptions, CastOverflow, CastReport, CastRounding, CastScale};
pub use compare::CompareOp;
pub use conv2d::Conv2dParams;
pub use index::IndexOp;
pub use layer_norm::LayerNormGrads;
pub use operators::SameDtype;
pub use optimizer::{AdamWStep, SgdStep};
pub use pool::{Pool2dParams, PoolOp};
pub use reduce_op::{ArgReduceOp, ReduceOp};
pub use softmax::RowOp;
pub use unary::{Saves, UnaryOp};

mod binary;
mod bytes;
mod cast;
mod compare;
mod concat;
mod conv2d;
mod creation;
mod cross_entropy;
mod dropout;
mod gelu;
mod index;
mod layer_norm;
mod matmul;
mod operators;
mod optimizer;
mod pool;
mod reduce;
mod reduce_op;
mod select;
mod softmax;
mod unary;
mod unscale;
mod views;
