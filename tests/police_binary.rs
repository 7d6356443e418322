//! The police service as its own binary (`gryning-police`): started on a free port with a
//! temporary data directory (embedded store, owned by this one process), it issues tokens,
//! serves health without a token, records a case for the police role, refuses other roles and
//! anonymous callers, and stops cleanly on SIGTERM.

#[path = "support/harness.rs"]
mod harness;

use gryning_proto::pb;
use gryning_proto::pb::police_client::PoliceClient;
use harness::{Bearer, Server};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_police_binary_serves_its_service_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(
        env!("CARGO_BIN_EXE_gryning-police"),
        &[],
        &[
            ("GRYNING_LISTEN", "127.0.0.1:0"),
            ("GRYNING_DATA_DIR", data.to_str().unwrap()),
        ],
        &dir.path().join("police.log"),
    );
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "gryning.v1.Police".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let open = |case: &str| pb::OpenCaseRequest {
        event_id: uuid::Uuid::new_v4().to_string(),
        occurred_on: "2020-03-02".into(),
        case_id: case.into(),
        case_opened: Some(pb::CaseOpened {
            lead_crime_code: "9365".into(),
            ..Default::default()
        }),
    };
    let client = |token: Option<&str>| {
        let channel = tonic::transport::Channel::from_shared(server.url())
            .unwrap()
            .connect_lazy();
        PoliceClient::with_interceptor(channel, Bearer(token.map(str::to_string)))
    };
    let case = uuid::Uuid::new_v4().to_string();
    let recorded = client(Some(&server.tokens["police"]))
        .open_case(open(&case))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (recorded.position, recorded.version, recorded.duplicate),
        (1, 1, false)
    );
    let e = client(Some(&server.tokens["police"]))
        .open_case(pb::OpenCaseRequest {
            event_id: uuid::Uuid::new_v4().to_string(),
            ..open(&case)
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("case-opened-once"), "{}", e.message());
    let e = client(Some(&server.tokens["analyst"]))
        .open_case(open(&case))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = client(None).open_case(open(&case)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    server.stop();
    assert!(data.join("events.sqlite3").exists());
}
