//! Single rounding from f64 into the narrow formats.
//!
//! Rounding f64 -> f32 -> narrow to nearest twice can differ from rounding once (a value
//! just above a narrow tie can land exactly on the tie in f32). Rounding to f32 *to odd*
//! first keeps a sticky bit, and since f32 carries at least two more significand bits than
//! every narrow format here (also in the subnormal range), the second rounding then equals
//! a single correct rounding (Boldo and Melquiond, "Emulation of FMA and correctly rounded
//! sums: proved algorithms using rounding to odd", 2008).

/// `x` rounded to f32 toward zero, with the lowest significand bit set if that was inexact.
/// NaN and ±inf map to themselves; finite values beyond f32's range give ±f32::MAX, whose
/// last bit is odd, so they still overflow in the second rounding.
pub(crate) fn f64_to_f32_round_to_odd(x: f64) -> f32 {
    if !x.is_finite() {
        return x as f32;
    }
    let nearest = x as f32;
    let back = f64::from(nearest);
    if back == x {
        return nearest;
    }
    // Step toward zero when round-to-nearest went away from zero (or to infinity).
    let truncated = if nearest.is_infinite() || back.abs() > x.abs() {
        f32::from_bits(nearest.to_bits() - 1)
    } else {
        nearest
    };
    f32::from_bits(truncated.to_bits() | 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_values_pass_through() {
        for v in [0.0, -0.0, 1.0, -2.5, 1e-45_f32 as f64, f64::from(f32::MAX)] {
            assert_eq!(f64_to_f32_round_to_odd(v).to_bits(), (v as f32).to_bits());
        }
    }

    #[test]
    fn inexact_values_get_the_sticky_bit() {
        let x = 1.0 + 2f64.powi(-30);
        assert_eq!(f64_to_f32_round_to_odd(x).to_bits(), 1f32.to_bits() | 1);
        let y = -(1.0 + 2f64.powi(-23) - 2f64.powi(-40)); // rounds away to -(1+2^-23) at nearest
        assert_eq!(f64_to_f32_round_to_odd(y).to_bits(), (-1f32).to_bits() | 1);
        assert_eq!(f64_to_f32_round_to_odd(1e300), f32::MAX);
        assert_eq!(f64_to_f32_round_to_odd(-1e300), -f32::MAX);
    }
}
