//! A checkpoint is used only on the store it was taken from, at a position that store still
//! holds with the same event: checkpoints from another store, ahead of the head, or from a store
//! since restored to an older copy and written on are discarded, each saying why.

mod common;

use std::path::Path;

use common::Log;
use gryning_domain::Gender;
use gryning_projections::{catch_up, origin_of, resume, Discarded, Projections, Resumed};
use gryning_store::sqlite::{SqliteStore, DB_FILE};
use gryning_store::{AppendRequest, EventStore, ExpectedVersion, NewEvent};

/// Stores `events` one stream per event (the store does not decode; streams do not matter here).
async fn append(store: &SqliteStore, events: &[gryning_domain::Event]) {
    for event in events {
        store
            .append(AppendRequest {
                stream: event.event_id.to_string(),
                expected_version: ExpectedVersion::Exact(0),
                events: vec![NewEvent {
                    event_id: event.event_id,
                    payload: gryning_proto::encode_event(event),
                    metadata: vec![],
                }],
            })
            .await
            .unwrap();
    }
}

/// Folds the whole store and writes the checkpoint to `path`.
async fn checkpoint(store: &SqliteStore, path: &Path) -> Projections {
    let mut projections = Projections::new();
    catch_up(&mut projections, store, None, |_| {})
        .await
        .unwrap();
    let origin = origin_of(store, projections.position()).await.unwrap();
    projections.save_checkpoint(path, &origin).unwrap();
    projections
}

/// Two events per case, each with an id of its own: cases 0–3, then cases 10–11.
fn events() -> Vec<gryning_domain::Event> {
    let mut log = Log::default();
    for case in (0..4).chain(10..12) {
        log.open("2020-01-01", case, "9365").report(
            "2020-02-01",
            case,
            100 + case,
            "9365",
            Gender::Female,
        );
    }
    log.events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_is_used_only_on_the_store_and_the_history_it_was_taken_from() {
    let dir = tempfile::tempdir().unwrap();
    let (data, copy, other) = (
        dir.path().join("data"),
        dir.path().join("copy"),
        dir.path().join("other"),
    );
    let path = dir.path().join("projections.ckpt");
    let events = events();
    let (first, more, other_events) = (&events[..4], &events[4..8], &events[8..]);

    // The store after 4 events, copied while closed.
    let store = SqliteStore::open(&data).unwrap();
    append(&store, first).await;
    drop(store);
    assert!(
        !data.join("events.sqlite3-wal").exists(),
        "a closed store is one file"
    );
    std::fs::create_dir(&copy).unwrap();
    std::fs::copy(data.join(DB_FILE), copy.join(DB_FILE)).unwrap();

    // 8 events, checkpointed: it fits the store it was taken from.
    let store = SqliteStore::open(&data).unwrap();
    append(&store, more).await;
    let taken = checkpoint(&store, &path).await;
    assert_eq!(taken.position(), 8);
    match resume(&path, &store).await.unwrap() {
        Resumed::From(p) => assert_eq!(p, taken),
        other => panic!("the checkpoint fits its own store, got {other:?}"),
    }

    // Another store with the very same events is another store.
    let elsewhere = SqliteStore::open(&other).unwrap();
    append(&elsewhere, first).await;
    append(&elsewhere, more).await;
    match resume(&path, &elsewhere).await.unwrap() {
        Resumed::Discarded(Discarded::OtherStore {
            checkpoint,
            store: found,
        }) => {
            assert_eq!(checkpoint, store.identity());
            assert_eq!(found, elsewhere.identity());
        }
        other => panic!("a checkpoint of another store must be discarded, got {other:?}"),
    }
    drop(store);

    // The older copy restored: the same store's id, but only 4 events.
    std::fs::copy(copy.join(DB_FILE), data.join(DB_FILE)).unwrap();
    let store = SqliteStore::open(&data).unwrap();
    let why = match resume(&path, &store).await.unwrap() {
        Resumed::Discarded(
            why @ Discarded::AheadOfStore {
                position: 8,
                head: 4,
            },
        ) => why,
        other => panic!("a checkpoint ahead of the head must be discarded, got {other:?}"),
    };
    assert!(
        why.to_string().contains("ahead of the store's head 4"),
        "{why}"
    );

    // … and written on past the checkpoint's position with other events.
    append(&store, other_events).await;
    let why = match resume(&path, &store).await.unwrap() {
        Resumed::Discarded(why @ Discarded::Rewritten { position: 8, .. }) => why,
        other => panic!("a checkpoint of a rewritten history must be discarded, got {other:?}"),
    };
    assert!(
        why.to_string().contains("restored to an older copy"),
        "{why}"
    );

    // What the caller rebuilds is what the store now holds.
    let rebuilt = resume(&path, &store).await.unwrap().into_projections();
    assert_eq!(rebuilt.position(), 0);
    let all = Log {
        events: [first, other_events].concat(),
    };
    let mut caught_up = rebuilt;
    catch_up(&mut caught_up, &store, None, |_| {})
        .await
        .unwrap();
    assert_eq!(caught_up, all.projections());
}

#[tokio::test]
async fn a_damaged_checkpoint_is_discarded_and_a_missing_one_is_no_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("data")).unwrap();
    let path = dir.path().join("projections.ckpt");
    assert!(matches!(
        resume(&path, &store).await.unwrap(),
        Resumed::NoCheckpoint
    ));
    std::fs::write(&path, b"not a checkpoint").unwrap();
    assert!(matches!(
        resume(&path, &store).await.unwrap(),
        Resumed::Discarded(Discarded::Unreadable(_))
    ));
}
