//! safetensors files: round trips of every precision type, every kind of bad file as a
//! clear error that changes nothing, weights export and load, atomic writes and
//! numbered checkpoints.

use mixprec_amp::MasterWeights;
use mixprec_dtype::{Bf16, DType, Dtype, E4M3, E5M2, F16, F32, F64};
use mixprec_nn::checkpoint::{
    Checkpoints, LoadOptions, TensorFile, export_weights, load_weights, load_weights_from,
    weights_file, write_atomic,
};
use mixprec_tensor::Tensor;
use proptest::prelude::*;
use std::path::PathBuf;

/// A fresh folder under the system's temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("mixprec-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A tensor of `D` holding exactly `bits` (scale 1), any pattern (NaN payloads included).
fn from_bits<D: Dtype>(bits: &[u64], shape: &[usize]) -> Tensor<D> {
    let bytes: Vec<u8> = bits
        .iter()
        .flat_map(|&b| b.to_le_bytes()[..D::BYTES].to_vec())
        .collect();
    Tensor::from_le_bytes(&bytes, shape, 1.0).unwrap()
}

fn round_trip<D: Dtype>(bits: &[u64], shape: &[usize]) -> Result<(), TestCaseError> {
    let t = from_bits::<D>(bits, shape);
    let mut file = TensorFile::new();
    file.insert("t", &t).unwrap();
    file.set_metadata("k", "v");
    let back = TensorFile::from_bytes(&file.to_bytes().unwrap(), "test").unwrap();
    prop_assert_eq!(&back, &file);
    let u = back.tensor::<D>("t").unwrap();
    prop_assert_eq!(u.shape(), shape);
    prop_assert_eq!(u.to_le_bytes(), t.to_le_bytes(), "bit for bit");
    prop_assert_eq!(back.metadata("k"), Some("v"));
    Ok(())
}

