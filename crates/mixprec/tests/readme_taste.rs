//! The README's "A taste" snippet, kept compiling and running.

use mixprec::prelude::*;

#[test]
fn readme_taste_runs() -> Result<()> {
    let mut rng = Rng::seed(0);
    let x = Tensor::<F32>::randn(&[64, 256], 0.0, 1.0, &mut rng)?;
    let w = Tensor::<F32>::randn(&[256, 128], 0.0, 0.05, &mut rng)?;
    let (w16, report) = w.cast_with::<Bf16>(CastOptions::default())?;
    assert!(
        report
            .to_string()
            .starts_with("f32 -> bf16: 32768 elements, 0 underflowed")
    );
    let y = x.cast::<Bf16>().matmul(&w16)?;
    let p = y.cast::<F32>().softmax(-1)?;
    assert_eq!(p.shape(), &[64, 128]);
    let row_sums = p.sum(&[-1], false)?.to_f32_vec();
    assert!(row_sums.iter().all(|s| (s - 1.0).abs() < 1e-5));
    Ok(())
}
