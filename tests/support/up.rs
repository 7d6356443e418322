//! What the tests of `gryning up` share: starting the built binary on a free port with a data
//! directory, typed clients for a role, and small readers of tables, logs and `Watch` streams.
//! Included next to `harness.rs` (`#[path = "support/up.rs"] mod up;`), whose `Server` it uses.

#![allow(dead_code)]

use std::collections::HashMap;

use gryning_proto::pb;
use gryning_proto::pb::care_client::CareClient;
use gryning_proto::pb::event_log_client::EventLogClient;
use gryning_proto::pb::insight_client::InsightClient;
use gryning_proto::pb::police_client::PoliceClient;
use gryning_proto::pb::prosecution_client::ProsecutionClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::harness::{next_matching, Bearer, Server};

pub const BIN: &str = env!("CARGO_BIN_EXE_gryning");
pub const ROLES: [&str; 6] = [
    "police",
    "prosecution",
    "care",
    "analyst",
    "auditor",
    "admin",
];

pub type Intercepted = InterceptedService<Channel, Bearer>;

/// `gryning up` on a free loopback port with its data in `dir/data`.
pub fn up(dir: &std::path::Path) -> Server {
    Server::start(
        BIN,
        &[
            "up",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.join("data").to_str().unwrap(),
        ],
        &[],
        &dir.join(format!("up-{}.log", uuid::Uuid::new_v4())),
    )
}

/// Typed clients for one role (or none: no token).
pub struct Clients {
    pub police: PoliceClient<Intercepted>,
    pub prosecution: ProsecutionClient<Intercepted>,
    pub care: CareClient<Intercepted>,
    pub log: EventLogClient<Intercepted>,
    pub insight: InsightClient<Intercepted>,
}

pub async fn clients(server: &Server, token: Option<&str>) -> Clients {
    let channel = server.channel().await;
    let b = Bearer(token.map(str::to_string));
    Clients {
        police: PoliceClient::with_interceptor(channel.clone(), b.clone()),
        prosecution: ProsecutionClient::with_interceptor(channel.clone(), b.clone()),
        care: CareClient::with_interceptor(channel.clone(), b.clone()),
        log: EventLogClient::with_interceptor(channel.clone(), b.clone()),
        insight: InsightClient::with_interceptor(channel, b),
    }
}

pub async fn as_role(server: &Server, tokens: &HashMap<String, String>, role: &str) -> Clients {
    clients(server, Some(&tokens[role])).await
}

pub fn id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The rule or reason a refusal names in its `gryning-reason` metadata.
pub fn reason(status: &tonic::Status) -> String {
    status
        .metadata()
        .get("gryning-reason")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

fn text(cell: &pb::Cell) -> Option<&str> {
    match &cell.value {
        Some(pb::cell::Value::Text(t)) => Some(t),
        _ => None,
    }
}

/// The value of `column` in the row whose leading text cells are `key`.
pub fn value(
    columns: &[String],
    rows: &[pb::Row],
    key: &[&str],
    column: &str,
) -> Option<pb::cell::Value> {
    let j = columns.iter().position(|c| c == column).expect("column");
    rows.iter()
        .find(|r| {
            key.iter()
                .enumerate()
                .all(|(i, k)| r.cells.get(i).and_then(text) == Some(*k))
        })
        .and_then(|r| r.cells[j].value.clone())
}

pub fn int(n: i64) -> Option<pb::cell::Value> {
    Some(pb::cell::Value::Int(n))
}

/// The event log from its first event, through `Read` (`limit` 0: the server's default page).
pub async fn read_log(c: &mut Clients, limit: u32) -> Vec<pb::RecordedEvent> {
    let mut read = c
        .log
        .read(pb::ReadRequest { after: 0, limit })
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    while let Some(e) = read.message().await.unwrap() {
        events.push(e);
    }
    events
}

/// A `Watch` of table `name`, past its first (initial) message.
pub async fn watch(c: &mut Clients, name: &str) -> tonic::Streaming<pb::TableChange> {
    let mut stream = c
        .insight
        .watch(pb::WatchRequest {
            name: name.into(),
            by: String::new(),
            period: String::new(),
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();
    let first = next_matching(&mut stream, "initial table", |_| true).await;
    assert!(first.initial);
    stream
}

/// Awaits a change that brings `table`'s row `key` column `column` to `expected`.
pub async fn await_change(
    stream: &mut tonic::Streaming<pb::TableChange>,
    key: &[&str],
    column: &str,
    expected: i64,
) -> pb::TableChange {
    next_matching(stream, &format!("{key:?} {column} = {expected}"), |c| {
        value(&c.columns, &c.changed, key, column) == int(expected)
    })
    .await
}

pub fn tokio_stream_iter(
    events: Vec<pb::Event>,
) -> impl tonic::IntoStreamingRequest<Message = pb::Event> {
    tokio_stream::iter(events)
}

/// Runs the `gryning` command, asserting success; its standard output.
pub fn gryning(args: &[&str]) -> String {
    let out = std::process::Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "gryning {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
