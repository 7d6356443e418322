//! One owner per data directory: while `gryning up` owns a data directory, an offline writer
//! (`gryning import`, `rebuild`) is refused with a message naming the directory, the owner's
//! process id and `--server`, and writes nothing; `gryning table` reads beside the owner,
//! read-only, and leaves the checkpoint alone.

#[path = "support/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::Output;

const BIN: &str = env!("CARGO_BIN_EXE_gryning");

#[path = "support/run.rs"]
mod run;
use run::{gryning, ok};

/// Lines `from..to` of the scale-1 dataset, written to `name` in `dir` (a prefix of a valid
/// history is valid, and so is what follows it once the prefix is stored).
fn part(dir: &Path, from: usize, to: usize, name: &str) -> PathBuf {
    let all = dir.join("all.ndjson");
    if !all.exists() {
        ok(gryning(&[
            "generate",
            "--scale",
            "1",
            "--output",
            all.to_str().unwrap(),
        ]));
    }
    let text = std::fs::read_to_string(&all).unwrap();
    let lines: String = text
        .lines()
        .skip(from)
        .take(to - from)
        .map(|l| format!("{l}\n"))
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, lines).unwrap();
    path
}

const TABLE: [&str; 7] = [
    "table",
    "case-flow",
    "--by",
    "code",
    "--period",
    "quarter",
    "--format",
];

fn offline_table(data: &Path) -> Output {
    let mut args = vec!["--data-dir", data.to_str().unwrap()];
    args.extend_from_slice(&TABLE);
    args.push("json");
    gryning(&args)
}

fn served_table(server: &harness::Server) -> String {
    let mut args = TABLE.to_vec();
    args.extend_from_slice(&["json", "--server"]);
    let url = server.url();
    args.push(&url);
    args.extend_from_slice(&["--token", &server.tokens["analyst"]]);
    ok(gryning(&args))
}

#[test]
fn a_second_writer_is_refused_while_gryning_up_owns_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let first = part(dir.path(), 0, 300, "first.ndjson");
    let second = part(dir.path(), 300, 600, "second.ndjson");
    let third = part(dir.path(), 600, 900, "third.ndjson");
    ok(gryning(&[
        "--data-dir",
        data_arg,
        "import",
        first.to_str().unwrap(),
    ]));
    // Reading a table offline, with nobody else around, leaves a checkpoint at 300.
    ok(offline_table(&data));
    let checkpoint = data.join("projections.ckpt");
    assert!(checkpoint.exists());

    let server = harness::Server::start(
        BIN,
        &["--data-dir", data_arg, "up", "--listen", "127.0.0.1:0"],
        &[],
        &dir.path().join("up.log"),
    );
    let pid = server.child.id().to_string();
    let admin = server.tokens["admin"].clone();
    let url = server.url();
    let before = served_table(&server);

    // Offline writers are refused, naming the directory, the owner and the way through it.
    for command in [
        vec!["--data-dir", data_arg, "import", second.to_str().unwrap()],
        vec!["--data-dir", data_arg, "rebuild"],
    ] {
        let out = gryning(&command);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command:?}: {stderr}");
        for part in [data_arg, pid.as_str(), "--server"] {
            assert!(
                stderr.contains(part),
                "{command:?}: {stderr:?} lacks {part:?}"
            );
        }
        assert!(out.stdout.is_empty(), "{command:?} printed a result");
    }
    assert!(checkpoint.exists(), "the refused rebuild removed nothing");
    assert_eq!(
        served_table(&server),
        before,
        "the refused import wrote nothing"
    );

    // The server's next write succeeds.
    let sent = ok(gryning(&[
        "import",
        second.to_str().unwrap(),
        "--server",
        &url,
        "--token",
        &admin,
    ]));
    assert!(
        sent.contains("300 accepted, 0 duplicate, 0 rejected"),
        "{sent}"
    );
    let after = harness::await_value("the server's table to show the new events", || {
        let served = served_table(&server);
        (served != before).then_some(served)
    });

    // `gryning table` reads beside the owner: what the server has committed, read-only,
    // leaving the checkpoint (at 300, while the log is at 600) as it was.
    let checkpoint_bytes = std::fs::read(&checkpoint).unwrap();
    let out = offline_table(&data);
    let read = ok(out.clone());
    assert_eq!(read, after, "the read-only table is the server's table");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("read-only") && stderr.contains(&pid),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&checkpoint).unwrap(),
        checkpoint_bytes,
        "a read-only table writes no checkpoint"
    );

    // Still the server's to write, and nothing was lost on the way.
    let sent = ok(gryning(&[
        "import",
        third.to_str().unwrap(),
        "--server",
        &url,
        "--token",
        &admin,
    ]));
    assert!(sent.contains("300 accepted"), "{sent}");
    server.stop();

    // Once the owner has gone, the directory is free again and holds exactly the 900 events.
    let again = ok(gryning(&[
        "--data-dir",
        data_arg,
        "import",
        third.to_str().unwrap(),
    ]));
    assert!(
        again.contains("0 accepted, 300 duplicate, 0 rejected"),
        "{again}"
    );
    let all = part(dir.path(), 0, 900, "all900.ndjson");
    let fresh = dir.path().join("fresh");
    ok(gryning(&[
        "--data-dir",
        fresh.to_str().unwrap(),
        "import",
        all.to_str().unwrap(),
    ]));
    assert_eq!(ok(offline_table(&data)), ok(offline_table(&fresh)));
}

