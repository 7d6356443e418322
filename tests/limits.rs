//! The documented limits of every gRPC service (docs/contract.md, "Limits"), end to end against
//! `gryning up`: past each one the caller gets its status and a message naming the limit, what
//! the contract says is stored is stored and nothing else, and the server goes on serving the
//! next allowed call. And the per-principal rate limit: a principal over it gets
//! RESOURCE_EXHAUSTED with a retry hint while another principal is served, the refusal is
//! counted in the metrics, and after the hint the call succeeds.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/up.rs"]
mod up;

use std::time::Duration;

use gryning_proto::pb;
use harness::{sample, scrape, DEADLINE};
use tonic::Code;
use up::{as_role, id, reason, up_with, Clients};

fn open(case: &str) -> pb::Event {
    pb::Event {
        event_id: id(),
        occurred_on: "2020-03-02".into(),
        subject: Some(pb::event::Subject::CaseId(case.into())),
        body: Some(pb::event::Body::CaseOpened(pb::CaseOpened {
            lead_crime_code: "9365".into(),
            police_region: String::new(),
            local_police_area: String::new(),
        })),
    }
}

fn open_request(case: &str, police_region: String) -> pb::OpenCaseRequest {
    pb::OpenCaseRequest {
        event_id: id(),
        occurred_on: "2020-03-02".into(),
        case_id: case.into(),
        case_opened: Some(pb::CaseOpened {
            lead_crime_code: "9365".into(),
            police_region,
            local_police_area: String::new(),
        }),
    }
}

/// The event ids of the whole event log, in position order.
async fn logged(c: &mut Clients) -> Vec<String> {
    up::read_log(c, 10_000)
        .await
        .into_iter()
        .map(|r| r.event.unwrap().event_id)
        .collect()
}

