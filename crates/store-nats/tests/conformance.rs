//! Runs the `gryning_store::conformance` suite against `NatsStore`, each case on a nats-server
//! of its own (standalone, `sync_interval: always`, temporary storage).

use gryning_store_nats::testkit as support;

use std::sync::Arc;

use gryning_store::conformance::{self, BoxFuture};
use gryning_store::EventStore;
use gryning_store_nats::{NatsStore, Options};
use support::Server;

async fn fresh() -> ((tempfile::TempDir, Server), Arc<dyn EventStore>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::standalone(dir.path(), true);
    let store = NatsStore::connect(&server.url(), Options::default())
        .await
        .expect("connect the store");
    ((dir, server), Arc::new(store))
}

gryning_store::conformance_tests!(fresh: fresh());

/// Restart: each open after the first restarts the server on the same storage directory, so
/// the events must come back from JetStream's files, not from any process's memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Arc::new(std::sync::Mutex::new(Server::standalone(dir.path(), true)));
    let opens = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let open = move || -> BoxFuture<'static, Arc<dyn EventStore>> {
        let server = Arc::clone(&server);
        let opens = Arc::clone(&opens);
        Box::pin(async move {
            let url = {
                let mut server = server.lock().unwrap();
                if opens.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
                    server.restart();
                }
                server.url()
            };
            let store: Arc<dyn EventStore> = Arc::new(
                NatsStore::connect(&url, Options::default())
                    .await
                    .expect("reopen the store"),
            );
            store
        })
    };
    conformance::restart(&open).await;
}
