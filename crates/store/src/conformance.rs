//! The conformance suite: what every [`EventStore`] backend must do, written once against the
//! trait so that the SQLite store and any later backend are held to the same rules.
//!
//! Each case is an async function that takes a store made fresh for it (empty, used by nothing
//! else) and panics with a message saying what went wrong. The restart case instead takes an
//! opener, a closure that opens the store on one and the same storage each time it is called.
//! Cases that race tasks against each other need a multi-thread tokio runtime to mean anything.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use uuid::Uuid;

use crate::{
    subscribe, AppendRequest, Appended, Error, EventStore, ExpectedVersion, NewEvent, Position,
    RecordedEvent,
};

/// A boxed future, for openers.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Opens the store on the same storage at every call (for [`restart`]).
pub type Opener = dyn Fn() -> BoxFuture<'static, Arc<dyn EventStore>> + Send + Sync;

/// A case that takes a fresh store.
pub type Case = fn(Arc<dyn EventStore>) -> BoxFuture<'static, ()>;

/// Every case that takes a fresh store, by name, for backends that want to run them in a loop.
pub fn cases() -> Vec<(&'static str, Case)> {
    vec![
        ("append_and_read_back", |s| {
            Box::pin(append_and_read_back(s))
        }),
        ("expected_version_conflict", |s| {
            Box::pin(expected_version_conflict(s))
        }),
        ("racing_writers", |s| Box::pin(racing_writers(s))),
        ("idempotency", |s| Box::pin(idempotency(s))),
        ("batch_with_failures", |s| Box::pin(batch_with_failures(s))),
        ("read_all_paging", |s| Box::pin(read_all_paging(s))),
        ("subscription_hand_over", |s| {
            Box::pin(subscription_hand_over(s))
        }),
        ("large_batch", |s| Box::pin(large_batch(s))),
        ("identity", |s| Box::pin(identity(s))),
    ]
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// An event with a fresh id and a payload that names it.
pub fn event(payload: &str) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        payload: payload.as_bytes().to_vec(),
        metadata: format!("meta:{payload}").into_bytes(),
    }
}

pub fn request(stream: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> AppendRequest {
    AppendRequest {
        stream: stream.to_owned(),
        expected_version: expected,
        events,
    }
}

fn accepted(result: Result<Appended, Error>, what: &str) -> Appended {
    match result {
        Ok(appended) => appended,
        Err(e) => panic!("{what}: expected the append to be accepted, got error: {e}"),
    }
}

async fn append_ok(store: &dyn EventStore, req: AppendRequest, what: &str) -> Appended {
    accepted(store.append(req).await, what)
}

async fn all_events(store: &dyn EventStore) -> Vec<RecordedEvent> {
    let mut events = Vec::new();
    loop {
        let after = events.last().map_or(0, |e: &RecordedEvent| e.position);
        let page = store.read_all(after, 1000).await.expect("read_all");
        if page.is_empty() {
            return events;
        }
        events.extend(page);
    }
}

/// Checks the whole log: positions 1..=head, each stream's versions 1..n, ids unique.
pub async fn assert_log_consistent(store: &dyn EventStore) -> Vec<RecordedEvent> {
    let events = all_events(store).await;
    let head = store.head().await.expect("head");
    assert_eq!(
        events.len() as u64,
        head,
        "read_all returned {} events but head is {head}",
        events.len()
    );
    let mut versions = std::collections::HashMap::<&str, u64>::new();
    let mut ids = HashSet::new();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e.position,
            i as u64 + 1,
            "positions must run 1..=head without a gap"
        );
        let v = versions.entry(e.stream.as_str()).or_default();
        *v += 1;
        assert_eq!(
            e.version, *v,
            "stream {}: version {} at position {} (expected {})",
            e.stream, e.version, e.position, *v
        );
        assert!(
            ids.insert(e.event_id),
            "event_id {} is stored twice",
            e.event_id
        );
    }
    for (stream, version) in versions {
        let reported = store.stream_version(stream).await.expect("stream_version");
        assert_eq!(
            reported, version,
            "stream_version({stream}) disagrees with the log"
        );
    }
    events
}

// ---------------------------------------------------------------------------------------------
// Cases