fn shape_and_bits() -> impl Strategy<Value = (Vec<usize>, Vec<u64>)> {
    prop::collection::vec(0usize..5, 0..4).prop_flat_map(|shape| {
        let n: usize = shape.iter().product();
        (Just(shape), prop::collection::vec(any::<u64>(), n))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn every_precision_type_round_trips_bit_for_bit((shape, bits) in shape_and_bits()) {
        round_trip::<F64>(&bits, &shape)?;
        round_trip::<F32>(&bits, &shape)?;
        round_trip::<Bf16>(&bits, &shape)?;
        round_trip::<F16>(&bits, &shape)?;
        round_trip::<E4M3>(&bits, &shape)?;
        round_trip::<E5M2>(&bits, &shape)?;
    }
}

/// Our writer against the `safetensors` crate's own `serialize` (an independent
/// writer): the same bytes for a file of mixed precisions and odd sizes (the crate's
/// metadata is hash-ordered, so it is compared with one key only).
#[test]
fn files_are_written_as_the_safetensors_crate_writes_them() {
    use safetensors::tensor::{Dtype as St, TensorView};
    let mut file = TensorFile::new();
    file.insert("b.e4m3", &from_bits::<E4M3>(&[1, 2, 3], &[3]))
        .unwrap();
    file.insert("a.f32", &from_bits::<F32>(&[7, 8], &[2, 1]))
        .unwrap();
    file.insert("c.bf16", &from_bits::<Bf16>(&[9], &[]))
        .unwrap();
    file.insert("d.f64", &from_bits::<F64>(&[], &[0, 4]))
        .unwrap();
    file.insert("e.f16", &from_bits::<F16>(&[5, 6, 7], &[1, 3]))
        .unwrap();
    fn views(file: &TensorFile) -> Vec<(String, TensorView<'_>)> {
        let st = |d: DType| match d {
            DType::F64 => St::F64,
            DType::F32 => St::F32,
            DType::Bf16 => St::BF16,
            DType::F16 => St::F16,
            DType::E4M3 => St::F8_E4M3,
            DType::E5M2 => St::F8_E5M2,
        };
        file.iter()
            .map(|(n, t)| {
                let v = TensorView::new(st(t.dtype()), t.shape().to_vec(), t.bytes()).unwrap();
                (n.to_string(), v)
            })
            .collect()
    }
    let theirs = safetensors::serialize(views(&file), None).unwrap();
    assert_eq!(file.to_bytes().unwrap(), theirs, "no metadata");
    file.set_metadata("format", "pt");
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    let theirs = safetensors::serialize(views(&file), Some(meta)).unwrap();
    assert_eq!(file.to_bytes().unwrap(), theirs, "one metadata key");
}

/// The same file gives the same bytes, whatever order it was filled in (metadata
/// included): checkpoints can be compared and hashed.
#[test]
fn the_same_file_gives_the_same_bytes() {
    let keys: Vec<String> = (0..40).map(|i| format!("key{i}")).collect();
    let fill = |order: &mut dyn Iterator<Item = &String>| {
        let mut f = TensorFile::new();
        for k in order {
            f.set_metadata(k, k.repeat(2));
            f.insert(k, &from_bits::<F16>(&[1, 2], &[2])).unwrap();
        }
        f.to_bytes().unwrap()
    };
    let forward = fill(&mut keys.iter());
    assert_eq!(forward, fill(&mut keys.iter().rev()));
    assert_eq!(
        TensorFile::from_bytes(&forward, "t")
            .unwrap()
            .metadata("key7"),
        Some("key7key7")
    );
}

/// A safetensors file from a header (padded to 8 bytes, as writers do) and data bytes.
fn raw(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.as_bytes().to_vec();
    h.resize(h.len().next_multiple_of(8), b' ');
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    out
}

fn load_error(bytes: &[u8]) -> String {
    let e = TensorFile::from_bytes(bytes, "bad.safetensors")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("TensorFile::load: bad.safetensors: "), "{e}");
    e
}

#[test]
fn every_kind_of_bad_file_is_a_clear_error() {
    let good = raw(
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        &[0; 8],
    );
    assert!(TensorFile::from_bytes(&good, "good").is_ok());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "header too small"),
        ("truncated data", good[..good.len() - 3].to_vec(), "cover"),
        ("truncated header", good[..12].to_vec(), "header length"),
        (
            "header longer than the file",
            {
                let mut b = good.clone();
                b[..8].copy_from_slice(&(1u64 << 20).to_le_bytes());
                b
            },
            "header length",
        ),
        (
            "header length off by one",
            {
                let mut b = good.clone();
                let n = u64::from_le_bytes(b[..8].try_into().unwrap()) - 1;
                b[..8].copy_from_slice(&n.to_le_bytes());
                b
            },
            "covered",
        ),
        (
            "overlapping offsets",
            raw(
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                &[0; 12],
            ),
            "offset",
        ),
        (
            "offsets past the data",
            raw(
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                &[0; 4],
            ),
            "cover",
        ),
        (
            "shape and offsets disagree",
            raw(
                r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                &[0; 8],
            ),
            "invalid shape",
        ),
        (
            "unknown dtype",
            raw(
                r#"{"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}"#,
                &[0; 8],
            ),
            "JSON",
        ),
        (
            "a dtype that is not a precision type",
            raw(
                r#"{"a":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}"#,
                &[0; 8],
            ),
            "not a precision type",
        ),
        ("header not JSON", raw("not json", &[]), "JSON"),
        (
            "header not UTF-8",
            {
                let mut b = raw("{}", &[]);
                b[8] = 0xff;
                b
            },
            "UTF-8",
        ),
    ];
    for (what, bytes, says) in cases {
        let e = load_error(&bytes);
        assert!(e.contains(says), "{what}: {e}");
    }
}

