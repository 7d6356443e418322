//! Crash safety of `gryning up` through its gRPC services, on the embedded store and on a
//! three-node JetStream cluster with three replicas.
//!
//! Clients record without pause — unary police and prosecution calls (a valid case lifecycle per
//! client) and a bulk `EventLog.Append` client streaming batches slowly enough that the server
//! records each in several steps — while the harness kills `gryning up` with SIGKILL at random
//! moments (a seeded RNG; `GRYNING_CRASH_SEED` replays a run's choices), at least
//! [`MIN_KILLS`] times, and restarts it on the same data directory. Every request that was not
//! acknowledged is resent with the same event ids until it is.
//!
//! After each restart, before anything is resent, the harness reads what the store holds and
//! checks the contract's promise for an interrupted call: a unary call's event is stored whole
//! or not at all; an interrupted `Append` has stored, of each stream it wrote, a prefix of that
//! stream's events in submission order (on the embedded store: a prefix of the whole request),
//! every stored event byte-identical to what was sent. The resend is then answered as the
//! contract says: a stored event comes back as a duplicate at its stored position.
//!
//! Before the first kill the harness records a few cases of [`PUBLISHED_QUARTER`] and publishes
//! the quarter (`Insight.Publish` as admin); the unary clients then keep recording into it.
//! After every restart every published table of it (`GetTable` with `published`, both `by`
//! and both periods) must be byte-identical to what it was right after the publication, and
//! the publication must be stored once, where `Publish` said.
//!
//! At the end every event sent is stored exactly once, no event is stored that was never sent,
//! each stream's versions run 1, 2, 3…, each acknowledged position is where the event is, the
//! live projections after the last restart equal the tables of an offline `gryning rebuild`,
//! and the live table of the published quarter has moved on while its publication has not.
//!
//! On JetStream the harness also kills and restarts nats-server members one at a time (every
//! other time the stream's leader), so the stream keeps its quorum.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/up.rs"]
mod up;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gryning_proto::pb;
use gryning_proto::pb::event_log_client::EventLogClient;
use gryning_proto::pb::insight_client::InsightClient;
use gryning_proto::pb::police_client::PoliceClient;
use gryning_proto::pb::prosecution_client::ProsecutionClient;
use gryning_store_nats::testkit;
use harness::{Bearer, Server, DEADLINE};
use prost::Message;
use tokio::sync::watch;
use tonic::transport::Channel;
use up::{reason, Intercepted, BIN};

/// A run fails with fewer kills of `gryning up` than this.
const MIN_KILLS: usize = 20;
/// A run stops after this many kills of `gryning up`…
const TARGET_KILLS: usize = 24;
/// …or once it has run this long, whichever comes first: the embedded store restarts in a
/// fraction of a second, `gryning up` on JetStream in a second or two (it reads the log into
/// its index at start), and nats-server members are restarting meanwhile. Both runs together
/// stay under 150 s.
const TIME_CAP_SQLITE: Duration = Duration::from_secs(40);
const TIME_CAP_NATS: Duration = Duration::from_secs(95);
/// The random delay before each kill, in milliseconds.
const KILL_AFTER_MS: std::ops::RangeInclusive<u64> = 20..=400;
/// Concurrent unary clients (police and prosecution calls, each its own cases).
const UNARY_CLIENTS: usize = 3;
/// Cases per bulk `Append`; each has six events, sent round by round (all openings, then all
/// first crimes, …), one round per chunk.
const BULK_CASES: usize = 16;
/// The pause between chunks of a bulk `Append`: longer than the server's wait for more events
/// (5 ms), so that the server records a stream in several steps and a kill can fall between.
const CHUNK_PAUSE: Duration = Duration::from_millis(8);
/// JetStream members killed and restarted, at least (half of them the stream's leader).
const MIN_NODE_KILLS: usize = 4;

const TABLES: [&str; 4] = ["case-flow", "clearance", "care", "progress"];

/// The quarter published before the kills start: an ended quarter the unary clients keep
/// recording into (their cases are dated January to November 2020).
const PUBLISHED_QUARTER: &str = "2020-Q1";
/// Cases of the published quarter recorded before the publication.
const CASES_BEFORE_PUBLISHING: usize = 6;

#[derive(Clone)]
enum Backend {
    Sqlite,
    /// The cluster's client URLs, comma-separated.
    Nats(String),
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Nats(_) => "jetstream",
        }
    }

    /// The global options naming the store (before the subcommand).
    fn args<'a>(&'a self, data: &'a str) -> Vec<&'a str> {
        match self {
            Backend::Sqlite => vec!["--data-dir", data],
            Backend::Nats(urls) => vec!["--data-dir", data, "--store", urls],
        }
    }

    fn env(&self) -> Vec<(&'static str, &'static str)> {
        match self {
            Backend::Sqlite => vec![],
            Backend::Nats(_) => vec![("GRYNING_NATS_REPLICAS", "3")],
        }
    }

    /// Whether an event of a request that was not acknowledged can still be stored after the
    /// harness looked (JetStream: a publish of the killed process that its stream's leader had
    /// proposed is committed by the group later; an ack lost in an election).
    fn may_store_late(&self) -> bool {
        matches!(self, Backend::Nats(_))
    }
}

fn start(backend: &Backend, dir: &Path) -> Server {
    let data = dir.join("data");
    let data = data.to_str().unwrap();
    let mut args = backend.args(data);
    args.extend(["up", "--listen", "127.0.0.1:0"]);
    let env = backend.env();
    Server::start(
        BIN,
        &args,
        &env,
        &dir.join(format!("up-{}.log", uuid::Uuid::new_v4())),
    )
}