/// Appends to two streams and reads everything back by stream, by id and in global order.
pub async fn append_and_read_back(store: Arc<dyn EventStore>) {
    let s = &*store;
    assert_eq!(s.head().await.unwrap(), 0, "a fresh store has head 0");
    assert_eq!(
        s.stream_version("a").await.unwrap(),
        0,
        "an unknown stream has version 0"
    );
    assert!(
        s.read_stream("a").await.unwrap().is_empty(),
        "an unknown stream reads empty"
    );

    let (a1, a2, b1, a3) = (event("a1"), event("a2"), event("b1"), event("a3"));
    let r = append_ok(
        s,
        request("a", ExpectedVersion::Exact(0), vec![a1.clone(), a2.clone()]),
        "first append",
    )
    .await;
    assert_eq!(
        r,
        Appended {
            positions: vec![1, 2],
            version: 2,
            duplicate: false
        }
    );
    let r = append_ok(
        s,
        request("b", ExpectedVersion::Any, vec![b1.clone()]),
        "append with Any",
    )
    .await;
    assert_eq!(
        r,
        Appended {
            positions: vec![3],
            version: 1,
            duplicate: false
        }
    );
    let r = append_ok(
        s,
        request("a", ExpectedVersion::Exact(2), vec![a3.clone()]),
        "third append",
    )
    .await;
    assert_eq!(
        r,
        Appended {
            positions: vec![4],
            version: 3,
            duplicate: false
        }
    );

    assert_eq!(s.head().await.unwrap(), 4);
    assert_eq!(s.stream_version("a").await.unwrap(), 3);
    assert_eq!(s.stream_version("b").await.unwrap(), 1);

    let stream_a = s.read_stream("a").await.unwrap();
    let expected: Vec<_> = [(&a1, 1, 1), (&a2, 2, 2), (&a3, 4, 3)]
        .into_iter()
        .map(|(e, position, version)| RecordedEvent {
            position,
            stream: "a".into(),
            version,
            event_id: e.event_id,
            payload: e.payload.clone(),
            metadata: e.metadata.clone(),
        })
        .collect();
    assert_eq!(
        stream_a, expected,
        "read_stream(a) must return a's events in version order"
    );

    let all = s.read_all(0, 100).await.unwrap();
    let order: Vec<_> = all.iter().map(|e| (e.position, e.event_id)).collect();
    assert_eq!(
        order,
        vec![
            (1, a1.event_id),
            (2, a2.event_id),
            (3, b1.event_id),
            (4, a3.event_id)
        ]
    );
    assert_eq!(all[2].stream, "b");

    let found = s
        .find_event(b1.event_id)
        .await
        .unwrap()
        .expect("find_event(b1)");
    assert_eq!(
        (found.position, found.version, found.payload),
        (3, 1, b1.payload)
    );
    assert!(
        s.find_event(Uuid::new_v4()).await.unwrap().is_none(),
        "an unknown id is not found"
    );
    let unknown = Uuid::new_v4();
    let several = s
        .find_events(&[a3.event_id, unknown, b1.event_id, a1.event_id])
        .await
        .unwrap();
    let answers: Vec<_> = several
        .iter()
        .map(|e| e.as_ref().map(|e| (e.position, e.event_id)))
        .collect();
    assert_eq!(
        answers,
        [
            Some((4, a3.event_id)),
            None,
            Some((3, b1.event_id)),
            Some((1, a1.event_id))
        ],
        "find_events answers each id in order"
    );
    assert_eq!(several[2].as_ref().unwrap().payload, all[2].payload);
    assert!(s.find_events(&[]).await.unwrap().is_empty());

    match s.append(request("a", ExpectedVersion::Any, vec![])).await {
        Err(Error::EmptyAppend { stream }) => assert_eq!(stream, "a"),
        other => panic!("an empty request must be EmptyAppend, got {other:?}"),
    }
    assert_consistent_head(s, 4).await;
}

async fn assert_consistent_head(s: &dyn EventStore, head: Position) {
    assert_eq!(s.head().await.unwrap(), head, "head");
    assert_eq!(
        *s.watch_head().borrow(),
        head,
        "watch_head must show the head"
    );
    assert_log_consistent(s).await;
}

