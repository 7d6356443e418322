//! Access of `gryning up` beyond the role table (tests/roles.rs): the credentials file is
//! private (a readable one is refused at start), `gryning credentials add|rotate|revoke`
//! change a running server's credentials without a restart, a new token goes only to a
//! terminal or a 0600 `--token-out` file, refusals are logged with the principal and the RPC
//! (never the token) and counted by reason, and scoped principals record only in their police
//! region, local police areas or municipality while unscoped ones keep the county.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/up.rs"]
mod up;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gryning_proto::pb;
use harness::{sample, scrape, Server, DEADLINE};
use tonic::Code;
use up::{clients, gryning_with, id, reason, tokio_stream_iter};

const DAY: &str = "2020-03-02";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `gryning credentials ARGS… --file FILE`, asserting success.
fn credentials(file: &Path, args: &[&str]) {
    let mut all = vec!["credentials"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--file", file.to_str().unwrap()]);
    let out = gryning_with(&all, &[]);
    assert!(out.status.success(), "gryning {all:?}: {}", stderr(&out));
}

/// Issues a token with `gryning credentials ARGS… --token-out`, returning it (the file is
/// private and holds the one line).
fn issue(dir: &Path, file: &Path, args: &[&str]) -> String {
    let out: PathBuf = dir.join(format!("token-{}", id()));
    let mut all = args.to_vec();
    all.extend_from_slice(&["--token-out", out.to_str().unwrap()]);
    credentials(file, &all);
    assert_eq!(mode(&out), 0o600, "the token file is private");
    let text = std::fs::read_to_string(&out).unwrap();
    let line = text.lines().next().expect("a token line");
    assert!(line.starts_with("token role="), "{line}");
    line.rsplit(' ').next().unwrap().to_string()
}

/// The code of a call that needs only a known token: analysts get the status, others
/// PERMISSION_DENIED, an unknown token UNAUTHENTICATED.
async fn probe(server: &Server, token: &str) -> Code {
    let mut c = clients(server, Some(token)).await;
    match c.insight.status(pb::StatusRequest {}).await {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

/// Awaits a running server taking a change of its credentials file: `token` known (`true`)
/// or unknown.
async fn await_token(server: &Server, token: &str, known: bool) {
    let started = std::time::Instant::now();
    loop {
        let unauthenticated = probe(server, token).await == Code::Unauthenticated;
        if unauthenticated != known {
            return;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the server did not take the credentials change (token known: {known}) within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn open(case: &str, region: &str, area: &str) -> pb::OpenCaseRequest {
    pb::OpenCaseRequest {
        event_id: id(),
        occurred_on: DAY.into(),
        case_id: case.into(),
        case_opened: Some(pb::CaseOpened {
            lead_crime_code: "9365".into(),
            police_region: region.into(),
            local_police_area: area.into(),
        }),
    }
}

fn report(case: &str, crime: &str) -> pb::ReportCrimeRequest {
    pb::ReportCrimeRequest {
        event_id: id(),
        occurred_on: DAY.into(),
        case_id: case.into(),
        crime_reported: Some(pb::CrimeReported {
            crime_id: crime.into(),
            crime_code: "9365".into(),
            victim_gender: 1,
            victim_age_group: 2,
        }),
    }
}

fn support_event(client: &str) -> pb::Event {
    pb::Event {
        event_id: id(),
        occurred_on: DAY.into(),
        subject: Some(pb::event::Subject::ClientId(client.into())),
        body: Some(pb::event::Body::SupportGranted(pb::SupportGranted {
            kind: 1,
            gender: 1,
            age_group: 2,
        })),
    }
}

fn support(client: &str) -> pb::GrantSupportRequest {
    pb::GrantSupportRequest {
        event_id: id(),
        occurred_on: DAY.into(),
        client_id: client.into(),
        support_granted: Some(pb::SupportGranted {
            kind: 1,
            gender: 1,
            age_group: 2,
        }),
    }
}

/// Asserts an out-of-scope refusal whose message names `scope`.
fn out_of_scope<T: std::fmt::Debug>(result: Result<T, tonic::Status>, scope: &str) {
    let status = result.expect_err("out of scope");
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "{}",
        status.message()
    );
    assert_eq!(reason(&status), "out-of-scope");
    assert!(
        status.message().contains(scope),
        "the refusal names the scope {scope:?}: {}",
        status.message()
    );
    // …and nothing of where the other case or client belongs.
    let (_, rest) = status.message().split_once(" may not record in ").unwrap();
    assert!(
        rest.ends_with(")") && rest.contains(": it lies outside that scope (event_id"),
        "{}",
        status.message()
    );
    for place in [
        "Polisregion",
        "local police area",
        "municipality",
        "started",
    ] {
        assert!(!rest.contains(place), "{place:?} in {}", status.message());
    }
}

#[test]
fn a_credentials_file_others_may_read_is_refused_at_start_saying_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let file = data.join("credentials.toml");
    // On a pipe, init shows no token: it wants --token-out and changes nothing.
    let out = gryning_with(
        &["credentials", "init", "--file", file.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--token-out"), "{}", stderr(&out));
    assert!(!file.exists());

    let tokens = dir.path().join("tokens");
    credentials(&file, &["init", "--token-out", tokens.to_str().unwrap()]);
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&tokens), 0o600);
    assert_eq!(std::fs::read_to_string(&tokens).unwrap().lines().count(), 6);

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = gryning_with(
        &[
            "up",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[("GRYNING_LOG", "off")],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("mode 0644"), "{err}");
    assert!(
        err.contains(&format!("chmod 600 {}", file.display())),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_rotated_and_revoked_tokens_take_effect_on_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = up::up_with(dir.path(), &[]);
    let file = dir.path().join("data/credentials.toml");
    assert_eq!(mode(&file), 0o600, "gryning up creates a private file");
    // Its standard output is not a terminal: the first start's tokens are in a private file
    // beside the credentials file (harness::read_tokens checks its mode), never in the log.
    let written = harness::read_tokens(&dir.path().join("data/credentials.toml.tokens"));
    assert_eq!(
        written, server.tokens,
        "the file holds the tokens the server announced"
    );
    assert_eq!(written.len(), 6, "one token per role: {written:?}");
    let log = std::fs::read_to_string(&server.log).unwrap();
    for token in written.values() {
        assert!(!log.contains(token.as_str()), "a token in the log: {log}");
    }
    assert_eq!(probe(&server, &written["analyst"]).await, Code::Ok);

    // Without a terminal or --token-out nothing changes.
    let out = gryning_with(
        &[
            "credentials",
            "add",
            "--principal",
            "analys-1",
            "--role",
            "analyst",
            "--file",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a terminal"), "{}", stderr(&out));

    let added = issue(
        dir.path(),
        &file,
        &["add", "--principal", "analys-1", "--role", "analyst"],
    );
    await_token(&server, &added, true).await;
    assert_eq!(
        probe(&server, &added).await,
        Code::Ok,
        "an analyst may call Status"
    );
    assert_eq!(mode(&file), 0o600, "an edit keeps the file private");

    let rotated = issue(dir.path(), &file, &["rotate", "--principal", "analys-1"]);
    await_token(&server, &added, false).await;
    assert_eq!(probe(&server, &rotated).await, Code::Ok);

    credentials(&file, &["revoke", "--principal", "analys-1"]);
    await_token(&server, &rotated, false).await;
    // The tokens issued at the first start still work.
    assert_eq!(probe(&server, &server.tokens["analyst"]).await, Code::Ok);

    // A denied call and an unknown token, logged and counted by reason and RPC.
    let mut police = clients(&server, Some(&server.tokens["analyst"])).await;
    let denied = police
        .police
        .open_case(open(&id(), "", ""))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let mut unknown = clients(&server, Some(&rotated)).await;
    assert_eq!(
        unknown
            .police
            .open_case(open(&id(), "", ""))
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    let (_, body) = scrape(server.metrics_port.unwrap(), "/metrics").await;
    let count = |labels: &str| sample(&body, &format!("gryning_access_refused_total{{{labels}}}"));
    assert!(
        count("reason=\"rpc-denied\",rpc=\"Police.OpenCase\"").unwrap_or(0.0) >= 1.0,
        "{body}"
    );
    assert!(
        count("reason=\"unknown-token\",rpc=\"Police.OpenCase\"").unwrap_or(0.0) >= 1.0,
        "{body}"
    );
    assert!(count("reason=\"unknown-token\",rpc=\"Insight.Status\"").unwrap_or(0.0) >= 1.0);
    assert!(
        sample(
            &body,
            "gryning_credentials_reloads_total{outcome=\"loaded\"}"
        )
        .unwrap_or(0.0)
            >= 3.0,
        "{body}"
    );

    let log_path = server.log.clone();
    let mut every_token: Vec<String> = server.tokens.values().cloned().collect();
    every_token.extend([added.clone(), rotated.clone()]);
    server.stop();
    let log = std::fs::read_to_string(&log_path).unwrap();
    for token in &every_token {
        assert!(!log.contains(token.as_str()), "a token in the log");
    }
    assert!(
        log.lines().any(|l| l.contains("access refused")
            && l.contains("principal=\"unknown\"")
            && l.contains("Police.OpenCase")),
        "{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("access refused")
            && l.contains("principal=\"analyst\"")
            && l.contains("rpc-denied")),
        "{log}"
    );
    assert!(log.contains("credentials file changed: reloaded"), "{log}");
    let journal =
        std::fs::read_to_string(dir.path().join("data/credentials.changes.ndjson")).unwrap();
    for change in ["\"added\"", "\"rotated\"", "\"revoked\""] {
        assert!(journal.contains(change), "{journal}");
    }
    assert!(!journal.contains(&added) && !journal.contains(&rotated));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_principals_record_only_in_their_scope_and_tables_stay_county_wide() {
    let dir = tempfile::tempdir().unwrap();
    let server = up::up(dir.path());
    let file = dir.path().join("data/credentials.toml");
    let t = |args: &[&str]| issue(dir.path(), &file, args);
    let syd = t(&[
        "add",
        "--principal",
        "polis-syd",
        "--role",
        "police",
        "--police-region",
        "Syd",
    ]);
    let farsta = t(&[
        "add",
        "--principal",
        "polis-farsta",
        "--role",
        "police",
        "--police-region",
        "Polisregion Stockholm",
        "--local-police-area",
        "Farsta",
        "--local-police-area",
        "Skärholmen",
    ]);
    let prosecutor = t(&[
        "add",
        "--principal",
        "aklagare-sthlm",
        "--role",
        "prosecution",
        "--police-region",
        "stockholm",
    ]);
    let botkyrka = t(&[
        "add",
        "--principal",
        "soc-botkyrka",
        "--role",
        "care",
        "--municipality",
        "Botkyrka",
    ]);
    let huddinge = t(&[
        "add",
        "--principal",
        "soc-huddinge",
        "--role",
        "care",
        "--municipality",
        "Huddinge",
    ]);
    // A scope that does not fit the role is refused, and the file stays as it was.
    let out = gryning_with(
        &[
            "credentials",
            "add",
            "--principal",
            "analys-syd",
            "--role",
            "analyst",
            "--police-region",
            "Syd",
            "--token-out",
            dir.path().join("nope").to_str().unwrap(),
            "--file",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not analyst"), "{}", stderr(&out));
    assert!(!dir.path().join("nope").exists());
    await_token(&server, &huddinge, true).await;

    let tokens = &server.tokens;
    let mut police = clients(&server, Some(&tokens["police"])).await;
    let mut care = clients(&server, Some(&tokens["care"])).await;
    let mut syd_c = clients(&server, Some(&syd)).await;
    let mut farsta_c = clients(&server, Some(&farsta)).await;
    let mut prosecutor_c = clients(&server, Some(&prosecutor)).await;
    let mut botkyrka_c = clients(&server, Some(&botkyrka)).await;
    let mut huddinge_c = clients(&server, Some(&huddinge)).await;

    // Cases of three places, opened by the unscoped police principal (today's behaviour).
    let (in_farsta, in_soder, in_malmo) = (id(), id(), id());
    for (case, region, area) in [
        (&in_farsta, "Polisregion Stockholm", "Farsta"),
        (&in_soder, "Polisregion Stockholm", "Södermalm"),
        (&in_malmo, "Polisregion Syd", "Malmö"),
    ] {
        police
            .police
            .open_case(open(case, region, area))
            .await
            .unwrap();
    }

    // A region-scoped police principal: its region's cases (any area), not another region's.
    syd_c
        .police
        .open_case(open(&id(), "Polisregion Syd", "Lund"))
        .await
        .expect("polis-syd opens a case in Syd");
    syd_c
        .police
        .report_crime(report(&in_malmo, &id()))
        .await
        .expect("polis-syd reports a crime in a case of Syd");
    out_of_scope(
        syd_c
            .police
            .open_case(open(&id(), "Polisregion Stockholm", "Farsta"))
            .await,
        "police region Polisregion Syd",
    );
    out_of_scope(
        syd_c.police.report_crime(report(&in_farsta, &id())).await,
        "police region Polisregion Syd",
    );

    // Area-scoped: its areas of its region only.
    let farsta_crime = id();
    farsta_c
        .police
        .report_crime(report(&in_farsta, &farsta_crime))
        .await
        .expect("polis-farsta reports a crime in Farsta");
    farsta_c
        .police
        .open_case(open(&id(), "Polisregion Stockholm", "Skärholmen"))
        .await
        .expect("polis-farsta opens a case in Skärholmen");
    out_of_scope(
        farsta_c.police.report_crime(report(&in_soder, &id())).await,
        "local police areas Farsta, Skärholmen",
    );
    out_of_scope(
        farsta_c.police.report_crime(report(&in_malmo, &id())).await,
        "Polisregion Stockholm",
    );

    // A region-scoped prosecutor decides in its region's cases only.
    let malmo_crime = id();
    police
        .police
        .report_crime(report(&in_malmo, &malmo_crime))
        .await
        .unwrap();
    for case in [&in_farsta, &in_malmo] {
        police
            .police
            .refer_to_prosecutor(pb::ReferToProsecutorRequest {
                event_id: id(),
                occurred_on: DAY.into(),
                case_id: case.to_string(),
            })
            .await
            .unwrap();
    }
    let decide = |case: &str, crime: &str| pb::DecideProsecutionRequest {
        event_id: id(),
        occurred_on: DAY.into(),
        case_id: case.into(),
        prosecution_decided: Some(pb::ProsecutionDecided {
            crime_id: crime.into(),
            decision: 1,
        }),
    };
    prosecutor_c
        .prosecution
        .decide_prosecution(decide(&in_farsta, &farsta_crime))
        .await
        .expect("the Stockholm prosecutor decides in Stockholm");
    out_of_scope(
        prosecutor_c
            .prosecution
            .decide_prosecution(decide(&in_malmo, &malmo_crime))
            .await,
        "police region Polisregion Stockholm",
    );

    // The bulk append checks each event: the one in scope is stored, the other refused.
    let case_event = |case: &str, crime: &str| pb::Event {
        event_id: id(),
        occurred_on: DAY.into(),
        subject: Some(pb::event::Subject::CaseId(case.into())),
        body: Some(pb::event::Body::CrimeReported(pb::CrimeReported {
            crime_id: crime.into(),
            crime_code: "9365".into(),
            victim_gender: 1,
            victim_age_group: 2,
        })),
    };
    let summary = syd_c
        .log
        .append(tokio_stream_iter(vec![
            case_event(&in_malmo, &id()),
            case_event(&in_farsta, &id()),
        ]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((summary.accepted, summary.rejected), (1, 1), "{summary:?}");
    assert_eq!(summary.rejections[0].index, 1);
    assert_eq!(summary.rejections[0].reason, "out-of-scope");

    // A municipality's social services: the clients it started, not another's, and not one an
    // unscoped principal started; the unscoped care principal still records anywhere.
    let (ours, unscoped) = (id(), id());
    botkyrka_c
        .care
        .grant_support(support(&ours))
        .await
        .expect("first event of a client");
    botkyrka_c
        .care
        .grant_support(support(&ours))
        .await
        .expect("its own client again");
    out_of_scope(
        huddinge_c.care.grant_support(support(&ours)).await,
        "municipality Huddinge",
    );
    care.care
        .grant_support(support(&ours))
        .await
        .expect("unscoped care");
    care.care.grant_support(support(&unscoped)).await.unwrap();
    out_of_scope(
        botkyrka_c.care.grant_support(support(&unscoped)).await,
        "municipality Botkyrka",
    );
    // A municipality records no case events (its role could not anyway: care events only),
    // and the bulk append says so naming the scope.
    let summary = botkyrka_c
        .log
        .append(tokio_stream_iter(vec![
            support_event(&ours),
            support_event(&unscoped),
        ]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((summary.accepted, summary.rejected), (1, 1), "{summary:?}");
    assert_eq!(summary.rejections[0].reason, "out-of-scope");
    assert!(summary.rejections[0]
        .message
        .contains("municipality Botkyrka"));

    // The stored metadata carries the scope.
    let mut auditor = clients(&server, Some(&tokens["auditor"])).await;
    let log = up::read_log(&mut auditor, 0).await;
    let scopes: Vec<(&str, &str)> = log
        .iter()
        .filter_map(|e| e.metadata.as_ref())
        .map(|m| (m.principal.as_str(), m.scope.as_str()))
        .collect();
    assert!(scopes.contains(&("polis-syd", "police-region:Polisregion Syd")));
    assert!(scopes.contains(&("soc-botkyrka", "municipality:Botkyrka")));
    assert!(scopes.contains(&("police", "")));

    // Tables stay county-wide for analysts: every opened case of every region counts.
    assert_county_wide(&server, 5).await;
    server.stop();
}

/// The analyst's case-flow table of 2020 counts `cases` incoming cases, whatever their region.
async fn assert_county_wide(server: &Server, cases: i64) {
    let mut analyst = clients(server, Some(&server.tokens["analyst"])).await;
    let started = std::time::Instant::now();
    loop {
        let reply = analyst
            .insight
            .get_table(pb::GetTableRequest {
                name: "case-flow".into(),
                period: "year".into(),
                ..Default::default()
            })
            .await
            .expect("an analyst reads the county's table")
            .into_inner();
        let j = reply
            .columns
            .iter()
            .position(|c| c == "cases")
            .expect("cases column");
        let total: i64 = reply
            .rows
            .iter()
            .filter_map(|r| match r.cells[j].value {
                Some(pb::cell::Value::Int(n)) => Some(n),
                _ => None,
            })
            .sum();
        if total == cases {
            return;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "incoming cases {total}, expected {cases}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_lists_who_recorded_what_with_publications_and_credential_changes() {
    let dir = tempfile::tempdir().unwrap();
    let server = up::up(dir.path());
    let file = dir.path().join("data/credentials.toml");
    let tokens = server.tokens.clone();
    let mut police = clients(&server, Some(&tokens["police"])).await;
    let mut admin = clients(&server, Some(&tokens["admin"])).await;
    let auditor = clients(&server, Some(&tokens["auditor"])).await;
    let case = id();
    police
        .police
        .open_case(open(&case, "Polisregion Stockholm", "Farsta"))
        .await
        .unwrap();
    admin
        .insight
        .publish(pb::PublishRequest {
            quarter: "2020-Q1".into(),
            note: "kvartal".into(),
        })
        .await
        .unwrap();
    let added = issue(
        dir.path(),
        &file,
        &[
            "add",
            "--principal",
            "polis-syd",
            "--role",
            "police",
            "--police-region",
            "Syd",
        ],
    );

    let audit = |r: pb::AuditRequest| {
        let mut c = auditor.insight.clone();
        async move { c.audit(r).await.map(|r| r.into_inner()) }
    };
    let all = audit(pb::AuditRequest::default()).await.unwrap();
    let what: Vec<(&str, &str, &str)> = all
        .entries
        .iter()
        .map(|e| {
            (
                e.principal.as_str(),
                e.event_type.as_str(),
                e.detail.as_str(),
            )
        })
        .collect();
    assert!(what.contains(&("police", "CaseOpened", "")), "{what:?}");
    assert!(
        what.contains(&("admin", "TablesPublished", "quarter 2020-Q1 revision 1")),
        "{what:?}"
    );
    assert!(
        what.iter().any(|(p, t, d)| *p == "polis-syd"
            && *t == "CredentialsChanged"
            && d.starts_with("added; tokens removed 0")),
        "{what:?}"
    );
    assert_eq!(
        what.iter()
            .filter(|(_, t, d)| *t == "CredentialsChanged" && d.starts_with("created"))
            .count(),
        6,
        "the first start's six principals: {what:?}"
    );
    let opened = all
        .entries
        .iter()
        .find(|e| e.event_type == "CaseOpened")
        .unwrap();
    assert_eq!(opened.stream, format!("case-{case}"));
    assert_eq!(opened.agency, "police");
    assert!(!opened.at.is_empty() && opened.position > 0);
    for entry in &all.entries {
        assert!(!entry.detail.contains(&added), "a token in the audit");
    }

    // Each filter narrows.
    let only = |r: pb::AuditRequest| async {
        audit(r)
            .await
            .unwrap()
            .entries
            .into_iter()
            .map(|e| (e.principal, e.event_type))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        only(pb::AuditRequest {
            principal: "police".into(),
            event_type: "CaseOpened".into(),
            ..Default::default()
        })
        .await,
        [("police".to_string(), "CaseOpened".to_string())]
    );
    assert_eq!(
        only(pb::AuditRequest {
            stream: format!("case-{case}"),
            ..Default::default()
        })
        .await,
        [("police".to_string(), "CaseOpened".to_string())]
    );
    assert_eq!(
        only(pb::AuditRequest {
            event_type: "TablesPublished".into(),
            ..Default::default()
        })
        .await,
        [("admin".to_string(), "TablesPublished".to_string())]
    );
    assert!(only(pb::AuditRequest {
        since: "2999-01-01".into(),
        ..Default::default()
    })
    .await
    .is_empty());
    assert_eq!(
        only(pb::AuditRequest {
            until: "2000-01-01".into(),
            ..Default::default()
        })
        .await
        .len(),
        0
    );
    let limited = audit(pb::AuditRequest {
        limit: 2,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(limited.entries.len(), 2);
    assert_eq!(limited.omitted as usize, all.entries.len() - 2);
    let bad = audit(pb::AuditRequest {
        event_type: "Nope".into(),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(
        bad.message().contains("field event_type"),
        "{}",
        bad.message()
    );

    // Auditor and admin only.
    assert!(admin
        .insight
        .audit(pb::AuditRequest::default())
        .await
        .is_ok());
    for role in ["police", "prosecution", "care", "analyst"] {
        let mut c = clients(&server, Some(&tokens[role])).await;
        let refused = c
            .insight
            .audit(pb::AuditRequest::default())
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{role}");
    }

    // The CLI through the server, as CSV and JSON.
    let url = server.url();
    let cli = |extra: &[&str]| {
        let mut args = vec!["audit", "--server", &url, "--token", &tokens["auditor"]];
        args.extend_from_slice(extra);
        let out = gryning_with(&args, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let csv = cli(&["--format", "csv", "--type", "TablesPublished"]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "at,principal,agency,scope,event_type,stream,event_id,position,occurred_on,detail"
    );
    let row = lines.next().unwrap();
    assert!(
        row.contains(",admin,admin,,TablesPublished,publication-2020-Q1,"),
        "{row}"
    );
    assert!(lines.next().is_none());
    let json: serde_json::Value = serde_json::from_str(&cli(&["--format", "json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), all.entries.len());
    let denied = gryning_with(
        &["audit", "--server", &url, "--token", &tokens["analyst"]],
        &[],
    );
    assert_eq!(denied.status.code(), Some(2));
    assert!(
        stderr(&denied).contains("PermissionDenied"),
        "{}",
        stderr(&denied)
    );
    server.stop();

    // Offline, from the data directory and the change journal beside the credentials file.
    let out = gryning_with(
        &[
            "audit",
            "--data-dir",
            dir.path().join("data").to_str().unwrap(),
            "--principal",
            "polis-syd",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("CredentialsChanged"), "{text}");
    assert!(text.contains("police region Polisregion Syd"), "{text}");
    assert!(text.contains("1 entries up to position"), "{text}");
}
