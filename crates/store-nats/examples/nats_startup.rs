//! Start-up of the JetStream store on a stream that already holds N events: how long
//! `NatsStore::connect` takes until the store can append, and the process's resident memory
//! (VmRSS) before and after it, then the first append and a resend of an event stored at the
//! start of the fill (found through its claim: a duplicate). The baseline is the same connect
//! on an empty stream.
//!
//! It starts a nats-server of its own (JetStream's default sync, which only speeds up the
//! filling: start-up reads), connects a store once (which creates the streams), then fills
//! them with N events of 200 bytes on 100,000 streams as the store lays them out — each event
//! a message on its stream's subject with its `Nats-Msg-Id` and `Gryning-Version`, each claim a
//! message on its id's subject — by raw atomic batches, many in flight (the store itself
//! appends at a few ten thousand events a second, too slow to fill 10M). Then it runs itself
//! again as a fresh process for each measurement, so that nothing of the filling is in the
//! measured process's memory.
//!
//! With `--before PATH`, PATH (this example built from an earlier gryning) measures as well,
//! after this build's measurements, on the same stream: the "before" of the same run.
//!
//!     cargo run --release -p gryning-store-nats --example nats_startup [N] [--before PATH]

use gryning_store_nats::testkit as support;

use std::time::Instant;

use gryning_store::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
use gryning_store_nats::{NatsStore, Options};
use uuid::Uuid;

const STREAMS: usize = 100_000;

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
async fn measure(url: &str, stream: &str, check_resend: bool) {
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
    let resend = if check_resend {
        let r = store
            .append(AppendRequest {
                stream: "case-0".into(),
                expected_version: ExpectedVersion::Any,
                events: vec![NewEvent {
                    event_id: fill_id(0),
                    payload: fill_payload(0),
                    metadata: Vec::new(),
                }],
            })
            .await
            .expect("resend of the fill's first event");
        assert!(
            r.duplicate && r.positions == vec![1],
            "a resend must be a duplicate at 1: {r:?}"
        );
        format!(
            ", resend of event 1 a duplicate at {:.3} s",
            start.elapsed().as_secs_f64()
        )
    } else {
        String::new()
    };
    println!(
        "  connect {:>8.3} s, first append done at {:>8.3} s, VmRSS {:>7.1} MiB before, {:>7.1} MiB after (+{:.1} MiB){resend}",
        connected.as_secs_f64(),
        first_append.as_secs_f64(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        after.saturating_sub(before) as f64 / 1024.0
    );
}

const BATCH: usize = 1000;
const IN_FLIGHT: usize = 8;

/// The id of event `j` of the fill (a v4-shaped UUID made from `j`, so the measurement can
/// resend event 0 without being told its id).
fn fill_id(j: usize) -> Uuid {
    uuid::Builder::from_random_bytes(((j as u128) << 8 | 0x5a).to_be_bytes()).into_uuid()
}

fn fill_payload(j: usize) -> Vec<u8> {
    let mut payload = format!("event {j:>12} ").into_bytes();
    payload.resize(200, b'x');
    payload
}

/// Publishes `messages` as one atomic batch; returns the commit's ack.
async fn raw_batch(
    client: &async_nats::Client,
    js: &async_nats::jetstream::Context,
    messages: Vec<(String, async_nats::HeaderMap, Vec<u8>)>,
) -> async_nats::jetstream::context::PublishAckFuture {
    let id = Uuid::new_v4().simple().to_string();
    let count = messages.len();
    let mut messages = messages.into_iter().enumerate();
    loop {
        let (n, (subject, mut headers, payload)) = messages.next().expect("a message");
        headers.insert("Nats-Batch-Id", id.as_str());
        headers.insert("Nats-Batch-Sequence", (n + 1).to_string().as_str());
        if n + 1 == count {
            headers.insert("Nats-Batch-Commit", "1");
            let message = async_nats::jetstream::message::PublishMessage::build()
                .payload(payload.into())
                .headers(headers);
            return js.send_publish(subject, message).await.expect("commit");
        }
        client
            .publish_with_headers(subject, headers, payload.into())
            .await
            .expect("publish");
    }
}

/// Fills the events stream and the id stream the store made, as the store lays them out.
async fn fill(url: &str, stream: &str, n: usize) {
    NatsStore::connect(url, options(stream))
        .await
        .expect("connect the store (creates the streams)");
    let o = options(stream);
    let client = async_nats::connect(url).await.expect("connect");
    let js = async_nats::jetstream::ContextBuilder::new()
        .timeout(std::time::Duration::from_secs(60))
        .build(client.clone());
    let start = Instant::now();
    let mut acks = std::collections::VecDeque::new();
    let mut j = 0;
    while j < n {
        let range = j..(j + BATCH).min(n);
        j = range.end;
        let mut claims = Vec::with_capacity(range.len());
        let mut events = Vec::with_capacity(range.len());
        for i in range {
            let name = format!("case-{}", i % STREAMS);
            let subject = gryning_store_nats::subject::subject_for(&o.subject_prefix, &name);
            let token = subject.rsplit('.').next().unwrap_or_default().to_owned();
            claims.push((
                format!("{}-ids.{}", o.subject_prefix, fill_id(i)),
                async_nats::HeaderMap::new(),
                token.into_bytes(),
            ));
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", fill_id(i).to_string().as_str());
            headers.insert(
                gryning_store_nats::VERSION_HEADER,
                (i / STREAMS + 1).to_string().as_str(),
            );
            events.push((subject, headers, fill_payload(i)));
        }
        acks.push_back(raw_batch(&client, &js, claims).await);
        acks.push_back(raw_batch(&client, &js, events).await);
        while acks.len() > IN_FLIGHT {
            acks.pop_front().unwrap().await.expect("batch stored");
        }
    }
    for ack in acks {
        ack.await.expect("batch stored");
    }
    println!(
        "filled {n} events and their claims in {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

fn run_measurement(exe: &std::path::Path, url: &str, stream: &str, check_resend: bool) {
    let mut args = vec!["--measure", url, stream];
    if check_resend {
        args.push("--resend");
    }
    let status = std::process::Command::new(exe)
        .args(args)
        .status()
        .expect("run the measurement");
    assert!(status.success(), "the measurement failed");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--measure") {
        measure(
            &args[1],
            &args[2],
            args.get(3).map(String::as_str) == Some("--resend"),
        )
        .await;
        return;
    }
    let n: usize = args
        .first()
        .map(|a| a.parse().expect("N must be a number"))
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = support::Server::standalone(dir.path(), false);
    let url = server.url();
    let own = std::env::current_exe().expect("own path");
    let before = args
        .iter()
        .position(|a| a == "--before")
        .map(|i| std::path::PathBuf::from(args.get(i + 1).expect("--before PATH")));
    println!("empty stream (baseline):");
    run_measurement(&own, &url, "EMPTY", false);
    fill(&url, "FULL", n).await;
    println!("stream of {n} events:");
    run_measurement(&own, &url, "FULL", true);
    println!("again (the server's caches warm):");
    run_measurement(&own, &url, "FULL", true);
    if let Some(before) = before {
        println!("the same stream, {} (before):", before.display());
        run_measurement(&before, &url, "FULL", false);
    }
    println!(
        "server store directory: {:.1} MiB",
        dir_size(dir.path()) as f64 / (1024.0 * 1024.0)
    );
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => dir_size(&e.path()),
                    _ => e.metadata().map_or(0, |m| m.len()),
                })
                .sum()
        })
        .unwrap_or(0)
}
