//! Start-up without reading the log, and the streams the store runs on: both streams are made
//! with `deny_delete` and `deny_purge`, an existing stream that allows either is refused with
//! the command that fixes it, an event resent after the server's duplicate window is still
//! recognised (a duplicate, or `EventIdReused` with other content or in another stream) by a
//! store that connected after it was stored, and a stream made by a gryning without claims gets
//! them at connect. Each test starts a nats-server of its own.

use gryning_store_nats::testkit as support;

use std::time::Duration;

use async_nats::jetstream::{self, stream::Config};
use gryning_store::conformance::{event, request};
use gryning_store::{Error, EventStore, ExpectedVersion};
use gryning_store_nats::{NatsError, NatsStore, Options};
use support::Server;

async fn js(server: &Server) -> jetstream::Context {
    let client = async_nats::connect(server.url()).await.expect("connect");
    jetstream::new(client)
}

/// The events stream as the store makes it, with `change` applied.
fn events_config(options: &Options, change: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config {
        name: options.stream.clone(),
        subjects: vec![format!("{}.>", options.subject_prefix)],
        allow_direct: true,
        allow_atomic_publish: true,
        deny_delete: true,
        deny_purge: true,
        ..Default::default()
    };
    change(&mut config);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_makes_both_streams_deny_deletes_and_purges() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::standalone(dir.path(), true);
    let store = NatsStore::connect(&server.url(), Options::default())
        .await
        .expect("connect");
    store
        .append(request("s", ExpectedVersion::Exact(0), vec![event("a")]))
        .await
        .expect("append");
    let js = js(&server).await;
    for name in ["GRYNING_EVENTS", "GRYNING_EVENTS_IDS"] {
        let mut stream = js.get_stream(name).await.expect("the stream exists");
        let info = stream.info().await.expect("info");
        assert!(
            info.config.deny_delete && info.config.deny_purge,
            "{name}: {:?}",
            info.config
        );
        assert!(
            stream.purge().await.is_err(),
            "{name}: a purge must be refused"
        );
        assert!(
            stream.delete_message(1).await.is_err(),
            "{name}: a message delete must be refused"
        );
    }
}

/// An existing stream allowing message deletes, or purges, is refused at connect with a
/// message naming what it allows and the command that changes it; after that command the
/// store connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_allowing_deletes_or_purges_is_refused_naming_the_fix() {
    /// A case's name, the change that allows it, and what the refusal says is allowed.
    type Allowing = (&'static str, fn(&mut Config), &'static str);
    let cases: [Allowing; 2] = [
        ("delete", |c| c.deny_delete = false, "message deletes"),
        ("purge", |c| c.deny_purge = false, "purges"),
    ];
    for (case, change, allowed) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Server::standalone(dir.path(), true);
        let options = Options::default();
        let js = js(&server).await;
        js.create_stream(events_config(&options, change))
            .await
            .expect("create the stream");
        let refused = match NatsStore::connect(&server.url(), options.clone()).await {
            Err(e) => e,
            Ok(_) => panic!("{case}: a stream allowing {allowed} must be refused"),
        };
        let NatsError::Stream { stream, reason } = &refused else {
            panic!("{case}: {refused:?}");
        };
        assert_eq!(stream, "GRYNING_EVENTS", "{case}");
        assert!(
            reason.contains(&format!("exists allowing {allowed}")),
            "{case}: {reason}"
        );
        assert!(
            reason.contains("nats stream edit GRYNING_EVENTS --deny-delete --deny-purge"),
            "{case}: the message must say what to change: {reason}"
        );
        assert!(
            js.get_stream("GRYNING_EVENTS_IDS").await.is_err(),
            "{case}: nothing else is created when the events stream is refused"
        );
        // What the message says to do (the server lets the flags be set, not cleared).
        js.update_stream(events_config(&options, |_| {}))
            .await
            .expect("set deny_delete and deny_purge");
        NatsStore::connect(&server.url(), options)
            .await
            .unwrap_or_else(|e| panic!("{case}: after the fix the store connects: {e}"));
    }
}

