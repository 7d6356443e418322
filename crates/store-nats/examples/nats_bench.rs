//! Throughput of the JetStream backend against raw JetStream, on a nats-server of its own.
//!
//! For each server setting (`sync_interval: always`, then JetStream's default) it publishes N
//! messages of about 200 bytes to 10,000 subjects with 4096 acks in flight (raw), appends the
//! same bytes through `append_batch` in batches of 4096 one-event requests with expected
//! versions, prints both rates and their ratio, and replays the log with `read_all`.
//!
//!     cargo run --release -p gryning-store-nats --example nats_bench [N]

use gryning_store_nats::testkit as support;

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use gryning_store::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
use gryning_store_nats::{NatsStore, Options};
use uuid::Uuid;

const SUBJECTS: usize = 10_000;
const IN_FLIGHT: usize = 4096;
const BATCH: usize = 4096;

fn payload(i: usize) -> Vec<u8> {
    let mut p = format!("event {i:>12} ").into_bytes();
    p.resize(200, b'x');
    p
}

async fn raw(url: &str, n: usize) -> f64 {
    let client = async_nats::connect(url).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: "BENCH_RAW".into(),
        subjects: vec!["bench.raw.>".into()],
        ..Default::default()
    })
    .await
    .expect("raw stream");
    let start = Instant::now();
    let mut acks = VecDeque::new();
    for i in 0..n {
        if acks.len() >= IN_FLIGHT {
            let ack: async_nats::jetstream::context::PublishAckFuture = acks.pop_front().unwrap();
            ack.await.expect("raw ack");
        }
        // The same headers an append carries (message id, expected subject sequence is left
        // out: raw publishing has no such check), the same body.
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", Uuid::new_v4().to_string().as_str());
        let subject = format!("bench.raw.s{}", i % SUBJECTS);
        let message = async_nats::jetstream::message::PublishMessage::build()
            .payload(Bytes::from(payload(i)))
            .headers(headers);
        acks.push_back(js.send_publish(subject, message).await.expect("publish"));
    }
    for ack in acks {
        ack.await.expect("raw ack");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn backend(url: &str, n: usize) -> (f64, f64) {
    let store = NatsStore::connect(
        url,
        Options {
            stream: "BENCH_STORE".into(),
            subject_prefix: "bench.store".into(),
            ..Options::default()
        },
    )
    .await
    .expect("connect the store");
    let mut versions = vec![0u64; SUBJECTS];
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let requests: Vec<AppendRequest> = (i..(i + BATCH).min(n))
            .map(|j| {
                let s = j % SUBJECTS;
                let r = AppendRequest {
                    stream: format!("s{s}"),
                    expected_version: ExpectedVersion::Exact(versions[s]),
                    events: vec![NewEvent {
                        event_id: Uuid::new_v4(),
                        payload: payload(j),
                        metadata: Vec::new(),
                    }],
                };
                versions[s] += 1;
                r
            })
            .collect();
        i += requests.len();
        for r in store.append_batch(requests).await {
            r.expect("append");
        }
    }
    let append_rate = n as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let (mut after, mut read) = (0, 0);
    loop {
        let page = store.read_all(after, 4096).await.expect("read_all");
        let Some(last) = page.last() else { break };
        after = last.position;
        read += page.len();
    }
    assert_eq!(read, n, "replay must read every event");
    (append_rate, n as f64 / start.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("N must be a number"))
        .unwrap_or(100_000);
    for sync_always in [true, false] {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = support::Server::standalone(dir.path(), sync_always);
        let setting = if sync_always {
            "sync_interval: always"
        } else {
            "sync_interval: default (2m)"
        };
        let raw_rate = raw(&server.url(), n).await;
        let (append_rate, replay_rate) = backend(&server.url(), n).await;
        println!(
            "{setting}: N={n} x 200 B, {SUBJECTS} subjects\n  raw JetStream publish ({IN_FLIGHT} acks in flight): {raw_rate:>10.0} msg/s\n  append_batch ({BATCH} one-event requests per batch): {append_rate:>10.0} events/s\n  ratio append/raw: {:.2}\n  replay read_all: {replay_rate:>10.0} events/s",
            append_rate / raw_rate
        );
    }
}
