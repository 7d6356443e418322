//! `gryning retain`, end to end on the embedded store: a dry run changes nothing; a run erases
//! exactly the closed cases and ended client records whose last event is older than the limit
//! (recomputed here from the events, apart from the implementation), and afterwards every
//! table — every name, period, code and group, region and classification — is what it was,
//! also after `gryning rebuild` and as of a snapshot before the erasure; the erased streams'
//! ids are in neither the database file nor its write-ahead log; the audit trail shows the
//! erasure with its counts and no erased id; a resend of an erased event is refused, offline
//! and through the services; the erased streams are unreadable through the event log; a bad
//! `--older-than` is refused naming the flag.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/up.rs"]
mod up;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::process::Output;

use gryning_domain::{Body, Catalogue, Event, Subject};
use gryning_proto::pb;
use harness::Server;

const SNAPSHOT_EVERY: &str = "700";

/// Lines of the generated data set to import: enough cases that many are closed by its end.
const LINES: usize = 6000;

fn gryning(data_dir: &Path, args: &[&str]) -> Output {
    let data_dir = data_dir.to_str().expect("a UTF-8 temporary path");
    up::gryning_with(
        &[&["--data-dir", data_dir], args].concat(),
        &[("GRYNING_SNAPSHOT_EVERY", SNAPSHOT_EVERY)],
    )
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every table in every layout the CLI offers, as JSON, with `extra` options.
fn every_table(data_dir: &Path, extra: &[&str]) -> Vec<(String, serde_json::Value)> {
    let catalogue = Catalogue::default_catalogue();
    let mut classifications = vec!["recorded".to_string()];
    classifications.extend(catalogue.versions().iter().map(|v| v.name().to_string()));
    let mut out = Vec::new();
    let names = [
        "case-flow",
        "clearance",
        "care",
        "progress",
        "social-services",
        "region-comparison",
    ];
    for name in names {
        for period in ["quarter", "year"] {
            for by in ["code", "group"] {
                for classification in &classifications {
                    for region in [None, Some("Stockholm")] {
                        // Regions under the recorded classification; the county-wide tables
                        // take no region.
                        if region.is_some()
                            && (name == "region-comparison"
                                || name == "social-services"
                                || classification != "recorded")
                        {
                            continue;
                        }
                        let mut args = vec![
                            "table",
                            name,
                            "--period",
                            period,
                            "--by",
                            by,
                            "--classification",
                            classification,
                            "--format",
                            "json",
                        ];
                        if let Some(r) = region {
                            args.extend(["--region", r]);
                        }
                        args.extend_from_slice(extra);
                        let label = args.join(" ");
                        let json = ok(gryning(data_dir, &args), &label);
                        out.push((label, serde_json::from_str(&json).unwrap()));
                    }
                }
            }
        }
    }
    out
}

/// The closed cases and ended client records of `events` whose last event is dated before
/// `cutoff`: the streams retention must erase, by the contract's rule.
fn erasable(events: &[Event], cutoff: gryning_domain::Date) -> BTreeSet<String> {
    #[derive(Default)]
    struct S {
        case: bool,
        last: Option<gryning_domain::Date>,
        crimes: HashSet<uuid::Uuid>,
        decided: HashSet<uuid::Uuid>,
        running: bool,
    }
    let mut streams: HashMap<String, S> = HashMap::new();
    for e in events {
        let case = match e.subject {
            Subject::Case(_) => true,
            Subject::Client(_) => false,
            _ => continue,
        };
        let s = streams.entry(e.subject.stream_name()).or_default();
        s.case = case;
        s.last = Some(s.last.map_or(e.occurred_on, |d| d.max(e.occurred_on)));
        match &e.body {
            Body::CrimeReported { crime_id, .. } => {
                s.crimes.insert(*crime_id);
            }
            Body::InvestigationClosed { crime_ids, .. } => s.decided.extend(crime_ids),
            Body::ProsecutionDecided { crime_id, .. } => {
                s.decided.insert(*crime_id);
            }
            Body::TreatmentProgrammeStarted { .. } => s.running = true,
            Body::TreatmentProgrammeEnded { .. } => s.running = false,
            _ => {}
        }
    }
    streams
        .into_iter()
        .filter(|(_, s)| {
            let closed = if s.case {
                !s.crimes.is_empty() && s.crimes.is_subset(&s.decided)
            } else {
                !s.running
            };
            closed && s.last.is_some_and(|d| d < cutoff)
        })
        .map(|(name, _)| name)
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The database file and its write-ahead log, as bytes.
fn store_files(data: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(data.join("events.sqlite3")).unwrap();
    if let Ok(wal) = std::fs::read(data.join("events.sqlite3-wal")) {
        bytes.extend(wal);
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_erases_old_closed_streams_and_keeps_every_table() {
    let catalogue = Catalogue::default_catalogue();
    let mut ndjson = Vec::new();
    gryning_synth::write_ndjson(gryning_synth::DEFAULT_SEED, 1, &catalogue, &mut ndjson).unwrap();
    let lines: Vec<&str> = std::str::from_utf8(&ndjson)
        .unwrap()
        .lines()
        .take(LINES)
        .collect();
    let events: Vec<Event> = lines
        .iter()
        .map(|l| {
            gryning_proto::from_pb(gryning_proto::ndjson::parse_line(l.as_bytes()).unwrap())
                .unwrap()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.ndjson");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let data = dir.path().join("data");
    ok(
        gryning(&data, &["import", file.to_str().unwrap()]),
        "import",
    );
    ok(
        gryning(&data, &["publish", "--quarter", "2019-Q4"]),
        "publish",
    );

    // What must go: by the rule, recomputed here. The cutoff of 5y is five years before today
    // in Stockholm; every generated event is of 2019–2020, so which streams go depends only on
    // whether they are closed — and a stream that is closed but young would be kept.
    let today = gryning_domain::Date::in_stockholm(jiff::Timestamp::now());
    let cutoff = gryning_domain::Date::from_civil(
        today
            .to_civil()
            .checked_sub(jiff::Span::new().years(5))
            .unwrap(),
    );
    let doomed = erasable(&events, cutoff);
    let doomed_events = events
        .iter()
        .filter(|e| doomed.contains(&e.subject.stream_name()))
        .count();
    let kept: BTreeSet<String> = events
        .iter()
        .map(|e| e.subject.stream_name())
        .filter(|s| !doomed.contains(s))
        .collect();
    assert!(
        doomed.len() > 50 && !kept.is_empty(),
        "{} doomed",
        doomed.len()
    );
    let erased_case = doomed
        .iter()
        .find(|s| s.starts_with("case-"))
        .unwrap()
        .clone();
    assert!(
        doomed.iter().any(|s| s.starts_with("client-")),
        "ended client records go too"
    );
    let kept_case = kept
        .iter()
        .find(|s| s.starts_with("case-"))
        .unwrap()
        .clone();
    let uuid_of = |stream: &str| uuid::Uuid::parse_str(stream.split_once('-').unwrap().1).unwrap();

    let before = every_table(&data, &[]);
    // As of a snapshot's position before the erasure (snapshots every 700 events): exact
    // afterwards too (between snapshots the erased events after the snapshot are missing).
    let mut snapshots: Vec<u64> = std::fs::read_dir(data.join("snapshots"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".ckpt")?.parse().ok())
        .collect();
    snapshots.sort_unstable();
    assert!(snapshots.len() >= 3, "{snapshots:?}");
    let at = snapshots[1].to_string();
    let as_of_before = every_table(&data, &["--as-of", &at]);
    let publications = ok(
        gryning(&data, &["publications", "--format", "json"]),
        "publications",
    );
    let files_before = std::fs::read(data.join("events.sqlite3")).unwrap();
    assert!(
        contains(
            &files_before,
            erased_case.split_once('-').unwrap().1.as_bytes()
        ) || contains(&files_before, uuid_of(&erased_case).as_bytes())
    );

    // Bad limits are refused naming the flag, and change nothing.
    for bad in ["5", "5w", "-1y", "0d", "y", "1.5y"] {
        let out = gryning(&data, &["retain", "--older-than", bad, "--dry-run"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("--older-than"), "{bad}: {stderr}");
    }

    // A dry run says what would go, and changes nothing.
    let dry = ok(
        gryning(&data, &["retain", "--older-than", "5y", "--dry-run"]),
        "dry run",
    );
    assert!(dry.contains("dry run"), "{dry}");
    assert!(
        dry.contains(&format!(
            "{} streams ({doomed_events} events)",
            doomed.len()
        )),
        "{dry}"
    );
    assert_eq!(
        std::fs::read(data.join("events.sqlite3")).unwrap(),
        files_before
    );
    assert_eq!(every_table(&data, &[]), before);

    // The run.
    let done = ok(gryning(&data, &["retain", "--older-than", "5y"]), "retain");
    assert!(
        done.contains(&format!(
            "erased {} streams ({doomed_events} events)",
            doomed.len()
        )),
        "{done}"
    );
    assert!(!done.contains(&erased_case), "{done}");

    // Every table is unchanged, also after a rebuild from the log, and as of the snapshot.
    let after = every_table(&data, &[]);
    for ((label, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(a, b, "{label}");
    }
    for ((label, a), (_, b)) in as_of_before
        .iter()
        .zip(&every_table(&data, &["--as-of", &at]))
    {
        assert_eq!(a, b, "after retain: {label}");
    }
    assert_eq!(
        ok(
            gryning(&data, &["publications", "--format", "json"]),
            "publications"
        ),
        publications
    );
    ok(gryning(&data, &["rebuild"]), "rebuild");
    for ((label, a), (_, b)) in before.iter().zip(&every_table(&data, &[])) {
        assert_eq!(a, b, "after rebuild: {label}");
    }
    for ((label, a), (_, b)) in as_of_before
        .iter()
        .zip(&every_table(&data, &["--as-of", &at]))
    {
        assert_eq!(a, b, "after rebuild: {label}");
    }

    // The erased ids are in neither the database nor its log, as text or as bytes; a kept
    // case still is (the search can find what is there).
    let files = store_files(&data);
    for stream in doomed.iter().take(200) {
        let id = uuid_of(stream);
        assert!(
            !contains(&files, id.to_string().as_bytes()),
            "{stream} is still in the files"
        );
        assert!(
            !contains(&files, id.as_bytes()),
            "{stream}'s bytes are still in the files"
        );
    }
    assert!(contains(&files, uuid_of(&kept_case).to_string().as_bytes()));
    // The projection files keep no erased id either.
    for entry in walk(&data) {
        if entry.extension().is_some_and(|e| e == "ckpt") {
            let bytes = std::fs::read(&entry).unwrap();
            assert!(
                !contains(&bytes, uuid_of(&erased_case).as_bytes()),
                "{} holds an erased case id",
                entry.display()
            );
        }
    }

    // The audit trail shows the erasure, with its counts and no erased id.
    let audit = ok(
        gryning(
            &data,
            &["audit", "--type", "StreamsErased", "--format", "json"],
        ),
        "audit",
    );
    assert!(audit.contains("erased"), "{audit}");
    assert!(
        audit.contains(&format!("({doomed_events} events)")),
        "{audit}"
    );
    assert!(!audit.contains(&erased_case), "{audit}");
    let all_audit = ok(
        gryning(&data, &["audit", "--format", "csv", "--limit", "100000"]),
        "audit",
    );
    assert!(!all_audit.contains(&uuid_of(&erased_case).to_string()));
    assert!(all_audit.contains("StreamsErased"));

    // A resend of an erased event, offline: refused, saying when it was erased; not stored.
    let resend_line = lines
        .iter()
        .zip(&events)
        .find(|(_, e)| e.subject.stream_name() == erased_case)
        .map(|(l, _)| *l)
        .unwrap();
    let resend = dir.path().join("resend.ndjson");
    std::fs::write(&resend, resend_line).unwrap();
    let out = gryning(&data, &["import", resend.to_str().unwrap()]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("erased by retention on"), "{text}");
    assert!(text.contains("0 accepted"), "{text}");
    assert!(!contains(
        &store_files(&data),
        uuid_of(&erased_case).as_bytes()
    ));
    // The StreamsErased event itself is never accepted from outside.
    let forged = dir.path().join("forged.ndjson");
    std::fs::write(
        &forged,
        format!(
            r#"{{"eventId":"{}","occurredOn":"2020-01-01","retentionStream":"retention","streamsErased":{{"run":9}}}}"#,
            uuid::Uuid::new_v4()
        ),
    )
    .unwrap();
    let out = gryning(&data, &["import", forged.to_str().unwrap()]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("recorded only by gryning retain"), "{text}");

    // Through the services: the event log holds none of the erased streams, and a resend of
    // an erased event is FAILED_PRECONDITION.
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
    let mut admin = up::as_role(&server, &server.tokens, "admin").await;
    let log = up::read_log(&mut admin, 10_000).await;
    assert!(log.len() > 100);
    for recorded in &log {
        assert!(
            !doomed.contains(&recorded.stream),
            "{} is readable",
            recorded.stream
        );
    }
    assert!(log.iter().any(|r| r.stream == "retention"));
    let erased_open = events
        .iter()
        .find(|e| {
            e.subject.stream_name() == erased_case && matches!(e.body, Body::CaseOpened { .. })
        })
        .unwrap();
    let Body::CaseOpened {
        lead_crime_code,
        police_region,
        local_police_area,
    } = &erased_open.body
    else {
        unreachable!()
    };
    let mut police = up::as_role(&server, &server.tokens, "police").await;
    for event_id in [erased_open.event_id.to_string(), up::id()] {
        let status = police
            .police
            .open_case(pb::OpenCaseRequest {
                event_id,
                occurred_on: erased_open.occurred_on.to_string(),
                case_id: uuid_of(&erased_case).to_string(),
                case_opened: Some(pb::CaseOpened {
                    lead_crime_code: lead_crime_code.to_string(),
                    police_region: police_region.clone(),
                    local_police_area: local_police_area.clone(),
                }),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
        assert!(
            status.message().contains("erased by retention on"),
            "{status:?}"
        );
    }
    server.stop();
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn retain_refuses_the_jetstream_backend_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = up::gryning_with(
        &[
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--store",
            "nats://127.0.0.1:1",
            "retain",
            "--older-than",
            "5y",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("does not support retention yet"),
        "{stderr}"
    );
}
