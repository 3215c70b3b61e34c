//! The six precision types, one file each; [`narrow_dtype!`] holds what the four formats
//! narrower than f32 share.

mod bf16;
mod e4m3;
mod e5m2;
mod f16;
mod f32;
mod f64;

pub use self::bf16::Bf16;
pub use self::e4m3::E4M3;
pub use self::e5m2::E5M2;
pub use self::f16::F16;
pub use self::f32::F32;
pub use self::f64::F64;

/// Implements `Dtype`, equality, ordering and formatting for a narrow type `$ty` that has
/// inherent `const fn from_bits`/`to_bits`, a `FORMAT` constant (its [`crate::format::Format`])
/// and an implementation of [`crate::slice::FastKernel`]. Comparisons follow the value
/// (so `-0 == +0` and NaN is unordered), as for `f32`.
macro_rules! narrow_dtype {
    (
        $ty:ident, bits: $bits:ty, tag: $tag:ident, name: $name:literal, has_inf: $has_inf:literal,
        max: $max:literal, min_positive: $minp:literal, min_subnormal: $mins:literal,
        epsilon: $eps:literal, one: $one:literal, to_f32: |$v:ident| $to_f32:expr $(,)?
    ) => {
        impl $crate::dtype::sealed::Sealed for $ty {}

        impl $crate::dtype::Dtype for $ty {
            type Acc = f32;
            type Bits = $bits;
            const DTYPE: $crate::DType = $crate::DType::$tag;
            const NAME: &'static str = $name;
            const BYTES: usize = ::std::mem::size_of::<$bits>();
            const MAX: Self = Self::from_bits($max);
            const MIN_POSITIVE: Self = Self::from_bits($minp);
            const MIN_SUBNORMAL: Self = Self::from_bits($mins);
            const EPSILON: Self = Self::from_bits($eps);
            const HAS_INF: bool = $has_inf;
            const ZERO: Self = Self::from_bits(0);
            const ONE: Self = Self::from_bits($one);

            #[inline]
            fn from_f32(x: f32) -> Self {
                <Self as $crate::slice::FastKernel>::encode_fast(x, false)
            }

            #[inline]
            fn from_f32_saturating(x: f32) -> Self {
                <Self as $crate::slice::FastKernel>::encode_fast(x, true)
            }

            fn from_f32_reference(x: f32, saturate: bool) -> Self {
                use $crate::format::{Overflow, Rounding, encode};
                let overflow = if saturate {
                    Overflow::Saturate
                } else {
                    Overflow::Format
                };
                Self::from_bits(encode(&Self::FORMAT, x, Rounding::NearestEven, overflow) as $bits)
            }

            #[inline]
            fn from_f32_stochastic(x: f32, random: u32) -> Self {
                use $crate::format::{Overflow, Rounding, encode};
                Self::from_bits(encode(
                    &Self::FORMAT,
                    x,
                    Rounding::Stochastic(random),
                    Overflow::Format,
                ) as $bits)
            }

            #[inline]
            fn from_f64(x: f64) -> Self {
                Self::from_f32($crate::f64_narrow::f64_to_f32_round_to_odd(x))
            }

            #[inline]
            fn to_f32(self) -> f32 {
                let $v = self;
                $to_f32
            }

            #[inline]
            fn to_acc(self) -> f32 {
                self.to_f32()
            }

            #[inline]
            fn from_acc(x: f32) -> Self {
                <Self as $crate::dtype::Dtype>::from_f32(x)
            }

            #[inline]
            fn from_acc_saturating(x: f32) -> Self {
                <Self as $crate::dtype::Dtype>::from_f32_saturating(x)
            }

            fn to_acc_slice(src: &[Self], dst: &mut [f32]) {
                <Self as $crate::slice::FastKernel>::decode_slice_impl(src, dst, None)
            }

            fn from_acc_slice(src: &[f32], dst: &mut [Self]) {
                let mode = $crate::slice::EncodeMode {
                    saturate: false,
                    scale: None,
                };
                <Self as $crate::slice::FastKernel>::encode_slice_impl(src, dst, mode)
            }

            #[inline]
            fn to_f64(self) -> f64 {
                f64::from(self.to_f32())
            }

            #[inline]
            fn to_bits(self) -> $bits {
                Self::to_bits(self)
            }

            #[inline]
            fn from_bits(bits: $bits) -> Self {
                Self::from_bits(bits)
            }

            #[inline]
            fn is_nan(self) -> bool {
                Self::FORMAT.is_nan(u32::from(self.to_bits()))
            }

            #[inline]
            fn is_finite(self) -> bool {
                Self::FORMAT.is_finite(u32::from(self.to_bits()))
            }

            #[inline]
            fn is_sign_negative(self) -> bool {
                (u32::from(self.to_bits()) >> Self::FORMAT.sign_shift) & 1 == 1
            }

            fn encode_slice(src: &[f32], dst: &mut [Self], mode: $crate::slice::EncodeMode) {
                <Self as $crate::slice::FastKernel>::encode_slice_impl(src, dst, mode)
            }

            fn decode_slice(src: &[Self], dst: &mut [f32], scale: Option<f32>) {
                <Self as $crate::slice::FastKernel>::decode_slice_impl(src, dst, scale)
            }
        }

        impl PartialEq for $ty {
            fn eq(&self, other: &Self) -> bool {
                use $crate::dtype::Dtype;
                self.to_f32() == other.to_f32()
            }
        }

        impl PartialOrd for $ty {
            fn partial_cmp(&self, other: &Self) -> Option<::std::cmp::Ordering> {
                use $crate::dtype::Dtype;
                self.to_f32().partial_cmp(&other.to_f32())
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                use $crate::dtype::Dtype;
                ::std::fmt::Display::fmt(&self.to_f32(), f)
            }
        }

        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                use $crate::dtype::Dtype;
                write!(f, "{}({:?} = {:#x})", $name, self.to_f32(), self.to_bits())
            }
        }
    };
}
pub(crate) use narrow_dtype;
