//! Quarterly publications end to end: a published quarter's tables never change whatever is
//! recorded later, on the embedded store and on NATS JetStream; the diff names exactly the cells
//! later events changed (checked against the live tables) and how many events changed each;
//! publishing again keeps both revisions; bad input is refused with its own error and records
//! nothing; `gryning up` publishes a due quarter exactly once, with two replicas on one JetStream
//! stream and across a restart on the embedded store.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/up.rs"]
mod up;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use gryning_proto::pb;
use gryning_store_nats::testkit;
use harness::{await_value, Server};
use serde_json::Value;

/// Every published table, as `gryning table` arguments.
const PUBLISHED: [(&str, &str, &str); 16] = [
    ("case-flow", "code", "quarter"),
    ("case-flow", "code", "year"),
    ("case-flow", "group", "quarter"),
    ("case-flow", "group", "year"),
    ("clearance", "code", "quarter"),
    ("clearance", "code", "year"),
    ("clearance", "group", "quarter"),
    ("clearance", "group", "year"),
    ("progress", "code", "quarter"),
    ("progress", "code", "year"),
    ("progress", "group", "quarter"),
    ("progress", "group", "year"),
    ("care", "code", "quarter"),
    ("care", "code", "year"),
    ("social-services", "code", "quarter"),
    ("social-services", "code", "year"),
];

/// `gryning STORE… ARGS…` with `env`.
fn run(store: &[&str], args: &[&str], env: &[(&str, &str)]) -> Output {
    up::gryning_with(&[store, args].concat(), env)
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

/// The command fails with status 2 and an error naming `needles`.
fn refused(out: Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} in {stderr}");
    }
}

fn line(event: Value) -> String {
    format!("{event}\n")
}

fn id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn case_event(date: &str, case: &str, body: (&str, Value)) -> String {
    let mut event = serde_json::json!({"eventId": id(), "occurredOn": date, "caseId": case});
    event[body.0] = body.1;
    line(event)
}

fn crime(crime: &str, code: &str, gender: &str) -> (&'static str, Value) {
    (
        "crimeReported",
        serde_json::json!({"crimeId": crime, "crimeCode": code, "victimGender": gender, "victimAgeGroup": "AGE_GROUP_ADULT"}),
    )
}

/// The history before the publication of 2020-Q4, and the late events after it.
struct History {
    before: String,
    after: String,
}

fn history() -> History {
    let (a, b, client) = (id(), id(), id());
    let (a1, a2, a3, b1) = (id(), id(), id(), id());
    let opened = |lead: &str| {
        (
            "caseOpened",
            serde_json::json!({"leadCrimeCode": lead, "policeRegion": "Stockholm", "localPoliceArea": "Farsta"}),
        )
    };
    let decided = |crime: &str, decision: &str| {
        (
            "prosecutionDecided",
            serde_json::json!({"crimeId": crime, "decision": decision}),
        )
    };
    let before = [
        case_event("2020-08-10", &b, opened("0418")),
        case_event("2020-08-10", &b, crime(&b1, "0418", "GENDER_FEMALE")),
        case_event("2020-10-05", &a, opened("9365")),
        case_event("2020-10-05", &a, crime(&a1, "9365", "GENDER_FEMALE")),
        case_event("2020-10-06", &a, crime(&a2, "4012", "GENDER_MALE")),
        case_event(
            "2020-10-20",
            &a,
            ("caseReferredToProsecutor", serde_json::json!({})),
        ),
        case_event(
            "2020-11-10",
            &a,
            decided(&a1, "PROSECUTION_DECISION_INDICTMENT"),
        ),
        line(
            serde_json::json!({"eventId": id(), "occurredOn": "2020-11-01", "clientId": client,
            "treatmentProgrammeStarted": {"programme": "IDAP"}}),
        ),
    ]
    .concat();
    let after = [
        // A late report dated in the quarter.
        case_event("2020-12-01", &a, crime(&a3, "9365", "GENDER_FEMALE")),
        // A late child-welfare notification in the quarter, 57 days after the opening.
        case_event(
            "2020-12-01",
            &a,
            ("childWelfareNotified", serde_json::json!({})),
        ),
        // A reclassification: 4012 (in the group) becomes 0418 (not in it).
        case_event(
            "2021-01-05",
            &a,
            (
                "crimeReclassified",
                serde_json::json!({"crimeId": a2, "crimeCode": "0418"}),
            ),
        ),
        // A decision in the next year: the quarter's cohort changes, its clearance does not.
        case_event(
            "2021-01-12",
            &a,
            decided(&a2, "PROSECUTION_DECISION_NO_PROSECUTION"),
        ),
    ]
    .concat();
    History { before, after }
}

