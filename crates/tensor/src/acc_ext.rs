//! Functions the element-wise ops need beyond `num_traits::Float`, in either compute
//! precision.

use mixprec_dtype::Acc;

/// The complementary error function `1 - erf(x)` in the precision of `x` (musl's
/// implementations via the `libm` crate: `erfcf` for f32, `erfc` for f64; accurate where
/// `1 - erf` would cancel).
pub(crate) fn erfc<A: Acc>(x: A) -> A {
    if std::mem::size_of::<A>() == 4 {
        A::from_f32(libm::erfcf(x.to_f32()))
    } else {
        A::from_f64(libm::erfc(x.to_f64()))
    }
}