/// A writer with a stale expected version gets `Conflict` and writes nothing.
pub async fn expected_version_conflict(store: Arc<dyn EventStore>) {
    let s = &*store;
    append_ok(
        s,
        request(
            "c",
            ExpectedVersion::Exact(0),
            vec![event("c1"), event("c2")],
        ),
        "setup",
    )
    .await;
    let stale = event("stale");
    match s
        .append(request("c", ExpectedVersion::Exact(1), vec![stale.clone()]))
        .await
    {
        Err(Error::Conflict {
            stream,
            expected,
            actual,
        }) => {
            assert_eq!(
                (stream.as_str(), expected, actual),
                ("c", 1, 2),
                "conflict fields"
            )
        }
        other => panic!("a stale expected version must be Conflict, got {other:?}"),
    }
    match s
        .append(request("new", ExpectedVersion::Exact(3), vec![event("x")]))
        .await
    {
        Err(Error::Conflict {
            expected: 3,
            actual: 0,
            ..
        }) => {}
        other => panic!("expecting version 3 of a missing stream must be Conflict, got {other:?}"),
    }
    assert!(
        s.find_event(stale.event_id).await.unwrap().is_none(),
        "a refused event must not be stored"
    );
    assert_eq!(s.stream_version("c").await.unwrap(), 2);
    assert_eq!(s.stream_version("new").await.unwrap(), 0);
    // The same event, resent with the right version, is accepted.
    let r = append_ok(
        s,
        request("c", ExpectedVersion::Exact(2), vec![stale]),
        "retry",
    )
    .await;
    assert_eq!((r.positions, r.version), (vec![3], 3));
    assert_consistent_head(s, 3).await;
}

/// Two tasks append to one stream with the same expected version, many times over: each time
/// exactly one wins and the other gets `Conflict`; nothing is lost or doubled.
pub async fn racing_writers(store: Arc<dyn EventStore>) {
    const ROUNDS: u64 = 200;
    let mut winners = Vec::new();
    for round in 0..ROUNDS {
        let version = round * 2;
        let racers: Vec<_> = (0..2)
            .map(|racer| {
                let store = Arc::clone(&store);
                let events = vec![
                    event(&format!("r{round}-{racer}-a")),
                    event(&format!("r{round}-{racer}-b")),
                ];
                tokio::spawn(async move {
                    let result = store
                        .append(request(
                            "race",
                            ExpectedVersion::Exact(version),
                            events.clone(),
                        ))
                        .await;
                    (result, events)
                })
            })
            .collect();
        let mut won = None;
        let mut conflicts = 0;
        for racer in racers {
            let (result, events) = racer.await.expect("racer task panicked");
            match result {
                Ok(appended) => {
                    assert!(
                        won.is_none(),
                        "round {round}: both racers won with expected version {version}"
                    );
                    assert_eq!(
                        appended.version,
                        version + 2,
                        "round {round}: winner's version"
                    );
                    won = Some(events);
                }
                Err(Error::Conflict {
                    expected, actual, ..
                }) => {
                    assert_eq!(
                        (expected, actual),
                        (version, version + 2),
                        "round {round}: conflict fields"
                    );
                    conflicts += 1;
                }
                Err(e) => panic!("round {round}: unexpected error {e}"),
            }
        }
        assert_eq!(
            conflicts, 1,
            "round {round}: exactly one racer must get Conflict"
        );
        winners.extend(won.expect("one racer must win"));
    }
    let stored = store.read_stream("race").await.unwrap();
    let stored_ids: Vec<_> = stored.iter().map(|e| e.event_id).collect();
    let winner_ids: Vec<_> = winners.iter().map(|e| e.event_id).collect();
    assert_eq!(
        stored_ids, winner_ids,
        "the stream must hold exactly the winners' events, in order"
    );
    assert_consistent_head(&*store, ROUNDS * 2).await;
}

