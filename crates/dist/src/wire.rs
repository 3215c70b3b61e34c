//! [`WirePrecision`]: the format gradients travel in between ranks, and the encoding of
//! one tensor into it and back.
//!
//! Rounding: `F32` is exact. `Bf16` rounds each gradient element to nearest even once
//! (the sum is then taken in F32). `E5M2`/`E4M3` multiply by a power-of-two scale agreed
//! across ranks (exact), round to nearest even saturating at ±MAX, and divide by the same
//! scale when decoding (exact for every value the format holds): one rounding per element,
//! as MS-AMP's FP8 gradient all-reduce, with the sum in F32.

use mixprec_autograd::Result;
use mixprec_dtype::{Bf16, Dtype, E4M3, E5M2, F32};
use mixprec_tensor::{CastOptions, CastOverflow, CastScale, Tensor, fp8_current_scale};

/// The format of gradients on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WirePrecision {
    /// F32: exact, 4 bytes per element (PyTorch DDP's default for F32 gradients).
    #[default]
    F32,
    /// BF16 with F32 accumulation: 2 bytes per element.
    Bf16,
    /// FP8 E5M2 (the gradient format of Transformer Engine's recipes) with a per-tensor
    /// power-of-two scale agreed across ranks: 1 byte per element.
    E5M2,
    /// FP8 E4M3 (more mantissa, less range) with a per-tensor agreed scale: 1 byte per
    /// element.
    E4M3,
}

impl WirePrecision {
    /// Every wire precision, widest first.
    pub const ALL: [WirePrecision; 4] = [
        WirePrecision::F32,
        WirePrecision::Bf16,
        WirePrecision::E5M2,
        WirePrecision::E4M3,
    ];

    /// Bytes per gradient element on the wire.
    pub fn bytes_per_element(self) -> usize {
        match self {
            WirePrecision::F32 => F32::BYTES,
            WirePrecision::Bf16 => Bf16::BYTES,
            WirePrecision::E5M2 => E5M2::BYTES,
            WirePrecision::E4M3 => E4M3::BYTES,
        }
    }

    /// True for the FP8 formats, which need an agreed per-tensor scale.
    pub fn is_fp8(self) -> bool {
        matches!(self, WirePrecision::E5M2 | WirePrecision::E4M3)
    }

    /// Short name (`f32`, `bf16`, `e5m2`, `e4m3`), also accepted by [`WirePrecision::parse`].
    pub fn name(self) -> &'static str {
        match self {
            WirePrecision::F32 => "f32",
            WirePrecision::Bf16 => "bf16",
            WirePrecision::E5M2 => "e5m2",
            WirePrecision::E4M3 => "e4m3",
        }
    }

    /// The precision named `s`.
    pub fn parse(s: &str) -> Option<WirePrecision> {
        WirePrecision::ALL.into_iter().find(|w| w.name() == s)
    }

    /// The scale for a tensor whose largest magnitude over all ranks is `amax`: the
    /// largest power of two with `amax * scale <= MAX` for FP8 (1 for a zero or
    /// non-finite amax), 1 otherwise.
    pub fn scale_for(self, amax: f32) -> f32 {
        match self {
            WirePrecision::E5M2 => fp8_current_scale(amax, E5M2::MAX.to_f32()),
            WirePrecision::E4M3 => fp8_current_scale(amax, E4M3::MAX.to_f32()),
            _ => 1.0,
        }
    }

    /// Appends `g` in this precision (scaled by `scale` for FP8) to `out`, little-endian.
    pub fn encode(self, g: &Tensor<F32>, scale: f32, out: &mut Vec<u8>) -> Result<()> {
        match self {
            WirePrecision::F32 => out.extend_from_slice(&g.to_le_bytes()),
            WirePrecision::Bf16 => encode_as::<Bf16>(g, 1.0, out)?,
            WirePrecision::E5M2 => encode_as::<E5M2>(g, scale, out)?,
            WirePrecision::E4M3 => encode_as::<E4M3>(g, scale, out)?,
        }
        Ok(())
    }

    /// The F32 tensor of `shape` that `bytes` (from [`WirePrecision::encode`] with `scale`)
    /// holds.
    pub fn decode(self, bytes: &[u8], shape: &[usize], scale: f32) -> Result<Tensor<F32>> {
        match self {
            WirePrecision::F32 => Ok(Tensor::<F32>::from_le_bytes(bytes, shape, 1.0)?),
            WirePrecision::Bf16 => decode_as::<Bf16>(bytes, shape, 1.0),
            WirePrecision::E5M2 => decode_as::<E5M2>(bytes, shape, scale),
            WirePrecision::E4M3 => decode_as::<E4M3>(bytes, shape, scale),
        }
    }
}

