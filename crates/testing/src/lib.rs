//! Test support shared by every mixprec crate: the tolerance presets per precision (the
//! one place they are stated), a comparison that reports the worst element, a seeded
//! source of test inputs, and [`for_each_dtype!`], which stamps one generic test body out
//! for every precision type.

#![warn(missing_debug_implementations)]

mod inputs;
mod tolerance;

pub use inputs::TestRng;
pub use mixprec_dtype as dtype;
pub use tolerance::{Tolerance, assert_close};

/// Stamps a generic test body `fn name<D: Dtype>()` out as one `#[test]` per dtype,
/// in a module named like the body: `for_each_dtype!(exp_matches_f64)` makes
/// `exp_matches_f64::F64`, `exp_matches_f64::F32`, ... `exp_matches_f64::E5M2`.
/// List the types after a colon to choose a subset: `for_each_dtype!(body: F32, Bf16)`.
#[macro_export]
macro_rules! for_each_dtype {
    ($body:ident) => {
        $crate::for_each_dtype!($body: F64, F32, Bf16, F16, E4M3, E5M2);
    };
    ($body:ident: $($t:ident),+ $(,)?) => {
        #[allow(non_snake_case)]
        mod $body {
            $(
                #[test]
                fn $t() {
                    super::$body::<$crate::dtype::$t>();
                }
            )+
        }
    };
}
