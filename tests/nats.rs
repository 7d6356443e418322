//! The same commands and tables on NATS JetStream as on the embedded store: an import through
//! `--store nats://…` gives exactly the tables the embedded store gives, a re-import is all
//! duplicates, and two `gryning up` processes following the same JetStream stream (insight
//! replicas) serve the same tables. Each test starts its own nats-server on a free loopback port.

#[path = "support/harness.rs"]
mod harness;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use gryning_store_nats::testkit;

fn gryning(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gryning"))
        .args(args)
        .env_remove("GRYNING_STORE")
        .env_remove("GRYNING_CATALOG")
        .output()
        .expect("gryning runs")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const TABLES: [&[&str]; 5] = [
    &["case-flow", "--by", "group", "--period", "quarter"],
    &["case-flow", "--by", "code"],
    &["clearance", "--by", "group"],
    &["care", "--period", "quarter"],
    &["progress", "--by", "code", "--period", "quarter"],
];

fn table(store: &[&str], name: &[&str]) -> String {
    let mut args = store.to_vec();
    args.push("table");
    args.extend_from_slice(name);
    args.extend_from_slice(&["--format", "json"]);
    ok(gryning(&args))
}

/// The first `lines` events of the scale-1 dataset (a prefix of a valid history is valid).
fn sample(dir: &Path, lines: usize) -> std::path::PathBuf {
    let all = dir.join("all.ndjson");
    ok(gryning(&[
        "generate",
        "--scale",
        "1",
        "--output",
        all.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&all).unwrap();
    let part: String = text.lines().take(lines).map(|l| format!("{l}\n")).collect();
    let path = dir.join("sample.ndjson");
    std::fs::write(&path, part).unwrap();
    path
}

#[test]
fn the_same_commands_give_the_same_tables_on_jetstream() {
    let dir = tempfile::tempdir().unwrap();
    let server = testkit::Server::standalone(&dir.path().join("nats"), true);
    let url = format!("nats://127.0.0.1:{}", server.port);
    let file = sample(dir.path(), 1500);
    let file = file.to_str().unwrap();
    let embedded_dir = dir.path().join("embedded");
    let nats_dir = dir.path().join("nats-checkpoints");
    let embedded = ["--data-dir", embedded_dir.to_str().unwrap()];
    let nats = [
        "--data-dir",
        nats_dir.to_str().unwrap(),
        "--store",
        url.as_str(),
    ];

    let on_embedded = ok(gryning(&[&embedded[..], &["import", file]].concat()));
    let on_nats = ok(gryning(&[&nats[..], &["import", file]].concat()));
    assert!(
        on_embedded.contains("1500 accepted, 0 duplicate, 0 rejected"),
        "{on_embedded}"
    );
    assert!(
        on_nats.contains("1500 accepted, 0 duplicate, 0 rejected"),
        "{on_nats}"
    );
    for name in TABLES {
        assert_eq!(table(&nats, name), table(&embedded, name), "table {name:?}");
    }
    let again = ok(gryning(&[&nats[..], &["import", file]].concat()));
    assert!(
        again.contains("0 accepted, 1500 duplicate, 0 rejected"),
        "{again}"
    );
    // A rebuild from the JetStream stream agrees with the incremental tables.
    let before = table(&nats, TABLES[0]);
    ok(gryning(&[&nats[..], &["rebuild"]].concat()));
    assert_eq!(table(&nats, TABLES[0]), before);
}

#[test]
fn insight_replicas_following_one_stream_serve_the_same_tables() {
    let dir = tempfile::tempdir().unwrap();
    let server = testkit::Server::standalone(&dir.path().join("nats"), true);
    let url = format!("nats://127.0.0.1:{}", server.port);
    let bin = env!("CARGO_BIN_EXE_gryning");
    let replicas: Vec<harness::Server> = ["a", "b"]
        .iter()
        .map(|name| {
            let data = dir.path().join(name);
            harness::Server::start(
                bin,
                &[
                    "--data-dir",
                    data.to_str().unwrap(),
                    "--store",
                    &url,
                    "up",
                    "--listen",
                    "127.0.0.1:0",
                ],
                &[],
                &dir.path().join(format!("{name}.log")),
            )
        })
        .collect();

    // Events land after both replicas are up: each must follow the stream live.
    let file = sample(dir.path(), 800);
    let offline_dir = dir.path().join("offline");
    let store = [
        "--data-dir",
        offline_dir.to_str().unwrap(),
        "--store",
        url.as_str(),
    ];
    ok(gryning(
        &[&store[..], &["import", file.to_str().unwrap()]].concat(),
    ));
    let expected = table(&store, TABLES[0]);

    for replica in &replicas {
        let token = replica
            .tokens
            .get("analyst")
            .expect("an analyst token is printed on first start");
        let server_url = replica.url();
        let deadline = Instant::now() + harness::DEADLINE;
        loop {
            let mut args = vec!["table"];
            args.extend_from_slice(TABLES[0]);
            args.extend_from_slice(&[
                "--format",
                "json",
                "--server",
                &server_url,
                "--token",
                token,
            ]);
            let served = ok(gryning(&args));
            if served == expected {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "replica at {server_url} serves\n{served}\nnot\n{expected}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    for replica in replicas {
        replica.stop();
    }
}

/// `--store` switched back and forth on one data directory: each backend's checkpoint is
/// discarded by the other (saying which store it came from), and every table is what a fresh
/// rebuild from the store in use gives.
#[test]
fn switching_the_store_on_one_data_directory_rebuilds_the_projections() {
    let dir = tempfile::tempdir().unwrap();
    let server = testkit::Server::standalone(&dir.path().join("nats"), true);
    let url = format!("nats://127.0.0.1:{}", server.port);
    let longer = dir.path().join("600.ndjson");
    std::fs::rename(sample(dir.path(), 600), &longer).unwrap();
    let shorter = sample(dir.path(), 300);
    let data = dir.path().join("data");
    let embedded = ["--data-dir", data.to_str().unwrap()];
    let nats = [
        "--data-dir",
        data.to_str().unwrap(),
        "--store",
        url.as_str(),
    ];
    let table_with_warnings = |store: &[&str]| {
        let mut args = store.to_vec();
        args.push("table");
        args.extend_from_slice(TABLES[0]);
        args.extend_from_slice(&["--format", "json"]);
        let out = gryning(&args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (ok(out), stderr)
    };

    ok(gryning(
        &[&embedded[..], &["import", longer.to_str().unwrap()]].concat(),
    ));
    let (on_embedded, warnings) = table_with_warnings(&embedded);
    assert_eq!(
        warnings, "",
        "the first table leaves a checkpoint of the embedded store"
    );
    ok(gryning(
        &[&nats[..], &["import", shorter.to_str().unwrap()]].concat(),
    ));

    // Fresh rebuilds to compare with: a data directory of its own per backend.
    let fresh_nats_dir = dir.path().join("fresh-nats");
    let fresh_nats = [
        "--data-dir",
        fresh_nats_dir.to_str().unwrap(),
        "--store",
        url.as_str(),
    ];
    let fresh_embedded_dir = dir.path().join("fresh-embedded");
    let fresh_embedded = ["--data-dir", fresh_embedded_dir.to_str().unwrap()];
    ok(gryning(
        &[&fresh_embedded[..], &["import", longer.to_str().unwrap()]].concat(),
    ));
    let (rebuilt_nats, _) = table_with_warnings(&fresh_nats);
    let (rebuilt_embedded, _) = table_with_warnings(&fresh_embedded);
    assert_ne!(
        rebuilt_nats, rebuilt_embedded,
        "the two stores hold different histories"
    );
    assert_eq!(on_embedded, rebuilt_embedded);

    for (store, rebuilt, from, now) in [
        (&nats[..], &rebuilt_nats, "sqlite store", "nats store"),
        (
            &embedded[..],
            &rebuilt_embedded,
            "nats store",
            "sqlite store",
        ),
        (&nats[..], &rebuilt_nats, "sqlite store", "nats store"),
    ] {
        let (served, warnings) = table_with_warnings(store);
        assert_eq!(&served, rebuilt, "{store:?}");
        assert!(
            warnings.contains("discarding checkpoint")
                && warnings.contains(&format!("taken from {from}"))
                && warnings.contains(&format!("not from this {now}")),
            "{store:?}: {warnings}"
        );
        // The replacement checkpoint is the store's own: the next table resumes from it quietly.
        let (again, warnings) = table_with_warnings(store);
        assert_eq!(&again, rebuilt);
        assert_eq!(warnings, "", "{store:?}");
    }
}