fn model() -> MasterWeights {
    let mut m = MasterWeights::new();
    m.add(
        "w",
        Tensor::from_f32(&[0.1, -2.5, 3.0e-3, 1.0 / 3.0, 400.0, -7.0], &[2, 3]).unwrap(),
    );
    m.add("b", Tensor::from_f32(&[0.25, -0.0], &[2]).unwrap());
    m
}

fn values(m: &MasterWeights) -> Vec<Vec<u32>> {
    m.iter()
        .map(|(_, t)| t.to_f32_vec().iter().map(|x| x.to_bits()).collect())
        .collect()
}

/// Export in `D` and load back: the weights become the master rounded to `D`.
fn export_and_load<D: Dtype>() {
    let dir = TempDir::new("weights");
    let path = dir.0.join(format!("w-{}.safetensors", D::NAME));
    let original = model();
    export_weights::<D>(&original, &path).unwrap();
    let file = TensorFile::load(&path).unwrap();
    assert_eq!(file.metadata("dtype"), Some(D::NAME));
    assert_eq!(file.get("w").unwrap().dtype(), D::DTYPE);
    assert_eq!(file.get("w_scale_inv").is_some(), D::DTYPE.is_fp8());
    let mut m = model();
    let opts = LoadOptions {
        expect_dtype: Some(D::DTYPE),
        check_finite: true,
    };
    load_weights(&mut m, &path, opts).unwrap();
    for ((name, got), (_, p)) in m.iter().zip(original.iter()) {
        // The cast (FP8: with its power-of-two scale) and back, exactly.
        let want = p.cast::<D>().to_f32_vec();
        assert_eq!(got.to_f32_vec(), want, "{} {name}", D::NAME);
    }
}

#[test]
fn weights_export_in_every_precision_and_load_back() {
    export_and_load::<F64>();
    export_and_load::<F32>();
    export_and_load::<Bf16>();
    export_and_load::<F16>();
    export_and_load::<E4M3>();
    export_and_load::<E5M2>();
}

#[test]
fn a_mismatched_weights_file_is_an_error_naming_the_tensor_and_changes_nothing() {
    let file = weights_file::<F32>(&model()).unwrap();
    let fp8 = weights_file::<E4M3>(&model()).unwrap();
    let mut bigger = model();
    bigger.add("extra", Tensor::zeros(&[1]));
    let mut reshaped = MasterWeights::new();
    reshaped.add("w", Tensor::zeros(&[3, 2]));
    reshaped.add("b", Tensor::zeros(&[2]));
    let mut smaller = MasterWeights::new();
    smaller.add("w", Tensor::zeros(&[2, 3]));
    let mut no_scale = TensorFile::new();
    for (n, t) in fp8.iter().filter(|(n, _)| !n.ends_with("_scale_inv")) {
        no_scale.insert_stored(n, t.clone()).unwrap();
    }
    let mut nan = TensorFile::new();
    nan.insert(
        "w",
        &Tensor::<F32>::from_f32(&[f32::NAN; 6], &[2, 3]).unwrap(),
    )
    .unwrap();
    nan.insert("b", &Tensor::<F32>::zeros(&[2])).unwrap();
    let strict = LoadOptions {
        check_finite: true,
        ..LoadOptions::default()
    };
    let bf16_only = LoadOptions {
        expect_dtype: Some(DType::Bf16),
        ..LoadOptions::default()
    };
    let cases: Vec<(MasterWeights, &TensorFile, LoadOptions, &str)> = vec![
        (bigger, &file, LoadOptions::default(), "no tensor \"extra\""),
        (
            reshaped,
            &file,
            LoadOptions::default(),
            "\"w\" has shape [2, 3] in the file, [3, 2]",
        ),
        (smaller, &file, LoadOptions::default(), "does not: [\"b\"]"),
        (
            model(),
            &file,
            bf16_only,
            "\"w\" is stored as f32, expected bf16",
        ),
        (
            model(),
            &no_scale,
            LoadOptions::default(),
            "without its scale \"w_scale_inv\"",
        ),
        (model(), &nan, strict, "\"w\" holds an inf or NaN"),
    ];
    for (mut m, f, opts, says) in cases {
        let before = values(&m);
        let e = load_weights_from(&mut m, f, opts).unwrap_err().to_string();
        assert!(
            e.starts_with("load_weights") || e.starts_with("TensorFile"),
            "{e}"
        );
        assert!(e.contains(says), "wanted {says:?} in: {e}");
        assert_eq!(values(&m), before, "nothing changed ({says})");
    }
    // Without the check, a NaN loads (as PyTorch's load_state_dict would).
    let mut m = model();
    load_weights_from(&mut m, &nan, LoadOptions::default()).unwrap();
    assert!(m.get(0).unwrap().to_f32_vec()[0].is_nan());
}

