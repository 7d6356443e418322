//! SIGTERM while a bulk `Append` is in flight (the `gryning-event-log` binary): the server
//! stops taking new connections but lets the open stream finish, so the summary still arrives,
//! and every event it acknowledges is in the store after a restart — acknowledged never means
//! lost.

#[path = "support/harness.rs"]
mod harness;

use gryning_proto::pb;
use gryning_proto::pb::event_log_client::EventLogClient;
use harness::{Bearer, Server, DEADLINE};
use tokio_stream::wrappers::ReceiverStream;

const FIRST: usize = 2_500;
const AFTER_SIGNAL: usize = 2_500;

fn case_opened() -> pb::Event {
    pb::Event {
        event_id: uuid::Uuid::new_v4().to_string(),
        occurred_on: "2020-03-02".into(),
        subject: Some(pb::event::Subject::CaseId(uuid::Uuid::new_v4().to_string())),
        body: Some(pb::event::Body::CaseOpened(pb::CaseOpened {
            lead_crime_code: "9365".into(),
            ..Default::default()
        })),
    }
}

fn start(data: &std::path::Path, log: &std::path::Path) -> Server {
    Server::start(
        env!("CARGO_BIN_EXE_gryning-event-log"),
        &[],
        &[
            ("GRYNING_LISTEN", "127.0.0.1:0"),
            ("GRYNING_DATA_DIR", data.to_str().unwrap()),
        ],
        log,
    )
}

/// Every stored position, read in pages.
async fn stored(
    client: &mut EventLogClient<
        tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Bearer>,
    >,
) -> Vec<u64> {
    let mut positions = Vec::new();
    loop {
        let after = positions.last().copied().unwrap_or(0);
        let mut page = client
            .read(pb::ReadRequest {
                after,
                limit: 10_000,
            })
            .await
            .unwrap()
            .into_inner();
        let before = positions.len();
        while let Some(event) = page.message().await.unwrap() {
            positions.push(event.position);
        }
        if positions.len() == before {
            return positions;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_in_flight_during_sigterm_completes_and_stays_stored() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start(&data, &dir.path().join("first.log"));
    let admin = server.tokens["admin"].clone();
    let client = || {
        EventLogClient::with_interceptor(
            tonic::transport::Channel::from_shared(server.url())
                .unwrap()
                .connect_lazy(),
            Bearer(Some(admin.clone())),
        )
    };
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let mut appender = client();
    let append = tokio::spawn(async move { appender.append(ReceiverStream::new(rx)).await });
    for _ in 0..FIRST {
        tx.send(case_opened()).await.unwrap();
    }
    // The stream is being recorded (a first batch is stored) before the signal is sent.
    let mut reader = client();
    let started = std::time::Instant::now();
    while stored(&mut reader).await.is_empty() {
        assert!(
            started.elapsed() < DEADLINE,
            "no batch of the stream stored"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    drop(reader);
    server.terminate();
    for _ in 0..AFTER_SIGNAL {
        tx.send(case_opened()).await.unwrap();
    }
    drop(tx);
    let summary = tokio::time::timeout(DEADLINE, append)
        .await
        .expect("the summary arrives within the deadline")
        .unwrap()
        .expect("the append in flight completes despite SIGTERM")
        .into_inner();
    assert_eq!(
        (summary.accepted, summary.rejected),
        ((FIRST + AFTER_SIGNAL) as u64, 0)
    );
    server.wait_for_clean_exit();

    // After a restart (tokens are issued only on the first start) every acknowledged event is
    // there, once.
    let again = start(&data, &dir.path().join("second.log"));
    let mut reader = EventLogClient::with_interceptor(again.channel().await, Bearer(Some(admin)));
    let positions = stored(&mut reader).await;
    assert_eq!(positions.len() as u64, summary.accepted);
    assert_eq!(positions, (1..=summary.accepted).collect::<Vec<_>>());
    again.stop();
}