/// The events file replaced by an older copy of itself while a newer checkpoint stays: the
/// checkpoint is ahead of the restored store's head and is discarded, by an offline table and
/// by a starting server alike, and the tables are a fresh rebuild's.
#[test]
fn a_store_restored_to_an_older_copy_does_not_resume_a_newer_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let first = part(dir.path(), 0, 400, "first.ndjson");
    let second = part(dir.path(), 400, 800, "second.ndjson");
    let db = data.join("events.sqlite3");
    let older = dir.path().join("events.sqlite3.after-400");

    ok(gryning(&[
        "--data-dir",
        data_arg,
        "import",
        first.to_str().unwrap(),
    ]));
    std::fs::copy(&db, &older).unwrap();
    let fresh = dir.path().join("fresh");
    ok(gryning(&[
        "--data-dir",
        fresh.to_str().unwrap(),
        "import",
        first.to_str().unwrap(),
    ]));
    let rebuilt = ok(offline_table(&fresh));

    let restore = || {
        ok(gryning(&[
            "--data-dir",
            data_arg,
            "import",
            second.to_str().unwrap(),
        ]));
        let newer = ok(offline_table(&data));
        assert_ne!(newer, rebuilt, "the checkpoint now holds 800 events");
        std::fs::copy(&older, &db).unwrap();
        // No process has the store open; a log left beside the file would belong to the newer one.
        for stale in ["events.sqlite3-wal", "events.sqlite3-shm"] {
            let _ = std::fs::remove_file(data.join(stale));
        }
    };

    // Offline.
    restore();
    let out = offline_table(&data);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(ok(out), rebuilt);
    assert!(
        stderr.contains("discarding checkpoint")
            && stderr.contains("position 800 is ahead of the store's head 400"),
        "{stderr}"
    );
    let again = offline_table(&data);
    assert!(
        again.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(ok(again), rebuilt);

    // A starting server.
    restore();
    let log = dir.path().join("up.log");
    let server = harness::Server::start(
        BIN,
        &["--data-dir", data_arg, "up", "--listen", "127.0.0.1:0"],
        &[],
        &log,
    );
    assert_eq!(served_table(&server), rebuilt);
    server.stop();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("discarding the projections checkpoint")
            && log.contains("ahead of the store's head 400"),
        "{log}"
    );
}

/// A damaged checkpoint beside an empty store is discarded once: `gryning up` writes the
/// rebuilt state over it before it serves, so a server killed right after starting (no
/// periodic or final checkpoint yet), the next start and an offline table warn no more.
#[test]
fn a_damaged_checkpoint_on_an_empty_store_is_replaced_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let empty = dir.path().join("empty.ndjson");
    std::fs::write(&empty, "").unwrap();
    ok(gryning(&[
        "--data-dir",
        data_arg,
        "import",
        empty.to_str().unwrap(),
    ]));
    let checkpoint = data.join("projections.ckpt");
    std::fs::write(&checkpoint, "GRYNPROJ damaged").unwrap();
    let start = |log: &Path| {
        harness::Server::start(
            BIN,
            &["--data-dir", data_arg, "up", "--listen", "127.0.0.1:0"],
            &[],
            log,
        )
    };

    let first_log = dir.path().join("first.log");
    let mut first = start(&first_log);
    first.child.kill().unwrap(); // SIGKILL: no final checkpoint
    first.child.wait().unwrap();
    let log = std::fs::read_to_string(&first_log).unwrap();
    assert!(
        log.contains("discarding the projections checkpoint"),
        "{log}"
    );
    assert_ne!(std::fs::read(&checkpoint).unwrap(), b"GRYNPROJ damaged");

    let second_log = dir.path().join("second.log");
    start(&second_log).stop();
    let log = std::fs::read_to_string(&second_log).unwrap();
    assert!(!log.contains("discarding"), "{log}");
    let out = offline_table(&data);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
