//! Runs `deploy/local-cluster.sh` (start, status, stop) and checks that its three members
//! form a JetStream cluster in which the store can create a three-replica stream and append.

use gryning_store_nats::testkit as support;

use std::process::Command;
use std::time::Duration;

use gryning_store::conformance::{event, request};
use gryning_store::{EventStore, ExpectedVersion};
use gryning_store_nats::{NatsStore, Options};

fn script(command: &str, dir: &std::path::Path, base: u16) -> std::process::Output {
    Command::new("bash")
        .arg(support::workspace_root().join("deploy/local-cluster.sh"))
        .arg(command)
        .arg(dir)
        .env("GRYNING_NATS_BASE_PORT", base.to_string())
        .env("GRYNING_NATS_SERVER", support::nats_server_binary())
        .output()
        .expect("run deploy/local-cluster.sh")
}

/// A base port whose nine derived ports are free now.
fn free_base() -> u16 {
    for _ in 0..100 {
        let base = 20_000 + (support::free_port() % 20_000);
        let free = [1, 2, 3, 101, 102, 103, 201, 202, 203]
            .iter()
            .all(|d| std::net::TcpListener::bind(("127.0.0.1", base + d)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no free port range found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_cluster_starts_serves_and_stops() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = free_base();
    let started = script("start", dir.path(), base);
    // Stop whatever started even if an assertion below fails.
    struct Stop<'a>(&'a std::path::Path, u16);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            script("stop", self.0, self.1);
        }
    }
    let _stop = Stop(dir.path(), base);
    assert!(
        started.status.success(),
        "start failed: {}{}",
        String::from_utf8_lossy(&started.stdout),
        String::from_utf8_lossy(&started.stderr)
    );
    let status = script("status", dir.path(), base);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "status: {text}");
    assert_eq!(text.matches("answers on").count(), 3, "status: {text}");

    let urls: Vec<String> = (1..=3)
        .map(|n| format!("nats://127.0.0.1:{}", base + n))
        .collect();
    let store = NatsStore::connect(
        &urls.join(","),
        Options {
            replicas: 3,
            retry_for: Duration::from_secs(30),
            ..Options::default()
        },
    )
    .await
    .expect("create a three-replica stream through the backend");
    let appended = store
        .append(request(
            "case-1",
            ExpectedVersion::Exact(0),
            vec![event("first")],
        ))
        .await
        .expect("append to the cluster");
    assert_eq!(appended.positions, vec![1]);
    let info = store.stream_info().await.expect("stream info");
    assert_eq!(info.config.num_replicas, 3);
    let cluster = info.cluster.expect("cluster info");
    assert!(cluster.leader.is_some(), "the stream has a leader");
    assert_eq!(cluster.replicas.len(), 2, "two followers");
    drop(store);

    let stopped = script("stop", dir.path(), base);
    assert!(stopped.status.success(), "stop failed");
    assert_eq!(
        String::from_utf8_lossy(&stopped.stdout)
            .matches("stopped")
            .count(),
        3
    );
    let after = script("status", dir.path(), base);
    assert!(
        !after.status.success(),
        "status after stop must report the members down"
    );
}
