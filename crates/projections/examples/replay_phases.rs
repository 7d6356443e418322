//! Times the phases of a replay over an existing data directory, one after the other on one
//! core: reading the log from the store, decoding payloads, applying them; then the pipelined
//! `catch_up` as a whole. `cargo run --release -p gryning-projections --example replay_phases -- DIR`
use std::time::Instant;

use gryning_projections::Projections;
use gryning_store::EventStore;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: replay_phases DATA_DIR");
    let store = gryning_store::sqlite::SqliteStore::open(std::path::Path::new(&dir)).unwrap();
    let head = store.head().await.unwrap();
    let t = Instant::now();
    let mut batches = Vec::new();
    let mut after = 0;
    loop {
        let b = store
            .read_payloads(after, gryning_projections::BATCH_SIZE)
            .await
            .unwrap();
        let Some(last) = b.last() else { break };
        after = last.0;
        batches.push(b);
    }
    let read = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let events: Vec<_> = batches
        .iter()
        .flatten()
        .map(|(pos, payload)| (*pos, gryning_proto::decode_event(payload).unwrap()))
        .collect();
    let decode = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut p = Projections::new();
    for (pos, e) in &events {
        p.apply(*pos, e);
    }
    let apply = t.elapsed().as_secs_f64();
    drop(events);
    drop(batches);
    let t = Instant::now();
    let mut q = Projections::new();
    gryning_projections::catch_up(&mut q, &store, None, |_| {})
        .await
        .unwrap();
    let whole = t.elapsed().as_secs_f64();
    let rate = |s: f64| head as f64 / s / 1e6;
    println!(
        "{head} events: read {:.2} M/s, decode {:.2} M/s, apply {:.2} M/s; catch_up {:.2} M/s",
        rate(read),
        rate(decode),
        rate(apply),
        rate(whole)
    );
}