#[test]
fn a_bad_file_on_disk_changes_no_weight() {
    let dir = TempDir::new("badfile");
    let path = dir.0.join("w.safetensors");
    export_weights::<F32>(&model(), &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    let mut m = MasterWeights::new();
    m.add("w", Tensor::zeros(&[2, 3]));
    m.add("b", Tensor::zeros(&[2]));
    let before = values(&m);
    let e = load_weights(&mut m, &path, LoadOptions::default()).unwrap_err();
    assert!(e.to_string().contains("w.safetensors"), "{e}");
    assert_eq!(values(&m), before);
    let e = load_weights(
        &mut m,
        dir.0.join("missing.safetensors"),
        LoadOptions::default(),
    );
    assert!(e.unwrap_err().to_string().contains("missing.safetensors"));
}

#[test]
fn atomic_writes_replace_whole_files_and_leave_no_temporaries() {
    let dir = TempDir::new("atomic");
    let path = dir.0.join("f.bin");
    write_atomic(&path, b"old").unwrap();
    write_atomic(&path, b"new contents").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
    let names: Vec<_> = std::fs::read_dir(&dir.0).unwrap().flatten().collect();
    assert_eq!(names.len(), 1, "no temporary file left");
    // A folder that does not exist: an error, nothing made.
    assert!(write_atomic(&dir.0.join("no/such/f.bin"), b"x").is_err());
    assert!(!dir.0.join("no").exists());
}

#[test]
fn checkpoints_are_numbered_and_only_the_last_are_kept() {
    let dir = TempDir::new("ckpt");
    let ck = Checkpoints::new(dir.0.join("run"), "ckpt")
        .unwrap()
        .keep_last(2);
    assert!(ck.latest().unwrap().is_none());
    let mut file = TensorFile::new();
    file.insert("x", &Tensor::<F32>::zeros(&[1])).unwrap();
    // A temporary file of a write killed in another (finished) process, and one of a
    // process that still runs (this one): only the first is cleaned up.
    std::fs::create_dir_all(dir.0.join("run")).unwrap();
    let dead = dir
        .0
        .join("run/.mixprec-tmp-ckpt-0000000001.safetensors-4000000000-0");
    let live = dir.0.join(format!(
        "run/.mixprec-tmp-ckpt-0000000001.safetensors-{}-99",
        std::process::id()
    ));
    std::fs::write(&dead, b"partial").unwrap();
    std::fs::write(&live, b"in progress").unwrap();
    for step in [10, 20, 30, 40] {
        let p = ck.save(step, &file).unwrap();
        assert_eq!(p, ck.path(step));
    }
    let kept: Vec<u64> = ck.list().unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(kept, vec![30, 40]);
    assert_eq!(ck.latest().unwrap().unwrap().0, 40);
    assert_eq!(TensorFile::load(ck.path(40)).unwrap(), file);
    assert!(!dead.exists(), "a dead writer's temporary is removed");
    assert!(live.exists(), "a live writer's temporary is kept");
    assert!(Checkpoints::new(&dir.0, "a/b").is_err());
    assert!(Checkpoints::new(&dir.0, "").is_err());
}
