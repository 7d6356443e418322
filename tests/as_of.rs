//! `--as-of` a time, end to end: two imports a few seconds apart, then the tables as of an
//! instant between them — offline from the data directory's snapshots and through
//! `Insight.GetTable`'s `as_of_time` — equal the tables of a store that holds only the first
//! import (an independent recomputation). Offline imports stamp who recorded each event
//! (`local:USER`) and when; bad times are refused naming the option or field.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/up.rs"]
mod up;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use gryning_domain::Catalogue;
use gryning_proto::pb;
use harness::Server;

/// Snapshots every this many events, so that both imports cross several.
const SNAPSHOT_EVERY: &str = "700";

/// `gryning --data-dir DIR ARGS…` with snapshots every [`SNAPSHOT_EVERY`] events.
fn gryning(data_dir: &Path, args: &[&str]) -> Output {
    let data_dir = data_dir.to_str().expect("a UTF-8 temporary path");
    up::gryning_with(
        &[&["--data-dir", data_dir], args].concat(),
        &[("GRYNING_SNAPSHOT_EVERY", SNAPSHOT_EVERY)],
    )
}

fn ok(out: Output, what: &str) -> (String, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what}: {stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

const TABLES: [&str; 4] = ["case-flow", "clearance", "care", "progress"];

/// Every table by quarter as JSON, with `extra` options.
fn tables(data_dir: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    TABLES
        .iter()
        .map(|name| {
            let mut args = vec!["table", name, "--period", "quarter", "--format", "json"];
            args.extend_from_slice(extra);
            let (out, _) = ok(gryning(data_dir, &args), &format!("{args:?}"));
            serde_json::from_str(&out).unwrap()
        })
        .collect()
}

fn accepted(import_stdout: &str) -> u64 {
    let (n, _) = import_stdout
        .split_once(" accepted")
        .expect("an import summary");
    n.rsplit(' ').next().unwrap().parse().unwrap()
}

/// The instant now, to the second, as RFC 3339 in UTC.
fn now_to_the_second() -> String {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second())
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_of_a_time_equals_the_tables_of_the_events_recorded_by_then() {
    let catalogue = Catalogue::default_catalogue();
    let mut ndjson = Vec::new();
    gryning_synth::write_ndjson(gryning_synth::DEFAULT_SEED, 1, &catalogue, &mut ndjson).unwrap();
    let lines: Vec<&str> = std::str::from_utf8(&ndjson).unwrap().lines().collect();
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (
        dir.path().join("first.ndjson"),
        dir.path().join("second.ndjson"),
    );
    std::fs::write(&first, lines[..3000].join("\n")).unwrap();
    std::fs::write(&second, lines[3000..6000].join("\n")).unwrap();
    let data = dir.path().join("data");
    let only_first = dir.path().join("only-first");

    let (out, _) = ok(
        gryning(&data, &["import", first.to_str().unwrap()]),
        "import",
    );
    let first_accepted = accepted(&out);
    assert!(first_accepted > 2000, "{out}");
    // Whole seconds apart: recording times are stamped to the second.
    std::thread::sleep(Duration::from_millis(1100));
    let between = now_to_the_second();
    std::thread::sleep(Duration::from_millis(1100));
    let (out, _) = ok(
        gryning(&data, &["import", second.to_str().unwrap()]),
        "import",
    );
    let second_accepted = accepted(&out);
    assert!(second_accepted > 2000, "{out}");
    ok(
        gryning(&only_first, &["import", first.to_str().unwrap()]),
        "import",
    );

    let expected = tables(&only_first, &[]);
    let live = tables(&data, &[]);
    assert_ne!(live, expected, "the second import changes the tables");
    let snapshots: Vec<_> = std::fs::read_dir(data.join("snapshots"))
        .expect("reading the tables kept snapshots")
        .collect();
    assert!(snapshots.len() >= 5, "{} snapshots", snapshots.len());

    // Offline: as of the instant between the imports, of the first import's last position,
    // and of dates.
    assert_eq!(tables(&data, &["--as-of", &between]), expected);
    let (_, note) = ok(
        gryning(&data, &["table", "care", "--as-of", &between]),
        "as of",
    );
    assert!(note.contains("from the snapshot at position"), "{note}");
    assert_eq!(
        tables(&data, &["--as-of", &first_accepted.to_string()]),
        expected
    );
    let today = jiff::Timestamp::now()
        .to_zoned(gryning_domain::date::stockholm().clone())
        .date()
        .to_string();
    assert_eq!(tables(&data, &["--as-of", &today]), live);
    let before_any = tables(&data, &["--as-of", "2000-01-01"]);
    assert!(
        before_any
            .iter()
            .all(|t| t.as_array().is_some_and(|rows| rows.is_empty())),
        "{before_any:?}"
    );

    // Bad times name the option and the accepted forms.
    for bad in ["2020-13-01", "yesterday", "2021-01-20T25:00:00Z"] {
        let out = gryning(&data, &["table", "care", "--as-of", bad]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains("--as-of") && stderr.contains("RFC 3339"),
            "{bad}: {stderr}"
        );
    }

    // Through the server: the same tables, and the events carry who imported them and when.
    let server = Server::start(
        up::BIN,
        &[
            "up",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[("GRYNING_SNAPSHOT_EVERY", SNAPSHOT_EVERY)],
        &dir.path().join("up.log"),
    );
    let mut analyst = up::as_role(&server, &server.tokens, "analyst").await;
    for (name, want) in TABLES.iter().zip(&expected) {
        let reply = analyst
            .insight
            .get_table(pb::GetTableRequest {
                name: name.to_string(),
                period: "quarter".into(),
                as_of_time: between.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let got: serde_json::Value = serde_json::from_str(&reply.json).unwrap();
        assert_eq!(&got, want, "{name}");
        assert_eq!(reply.position, first_accepted, "{name}");
    }
    for (request, what) in [
        (
            pb::GetTableRequest {
                name: "care".into(),
                as_of_time: "yesterday".into(),
                ..Default::default()
            },
            "must be an RFC 3339 instant",
        ),
        (
            pb::GetTableRequest {
                name: "care".into(),
                as_of_time: between.clone(),
                as_of: Some(3),
                ..Default::default()
            },
            "as_of_time goes alone",
        ),
    ] {
        let status = analyst.insight.get_table(request).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().contains("as_of_time") && status.message().contains(what),
            "{status:?}"
        );
    }
    let mut admin = up::as_role(&server, &server.tokens, "admin").await;
    let mut log: Vec<pb::RecordedEvent> = Vec::new();
    loop {
        let after = log.last().map_or(0, |e| e.position);
        let mut read = admin
            .log
            .read(pb::ReadRequest { after, limit: 1000 })
            .await
            .unwrap()
            .into_inner();
        let before = log.len();
        while let Some(e) = read.message().await.unwrap() {
            log.push(e);
        }
        if log.len() == before {
            break;
        }
    }
    assert_eq!(log.len() as u64, first_accepted + second_accepted);
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.trim().is_empty());
    let mut last: Option<jiff::Timestamp> = None;
    for e in &log {
        let m = e.metadata.as_ref().expect("metadata");
        assert!(m.principal.starts_with("local:"), "{m:?}");
        if let Some(user) = &user {
            assert_eq!(m.principal, format!("local:{user}"));
        }
        assert_eq!(m.agency, "local");
        let t: jiff::Timestamp = m.recorded_at.parse().expect("an RFC 3339 recording time");
        assert!(
            last.is_none_or(|l| l <= t),
            "times never decrease along the log"
        );
        last = Some(t);
    }
    server.stop();
}