/// Runs the `gryning` command on the backend, asserting success; its standard output.
fn offline(backend: &Backend, dir: &Path, command: &[&str]) -> String {
    let data = dir.join("data");
    let data = data.to_str().unwrap();
    let mut args = backend.args(data);
    args.extend_from_slice(command);
    let out = std::process::Command::new(BIN)
        .args(&args)
        .envs(backend.env())
        .env_remove("GRYNING_CONFIG")
        .env_remove("GRYNING_STORE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gryning {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn channel(url: &str) -> Channel {
    // Lazy: a client reconnecting to a server that is killed meanwhile sees the failure in its
    // next call, like any other.
    Channel::from_shared(url.to_string())
        .unwrap()
        .connect_lazy()
}

fn bearer(token: &str) -> Bearer {
    Bearer(Some(token.to_string()))
}

fn id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn event(case: &str, occurred_on: String, body: pb::event::Body) -> pb::Event {
    pb::Event {
        event_id: id(),
        occurred_on,
        subject: Some(pb::event::Subject::CaseId(case.to_string())),
        body: Some(body),
    }
}

/// A case's six events in lifecycle order: opened, two crimes reported, referred, the first
/// crime decided by the prosecutor, the investigation of the second closed.
fn case_events(year: u32, k: usize) -> Vec<pb::Event> {
    use pb::event::Body as B;
    let case = id();
    let (first, second) = (id(), id());
    let code = ["9365", "4024", "9381", "0418"][k % 4];
    let month = 1 + (k % 9) as u32;
    let day = 1 + (k % 20) as u32;
    let on = |m: u32| format!("{year}-{m:02}-{day:02}");
    let crime = |crime_id: &String, gender: usize| {
        B::CrimeReported(pb::CrimeReported {
            crime_id: crime_id.clone(),
            crime_code: code.into(),
            victim_gender: 1 + (gender % 3) as i32,
            victim_age_group: 1 + (k % 3) as i32,
        })
    };
    vec![
        event(
            &case,
            on(month),
            B::CaseOpened(pb::CaseOpened {
                lead_crime_code: code.into(),
                police_region: "Polisregion Syd".into(),
                local_police_area: "Malmö".into(),
            }),
        ),
        event(&case, on(month), crime(&first, k)),
        event(&case, on(month), crime(&second, k + 1)),
        event(
            &case,
            on(month + 1),
            B::CaseReferredToProsecutor(pb::CaseReferredToProsecutor {}),
        ),
        event(
            &case,
            on(month + 2),
            B::ProsecutionDecided(pb::ProsecutionDecided {
                crime_id: first,
                decision: 1 + (k % 4) as i32,
            }),
        ),
        event(
            &case,
            on(month + 2),
            B::InvestigationClosed(pb::InvestigationClosed {
                crime_ids: vec![second],
                reason: 1 + (k % 4) as i32,
            }),
        ),
    ]
}

fn case_of(e: &pb::Event) -> &str {
    match &e.subject {
        Some(pb::event::Subject::CaseId(case)) => case,
        other => panic!("not a case event: {other:?}"),
    }
}

/// The role a unary call of this event goes through.
fn unary_role(e: &pb::Event) -> &'static str {
    match e.body {
        Some(pb::event::Body::ProsecutionDecided(_)) => "prosecution",
        _ => "police",
    }
}

/// What the harness found stored of a request that was not acknowledged, checked when the
/// request is resent.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// A unary call: its event stored at this position, or not stored.
    Unary(Option<u64>),
    /// A bulk append: this many of its events stored.
    Bulk(usize),
}

#[derive(Default)]
struct ClientState {
    /// The request sent and not yet acknowledged: its events in submission order.
    in_flight: Option<Vec<pb::Event>>,
    /// The server (by start number) whose failure the client is waiting out.
    parked_in: Option<u64>,
    /// Set by the harness after a restart, taken by the client when it resends.
    expect: Option<Expect>,
}

struct Sent {
    event: pb::Event,
    agency: &'static str,
}

#[derive(Default)]
struct Counts {
    unary_acked: AtomicUsize,
    bulk_acked: AtomicUsize,
    requests_resent: AtomicUsize,
    events_resent: AtomicUsize,
    /// Resends answered as duplicates of events stored before the harness looked.
    duplicates_answered: AtomicUsize,
    /// Of those, events the harness found not stored that were stored late (JetStream).
    stored_late: AtomicUsize,
}

struct Shared {
    backend: Backend,
    tokens: HashMap<String, String>,
    /// The running server: its start number and URL.
    current: watch::Sender<(u64, String)>,
    /// The start number of the last server the harness killed (set before the kill), so that a
    /// client can tell a killed server from a live one that failed its call.
    killed: AtomicU64,
    clients: Mutex<Vec<ClientState>>,
    sent: Mutex<HashMap<String, Sent>>,
    /// Acknowledged unary calls: the event id and the `Recorded` reply.
    unary_acks: Mutex<Vec<(String, pb::Recorded)>>,
    /// Acknowledged bulk appends: their event ids in submission order.
    bulk_acks: Mutex<Vec<Vec<String>>>,
    stop: AtomicBool,
    counts: Counts,
}

/// How a call failed, as the client sees it.
enum Failure {
    /// The server answered that the store is unavailable: resend to the same server.
    StoreUnavailable,
    /// The connection broke (no answer from the service): wait for the next server, resend.
    Broken,
}

fn classify(shared: &Shared, epoch: u64, status: &tonic::Status) -> Failure {
    match reason(status).as_str() {
        "store-unavailable" => Failure::StoreUnavailable,
        "" => {
            assert!(
                shared.killed.load(Ordering::SeqCst) >= epoch,
                "a call to a server that was not killed failed: {status:?}"
            );
            Failure::Broken
        }
        other => panic!("a valid request was refused ({other}): {status:?}"),
    }
}

