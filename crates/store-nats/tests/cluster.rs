//! Failures of a three-node JetStream cluster under a continuous writer: the stream leader is
//! killed (SIGKILL) and restarted, or paused (SIGSTOP) and continued. Afterwards every
//! acknowledged event must be in the log exactly once at the position its ack named, the log
//! must be gap-free with versions 1..n per stream, and appends must have resumed within a
//! bounded time after the failure, and the projections over the log must equal the naive
//! recomputation from it.

use gryning_store_nats::testkit as support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gryning_domain::{AgeGroup, Body, Catalogue, CrimeCode, Date, Event, Gender, Subject};
use gryning_projections::{naive, By, PeriodKind, Projections, TableName};
use gryning_store::conformance::assert_log_consistent;
use gryning_store::{AppendRequest, EventStore, ExpectedVersion, NewEvent, Position};
use gryning_store_nats::{NatsStore, Options};
use support::Server;
use uuid::Uuid;

/// Appends must resume within this long after the leader fails.
const RESUME_WITHIN: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug)]
enum Failure {
    Kill,
    Pause,
}

fn options() -> Options {
    Options {
        replicas: 3,
        request_timeout: Duration::from_secs(2),
        retry_for: Duration::from_secs(30),
        ..Options::default()
    }
}

type Acked = Arc<Mutex<Vec<(Uuid, Position)>>>;

/// The writer's `i`th event: every fifth opens a case, three report crimes into it, the fifth
/// refers it; a valid history in writer order, with real domain events so that the log can be
/// projected.
fn domain_event(i: u64) -> Event {
    let case = Subject::Case(Uuid::from_u128(0xCA5E_0000 + u128::from(i / 5)));
    let codes = ["4024", "0609", "9365"];
    let code = CrimeCode::parse(codes[(i % 3) as usize]).unwrap();
    let body = match i % 5 {
        0 => Body::CaseOpened {
            lead_crime_code: code,
            police_region: "Polisregion Stockholm".into(),
            local_police_area: "Farsta".into(),
        },
        4 => Body::CaseReferredToProsecutor,
        _ => Body::CrimeReported {
            crime_id: Uuid::from_u128(0xC41E_0000 + u128::from(i)),
            crime_code: code,
            victim_gender: Gender::ALL[(i % 3) as usize],
            victim_age_group: AgeGroup::Adult,
        },
    };
    Event {
        event_id: Uuid::from_u128(0xE7E7_0000 + u128::from(i)),
        occurred_on: Date::parse("2020-01-01")
            .unwrap()
            .add_days((i % 366) as i32),
        subject: case,
        body,
    }
}

/// Waits until `acked` has grown by `more` entries, returning how long that took.
async fn wait_for_acks(acked: &Acked, more: usize, what: &str) -> Duration {
    let start = Instant::now();
    let target = acked.lock().unwrap().len() + more;
    loop {
        if acked.lock().unwrap().len() >= target {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < RESUME_WITHIN,
            "{what}: appends did not resume within {RESUME_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn run(failure: Failure) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut servers = Server::cluster(dir.path());
    let all_urls: Vec<String> = servers.iter().map(Server::url).collect();
    let setup = NatsStore::connect(&all_urls.join(","), options())
        .await
        .expect("connect to the cluster and create the R3 stream");
    let info = setup.stream_info().await.expect("stream info");
    let cluster = info.cluster.expect("a clustered stream has cluster info");
    assert_eq!(cluster.replicas.len(), 2, "three replicas: leader + 2");
    let leader_name = cluster.leader.expect("the stream has a leader");
    let leader = servers
        .iter()
        .position(|s| s.name == leader_name)
        .unwrap_or_else(|| panic!("leader {leader_name} is none of the test's servers"));
    // The writer talks to the members that are not the leader: a paused member keeps its TCP
    // connections open, and a client on it would only notice after its ping timeout.
    let others: Vec<String> = (0..3)
        .filter(|&i| i != leader)
        .map(|i| servers[i].url())
        .collect();
    let store = Arc::new(
        NatsStore::connect(&others.join(","), options())
            .await
            .expect("connect the writer"),
    );
    drop(setup);

    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, acked, stop) = (Arc::clone(&store), Arc::clone(&acked), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let domain = domain_event(i);
                let id = domain.event_id;
                let e = NewEvent {
                    event_id: id,
                    payload: gryning_proto::encode_event(&domain),
                    metadata: Vec::new(),
                };
                // Resend the same event until it is acknowledged: idempotency makes a resend
                // of an event whose first ack was lost a duplicate, not a second copy.
                loop {
                    let r = store
                        .append(AppendRequest {
                            stream: domain.subject.stream_name(),
                            expected_version: ExpectedVersion::Any,
                            events: vec![e.clone()],
                        })
                        .await;
                    if let Ok(appended) = r {
                        acked.lock().unwrap().push((id, appended.positions[0]));
                        break;
                    }
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                }
                i += 1;
            }
        })
    };

    wait_for_acks(&acked, 200, "before the failure").await;
    match failure {
        Failure::Kill => {
            servers[leader].kill();
            let took = wait_for_acks(&acked, 100, "after killing the leader").await;
            eprintln!("appends resumed {took:?} after SIGKILL of {leader_name}");
            servers[leader].restart();
            wait_for_acks(&acked, 100, "after restarting the old leader").await;
        }
        Failure::Pause => {
            servers[leader].signal("STOP");
            let took = wait_for_acks(&acked, 100, "while the leader is paused").await;
            eprintln!("appends resumed {took:?} after SIGSTOP of {leader_name}");
            // Keep it paused for several seconds in all, so that its peers move on for real.
            tokio::time::sleep(Duration::from_secs(5).saturating_sub(took)).await;
            servers[leader].signal("CONT");
            wait_for_acks(&acked, 100, "after continuing the old leader").await;
        }
    }
    stop.store(true, Ordering::SeqCst);
    writer.await.expect("writer panicked");

    // Read back through a fresh connection to every member.
    let reader = NatsStore::connect(&all_urls.join(","), options())
        .await
        .expect("connect the reader");
    let events = assert_log_consistent(&reader).await;
    let acked = acked.lock().unwrap().clone();
    let by_id: std::collections::HashMap<Uuid, Position> =
        events.iter().map(|e| (e.event_id, e.position)).collect();
    for (id, position) in &acked {
        assert_eq!(
            by_id.get(id),
            Some(position),
            "acknowledged event {id} must be stored once at position {position}"
        );
    }
    // The projections over the log equal the naive recomputation from the events read back.
    let decoded: Vec<Event> = events
        .iter()
        .map(|r| gryning_proto::decode_event(&r.payload).expect("a domain event"))
        .collect();
    let mut projections = Projections::new();
    gryning_projections::catch_up(&mut projections, &reader, None, |_| {})
        .await
        .expect("replay the stream");
    assert_eq!(
        projections.position(),
        events.last().map_or(0, |e| e.position)
    );
    let catalogue = Catalogue::default_catalogue();
    for name in TableName::ALL {
        for by in By::ALL {
            for period in PeriodKind::ALL {
                assert_eq!(
                    projections.table(name, by, period, &catalogue),
                    naive::table(&decoded, name, by, period, &catalogue),
                    "{name:?} {by:?} {period:?}"
                );
            }
        }
    }
    eprintln!(
        "{failure:?}: {} acknowledged, {} in the log",
        acked.len(),
        events.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_and_restarted() {
    run(Failure::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_paused_and_continued() {
    run(Failure::Pause).await;
}
