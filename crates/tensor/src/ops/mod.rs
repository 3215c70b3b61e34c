//! The ops, one unit each: public functions with docs, CPU kernels and tests side by side.

mod binary;
mod compare;
mod concat;
mod creation;
mod cross_entropy;
mod index;
mod layer_norm;
mod map;
mod matmul;
mod reduce;
mod rows;
mod select;
mod softmax;
mod unary;
mod views;
