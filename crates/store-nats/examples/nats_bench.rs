//! Throughput of the JetStream backend against raw JetStream, on nats-servers of its own.
//!
//! For each setup (one server with `sync_interval: always`, a three-node cluster with
//! `sync_interval: always` and three replicas, one server with JetStream's default) it
//! publishes N messages of 200 bytes to 10,000 subjects in two raw ways, the baselines: one
//! publish per message with 4096 acks in flight, and atomic batches of the server's batch
//! limit (the same protocol the store uses, without its headers and bookkeeping), four in
//! flight. Then it appends the same bytes through `append_batch` in calls of 8192 one-event
//! requests with expected versions (as `gryning import` sends them), prints the rates and the ratio to the batched baseline,
//! and replays the log with `read_all`.
//!
//!     cargo run --release -p gryning-store-nats --example nats_bench [N] [BATCH_MAX_MSGS]
//!
//! BATCH_MAX_MSGS, if given, is set as the servers' `jetstream.limits.batch.max_msgs` (the
//! server's default is 1000).

use gryning_store_nats::testkit as support;

use std::collections::VecDeque;
use std::time::Instant;

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use gryning_store::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
use gryning_store_nats::{NatsStore, Options};
use uuid::Uuid;

const SUBJECTS: usize = 10_000;
const IN_FLIGHT: usize = 4096;
const BATCH: usize = 8192;
const BATCHES_IN_FLIGHT: usize = 4;

fn payload(i: usize) -> Vec<u8> {
    let mut p = format!("event {i:>12} ").into_bytes();
    p.resize(200, b'x');
    p
}

async fn raw_stream(url: &str, name: &str, replicas: usize) -> async_nats::jetstream::Context {
    let addrs: Vec<async_nats::ServerAddr> = url
        .split(',')
        .map(|a| a.parse().expect("server address"))
        .collect();
    let client = async_nats::connect(addrs).await.expect("connect");
    // Acks wait behind fsyncs on a loaded machine: a generous bound, as the store's retries.
    let js = async_nats::jetstream::ContextBuilder::new()
        .timeout(std::time::Duration::from_secs(60))
        .build(client);
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: name.into(),
        subjects: vec![format!("bench.{name}.>")],
        num_replicas: replicas,
        allow_atomic_publish: true,
        ..Default::default()
    })
    .await
    .expect("raw stream");
    js
}

fn raw_message(i: usize, headers: async_nats::HeaderMap) -> PublishMessage {
    PublishMessage::build()
        .payload(Bytes::from(payload(i)))
        .headers(headers)
}

fn msg_id() -> async_nats::HeaderMap {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", Uuid::new_v4().to_string().as_str());
    headers
}

/// One publish per message, `IN_FLIGHT` acks outstanding.
async fn raw(url: &str, n: usize, replicas: usize) -> f64 {
    let js = raw_stream(url, "RAW", replicas).await;
    let start = Instant::now();
    let mut acks = VecDeque::new();
    for i in 0..n {
        if acks.len() >= IN_FLIGHT {
            let ack: PublishAckFuture = acks.pop_front().unwrap();
            ack.await.expect("raw ack");
        }
        // The message id an append carries, the same body; no expected subject sequence
        // (raw publishing has no such check).
        let subject = format!("bench.RAW.s{}", i % SUBJECTS);
        let message = raw_message(i, msg_id());
        acks.push_back(js.send_publish(subject, message).await.expect("publish"));
    }
    for ack in acks {
        ack.await.expect("raw ack");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Atomic batches of `batch` messages, `BATCHES_IN_FLIGHT` commits outstanding: every
/// message but the last a core publish with the batch headers, the last the commit.
async fn raw_batched(url: &str, n: usize, replicas: usize, batch: usize) -> f64 {
    let js = raw_stream(url, "RAWBATCH", replicas).await;
    let client = js.client();
    let start = Instant::now();
    let mut commits: VecDeque<(usize, PublishAckFuture)> = VecDeque::new();
    let mut i = 0;
    while i < n {
        if commits.len() >= BATCHES_IN_FLIGHT {
            let (size, ack) = commits.pop_front().unwrap();
            let ack = ack.await.expect("batch commit");
            assert!(ack.sequence >= size as u64);
        }
        let size = batch.min(n - i);
        let id = Uuid::new_v4().simple().to_string();
        for k in 0..size {
            let mut headers = msg_id();
            headers.insert("Nats-Batch-Id", id.as_str());
            headers.insert("Nats-Batch-Sequence", (k + 1).to_string().as_str());
            let subject = format!("bench.RAWBATCH.s{}", (i + k) % SUBJECTS);
            if k + 1 < size {
                client
                    .publish_with_headers(subject, headers, Bytes::from(payload(i + k)))
                    .await
                    .expect("publish");
            } else {
                headers.insert("Nats-Batch-Commit", "1");
                let ack = js
                    .send_publish(subject, raw_message(i + k, headers))
                    .await
                    .expect("commit");
                commits.push_back((size, ack));
            }
        }
        i += size;
    }
    for (_, ack) in commits {
        ack.await.expect("batch commit");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn backend(url: &str, n: usize, replicas: usize) -> (f64, f64, usize) {
    let store = NatsStore::connect(
        url,
        Options {
            stream: "BENCH_STORE".into(),
            subject_prefix: "bench.store".into(),
            replicas,
            ..Options::default()
        },
    )
    .await
    .expect("connect the store");
    let max_batch = store.max_batch();
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
    (
        append_rate,
        n as f64 / start.elapsed().as_secs_f64(),
        max_batch,
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|a| a.parse().expect("N must be a number"))
        .unwrap_or(100_000);
    let batch_max: Option<usize> = args
        .next()
        .map(|a| a.parse().expect("BATCH_MAX_MSGS must be a number"));
    let limits = batch_max
        .map(|m| format!("limits {{ batch {{ max_msgs: {m} }} }}"))
        .unwrap_or_default();
    for setup in [
        "one server, sync_interval: always",
        "three-node cluster, R3, sync_interval: always",
        "one server, sync_interval: default (2m)",
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let (servers, replicas) = if setup.starts_with("three") {
            (support::Server::cluster_with(dir.path(), &limits), 3)
        } else {
            let sync_always = setup.ends_with("always");
            (
                vec![support::Server::standalone_with(
                    dir.path(),
                    sync_always,
                    &limits,
                )],
                1,
            )
        };
        let url = servers
            .iter()
            .map(|s| s.url())
            .collect::<Vec<_>>()
            .join(",");
        // The store's connect waits for the cluster's meta leader; the raw streams after it.
        let (append_rate, replay_rate, batch) = backend(&url, n, replicas).await;
        let raw_rate = raw(&url, n, replicas).await;
        let batched_rate = raw_batched(&url, n, replicas, batch).await;
        println!(
            "{setup}: N={n} x 200 B, {SUBJECTS} subjects, atomic batches of up to {batch}\n  raw JetStream publish, one per message ({IN_FLIGHT} acks in flight): {raw_rate:>10.0} msg/s\n  raw JetStream atomic batches of {batch} ({BATCHES_IN_FLIGHT} commits in flight):  {batched_rate:>10.0} msg/s\n  append_batch ({BATCH} one-event requests per call): {append_rate:>10.0} events/s\n  ratio append/raw batched: {:.2}, append/raw one per message: {:.2}\n  replay read_all: {replay_rate:>10.0} events/s",
            append_rate / batched_rate,
            append_rate / raw_rate
        );
    }
}
