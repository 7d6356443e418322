//! TLS and authentication to NATS: each test starts its own nats-server with a `tls { … }`
//! block (certificates made here), an `authorization { … }` block or an operator with JWT
//! accounts. A connection the server allows must append and read back; each refusal (wrong
//! password, no client certificate, plain text to a TLS-only server, an untrusted server
//! certificate, TLS to a server without it, no credentials) must say what was wrong and which
//! setting to change, and never show the secret.

use gryning_store_nats::testkit as support;

#[path = "support/secure.rs"]
mod secure;

use gryning_store::conformance::{event, request};
use gryning_store::{EventStore, ExpectedVersion};
use gryning_store_nats::{Auth, Connection, NatsStore, Options, Secret, Tls};
use support::Server;

const PASSWORD: &str = "correct-horse-battery-staple";

fn options(connection: Connection) -> Options {
    Options {
        connection,
        request_timeout: std::time::Duration::from_secs(5),
        ..Options::default()
    }
}

fn user(password: &str) -> Auth {
    Auth::UserPassword {
        user: "gryning".into(),
        password: Secret::new(password),
    }
}

fn mutual(pki: &secure::Pki) -> Option<Tls> {
    Some(Tls {
        ca: Some(pki.ca.clone()),
        client: Some((pki.client_cert.clone(), pki.client_key.clone())),
    })
}

/// Connects, appends two events and reads them back: an allowed connection really works.
async fn appends_and_reads_back(url: &str, connection: Connection) {
    let store = NatsStore::connect(url, options(connection))
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let stream = format!("case-{}", uuid::Uuid::new_v4());
    let events = vec![event("opened"), event("closed")];
    let appended = store
        .append(request(&stream, ExpectedVersion::Exact(0), events.clone()))
        .await
        .expect("append");
    assert_eq!(appended.positions.len(), 2);
    let read = store.read_stream(&stream).await.expect("read back");
    let ids: Vec<_> = read.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, events.iter().map(|e| e.event_id).collect::<Vec<_>>());
    assert_eq!(read[1].payload, b"closed");
}

/// The message of a refused connection.
async fn refused(url: &str, connection: Connection) -> String {
    match NatsStore::connect(url, options(connection)).await {
        Ok(_) => panic!("the connection was allowed"),
        Err(e) => e.to_string(),
    }
}

fn assert_says(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{part:?} not in: {message}");
    }
    assert!(!message.contains(PASSWORD), "the password shown: {message}");
}

/// A server with TLS that verifies clients and a user with a password: only the right
/// certificate and password get in, and every other attempt is told what to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_and_a_password_let_in_only_the_right_client() {
    let dir = tempfile::tempdir().unwrap();
    let pki = secure::pki(&dir.path().join("pki"));
    let server = Server::standalone_configured(
        &dir.path().join("nats"),
        &format!(
            "{}{}",
            secure::tls_block(&pki, true),
            secure::user_block("gryning", PASSWORD)
        ),
    );
    let url = server.url();

    appends_and_reads_back(
        &url,
        Connection {
            tls: mutual(&pki),
            auth: user(PASSWORD),
        },
    )
    .await;

    let e = refused(
        &url,
        Connection {
            tls: mutual(&pki),
            auth: user("wrong-password"),
        },
    )
    .await;
    assert_says(
        &e,
        &[
            "refused user \"gryning\" and a password (authorization violation)",
            "nats_password",
        ],
    );
    assert!(!e.contains("wrong-password"), "{e}");

    let e = refused(
        &url,
        Connection {
            tls: mutual(&pki),
            auth: Auth::None,
        },
    )
    .await;
    assert_says(&e, &["requires credentials", "nats_user"]);

    let e = refused(
        &url,
        Connection {
            tls: Some(Tls {
                ca: Some(pki.ca.clone()),
                client: None,
            }),
            auth: user(PASSWORD),
        },
    )
    .await;
    assert_says(
        &e,
        &[
            "requires a client certificate",
            "nats_tls_cert",
            "nats_tls_key",
        ],
    );

    // Plain text: the server says it requires TLS, and gryning has no CA for its certificate.
    let e = refused(
        &url,
        Connection {
            tls: None,
            auth: user(PASSWORD),
        },
    )
    .await;
    assert_says(&e, &["requires TLS", "set nats_tls_ca"]);

    let e = refused(
        &url,
        Connection {
            tls: Some(Tls {
                ca: Some(pki.other_ca.clone()),
                client: Some((pki.client_cert.clone(), pki.client_key.clone())),
            }),
            auth: user(PASSWORD),
        },
    )
    .await;
    assert_says(
        &e,
        &[
            "the server's certificate is not trusted",
            &pki.other_ca.display().to_string(),
            "nats_tls_ca",
        ],
    );
}

