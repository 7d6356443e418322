//! Clients that open `Watch`, `Subscribe` or `Read` and stop reading, on connections with a
//! small HTTP/2 window so that flow control stops the server's sending after a few messages:
//! they hold up neither recording nor a client that reads; their streams are ended with
//! RESOURCE_EXHAUSTED (`stream-stalled`) after `stalled_stream_timeout`, which a client that
//! reads again sees after the messages buffered before it; the ended streams' tasks are gone
//! (the open-streams gauge drops); and SIGTERM stops a server they are still connected to.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/up.rs"]
mod up;

use gryning_proto::pb;
use gryning_proto::pb::event_log_client::EventLogClient;
use gryning_proto::pb::insight_client::InsightClient;
use harness::{sample, scrape, Bearer, Server, DEADLINE};
use tonic::transport::{Channel, Endpoint};
use up::{as_role, fold, id, key, reason, Clients, Folded, Intercepted};

const WATCH: &str = "/gryning.v1.Insight/Watch";
const SUBSCRIBE: &str = "/gryning.v1.EventLog/Subscribe";
const READ: &str = "/gryning.v1.EventLog/Read";

/// Cases recorded (two events each: opened, crime reported) while the stalled clients wait.
const CASES: usize = 800;

fn start(dir: &std::path::Path, stall: &str) -> Server {
    up::up_with(dir, &[("GRYNING_STALLED_STREAM_TIMEOUT", stall)])
}

/// A connection of its own whose HTTP/2 windows (stream and connection) hold 1 KiB: a stream
/// on it that is not read stops the server's sending almost at once.
async fn small_window(server: &Server) -> Channel {
    Endpoint::from_shared(server.url())
        .unwrap()
        .initial_stream_window_size(Some(1024))
        .initial_connection_window_size(Some(1024))
        .connect()
        .await
        .expect("connect")
}

fn case_flow_request() -> pb::WatchRequest {
    pb::WatchRequest {
        name: "case-flow".into(),
        by: "code".into(),
        period: "quarter".into(),
        ..Default::default()
    }
}

async fn open_watch(client: &mut InsightClient<Intercepted>) -> tonic::Streaming<pb::TableChange> {
    client
        .watch(case_flow_request())
        .await
        .expect("watch")
        .into_inner()
}

async fn open_subscribe(
    client: &mut EventLogClient<Intercepted>,
) -> tonic::Streaming<pb::RecordedEvent> {
    client
        .subscribe(pb::SubscribeRequest { after: 0 })
        .await
        .expect("subscribe")
        .into_inner()
}