/// Same id and content is accepted once; same id with other content or stream is refused.
pub async fn idempotency(store: Arc<dyn EventStore>) {
    let s = &*store;
    let (e1, e2) = (event("one"), event("two"));
    let first = append_ok(
        s,
        request("i", ExpectedVersion::Exact(0), vec![e1.clone(), e2.clone()]),
        "first",
    )
    .await;
    append_ok(
        s,
        request("i", ExpectedVersion::Exact(2), vec![event("three")]),
        "third",
    )
    .await;

    // Resent with a stale expected version: still a duplicate, pointing at the first copies.
    let again = append_ok(
        s,
        request("i", ExpectedVersion::Exact(0), vec![e1.clone(), e2.clone()]),
        "resend",
    )
    .await;
    assert_eq!(
        again,
        Appended {
            positions: first.positions.clone(),
            version: 3,
            duplicate: true
        }
    );
    // A resend of part of a request is a duplicate too.
    let part = append_ok(
        s,
        request("i", ExpectedVersion::Any, vec![e2.clone()]),
        "resend e2",
    )
    .await;
    assert_eq!(
        part,
        Appended {
            positions: vec![2],
            version: 3,
            duplicate: true
        }
    );
    // The metadata is not part of the comparison.
    let mut e1_other_meta = e1.clone();
    e1_other_meta.metadata = b"recorded again".to_vec();
    assert!(
        s.append(request("i", ExpectedVersion::Any, vec![e1_other_meta]))
            .await
            .unwrap()
            .duplicate
    );

    // Same id, other content.
    let mut changed = e1.clone();
    changed.payload = b"other".to_vec();
    match s
        .append(request("i", ExpectedVersion::Any, vec![changed]))
        .await
    {
        Err(Error::EventIdReused { event_id, .. }) => assert_eq!(event_id, e1.event_id),
        other => panic!("same id with other content must be EventIdReused, got {other:?}"),
    }
    // Same id and content, other stream.
    match s
        .append(request("elsewhere", ExpectedVersion::Any, vec![e1.clone()]))
        .await
    {
        Err(Error::EventIdReused { event_id, .. }) => assert_eq!(event_id, e1.event_id),
        other => panic!("an id stored in another stream must be EventIdReused, got {other:?}"),
    }
    // Stored and new events mixed.
    let fresh = event("fresh");
    match s
        .append(request(
            "i",
            ExpectedVersion::Exact(3),
            vec![e1.clone(), fresh.clone()],
        ))
        .await
    {
        Err(Error::PartialDuplicate { event_id, stream }) => {
            assert_eq!((event_id, stream.as_str()), (e1.event_id, "i"))
        }
        other => {
            panic!("a request mixing stored and new ids must be PartialDuplicate, got {other:?}")
        }
    }
    // One new id named twice in one request.
    let twice = event("twice");
    assert!(
        matches!(
            s.append(request(
                "i",
                ExpectedVersion::Any,
                vec![twice.clone(), twice.clone()]
            ))
            .await,
            Err(Error::EventIdReused { .. })
        ),
        "one request naming a new event id twice must be refused"
    );
    assert!(
        s.find_event(fresh.event_id).await.unwrap().is_none(),
        "a refused event must not be stored"
    );
    assert!(
        s.find_event(twice.event_id).await.unwrap().is_none(),
        "a refused event must not be stored"
    );
    assert!(
        s.stream_version("elsewhere").await.unwrap() == 0,
        "a refused append must not create a stream"
    );

    // The same event twice in one batch: stored once, the second request is a duplicate.
    let d = event("in-batch");
    let results = s
        .append_batch(vec![
            request("j", ExpectedVersion::Exact(0), vec![d.clone()]),
            request("j", ExpectedVersion::Exact(0), vec![d.clone()]),
        ])
        .await;
    assert_eq!(results.len(), 2, "one result per request");
    let mut results = results.into_iter();
    let one = accepted(results.next().unwrap(), "first copy in batch");
    let two = accepted(results.next().unwrap(), "second copy in batch");
    assert_eq!(
        one,
        Appended {
            positions: vec![4],
            version: 1,
            duplicate: false
        }
    );
    assert_eq!(
        two,
        Appended {
            positions: vec![4],
            version: 1,
            duplicate: true
        }
    );
    // An id first stored in this batch and reused with other content later in it.
    let mut d_changed = d.clone();
    d_changed.payload = b"changed".to_vec();
    let e = event("batch-e");
    let mut e_changed = e.clone();
    e_changed.payload = b"changed".to_vec();
    let results = s
        .append_batch(vec![
            request("j", ExpectedVersion::Any, vec![d_changed]),
            request("k", ExpectedVersion::Any, vec![e]),
            request("k", ExpectedVersion::Any, vec![e_changed]),
        ])
        .await;
    assert!(
        matches!(results[0], Err(Error::EventIdReused { .. })),
        "batch[0]: {:?}",
        results[0]
    );
    assert!(results[1].is_ok(), "batch[1]: {:?}", results[1]);
    assert!(
        matches!(results[2], Err(Error::EventIdReused { .. })),
        "batch[2]: {:?}",
        results[2]
    );

    let events = assert_log_consistent(s).await;
    assert_eq!(
        events.len(),
        5,
        "every event must be stored once: {events:?}"
    );
    assert_eq!(s.read_stream("i").await.unwrap().len(), 3);
}

