//! The ops, one unit each: public functions with docs, CPU kernels and tests side by side.

mod creation;
mod map;
mod unary;
mod views;
