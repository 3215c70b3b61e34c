//! The sealed [`Dtype`] trait and the runtime [`DType`] tag.

use std::fmt::{self, Debug, Display};

pub(crate) mod sealed {
    /// Only the six precision types of this crate implement [`crate::Dtype`].
    pub trait Sealed {}
}

/// Declares [`DType`] and, from the same list of variants, [`DType::ALL`] and
/// [`DType::COUNT`]: a new tag cannot be left out of either, and every `match` on tags
/// (names, sizes, [`DType::index`] users) fails to compile until it handles it.
macro_rules! dtype_tags {
    ($($(#[$doc:meta])* $tag:ident,)*) => {
        /// Runtime tag of a precision type, for dispatch, error messages and file formats.
        ///
        /// Every [`Dtype`] has one as `T::DTYPE`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum DType {
            $($(#[$doc])* $tag,)*
        }

        impl DType {
            /// Every tag, widest first (declaration order).
            pub const ALL: [DType; DType::COUNT] = [$(DType::$tag,)*];

            /// How many tags there are: the length of per-dtype arrays
            /// (`[usize; DType::COUNT]`, indexed by [`DType::index`]).
            pub const COUNT: usize = [$(DType::$tag,)*].len();
        }
    };
}

dtype_tags! {
    /// IEEE binary64.
    F64,
    /// IEEE binary32.
    F32,
    /// bfloat16: 8 exponent bits, 7 mantissa bits.
    Bf16,
    /// IEEE binary16: 5 exponent bits, 10 mantissa bits.
    F16,
    /// OCP FP8 E4M3 ("FN": no infinity, one NaN per sign, max 448).
    E4M3,
    /// OCP FP8 E5M2 (IEEE-like: infinities and NaNs, max 57344).
    E5M2,
}

impl DType {
    /// This tag's position in [`DType::ALL`], below [`DType::COUNT`]: the index of
    /// per-dtype arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name, as in `"bf16"` or `"e4m3"`.
    pub const fn name(self) -> &'static str {
        match self {
            DType::F64 => "f64",
            DType::F32 => "f32",
            DType::Bf16 => "bf16",
            DType::F16 => "f16",
            DType::E4M3 => "e4m3",
            DType::E5M2 => "e5m2",
        }
    }

    /// Bytes one element occupies in storage.
    pub const fn size_in_bytes(self) -> usize {
        match self {
            DType::F64 => 8,
            DType::F32 => 4,
            DType::Bf16 | DType::F16 => 2,
            DType::E4M3 | DType::E5M2 => 1,
        }
    }

    /// True for the two 8-bit formats, whose tensors carry a per-tensor scale.
    pub const fn is_fp8(self) -> bool {
        matches!(self, DType::E4M3 | DType::E5M2)
    }

    /// Parses the lower-case name written by [`DType::name`].
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }
}

impl Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A precision type: a value stored in exactly its own bits, with conversions from and to
/// `f32` whose rounding is stated per method.
///
/// The trait is sealed; the implementors are [`crate::F64`], [`crate::F32`],
/// [`crate::Bf16`], [`crate::F16`], [`crate::E4M3`] and [`crate::E5M2`].
pub trait Dtype:
    sealed::Sealed + ZeroBits + Default + Debug + Display + PartialEq + Send + Sync + 'static
{
    /// The precision ops on this type compute in: `f64` for `F64`, `f32` otherwise.
    type Acc: crate::Acc;

    /// The unsigned integer that holds the bits (`u64`, `u32`, `u16` or `u8`).
    type Bits: crate::LeBits + Copy + Debug + Eq + std::hash::Hash + Send + Sync + 'static;

    /// The runtime tag.
    const DTYPE: DType;
    /// Lower-case name (`"bf16"`).
    const NAME: &'static str;
    /// Bytes per element.
    const BYTES: usize;
    /// Largest finite value.
    const MAX: Self;
    /// Smallest positive normal value.
    const MIN_POSITIVE: Self;
    /// Smallest positive subnormal value.
    const MIN_SUBNORMAL: Self;
    /// Difference between 1.0 and the next larger value.
    const EPSILON: Self;
    /// Whether the format has infinities (false only for E4M3).
    const HAS_INF: bool;
    /// Positive zero.
    const ZERO: Self;
    /// One.
    const ONE: Self;

    /// Rounds `x` to nearest, ties to even; overflow as the format defines (±inf, or NaN
    /// for E4M3). NaN gives NaN. Branch-free; bit-identical to the integer reference.
    fn from_f32(x: f32) -> Self;

    /// Rounds `x` to nearest, ties to even; finite overflow and ±inf give ±[`Self::MAX`],
    /// NaN stays NaN.
    fn from_f32_saturating(x: f32) -> Self;

    /// Stochastic rounding with the caller's 32 random bits: `x` rounds up to the next
    /// representable value with probability (x - lower) / (upper - lower), so the expected
    /// result is `x` (to within 2^-32 of a quantum). Values beyond the largest finite
    /// value round as if the format had one more binade, so they may overflow like
    /// [`Dtype::from_f32`]. NaN gives NaN. For `F32` and `F64` this is the identity.
    fn from_f32_stochastic(x: f32, random: u32) -> Self;

    /// Rounds `x` once, to nearest even (no double rounding through f32).
    fn from_f64(x: f64) -> Self;

    /// The value as `f32`: exact for every type except `F64`, which rounds to nearest even.
    fn to_f32(self) -> f32;

    /// The value as `f64`: always exact.
    fn to_f64(self) -> f64;

    /// The value in the compute precision: exact.
    fn to_acc(self) -> Self::Acc;

    /// Rounds a compute-precision value into this type once (nearest even, format
    /// overflow).
    fn from_acc(x: Self::Acc) -> Self;

    /// Rounds a compute-precision value into this type once (nearest even), clamping
    /// overflow and ±inf to ±MAX.
    fn from_acc_saturating(x: Self::Acc) -> Self;

    /// `dst[i] = src[i].to_acc()` over slices of equal length (fast kernels; exact).
    fn to_acc_slice(src: &[Self], dst: &mut [Self::Acc]);

    /// `dst[i] = Self::from_acc(src[i])` over slices of equal length (fast kernels; nearest
    /// even, format overflow).
    fn from_acc_slice(src: &[Self::Acc], dst: &mut [Self]);

    /// The raw bits.
    fn to_bits(self) -> Self::Bits;

    /// The value with these raw bits. Every pattern is accepted; classify it with
    /// [`Dtype::is_nan`] and [`Dtype::is_finite`].
    fn from_bits(bits: Self::Bits) -> Self;

    /// True for any NaN encoding.
    fn is_nan(self) -> bool;

    /// True for zeros, subnormals and normals; false for infinities and NaNs.
    fn is_finite(self) -> bool;

    /// True for ±infinity (never for E4M3).
    fn is_infinite(self) -> bool {
        !self.is_finite() && !self.is_nan()
    }

    /// True when the sign bit is set (also for -0 and negative NaNs).
    fn is_sign_negative(self) -> bool;

    /// The integer-arithmetic reference rounding (nearest even; saturating or not) that
    /// `from_f32` and the slice kernels are tested against. Slow; not for hot paths.
    #[doc(hidden)]
    fn from_f32_reference(x: f32, saturate: bool) -> Self;

    /// Converts `src` into `dst` (same length, checked by the caller). Kernel hook for
    /// the public slice functions; not part of the stable API.
    #[doc(hidden)]
    fn encode_slice(src: &[f32], dst: &mut [Self], mode: crate::slice::EncodeMode);

    /// Decodes `src` into `dst`, dividing by `scale` when given. Kernel hook for the
    /// public slice functions; not part of the stable API.
    #[doc(hidden)]
    fn decode_slice(src: &[Self], dst: &mut [f32], scale: Option<f32>);
}

/// Full-precision types: the only ones the precision-sensitive op class (softmax,
/// layer norm, losses, norms) and master weights may use. Implemented for `F32` and
/// `F64` only, so a policy that asks for anything narrower does not compile.
pub trait FullPrecision: Dtype {}

/// Element types whose all-zero bit pattern is a valid value equal to zero, so buffers of
/// them may come zeroed from the allocator. Every [`Dtype`] and every [`crate::Acc`] is
/// one (a new precision type fails to compile until it says so).
///
/// # Safety
/// Implement only for types for which every zero-filled byte pattern is a valid value
/// and that value is zero.
pub unsafe trait ZeroBits: Copy {}
// SAFETY: IEEE +0.0 is all bits zero, and every bit pattern of f32/f64 is a valid value.
unsafe impl ZeroBits for f32 {}
// SAFETY: as above.
unsafe impl ZeroBits for f64 {}

#[cfg(test)]
mod tag_tests {
    use super::DType;

    #[test]
    fn index_is_the_position_in_all() {
        assert_eq!(DType::COUNT, DType::ALL.len());
        for (i, d) in DType::ALL.into_iter().enumerate() {
            assert_eq!(d.index(), i, "{d}");
        }
    }
}