/// In one batch, refused requests do not stop the others, and later requests see earlier ones.
pub async fn batch_with_failures(store: Arc<dyn EventStore>) {
    let s = &*store;
    append_ok(
        s,
        request("x", ExpectedVersion::Exact(0), vec![event("x1")]),
        "setup",
    )
    .await;
    let (ok1, bad, ok2, ok3) = (event("ok1"), event("bad"), event("ok2"), event("ok3"));
    let results = s
        .append_batch(vec![
            request("x", ExpectedVersion::Exact(1), vec![ok1.clone()]),
            request("x", ExpectedVersion::Exact(1), vec![bad.clone()]), // stale after the first
            request("y", ExpectedVersion::Any, vec![]),
            request("y", ExpectedVersion::Exact(0), vec![ok2.clone()]),
            request("x", ExpectedVersion::Exact(2), vec![ok3.clone()]), // sees the first
        ])
        .await;
    assert_eq!(results.len(), 5, "one result per request");
    assert_eq!(
        results[0].as_ref().ok(),
        Some(&Appended {
            positions: vec![2],
            version: 2,
            duplicate: false
        })
    );
    assert!(
        matches!(
            &results[1],
            Err(Error::Conflict {
                expected: 1,
                actual: 2,
                ..
            })
        ),
        "batch[1] must conflict: {:?}",
        results[1]
    );
    assert!(
        matches!(&results[2], Err(Error::EmptyAppend { .. })),
        "batch[2]: {:?}",
        results[2]
    );
    assert_eq!(
        results[3].as_ref().ok(),
        Some(&Appended {
            positions: vec![3],
            version: 1,
            duplicate: false
        })
    );
    assert_eq!(
        results[4].as_ref().ok(),
        Some(&Appended {
            positions: vec![4],
            version: 3,
            duplicate: false
        })
    );
    assert!(
        s.find_event(bad.event_id).await.unwrap().is_none(),
        "the refused event must not be stored"
    );
    let x: Vec<_> = s
        .read_stream("x")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.payload)
        .collect();
    assert_eq!(x, vec![b"x1".to_vec(), b"ok1".to_vec(), b"ok3".to_vec()]);
    assert_consistent_head(s, 4).await;
    assert!(
        s.append_batch(vec![]).await.is_empty(),
        "an empty batch has no results"
    );
}

/// `read_all` pages: `after` is exclusive, `limit` is respected, the end reads empty.
pub async fn read_all_paging(store: Arc<dyn EventStore>) {
    let s = &*store;
    let requests = (0..25).map(|i| {
        request(
            &format!("p{}", i % 3),
            ExpectedVersion::Any,
            vec![event(&format!("e{i}"))],
        )
    });
    for r in s.append_batch(requests.collect()).await {
        accepted(r, "paging setup");
    }
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = s.read_all(after, 7).await.unwrap();
        assert!(
            page.len() <= 7,
            "read_all returned {} events for limit 7",
            page.len()
        );
        let Some(last) = page.last() else { break };
        after = last.position;
        seen.extend(page.iter().map(|e| e.position));
        assert!(seen.len() <= 25, "read_all pages past the end");
    }
    assert_eq!(
        seen,
        (1..=25).collect::<Vec<_>>(),
        "pages must cover 1..=25 once, in order"
    );
    let tail = s.read_all(20, 100).await.unwrap();
    assert_eq!(
        tail.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![21, 22, 23, 24, 25]
    );
    assert_eq!(tail[0].payload, b"e20", "position 21 holds the 21st event");
    assert!(
        s.read_all(25, 10).await.unwrap().is_empty(),
        "nothing after the head"
    );
    assert!(
        s.read_all(1000, 10).await.unwrap().is_empty(),
        "nothing past the head"
    );
    assert!(
        s.read_all(0, 0).await.unwrap().is_empty(),
        "limit 0 reads nothing"
    );
}

