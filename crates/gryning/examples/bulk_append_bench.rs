//! Event-log bulk append throughput: the synthetic dataset at scale 4 (about 520,000 events,
//! from `gryning_synth`) sent through one client-streaming `Append` to `gryning up`'s server
//! in-process, which records them in batches of `APPEND_BATCH` (8,192). Prints events/s, and
//! a baseline measured in the same run: the same events through `Recorder::record_batch` in
//! batches of the same size in-process (no gRPC), each into a fresh embedded store.
//!
//! ```text
//! cargo run --release -p gryning --example bulk_append_bench -- 4
//! ```
//! (the argument is the synthetic scale, default 4).

#[path = "support/bench.rs"]
mod bench;

use std::sync::Arc;
use std::time::Instant;

use bench::Bearer;
use gryning_proto::pb::event_log_client::EventLogClient;
use gryning_recording::{Recorder, Submission};

#[tokio::main]
async fn main() {
    let scale: u32 = std::env::args()
        .nth(1)
        .map(|a| {
            a.parse()
                .expect("the first argument is the synthetic scale")
        })
        .unwrap_or(4);
    let catalogue = Arc::new(gryning_domain::Catalogue::default_catalogue());
    let events = gryning_synth::generate(gryning_synth::DEFAULT_SEED, scale, &catalogue);
    let wire: Vec<_> = events.iter().map(gryning_proto::to_pb).collect();
    let n = events.len();
    println!("{n} synthetic events (scale {scale})");

    let baseline_dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn gryning_store::EventStore> = Arc::new(
        gryning_store::sqlite::SqliteStore::open(baseline_dir.path()).expect("open store"),
    );
    let recorder = Recorder::new(Arc::clone(&store), Arc::clone(&catalogue));
    let started = Instant::now();
    let mut stored = 0usize;
    let mut events = events.into_iter().map(Submission::from).peekable();
    while events.peek().is_some() {
        let batch: Vec<Submission> = events
            .by_ref()
            .take(gryning_event_log::APPEND_BATCH)
            .collect();
        stored += recorder
            .record_batch(batch)
            .await
            .iter()
            .filter(|r| r.is_ok())
            .count();
    }
    let elapsed = started.elapsed();
    println!(
        "baseline  Recorder::record_batch in-process: {:>9.0} events/s ({stored} stored in {:.2} s)",
        stored as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    drop(recorder);
    drop(store);

    let dir = tempfile::tempdir().unwrap();
    let server = bench::start(dir.path()).await;
    let mut client = EventLogClient::with_interceptor(
        server.channel().await,
        Bearer::new(&server.tokens["admin"]),
    )
    .max_decoding_message_size(64 << 20);
    let started = Instant::now();
    let summary = client
        .append(tokio_stream::iter(wire))
        .await
        .expect("append")
        .into_inner();
    let elapsed = started.elapsed();
    println!(
        "event_log Append, client streaming:       {:>9.0} events/s ({} accepted, {} rejected in {:.2} s; target 100000 events/s)",
        summary.accepted as f64 / elapsed.as_secs_f64(),
        summary.accepted,
        summary.rejected,
        elapsed.as_secs_f64()
    );
    assert_eq!(
        summary.accepted as usize, stored,
        "both paths store the same events"
    );
    server.stop().await;
}