fn assert_refused(status: &tonic::Status, code: Code, why: &str, names: &[&str]) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason(status), why, "{status:?}");
    for name in names {
        assert!(
            status.message().contains(name),
            "{name:?} not in {:?}",
            status.message()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_each_limit_the_caller_is_told_which_and_nothing_more_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = up_with(dir.path(), &[("GRYNING_MAX_APPEND_EVENTS", "5")]);
    let mut admin = as_role(&server, &server.tokens, "admin").await;
    let case = id();
    admin
        .police
        .open_case(open_request(&case, String::new()))
        .await
        .unwrap();
    let mut before = logged(&mut admin).await;
    assert_eq!(before.len(), 1);

    // A unary request over max_message_bytes (64 KiB): refused by size before any rule.
    let e = admin
        .police
        .open_case(open_request(&id(), "x".repeat(70_000)))
        .await
        .unwrap_err();
    assert_refused(
        &e,
        Code::ResourceExhausted,
        "message-too-large",
        &["Police.OpenCase", "max_message_bytes (65536 bytes)"],
    );
    // A query over max_query_bytes (4 KiB).
    let e = admin
        .insight
        .get_table(pb::GetTableRequest {
            name: "x".repeat(5_000),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_refused(
        &e,
        Code::ResourceExhausted,
        "message-too-large",
        &["Insight.GetTable", "max_query_bytes (4096 bytes)"],
    );
    // A closure naming more crimes than max_crime_ids (1,000), well within the message size.
    let e = admin
        .police
        .close_investigation(pb::CloseInvestigationRequest {
            event_id: id(),
            occurred_on: "2020-03-02".into(),
            case_id: case.clone(),
            investigation_closed: Some(pb::InvestigationClosed {
                crime_ids: (0..1_001).map(|_| id()).collect(),
                reason: pb::ClosureReason::NoSuspect as i32,
            }),
        })
        .await
        .unwrap_err();
    assert_refused(
        &e,
        Code::InvalidArgument,
        "too-many-items",
        &[
            "investigation_closed.crime_ids",
            "1001 items",
            "max_crime_ids (1000)",
        ],
    );
    assert_eq!(logged(&mut admin).await, before, "nothing stored");

    // A bulk Append with an over-large event: the events before it are recorded, no later one.
    let mut huge = open(&id());
    if let Some(pb::event::Body::CaseOpened(body)) = &mut huge.body {
        body.police_region = "x".repeat(70_000);
    }
    let (first, after) = (open(&id()), open(&id()));
    let e = admin
        .log
        .append(tokio_stream::iter(vec![first.clone(), huge, after]))
        .await
        .unwrap_err();
    assert_refused(
        &e,
        Code::ResourceExhausted,
        "message-too-large",
        &[
            "EventLog.Append",
            "event #1",
            "max_message_bytes (65536 bytes)",
            "the 1 events before it were recorded",
            "1 stored",
        ],
    );
    before.push(first.event_id);
    assert_eq!(logged(&mut admin).await, before);

    // Past max_append_events (5): the first five are recorded, the rest are not read.
    let seven: Vec<pb::Event> = (0..7).map(|_| open(&id())).collect();
    let e = admin
        .log
        .append(tokio_stream::iter(seven.clone()))
        .await
        .unwrap_err();
    assert_refused(
        &e,
        Code::ResourceExhausted,
        "too-many-events",
        &[
            "max_append_events (5)",
            "the 5 events before it",
            "5 stored",
        ],
    );
    before.extend(seven[..5].iter().map(|e| e.event_id.clone()));
    assert_eq!(logged(&mut admin).await, before);
    // Exactly the limit is one whole call.
    let five: Vec<pb::Event> = (0..5).map(|_| open(&id())).collect();
    let summary = admin
        .log
        .append(tokio_stream::iter(five.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((summary.accepted, summary.rejected), (5, 0));
    before.extend(five.iter().map(|e| e.event_id.clone()));

    // The server goes on serving: the next allowed call succeeds.
    let recorded = admin
        .police
        .report_crime(pb::ReportCrimeRequest {
            event_id: id(),
            occurred_on: "2020-03-02".into(),
            case_id: case,
            crime_reported: Some(pb::CrimeReported {
                crime_id: id(),
                crime_code: "9365".into(),
                victim_gender: pb::Gender::Female as i32,
                victim_age_group: pb::AgeGroup::Adult as i32,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!recorded.duplicate);

    // Each refusal is counted by its reason.
    let (_, text) = scrape(server.metrics_port.unwrap(), "/metrics").await;
    for (why, at_least) in [
        ("message-too-large", 3.0),
        ("too-many-items", 1.0),
        ("too-many-events", 1.0),
    ] {
        let n = sample(
            &text,
            &format!("gryning_rejections_total{{reason=\"{why}\"}}"),
        );
        assert!(n >= Some(at_least), "{why}: {n:?}");
    }
    server.stop();
}

use tokio_stream::StreamExt as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_past_max_concurrent_calls_or_the_deadline_are_refused_and_health_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = up_with(
        dir.path(),
        &[
            ("GRYNING_MAX_CONCURRENT_CALLS", "2"),
            ("GRYNING_REQUEST_DEADLINE_MS", "500"),
        ],
    );
    let mut auditor = as_role(&server, &server.tokens, "auditor").await;
    let mut analyst = as_role(&server, &server.tokens, "analyst").await;
    let mut admin = as_role(&server, &server.tokens, "admin").await;

    // A call still waiting for its client at the server's deadline (request_deadline_ms) is
    // ended with DEADLINE_EXCEEDED. (A client's shorter grpc-timeout is honoured the same way,
    // but tonic's client gives up at that moment itself, so it is not what it would read.)
    let waiting = tokio_stream::iter(vec![open(&id())]).chain(tokio_stream::pending());
    let e = tokio::time::timeout(DEADLINE, admin.log.append(waiting))
        .await
        .expect("answered")
        .unwrap_err();
    assert_refused(
        &e,
        Code::DeadlineExceeded,
        "deadline-exceeded",
        &["EventLog.Append", "500 ms", "request_deadline_ms"],
    );
    // Streams are not cut by the deadline: it is counted to a reply's head.
    // Two open subscriptions hold both permits for as long as they are open (past the
    // deadline, too).
    let first = auditor
        .log
        .subscribe(pb::SubscribeRequest { after: 0 })
        .await
        .unwrap()
        .into_inner();
    let _second = auditor
        .log
        .subscribe(pb::SubscribeRequest { after: 0 })
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let e = analyst
        .insight
        .status(pb::StatusRequest {})
        .await
        .unwrap_err();
    assert_refused(
        &e,
        Code::ResourceExhausted,
        "too-many-calls",
        &["Insight.Status", "max_concurrent_calls (2)"],
    );
    // Health is never limited.
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        serving.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    // A subscription that ends gives its permit back (once the server has seen it go).
    drop(first);
    let answered = tokio::time::timeout(DEADLINE, async {
        loop {
            match analyst.insight.status(pb::StatusRequest {}).await {
                Ok(reply) => return reply.into_inner(),
                Err(e) if reason(&e) == "too-many-calls" => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("{e:?}"),
            }
        }
    })
    .await
    .expect("a permit came back");
    // The event sent before the deadline may or may not be stored; nothing else is.
    assert!(answered.head <= 1, "{answered:?}");
    server.stop();
}

/// The `google.rpc.Status` of the `grpc-status-details-bin` trailer, as far as read here.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<prost_types::Duration>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_over_its_rate_limit_waits_the_hint_while_others_are_served() {
    use prost::Message as _;
    let dir = tempfile::tempdir().unwrap();
    let server = up_with(
        dir.path(),
        &[
            ("GRYNING_RATE_LIMIT_PER_SECOND", "1"),
            ("GRYNING_RATE_LIMIT_BURST", "2"),
        ],
    );
    let mut police = as_role(&server, &server.tokens, "police").await;
    let mut care = as_role(&server, &server.tokens, "care").await;
    // The burst of 2 is allowed; a refusal comes within a few more calls (one call a second
    // is earned back, so calls quicker than that run out).
    let mut allowed = 0;
    let refused = loop {
        match police
            .police
            .open_case(open_request(&id(), String::new()))
            .await
        {
            Ok(_) => allowed += 1,
            Err(e) => break e,
        }
        assert!(allowed < 10, "no refusal after {allowed} calls");
    };
    assert!(allowed >= 2, "the burst is allowed: {allowed}");
    assert_refused(
        &refused,
        Code::ResourceExhausted,
        "rate-limited",
        &[
            "Police.OpenCase",
            "principal police (role police)",
            "rate_limit_per_second 1",
            "rate_limit_burst 2",
        ],
    );
    let hint: u64 = refused
        .metadata()
        .get("retry-after-ms")
        .expect("a retry hint")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1_000).contains(&hint), "{hint}");
    let details = RpcStatus::decode(refused.details()).expect("google.rpc.Status details");
    assert_eq!(details.code, Code::ResourceExhausted as i32);
    let info = &details.details[0];
    assert_eq!(info.type_url, "type.googleapis.com/google.rpc.RetryInfo");
    let delay = RetryInfo::decode(info.value.as_slice())
        .unwrap()
        .retry_delay
        .unwrap();
    let delay_ms = (delay.seconds as u64) * 1000 + (delay.nanos as u64).div_ceil(1_000_000);
    assert_eq!(delay_ms.max(1), hint);

    // Another principal has its own allowance.
    care.care
        .grant_support(pb::GrantSupportRequest {
            event_id: id(),
            occurred_on: "2020-03-02".into(),
            client_id: id(),
            support_granted: Some(pb::SupportGranted {
                kind: pb::SupportKind::SupportTalks as i32,
                gender: pb::Gender::Female as i32,
                age_group: pb::AgeGroup::Adult as i32,
            }),
        })
        .await
        .expect("another principal is served");

    let (_, text) = scrape(server.metrics_port.unwrap(), "/metrics").await;
    let limited = sample(
        &text,
        "gryning_rate_limited_total{principal=\"police\",role=\"police\",method=\"/gryning.v1.Police/OpenCase\"}",
    );
    assert_eq!(limited, Some(1.0), "{text}");
    assert!(
        sample(&text, "gryning_rejections_total{reason=\"rate-limited\"}") >= Some(1.0),
        "{text}"
    );

    // After the hint, the principal is served again.
    tokio::time::sleep(Duration::from_millis(hint)).await;
    police
        .police
        .open_case(open_request(&id(), String::new()))
        .await
        .expect("served after the retry hint");
    server.stop();
}