fn import(store: &[&str], dir: &Path, name: &str, text: &str) {
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    ok(run(store, &["import", file.to_str().unwrap()], &[]));
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Every published table of 2020-Q4 (`at`: `2020-Q4` or `2020-Q4@N`) as printed in JSON.
fn published(store: &[&str], at: &str) -> Vec<String> {
    PUBLISHED
        .iter()
        .map(|(name, by, period)| {
            ok(run(
                store,
                &[
                    "table",
                    name,
                    "--by",
                    by,
                    "--period",
                    period,
                    "--published",
                    at,
                    "--format",
                    "json",
                ],
                &[],
            ))
        })
        .collect()
}

/// The live rows of 2020-Q4 (quarter) or of 2020 (year, which for Q4 is the year to date),
/// relabelled as a publication labels them.
fn live(store: &[&str], name: &str, by: &str, period: &str) -> Vec<Value> {
    let rows = json(&ok(run(
        store,
        &[
            "table", name, "--by", by, "--period", period, "--format", "json",
        ],
        &[],
    )));
    let (wanted, label) = if period == "quarter" {
        ("2020-Q4", "2020-Q4")
    } else {
        ("2020", "2020-Q1..Q4")
    };
    rows.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["period"] == wanted)
        .map(|r| {
            let mut r = r.clone();
            r["period"] = Value::from(label);
            r
        })
        .collect()
}

/// (table, by, period, row, measure) → value, for every measure cell of `rows`; the row key is
/// the leading text fields joined as the diff joins them.
type CellKey = (String, String, String, String, String);
type Cells = BTreeMap<CellKey, Value>;

fn cells_of(name: &str, by: &str, period: &str, rows: &[Value], out: &mut Cells) {
    let by = if name == "care" || name == "social-services" {
        ""
    } else {
        by
    };
    let period = if period == "quarter" {
        "quarter"
    } else {
        "year-to-date"
    };
    let keys = [
        "period",
        "code",
        "group",
        "victim_gender",
        "service",
        "local_police_area",
        "gender",
        "age_group",
    ];
    for row in rows {
        let object = row.as_object().unwrap();
        let key: Vec<&str> = keys
            .iter()
            .filter_map(|k| object.get(*k).and_then(Value::as_str))
            .collect();
        for (measure, value) in object {
            if !keys.contains(&measure.as_str()) {
                out.insert(
                    (
                        name.into(),
                        by.into(),
                        period.into(),
                        key.join(" / "),
                        measure.clone(),
                    ),
                    value.clone(),
                );
            }
        }
    }
}

/// The cells where `now` differs from `then`, a missing row counting as zeros.
fn expected_changes(then: &Cells, now: &Cells) -> BTreeMap<CellKey, (Value, Value)> {
    let zero = |v: Option<&Value>| match v {
        None => Value::Null,
        Some(v) if v == &Value::from(0) => Value::Null,
        Some(v) => v.clone(),
    };
    then.keys()
        .chain(now.keys())
        .filter(|k| zero(then.get(*k)) != zero(now.get(*k)))
        .map(|k| {
            (
                k.clone(),
                (
                    then.get(k).cloned().unwrap_or(Value::Null),
                    now.get(k).cloned().unwrap_or(Value::Null),
                ),
            )
        })
        .collect()
}

/// The diff's rows keyed like [`Cells`], with (published, now, events).
fn diff_rows(text: &str) -> BTreeMap<CellKey, (Value, Value, i64)> {
    let s = |v: &Value| v.as_str().unwrap().to_string();
    json(text)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (
                    s(&r["table"]),
                    s(&r["by"]),
                    s(&r["period"]),
                    s(&r["row"]),
                    s(&r["measure"]),
                ),
                (
                    r["published"].clone(),
                    r["now"].clone(),
                    r["events"].as_i64().unwrap(),
                ),
            )
        })
        .collect()
}