/// gryning set up for TLS does not fall back to plain text with a server that has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_settings_refuse_a_server_without_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = secure::pki(&dir.path().join("pki"));
    let server = Server::standalone(&dir.path().join("nats"), true);
    let e = refused(
        &server.url(),
        Connection {
            tls: mutual(&pki),
            auth: Auth::None,
        },
    )
    .await;
    assert_says(&e, &["did not answer TLS", "tls { } block"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_accepted_and_a_wrong_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::standalone_configured(
        dir.path(),
        &format!("authorization {{\n  token: \"{PASSWORD}\"\n}}\n"),
    );
    appends_and_reads_back(
        &server.url(),
        Connection {
            tls: None,
            auth: Auth::Token(Secret::new(format!("{PASSWORD}\n"))),
        },
    )
    .await;
    let e = refused(
        &server.url(),
        Connection {
            tls: None,
            auth: Auth::Token(Secret::new("not-the-token")),
        },
    )
    .await;
    assert_says(&e, &["refused a token", "nats_token"]);
    assert!(!e.contains("not-the-token"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nkey_seed_is_accepted_and_an_unknown_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let known = nkeys::KeyPair::new_user();
    let server = Server::standalone_configured(
        dir.path(),
        &format!(
            "authorization {{\n  users: [ {{ nkey: {} }} ]\n}}\n",
            known.public_key()
        ),
    );
    let seed_file = dir.path().join("gryning.nk");
    appends_and_reads_back(
        &server.url(),
        Connection {
            tls: None,
            auth: Auth::NKey {
                seed: Secret::new(known.seed().unwrap()),
                path: seed_file.clone(),
            },
        },
    )
    .await;
    let stranger = nkeys::KeyPair::new_user();
    let e = refused(
        &server.url(),
        Connection {
            tls: None,
            auth: Auth::NKey {
                seed: Secret::new(stranger.seed().unwrap()),
                path: seed_file.clone(),
            },
        },
    )
    .await;
    assert_says(
        &e,
        &[
            &format!("refused NKey {}", stranger.public_key()),
            "nats_nkey_seed_file",
        ],
    );
    assert!(!e.contains(&stranger.seed().unwrap()), "{e}");
}

/// A server that trusts an operator (JWT accounts): the user's `.creds` file gets in over TLS,
/// and appends to JetStream in its account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creds_file_is_accepted_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = secure::pki(&dir.path().join("pki"));
    let operator = secure::operator();
    let server = Server::standalone_configured(
        &dir.path().join("nats"),
        &format!("{}{}", secure::tls_block(&pki, false), operator.config),
    );
    let creds_path = dir.path().join("gryning.creds");
    let tls = Some(Tls {
        ca: Some(pki.ca.clone()),
        client: None,
    });
    appends_and_reads_back(
        &server.url(),
        Connection {
            tls: tls.clone(),
            auth: Auth::Creds {
                creds: Secret::new(operator.creds.clone()),
                path: creds_path.clone(),
            },
        },
    )
    .await;
    let e = refused(
        &server.url(),
        Connection {
            tls,
            auth: Auth::None,
        },
    )
    .await;
    assert_says(&e, &["requires credentials", "nats_creds_file"]);
}
