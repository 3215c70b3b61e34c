//! [`Promote`]: the precision two operands of a binary op meet in (PyTorch's type
//! promotion for floating types, extended to FP8).

use crate::dtype::Dtype;
use crate::types::{Bf16, E4M3, E5M2, F16, F32, F64};

/// `A: Promote<B>` names the precision a binary op on `A` and `B` computes and stores
/// in: the wider of the two. Like PyTorch, `Bf16` with `F16` meets in `F32` (neither holds
/// the other); FP8 with a 16-bit type meets in the 16-bit type, and `E4M3` with `E5M2` in
/// `Bf16` (the FP8 recipes' activation precision).
pub trait Promote<B: Dtype>: Dtype {
    /// The common precision.
    type Output: Dtype;
}

macro_rules! promote {
    ($($a:ty, $b:ty => $o:ty;)*) => {$(
        impl Promote<$b> for $a {
            type Output = $o;
        }
    )*};
}

promote! {
    F64, F64 => F64; F64, F32 => F64; F64, Bf16 => F64; F64, F16 => F64; F64, E4M3 => F64; F64, E5M2 => F64;
    F32, F64 => F64; F32, F32 => F32; F32, Bf16 => F32; F32, F16 => F32; F32, E4M3 => F32; F32, E5M2 => F32;
    Bf16, F64 => F64; Bf16, F32 => F32; Bf16, Bf16 => Bf16; Bf16, F16 => F32; Bf16, E4M3 => Bf16; Bf16, E5M2 => Bf16;
    F16, F64 => F64; F16, F32 => F32; F16, Bf16 => F32; F16, F16 => F16; F16, E4M3 => F16; F16, E5M2 => F16;
    E4M3, F64 => F64; E4M3, F32 => F32; E4M3, Bf16 => Bf16; E4M3, F16 => F16; E4M3, E4M3 => E4M3; E4M3, E5M2 => Bf16;
    E5M2, F64 => F64; E5M2, F32 => F32; E5M2, Bf16 => Bf16; E5M2, F16 => F16; E5M2, E4M3 => Bf16; E5M2, E5M2 => E5M2;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    fn out<A: Promote<B>, B: Dtype>() -> DType {
        <A::Output as Dtype>::DTYPE
    }

    #[test]
    fn promotion_is_symmetric_and_never_narrows() {
        assert_eq!(out::<Bf16, F16>(), DType::F32);
        assert_eq!(out::<F16, Bf16>(), DType::F32);
        assert_eq!(out::<E4M3, E5M2>(), DType::Bf16);
        assert_eq!(out::<F32, F64>(), DType::F64);
        assert_eq!(out::<E5M2, F16>(), DType::F16);
        assert_eq!(out::<Bf16, Bf16>(), DType::Bf16);
    }
}
