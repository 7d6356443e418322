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

/// `gryning up` on a free loopback port, with metrics on another, its data in `dir/data` and
/// the settings `env` (`GRYNING_…` variables).
pub fn up_with(dir: &std::path::Path, env: &[(&str, &str)]) -> Server {
    Server::start(
        BIN,
        &[
            "up",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.join("data").to_str().unwrap(),
        ],
        env,
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

/// A police `OpenCase` of `case` (4024, Polisregion Stockholm, Farsta, 2020-03-02).
pub fn open_case(case: &str) -> pb::OpenCaseRequest {
    pb::OpenCaseRequest {
        event_id: id(),
        occurred_on: "2020-03-02".into(),
        case_id: case.into(),
        case_opened: Some(pb::CaseOpened {
            lead_crime_code: "4024".into(),
            police_region: "Stockholm".into(),
            local_police_area: "Farsta".into(),
        }),
    }
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

/// Runs `gryning ARGS…` with `env` set and the settings the test's own environment may carry
/// (`GRYNING_CONFIG`, `…_STORE`, `…_CATALOG`, `…_TOKEN`, `…_SERVER`, `…_TEST_CLOCK`) removed,
/// so the arguments and `env` alone decide what the command does.
pub fn gryning_with(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = std::process::Command::new(BIN);
    command.args(args);
    for name in [
        "GRYNING_CONFIG",
        "GRYNING_STORE",
        "GRYNING_CATALOG",
        "GRYNING_TOKEN",
        "GRYNING_SERVER",
        "GRYNING_TEST_CLOCK",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.output().expect("gryning runs")
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

/// Events for `cases` cases of `year`: opened (10 January), a crime reported (11 January),
/// referred (1 February), decided by the prosecutor (1 May); codes and genders in turn.
pub fn four_event_cases(cases: usize, year: u32) -> Vec<pb::Event> {
    use pb::event::Body as B;
    let mut events = Vec::new();
    for i in 0..cases {
        let (case, crime) = (id(), id());
        let code = ["9365", "4024", "0418"][i % 3];
        let ev = |day: &str, body| pb::Event {
            event_id: id(),
            occurred_on: format!("{year}-{day}"),
            subject: Some(pb::event::Subject::CaseId(case.clone())),
            body: Some(body),
        };
        events.push(ev(
            "01-10",
            B::CaseOpened(pb::CaseOpened {
                lead_crime_code: code.into(),
                ..Default::default()
            }),
        ));
        events.push(ev(
            "01-11",
            B::CrimeReported(pb::CrimeReported {
                crime_id: crime.clone(),
                crime_code: code.into(),
                victim_gender: 1 + (i % 3) as i32,
                victim_age_group: 2,
            }),
        ));
        events.push(ev(
            "02-01",
            B::CaseReferredToProsecutor(pb::CaseReferredToProsecutor {}),
        ));
        events.push(ev(
            "05-01",
            B::ProsecutionDecided(pb::ProsecutionDecided {
                crime_id: crime,
                decision: 1 + (i % 4) as i32,
            }),
        ));
    }
    events
}

/// A table as its rows' leading text cells (period, code or group, gender) → the row, as a
/// `Watch` client folds it from the changes.
pub type Folded = std::collections::BTreeMap<Vec<String>, pb::Row>;

/// A row's key: its leading text cells.
pub fn key(row: &pb::Row) -> Vec<String> {
    row.cells
        .iter()
        .map_while(|c| match &c.value {
            Some(pb::cell::Value::Text(t)) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

/// Applies one `Watch` message to the folded table.
pub fn fold(table: &mut Folded, change: &pb::TableChange) {
    if change.initial {
        table.clear();
    }
    for row in &change.removed {
        table.remove(&key(row));
    }
    for row in &change.changed {
        table.insert(key(row), row.clone());
    }
}
