//! End-to-end tests of `gryning up`: the built binary on a free port with a temporary data
//! directory, driven through the generated clients. A case goes police → prosecution → care and
//! the insight tables and `Watch` streams see each step; every role × RPC is allowed or
//! PERMISSION_DENIED, no token is UNAUTHENTICATED; concurrent writers to one case lose nothing;
//! a restart resumes the projections from their checkpoint and agrees with a rebuild;
//! `gryning import --server` names rejected lines; the server ignores SIGPIPE.

#[path = "support/harness.rs"]
mod harness;

use std::collections::HashMap;

use gryning_proto::pb;
use gryning_proto::pb::care_client::CareClient;
use gryning_proto::pb::event_log_client::EventLogClient;
use gryning_proto::pb::insight_client::InsightClient;
use gryning_proto::pb::police_client::PoliceClient;
use gryning_proto::pb::prosecution_client::ProsecutionClient;
use harness::{next_matching, Bearer, Server};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::Code;

const BIN: &str = env!("CARGO_BIN_EXE_gryning");
const ROLES: [&str; 6] = [
    "police",
    "prosecution",
    "care",
    "analyst",
    "auditor",
    "admin",
];

type Intercepted = InterceptedService<Channel, Bearer>;

fn up(dir: &std::path::Path) -> Server {
    Server::start(
        BIN,
        &[
            "up",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.join("data").to_str().unwrap(),
        ],
        &[],
        &dir.join(format!("up-{}.log", uuid::Uuid::new_v4())),
    )
}

/// Typed clients for one role (or none: no token).
struct Clients {
    police: PoliceClient<Intercepted>,
    prosecution: ProsecutionClient<Intercepted>,
    care: CareClient<Intercepted>,
    log: EventLogClient<Intercepted>,
    insight: InsightClient<Intercepted>,
}

async fn clients(server: &Server, token: Option<&str>) -> Clients {
    let channel = server.channel().await;
    let b = Bearer(token.map(str::to_string));
    Clients {
        police: PoliceClient::with_interceptor(channel.clone(), b.clone()),
        prosecution: ProsecutionClient::with_interceptor(channel.clone(), b.clone()),
        care: CareClient::with_interceptor(channel.clone(), b.clone()),
        log: EventLogClient::with_interceptor(channel.clone(), b.clone()),
        insight: InsightClient::with_interceptor(channel, b),
    }
}

async fn as_role(server: &Server, tokens: &HashMap<String, String>, role: &str) -> Clients {
    clients(server, Some(&tokens[role])).await
}

