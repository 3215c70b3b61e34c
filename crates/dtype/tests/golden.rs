//! Every record of every golden table (ml_dtypes 0.6.0 / numpy 2.4.6, see
//! tests/golden/README.md) through the integer reference, the branch-free scalar
//! functions and the slice kernels.
//! Bits are compared exactly, the sign of zero included; `nan` records accept any NaN.

mod common;

use common::golden::{Record, read_records};
use mixprec_dtype::{
    Bf16, Dtype, E4M3, E5M2, F16, convert_slice, convert_slice_saturating, convert_slice_to_f32,
};

/// Bits of `T` widened to u32 for comparison with the table.
fn bits<T: Dtype>(v: T) -> u32
where
    T::Bits: Into<u32>,
{
    v.to_bits().into()
}

fn check_encoded<T: Dtype>(file: &str, what: &str, rec: &Record, got: T)
where
    T::Bits: Into<u32>,
{
    if rec.nan {
        assert!(
            got.is_nan(),
            "{file} {what}: input {:08x} expected NaN, got {got:?}",
            rec.input
        );
    } else {
        assert_eq!(
            bits(got),
            rec.output,
            "{file} {what}: input {:08x} ({:e}) expected {:x}, got {got:?}",
            rec.input,
            f32::from_bits(rec.input),
            rec.output
        );
    }
}

/// Decode table: scalar `to_f32`, then the slice kernel over all codes at once.
fn decode_table<T: Dtype>(file: &str)
where
    T::Bits: Into<u32> + TryFrom<u32>,
    <T::Bits as TryFrom<u32>>::Error: std::fmt::Debug,
{
    let records = read_records(file);
    let values: Vec<T> = records
        .iter()
        .map(|r| T::from_bits(r.input.try_into().unwrap()))
        .collect();
    let mut sliced = vec![0.0f32; values.len()];
    convert_slice_to_f32(&values, &mut sliced).unwrap();
    for ((rec, v), s) in records.iter().zip(&values).zip(&sliced) {
        for (what, got) in [("to_f32", v.to_f32()), ("convert_slice_to_f32", *s)] {
            if rec.nan {
                assert!(
                    got.is_nan(),
                    "{file} {what}: code {:x} should decode to NaN",
                    rec.input
                );
                assert!(
                    v.is_nan() && !v.is_finite(),
                    "{file}: code {:x} not classified NaN",
                    rec.input
                );
            } else {
                assert_eq!(
                    got.to_bits(),
                    rec.output,
                    "{file} {what}: code {:x}",
                    rec.input
                );
                assert_eq!(
                    v.is_finite(),
                    got.is_finite(),
                    "{file}: is_finite of {:x}",
                    rec.input
                );
                assert!(!v.is_nan(), "{file}: code {:x} wrongly NaN", rec.input);
            }
        }
    }
}

/// Encode table: scalar and slice, plain or saturating.
fn encode_table<T: Dtype>(file: &str, saturating: bool)
where
    T::Bits: Into<u32>,
{
    let records = read_records(file);
    let inputs: Vec<f32> = records.iter().map(|r| f32::from_bits(r.input)).collect();
    let mut sliced = vec![T::ZERO; inputs.len()];
    if saturating {
        convert_slice_saturating(&inputs, &mut sliced).unwrap();
    } else {
        convert_slice(&inputs, &mut sliced).unwrap();
    }
    for ((rec, &x), &s) in records.iter().zip(&inputs).zip(&sliced) {
        let scalar = if saturating {
            T::from_f32_saturating(x)
        } else {
            T::from_f32(x)
        };
        check_encoded(file, "scalar", rec, scalar);
        check_encoded(
            file,
            "integer reference",
            rec,
            T::from_f32_reference(x, saturating),
        );
        check_encoded(file, "slice", rec, s);
    }
}