impl Shared {
    fn set_in_flight(&self, client: usize, events: &[pb::Event], agency: &'static str) {
        let mut sent = self.sent.lock().unwrap();
        for e in events {
            let earlier = sent.insert(
                e.event_id.clone(),
                Sent {
                    event: e.clone(),
                    agency,
                },
            );
            assert!(earlier.is_none(), "event ids are fresh");
        }
        drop(sent);
        self.clients.lock().unwrap()[client].in_flight = Some(events.to_vec());
    }

    fn acknowledged(&self, client: usize) {
        self.clients.lock().unwrap()[client].in_flight = None;
    }

    /// Waits out the killed server `epoch`: the next server's start number and URL, and what
    /// the harness found stored of the request in flight.
    async fn park(
        &self,
        client: usize,
        epoch: u64,
        current: &mut watch::Receiver<(u64, String)>,
    ) -> (u64, String, Option<Expect>) {
        self.clients.lock().unwrap()[client].parked_in = Some(epoch);
        let next = tokio::time::timeout(DEADLINE, current.wait_for(|(e, _)| *e > epoch))
            .await
            .unwrap_or_else(|_| {
                panic!("client {client}: no server after {epoch} within {DEADLINE:?}")
            })
            .expect("the harness is running")
            .clone();
        let expect = self.clients.lock().unwrap()[client].expect.take();
        self.counts.requests_resent.fetch_add(1, Ordering::SeqCst);
        (next.0, next.1, expect)
    }
}

async fn send_unary(
    police: &mut PoliceClient<Intercepted>,
    prosecution: &mut ProsecutionClient<Intercepted>,
    e: &pb::Event,
) -> Result<pb::Recorded, tonic::Status> {
    use pb::event::Body as B;
    let (event_id, occurred_on, case_id) = (
        e.event_id.clone(),
        e.occurred_on.clone(),
        case_of(e).to_string(),
    );
    let reply = match e.body.clone().expect("a body") {
        B::CaseOpened(b) => {
            police
                .open_case(pb::OpenCaseRequest {
                    event_id,
                    occurred_on,
                    case_id,
                    case_opened: Some(b),
                })
                .await
        }
        B::CrimeReported(b) => {
            police
                .report_crime(pb::ReportCrimeRequest {
                    event_id,
                    occurred_on,
                    case_id,
                    crime_reported: Some(b),
                })
                .await
        }
        B::CaseReferredToProsecutor(_) => {
            police
                .refer_to_prosecutor(pb::ReferToProsecutorRequest {
                    event_id,
                    occurred_on,
                    case_id,
                })
                .await
        }
        B::InvestigationClosed(b) => {
            police
                .close_investigation(pb::CloseInvestigationRequest {
                    event_id,
                    occurred_on,
                    case_id,
                    investigation_closed: Some(b),
                })
                .await
        }
        B::ProsecutionDecided(b) => {
            prosecution
                .decide_prosecution(pb::DecideProsecutionRequest {
                    event_id,
                    occurred_on,
                    case_id,
                    prosecution_decided: Some(b),
                })
                .await
        }
        other => panic!("no unary call in this workload records {other:?}"),
    };
    reply.map(tonic::Response::into_inner)
}

