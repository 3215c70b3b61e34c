//! One error type for users: `mixprec::Error` from every layer constructor, `?` from each
//! lower layer's error keeping the op and the shapes, and `mixprec::Result` usable with
//! one type parameter or two.

use mixprec::dtype::DtypeError;
use mixprec::prelude::*;
use mixprec::tensor::ErrorKind;

/// A user's function with the facade's `Result`: tensor ops, conversions and tape ops
/// convert with `?`.
fn user_code(x: &Tensor<F32>, w: &Tensor<F32>) -> Result<f32> {
    let mut out = [F16::ZERO; 2];
    convert_slice(&[1.0, 2.0], &mut out)?;
    let y = x.matmul(w)?;
    let tape = Tape::new();
    let v = tape.leaf(y).mean_all()?;
    Ok(v.value().to_f32_vec()[0])
}

#[test]
fn tensor_errors_convert_with_their_op_and_shapes() {
    let x = Tensor::<F32>::zeros(&[2, 3]);
    let w = Tensor::<F32>::zeros(&[4, 5]);
    let e: Error = user_code(&x, &w).unwrap_err();
    assert_eq!(e.op(), "matmul");
    let inner = e.tensor().expect("a tensor op's error");
    match &inner.kind {
        ErrorKind::IncompatibleShapes { lhs, rhs, .. } => {
            assert_eq!((lhs.as_slice(), rhs.as_slice()), (&[2, 3][..], &[4, 5][..]));
        }
        other => panic!("expected incompatible shapes, got {other:?}"),
    }
    assert!(e.to_string().starts_with("matmul"), "{e}");
    let ok = Tensor::<F32>::zeros(&[3, 4]);
    assert_eq!(user_code(&x, &ok).unwrap(), 0.0);
}

#[test]
fn conversion_errors_convert_under_the_conversion_s_name() {
    fn convert(src: &[f32]) -> Result<Vec<Bf16>> {
        let mut dst = vec![Bf16::ZERO; 3];
        convert_slice(src, &mut dst)?;
        Ok(dst)
    }
    let e = convert(&[1.0]).unwrap_err();
    assert_eq!(e.op(), "convert_slice");
    match &e.tensor().expect("wrapped as a tensor error").kind {
        ErrorKind::Dtype(DtypeError::LengthMismatch { src: 1, dst: 3, .. }) => {}
        other => panic!("expected the length mismatch, got {other:?}"),
    }
    assert!(convert(&[1.0, 2.0, 3.0]).is_ok());
}

#[test]
fn io_errors_keep_their_kind_and_path() {
    let missing = std::env::temp_dir().join("mixprec-no-such-dir/none.safetensors");
    let e = TensorFile::load(&missing).unwrap_err();
    match &e {
        Error::Io { op, path, kind, .. } => {
            assert_eq!(*op, "TensorFile::load");
            assert_eq!(path.as_deref(), Some(missing.as_path()));
            assert_eq!(*kind, std::io::ErrorKind::NotFound);
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert!(e.to_string().contains("none.safetensors"), "{e}");

    fn read(p: &std::path::Path) -> Result<String> {
        Ok(std::fs::read_to_string(p)?)
    }
    let e = read(&missing).unwrap_err();
    assert_eq!(e.op(), "io");
    assert!(matches!(
        e,
        Error::Io {
            kind: std::io::ErrorKind::NotFound,
            path: None,
            ..
        }
    ));
}

/// Every layer constructor returns `mixprec::Error`, naming the layer and the instance.
#[test]
fn every_layer_constructor_returns_the_one_error() {
    let mut master = MasterWeights::new();
    let mut init = Init::new(&mut master, 0);
    type P = Bf16Mixed;
    let errors: Vec<(&str, Error)> = vec![
        (
            "Linear",
            Linear::<P>::new(&mut init, "fc", 0, 4, true).unwrap_err(),
        ),
        (
            "Embedding",
            Embedding::<P>::new(&mut init, "emb", 10, 0, 0.02).unwrap_err(),
        ),
        (
            "LayerNorm",
            LayerNorm::<P>::new(&mut init, "ln", 0).unwrap_err(),
        ),
        (
            "Linear",
            Mlp::<P>::new(&mut init, "mlp", 4, 0, 4).unwrap_err(),
        ),
        (
            "CausalSelfAttention",
            CausalSelfAttention::<P>::new(&mut init, "attn", 8, 0).unwrap_err(),
        ),
        (
            "CausalSelfAttention",
            TransformerBlock::<P>::new(&mut init, "block", 8, 0, 0.0).unwrap_err(),
        ),
        (
            "Conv2d",
            Conv2d::<P>::new(&mut init, "conv", 1, 0, 3, Conv2dParams::default(), true)
                .unwrap_err(),
        ),
        ("Dropout", Dropout::new(1.5).unwrap_err()),
    ];
    for (layer, e) in errors {
        assert_eq!(e.op(), layer, "{e}");
        assert!(e.to_string().starts_with(layer), "{e}");
    }
}

#[test]
fn the_result_alias_takes_one_parameter_or_two() {
    fn one() -> Result<u8> {
        Ok(1)
    }
    fn two() -> Result<u8, String> {
        Err("std's two-parameter form still works".into())
    }
    assert_eq!(one().unwrap(), 1);
    assert!(two().is_err());
}
