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