/// A subscription started over stored events, with appends going on meanwhile, sees every
/// event exactly once in position order across the catch-up/live hand-over.
pub async fn subscription_hand_over(store: Arc<dyn EventStore>) {
    const BEFORE: u64 = 10_000;
    const DURING: u64 = 3_000;
    let before = (0..BEFORE)
        .map(|i| {
            request(
                &format!("s{}", i % 50),
                ExpectedVersion::Any,
                vec![event(&format!("b{i}"))],
            )
        })
        .collect();
    for r in store.append_batch(before).await {
        accepted(r, "subscription setup");
    }
    let mut subscription = subscribe(Arc::clone(&store), 0);
    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            // Small appends, so the live part sees many separate head changes.
            for i in 0..DURING {
                let r = request(
                    &format!("s{}", i % 50),
                    ExpectedVersion::Any,
                    vec![event(&format!("d{i}"))],
                );
                accepted(store.append(r).await, "append during subscription");
            }
        })
    };
    let mut positions = Vec::new();
    let deadline = std::time::Duration::from_secs(120);
    let reading = async {
        while (positions.len() as u64) < BEFORE + DURING {
            let batch = subscription.next_batch().await.expect("next_batch");
            assert!(
                !batch.is_empty(),
                "next_batch must not return an empty batch"
            );
            positions.extend(batch.iter().map(|e| e.position));
        }
    };
    tokio::time::timeout(deadline, reading)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "subscription saw {} of {} events within {deadline:?}",
                positions.len(),
                BEFORE + DURING
            )
        });
    writer.await.expect("writer task panicked");
    assert_eq!(
        positions,
        (1..=BEFORE + DURING).collect::<Vec<_>>(),
        "every position once, in order"
    );
    assert_eq!(subscription.position(), BEFORE + DURING);
    assert_eq!(
        store.head().await.unwrap(),
        BEFORE + DURING,
        "no event beyond those appended"
    );
}

/// 100,000 events in one `append_batch`: 50,000 one-event requests and one request of 50,000.
pub async fn large_batch(store: Arc<dyn EventStore>) {
    const SINGLES: u64 = 50_000;
    const BULK: u64 = 50_000;
    let mut requests: Vec<_> = (0..SINGLES)
        .map(|i| {
            request(
                &format!("L{}", i % 1000),
                ExpectedVersion::Exact(i / 1000),
                vec![event(&format!("l{i}"))],
            )
        })
        .collect();
    requests.push(request(
        "bulk",
        ExpectedVersion::Exact(0),
        (0..BULK).map(|i| event(&format!("bulk{i}"))).collect(),
    ));
    let ids: Vec<_> = requests
        .iter()
        .flat_map(|r| r.events.iter().map(|e| e.event_id))
        .collect();
    let results = store.append_batch(requests).await;
    assert_eq!(results.len() as u64, SINGLES + 1, "one result per request");
    for (i, r) in results.into_iter().enumerate() {
        let r = accepted(r, &format!("large batch request {i}"));
        if (i as u64) < SINGLES {
            assert_eq!(r.positions, vec![i as u64 + 1], "request {i}'s position");
            assert_eq!(r.version, i as u64 / 1000 + 1, "request {i}'s version");
        } else {
            assert_eq!(
                r.positions,
                (SINGLES + 1..=SINGLES + BULK).collect::<Vec<_>>()
            );
            assert_eq!(r.version, BULK);
        }
    }
    let events = assert_log_consistent(&*store).await;
    let stored: Vec<_> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(
        stored, ids,
        "the log must hold the batch's events in request order"
    );
    assert_eq!(store.read_stream("bulk").await.unwrap().len() as u64, BULK);
}

/// A store has an identity from the start: a backend name and an id, neither empty, unchanged
/// by appends. (That it survives a reopen is checked by [`restart`]; that two stores differ, by
/// [`distinct_identities`].)
pub async fn identity(store: Arc<dyn EventStore>) {
    let first = store.identity();
    assert!(!first.backend.is_empty(), "the identity names the backend");
    assert!(!first.id.is_empty(), "a new store has an id: {first}");
    append_ok(
        &*store,
        request("a", ExpectedVersion::Exact(0), vec![event("a1")]),
        "identity",
    )
    .await;
    assert_eq!(
        store.identity(),
        first,
        "appends do not change the identity"
    );
}

/// Two stores made fresh, on storage of their own, have different identities.
pub async fn distinct_identities(a: Arc<dyn EventStore>, b: Arc<dyn EventStore>) {
    let (a, b) = (a.identity(), b.identity());
    assert_eq!(a.backend, b.backend);
    assert_ne!(a, b, "two stores must not share an identity");
}

