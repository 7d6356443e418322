//! Runs the `gryning` binary as a user would, for the end-to-end tests. Settings that the
//! test's own environment may carry (`GRYNING_STORE`, `GRYNING_CATALOG`, `GRYNING_TOKEN`) are
//! removed, so the arguments alone decide what a command does.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

pub fn gryning(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gryning"))
        .args(args)
        .env_remove("GRYNING_STORE")
        .env_remove("GRYNING_CATALOG")
        .env_remove("GRYNING_TOKEN")
        .output()
        .expect("gryning runs")
}

/// `gryning --data-dir DATA_DIR ARGS…`.
pub fn gryning_in(data_dir: &Path, args: &[&str]) -> Output {
    let data_dir = data_dir.to_str().expect("a UTF-8 temporary path");
    let mut all = vec!["--data-dir", data_dir];
    all.extend_from_slice(args);
    gryning(&all)
}

/// The command's standard output; fails the test, showing both outputs, if it did not succeed.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
