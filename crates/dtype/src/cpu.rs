//! The one place that decides which x86-64 instruction sets the CPU kernels use: the
//! slice conversions of this crate, and the tensor crate's element-wise engines and GEMM
//! tiles all ask [`level`]. Every level computes the same bits (the portable code uses
//! the same fused multiply-adds as the vector code where results depend on it); only the
//! speed differs.

use std::sync::atomic::{AtomicU8, Ordering};

/// The widest instruction set the CPU kernels may use here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CpuLevel {
    /// Plain Rust, any CPU.
    Portable,
    /// AVX2, FMA and F16C (x86-64 from Haswell / Zen on).
    Avx2Fma,
    /// AVX-512 F and DQ, with AVX2 and FMA.
    Avx512,
}

impl CpuLevel {
    /// Lower-case name, for logs and benchmark tables.
    pub const fn name(self) -> &'static str {
        match self {
            CpuLevel::Portable => "portable",
            CpuLevel::Avx2Fma => "avx2+fma",
            CpuLevel::Avx512 => "avx512",
        }
    }

    /// True when code compiled for AVX2, FMA and F16C may run.
    #[inline(always)]
    pub fn has_avx2_fma(self) -> bool {
        self >= CpuLevel::Avx2Fma
    }

    /// True when code compiled for AVX-512 F and DQ (and AVX2, FMA) may run.
    #[inline(always)]
    pub fn has_avx512(self) -> bool {
        self >= CpuLevel::Avx512
    }
}

impl std::fmt::Display for CpuLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The detected level plus one; 0 until the first [`level`] call detects it. (An atomic
/// byte, not a `OnceLock`: the check sits in front of every slice conversion, and a
/// relaxed load and compare is all it costs, like std's feature cache. Two threads that
/// race to detect store the same value.)
static LEVEL: AtomicU8 = AtomicU8::new(0);

/// This CPU's level, detected once per process.
#[inline]
pub fn level() -> CpuLevel {
    match LEVEL.load(Ordering::Relaxed) {
        1 => CpuLevel::Portable,
        2 => CpuLevel::Avx2Fma,
        3 => CpuLevel::Avx512,
        _ => detect_and_store(),
    }
}

/// The level when an earlier [`level`] call has detected it, else `None`: one relaxed
/// load, no call. Hot dispatchers branch on this and leave the first, detecting call to
/// an out-of-line path, so their fast path saves no registers.
#[inline(always)]
pub(crate) fn known_level() -> Option<CpuLevel> {
    match LEVEL.load(Ordering::Relaxed) {
        1 => Some(CpuLevel::Portable),
        2 => Some(CpuLevel::Avx2Fma),
        3 => Some(CpuLevel::Avx512),
        _ => None,
    }
}

#[cold]
#[inline(never)]
fn detect_and_store() -> CpuLevel {
    let l = detect();
    LEVEL.store(l as u8 + 1, Ordering::Relaxed);
    l
}

fn detect() -> CpuLevel {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx2") && has!("fma") && has!("f16c") {
            if has!("avx512f") && has!("avx512dq") {
                return CpuLevel::Avx512;
            }
            return CpuLevel::Avx2Fma;
        }
    }
    CpuLevel::Portable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_nest() {
        let l = level();
        assert_eq!(l, level(), "detected once");
        assert!(!l.has_avx512() || l.has_avx2_fma());
        assert_eq!(CpuLevel::Avx512.to_string(), "avx512");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            l.has_avx2_fma(),
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("f16c")
        );
    }
}
