//! `gryning bench` end to end at a tiny size (the first 3,000 generated events, one
//! repetition, a fifth of a second at each Watch rate): the command finishes and writes a JSON
//! result with every row, each figure with one sample, and each baseline either measured or
//! marked unavailable with the reason. No timing is asserted: benchmarks judge times, tests
//! do not.

use std::process::Command;

use serde_json::Value;

const ROWS: [&str; 9] = [
    "table",
    "store_open",
    "rebuild",
    "import",
    "watch_lag_1000",
    "watch_lag_5000",
    "watch_lag_20000",
    "dashboard",
    "memory",
];

fn assert_figure(row: &str, f: &Value) {
    let name = f["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{row}: a figure without a name: {f}"));
    let samples = f["samples"]
        .as_array()
        .unwrap_or_else(|| panic!("{row}.{name}: no samples"));
    assert_eq!(
        samples.len(),
        1,
        "{row}.{name}: one sample per repetition: {f}"
    );
    assert!(
        f["unit"].as_str().is_some_and(|u| !u.is_empty()),
        "{row}.{name}: unit"
    );
    for key in ["min", "median", "max"] {
        let v = f[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{row}.{name}.{key} is not a number: {f}"));
        assert_eq!(
            v,
            samples[0].as_f64().unwrap(),
            "{row}.{name}: {key} of one sample"
        );
    }
}

/// Runs `gryning bench ARGS --out … --work-dir …` in `dir`, asserts it succeeded, and returns
/// the JSON result and the summary it printed.
fn bench(dir: &std::path::Path, args: &[&str]) -> (Value, String) {
    let out = dir.join("results.json");
    let run = Command::new(env!("CARGO_BIN_EXE_gryning"))
        .arg("bench")
        .args(args)
        .arg("--out")
        .arg(&out)
        .arg("--work-dir")
        .arg(dir.join("work"))
        .env_remove("GRYNING_DATA_DIR")
        .output()
        .expect("run gryning bench");
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "gryning bench {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&run.stderr)
    );
    let result = serde_json::from_slice(&std::fs::read(&out).expect("the result file"))
        .expect("the result is JSON");
    (result, stdout)
}

#[test]
fn gryning_bench_writes_every_row_at_a_tiny_scale() {
    let dir = tempfile::tempdir().unwrap();
    let (result, stdout) = bench(
        dir.path(),
        &[
            "--scale",
            "1",
            "--events",
            "3000",
            "--repeat",
            "1",
            "--watch-secs",
            "0.2",
            "--calls",
            "20",
        ],
    );
    assert_eq!(result["schema"], "gryning-bench/1");
    assert_eq!(result["repeat"], 1);
    assert_eq!(result["data"]["events"], 3000);
    assert!(result["data"]["crimes"].as_u64().unwrap() > 0);
    let rows = result["rows"].as_array().expect("rows");
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ROWS, "every row, in order");
    for row in rows {
        let id = row["id"].as_str().unwrap();
        assert!(
            row["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{id}: title"
        );
        assert!(
            row["command"]
                .as_str()
                .is_some_and(|t| t.contains("gryning bench")),
            "{id}: command"
        );
        let figures = row["figures"].as_array().unwrap();
        assert!(!figures.is_empty(), "{id}: figures");
        figures.iter().for_each(|f| assert_figure(id, f));
        let baseline = &row["baseline"];
        match baseline["unavailable"].as_str() {
            Some(why) => assert!(!why.is_empty(), "{id}: a reason"),
            None => baseline["figures"]
                .as_array()
                .unwrap_or_else(|| panic!("{id}: baseline figures or unavailable: {baseline}"))
                .iter()
                .for_each(|f| assert_figure(id, f)),
        }
        for ratio in row["ratios"].as_array().unwrap() {
            if baseline["unavailable"].is_null() {
                assert_figure(id, ratio);
            }
        }
        for target in row["targets"].as_array().unwrap() {
            assert!(
                target["met"].is_boolean() || target["met"].is_null(),
                "{id}: {target}"
            );
        }
        assert!(
            stdout.contains(row["title"].as_str().unwrap()),
            "the summary shows {id}"
        );
    }
    // The 10M-event targets are not judged on 3,000 events.
    let table = &rows[0];
    assert!(table["targets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["met"].is_null()));
    // The table's rows were checked against DuckDB's when DuckDB could be installed.
    if table["baseline"]["unavailable"].is_null() {
        assert_eq!(
            table["checks"]["duckdb_rows_equal"],
            Value::Bool(true),
            "{table}"
        );
    } else {
        eprintln!(
            "DuckDB baseline unavailable: {}",
            table["baseline"]["unavailable"]
        );
    }
    assert_eq!(
        table["checks"]["get_table_rows_equal_offline"],
        Value::Bool(true)
    );
}

#[test]
fn gryning_bench_runs_only_the_rows_asked_for_and_names_the_rows_when_one_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_gryning"))
        .args(["bench", "--rows", "table,nope"])
        .env_remove("GRYNING_DATA_DIR")
        .output()
        .expect("run gryning bench");
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("--rows: no row \"nope\"") && why.contains("store_open, rebuild"),
        "{why}"
    );

    let (result, _) = bench(
        dir.path(),
        &[
            "--scale",
            "1",
            "--events",
            "2000",
            "--repeat",
            "1",
            "--calls",
            "5",
            "--rows",
            "dashboard,memory",
        ],
    );
    let ids: Vec<&str> = result["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["dashboard", "memory"]);
    assert!(result["command"]
        .as_str()
        .unwrap()
        .ends_with("--rows dashboard,memory"));
    for row in result["rows"].as_array().unwrap() {
        for f in row["figures"].as_array().unwrap() {
            assert_figure(row["id"].as_str().unwrap(), f);
        }
    }
}
