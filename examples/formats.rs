//! Prints the precision formats mixprec supports, their limits, and how each rounds a few
//! hard values (ties, overflow, underflow). Run: `cargo run --release --example formats`.

use mixprec::prelude::*;

fn row<T: Dtype>() {
    println!(
        "{:<5} {:>5} {:>13.6e} {:>13.6e} {:>13.6e} {:>10.3e} {:>5}",
        T::NAME,
        T::BYTES * 8,
        T::MAX.to_f64(),
        T::MIN_POSITIVE.to_f64(),
        T::MIN_SUBNORMAL.to_f64(),
        T::EPSILON.to_f64(),
        if T::HAS_INF { "yes" } else { "no" },
    );
}

/// Short form of a value: plain between 1e-3 and 1e6, scientific elsewhere.
fn short(v: f32) -> String {
    if v == 0.0 || !v.is_finite() || (1e-3..1e6).contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:.4e}")
    }
}

fn show<T: Dtype>(x: f32) -> String {
    let nearest = T::from_f32(x).to_f32();
    let saturating = T::from_f32_saturating(x).to_f32();
    format!("{:>11} / {:<11}", short(nearest), short(saturating))
}

fn main() {
    println!("mixprec precision types\n");
    println!(
        "{:<5} {:>5} {:>13} {:>13} {:>13} {:>10} {:>5}",
        "type", "bits", "max", "min normal", "min subnorm", "epsilon", "inf"
    );
    row::<F64>();
    row::<F32>();
    row::<Bf16>();
    row::<F16>();
    row::<E4M3>();
    row::<E5M2>();

    println!("\nf32 input -> nearest-even / saturating result");
    println!(
        "{:>12}  {:<25} {:<25} {:<25} {:<25}",
        "x", "bf16", "f16", "e4m3", "e5m2"
    );
    for x in [
        1.0 + 1.0 / 256.0,
        0.1,
        464.0,
        500.0,
        61440.0,
        70000.0,
        1e-7,
        f32::INFINITY,
        -0.0,
    ] {
        println!(
            "{:>12}  {:<25} {:<25} {:<25} {:<25}",
            short(x),
            show::<Bf16>(x),
            show::<F16>(x),
            show::<E4M3>(x),
            show::<E5M2>(x)
        );
    }

    // FP8 quantisation as the scaling recipes do it: scale = max / amax, saturate.
    let data = [0.02f32, -0.5, 1.7, 3.9];
    let amax = data.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let scale = E4M3::MAX.to_f32() / amax;
    let mut q = [E4M3::ZERO; 4];
    let mut back = [0.0f32; 4];
    convert_slice_scaled_saturating(&data, &mut q, scale).expect("same lengths, valid scale");
    convert_slice_to_f32_scaled(&q, &mut back, scale).expect("same lengths, valid scale");
    println!("\nE4M3 with per-tensor scale {scale}: {data:?} -> {back:?}");
}