impl std::fmt::Display for WirePrecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Rounds `g` to `W` (nearest even; saturating, with `scale`, for FP8) and appends its
/// bytes.
fn encode_as<W: Dtype>(g: &Tensor<F32>, scale: f32, out: &mut Vec<u8>) -> Result<()> {
    let opts = CastOptions {
        overflow: CastOverflow::Saturate,
        scale: if W::DTYPE.is_fp8() {
            CastScale::Fixed(scale)
        } else {
            CastScale::Auto
        },
        ..CastOptions::default()
    };
    let (w, _) = g.cast_with::<W>(opts)?;
    out.extend_from_slice(&w.to_le_bytes());
    Ok(())
}

/// The F32 values of `W`-encoded `bytes` (divided by `scale` for FP8: exact).
fn decode_as<W: Dtype>(bytes: &[u8], shape: &[usize], scale: f32) -> Result<Tensor<F32>> {
    Ok(Tensor::<W>::from_le_bytes(bytes, shape, scale)?.cast::<F32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(v: &[f32]) -> Tensor<F32> {
        Tensor::<F32>::from_f32(v, &[v.len()]).unwrap()
    }

    fn round_trip(w: WirePrecision, v: &[f32], scale: f32) -> Vec<f32> {
        let mut bytes = Vec::new();
        w.encode(&tensor(v), scale, &mut bytes).unwrap();
        assert_eq!(bytes.len(), v.len() * w.bytes_per_element());
        w.decode(&bytes, &[v.len()], scale).unwrap().to_f32_vec()
    }

    #[test]
    fn f32_is_exact_and_bf16_rounds_once_to_nearest_even() {
        let v = [
            1.0,
            -0.0,
            1.0 + f32::EPSILON,
            f32::MIN_POSITIVE / 4.0,
            3.0e38,
        ];
        assert_eq!(
            round_trip(WirePrecision::F32, &v, 1.0)
                .iter()
                .map(|x| x.to_bits())
                .collect::<Vec<_>>(),
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: nearest even is 1.
        let tie = 1.0 + 2f32.powi(-8);
        let above = 1.0 + 2f32.powi(-8) + 2f32.powi(-20);
        let got = round_trip(WirePrecision::Bf16, &[tie, above, -0.0], 1.0);
        assert_eq!(got[0], 1.0);
        assert_eq!(got[1], 1.0 + 2f32.powi(-7));
        assert!(got[2] == 0.0 && got[2].is_sign_negative());
    }

    #[test]
    fn fp8_scales_are_powers_of_two_that_fit_the_agreed_amax() {
        for w in [WirePrecision::E5M2, WirePrecision::E4M3] {
            let max = if w == WirePrecision::E5M2 {
                57344.0
            } else {
                448.0
            };
            let s = w.scale_for(3.0e-3);
            assert_eq!(s.log2().fract(), 0.0, "{w}: power of two");
            assert!(3.0e-3 * s <= max && 3.0e-3 * s * 2.0 > max, "{w}: largest");
            assert_eq!(w.scale_for(0.0), 1.0);
            assert_eq!(w.scale_for(f32::INFINITY), 1.0);
            // The amax itself survives the round trip within one rounding of the format
            // (E5M2: 2 mantissa bits, relative 2^-3; E4M3: 3 bits, 2^-4).
            let tol = if w == WirePrecision::E5M2 {
                0.125
            } else {
                0.0625
            };
            let got = round_trip(w, &[3.0e-3, -3.0e-3, 0.0], s);
            assert!((got[0] - 3.0e-3).abs() <= tol * 3.0e-3, "{w}: {got:?}");
            assert_eq!(got[1], -got[0]);
            assert_eq!(got[2], 0.0);
        }
        assert_eq!(WirePrecision::Bf16.scale_for(1e-9), 1.0);
    }

    #[test]
    fn fp8_saturates_instead_of_overflowing() {
        let got = round_trip(WirePrecision::E4M3, &[1000.0, -1000.0], 1.0);
        assert_eq!(got, vec![448.0, -448.0]);
    }

    #[test]
    fn names_parse_back() {
        for w in WirePrecision::ALL {
            assert_eq!(WirePrecision::parse(w.name()), Some(w));
        }
        assert_eq!(WirePrecision::parse("fp64"), None);
    }
}
