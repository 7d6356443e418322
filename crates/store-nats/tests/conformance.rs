//! Runs the `gryning_store::conformance` suite against `NatsStore`, each case on a nats-server
//! of its own (standalone, `sync_interval: always`, temporary storage): once in plain text
//! without authentication, and once (`over_mutual_tls`) over TLS with a client certificate
//! and a user and password, as a deployment following `deploy/nats/` connects.

use gryning_store_nats::testkit as support;

#[path = "support/secure.rs"]
mod secure;

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

/// The suite again, each case on a server that requires TLS with a client certificate from
/// its CA and a user with a password.
mod over_mutual_tls {
    use super::*;
    use gryning_store_nats::{Auth, Connection, Secret, Tls};

    async fn fresh_tls() -> ((tempfile::TempDir, Server), Arc<dyn EventStore>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = secure::pki(&dir.path().join("pki"));
        let server = Server::standalone_configured(
            &dir.path().join("nats"),
            &format!(
                "{}{}",
                secure::tls_block(&pki, true),
                secure::user_block("gryning", "conformance-password")
            ),
        );
        let options = Options {
            connection: Connection {
                tls: Some(Tls {
                    ca: Some(pki.ca.clone()),
                    client: Some((pki.client_cert.clone(), pki.client_key.clone())),
                }),
                auth: Auth::UserPassword {
                    user: "gryning".into(),
                    password: Secret::new("conformance-password"),
                },
            },
            ..Options::default()
        };
        let store = NatsStore::connect(&server.url(), options)
            .await
            .expect("connect the store over mutual TLS");
        ((dir, server), Arc::new(store))
    }

    gryning_store::conformance_tests!(fresh: fresh_tls());
}

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
