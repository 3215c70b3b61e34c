//! Compiling hot loops for the CPU they run on: the element-wise engines and kernels are
//! written as plain Rust (auto-vectorised) and compiled again with AVX2 + FMA and
//! AVX-512 enabled; the widest variant the CPU supports runs (checked at run time, so
//! one binary serves every x86-64 machine).

/// True when `T` is stored as one `f32`: `f32` itself (the compute precision of F32 and
/// the 16-bit types) or the `F32` precision type (`repr(transparent)` over `f32`).
fn is_f32<T: 'static>() -> bool {
    use std::any::TypeId;
    TypeId::of::<T>() == TypeId::of::<f32>()
        || TypeId::of::<T>() == TypeId::of::<mixprec_dtype::F32>()
}

/// `s` as `f32` values, when its elements are stored as `f32` (see [`is_f32`]).
pub(crate) fn f32_view<T: 'static>(s: &[T]) -> Option<&[f32]> {
    // SAFETY: `T` is `f32` or a `repr(transparent)` wrapper of it: same size, alignment
    // and valid bit patterns, so the slice is an `f32` slice of the same length.
    is_f32::<T>().then(|| unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<f32>(), s.len()) })
}

/// Mutable counterpart of [`f32_view`].
pub(crate) fn f32_view_mut<T: 'static>(s: &mut [T]) -> Option<&mut [f32]> {
    // SAFETY: as in `f32_view`.
    is_f32::<T>()
        .then(|| unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<f32>(), s.len()) })
}

/// True when the CPU has AVX2 and FMA ([`mixprec_dtype::cpu::level`] decides, once).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn has_avx2_fma() -> bool {
    mixprec_dtype::cpu::level().has_avx2_fma()
}

/// True when the CPU has AVX-512 F and DQ (with AVX2 and FMA).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn has_avx512() -> bool {
    mixprec_dtype::cpu::level().has_avx512()
}

/// Runs `f` compiled for AVX2 + FMA when the CPU has them, as it is otherwise. For small
/// closures (one element's function): the compiler inlines them into the multiversioned
/// function by its own judgement; larger bodies go through [`multiversioned!`], which
/// guarantees it.
#[inline(always)]
pub(crate) fn multiversion<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports the features the function is compiled for.
        return unsafe { run_avx2(f) };
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Defines a function whose body is compiled three times (plain, AVX2 + FMA, AVX-512)
/// and runs the widest the CPU has (the body is inlined into each, so everything it
/// calls with `#[inline(always)]` is compiled for the features too).
macro_rules! multiversioned {
    (
        $(#[$meta:meta])*
        fn $name:ident $(<$g:ident: $bound:path>)? ($($arg:ident: $ty:ty),*) $(-> $ret:ty)?
        $body:block
    ) => {
        $(#[$meta])*
        fn $name $(<$g: $bound>)? ($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body $(<$g: $bound>)? ($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
                unsafe fn avx512 $(<$g: $bound>)? ($($arg: $ty),*) $(-> $ret)? {
                    body $(::<$g>)? ($($arg),*)
                }
                if crate::cpu::simd::has_avx512() {
                    // SAFETY: the CPU supports the features `avx512` is compiled for.
                    return unsafe { avx512 $(::<$g>)? ($($arg),*) };
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2 $(<$g: $bound>)? ($($arg: $ty),*) $(-> $ret)? {
                    body $(::<$g>)? ($($arg),*)
                }
                if crate::cpu::simd::has_avx2_fma() {
                    // SAFETY: the CPU supports the features `avx2` is compiled for.
                    return unsafe { avx2 $(::<$g>)? ($($arg),*) };
                }
            }
            body $(::<$g>)? ($($arg),*)
        }
    };
}

pub(crate) use multiversioned;