/// A unary client: case after case, each event by its own call, each call resent until it is
/// acknowledged.
async fn unary_client(shared: Arc<Shared>, client: usize) {
    let mut current = shared.current.subscribe();
    let (mut epoch, url) = current.borrow().clone();
    let connect = |url: &str| {
        let ch = channel(url);
        (
            PoliceClient::with_interceptor(ch.clone(), bearer(&shared.tokens["police"])),
            ProsecutionClient::with_interceptor(ch, bearer(&shared.tokens["prosecution"])),
        )
    };
    let (mut police, mut prosecution) = connect(&url);
    let mut k = client;
    while !shared.stop.load(Ordering::SeqCst) {
        for e in case_events(2020, k) {
            shared.set_in_flight(client, std::slice::from_ref(&e), unary_role(&e));
            let mut expect: Option<Expect> = None;
            let mut resent = false;
            let recorded = loop {
                match send_unary(&mut police, &mut prosecution, &e).await {
                    Ok(recorded) => break recorded,
                    Err(status) => match classify(&shared, epoch, &status) {
                        Failure::StoreUnavailable => {
                            expect = None;
                            resent = true;
                            shared.counts.requests_resent.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Failure::Broken => {
                            let (next, url, found) = shared.park(client, epoch, &mut current).await;
                            epoch = next;
                            expect = found;
                            resent = true;
                            (police, prosecution) = connect(&url);
                        }
                    },
                }
            };
            assert_eq!(recorded.event_id, e.event_id);
            if resent {
                shared.counts.events_resent.fetch_add(1, Ordering::SeqCst);
            }
            match expect {
                Some(Expect::Unary(Some(position))) => {
                    assert!(
                        recorded.duplicate && recorded.position == position && recorded.version == 0,
                        "a resent call whose event was stored at {position} is a duplicate of it: {recorded:?}"
                    );
                    shared
                        .counts
                        .duplicates_answered
                        .fetch_add(1, Ordering::SeqCst);
                }
                Some(Expect::Unary(None)) if recorded.duplicate => {
                    assert!(
                        shared.backend.may_store_late(),
                        "a resent call whose event was not stored is recorded now, not a duplicate: {recorded:?}"
                    );
                    shared.counts.stored_late.fetch_add(1, Ordering::SeqCst);
                }
                Some(Expect::Bulk(_)) => unreachable!("a unary call"),
                _ if !resent => assert!(!recorded.duplicate, "a first call is no duplicate"),
                _ => {}
            }
            shared.acknowledged(client);
            shared
                .unary_acks
                .lock()
                .unwrap()
                .push((e.event_id.clone(), recorded));
            shared.counts.unary_acked.fetch_add(1, Ordering::SeqCst);
        }
        k += UNARY_CLIENTS;
    }
}

/// One bulk `Append` of `events`, streamed in chunks of `chunk` events with a pause between.
async fn append_slowly(
    log: &mut EventLogClient<Intercepted>,
    events: Vec<pb::Event>,
    chunk: usize,
) -> Result<pb::AppendSummary, tonic::Status> {
    let (tx, rx) = tokio::sync::mpsc::channel(events.len().max(1));
    tokio::spawn(async move {
        for (i, e) in events.into_iter().enumerate() {
            if i > 0 && i % chunk == 0 {
                tokio::time::sleep(CHUNK_PAUSE).await;
            }
            if tx.send(e).await.is_err() {
                return; // the call ended
            }
        }
    });
    log.append(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map(tonic::Response::into_inner)
}

/// The bulk client: batches of whole cases, their events interleaved round by round, each
/// batch resent whole (same event ids) until a summary acknowledges every event.
async fn bulk_client(shared: Arc<Shared>, client: usize) {
    let mut current = shared.current.subscribe();
    let (mut epoch, url) = current.borrow().clone();
    let connect =
        |url: &str| EventLogClient::with_interceptor(channel(url), bearer(&shared.tokens["admin"]));
    let mut log = connect(&url);
    let mut k = 0;
    while !shared.stop.load(Ordering::SeqCst) {
        let cases: Vec<Vec<pb::Event>> =
            (k..k + BULK_CASES).map(|k| case_events(2021, k)).collect();
        k += BULK_CASES;
        let batch: Vec<pb::Event> = (0..6)
            .flat_map(|round| cases.iter().map(move |c| c[round].clone()))
            .collect();
        shared.set_in_flight(client, &batch, "admin");
        let mut expect: Option<Expect> = None;
        let mut resent = false;
        let summary = loop {
            match append_slowly(&mut log, batch.clone(), BULK_CASES).await {
                Ok(summary) if summary.rejected == 0 => break summary,
                Ok(summary) => {
                    // Only the store being out of reach may refuse a valid event, and the
                    // later events of its case in the call with it (so that a case stores a
                    // prefix of what the call sent for it); resend.
                    assert!(
                        summary
                            .rejections
                            .iter()
                            .all(|r| r.reason == "store-unavailable"),
                        "valid events were rejected: {summary:?}"
                    );
                    expect = None;
                    resent = true;
                    shared.counts.requests_resent.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(status) => match classify(&shared, epoch, &status) {
                    Failure::StoreUnavailable => {
                        expect = None;
                        resent = true;
                        shared.counts.requests_resent.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Failure::Broken => {
                        let (next, url, found) = shared.park(client, epoch, &mut current).await;
                        epoch = next;
                        expect = found;
                        resent = true;
                        log = connect(&url);
                    }
                },
            }
        };
        let n = batch.len() as u64;
        assert_eq!(
            summary.accepted + summary.duplicates,
            n,
            "every event of the batch is acknowledged: {summary:?}"
        );
        if resent {
            shared
                .counts
                .events_resent
                .fetch_add(batch.len(), Ordering::SeqCst);
        }
        match expect {
            Some(Expect::Bulk(stored)) => {
                let stored = stored as u64;
                if shared.backend.may_store_late() {
                    assert!(
                        summary.duplicates >= stored,
                        "{stored} stored before the resend: {summary:?}"
                    );
                } else {
                    assert_eq!(
                        summary.duplicates, stored,
                        "the events stored before the resend are its duplicates: {summary:?}"
                    );
                }
                shared
                    .counts
                    .duplicates_answered
                    .fetch_add(stored as usize, Ordering::SeqCst);
                shared
                    .counts
                    .stored_late
                    .fetch_add((summary.duplicates - stored) as usize, Ordering::SeqCst);
            }
            Some(Expect::Unary(_)) => unreachable!("a bulk append"),
            None if !resent => {
                assert_eq!(summary.duplicates, 0, "a first append has no duplicates")
            }
            None => {}
        }
        shared.acknowledged(client);
        shared
            .bulk_acks
            .lock()
            .unwrap()
            .push(batch.iter().map(|e| e.event_id.clone()).collect());
        shared.counts.bulk_acked.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Clone, Debug)]
struct Stored {
    position: u64,
    stream: String,
    version: u64,
}

/// What the harness has read of the log, checked as it is read: positions increase (and run
/// 1, 2, 3… on the embedded store), each stream's versions run 1, 2, 3…, each id occurs once,
/// and each stored event was sent, byte for byte, by the role that sent it.
#[derive(Default)]
struct Mirror {
    head: u64,
    by_id: HashMap<String, Stored>,
    versions: HashMap<String, u64>,
    /// The positions of the publication events read (the only events no client sent).
    publications: Vec<u64>,
}

async fn read_page(
    log: &mut EventLogClient<Intercepted>,
    after: u64,
) -> Result<Vec<pb::RecordedEvent>, tonic::Status> {
    let mut read = log
        .read(pb::ReadRequest {
            after,
            limit: 10_000,
        })
        .await?
        .into_inner();
    let mut page = Vec::new();
    while let Some(e) = read.message().await? {
        page.push(e);
    }
    Ok(page)
}

impl Mirror {
    async fn catch_up(&mut self, shared: &Shared, url: &str) {
        let mut log =
            EventLogClient::with_interceptor(channel(url), bearer(&shared.tokens["auditor"]));
        let started = Instant::now();
        loop {
            // A read may meet the store out of reach (a JetStream member just killed): the
            // harness reads again, like any client.
            let page = match read_page(&mut log, self.head).await {
                Ok(page) => page,
                Err(status) if reason(&status) == "store-unavailable" => {
                    assert!(
                        started.elapsed() < DEADLINE,
                        "the log stayed unreadable: {status:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Err(status) => panic!("read the log: {status:?}"),
            };
            let sent = shared.sent.lock().unwrap();
            for r in &page {
                if matches!(shared.backend, Backend::Sqlite) {
                    assert_eq!(r.position, self.head + 1, "positions run 1, 2, 3…");
                } else {
                    assert!(r.position > self.head, "positions increase");
                }
                let e = r.event.as_ref().expect("an event");
                if r.stream == format!("publication-{PUBLISHED_QUARTER}") {
                    assert!(
                        matches!(e.body, Some(pb::event::Body::TablesPublished(_))),
                        "position {}: a publication stream holds publications",
                        r.position
                    );
                    assert_eq!(r.version, 1, "the quarter is published once");
                    self.publications.push(r.position);
                    self.head = r.position;
                    continue;
                }
                let Some(s) = sent.get(&e.event_id) else {
                    panic!(
                        "position {}: event {} was never sent",
                        r.position, e.event_id
                    );
                };
                assert_eq!(
                    e.encode_to_vec(),
                    s.event.encode_to_vec(),
                    "position {}: the stored event is what was sent",
                    r.position
                );
                assert_eq!(
                    r.metadata.as_ref().map(|m| m.agency.as_str()),
                    Some(s.agency),
                    "position {}: recorded by the role that sent it",
                    r.position
                );
                assert_eq!(r.stream, format!("case-{}", case_of(e)));
                let version = self.versions.entry(r.stream.clone()).or_insert(0);
                *version += 1;
                assert_eq!(
                    r.version, *version,
                    "position {}: stream {} versions run 1, 2, 3…",
                    r.position, r.stream
                );
                let earlier = self.by_id.insert(
                    e.event_id.clone(),
                    Stored {
                        position: r.position,
                        stream: r.stream.clone(),
                        version: r.version,
                    },
                );
                assert!(
                    earlier.is_none(),
                    "event {} is stored twice: at {:?} and {}",
                    e.event_id,
                    earlier.map(|s| s.position),
                    r.position
                );
                self.head = r.position;
            }
            if page.len() < 10_000 {
                return;
            }
        }
    }

    /// Checks what an interrupted request left stored, before it is resent; what to expect of
    /// the resend. `whole_prefix`: the store keeps a prefix of the whole request (embedded
    /// store), not only of each stream's part of it.
    fn interrupted(
        &self,
        events: &[pb::Event],
        whole_prefix: bool,
        stats: &mut KillStats,
    ) -> Expect {
        let stored: Vec<Option<&Stored>> =
            events.iter().map(|e| self.by_id.get(&e.event_id)).collect();
        let count = stored.iter().flatten().count();
        if events.len() == 1 {
            stats.unary_interrupted += 1;
            if count == 1 {
                stats.unary_stored_unacknowledged += 1;
            }
            return Expect::Unary(stored[0].map(|s| s.position));
        }
        stats.bulk_interrupted += 1;
        if count > 0 && count < events.len() {
            stats.bulk_partly_stored += 1;
        } else if count == events.len() {
            stats.bulk_stored_unacknowledged += 1;
        }
        // Per stream: the stored events are a prefix of that stream's events in the request,
        // at increasing positions.
        let mut seen_gap: HashSet<&str> = HashSet::new();
        let mut last: HashMap<&str, u64> = HashMap::new();
        for (e, s) in events.iter().zip(&stored) {
            let case = case_of(e);
            match s {
                None => {
                    seen_gap.insert(case);
                }
                Some(s) => {
                    assert!(
                        !seen_gap.contains(case),
                        "case {case}: event {} is stored though an earlier event of its stream in the same interrupted append is not",
                        e.event_id
                    );
                    if let Some(before) = last.insert(case, s.position) {
                        assert!(
                            before < s.position,
                            "case {case}: stored out of submission order"
                        );
                    }
                }
            }
        }
        if whole_prefix {
            assert!(
                stored[..count].iter().all(Option::is_some),
                "an interrupted append stored a prefix of its events: {count} stored, not the first {count}"
            );
        }
        Expect::Bulk(count)
    }
}

#[derive(Default)]
struct KillStats {
    unary_interrupted: usize,
    unary_stored_unacknowledged: usize,
    bulk_interrupted: usize,
    bulk_partly_stored: usize,
    bulk_stored_unacknowledged: usize,
}

/// The JetStream cluster and the chaos the harness adds to it.
struct Cluster {
    servers: Arc<Mutex<Vec<testkit::Server>>>,
    monitor: gryning_store_nats::NatsStore,
}

fn nats_options() -> gryning_store_nats::Options {
    gryning_store_nats::Options {
        replicas: 3,
        request_timeout: Duration::from_secs(2),
        retry_for: Duration::from_secs(30),
        ..Default::default()
    }
}

impl Cluster {
    async fn start(dir: &Path) -> (Cluster, String) {
        let servers = testkit::Server::cluster(dir);
        let urls: Vec<String> = servers.iter().map(testkit::Server::url).collect();
        let urls = urls.join(",");
        // Creates the R3 stream, so that `gryning up` finds it.
        let monitor = gryning_store_nats::NatsStore::connect(&urls, nats_options())
            .await
            .expect("connect to the cluster and create the R3 stream");
        let cluster = Cluster {
            servers: Arc::new(Mutex::new(servers)),
            monitor,
        };
        cluster.healthy().await;
        (cluster, urls)
    }

    /// The stream's leader and whether every replica is current and online.
    async fn state(&self) -> Option<(String, bool)> {
        let info = self.monitor.stream_info().await.ok()?;
        let cluster = info.cluster?;
        let leader = cluster.leader?;
        let current =
            cluster.replicas.len() == 2 && cluster.replicas.iter().all(|p| p.current && !p.offline);
        Some((leader, current))
    }

    /// Waits until the stream has a leader and both other replicas are current.
    async fn healthy(&self) -> String {
        let started = Instant::now();
        loop {
            if let Some((leader, true)) = self.state().await {
                return leader;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "the R3 stream did not recover within {DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills and restarts members one at a time until `stop`, every other time the leader;
    /// returns how many members were killed and how many of them were the leader.
    async fn chaos(&self, seed: u64, stop: &AtomicBool, count: &AtomicUsize) -> (usize, usize) {
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x6e61_7473);
        let (mut kills, mut leaders) = (0, 0);
        while !stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(rng.u64(200..=1200))).await;
            let leader = self.healthy().await;
            let names: Vec<String> = self
                .servers
                .lock()
                .unwrap()
                .iter()
                .map(|s| s.name.clone())
                .collect();
            let target = if kills % 2 == 0 {
                names
                    .iter()
                    .position(|n| *n == leader)
                    .expect("the leader is a member")
            } else {
                let others: Vec<usize> = (0..3).filter(|&i| names[i] != leader).collect();
                others[rng.usize(..others.len())]
            };
            let servers = Arc::clone(&self.servers);
            tokio::task::spawn_blocking(move || servers.lock().unwrap()[target].kill())
                .await
                .unwrap();
            kills += 1;
            if names[target] == leader {
                leaders += 1;
            }
            count.store(kills, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(rng.u64(100..=1000))).await;
            let servers = Arc::clone(&self.servers);
            tokio::task::spawn_blocking(move || servers.lock().unwrap()[target].restart())
                .await
                .unwrap();
            self.healthy().await;
        }
        (kills, leaders)
    }
}

fn seed() -> u64 {
    match std::env::var("GRYNING_CRASH_SEED") {
        Ok(s) => s.parse().expect("GRYNING_CRASH_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    }
}

async fn await_projections(url: &str, analyst: &str, head: u64) {
    let mut insight = InsightClient::with_interceptor(channel(url), bearer(analyst));
    let started = Instant::now();
    loop {
        let s = insight
            .status(pb::StatusRequest {})
            .await
            .expect("status")
            .into_inner();
        if s.head == head
            && s.projections
                .iter()
                .all(|p| p.position == head && p.lag == 0)
        {
            return;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "projections did not catch up with {head}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn served_tables(
    url: &str,
    analyst: &str,
) -> Vec<((&'static str, &'static str, &'static str), String)> {
    let mut insight = InsightClient::with_interceptor(channel(url), bearer(analyst));
    let mut tables = Vec::new();
    for name in TABLES {
        for by in ["code", "group"] {
            for period in ["year", "quarter"] {
                let t = insight
                    .get_table(pb::GetTableRequest {
                        name: name.into(),
                        by: by.into(),
                        period: period.into(),
                        ..Default::default()
                    })
                    .await
                    .expect("get table")
                    .into_inner();
                tables.push(((name, by, period), t.json));
            }
        }
    }
    tables
}

/// Every published table of [`PUBLISHED_QUARTER`] as `GetTable` answers it, encoded, read
/// again while the store is out of reach (a JetStream member just killed).
async fn published_tables(url: &str, analyst: &str) -> Vec<(String, Vec<u8>)> {
    let mut insight = InsightClient::with_interceptor(channel(url), bearer(analyst));
    let mut tables = Vec::new();
    for name in TABLES {
        for by in ["code", "group"] {
            for period in ["year", "quarter"] {
                let request = pb::GetTableRequest {
                    name: name.into(),
                    by: by.into(),
                    period: period.into(),
                    published: PUBLISHED_QUARTER.into(),
                    ..Default::default()
                };
                let started = Instant::now();
                let reply = loop {
                    match insight.get_table(request.clone()).await {
                        Ok(reply) => break reply.into_inner(),
                        Err(status) if reason(&status) == "store-unavailable" => {
                            assert!(
                                started.elapsed() < DEADLINE,
                                "the publication stayed unreadable: {status:?}"
                            );
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(status) => panic!("published {name} by {by} per {period}: {status:?}"),
                    }
                };
                tables.push((
                    format!("{name} by {by} per {period}"),
                    reply.encode_to_vec(),
                ));
            }
        }
    }
    tables
}

/// Records [`CASES_BEFORE_PUBLISHING`] cases of the published quarter (as admin, in one
/// `Append`, no kill yet) and publishes the quarter: the publication's position and its tables.
async fn publish_before_the_kills(shared: &Shared, url: &str) -> (u64, Vec<(String, Vec<u8>)>) {
    let events: Vec<pb::Event> = (0..CASES_BEFORE_PUBLISHING)
        // Month 1 + k % 9 with k a multiple of 9: every event dated January to March.
        .flat_map(|k| case_events(2020, 9 * k))
        .collect();
    {
        let mut sent = shared.sent.lock().unwrap();
        for e in &events {
            sent.insert(
                e.event_id.clone(),
                Sent {
                    event: e.clone(),
                    agency: "admin",
                },
            );
        }
    }
    let n = events.len() as u64;
    let mut log = EventLogClient::with_interceptor(channel(url), bearer(&shared.tokens["admin"]));
    let summary = log
        .append(tokio_stream::iter(events))
        .await
        .expect("record the cases to publish")
        .into_inner();
    assert_eq!((summary.accepted, summary.rejected), (n, 0), "{summary:?}");
    let mut insight =
        InsightClient::with_interceptor(channel(url), bearer(&shared.tokens["admin"]));
    // Published from the live projections: wait until they hold the cases.
    let started = Instant::now();
    let head = loop {
        let s = insight
            .status(pb::StatusRequest {})
            .await
            .expect("status")
            .into_inner();
        if s.head > 0 && s.projections.iter().all(|p| p.position == s.head) {
            break s.head;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "projections did not catch up: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let publication = insight
        .publish(pb::PublishRequest {
            quarter: PUBLISHED_QUARTER.into(),
            note: "before the kills".into(),
        })
        .await
        .expect("publish")
        .into_inner()
        .publication
        .expect("the publication");
    assert_eq!(
        (publication.revision, publication.computed_at),
        (1, head),
        "{publication:?}"
    );
    let tables = published_tables(url, &shared.tokens["analyst"]).await;
    assert!(
        tables.iter().any(|(_, t)| {
            pb::TableReply::decode(t.as_slice()).is_ok_and(|t| !t.rows.is_empty())
        }),
        "the published quarter has rows"
    );
    (publication.recorded_at_position, tables)
}

/// The published tables are what they were right after the publication, byte for byte.
async fn check_published(url: &str, analyst: &str, published: &[(String, Vec<u8>)], after: &str) {
    let now = published_tables(url, analyst).await;
    for ((what, then), (_, now)) in published.iter().zip(&now) {
        assert!(
            then == now,
            "{after}: the published {PUBLISHED_QUARTER} {what} changed:\n{:?}\n{:?}",
            pb::TableReply::decode(then.as_slice()),
            pb::TableReply::decode(now.as_slice())
        );
    }
}

async fn run(backend: Backend, dir: &Path, cluster: Option<&Cluster>) {
    let seed = seed();
    let name = backend.name();
    println!("{name}: seed {seed} (replay the harness's choices with GRYNING_CRASH_SEED={seed})");
    let mut rng = fastrand::Rng::with_seed(seed);
    let lock_file = dir.join("data").join(gryning_store::sqlite::LOCK_FILE);
    let whole_prefix = matches!(backend, Backend::Sqlite);
    let time_cap = if whole_prefix {
        TIME_CAP_SQLITE
    } else {
        TIME_CAP_NATS
    };

    // Servers are numbered by start, from 1; `killed` 0 means none was killed yet.
    let mut epoch = 1u64;
    let mut server = start(&backend, dir);
    let tokens = server.tokens.clone();
    assert!(!tokens.is_empty(), "the first start issues tokens");
    let shared = Arc::new(Shared {
        backend: backend.clone(),
        tokens,
        current: watch::Sender::new((epoch, server.url())),
        killed: AtomicU64::new(0),
        clients: Mutex::new(
            (0..=UNARY_CLIENTS)
                .map(|_| ClientState::default())
                .collect(),
        ),
        sent: Mutex::new(HashMap::new()),
        unary_acks: Mutex::new(Vec::new()),
        bulk_acks: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
        counts: Counts::default(),
    });
    let (publication_at, published) = publish_before_the_kills(&shared, &server.url()).await;
    let analyst = shared.tokens["analyst"].clone();
    let mut published_checks = 0usize;
    let mut tasks: Vec<tokio::task::JoinHandle<()>> = (0..UNARY_CLIENTS)
        .map(|c| tokio::spawn(unary_client(Arc::clone(&shared), c)))
        .collect();
    tasks.push(tokio::spawn(bulk_client(
        Arc::clone(&shared),
        UNARY_CLIENTS,
    )));
    let clients_alive = |tasks: &[tokio::task::JoinHandle<()>]| {
        for t in tasks {
            assert!(
                !t.is_finished(),
                "a client stopped early (see its panic above)"
            );
        }
    };

    let chaos_stop = AtomicBool::new(false);
    let node_kills = AtomicUsize::new(0);
    let mut mirror = Mirror::default();
    let mut stats = KillStats::default();
    let mut kills = 0usize;
    let started = Instant::now();
    let (chaos, ()) = tokio::join!(
        async {
            let cluster = cluster?;
            Some(cluster.chaos(seed, &chaos_stop, &node_kills).await)
        },
        async {
            let enough = |kills: usize| {
                kills >= TARGET_KILLS
                    && (cluster.is_none() || node_kills.load(Ordering::SeqCst) >= MIN_NODE_KILLS)
            };
            while !enough(kills) && started.elapsed() < time_cap {
                tokio::time::sleep(Duration::from_millis(rng.u64(KILL_AFTER_MS))).await;
                clients_alive(&tasks);
                assert!(
                    server.child.try_wait().unwrap().is_none(),
                    "gryning up exited on its own; log:\n{}",
                    std::fs::read_to_string(&server.log).unwrap_or_default()
                );
                shared.killed.store(epoch, Ordering::SeqCst);
                server.child.kill().expect("SIGKILL gryning up"); // Child::kill sends SIGKILL
                server.child.wait().unwrap();
                kills += 1;
                // Wait until every client's call has failed (or was answered just before).
                let waited = Instant::now();
                while !shared
                    .clients
                    .lock()
                    .unwrap()
                    .iter()
                    .all(|c| c.parked_in == Some(epoch))
                {
                    clients_alive(&tasks);
                    assert!(
                        waited.elapsed() < DEADLINE,
                        "clients did not notice the kill"
                    );
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                server = start(&backend, dir);
                if whole_prefix {
                    // The kernel released the killed owner's lock: the new process holds it.
                    assert_eq!(
                        std::fs::read_to_string(&lock_file).unwrap().trim(),
                        server.child.id().to_string(),
                        "the lock file names the new owner"
                    );
                }
                // What the interrupted requests left stored, before anything is resent.
                mirror.catch_up(&shared, &server.url()).await;
                for state in shared.clients.lock().unwrap().iter_mut() {
                    state.expect = state
                        .in_flight
                        .as_ref()
                        .map(|events| mirror.interrupted(events, whole_prefix, &mut stats));
                }
                epoch += 1;
                shared.current.send_replace((epoch, server.url()));
                // Under the resumed load: the publication as it was recorded.
                assert_eq!(
                    mirror.publications,
                    [publication_at],
                    "the publication, once"
                );
                check_published(
                    &server.url(),
                    &analyst,
                    &published,
                    &format!("after kill {kills}"),
                )
                .await;
                published_checks += 1;
            }
            chaos_stop.store(true, Ordering::SeqCst);
        }
    );
    assert!(
        kills >= MIN_KILLS,
        "{name}: only {kills} kills of gryning up within {time_cap:?}"
    );
    if let Some((node_kills, leaders)) = chaos {
        assert!(
            node_kills >= MIN_NODE_KILLS / 2 && leaders >= 1,
            "{name}: only {node_kills} nats-server kills ({leaders} of the leader)"
        );
        println!("{name}: killed and restarted {node_kills} nats-server members, {leaders} of them the stream's leader");
    }

    // Let every client finish its request in flight, then read and check the whole log.
    shared.stop.store(true, Ordering::SeqCst);
    for t in tasks {
        tokio::time::timeout(DEADLINE, t)
            .await
            .expect("clients finish their last requests")
            .expect("a client failed");
    }
    mirror.catch_up(&shared, &server.url()).await;
    // The locks are held only in this block, never across the awaits below.
    let out_of_order = {
        let sent = shared.sent.lock().unwrap();
        assert_eq!(
            mirror.by_id.len(),
            sent.len(),
            "every event sent is stored (each once, checked while reading)"
        );
        for (event_id, recorded) in shared.unary_acks.lock().unwrap().iter() {
            let stored = &mirror.by_id[event_id];
            assert_eq!(
                recorded.position, stored.position,
                "event {event_id}: acknowledged position"
            );
            if !recorded.duplicate {
                assert_eq!(
                    recorded.version, stored.version,
                    "event {event_id}: acknowledged version"
                );
            }
        }
        let bulk_acks = shared.bulk_acks.lock().unwrap();
        let mut out_of_order = 0usize;
        for ids in bulk_acks.iter() {
            let positions: Vec<u64> = ids.iter().map(|id| mirror.by_id[id].position).collect();
            let mut last: HashMap<&str, u64> = HashMap::new();
            for (id, &position) in ids.iter().zip(&positions) {
                let stream = mirror.by_id[id].stream.as_str();
                if let Some(before) = last.insert(stream, position) {
                    assert!(before < position, "{stream}: stored in submission order");
                }
            }
            if positions.windows(2).any(|w| w[0] > w[1]) {
                out_of_order += 1;
            }
        }
        if whole_prefix {
            assert_eq!(
                out_of_order, 0,
                "an append's events are stored in submission order"
            );
        }
        out_of_order
    };
    let events_checked = mirror.by_id.len();

    // The live projections after the last restart equal an offline rebuild's tables, and the
    // published quarter's live rows have moved on since its publication, which has not.
    await_projections(&server.url(), &analyst, mirror.head).await;
    let served = served_tables(&server.url(), &analyst).await;
    assert_eq!(
        mirror.publications,
        [publication_at],
        "the publication, once"
    );
    check_published(&server.url(), &analyst, &published, "at the end").await;
    published_checks += 1;
    let quarter_rows = |reply: &pb::TableReply| -> Vec<pb::Row> {
        reply
            .rows
            .iter()
            .filter(|r| r.cells[0].value == Some(pb::cell::Value::Text(PUBLISHED_QUARTER.into())))
            .cloned()
            .collect()
    };
    let live = InsightClient::with_interceptor(channel(&server.url()), bearer(&analyst))
        .get_table(pb::GetTableRequest {
            name: "case-flow".into(),
            by: "code".into(),
            period: "quarter".into(),
            ..Default::default()
        })
        .await
        .expect("the live table")
        .into_inner();
    let (_, then) = published
        .iter()
        .find(|(what, _)| what == "case-flow by code per quarter")
        .expect("published case-flow by code per quarter");
    let then = pb::TableReply::decode(then.as_slice()).unwrap();
    assert_ne!(
        quarter_rows(&live),
        then.rows,
        "the live {PUBLISHED_QUARTER} rows moved on since the publication"
    );
    server.stop();
    offline(&backend, dir, &["rebuild"]);
    for ((table, by, period), json) in &served {
        let rebuilt = offline(
            &backend,
            dir,
            &[
                "table", *table, "--by", *by, "--period", *period, "--format", "json",
            ],
        );
        assert_eq!(
            &rebuilt, json,
            "{table} by {by} per {period}: live = rebuilt"
        );
    }

    let c = &shared.counts;
    println!(
        "{name}: the publication of {PUBLISHED_QUARTER} (position {publication_at}, {} tables) \
         was byte-identical at each of {published_checks} checks, after every restart and at \
         the end",
        published.len()
    );
    println!(
        "{name}: survived {kills} kills of gryning up, checked {events_checked} events \
         ({} unary calls and {} bulk appends acknowledged; {} requests and {} events resent, \
         {} resent events answered as duplicates, {} stored late)",
        c.unary_acked.load(Ordering::SeqCst),
        c.bulk_acked.load(Ordering::SeqCst),
        c.requests_resent.load(Ordering::SeqCst),
        c.events_resent.load(Ordering::SeqCst),
        c.duplicates_answered.load(Ordering::SeqCst),
        c.stored_late.load(Ordering::SeqCst),
    );
    println!(
        "{name}: interrupted: {} unary calls ({} stored but not acknowledged), {} bulk appends \
         ({} partly stored, {} stored whole but not acknowledged); {} acknowledged appends \
         stored out of submission order across streams; {:?} in all",
        stats.unary_interrupted,
        stats.unary_stored_unacknowledged,
        stats.bulk_interrupted,
        stats.bulk_partly_stored,
        stats.bulk_stored_unacknowledged,
        out_of_order,
        started.elapsed()
    );
    assert!(
        stats.unary_interrupted + stats.bulk_interrupted >= kills,
        "each kill fell on requests in flight"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_sigkill_of_gryning_up_mid_call() {
    let dir = tempfile::tempdir().unwrap();
    run(Backend::Sqlite, dir.path(), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_r3_survives_sigkill_of_gryning_up_and_of_nats_servers() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, urls) = Cluster::start(&dir.path().join("nats")).await;
    run(Backend::Nats(urls), dir.path(), Some(&cluster)).await;
}
