//! Start-up of the JetStream store on a stream that already holds N events: how long
//! `NatsStore::connect` takes until the store can append, and the process's resident memory
//! (VmRSS) before and after it. The baseline is the same connect on an empty stream.
//!
//! It starts a nats-server of its own (JetStream's default sync, which only speeds up the
//! filling: start-up reads), fills the stream through the store with N events of 200 bytes on
//! 100,000 streams, then runs itself again as a fresh process for each measurement, so that
//! nothing of the filling is in the measured process's memory.
//!
//!     cargo run --release -p gryning-store-nats --example nats_startup [N]

use gryning_store_nats::testkit as support;

use std::time::Instant;

use gryning_store::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
use gryning_store_nats::{NatsStore, Options};
use uuid::Uuid;

const STREAMS: usize = 100_000;
const CALL: usize = 4096;

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn options(stream: &str) -> Options {
    Options {
        stream: stream.into(),
        subject_prefix: format!("startup.{}", stream.to_lowercase()),
        ..Options::default()
    }
}

/// The measured process: connect, append one event, report.
async fn measure(url: &str, stream: &str) {
    let before = vm_rss_kib();
    let start = Instant::now();
    let store = NatsStore::connect(url, options(stream))
        .await
        .expect("connect the store");
    let connected = start.elapsed();
    let after = vm_rss_kib();
    store
        .append(AppendRequest {
            stream: "after-start".into(),
            expected_version: ExpectedVersion::Any,
            events: vec![NewEvent {
                event_id: Uuid::new_v4(),
                payload: b"first append after start".to_vec(),
                metadata: Vec::new(),
            }],
        })
        .await
        .expect("append after connect");
    let first_append = start.elapsed();
    println!(
        "  connect {:>8.3} s, first append done at {:>8.3} s, VmRSS {:>7.1} MiB before, {:>7.1} MiB after (+{:.1} MiB)",
        connected.as_secs_f64(),
        first_append.as_secs_f64(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        after.saturating_sub(before) as f64 / 1024.0
    );
}

async fn fill(url: &str, stream: &str, n: usize) {
    let store = NatsStore::connect(url, options(stream))
        .await
        .expect("connect the store");
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let requests: Vec<AppendRequest> = (i..(i + CALL).min(n))
            .map(|j| {
                let mut payload = format!("event {j:>12} ").into_bytes();
                payload.resize(200, b'x');
                AppendRequest {
                    stream: format!("case-{}", j % STREAMS),
                    expected_version: ExpectedVersion::Any,
                    events: vec![NewEvent {
                        event_id: Uuid::new_v4(),
                        payload,
                        metadata: Vec::new(),
                    }],
                }
            })
            .collect();
        i += requests.len();
        for r in store.append_batch(requests).await {
            r.expect("append");
        }
    }
    println!(
        "filled {n} events in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

fn run_measurement(url: &str, stream: &str) {
    let status = std::process::Command::new(std::env::current_exe().expect("own path"))
        .args(["--measure", url, stream])
        .status()
        .expect("run the measurement");
    assert!(status.success(), "the measurement failed");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--measure") {
        measure(&args[1], &args[2]).await;
        return;
    }
    let n: usize = args
        .first()
        .map(|a| a.parse().expect("N must be a number"))
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = support::Server::standalone(dir.path(), false);
    let url = server.url();
    println!("empty stream (baseline):");
    run_measurement(&url, "EMPTY");
    fill(&url, "FULL", n).await;
    println!("stream of {n} events:");
    run_measurement(&url, "FULL");
    println!("again (the server's caches warm):");
    run_measurement(&url, "FULL");
}
