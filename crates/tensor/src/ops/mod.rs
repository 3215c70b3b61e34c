//! The ops, one unit each: public functions with docs, CPU kernels and tests side by side.

mod binary;
mod compare;
mod creation;
mod map;
mod matmul;
mod reduce;
mod select;
mod unary;
mod views;
