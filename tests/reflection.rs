//! Server reflection as tools ask it: `grpc.reflection.v1` and the older
//! `grpc.reflection.v1alpha` (grpcio-reflection's client, older grpcurl, GUI clients) both list
//! every gryning service and hand out the file that declares one.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/up.rs"]
mod up;

use tokio_stream::StreamExt;
use tonic_reflection::pb::{v1, v1alpha};

const SERVICES: [&str; 6] = [
    "gryning.v1.Police",
    "gryning.v1.Prosecution",
    "gryning.v1.Care",
    "gryning.v1.EventLog",
    "gryning.v1.Insight",
    "grpc.health.v1.Health",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_reflection_versions_list_the_services_and_describe_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = up::up(dir.path());
    let channel = server.channel().await;

    // v1 (in a block: its stream must be closed before the server is stopped)
    {
        let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
        let ask = |request| v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(request),
        };
        let requests = tokio_stream::iter([
            ask(v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            )),
            ask(
                v1::server_reflection_request::MessageRequest::FileContainingSymbol(
                    "gryning.v1.Police".into(),
                ),
            ),
        ]);
        let mut answers = client
            .server_reflection_info(requests)
            .await
            .expect("v1 reflection is served")
            .into_inner();
        let listed = match answers.next().await.unwrap().unwrap().message_response {
            Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) => {
                list.service.into_iter().map(|s| s.name).collect::<Vec<_>>()
            }
            other => panic!("v1: expected the list of services, got {other:?}"),
        };
        for name in SERVICES
            .iter()
            .chain(&["grpc.reflection.v1.ServerReflection"])
        {
            assert!(
                listed.iter().any(|s| s == name),
                "v1 lists {name}: {listed:?}"
            );
        }
        match answers.next().await.unwrap().unwrap().message_response {
            Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(
                files,
            )) => {
                assert!(!files.file_descriptor_proto.is_empty())
            }
            other => panic!("v1: expected the file declaring gryning.v1.Police, got {other:?}"),
        }
    }

    // v1alpha, as older tools ask it
    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let ask = |request| v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let requests = tokio_stream::iter([
        ask(v1alpha::server_reflection_request::MessageRequest::ListServices(String::new())),
        ask(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "gryning.v1.Insight".into(),
            ),
        ),
    ]);
    let mut answers = client
        .server_reflection_info(requests)
        .await
        .expect("v1alpha reflection is served")
        .into_inner();
    let listed = match answers.next().await.unwrap().unwrap().message_response {
        Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect::<Vec<_>>()
        }
        other => panic!("v1alpha: expected the list of services, got {other:?}"),
    };
    for name in SERVICES {
        assert!(
            listed.iter().any(|s| s == name),
            "v1alpha lists {name}: {listed:?}"
        );
    }
    assert!(
        listed
            .iter()
            .any(|s| s == "grpc.reflection.v1alpha.ServerReflection"),
        "{listed:?}"
    );
    match answers.next().await.unwrap().unwrap().message_response {
        Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(
            files,
        )) => assert!(!files.file_descriptor_proto.is_empty()),
        other => panic!("v1alpha: expected the file declaring gryning.v1.Insight, got {other:?}"),
    }
    // The reflection streams are open until the clients let go; a graceful stop waits for them.
    drop((answers, client));
    server.stop();
}