/// Records `cases` cases through the police service, four callers at a time; every call must
/// succeed. The events' ids.
async fn record(police: &Clients, cases: usize) -> Vec<String> {
    let mut callers = Vec::new();
    for caller in 0..4 {
        let mut police = police.police.clone();
        callers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in (caller..cases).step_by(4) {
                let case = id();
                let opened = pb::OpenCaseRequest {
                    event_id: id(),
                    occurred_on: format!("20{}-0{}-02", 19 + n % 2, 1 + n % 9),
                    case_id: case.clone(),
                    case_opened: Some(pb::CaseOpened {
                        lead_crime_code: "9365".into(),
                        ..Default::default()
                    }),
                };
                let reported = pb::ReportCrimeRequest {
                    event_id: id(),
                    occurred_on: opened.occurred_on.clone(),
                    case_id: case.clone(),
                    crime_reported: Some(pb::CrimeReported {
                        crime_id: id(),
                        crime_code: ["4024", "9365", "0418"][n % 3].into(),
                        victim_gender: pb::Gender::Female as i32,
                        victim_age_group: pb::AgeGroup::Adult as i32,
                    }),
                };
                ids.push(opened.event_id.clone());
                ids.push(reported.event_id.clone());
                police.open_case(opened).await.expect("open case");
                police.report_crime(reported).await.expect("report crime");
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for caller in callers {
        ids.extend(caller.await.unwrap());
    }
    ids
}

/// The metric `series` on the server's `/metrics`, once `ok` holds for it.
async fn await_metric(server: &Server, series: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let port = server.metrics_port.expect("metrics on");
    let started = std::time::Instant::now();
    loop {
        let (_, body) = scrape(port, "/metrics").await;
        if let Some(value) = sample(&body, series).filter(|v| ok(*v)) {
            return value;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{series}: not as expected within {DEADLINE:?}; last:\n{body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn stalled_series(method: &str) -> String {
    format!("gryning_streams_stalled_total{{method=\"{method}\"}}")
}

fn open_series(method: &str) -> String {
    format!("gryning_streams_open{{method=\"{method}\"}}")
}

/// While a stalled `Watch` and a stalled `Subscribe` are connected, every police call succeeds
/// and a reading `Watch` and `Subscribe` see every change and every event; the stalled streams
/// are ended with `stream-stalled` (counted in the metrics), which their clients see after the
/// buffered messages once they read; their tasks are gone, and once the readers leave too no
/// stream is open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_streams_hold_up_nobody_and_end_with_stream_stalled() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "1s");
    let tokens = &server.tokens;
    let bearer = |role: &str| Bearer(Some(tokens[role].clone()));

    // The stalled clients: opened, then left unread until the end.
    let mut stalled_watcher =
        InsightClient::with_interceptor(small_window(&server).await, bearer("analyst"));
    let mut stalled_watch = open_watch(&mut stalled_watcher).await;
    let mut stalled_subscriber =
        EventLogClient::with_interceptor(small_window(&server).await, bearer("auditor"));
    let mut stalled_subscribe = open_subscribe(&mut stalled_subscriber).await;

    // The reading clients, on ordinary connections.
    let analyst = as_role(&server, tokens, "analyst").await;
    let auditor = as_role(&server, tokens, "auditor").await;
    let mut watching = open_watch(&mut analyst.insight.clone()).await;
    let mut subscribed = open_subscribe(&mut auditor.log.clone()).await;
    let (watched_tx, mut watched_rx) = tokio::sync::watch::channel(Folded::new());
    let watcher = tokio::spawn(async move {
        let mut table = Folded::new();
        while let Some(change) = watching.message().await.expect("the reading watch") {
            fold(&mut table, &change);
            watched_tx.send_replace(table.clone());
        }
    });
    let (seen_tx, mut seen_rx) = tokio::sync::watch::channel(Vec::<(u64, String)>::new());
    let subscriber = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(event) = subscribed
            .message()
            .await
            .expect("the reading subscription")
        {
            seen.push((event.position, event.event.unwrap().event_id));
            seen_tx.send_replace(seen.clone());
        }
    });

    // Recording goes on while the stalled clients hold their streams.
    let police = as_role(&server, tokens, "police").await;
    let recorded = record(&police, CASES).await;
    assert_eq!(recorded.len(), 2 * CASES);

    // The stalled streams are ended, each counted once.
    for method in [WATCH, SUBSCRIBE] {
        let ended = await_metric(&server, &stalled_series(method), |v| v >= 1.0).await;
        assert_eq!(ended, 1.0, "{method}");
    }
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(
        log.contains("ending a stream whose client stopped reading"),
        "{log}"
    );

    // The reading subscriber saw every event once, in position order.
    let seen = tokio::time::timeout(
        DEADLINE,
        seen_rx.wait_for(|seen| seen.len() >= recorded.len()),
    )
    .await
    .expect("the reading subscriber saw every event")
    .unwrap()
    .clone();
    let positions: Vec<u64> = seen.iter().map(|(p, _)| *p).collect();
    assert_eq!(positions, (1..=recorded.len() as u64).collect::<Vec<_>>());
    let mut ids: Vec<&String> = seen.iter().map(|(_, id)| id).collect();
    let mut expected: Vec<&String> = recorded.iter().collect();
    ids.sort();
    expected.sort();
    assert_eq!(ids, expected);

    // The reading watcher's table, folded from its changes, is the table.
    let table = analyst
        .insight
        .clone()
        .get_table(pb::GetTableRequest {
            name: "case-flow".into(),
            by: "code".into(),
            period: "quarter".into(),
            as_of: None,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(table.position, recorded.len() as u64);
    let expected: Folded = table.rows.iter().map(|r| (key(r), r.clone())).collect();
    assert!(!expected.is_empty());
    tokio::time::timeout(DEADLINE, watched_rx.wait_for(|t| *t == expected))
        .await
        .expect("the reading watcher reached the table")
        .unwrap();

    // The stalled tasks are gone; the readers' remain.
    for method in [WATCH, SUBSCRIBE] {
        assert_eq!(
            await_metric(&server, &open_series(method), |v| v == 1.0).await,
            1.0
        );
    }

    // A stalled client that reads again gets what was buffered, in order, then the status.
    let mut events = Vec::new();
    let status = loop {
        match stalled_subscribe.message().await {
            Ok(Some(event)) => events.push(event.position),
            Ok(None) => panic!("the stalled subscription ended without a status"),
            Err(status) => break status,
        }
    };
    assert_stalled(&status);
    assert!(!events.is_empty() && events.len() < recorded.len());
    assert_eq!(events, (1..=events.len() as u64).collect::<Vec<_>>());
    let mut changes = 0;
    let status = loop {
        match stalled_watch.message().await {
            Ok(Some(change)) => {
                assert_eq!(change.initial, changes == 0);
                changes += 1;
            }
            Ok(None) => panic!("the stalled watch ended without a status"),
            Err(status) => break status,
        }
    };
    assert_stalled(&status);
    assert!(changes > 1, "{changes}");

    // The readers leave: no stream is open.
    watcher.abort();
    subscriber.abort();
    let _ = (watcher.await, subscriber.await);
    drop((analyst, auditor));
    for method in [WATCH, SUBSCRIBE] {
        assert_eq!(
            await_metric(&server, &open_series(method), |v| v == 0.0).await,
            0.0
        );
    }
    server.stop();
}

/// A `Read` of every stored event whose client stops reading: recording goes on, the stream is
/// ended with `stream-stalled` (counted), its task is gone with the events it had not sent,
/// and the client that reads again gets the buffered events in order, then the status; a
/// `Read` that is read gets every event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_read_is_ended_and_holds_up_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "1s");
    let tokens = &server.tokens;
    let police = as_role(&server, tokens, "police").await;
    let before = record(&police, CASES / 2).await;
    let mut stalled_reader = EventLogClient::with_interceptor(
        small_window(&server).await,
        Bearer(Some(tokens["auditor"].clone())),
    );
    let mut stalled = stalled_reader
        .read(pb::ReadRequest {
            after: 0,
            limit: 10_000,
        })
        .await
        .expect("read")
        .into_inner();
    let after = record(&police, CASES / 8).await;
    let ended = await_metric(&server, &stalled_series(READ), |v| v >= 1.0).await;
    assert_eq!(ended, 1.0);
    assert_eq!(
        await_metric(&server, &open_series(READ), |v| v == 0.0).await,
        0.0
    );
    let mut positions = Vec::new();
    let status = loop {
        match stalled.message().await {
            Ok(Some(event)) => positions.push(event.position),
            Ok(None) => panic!("the stalled read ended without a status"),
            Err(status) => break status,
        }
    };
    assert_stalled(&status);
    assert!(
        !positions.is_empty() && positions.len() < before.len(),
        "{} of {} events",
        positions.len(),
        before.len()
    );
    assert_eq!(positions, (1..=positions.len() as u64).collect::<Vec<_>>());
    let mut auditor = as_role(&server, tokens, "auditor").await;
    let all = up::read_log(&mut auditor, 10_000).await;
    assert_eq!(all.len(), before.len() + after.len());
    server.stop();
}

fn assert_stalled(status: &tonic::Status) {
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert_eq!(reason(status), "stream-stalled");
    assert!(
        status
            .message()
            .contains("for 1s (setting stalled_stream_timeout)"),
        "{}",
        status.message()
    );
}

/// SIGTERM while clients that stopped reading hold `Watch` and `Subscribe` streams (their
/// buffers full, unread data in their windows): the server ends the streams, waits at most
/// `stalled_stream_timeout` for the clients, writes the checkpoint and exits with success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_stalled_clients_connected_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    // Longer than the recording takes, so that the streams are still being fed at the signal
    // in the usual case; the test holds either way.
    let server = start(dir.path(), "3s");
    let tokens = &server.tokens;
    let bearer = |role: &str| Bearer(Some(tokens[role].clone()));
    // The clients, their connections and their unread streams stay until the server is gone.
    let mut watcher =
        InsightClient::with_interceptor(small_window(&server).await, bearer("analyst"));
    let _watch = open_watch(&mut watcher).await;
    let mut subscriber =
        EventLogClient::with_interceptor(small_window(&server).await, bearer("auditor"));
    let _subscribe = open_subscribe(&mut subscriber).await;
    let police = as_role(&server, tokens, "police").await;
    record(&police, CASES / 2).await;
    let log = server.log.clone();
    server.stop();
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.contains("clients still hold streams open after stalled_stream_timeout"),
        "{log}"
    );
    assert!(log.contains("projections checkpoint written"), "{log}");
}
