//! Runs the conformance suite against `SqliteStore`, each case on a fresh temporary directory.

use std::sync::Arc;

use gryning_store::conformance::{self, BoxFuture};
use gryning_store::sqlite::SqliteStore;
use gryning_store::EventStore;
use tempfile::TempDir;

/// A fresh store; the directory lives as long as the returned guard.
fn fresh() -> (TempDir, Arc<dyn EventStore>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path()).expect("open the store");
    (dir, Arc::new(store))
}

macro_rules! case {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (_dir, store) = fresh();
            conformance::$name(store).await;
        }
    };
}

case!(append_and_read_back);
case!(expected_version_conflict);
case!(racing_writers);
case!(idempotency);
case!(batch_with_failures);
case!(read_all_paging);
case!(subscription_hand_over);
case!(large_batch);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    let open = move || -> BoxFuture<'static, Arc<dyn EventStore>> {
        let path = path.clone();
        Box::pin(async move {
            let store: Arc<dyn EventStore> =
                Arc::new(SqliteStore::open(&path).expect("reopen the store"));
            store
        })
    };
    conformance::restart(&open).await;
}

/// The list of cases in `conformance::cases` is the one run above (a new case must be added here).
#[test]
fn every_case_is_run() {
    let names: Vec<_> = conformance::cases()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        names,
        [
            "append_and_read_back",
            "expected_version_conflict",
            "racing_writers",
            "idempotency",
            "batch_with_failures",
            "read_all_paging",
            "subscription_hand_over",
            "large_batch",
        ]
    );
}
