//! One owner per directory: a second `SqliteStore::open` of a directory already open (here in
//! the same process, which a lock per process would miss) fails with `Error::Locked` naming
//! the directory and the owner's process id, and writes nothing; a read-only open beside the
//! owner reads what the owner committed and cannot append.

use gryning_store::conformance::{event, request};
use gryning_store::sqlite::{SqliteStore, LOCK_FILE};
use gryning_store::{Error, EventStore, ExpectedVersion};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_open_of_an_owned_directory_is_refused_until_the_owner_closes() {
    let dir = tempfile::tempdir().unwrap();
    let owner = SqliteStore::open(dir.path()).expect("the first open owns the directory");
    owner
        .append(request("a", ExpectedVersion::Exact(0), vec![event("a1")]))
        .await
        .unwrap();
    let recorded = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
    assert_eq!(recorded.trim(), std::process::id().to_string());

    let refused = match SqliteStore::open(dir.path()) {
        Ok(_) => panic!("a second open of an owned directory must fail"),
        Err(e) => e,
    };
    match &refused {
        Error::Locked { dir: locked, pid } => {
            assert_eq!(locked, dir.path());
            assert_eq!(*pid, Some(std::process::id()));
        }
        other => panic!("expected Error::Locked, got {other:?}"),
    }
    let message = refused.to_string();
    for part in [
        dir.path().display().to_string(),
        std::process::id().to_string(),
        "--server".to_string(),
    ] {
        assert!(message.contains(&part), "{message:?} lacks {part:?}");
    }
    // The owner is untouched and keeps writing.
    let next = owner
        .append(request("a", ExpectedVersion::Exact(1), vec![event("a2")]))
        .await
        .unwrap();
    assert_eq!(next.positions, vec![2]);

    drop(owner);
    let reopened = SqliteStore::open(dir.path()).expect("the lock is released on close");
    assert_eq!(reopened.head().await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_open_reads_beside_the_owner_and_never_writes() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        matches!(SqliteStore::open_read_only(dir.path()), Err(Error::Unavailable(m)) if m.contains("no event store")),
        "a read-only open does not create a store"
    );
    let owner = SqliteStore::open(dir.path()).unwrap();
    let a1 = event("a1");
    owner
        .append(request("a", ExpectedVersion::Exact(0), vec![a1.clone()]))
        .await
        .unwrap();

    let reader = SqliteStore::open_read_only(dir.path()).expect("no lock is needed to read");
    assert_eq!(reader.head().await.unwrap(), 1);
    assert_eq!(
        reader.read_all(0, 10).await.unwrap(),
        owner.read_all(0, 10).await.unwrap()
    );
    assert_eq!(
        reader
            .find_event(a1.event_id)
            .await
            .unwrap()
            .unwrap()
            .position,
        1
    );
    match reader
        .append(request("a", ExpectedVersion::Exact(1), vec![event("a2")]))
        .await
    {
        Err(Error::Unavailable(m)) => assert!(m.contains("read-only"), "{m}"),
        other => panic!("a read-only store must refuse appends, got {other:?}"),
    }
    // The owner still writes; the reader keeps the snapshot it opened on.
    owner
        .append(request("a", ExpectedVersion::Exact(1), vec![event("a2")]))
        .await
        .unwrap();
    assert_eq!(owner.head().await.unwrap(), 2);
    assert_eq!(reader.head().await.unwrap(), 1);
}
