//! The CPU engine, in one room: everything here computes on host slices, and nothing
//! outside it does arithmetic on elements (op fronts check, then call into it).
//!
//! - [`Cpu`]: the CPU's side of the backend contract (`crate::backend`).
//! - [`alloc`]: result buffers (fallible allocation, huge-page hints, the recycler).
//! - [`pool`]: the thread pool (sound under panics, yields to other processes).
//! - [`simd`]: multiversioned loops; which instruction sets run is decided once, in
//!   [`mixprec_dtype::cpu::level`], for this engine, the GEMM tiles and the dtype crate's
//!   slice conversions alike.
//! - [`fast_math`]: block-wise `exp` and GELU evaluated in f64, rounded once.
//! - [`map`]: the element-wise engine (unary, binary with broadcasting, chunked).
//! - [`rows`]: the row engine (softmax, layer norm and reductions over the last axis).
//! - [`cast_chunks`]: chunked precision casts with their reports.
//! - [`gemm`]: the packed GEMM and its micro-kernels.
//! - [`sum_squares`]: the L2 norm's pass (f64 lanes, fixed blocks, on the pool).

pub(crate) mod alloc;
mod backend;
pub(crate) mod cast_chunks;
pub(crate) mod fast_math;
pub(crate) mod gemm;
pub(crate) mod map;
pub(crate) mod pool;
pub(crate) mod rows;
pub(crate) mod simd;
pub(crate) mod sum_squares;

pub(crate) use backend::Cpu;
