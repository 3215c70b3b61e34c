//! Reader for the golden conversion tables in `tests/golden/` (format: its README.md).
//! Shared by the integration tests and the crate's unit tests (`#[path]` include).

use std::path::PathBuf;

/// One record: input bits, expected output bits, and whether the expected value is
/// "any NaN" (then the bits are only what the oracle happened to write).
#[derive(Clone, Copy, Debug)]
pub struct Record {
    pub input: u32,
    pub output: u32,
    pub nan: bool,
}

/// Path of a golden file by name, e.g. `encode_e4m3.txt`.
pub fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// All records of one golden file. Panics (failing the test) on a malformed line, so
/// a truncated or corrupted table cannot pass silently; also checks the `# records: N`
/// header where the file has one.
pub fn read_records(name: &str) -> Vec<Record> {
    let path = golden_path(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read golden file {}: {e}", path.display()));
    let mut declared = None;
    let mut records = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if let Some(comment) = line.strip_prefix('#') {
            if let Some(count) = comment.trim().strip_prefix("records:") {
                declared = Some(count.trim().parse::<usize>().expect("records header"));
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(
            fields.len(),
            3,
            "{name}:{}: expected 3 fields in {line:?}",
            n + 1
        );
        let parse = |s: &str| {
            u32::from_str_radix(s, 16).unwrap_or_else(|_| panic!("{name}:{}: bad hex {s:?}", n + 1))
        };
        let nan = match fields[2] {
            "nan" => true,
            "-" => false,
            other => panic!("{name}:{}: bad flag {other:?}", n + 1),
        };
        records.push(Record {
            input: parse(fields[0]),
            output: parse(fields[1]),
            nan,
        });
    }
    if let Some(count) = declared {
        assert_eq!(
            records.len(),
            count,
            "{name}: record count differs from its header"
        );
    }
    assert!(!records.is_empty(), "{name}: no records");
    records
}
