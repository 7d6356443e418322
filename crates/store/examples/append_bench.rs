//! Append throughput of `SqliteStore` against a plain SQLite layout, in one run.
//!
//! ```text
//! cargo run --release -p gryning-store --example append_bench -- --events 1000000 --streams 200000
//! ```
//!
//! Measures (a) a "plain" baseline: a table with UNIQUE(stream, version), 1,000 rows per
//! transaction, WAL with synchronous=NORMAL (no fsync per commit: not durable per commit);
//! (a') the append-only ceiling: the same rows into the store's table with no index, `--batch`
//! rows per transaction, synchronous=FULL (both from `gryning_store::baseline`);
//! (b) the same events through `SqliteStore::append_batch` (synchronous=FULL, durable);
//! (c) many concurrent single-event appenders, which only group commit makes fast;
//! then a full `read_all` scan and, in a fresh process, the time and memory to reopen the store.
//! Events are ~200-byte payloads on random streams from a fixed-seed PRNG; every run writes to
//! fresh temporary directories (under `--dir`, default the system temp dir).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gryning_store::baseline::{Layout, Row, Writer};
use gryning_store::sqlite::SqliteStore;
use gryning_store::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
use uuid::Uuid;

struct Args {
    events: u64,
    streams: u64,
    batch: usize,
    tasks: u64,
    concurrent_events: u64,
    dir: Option<PathBuf>,
    reopen: Option<PathBuf>,
}

fn parse_args() -> Args {
    let mut args = Args {
        events: 1_000_000,
        streams: 200_000,
        batch: 10_000,
        tasks: 64,
        concurrent_events: 200_000,
        dir: None,
        reopen: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--events" => args.events = value().parse().expect("--events N"),
            "--streams" => args.streams = value().parse().expect("--streams N"),
            "--batch" => args.batch = value().parse().expect("--batch N"),
            "--tasks" => args.tasks = value().parse().expect("--tasks N"),
            "--concurrent-events" => {
                args.concurrent_events = value().parse().expect("--concurrent-events N")
            }
            "--dir" => args.dir = Some(value().into()),
            // Internal: measure a reopen in a fresh process, so the figure is the index alone.
            "--reopen" => args.reopen = Some(value().into()),
            other => panic!(
                "unknown argument {other}; flags: --events N --streams N --batch N --tasks N \
                 --concurrent-events N --dir PATH"
            ),
        }
    }
    assert!(
        args.streams > 0 && args.batch > 0 && args.tasks > 0,
        "counts must be positive"
    );
    args
}

/// SplitMix64: deterministic and good enough to spread events over streams.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n.div_ceil(8))
            .flat_map(|_| self.next().to_le_bytes())
            .take(n)
            .collect()
    }

    fn uuid(&mut self) -> Uuid {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&self.bytes(16));
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

/// One generated event: its stream, the version it gets there, and its content.
struct Generated {
    stream: String,
    version: u64,
    event: NewEvent,
}

fn generate(events: u64, streams: u64, seed: u64) -> Vec<Generated> {
    let mut rng = Rng(seed);
    let mut versions = vec![0u64; streams as usize];
    (0..events)
        .map(|_| {
            let s = rng.next() % streams;
            versions[s as usize] += 1;
            let payload_len = 180 + (rng.next() % 41) as usize; // 180..=220 bytes
            Generated {
                stream: format!("case-{s:08}"),
                version: versions[s as usize],
                event: NewEvent {
                    event_id: rng.uuid(),
                    payload: rng.bytes(payload_len),
                    metadata: b"{\"by\":\"bench\",\"at\":1767225600}".to_vec(),
                },
            }
        })
        .collect()
}

fn rate(events: u64, took: Duration) -> f64 {
    events as f64 / took.as_secs_f64()
}

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

fn temp_dir(base: &Option<PathBuf>, name: &str) -> tempfile::TempDir {
    let mut builder = tempfile::Builder::new();
    builder.prefix(name);
    match base {
        Some(base) => builder.tempdir_in(base),
        None => builder.tempdir(),
    }
    .expect("temp dir")
}

/// The same events written straight into SQLite (`gryning_store::baseline`), `batch` rows per
/// transaction: (a) the plain layout with `synchronous`, or (a') the append-only ceiling.
fn baseline(
    dir: &Path,
    events: &[Generated],
    layout: Layout,
    batch: usize,
    synchronous: &str,
) -> Duration {
    let mut writer = Writer::create(&dir.join("baseline.sqlite3"), layout, synchronous).unwrap();
    let mut position = 0;
    for chunk in events.chunks(batch) {
        let rows: Vec<Row> = chunk
            .iter()
            .map(|g| {
                position += 1;
                Row {
                    position,
                    stream: &g.stream,
                    version: g.version,
                    event_id: g.event.event_id.as_bytes(),
                    payload: &g.event.payload,
                    metadata: &g.event.metadata,
                }
            })
            .collect();
        writer.write(&rows).unwrap();
    }
    writer.totals().1
}

/// (b) Through the store, `batch` one-event requests per `append_batch`, expected version Exact.
async fn store_batches(store: &SqliteStore, events: Vec<Generated>, batch: usize) -> Duration {
    let mut requests: Vec<AppendRequest> = events
        .into_iter()
        .map(|g| AppendRequest {
            stream: g.stream,
            expected_version: ExpectedVersion::Exact(g.version - 1),
            events: vec![g.event],
        })
        .collect();
    // Prepared before the clock starts: only the appends are timed.
    let mut batches = Vec::new();
    while !requests.is_empty() {
        let rest = requests.split_off(batch.min(requests.len()));
        batches.push(std::mem::replace(&mut requests, rest));
    }
    let started = Instant::now();
    for batch in batches {
        for result in store.append_batch(batch).await {
            result.expect("append");
        }
    }
    started.elapsed()
}

