//! What the fuzz targets share (included by path: `crates/domain/tests/fuzz.rs`,
//! `crates/proto/tests/fuzz.rs` and the checkpoint decoder's in
//! `crates/projections/src/checkpoint.rs`): the proptest runner, whose generated cases
//! `GRYNING_FUZZ_CASES` sets, and the seed corpus reader of `tests/corpus/seeds/`.

#![allow(dead_code)]

use proptest::test_runner::{Config, TestRunner};

/// Generated cases per target: `GRYNING_FUZZ_CASES`, or `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("GRYNING_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A runner of [`cases`] cases that writes no failure file (a failure is added to the seeds).
pub fn runner(default: u32) -> TestRunner {
    TestRunner::new(Config {
        cases: cases(default),
        failure_persistence: None,
        ..Config::default()
    })
}

/// `tests/corpus/seeds/NAME.jsonl`: one JSON string per line, `#` comments; at least one.
pub fn seed_strings(name: &str) -> Vec<String> {
    let path = format!(
        "{}/../../tests/corpus/seeds/{name}.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let seeds: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{path}: {l}: {e}")))
        .collect();
    assert!(!seeds.is_empty(), "{path} holds no seed");
    seeds
}

/// `tests/corpus/seeds/NAME.jsonl` of bytes: each string is hex digits, spaces ignored.
pub fn seed_bytes(name: &str) -> Vec<Vec<u8>> {
    seed_strings(name)
        .iter()
        .map(|text| {
            let hex: String = text.split_whitespace().collect();
            assert!(
                hex.len().is_multiple_of(2),
                "{name}: odd number of hex digits in {text:?}"
            );
            (0..hex.len())
                .step_by(2)
                .map(|i| {
                    u8::from_str_radix(&hex[i..i + 2], 16)
                        .unwrap_or_else(|_| panic!("{name}: not hex: {text:?}"))
                })
                .collect()
        })
        .collect()
}
