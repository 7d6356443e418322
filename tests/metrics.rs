//! Prometheus metrics of `gryning up --metrics-listen`: after a few recorded events, a rule
//! rejection, a denied call and one without a token, `GET /metrics` counts appends by event
//! type and agency, rejections by reason, access refusals by reason and RPC, request durations
//! by method, and the projection lag settles at 0.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/up.rs"]
mod up;

use gryning_proto::pb;
use gryning_proto::pb::police_client::PoliceClient;
use harness::{sample, scrape, Bearer, DEADLINE};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_appends_rejections_durations_and_lag() {
    let dir = tempfile::tempdir().unwrap();
    let server = up::up_with(dir.path(), &[]);
    let metrics = server
        .metrics_port
        .expect("a metrics line before the listening line");
    let police = |role: &str| {
        PoliceClient::with_interceptor(
            tonic::transport::Channel::from_shared(server.url())
                .unwrap()
                .connect_lazy(),
            Bearer(Some(server.tokens[role].clone())),
        )
    };
    let open = |case: &str| pb::OpenCaseRequest {
        event_id: uuid::Uuid::new_v4().to_string(),
        occurred_on: "2020-03-02".into(),
        case_id: case.into(),
        case_opened: Some(pb::CaseOpened {
            lead_crime_code: "9365".into(),
            ..Default::default()
        }),
    };
    let cases = [
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    ];
    for case in &cases {
        police("police").open_case(open(case)).await.unwrap();
    }
    police("police")
        .report_crime(pb::ReportCrimeRequest {
            event_id: uuid::Uuid::new_v4().to_string(),
            occurred_on: "2020-03-02".into(),
            case_id: cases[0].clone(),
            crime_reported: Some(pb::CrimeReported {
                crime_id: uuid::Uuid::new_v4().to_string(),
                crime_code: "9365".into(),
                victim_gender: 1,
                victim_age_group: 2,
            }),
        })
        .await
        .unwrap();
    // The admin may record police events too: its appends count under its own agency label.
    police("admin")
        .open_case(open(&uuid::Uuid::new_v4().to_string()))
        .await
        .unwrap();
    let e = police("police")
        .open_case(open(&cases[0]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = police("analyst")
        .open_case(open(&cases[1]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // No token: refused before any handler, counted with the RPC the path names.
    let e = PoliceClient::new(
        tonic::transport::Channel::from_shared(server.url())
            .unwrap()
            .connect_lazy(),
    )
    .open_case(open(&cases[1]))
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");

    let (status, text) = scrape(metrics, "/metrics").await;
    assert!(status.ends_with("200 OK"), "{status}");
    let check = |series: &str, expected: f64| {
        assert_eq!(
            sample(&text, series),
            Some(expected),
            "{series} in:\n{text}"
        );
    };
    check(
        r#"gryning_appends_total{event_type="CaseOpened",agency="police"}"#,
        2.0,
    );
    check(
        r#"gryning_appends_total{event_type="CaseOpened",agency="admin"}"#,
        1.0,
    );
    check(
        r#"gryning_appends_total{event_type="CrimeReported",agency="police"}"#,
        1.0,
    );
    check(
        r#"gryning_rejections_total{reason="case-opened-once"}"#,
        1.0,
    );
    check(
        r#"gryning_rejections_total{reason="permission-denied"}"#,
        1.0,
    );
    // Access refusals by reason and RPC (the principal is in the log line, not a label).
    check(
        r#"gryning_access_refused_total{reason="rpc-denied",rpc="Police.OpenCase"}"#,
        1.0,
    );
    check(
        r#"gryning_access_refused_total{reason="missing-token",rpc="Police.OpenCase"}"#,
        1.0,
    );
    check(r#"gryning_rejections_total{reason="unauthenticated"}"#, 1.0);
    check(
        r#"gryning_request_duration_seconds_count{method="/gryning.v1.Police/OpenCase"}"#,
        6.0,
    );
    check(r#"gryning_store_head"#, 4.0);

    // The projections follow the store asynchronously: await a lag of 0 with a deadline.
    let started = std::time::Instant::now();
    loop {
        let (_, text) = scrape(metrics, "/metrics").await;
        match sample(&text, "gryning_projection_lag_events") {
            Some(0.0) => break,
            lag => assert!(
                started.elapsed() < DEADLINE,
                "projection lag {lag:?} did not reach 0:\n{text}"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (status, _) = scrape(metrics, "/other").await;
    assert!(status.ends_with("404 Not Found"), "{status}");
    server.stop();
}