/// (c) `tasks` tasks, each appending one event at a time to streams of its own.
async fn concurrent(store: Arc<SqliteStore>, events: u64, tasks: u64, streams: u64) -> Duration {
    let per_task = events / tasks;
    let streams_per_task = (streams / tasks).max(1);
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut rng = Rng(0xC0FFEE + task);
                let mut versions = vec![0u64; streams_per_task as usize];
                for _ in 0..per_task {
                    let s = (rng.next() % streams_per_task) as usize;
                    let request = AppendRequest {
                        stream: format!("task-{task:03}-{s:06}"),
                        expected_version: ExpectedVersion::Exact(versions[s]),
                        events: vec![NewEvent {
                            event_id: rng.uuid(),
                            payload: rng.bytes(200),
                            metadata: b"{}".to_vec(),
                        }],
                    };
                    versions[s] = store.append(request).await.expect("append").version;
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("appender task");
    }
    started.elapsed()
}

async fn scan(store: &SqliteStore) -> (u64, Duration) {
    let started = Instant::now();
    let mut after = 0;
    let mut count = 0u64;
    loop {
        let page = store.read_all(after, 10_000).await.expect("read_all");
        let Some(last) = page.last() else { break };
        after = last.position;
        count += page.len() as u64;
    }
    (count, started.elapsed())
}

fn main() {
    let args = parse_args();
    if let Some(dir) = args.reopen {
        // Child mode: report the reopen cost of this fresh process.
        let rss_before = vm_rss_kib();
        let started = Instant::now();
        let store = SqliteStore::open(&dir).expect("reopen");
        let took = started.elapsed();
        let rss_after = vm_rss_kib();
        drop(store);
        println!("{} {} {}", took.as_secs_f64(), rss_before, rss_after);
        return;
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "append_bench: {} events, {} streams, batch {} requests, ~200-byte payloads",
        args.events, args.streams, args.batch
    );

    let events = generate(args.events, args.streams, 42);
    let dir_a = temp_dir(&args.dir, "bench-plain-");
    let plain_took = baseline(dir_a.path(), &events, Layout::Plain, 1000, "NORMAL");
    let plain_rate = rate(args.events, plain_took);
    println!(
        "(a) plain layout, UNIQUE(stream, version), 1000/txn, synchronous=NORMAL: {:>9.0} events/s ({:.2} s)",
        plain_rate,
        plain_took.as_secs_f64()
    );
    drop(dir_a);
    let dir_a = temp_dir(&args.dir, "bench-ceiling-");
    let ceiling_took = baseline(
        dir_a.path(),
        &events,
        Layout::AppendOnly,
        args.batch,
        "FULL",
    );
    let ceiling_rate = rate(args.events, ceiling_took);
    println!(
        "(a') append-only ceiling, no index, {}/txn, synchronous=FULL:       {:>9.0} events/s ({:.2} s)",
        args.batch,
        ceiling_rate,
        ceiling_took.as_secs_f64()
    );
    drop(dir_a);

    let dir_b = temp_dir(&args.dir, "bench-store-");
    let store = SqliteStore::open(dir_b.path()).expect("open the store");
    let store_took = runtime.block_on(store_batches(&store, events, args.batch));
    let store_rate = rate(args.events, store_took);
    println!(
        "(b) SqliteStore::append_batch, {} per batch, synchronous=FULL:        {:>9.0} events/s ({:.2} s), {:.2}x the plain layout, {:.2}x the ceiling",
        args.batch,
        store_rate,
        store_took.as_secs_f64(),
        store_rate / plain_rate,
        store_rate / ceiling_rate
    );

    let (count, scan_took) = runtime.block_on(scan(&store));
    assert_eq!(count, args.events, "the scan must see every event");
    println!(
        "    read_all scan, 10000 per page:                                     {:>9.0} events/s ({:.2} s)",
        rate(count, scan_took),
        scan_took.as_secs_f64()
    );
    drop(store);

    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--reopen")
        .arg(dir_b.path())
        .output()
        .expect("run the reopen child");
    assert!(
        output.status.success(),
        "reopen child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let figures: Vec<f64> = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(|f| f.parse().expect("reopen figures"))
        .collect();
    let db_size = std::fs::metadata(dir_b.path().join("events.sqlite3"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "    reopen with {} events: {:.2} s, VmRSS {:.0} MiB -> {:.0} MiB (+{:.0} MiB); database file {:.0} MiB",
        args.events,
        figures[0],
        figures[1] / 1024.0,
        figures[2] / 1024.0,
        (figures[2] - figures[1]) / 1024.0,
        db_size as f64 / (1024.0 * 1024.0)
    );
    drop(dir_b);

    if args.concurrent_events > 0 {
        let dir_c = temp_dir(&args.dir, "bench-concurrent-");
        let store = Arc::new(SqliteStore::open(dir_c.path()).expect("open the store"));
        let events = args.concurrent_events / args.tasks * args.tasks;
        let took = runtime.block_on(concurrent(
            Arc::clone(&store),
            events,
            args.tasks,
            args.streams,
        ));
        println!(
            "(c) {} tasks appending one event at a time, synchronous=FULL:          {:>9.0} events/s ({} events, {:.2} s)",
            args.tasks,
            rate(events, took),
            events,
            took.as_secs_f64()
        );
    }
}