/// The duplicate window is made 200 ms here (the streams pre-created so): an event resent two
/// seconds after it was stored, to a store that connected after that (so nothing of it is in
/// any process), is a duplicate at its original position; with other content, or to another
/// stream, it is `EventIdReused`; and nothing more is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_after_the_duplicate_window_is_still_recognised() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::standalone(dir.path(), true);
    let options = Options::default();
    let js = js(&server).await;
    let window = Duration::from_millis(200);
    js.create_stream(events_config(&options, |c| c.duplicate_window = window))
        .await
        .expect("create the events stream");
    js.create_stream(Config {
        name: "GRYNING_EVENTS_IDS".into(),
        subjects: vec![format!("{}-ids.>", options.subject_prefix)],
        allow_direct: true,
        allow_atomic_publish: true,
        deny_delete: true,
        deny_purge: true,
        duplicate_window: window,
        ..Default::default()
    })
    .await
    .expect("create the id stream");
    let first = NatsStore::connect(&server.url(), options.clone())
        .await
        .expect("connect");
    let (e1, e2) = (event("one"), event("two"));
    let stored = first
        .append(request(
            "case-1",
            ExpectedVersion::Exact(0),
            vec![e1.clone(), e2.clone()],
        ))
        .await
        .expect("append");
    drop(first);
    tokio::time::sleep(window * 10).await;

    let later = NatsStore::connect(&server.url(), options)
        .await
        .expect("connect again");
    let again = later
        .append(request(
            "case-1",
            ExpectedVersion::Exact(0),
            vec![e1.clone(), e2.clone()],
        ))
        .await
        .expect("resend");
    assert!(again.duplicate, "{again:?}");
    assert_eq!(again.positions, stored.positions);
    let found = later
        .find_event(e2.event_id)
        .await
        .expect("find")
        .expect("e2 is found by id");
    assert_eq!((found.position, found.stream.as_str()), (2, "case-1"));

    let mut changed = e1.clone();
    changed.payload = b"other content".to_vec();
    match later
        .append(request("case-1", ExpectedVersion::Any, vec![changed]))
        .await
    {
        Err(Error::EventIdReused { event_id, .. }) => assert_eq!(event_id, e1.event_id),
        other => panic!("other content under a stored id must be EventIdReused: {other:?}"),
    }
    match later
        .append(request("case-2", ExpectedVersion::Any, vec![e1.clone()]))
        .await
    {
        Err(Error::EventIdReused { event_id, .. }) => assert_eq!(event_id, e1.event_id),
        other => panic!("a stored id in another stream must be EventIdReused: {other:?}"),
    }
    assert_eq!(later.head().await.expect("head"), 2, "nothing more stored");
    assert_eq!(later.stream_version("case-2").await.expect("version"), 0);
}

/// A stream made by a gryning without claims (events in the store's format, no id stream): the
/// first connect claims them, so a resend after the window is a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_without_claims_gets_them_at_connect() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::standalone(dir.path(), true);
    let options = Options::default();
    let js = js(&server).await;
    let window = Duration::from_millis(200);
    js.create_stream(events_config(&options, |c| c.duplicate_window = window))
        .await
        .expect("create the events stream");
    let old: Vec<_> = (0..5).map(|i| event(&format!("old-{i}"))).collect();
    for (i, e) in old.iter().enumerate() {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", e.event_id.to_string().as_str());
        headers.insert("Gryning-Version", (i + 1).to_string().as_str());
        js.publish_with_headers(
            "gryning.events.old".to_owned(),
            headers,
            e.payload.clone().into(),
        )
        .await
        .expect("publish")
        .await
        .expect("stored");
    }
    tokio::time::sleep(window * 10).await;
    let store = NatsStore::connect(&server.url(), options)
        .await
        .expect("connect");
    let ids = js
        .get_stream("GRYNING_EVENTS_IDS")
        .await
        .expect("the id stream is made")
        .info()
        .await
        .expect("info")
        .state
        .messages;
    assert_eq!(ids, 6, "five claims and the complete marker");
    let again = store
        .append(request("old", ExpectedVersion::Any, vec![old[3].clone()]))
        .await
        .expect("resend");
    assert_eq!((again.duplicate, again.positions.clone()), (true, vec![4]));
    let next = store
        .append(request(
            "old",
            ExpectedVersion::Exact(5),
            vec![event("new")],
        ))
        .await
        .expect("append on top");
    assert_eq!((next.positions, next.version), (vec![6], 6));
}
