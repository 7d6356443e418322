//! Kill test: acknowledged appends must survive SIGKILL.
//!
//! The test runs this very binary again as a child process with `--child-appender DIR`; the
//! child appends continuously from several tasks and prints each event id once its append has
//! been acknowledged. The test kills the child with SIGKILL mid-flight, reopens the store and
//! checks that every acknowledged event is there exactly once and that the log is consistent.
//!
//! The target has its own `main` (`harness = false` in Cargo.toml) so that the child is an
//! entry point of the binary, not a test: the test list holds the one real test, run through
//! `libtest-mimic` with the usual test-harness arguments.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gryning_store::sqlite::SqliteStore;
use gryning_store::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
use libtest_mimic::{Arguments, Trial};
use uuid::Uuid;

/// The first argument that makes the binary the child appender; the data directory follows.
const CHILD: &str = "--child-appender";
/// Marks acknowledged-id lines in the child's standard output.
const ACK: &str = "ACK ";
const ACKS_BEFORE_KILL: usize = 20_000;
const APPENDERS: u64 = 4;
const STREAMS_PER_APPENDER: u64 = 50;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|arg| arg == CHILD) {
        let dir = args
            .next()
            .expect("--child-appender needs a data directory");
        child_appender(Path::new(&dir));
        return ExitCode::SUCCESS;
    }
    let args = Arguments::from_args();
    let tests = vec![Trial::test("acknowledged_appends_survive_sigkill", || {
        acknowledged_appends_survive_sigkill();
        Ok(())
    })];
    libtest_mimic::run(&args, tests).exit_code()
}

fn acknowledged_appends_survive_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(std::env::current_exe().expect("current_exe"))
        .arg(CHILD)
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child appender");
    let mut lines = BufReader::new(child.stdout.take().expect("child stdout")).lines();

    let mut acked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.len() < ACKS_BEFORE_KILL {
        assert!(
            Instant::now() < deadline,
            "only {} acknowledgements before the deadline",
            acked.len()
        );
        match lines.next() {
            Some(line) => {
                if let Some(id) = line.expect("read child stdout").strip_prefix(ACK) {
                    acked.push(Uuid::parse_str(id).expect("child printed a malformed id"));
                }
            }
            None => {
                let status = child.wait().expect("wait for the child");
                panic!(
                    "the child stopped ({status}) after {} acknowledgements",
                    acked.len()
                );
            }
        }
    }
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("wait for the child");
    assert!(
        !status.success(),
        "the child must have been killed, not have finished: {status}"
    );
    // Lines already in the pipe were acknowledged before the kill too.
    for line in lines {
        if let Some(id) = line.expect("read child stdout").strip_prefix(ACK) {
            acked.push(Uuid::parse_str(id).expect("child printed a malformed id"));
        }
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(dir.path()).expect("reopen after SIGKILL");
        let head = store.head().await.unwrap();

        // The whole log: positions 1..=head, versions contiguous, every id once.
        let mut stored = HashSet::new();
        let mut versions = HashMap::<String, u64>::new();
        let mut after = 0;
        loop {
            let page = store.read_all(after, 10_000).await.unwrap();
            let Some(last) = page.last() else { break };
            after = last.position;
            for e in page {
                let version = versions.entry(e.stream.clone()).or_default();
                *version += 1;
                assert_eq!(
                    e.version, *version,
                    "stream {}: version gap at position {}",
                    e.stream, e.position
                );
                assert_eq!(
                    e.position,
                    stored.len() as u64 + 1,
                    "position gap before {}",
                    e.position
                );
                assert!(
                    stored.insert(e.event_id),
                    "event_id {} stored twice",
                    e.event_id
                );
            }
        }
        assert_eq!(stored.len() as u64, head, "read_all must reach the head");
        let missing: Vec<_> = acked.iter().filter(|id| !stored.contains(id)).collect();
        assert!(
            missing.is_empty(),
            "{} of {} acknowledged events are lost, e.g. {}",
            missing.len(),
            acked.len(),
            missing[0]
        );
        let unique: HashSet<_> = acked.iter().collect();
        assert_eq!(
            unique.len(),
            acked.len(),
            "the child acknowledged an id twice"
        );
        eprintln!(
            "{} acknowledged, {} stored (the rest were in flight at the kill)",
            acked.len(),
            head
        );

        // Appends go on where the log stopped.
        let (stream, version) = versions
            .iter()
            .next()
            .map(|(s, v)| (s.clone(), *v))
            .expect("some stream");
        let next = store
            .append(AppendRequest {
                stream: stream.clone(),
                expected_version: ExpectedVersion::Exact(version),
                events: vec![NewEvent {
                    event_id: Uuid::new_v4(),
                    payload: b"after".to_vec(),
                    metadata: vec![],
                }],
            })
            .await
            .expect("append after reopen");
        assert_eq!(
            (next.positions, next.version),
            (vec![head + 1], version + 1)
        );
    });
}

/// The child's work: appends until killed (or, if orphaned, until its own deadline).
fn child_appender(dir: &Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store: Arc<dyn EventStore> = Arc::new(SqliteStore::open(dir).expect("open"));
        let stdout = Arc::new(std::sync::Mutex::new(std::io::stdout()));
        let tasks: Vec<_> = (0..APPENDERS)
            .map(|task| {
                let store = Arc::clone(&store);
                let stdout = Arc::clone(&stdout);
                tokio::spawn(async move { append_forever(task, &*store, &stdout).await })
            })
            .collect();
        for task in tasks {
            task.await.expect("appender task");
        }
    });
}

async fn append_forever(
    task: u64,
    store: &dyn EventStore,
    stdout: &std::sync::Mutex<std::io::Stdout>,
) {
    // Each task owns its streams, so it can track their versions and use Exact.
    let mut versions = vec![0u64; STREAMS_PER_APPENDER as usize];
    let mut rng = task.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut round = 0u64;
    while Instant::now() < deadline {
        round += 1;
        // Batches from 1 to 200 requests, each of 1 to 3 events.
        let requests: Vec<_> = (0..1 + next(&mut rng) % 200)
            .map(|_| {
                let stream = next(&mut rng) % STREAMS_PER_APPENDER;
                let events = (0..1 + next(&mut rng) % 3)
                    .map(|_| NewEvent {
                        event_id: Uuid::new_v4(),
                        payload: vec![b'x'; 50 + (next(&mut rng) % 300) as usize],
                        metadata: format!("task {task} round {round}").into_bytes(),
                    })
                    .collect();
                (stream, events)
            })
            .collect();
        // One request per stream per batch keeps the expected versions simple to predict.
        let mut used = HashSet::new();
        let requests: Vec<_> = requests
            .into_iter()
            .filter(|(stream, _)| used.insert(*stream))
            .map(|(stream, events)| AppendRequest {
                stream: format!("t{task}-s{stream}"),
                expected_version: ExpectedVersion::Exact(versions[stream as usize]),
                events,
            })
            .collect();
        let results = store.append_batch(requests.clone()).await;
        let mut out = String::new();
        for (request, result) in requests.iter().zip(results) {
            let appended = result.unwrap_or_else(|e| panic!("child append failed: {e}"));
            let stream: usize = request.stream.rsplit('s').next().unwrap().parse().unwrap();
            versions[stream] = appended.version;
            for event in &request.events {
                out.push_str(ACK);
                out.push_str(&event.event_id.to_string());
                out.push('\n');
            }
        }
        let mut stdout = stdout.lock().unwrap();
        stdout.write_all(out.as_bytes()).expect("write acks");
        stdout.flush().expect("flush acks");
    }
}

/// SplitMix64.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
