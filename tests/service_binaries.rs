//! Each service as its own binary (`gryning-prosecution`, `gryning-care`, `gryning-event-log`,
//! `gryning-insight`; `gryning-police` has tests/police_binary.rs): started on a free port with
//! a temporary data directory, it serves health without a token, lets its own role through to
//! the handler, denies another role, and stops cleanly on SIGTERM. This one file is registered
//! as a test of each service package and checks that package's binary: cargo only tells a
//! test where the binaries of its own package are.

#[path = "support/harness.rs"]
mod harness;

use gryning_proto::pb;
use harness::{Bearer, Server};
use tonic::transport::Channel;
use tonic::Code;

/// One service binary: its gRPC service name, the role allowed and the role denied, and what
/// the allowed call returns on an empty store.
struct Case {
    package: &'static str,
    binary: Option<&'static str>,
    service: &'static str,
    allowed: &'static str,
    denied: &'static str,
    /// `Ok` for a successful call, else the code an allowed caller meets (e.g. NOT_FOUND for a
    /// command about a case the empty store does not know: it got past access control).
    allowed_outcome: Result<(), Code>,
}

const CASES: [Case; 4] = [
    Case {
        package: "gryning-prosecution",
        binary: option_env!("CARGO_BIN_EXE_gryning-prosecution"),
        service: "gryning.v1.Prosecution",
        allowed: "prosecution",
        denied: "police",
        allowed_outcome: Err(Code::NotFound),
    },
    Case {
        package: "gryning-care",
        binary: option_env!("CARGO_BIN_EXE_gryning-care"),
        service: "gryning.v1.Care",
        allowed: "care",
        denied: "analyst",
        allowed_outcome: Err(Code::NotFound),
    },
    Case {
        package: "gryning-event-log",
        binary: option_env!("CARGO_BIN_EXE_gryning-event-log"),
        service: "gryning.v1.EventLog",
        allowed: "auditor",
        denied: "analyst",
        allowed_outcome: Ok(()),
    },
    Case {
        package: "gryning-insight",
        binary: option_env!("CARGO_BIN_EXE_gryning-insight"),
        service: "gryning.v1.Insight",
        allowed: "analyst",
        denied: "auditor",
        allowed_outcome: Ok(()),
    },
];

/// The service's representative call as `token`.
async fn call(service: &str, channel: Channel, token: &str) -> Result<(), tonic::Status> {
    let bearer = Bearer(Some(token.to_string()));
    let id = || uuid::Uuid::new_v4().to_string();
    match service {
        "gryning.v1.Prosecution" => {
            pb::prosecution_client::ProsecutionClient::with_interceptor(channel, bearer)
                .decide_prosecution(pb::DecideProsecutionRequest {
                    event_id: id(),
                    occurred_on: "2020-05-01".into(),
                    case_id: id(),
                    prosecution_decided: Some(pb::ProsecutionDecided {
                        crime_id: id(),
                        decision: 1,
                    }),
                })
                .await
                .map(drop)
        }
        "gryning.v1.Care" => pb::care_client::CareClient::with_interceptor(channel, bearer)
            .propose_contract_care(pb::ProposeContractCareRequest {
                event_id: id(),
                occurred_on: "2020-05-01".into(),
                case_id: id(),
            })
            .await
            .map(drop),
        "gryning.v1.EventLog" => {
            let mut stream =
                pb::event_log_client::EventLogClient::with_interceptor(channel, bearer)
                    .read(pb::ReadRequest {
                        after: 0,
                        limit: 10,
                    })
                    .await?
                    .into_inner();
            assert_eq!(stream.message().await?, None, "the store is empty");
            Ok(())
        }
        "gryning.v1.Insight" => {
            pb::insight_client::InsightClient::with_interceptor(channel, bearer)
                .get_table(pb::GetTableRequest {
                    name: "clearance".into(),
                    by: String::new(),
                    period: String::new(),
                    as_of: None,
                    ..Default::default()
                })
                .await
                .map(drop)
        }
        other => panic!("no call for {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_binary_serves_its_service_alone() {
    let case = CASES
        .iter()
        .find(|c| c.package == env!("CARGO_PKG_NAME"))
        .expect("this package has a case in CASES");
    let binary = case.binary.expect("cargo names this package's binary");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(
        binary,
        &[],
        &[
            ("GRYNING_LISTEN", "127.0.0.1:0"),
            ("GRYNING_DATA_DIR", data.to_str().unwrap()),
        ],
        &dir.path().join("server.log"),
    );
    let channel = server.channel().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: case.service.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    // The one service is mounted, no other: police RPCs are UNIMPLEMENTED here.
    let e = pb::police_client::PoliceClient::with_interceptor(
        channel.clone(),
        Bearer(Some(server.tokens["admin"].clone())),
    )
    .refer_to_prosecutor(pb::ReferToProsecutorRequest::default())
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented, "{e:?}");

    let allowed = call(case.service, channel.clone(), &server.tokens[case.allowed]).await;
    assert_eq!(
        allowed.as_ref().map_err(|s| s.code()),
        case.allowed_outcome.as_ref().map_err(|c| *c),
        "{} as {}: {allowed:?}",
        case.service,
        case.allowed
    );
    let denied = call(case.service, channel.clone(), &server.tokens[case.denied])
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let anonymous = call(case.service, channel, "not-a-token")
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated, "{anonymous:?}");
    server.stop();
    assert!(data.join("events.sqlite3").exists());
}