fn id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn reason(status: &tonic::Status) -> String {
    status
        .metadata()
        .get("gryning-reason")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

fn text(cell: &pb::Cell) -> Option<&str> {
    match &cell.value {
        Some(pb::cell::Value::Text(t)) => Some(t),
        _ => None,
    }
}

/// The value of `column` in the row whose leading text cells are `key`.
fn value(
    columns: &[String],
    rows: &[pb::Row],
    key: &[&str],
    column: &str,
) -> Option<pb::cell::Value> {
    let j = columns.iter().position(|c| c == column).expect("column");
    rows.iter()
        .find(|r| {
            key.iter()
                .enumerate()
                .all(|(i, k)| r.cells.get(i).and_then(text) == Some(*k))
        })
        .and_then(|r| r.cells[j].value.clone())
}

fn int(n: i64) -> Option<pb::cell::Value> {
    Some(pb::cell::Value::Int(n))
}

/// The event log from its first event, through `Read` (`limit` 0: the server's default page).
async fn read_log(c: &mut Clients, limit: u32) -> Vec<pb::RecordedEvent> {
    let mut read = c
        .log
        .read(pb::ReadRequest { after: 0, limit })
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    while let Some(e) = read.message().await.unwrap() {
        events.push(e);
    }
    events
}

async fn watch(c: &mut Clients, name: &str) -> tonic::Streaming<pb::TableChange> {
    let mut stream = c
        .insight
        .watch(pb::WatchRequest {
            name: name.into(),
            by: String::new(),
            period: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = next_matching(&mut stream, "initial table", |_| true).await;
    assert!(first.initial);
    stream
}

/// Awaits a change that brings `table`'s row `key` column `column` to `expected`.
async fn await_change(
    stream: &mut tonic::Streaming<pb::TableChange>,
    key: &[&str],
    column: &str,
    expected: i64,
) -> pb::TableChange {
    next_matching(stream, &format!("{key:?} {column} = {expected}"), |c| {
        value(&c.columns, &c.changed, key, column) == int(expected)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_goes_police_prosecution_care_and_tables_and_watch_see_each_step() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    let tokens = server.tokens.clone();
    assert_eq!(
        tokens.len(),
        ROLES.len(),
        "one token per role is printed on first start"
    );
    let mut police = as_role(&server, &tokens, "police").await;
    let mut prosecution = as_role(&server, &tokens, "prosecution").await;
    let mut care = as_role(&server, &tokens, "care").await;
    let mut analyst = as_role(&server, &tokens, "analyst").await;
    let mut auditor = as_role(&server, &tokens, "auditor").await;

    let mut flow = watch(&mut analyst, "case-flow").await;
    let mut clearance = watch(&mut analyst, "clearance").await;
    let mut care_table = watch(&mut analyst, "care").await;
    let mut log = auditor
        .log
        .subscribe(pb::SubscribeRequest { after: 0 })
        .await
        .unwrap()
        .into_inner();

    let case = id();
    let crime = id();
    // Before the case exists: NOT_FOUND, naming the rule.
    let e = prosecution
        .prosecution
        .decide_prosecution(pb::DecideProsecutionRequest {
            event_id: id(),
            occurred_on: "2020-05-01".into(),
            case_id: case.clone(),
            prosecution_decided: Some(pb::ProsecutionDecided {
                crime_id: crime.clone(),
                decision: 1,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert_eq!(reason(&e), "case-must-be-opened");

    let open = pb::OpenCaseRequest {
        event_id: id(),
        occurred_on: "2020-03-02".into(),
        case_id: case.clone(),
        case_opened: Some(pb::CaseOpened {
            lead_crime_code: "4024".into(),
            police_region: "Stockholm".into(),
            local_police_area: "Farsta".into(),
        }),
    };
    let opened = police
        .police
        .open_case(open.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(!opened.duplicate && opened.version == 1);
    let again = police.police.open_case(open).await.unwrap().into_inner();
    assert!(again.duplicate, "a resent command is recorded once");
    assert_eq!(again.position, opened.position);
    await_change(&mut flow, &["2020", "4024"], "cases", 1).await;

    // An invalid field is INVALID_ARGUMENT naming it.
    let e = police
        .police
        .report_crime(pb::ReportCrimeRequest {
            event_id: id(),
            occurred_on: "2020-03-02".into(),
            case_id: case.clone(),
            crime_reported: Some(pb::CrimeReported {
                crime_id: crime.clone(),
                crime_code: "40".into(),
                victim_gender: 1,
                victim_age_group: 2,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("crime_reported.crime_code"),
        "{}",
        e.message()
    );

    police
        .police
        .report_crime(pb::ReportCrimeRequest {
            event_id: id(),
            occurred_on: "2020-03-02".into(),
            case_id: case.clone(),
            crime_reported: Some(pb::CrimeReported {
                crime_id: crime.clone(),
                crime_code: "4024".into(),
                victim_gender: pb::Gender::Female as i32,
                victim_age_group: pb::AgeGroup::Adult as i32,
            }),
        })
        .await
        .unwrap();
    await_change(&mut flow, &["2020", "4024"], "reported", 1).await;

    // A decision before the referral breaks a lifecycle rule: FAILED_PRECONDITION.
    let decide = pb::DecideProsecutionRequest {
        event_id: id(),
        occurred_on: "2020-05-01".into(),
        case_id: case.clone(),
        prosecution_decided: Some(pb::ProsecutionDecided {
            crime_id: crime.clone(),
            decision: pb::ProsecutionDecision::Indictment as i32,
        }),
    };
    let e = prosecution
        .prosecution
        .decide_prosecution(decide.clone())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(reason(&e), "case-must-be-referred");

    police
        .police
        .refer_to_prosecutor(pb::ReferToProsecutorRequest {
            event_id: id(),
            occurred_on: "2020-04-01".into(),
            case_id: case.clone(),
        })
        .await
        .unwrap();
    await_change(&mut flow, &["2020", "4024"], "referred", 1).await;

    let decided = prosecution
        .prosecution
        .decide_prosecution(decide)
        .await
        .unwrap()
        .into_inner();
    let change = await_change(&mut clearance, &["2020", "4024", "ALL"], "cleared", 1).await;
    assert!(change.position >= decided.position);

    care.care
        .propose_contract_care(pb::ProposeContractCareRequest {
            event_id: id(),
            occurred_on: "2020-06-01".into(),
            case_id: case.clone(),
        })
        .await
        .unwrap();
    await_change(&mut care_table, &["2020"], "contract_care_proposed", 1).await;
    let client = id();
    let started = care
        .care
        .start_treatment_programme(pb::StartTreatmentProgrammeRequest {
            event_id: id(),
            occurred_on: "2020-06-02".into(),
            client_id: client.clone(),
            treatment_programme_started: Some(pb::TreatmentProgrammeStarted {
                programme: "IDAP".into(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    await_change(&mut care_table, &["2020"], "programmes_started", 1).await;

    // The tables as GetTable sees them, at the position of the last event.
    let status = analyst
        .insight
        .status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.head, started.position);
    let t = analyst
        .insight
        .get_table(pb::GetTableRequest {
            name: "case-flow".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.position, started.position);
    for (column, n) in [("reported", 1), ("cases", 1), ("referred", 1)] {
        assert_eq!(
            value(&t.columns, &t.rows, &["2020", "4024"], column),
            int(n),
            "{column}"
        );
    }
    let json: serde_json::Value = serde_json::from_str(&t.json).unwrap();
    assert_eq!(json[0]["code"], "4024");
    let c = analyst
        .insight
        .get_table(pb::GetTableRequest {
            name: "clearance".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        value(&c.columns, &c.rows, &["2020", "4024", "FEMALE"], "handled"),
        int(1)
    );
    assert_eq!(
        value(&c.columns, &c.rows, &["2020", "4024", "ALL"], "percent"),
        Some(pb::cell::Value::Float(100.0))
    );
    // As of the referral the decision had not happened.
    let before = analyst
        .insight
        .get_table(pb::GetTableRequest {
            name: "clearance".into(),
            as_of: Some(decided.position - 1),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(before.rows.is_empty(), "{:?}", before.rows);

    // The auditor's subscription saw every event, with the principal in its metadata.
    let last = next_matching(&mut log, "the last event", |e| {
        e.position == started.position
    })
    .await;
    assert_eq!(last.metadata.unwrap().principal, "care");
    let principals: Vec<String> = read_log(&mut auditor, 0)
        .await
        .into_iter()
        .map(|e| e.metadata.unwrap().principal)
        .collect();
    assert_eq!(
        principals,
        ["police", "police", "police", "prosecution", "care", "care"]
    );
    server.stop();
}

/// Calls `rpc` as `c` with a request that passes access control but no validation where
/// possible, returning the status code (Ok for success).
async fn call(c: &mut Clients, rpc: &str) -> Code {
    fn code<T>(r: Result<T, tonic::Status>) -> Code {
        match r {
            Ok(_) => Code::Ok,
            Err(s) => s.code(),
        }
    }
    let case = || id();
    match rpc {
        "OpenCase" => code(
            c.police
                .open_case(pb::OpenCaseRequest {
                    case_id: case(),
                    ..Default::default()
                })
                .await,
        ),
        "ReportCrime" => code(
            c.police
                .report_crime(pb::ReportCrimeRequest::default())
                .await,
        ),
        "ReclassifyCrime" => code(
            c.police
                .reclassify_crime(pb::ReclassifyCrimeRequest::default())
                .await,
        ),
        "ReclassifyCase" => code(
            c.police
                .reclassify_case(pb::ReclassifyCaseRequest::default())
                .await,
        ),
        "ReferToProsecutor" => code(
            c.police
                .refer_to_prosecutor(pb::ReferToProsecutorRequest::default())
                .await,
        ),
        "CloseInvestigation" => code(
            c.police
                .close_investigation(pb::CloseInvestigationRequest::default())
                .await,
        ),
        "NotifyChildWelfare" => code(
            c.police
                .notify_child_welfare(pb::NotifyChildWelfareRequest::default())
                .await,
        ),
        "DecideProsecution" => code(
            c.prosecution
                .decide_prosecution(pb::DecideProsecutionRequest::default())
                .await,
        ),
        "ProposeContractCare" => code(
            c.care
                .propose_contract_care(pb::ProposeContractCareRequest::default())
                .await,
        ),
        "StartTreatmentProgramme" => code(
            c.care
                .start_treatment_programme(pb::StartTreatmentProgrammeRequest::default())
                .await,
        ),
        "EndTreatmentProgramme" => code(
            c.care
                .end_treatment_programme(pb::EndTreatmentProgrammeRequest::default())
                .await,
        ),
        "GrantSupport" => code(
            c.care
                .grant_support(pb::GrantSupportRequest::default())
                .await,
        ),
        "Append" => code(c.log.append(tokio_stream_iter(Vec::new())).await),
        "Read" => code(c.log.read(pb::ReadRequest::default()).await),
        "Subscribe" => code(c.log.subscribe(pb::SubscribeRequest::default()).await),
        "GetTable" => code(
            c.insight
                .get_table(pb::GetTableRequest {
                    name: "care".into(),
                    ..Default::default()
                })
                .await,
        ),
        "Watch" => code(
            c.insight
                .watch(pb::WatchRequest {
                    name: "care".into(),
                    ..Default::default()
                })
                .await,
        ),
        "Status" => code(c.insight.status(pb::StatusRequest {}).await),
        other => panic!("unknown rpc {other}"),
    }
}

fn tokio_stream_iter(
    events: Vec<pb::Event>,
) -> impl tonic::IntoStreamingRequest<Message = pb::Event> {
    tokio_stream::iter(events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_and_rpc_is_allowed_or_permission_denied_and_no_token_is_unauthenticated() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    // (rpc, roles allowed besides admin)
    let table: &[(&str, &[&str])] = &[
        ("OpenCase", &["police"]),
        ("ReportCrime", &["police"]),
        ("ReclassifyCrime", &["police"]),
        ("ReclassifyCase", &["police"]),
        ("ReferToProsecutor", &["police"]),
        ("CloseInvestigation", &["police"]),
        ("NotifyChildWelfare", &["police"]),
        ("DecideProsecution", &["prosecution"]),
        ("ProposeContractCare", &["care"]),
        ("StartTreatmentProgramme", &["care"]),
        ("EndTreatmentProgramme", &["care"]),
        ("GrantSupport", &["care"]),
        ("Append", &["police", "prosecution", "care"]),
        ("Read", &["auditor"]),
        ("Subscribe", &["auditor"]),
        ("GetTable", &["analyst"]),
        ("Watch", &["analyst"]),
        ("Status", &["analyst"]),
    ];
    let mut anonymous = clients(&server, None).await;
    let mut wrong = clients(&server, Some("gry_not-a-token")).await;
    for role in ROLES {
        let mut c = as_role(&server, &server.tokens, role).await;
        for (rpc, allowed) in table {
            let got = call(&mut c, rpc).await;
            if role == "admin" || allowed.contains(&role) {
                assert_ne!(got, Code::PermissionDenied, "{role} may call {rpc}");
                assert_ne!(got, Code::Unauthenticated, "{role} calling {rpc}");
            } else {
                assert_eq!(got, Code::PermissionDenied, "{role} calling {rpc}");
            }
        }
    }
    for (rpc, _) in table {
        assert_eq!(
            call(&mut anonymous, rpc).await,
            Code::Unauthenticated,
            "no token: {rpc}"
        );
        assert_eq!(
            call(&mut wrong, rpc).await,
            Code::Unauthenticated,
            "unknown token: {rpc}"
        );
    }

    // Through the bulk append, each event is checked against the caller's agency.
    let case = id();
    let events = vec![
        pb::Event {
            event_id: id(),
            occurred_on: "2020-01-02".into(),
            subject: Some(pb::event::Subject::CaseId(case.clone())),
            body: Some(pb::event::Body::CaseOpened(pb::CaseOpened {
                lead_crime_code: "9365".into(),
                ..Default::default()
            })),
        },
        pb::Event {
            event_id: id(),
            occurred_on: "2020-01-03".into(),
            subject: Some(pb::event::Subject::CaseId(case.clone())),
            body: Some(pb::event::Body::ContractCareProposed(
                pb::ContractCareProposed {},
            )),
        },
    ];
    let mut police = as_role(&server, &server.tokens, "police").await;
    let summary = police
        .log
        .append(tokio_stream_iter(events.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (summary.accepted, summary.duplicates, summary.rejected),
        (1, 0, 1)
    );
    assert_eq!(summary.rejections[0].index, 1);
    assert_eq!(summary.rejections[0].reason, "permission-denied");
    let mut admin = as_role(&server, &server.tokens, "admin").await;
    let summary = admin
        .log
        .append(tokio_stream_iter(events))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (summary.accepted, summary.duplicates, summary.rejected),
        (1, 1, 0)
    );

    // Health needs no token.
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "gryning.v1.Police".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reply.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_to_one_case_lose_no_event_and_share_one_version_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    let case = id();
    let mut first = as_role(&server, &server.tokens, "police").await;
    first
        .police
        .open_case(pb::OpenCaseRequest {
            event_id: id(),
            occurred_on: "2020-02-01".into(),
            case_id: case.clone(),
            case_opened: Some(pb::CaseOpened {
                lead_crime_code: "9381".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    const EACH: usize = 40;
    let mut writers = Vec::new();
    let mut sent = Vec::new();
    for _ in 0..2 {
        // Separate connections, so the two writers really race.
        let mut c = as_role(&server, &server.tokens, "police").await;
        let ids: Vec<String> = (0..EACH).map(|_| id()).collect();
        sent.extend(ids.clone());
        let case = case.clone();
        writers.push(tokio::spawn(async move {
            for event_id in ids {
                c.police
                    .report_crime(pb::ReportCrimeRequest {
                        event_id,
                        occurred_on: "2020-02-02".into(),
                        case_id: case.clone(),
                        crime_reported: Some(pb::CrimeReported {
                            crime_id: uuid::Uuid::new_v4().to_string(),
                            crime_code: "9381".into(),
                            victim_gender: 1,
                            victim_age_group: 2,
                        }),
                    })
                    .await
                    .expect("every concurrent write is accepted");
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let mut auditor = as_role(&server, &server.tokens, "auditor").await;
    let mut versions = Vec::new();
    let mut stored = Vec::new();
    let mut last_position = 0;
    for e in read_log(&mut auditor, 10_000).await {
        assert_eq!(e.stream, format!("case-{case}"));
        assert!(e.position > last_position);
        last_position = e.position;
        versions.push(e.version);
        stored.push(e.event.unwrap().event_id);
    }
    assert_eq!(
        versions,
        (1..=(2 * EACH as u64 + 1)).collect::<Vec<_>>(),
        "one gap-free version order"
    );
    let mut stored_reports: Vec<String> = stored[1..].to_vec();
    stored_reports.sort();
    sent.sort();
    assert_eq!(stored_reports, sent, "no lost and no doubled event");
    server.stop();
}

fn gryning(args: &[&str]) -> String {
    let out = std::process::Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "gryning {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Events for `cases` cases: opened, a crime reported, referred, decided.
fn batch(cases: usize, year: u32) -> Vec<pb::Event> {
    let mut events = Vec::new();
    for i in 0..cases {
        let case = id();
        let crime = id();
        let code = ["9365", "4024", "0418"][i % 3];
        let ev = |day: &str, body| pb::Event {
            event_id: id(),
            occurred_on: format!("{year}-{day}"),
            subject: Some(pb::event::Subject::CaseId(case.clone())),
            body: Some(body),
        };
        use pb::event::Body as B;
        events.push(ev(
            "01-10",
            B::CaseOpened(pb::CaseOpened {
                lead_crime_code: code.into(),
                ..Default::default()
            }),
        ));
        events.push(ev(
            "01-11",
            B::CrimeReported(pb::CrimeReported {
                crime_id: crime.clone(),
                crime_code: code.into(),
                victim_gender: 1 + (i % 3) as i32,
                victim_age_group: 2,
            }),
        ));
        events.push(ev(
            "02-01",
            B::CaseReferredToProsecutor(pb::CaseReferredToProsecutor {}),
        ));
        events.push(ev(
            "05-01",
            B::ProsecutionDecided(pb::ProsecutionDecided {
                crime_id: crime,
                decision: 1 + (i % 4) as i32,
            }),
        ));
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_projections_from_the_checkpoint_and_agrees_with_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = up(dir.path());
    let tokens = server.tokens.clone();
    let mut admin = as_role(&server, &tokens, "admin").await;
    let summary = admin
        .log
        .append(tokio_stream_iter(batch(200, 2019)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (summary.accepted, summary.rejected),
        (800, 0),
        "{:?}",
        summary.rejections
    );
    // Wait until the live projections have applied everything, then stop gracefully.
    let mut analyst = as_role(&server, &tokens, "analyst").await;
    let deadline = std::time::Instant::now() + harness::DEADLINE;
    loop {
        let s = analyst
            .insight
            .status(pb::StatusRequest {})
            .await
            .unwrap()
            .into_inner();
        if s.head == 800 && s.projections.iter().all(|p| p.lag == 0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "projections did not catch up: {s:?}"
        );
        tokio::task::yield_now().await;
    }
    server.stop();
    assert!(
        data.join("projections.ckpt").exists(),
        "shutdown writes a checkpoint"
    );

    let server = up(dir.path());
    assert!(
        server.tokens.is_empty(),
        "tokens are shown on the first start only"
    );
    let mut analyst = as_role(&server, &tokens, "analyst").await;
    let s = analyst
        .insight
        .status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        s.projections
            .iter()
            .all(|p| p.resumed_from == 800 && p.position == 800),
        "{s:?}"
    );
    let mut admin = as_role(&server, &tokens, "admin").await;
    let summary = admin
        .log
        .append(tokio_stream_iter(batch(100, 2020)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.accepted, 400);
    let mut served = HashMap::new();
    for name in ["case-flow", "clearance", "care", "progress"] {
        let deadline = std::time::Instant::now() + harness::DEADLINE;
        let t = loop {
            let t = analyst
                .insight
                .get_table(pb::GetTableRequest {
                    name: name.into(),
                    period: "quarter".into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            if t.position == 1200 {
                break t;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} stuck at {}",
                t.position
            );
            tokio::task::yield_now().await;
        };
        served.insert(name, t.json);
    }
    // The remote table command renders what the server serves.
    let remote = gryning(&[
        "table",
        "clearance",
        "--period",
        "quarter",
        "--format",
        "json",
        "--server",
        &server.url(),
        "--token",
        &tokens["analyst"],
    ]);
    assert_eq!(remote, served["clearance"]);
    server.stop();

    // A rebuild from the first event agrees with what the resumed projections served.
    let d = data.to_str().unwrap();
    gryning(&["rebuild", "--data-dir", d]);
    for (name, json) in &served {
        let offline = gryning(&[
            "table",
            name,
            "--period",
            "quarter",
            "--format",
            "json",
            "--data-dir",
            d,
        ]);
        assert_eq!(&offline, json, "{name}");
    }
    assert!(served["clearance"].contains("2019-Q2") && served["clearance"].contains("2020-Q2"));
}

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

/// A peer that resets its connection while the server writes to it makes the write fail with
/// EPIPE, and vectored writes (HTTP/2's) also raise SIGPIPE: a server that did not ignore it
/// would be killed by any client hanging up at the wrong moment. Read the signal mask the
/// kernel shows for the running process.
#[test]
fn the_server_ignores_sigpipe() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let ignored = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|mask| u64::from_str_radix(mask.trim(), 16).unwrap())
        .expect("SigIgn line");
    const SIGPIPE: u32 = 13; // on Linux
    assert_ne!(ignored & (1 << (SIGPIPE - 1)), 0, "SigIgn: {ignored:#x}");
    server.stop();
}