/// The decode tables are also the encode oracle for exactly representable inputs
/// (the bf16/f16 encode files do not repeat them): encode(decode(code)) == code.
fn exact_values_round_trip<T: Dtype>(decode_file: &str)
where
    T::Bits: Into<u32>,
{
    let records: Vec<Record> = read_records(decode_file)
        .into_iter()
        .filter(|r| !r.nan)
        .collect();
    let inputs: Vec<f32> = records.iter().map(|r| f32::from_bits(r.output)).collect();
    let mut sliced = vec![T::ZERO; inputs.len()];
    convert_slice(&inputs, &mut sliced).unwrap();
    for ((rec, &x), &s) in records.iter().zip(&inputs).zip(&sliced) {
        let swapped = Record {
            input: rec.output,
            output: rec.input,
            nan: false,
        };
        check_encoded(decode_file, "exact scalar", &swapped, T::from_f32(x));
        check_encoded(decode_file, "exact slice", &swapped, s);
        if x.is_finite() {
            check_encoded(
                decode_file,
                "exact saturating",
                &swapped,
                T::from_f32_saturating(x),
            );
        }
    }
}

/// bf16 and f16 have no saturating oracle file. The saturating definition (golden
/// README) is: same as the plain result, except that an infinite result from a non-NaN
/// input becomes the largest finite value with the input's sign. Derive it from the plain
/// table and check both paths.
fn saturating_from_plain_table<T: FromBitsU32>(file: &str)
where
    T::Bits: Into<u32>,
{
    let records = read_records(file);
    let max_bits = bits(T::MAX);
    let inputs: Vec<f32> = records.iter().map(|r| f32::from_bits(r.input)).collect();
    let mut sliced = vec![T::ZERO; inputs.len()];
    convert_slice_saturating(&inputs, &mut sliced).unwrap();
    for ((rec, &x), &s) in records.iter().zip(&inputs).zip(&sliced) {
        let plain = T::from_bits_u32(rec.output);
        let expected = if !rec.nan && plain.is_infinite() {
            let sign = if x.is_sign_negative() {
                1u32 << (8 * T::BYTES - 1)
            } else {
                0
            };
            Record {
                output: sign | max_bits,
                ..*rec
            }
        } else {
            *rec
        };
        check_encoded(
            file,
            "derived saturating scalar",
            &expected,
            T::from_f32_saturating(x),
        );
        check_encoded(file, "derived saturating slice", &expected, s);
    }
}

/// `from_bits` from a u32 for the 16- and 8-bit types (test helper).
trait FromBitsU32: Dtype {
    fn from_bits_u32(bits: u32) -> Self;
}
impl FromBitsU32 for Bf16 {
    fn from_bits_u32(bits: u32) -> Self {
        Bf16::from_bits(bits as u16)
    }
}
impl FromBitsU32 for F16 {
    fn from_bits_u32(bits: u32) -> Self {
        F16::from_bits(bits as u16)
    }
}

#[test]
fn bf16_decode() {
    decode_table::<Bf16>("decode_bf16.txt");
}
#[test]
fn f16_decode() {
    decode_table::<F16>("decode_f16.txt");
}
#[test]
fn e4m3_decode() {
    decode_table::<E4M3>("decode_e4m3.txt");
}
#[test]
fn e5m2_decode() {
    decode_table::<E5M2>("decode_e5m2.txt");
}

#[test]
fn bf16_encode() {
    encode_table::<Bf16>("encode_bf16.txt", false);
}
#[test]
fn f16_encode() {
    encode_table::<F16>("encode_f16.txt", false);
}
#[test]
fn e4m3_encode() {
    encode_table::<E4M3>("encode_e4m3.txt", false);
}
#[test]
fn e5m2_encode() {
    encode_table::<E5M2>("encode_e5m2.txt", false);
}
#[test]
fn e4m3_encode_saturating() {
    encode_table::<E4M3>("encode_e4m3_sat.txt", true);
}
#[test]
fn e5m2_encode_saturating() {
    encode_table::<E5M2>("encode_e5m2_sat.txt", true);
}

#[test]
fn bf16_exact_values() {
    exact_values_round_trip::<Bf16>("decode_bf16.txt");
}
#[test]
fn f16_exact_values() {
    exact_values_round_trip::<F16>("decode_f16.txt");
}
#[test]
fn e4m3_exact_values() {
    exact_values_round_trip::<E4M3>("decode_e4m3.txt");
}
#[test]
fn e5m2_exact_values() {
    exact_values_round_trip::<E5M2>("decode_e5m2.txt");
}

#[test]
fn bf16_saturating_derived() {
    saturating_from_plain_table::<Bf16>("encode_bf16.txt");
}
#[test]
fn f16_saturating_derived() {
    saturating_from_plain_table::<F16>("encode_f16.txt");
}
