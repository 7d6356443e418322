//! `gryning import FILE --server URL` against `gryning up`: the file goes through the event-log
//! service, rejected lines are named by their number and the rest are stored once.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/up.rs"]
mod up;

use gryning_proto::pb;
use up::{as_role, id, read_log, up, BIN};

/// `gryning import FILE --server URL`: the file goes through the event-log service with the
/// caller's token. Each rejected line is named by its number — lines that are not NDJSON events
/// (found by the client), rule breaks and event types the role may not record (found by the
/// server) — the valid lines are stored, the exit status says some were rejected, and a second
/// import of the same file stores nothing new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_through_the_server_names_rejected_lines_and_stores_the_rest() {
    use pb::event::Body as B;
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    let tokens = server.tokens.clone();
    let (case, stranger) = (id(), id());
    let event = |case: &str, day: &str, body| {
        serde_json::to_string(&pb::Event {
            event_id: id(),
            occurred_on: format!("2020-{day}"),
            subject: Some(pb::event::Subject::CaseId(case.to_string())),
            body: Some(body),
        })
        .unwrap()
    };
    let crime = id();
    let lines = [
        event(
            &case,
            "01-10",
            B::CaseOpened(pb::CaseOpened {
                lead_crime_code: "9365".into(),
                ..Default::default()
            }),
        ),
        String::new(),
        "{\"eventId\": ".to_string(),
        event(
            &case,
            "01-11",
            B::CrimeReported(pb::CrimeReported {
                crime_id: crime.clone(),
                crime_code: "9365".into(),
                victim_gender: 1,
                victim_age_group: 2,
            }),
        ),
        event(
            &stranger,
            "01-12",
            B::CrimeReported(pb::CrimeReported {
                crime_id: id(),
                crime_code: "9365".into(),
                victim_gender: 1,
                victim_age_group: 2,
            }),
        ),
        event(
            &case,
            "05-01",
            B::ProsecutionDecided(pb::ProsecutionDecided {
                crime_id: crime,
                decision: 1,
            }),
        ),
        event(
            &case,
            "02-01",
            B::CaseReferredToProsecutor(pb::CaseReferredToProsecutor {}),
        ),
    ];
    let file = dir.path().join("events.ndjson");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let import = |token: Option<&str>| {
        let mut command = std::process::Command::new(BIN);
        command
            .args(["import", file.to_str().unwrap(), "--server", &server.url()])
            .env_remove("GRYNING_TOKEN");
        if let Some(token) = token {
            command.args(["--token", token]);
        }
        let out = command.output().unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };

    let (code, stdout, stderr) = import(Some(&tokens["police"]));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stdout.contains("imported 6 lines")
            && stdout.contains("3 accepted, 0 duplicate, 3 rejected"),
        "{stdout}"
    );
    let rejected: Vec<&str> = stderr.lines().filter(|l| l.starts_with("line ")).collect();
    assert_eq!(rejected.len(), 3, "{stderr}");
    assert!(rejected[0].starts_with("line 3: "), "{stderr}");
    assert!(
        rejected[1].starts_with("line 5: ") && rejected[1].contains("case-must-be-opened"),
        "{stderr}"
    );
    assert!(
        rejected[2].starts_with("line 6: ") && rejected[2].contains("ProsecutionDecided"),
        "{stderr}"
    );

    // What is stored: the three valid lines, in file order, recorded by the police principal.
    let mut auditor = as_role(&server, &tokens, "auditor").await;
    let mut stored = Vec::new();
    for r in read_log(&mut auditor, 0).await {
        assert_eq!(r.metadata.unwrap().agency, "police");
        stored.push(serde_json::to_string(&r.event.unwrap()).unwrap());
    }
    assert_eq!(
        stored,
        [lines[0].clone(), lines[3].clone(), lines[6].clone()]
    );

    // Importing again stores nothing new: the valid lines are duplicates.
    let (code, stdout, stderr) = import(Some(&tokens["police"]));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stdout.contains("0 accepted, 3 duplicate, 3 rejected"),
        "{stdout}"
    );

    // Without a token the command says what it needs; an analyst may not append at all.
    let (code, _, stderr) = import(None);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("--token"), "{stderr}");
    let (code, _, stderr) = import(Some(&tokens["analyst"]));
    assert_ne!(code, Some(0));
    assert!(stderr.contains("PermissionDenied"), "{stderr}");
    server.stop();
}

/// A bulk append with many rejected events: the summary lists the first
/// `MAX_LISTED_REJECTIONS` by index and counts the rest, so it stays small for a default client
/// (whose limit is 4 MiB); `gryning import --server` names the listed lines, counts every
/// rejection and says how many lines the server did not name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_rejections_are_listed_up_to_the_limit_and_counted_in_full() {
    const LIMIT: usize = gryning_event_log::MAX_LISTED_REJECTIONS;
    let rejected = LIMIT + 1_500;
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    let tokens = server.tokens.clone();
    // Referrals of cases never opened: each breaks case-must-be-opened on the server.
    let events: Vec<pb::Event> = (0..rejected)
        .map(|_| pb::Event {
            event_id: id(),
            occurred_on: "2020-02-01".into(),
            subject: Some(pb::event::Subject::CaseId(id())),
            body: Some(pb::event::Body::CaseReferredToProsecutor(
                pb::CaseReferredToProsecutor {},
            )),
        })
        .collect();

    let mut police = as_role(&server, &tokens, "police").await;
    let summary = police
        .log
        .append(tokio_stream::iter(events.clone()))
        .await
        .expect("a bulk append with rejections succeeds")
        .into_inner();
    assert_eq!(summary.accepted, 0);
    assert_eq!(summary.rejected, rejected as u64);
    assert_eq!(summary.rejections.len(), LIMIT);
    assert_eq!(summary.rejections_omitted, (rejected - LIMIT) as u64);
    let indexes: Vec<u64> = summary.rejections.iter().map(|r| r.index).collect();
    assert_eq!(
        indexes,
        (0..LIMIT as u64).collect::<Vec<_>>(),
        "the first by index"
    );
    assert!(summary
        .rejections
        .iter()
        .all(|r| r.reason == "case-must-be-opened"));
    let size = prost::Message::encoded_len(&summary);
    assert!(size < 1 << 20, "the summary is {size} bytes");
    drop(police);

    let file = dir.path().join("unopened.ndjson");
    let ndjson: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    std::fs::write(&file, ndjson.join("\n") + "\n").unwrap();
    let out = std::process::Command::new(BIN)
        .args(["import", file.to_str().unwrap(), "--server", &server.url()])
        .args(["--token", &tokens["police"]])
        .env_remove("GRYNING_TOKEN")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stdout.contains(&format!("0 accepted, 0 duplicate, {rejected} rejected")),
        "{stdout}"
    );
    let named: Vec<&str> = stderr.lines().filter(|l| l.starts_with("line ")).collect();
    assert_eq!(named.len(), LIMIT);
    assert!(named[0].starts_with("line 1: "), "{}", named[0]);
    assert!(
        stderr.contains(&format!(
            "note: {} more lines were rejected",
            rejected - LIMIT
        )),
        "{}",
        stderr.lines().last().unwrap_or_default()
    );
    server.stop();
}
