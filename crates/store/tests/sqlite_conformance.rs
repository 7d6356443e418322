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

gryning_store::conformance_tests!(fresh: async { fresh() });

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
