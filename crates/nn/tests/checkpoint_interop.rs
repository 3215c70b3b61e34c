//! safetensors interop with Python: a file written by Python's `safetensors` (the
//! committed fixture, made by `scripts/safetensors_interop.py make`) loads with the same
//! values, and a file we write reads in Python (`safetensors`, `numpy`, `ml_dtypes`) with
//! the same values. CI installs those and sets `MIXPREC_REQUIRE_PYTHON_INTEROP=1`, which
//! turns a missing Python into a failure instead of a skip.

use mixprec_dtype::{Bf16, DType, Dtype, E4M3, E5M2, F16, F32, F64};
use mixprec_nn::checkpoint::TensorFile;
use mixprec_tensor::Tensor;
use std::path::PathBuf;
use std::process::Command;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python_written.safetensors")
}

/// The values of `x_<name>` decoded by us, next to `x_<name>_as_f64` (decoded by the
/// writer), compared bit for bit (NaN equals NaN).
fn check_decodes<D: Dtype>(file: &TensorFile, name: &str) {
    let key = format!("x_{name}");
    let ours = file.tensor::<D>(&key).unwrap().to_f64_vec();
    let theirs = file
        .tensor::<F64>(&format!("{key}_as_f64"))
        .unwrap()
        .to_f64_vec();
    assert_eq!(ours.len(), theirs.len(), "{key}");
    for (j, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert!(
            a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
            "{key}[{j}]: we decode {a:e}, Python {b:e}"
        );
    }
}

#[test]
fn a_file_written_by_python_loads_with_the_same_values() {
    let file = TensorFile::load(fixture()).unwrap();
    assert_eq!(file.metadata("written_by"), Some("python safetensors"));
    check_decodes::<F64>(&file, "f64");
    check_decodes::<F32>(&file, "f32");
    check_decodes::<Bf16>(&file, "bf16");
    check_decodes::<F16>(&file, "f16");
    check_decodes::<E4M3>(&file, "e4m3");
    check_decodes::<E5M2>(&file, "e5m2");
    assert_eq!(file.get("x_e4m3").unwrap().dtype(), DType::E4M3);
}

/// Hard values of `D`: signed zeros, subnormals, the extremes, a tie-rounded third,
/// infinities and NaN where the format has them.
fn hard_values<D: Dtype>() -> Tensor<D> {
    let mut v = vec![
        0.0,
        -0.0,
        1.0,
        -1.5,
        1.0 / 3.0,
        D::MIN_SUBNORMAL.to_f64(),
        -D::MIN_POSITIVE.to_f64(),
        D::MAX.to_f64(),
        -D::MAX.to_f64(),
        f64::NAN,
    ];
    if D::HAS_INF {
        v.extend([f64::INFINITY, f64::NEG_INFINITY]);
    }
    let n = v.len();
    // Element by element with scale 1 (`from_f64` would scale FP8 tensors).
    Tensor::from_vec(v.into_iter().map(D::from_f64).collect(), &[2, n / 2]).unwrap()
}

fn add<D: Dtype>(file: &mut TensorFile, name: &str) {
    let t = hard_values::<D>();
    let as_f64 = Tensor::<F64>::from_f64(&t.to_f64_vec(), t.shape()).unwrap();
    file.insert(&format!("x_{name}"), &t).unwrap();
    file.insert(&format!("x_{name}_as_f64"), &as_f64).unwrap();
}

#[test]
fn a_file_we_write_reads_in_python_with_the_same_values() {
    let mut file = TensorFile::new();
    add::<F64>(&mut file, "f64");
    add::<F32>(&mut file, "f32");
    add::<Bf16>(&mut file, "bf16");
    add::<F16>(&mut file, "f16");
    add::<E4M3>(&mut file, "e4m3");
    add::<E5M2>(&mut file, "e5m2");
    file.set_metadata("written_by", "mixprec");
    let dir = std::env::temp_dir().join(format!("mixprec-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ours.safetensors");
    file.save(&path).unwrap();
    assert_eq!(TensorFile::load(&path).unwrap(), file, "our own round trip");

    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/safetensors_interop.py");
    let required = std::env::var("MIXPREC_REQUIRE_PYTHON_INTEROP").is_ok_and(|v| v == "1");
    let has_modules = Command::new("python3")
        .args(["-c", "import safetensors, numpy, ml_dtypes"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_modules {
        assert!(
            !required,
            "MIXPREC_REQUIRE_PYTHON_INTEROP=1 but python3 with safetensors, numpy and \
             ml_dtypes is missing (pip install safetensors numpy ml_dtypes)"
        );
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!(
            "SKIPPED the Python side of the interop check: python3 with safetensors, numpy \
             and ml_dtypes is not installed here (CI installs them)"
        );
        return;
    }
    let out = Command::new("python3")
        .arg(&script)
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "Python could not read our file the same way:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