/// Events survive reopening the store, once each, and new appends continue where they stopped.
/// `open` must open the same storage at each call; the case drops every handle it holds on the
/// first store before opening the second.
pub async fn restart(open: &Opener) {
    let (a1, a2, b1) = (event("a1"), event("a2"), event("b1"));
    let (identity, before) = {
        let store = open().await;
        append_ok(
            &*store,
            request("a", ExpectedVersion::Exact(0), vec![a1.clone(), a2.clone()]),
            "before restart",
        )
        .await;
        append_ok(
            &*store,
            request("b", ExpectedVersion::Exact(0), vec![b1.clone()]),
            "before restart",
        )
        .await;
        (store.identity(), assert_log_consistent(&*store).await)
    };
    let store = open().await;
    assert_eq!(
        store.identity(),
        identity,
        "the reopened store keeps its identity"
    );
    let after = assert_log_consistent(&*store).await;
    assert_eq!(
        after, before,
        "the reopened store must hold exactly what was written"
    );
    assert_eq!(store.head().await.unwrap(), 3);
    assert_eq!(*store.watch_head().borrow(), 3, "watch_head after reopen");
    assert_eq!(store.stream_version("a").await.unwrap(), 2);
    assert_eq!(
        store
            .find_event(b1.event_id)
            .await
            .unwrap()
            .map(|e| e.position),
        Some(3)
    );

    // Idempotency holds across the restart.
    let dup = append_ok(
        &*store,
        request("a", ExpectedVersion::Exact(0), vec![a1.clone(), a2.clone()]),
        "resend",
    )
    .await;
    assert_eq!(
        dup,
        Appended {
            positions: vec![1, 2],
            version: 2,
            duplicate: true
        }
    );
    let mut changed = b1.clone();
    changed.payload = b"changed".to_vec();
    assert!(matches!(
        store
            .append(request("b", ExpectedVersion::Any, vec![changed]))
            .await,
        Err(Error::EventIdReused { .. })
    ));
    // Versions and positions continue.
    match store
        .append(request(
            "a",
            ExpectedVersion::Exact(1),
            vec![event("stale")],
        ))
        .await
    {
        Err(Error::Conflict {
            expected: 1,
            actual: 2,
            ..
        }) => {}
        other => panic!("after restart a stale version must conflict, got {other:?}"),
    }
    let r = append_ok(
        &*store,
        request("a", ExpectedVersion::Exact(2), vec![event("a3")]),
        "after restart",
    )
    .await;
    assert_eq!(
        r,
        Appended {
            positions: vec![4],
            version: 3,
            duplicate: false
        }
    );
    drop(store);

    // And a second restart sees the new event.
    let store = open().await;
    let events = assert_log_consistent(&*store).await;
    assert_eq!(
        events.len(),
        4,
        "the event appended after the first restart must survive the second"
    );
    assert_eq!(events[3].payload, b"a3");
}

/// Declares one `#[tokio::test]` per conformance case, each on a store of its own, plus a test
/// that the cases run are all of [`cases`]. `fresh` is a future giving `(guard, store)`: the
/// guard (a temporary directory, a server process) lives as long as the test. A backend's test
/// file is then `gryning_store::conformance_tests!(fresh: my_fresh_store());` and a `restart`
/// test of its own.
#[macro_export]
macro_rules! conformance_tests {
    (fresh: $fresh:expr) => {
        $crate::conformance_tests!(@cases $fresh; append_and_read_back, expected_version_conflict,
            racing_writers, idempotency, batch_with_failures, read_all_paging,
            subscription_hand_over, large_batch, identity);
    };
    (@cases $fresh:expr; $($name:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (_guard, store) = $fresh.await;
                $crate::conformance::$name(store).await;
            }
        )+

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn distinct_identities() {
            let (_guard_a, a) = $fresh.await;
            let (_guard_b, b) = $fresh.await;
            $crate::conformance::distinct_identities(a, b).await;
        }

        /// A case added to the suite must be added to the list the macro runs.
        #[test]
        fn every_case_is_run() {
            let names: Vec<&str> = $crate::conformance::cases().into_iter().map(|(name, _)| name).collect();
            assert_eq!(names, [$(stringify!($name)),+]);
        }
    };
}
