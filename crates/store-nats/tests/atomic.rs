//! Atomic appends on JetStream: two stores (two connections, each with its own append lock and
//! index, as two processes would have) racing for one stream's version, a request that is
//! refused whole at the server, requests larger than the server's batch limit, and a stream
//! made without `allow_atomic`. Each test starts a nats-server of its own.

use gryning_store_nats::testkit as support;

use std::sync::Arc;

use gryning_store::conformance::{assert_log_consistent, event, request};
use gryning_store::{Error, EventStore, ExpectedVersion, NewEvent};
use gryning_store_nats::{NatsStore, Options};
use support::Server;

async fn store(server: &Server, options: Options) -> NatsStore {
    NatsStore::connect(&server.url(), options)
        .await
        .expect("connect the store")
}

fn events(prefix: &str, n: usize) -> Vec<NewEvent> {
    (0..n).map(|i| event(&format!("{prefix}-{i}"))).collect()
}

/// Two stores append to the stream `race` with the same expected version, round after round:
/// one a multi-stream batch (one event to its own stream `calm`, then ten events to `race`),
/// the other two events to `race`. Neither store's lock covers the other, so only the
/// server's check at commit can decide. Each round exactly one writer wins `race`, the loser
/// gets `Conflict` (never `Unavailable`, never a partly stored request), `calm` gets every
/// event, and `race` holds exactly the winners' events, each request's events together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_racing_have_one_winner_and_store_no_part_of_a_request() {
    const ROUNDS: usize = 100;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::standalone(dir.path(), true);
    let a = Arc::new(store(&server, Options::default()).await);
    let b = Arc::new(store(&server, Options::default()).await);
    let mut version = 0;
    let mut winners: Vec<Vec<NewEvent>> = Vec::new();
    let (mut a_won, mut b_won) = (0, 0);
    for round in 0..ROUNDS {
        let a_events = events(&format!("a{round}"), 10);
        let b_events = events(&format!("b{round}"), 2);
        let a_task = {
            let a = Arc::clone(&a);
            let a_events = a_events.clone();
            let expected = ExpectedVersion::Exact(version);
            tokio::spawn(async move {
                a.append_batch(vec![
                    request(
                        "calm",
                        ExpectedVersion::Any,
                        vec![event(&format!("calm{round}"))],
                    ),
                    request("race", expected, a_events),
                ])
                .await
            })
        };
        let b_task = {
            let b = Arc::clone(&b);
            let b_events = b_events.clone();
            let expected = ExpectedVersion::Exact(version);
            tokio::spawn(async move { b.append(request("race", expected, b_events)).await })
        };
        let mut a_results = a_task.await.expect("writer a");
        let b_result = b_task.await.expect("writer b");
        let a_race = a_results.pop().expect("two results");
        let a_calm = a_results.pop().expect("two results");
        let calm = a_calm.unwrap_or_else(|e| panic!("round {round}: calm refused: {e}"));
        assert_eq!(
            calm.version,
            round as u64 + 1,
            "round {round}: calm's version"
        );
        match (a_race, b_result) {
            (Ok(won), Err(Error::Conflict { expected, actual, .. })) => {
                assert_eq!(won.version, version + 10, "round {round}: a's version");
                assert!(
                    won.positions.windows(2).all(|w| w[1] == w[0] + 1),
                    "round {round}: a's ten events must be stored together: {:?}",
                    won.positions
                );
                assert_eq!((expected, actual), (version, version + 10));
                version += 10;
                a_won += 1;
                winners.push(a_events);
            }
            (Err(Error::Conflict { expected, actual, .. }), Ok(won)) => {
                assert_eq!(won.version, version + 2, "round {round}: b's version");
                assert_eq!((expected, actual), (version, version + 2));
                version += 2;
                b_won += 1;
                winners.push(b_events);
            }
            (a, b) => panic!("round {round}: exactly one writer must win, the other get Conflict; got a: {a:?}, b: {b:?}"),
        }
    }
    println!("a won {a_won} rounds, b won {b_won}");
    let stored: Vec<_> = a
        .read_stream("race")
        .await
        .expect("read race")
        .iter()
        .map(|e| e.event_id)
        .collect();
    let expected: Vec<_> = winners.iter().flatten().map(|e| e.event_id).collect();
    assert_eq!(
        stored, expected,
        "race must hold exactly the winners' events, in order"
    );
    assert_eq!(b.stream_version("calm").await.unwrap(), ROUNDS as u64);
    assert_log_consistent(&*b).await;
}

/// A server whose batch limit is 10: the store learns it at connect (also when asked for
/// more), stores a request of 25 events in three batches at consecutive positions, keeps
/// small requests whole when cutting a batch, and refuses a request with a stale version
/// without storing any of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_larger_than_the_server_batch_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::standalone_with(dir.path(), true, "limits { batch { max_msgs: 10 } }");
    let s = store(
        &server,
        Options {
            max_batch: Some(1000),
            ..Options::default()
        },
    )
    .await;
    assert_eq!(
        s.max_batch(),
        10,
        "the server's limit wins over a larger option"
    );
    let big = s
        .append(request("big", ExpectedVersion::Exact(0), events("big", 25)))
        .await
        .expect("a request of 25 events");
    assert_eq!(big.positions, (1..=25).collect::<Vec<_>>());
    assert_eq!(big.version, 25);
    // Seven requests of three: no request is split across batches.
    let results = s
        .append_batch(
            (0..7)
                .map(|i| {
                    request(
                        &format!("small{i}"),
                        ExpectedVersion::Exact(0),
                        events(&format!("small{i}"), 3),
                    )
                })
                .collect(),
        )
        .await;
    for (i, r) in results.into_iter().enumerate() {
        let r = r.unwrap_or_else(|e| panic!("small request {i}: {e}"));
        let first = 26 + 3 * i as u64;
        assert_eq!(r.positions, vec![first, first + 1, first + 2]);
    }
    let stale = events("stale", 12);
    match s
        .append(request("big", ExpectedVersion::Exact(24), stale.clone()))
        .await
    {
        Err(Error::Conflict {
            expected: 24,
            actual: 25,
            ..
        }) => {}
        other => panic!("a stale request must be Conflict, got {other:?}"),
    }
    for e in &stale {
        assert!(s.find_event(e.event_id).await.unwrap().is_none());
    }
    assert_eq!(s.read_stream("big").await.unwrap().len(), 25);
    let events = assert_log_consistent(&s).await;
    assert_eq!(events.len(), 25 + 21);
    // A reopened store learns the limit again.
    drop(s);
    let again = store(&server, Options::default()).await;
    assert_eq!(again.max_batch(), 10);
}

/// A stream made without `allow_atomic` (as gryning made it before atomic batches): the store
/// turns it on at connect, keeps the events already there and appends on top of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_without_atomic_batches_is_updated_at_connect() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::standalone(dir.path(), true);
    let options = Options::default();
    let client = async_nats::connect(server.url()).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let created = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: options.stream.clone(),
            subjects: vec![format!("{}.>", options.subject_prefix)],
            allow_direct: true,
            ..Default::default()
        })
        .await
        .expect("create the stream the old way");
    assert!(!created.cached_info().config.allow_atomic_publish);
    let s = store(&server, options.clone()).await;
    let info = s.stream_info().await.expect("stream info");
    assert!(
        info.config.allow_atomic_publish,
        "the store must turn allow_atomic on"
    );
    let r = s
        .append(request("old", ExpectedVersion::Exact(0), events("old", 3)))
        .await
        .expect("append after the update");
    assert_eq!(r.positions, vec![1, 2, 3]);
}