fn publications(store: &[&str]) -> Vec<Value> {
    json(&ok(run(store, &["publications", "--format", "json"], &[])))
        .as_array()
        .unwrap()
        .clone()
}

/// Publish, record late events and reclassifications, and check what stays and what moved.
fn a_publication_never_changes(store: &[&str], dir: &Path) {
    let h = history();
    import(store, dir, "before.ndjson", &h.before);
    let out = ok(run(
        store,
        &["publish", "--quarter", "2020-Q4", "--note", "first"],
        &[],
    ));
    assert!(out.contains("published 2020-Q4 revision 1"), "{out}");
    let first = published(store, "2020-Q4");
    let mut then = Cells::new();
    for ((name, by, period), text) in PUBLISHED.iter().zip(&first) {
        let rows = json(text);
        cells_of(name, by, period, rows.as_array().unwrap(), &mut then);
        // At publication, the published table is the live one.
        assert_eq!(
            rows.as_array().unwrap(),
            &live(store, name, by, period),
            "{name} {by} {period}"
        );
    }
    let case_flow = json(&first[0]);
    assert_eq!(case_flow.as_array().unwrap().len(), 2, "{case_flow}");

    import(store, dir, "after.ndjson", &h.after);
    // The published tables are unchanged, byte for byte.
    assert_eq!(published(store, "2020-Q4"), first);
    let mut now = Cells::new();
    for (name, by, period) in PUBLISHED {
        cells_of(name, by, period, &live(store, name, by, period), &mut now);
    }
    assert_ne!(now, then, "the live tables moved");
    let expected = expected_changes(&then, &now);
    let diff = diff_rows(&ok(run(
        store,
        &["diff", "--published", "2020-Q4", "--format", "json"],
        &[],
    )));
    let named: BTreeMap<_, _> = diff
        .iter()
        .map(|(k, (p, n, _))| (k.clone(), (p.clone(), n.clone())))
        .collect();
    assert_eq!(named, expected, "the diff names exactly the changed cells");
    let key = |t: &str, by: &str, p: &str, row: &str, m: &str| {
        (
            t.to_string(),
            by.to_string(),
            p.to_string(),
            row.to_string(),
            m.to_string(),
        )
    };
    // The late report changed 9365's count once; the reclassification emptied 4012's row.
    assert_eq!(
        diff[&key("case-flow", "code", "quarter", "2020-Q4 / 9365", "reported")],
        (Value::from(1), Value::from(2), 1)
    );
    assert_eq!(
        diff[&key("case-flow", "code", "quarter", "2020-Q4 / 4012", "reported")],
        (Value::from(1), Value::Null, 1)
    );
    // The group's count went up with the report and down with the reclassification: back
    // where it was published, so it is not listed.
    assert!(!diff.contains_key(&key(
        "case-flow",
        "group",
        "quarter",
        "2020-Q4 / Brott i nära relation",
        "reported"
    )));
    // 0418's cohort in the quarter: the reclassified crime arrived, then its decision.
    assert_eq!(
        diff[&key("progress", "code", "quarter", "2020-Q4 / 0418", "decided")],
        (Value::Null, Value::from(1), 1)
    );
    // The late notification shows in social services' quarter, with its days from opening.
    let notified = "2020-Q4 / CHILD_WELFARE_NOTIFICATION / Farsta / ALL / ALL";
    assert_eq!(
        diff[&key("social-services", "", "quarter", notified, "count")],
        (Value::Null, Value::from(1), 1)
    );
    assert_eq!(
        diff[&key(
            "social-services",
            "",
            "quarter",
            notified,
            "median_days_to_notification"
        )],
        (Value::Null, Value::from(57.0), 1)
    );
    // A decision dated 2021 is no clearance of 2020.
    assert!(diff
        .keys()
        .all(|k| k.0 != "clearance" || k.4 != "handled" || !k.3.contains("0418")));
    // The text and CSV renderings list the same cells.
    let csv = ok(run(
        store,
        &["diff", "--published", "2020-Q4", "--format", "csv"],
        &[],
    ));
    assert_eq!(csv.lines().count(), diff.len() + 1, "{csv}");
    assert!(
        csv.starts_with("table,by,period,row,measure,published,now,events\r\n"),
        "{csv}"
    );
    let text = ok(run(store, &["diff", "--published", "2020-Q4"], &[]));
    assert_eq!(text.lines().count(), diff.len() + 1, "{text}");

    // Publishing again keeps both.
    let out = ok(run(store, &["publish", "--quarter", "2020-Q4"], &[]));
    assert!(out.contains("published 2020-Q4 revision 2"), "{out}");
    assert_eq!(published(store, "2020-Q4@1"), first);
    let second = published(store, "2020-Q4");
    assert_ne!(second, first);
    let listed = publications(store);
    let revisions: Vec<(&str, i64, &str)> = listed
        .iter()
        .map(|p| {
            (
                p["quarter"].as_str().unwrap(),
                p["revision"].as_i64().unwrap(),
                p["note"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(revisions, [("2020-Q4", 1, "first"), ("2020-Q4", 2, "")]);
    assert_eq!(listed[0]["principal"], "offline");
    assert_eq!(listed[0]["catalogue_version"], "2020.1");
    assert_eq!(listed[0]["catalogue_sha256"].as_str().unwrap().len(), 64);
    // Revision 1 against revision 2 is the same change, every event between them counted.
    let between = diff_rows(&ok(run(
        store,
        &[
            "diff",
            "--published",
            "2020-Q4@1",
            "--against",
            "2020-Q4@2",
            "--format",
            "json",
        ],
        &[],
    )));
    assert_eq!(between, diff);
    let since_second = diff_rows(&ok(run(
        store,
        &["diff", "--published", "2020-Q4", "--format", "json"],
        &[],
    )));
    assert!(since_second.is_empty(), "{since_second:?}");

    // Bad input: each its own error, and nothing recorded.
    refused(
        run(store, &["publish", "--quarter", "2020-Q5"], &[]),
        &["quarter", "2020-Q5", "1 to 4"],
    );
    refused(
        run(store, &["publish", "--quarter", "2020Q4"], &[]),
        &["quarter", "2020Q4", "YYYY-QN"],
    );
    refused(
        run(
            store,
            &["publish", "--quarter", "2020-Q4"],
            &[("GRYNING_TEST_CLOCK", "2020-12-15T12:00:00Z")],
        ),
        &["2020-Q4 has not ended", "2020-12-31", "2020-12-15"],
    );
    refused(
        run(
            store,
            &[
                "table",
                "case-flow",
                "--published",
                "2020-Q4",
                "--revision",
                "9",
            ],
            &[],
        ),
        &["no revision 9", "1 to 2"],
    );
    refused(
        run(
            store,
            &["table", "case-flow", "--published", "2021-Q1"],
            &[],
        ),
        &["2021-Q1 has no publication"],
    );
    refused(
        run(store, &["diff", "--published", "2020-Q4@7"], &[]),
        &["no revision 7"],
    );
    // A malformed quarter names the flag it came in.
    refused(
        run(
            store,
            &["table", "case-flow", "--published", "2020-Q5"],
            &[],
        ),
        &["--published", "2020-Q5", "1 to 4"],
    );
    refused(
        run(
            store,
            &["diff", "--published", "2020-Q4", "--against", "2020Q4@2"],
            &[],
        ),
        &["--against", "2020Q4", "YYYY-QN"],
    );
    refused(
        run(store, &["diff", "--published", "2020-Q4@x"], &[]),
        &["--published", "revision \"x\"", "whole number"],
    );
    assert_eq!(publications(store).len(), 2);
}

#[test]
fn a_publication_never_changes_on_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    a_publication_never_changes(&["--data-dir", data.to_str().unwrap()], dir.path());
}

#[test]
fn a_publication_never_changes_on_jetstream() {
    let dir = tempfile::tempdir().unwrap();
    let server = testkit::Server::standalone(&dir.path().join("nats"), true);
    let url = format!("nats://127.0.0.1:{}", server.port);
    let data = dir.path().join("checkpoints");
    a_publication_never_changes(
        &["--store", &url, "--data-dir", data.to_str().unwrap()],
        dir.path(),
    );
}

/// A fixed "now" at which 2020-Q4 is due (ended 31 December, 15 days' grace) and 2021-Q1 is not.
const DUE: (&str, &str) = ("GRYNING_TEST_CLOCK", "2021-01-20T12:00:00Z");
const AUTOMATIC: (&str, &str) = ("GRYNING_PUBLISH_AUTOMATICALLY", "true");

fn start(store: &[&str], data: &Path, log: &Path) -> Server {
    let mut args = vec![
        "up",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(store);
    Server::start(up::BIN, &args, &[DUE, AUTOMATIC], log)
}

/// Whether the server's log has a line with `text` about `quarter`.
fn log_has(server: &Server, text: &str, quarter: &str) -> bool {
    let quarter = format!("quarter={quarter}");
    std::fs::read_to_string(&server.log)
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains(text) && l.contains(&quarter))
}

/// The quarters due at [`DUE`] for [`history`]: its first event is dated 2020-08-10.
const DUE_QUARTERS: [&str; 2] = ["2020-Q3", "2020-Q4"];

async fn listed(
    server: &Server,
    tokens: &std::collections::HashMap<String, String>,
) -> Vec<pb::Publication> {
    let mut c = up::as_role(server, tokens, "analyst").await;
    c.insight
        .list_publications(pb::ListPublicationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .publications
}

async fn publication_events(
    server: &Server,
    tokens: &std::collections::HashMap<String, String>,
) -> Vec<pb::RecordedEvent> {
    let mut c = up::as_role(server, tokens, "auditor").await;
    up::read_log(&mut c, 0)
        .await
        .into_iter()
        .filter(|e| e.stream.starts_with("publication-"))
        .collect()
}

const WON: &str = "published the quarter automatically";
const SAW: &str = "the quarter is already published";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_jetstream_stream_publish_a_due_quarter_once() {
    let dir = tempfile::tempdir().unwrap();
    let nats = testkit::Server::standalone(&dir.path().join("nats"), true);
    let url = format!("nats://127.0.0.1:{}", nats.port);
    let store = ["--store", url.as_str()];
    let checkpoints = dir.path().join("import");
    let import_args = [
        "--store",
        url.as_str(),
        "--data-dir",
        checkpoints.to_str().unwrap(),
    ];
    import(&import_args, dir.path(), "before.ndjson", &history().before);
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let a = start(&store, &a_dir, &dir.path().join("a.log"));
    let b = start(&store, &b_dir, &dir.path().join("b.log"));
    // Both passes end: for each due quarter one replica recorded it, the other saw it recorded.
    let done = |s: &Server, q: &str| log_has(s, WON, q) || log_has(s, SAW, q);
    await_value("both publishers done", || {
        DUE_QUARTERS
            .iter()
            .all(|q| done(&a, q) && done(&b, q))
            .then_some(())
    });
    for q in DUE_QUARTERS {
        assert!(
            log_has(&a, WON, q) != log_has(&b, WON, q),
            "{q}: exactly one replica won"
        );
    }
    for server in [&a, &b] {
        let tokens = &server.tokens;
        let events = publication_events(server, tokens).await;
        let mut streams: Vec<(&str, u64)> = events
            .iter()
            .map(|e| (e.stream.as_str(), e.version))
            .collect();
        streams.sort();
        assert_eq!(
            streams,
            [("publication-2020-Q3", 1), ("publication-2020-Q4", 1)]
        );
        let list = loop {
            let list = listed(server, tokens).await;
            if list.len() >= 2 {
                break list;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let got: Vec<(&str, u32, bool, &str)> = list
            .iter()
            .map(|p| {
                (
                    p.quarter.as_str(),
                    p.revision,
                    p.automatic,
                    p.principal.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("2020-Q3", 1, true, "gryning-up"),
                ("2020-Q4", 1, true, "gryning-up")
            ]
        );
    }
    a.stop();
    b.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_does_not_publish_again_and_bad_requests_record_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = ["--data-dir", data.to_str().unwrap()];
    import(&store, dir.path(), "before.ndjson", &history().before);
    let first = start(&[], &data, &dir.path().join("first.log"));
    let tokens = first.tokens.clone();
    await_value("the first pass", || {
        DUE_QUARTERS
            .iter()
            .all(|q| log_has(&first, WON, q))
            .then_some(())
    });
    assert_eq!(publication_events(&first, &tokens).await.len(), 2);
    first.stop();
    let second = start(&[], &data, &dir.path().join("second.log"));
    await_value("the second pass", || {
        DUE_QUARTERS
            .iter()
            .all(|q| log_has(&second, SAW, q))
            .then_some(())
    });
    assert!(DUE_QUARTERS.iter().all(|q| !log_has(&second, WON, q)));
    assert_eq!(publication_events(&second, &tokens).await.len(), 2);

    // Over gRPC: each bad request its own status, and nothing recorded.
    let mut admin = up::as_role(&second, &tokens, "admin").await;
    for (quarter, code, reason) in [
        ("2020-Q5", tonic::Code::InvalidArgument, "invalid-field"),
        ("2020Q4", tonic::Code::InvalidArgument, "invalid-field"),
        (
            "2021-Q1",
            tonic::Code::FailedPrecondition,
            "quarter-not-ended",
        ),
    ] {
        let e = admin
            .insight
            .publish(pb::PublishRequest {
                quarter: quarter.into(),
                note: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), up::reason(&e).as_str()),
            (code, reason),
            "{quarter}: {e:?}"
        );
        assert!(e.message().contains(quarter), "{}", e.message());
    }
    let table = |published: &str, revision| pb::GetTableRequest {
        name: "case-flow".into(),
        published: published.into(),
        revision,
        ..Default::default()
    };
    let e = admin
        .insight
        .get_table(table("2020-Q4", 3))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), up::reason(&e).as_str()),
        (tonic::Code::NotFound, "no-such-revision")
    );
    let e = admin
        .insight
        .get_table(table("2019-Q4", 0))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), up::reason(&e).as_str()),
        (tonic::Code::NotFound, "no-publication")
    );
    // A table no publication holds is not answered with empty rows.
    let e = admin
        .insight
        .get_table(pb::GetTableRequest {
            name: "region-comparison".into(),
            ..table("2020-Q4", 0)
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), up::reason(&e).as_str()),
        (tonic::Code::NotFound, "table-not-published")
    );
    assert!(
        e.message().contains("holds no region-comparison table")
            && e.message().contains("county-wide"),
        "{}",
        e.message()
    );
    let e = admin
        .insight
        .publish(pb::PublishRequest {
            quarter: "2020-Q4".into(),
            note: "x".repeat(201),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), up::reason(&e).as_str()),
        (tonic::Code::InvalidArgument, "invalid-field")
    );
    assert_eq!(publication_events(&second, &tokens).await.len(), 2);

    // A valid Publish is revision 2, and GetTable serves each revision as recorded.
    let reply = admin
        .insight
        .publish(pb::PublishRequest {
            quarter: "2020-Q4".into(),
            note: "again".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.publication.unwrap().revision, 2);
    let one = admin
        .insight
        .get_table(table("2020-Q4", 1))
        .await
        .unwrap()
        .into_inner();
    let publication = one.publication.expect("the publication");
    assert_eq!((publication.revision, publication.automatic), (1, true));
    let live = admin
        .insight
        .get_table(pb::GetTableRequest {
            name: "case-flow".into(),
            period: "quarter".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let quarter = admin
        .insight
        .get_table(pb::GetTableRequest {
            period: "quarter".into(),
            ..table("2020-Q4", 1)
        })
        .await
        .unwrap()
        .into_inner();
    let q4: Vec<&pb::Row> = live
        .rows
        .iter()
        .filter(|r| r.cells[0].value == Some(pb::cell::Value::Text("2020-Q4".into())))
        .collect();
    assert_eq!(quarter.rows.iter().collect::<Vec<_>>(), q4);
    second.stop();
}
