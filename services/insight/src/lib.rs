//! The insight service (`gryning.v1.Insight`): the contract's tables for analysts, from live
//! projections that follow the event log; never event-level data. `Watch` sends a table once in
//! full and then, after each batch the projections apply, only the rows that changed (a row is
//! keyed by its leading text cells: period, code or group, victim gender). When batches land
//! faster than a watcher is served, it skips to the newest state rather than falling behind.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use gryning_projections::{By, Cell, PeriodKind, Projections, Table, TableName};
use gryning_proto::pb;
use gryning_proto::pb::insight_server::{Insight, InsightServer};
use gryning_service_common::auth::{require, Authenticator};
use gryning_service_common::{Context, LiveProjections, Rpc, ServiceError};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

pub use gryning_proto::pb::insight_server::SERVICE_NAME;

pub struct InsightService {
    ctx: Arc<Context>,
    live: Arc<LiveProjections>,
}

/// The service with its authentication interceptor and its request-size limit, ready to mount.
pub fn service(
    ctx: Arc<Context>,
    live: Arc<LiveProjections>,
) -> InterceptedService<InsightServer<InsightService>, Authenticator> {
    let auth = ctx.authenticator();
    let limit = gryning_service_common::limits::decoding_limit(&ctx.settings, Rpc::GetTable);
    InterceptedService::new(
        InsightServer::new(InsightService { ctx, live }).max_decoding_message_size(limit),
        auth,
    )
}

/// Which table, read from the request's text fields; empty `by` and `period` take the
/// defaults of `gryning table` (code, year).
#[derive(Clone, Copy, Debug)]
struct Query {
    name: TableName,
    by: By,
    period: PeriodKind,
}

fn query(name: &str, by: &str, period: &str) -> Result<Query, ServiceError> {
    let name = TableName::parse(name).ok_or_else(|| ServiceError::InvalidArgument {
        field: "name",
        value: name.to_string(),
        problem: "must be case-flow, clearance, care or progress",
    })?;
    let by = match by {
        "" => By::Code,
        text => By::parse(text).ok_or_else(|| ServiceError::InvalidArgument {
            field: "by",
            value: text.to_string(),
            problem: "must be code or group",
        })?,
    };
    let period = match period {
        "" => PeriodKind::Year,
        text => PeriodKind::parse(text).ok_or_else(|| ServiceError::InvalidArgument {
            field: "period",
            value: text.to_string(),
            problem: "must be year or quarter",
        })?,
    };
    Ok(Query { name, by, period })
}

fn cell(cell: &Cell) -> pb::Cell {
    use pb::cell::Value;
    pb::Cell {
        value: Some(match cell {
            Cell::Text(t) => Value::Text(t.clone()),
            Cell::Int(n) => Value::Int(*n),
            Cell::Float(x) => Value::Float(*x),
            Cell::Null => Value::Null(true),
        }),
    }
}

fn row(cells: &[Cell]) -> pb::Row {
    pb::Row {
        cells: cells.iter().map(cell).collect(),
    }
}

/// A row's identity: its leading text cells.
fn key(cells: &[Cell]) -> Vec<Cell> {
    cells
        .iter()
        .take_while(|c| matches!(c, Cell::Text(_)))
        .cloned()
        .collect()
}

/// Rows keyed for diffing; the key is rendered as text because `Cell` holds floats.
fn keyed(table: &Table) -> BTreeMap<String, &Vec<Cell>> {
    table
        .rows
        .iter()
        .map(|r| (format!("{:?}", key(r)), r))
        .collect()
}

/// The rows of `now` that are new or differ from `before`, and the keys of rows gone.
fn diff(before: &Table, now: &Table) -> (Vec<pb::Row>, Vec<pb::Row>) {
    let old = keyed(before);
    let new = keyed(now);
    let changed = new
        .iter()
        .filter(|(k, r)| old.get(*k) != Some(r))
        .map(|(_, r)| row(r))
        .collect();
    let removed = old
        .iter()
        .filter(|(k, _)| !new.contains_key(*k))
        .map(|(_, r)| row(&key(r)))
        .collect();
    (changed, removed)
}

impl InsightService {
    fn table(&self, projections: &Projections, q: Query) -> Table {
        projections.table(q.name, q.by, q.period, &self.ctx.catalogue)
    }
}

type ChangeStream = Pin<Box<dyn Stream<Item = Result<pb::TableChange, Status>> + Send>>;

#[tonic::async_trait]
impl Insight for InsightService {
    async fn get_table(
        &self,
        request: Request<pb::GetTableRequest>,
    ) -> Result<Response<pb::TableReply>, Status> {
        require(&request, Rpc::GetTable).map_err(ServiceError::from)?;
        let r = request.into_inner();
        let q = query(&r.name, &r.by, &r.period)?;
        let (table, position) = match r.as_of {
            None => self.live.read(|p| (self.table(p, q), p.position())),
            Some(as_of) => {
                // An earlier state is replayed from the first event: as-of queries are rare
                // and the live state cannot be rewound.
                let mut past = Projections::default();
                gryning_projections::catch_up(
                    &mut past,
                    self.ctx.store.as_ref(),
                    Some(as_of),
                    |_| {},
                )
                .await
                .map_err(ServiceError::from)?;
                (self.table(&past, q), past.position())
            }
        };
        Ok(Response::new(pb::TableReply {
            name: table.name.clone(),
            columns: table.columns.iter().map(|c| c.to_string()).collect(),
            rows: table.rows.iter().map(|r| row(r)).collect(),
            position,
            json: table.to_json(),
        }))
    }

    type WatchStream = ChangeStream;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<ChangeStream>, Status> {
        require(&request, Rpc::Watch).map_err(ServiceError::from)?;
        let r = request.into_inner();
        let q = query(&r.name, &r.by, &r.period)?;
        let live = Arc::clone(&self.live);
        let catalogue = Arc::clone(&self.ctx.catalogue);
        let mut shutdown = self.ctx.shutdown_signal();
        let mut position = live.watch_position();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            let snapshot =
                || live.read(|p| (p.table(q.name, q.by, q.period, &catalogue), p.position()));
            position.borrow_and_update();
            let (mut previous, at) = snapshot();
            let first = pb::TableChange {
                position: at,
                columns: previous.columns.iter().map(|c| c.to_string()).collect(),
                changed: previous.rows.iter().map(|r| row(r)).collect(),
                removed: Vec::new(),
                initial: true,
            };
            if tx.send(Ok(first)).await.is_err() {
                return;
            }
            loop {
                let stopping = tokio::select! {
                    changed = position.changed() => if changed.is_err() { return } else { false },
                    _ = shutdown.wait_for(|stop| *stop) => true,
                    _ = tx.closed() => return,
                };
                if stopping {
                    let _ = tx.send(Err(ServiceError::ShuttingDown.into())).await;
                    return;
                }
                position.borrow_and_update();
                let (now, at) = snapshot();
                let (changed, removed) = diff(&previous, &now);
                if changed.is_empty() && removed.is_empty() {
                    continue;
                }
                let change = pb::TableChange {
                    position: at,
                    columns: now.columns.iter().map(|c| c.to_string()).collect(),
                    changed,
                    removed,
                    initial: false,
                };
                if tx.send(Ok(change)).await.is_err() {
                    return;
                }
                previous = now;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusReply>, Status> {
        require(&request, Rpc::Status).map_err(ServiceError::from)?;
        let head = self.ctx.store.head().await.map_err(ServiceError::from)?;
        // One state serves every table, so they share a position; each is listed so a
        // dashboard need not know that.
        let position = self.live.read(|p| p.position());
        Ok(Response::new(pb::StatusReply {
            head,
            projections: TableName::ALL
                .into_iter()
                .map(|t| pb::ProjectionStatus {
                    name: t.name().to_string(),
                    position,
                    lag: head.saturating_sub(position),
                    resumed_from: self.live.resumed_from(),
                })
                .collect(),
        }))
    }
}

gryning_service_common::service_application! {
    /// The insight server: this service plus health and reflection, on its own port, with the
    /// live projections (checkpointed in the data directory) it reads.
    names: [SERVICE_NAME],
    mount(ctx, routes) {
        let live = LiveProjections::start(&ctx).await?;
        routes.add_service(service(std::sync::Arc::clone(&ctx), live));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: Vec<Vec<Cell>>) -> Table {
        Table {
            name: "case-flow".into(),
            columns: vec!["period", "code", "reported"],
            rows,
        }
    }

    fn r(period: &str, code: &str, n: i64) -> Vec<Cell> {
        vec![
            Cell::Text(period.into()),
            Cell::Text(code.into()),
            Cell::Int(n),
        ]
    }

    #[test]
    fn diff_sends_new_and_changed_rows_and_removed_keys() {
        let before = table(vec![
            r("2020", "4024", 1),
            r("2020", "9365", 2),
            r("2020", "0418", 1),
        ]);
        let now = table(vec![
            r("2020", "4024", 1),
            r("2020", "9365", 3),
            r("2021", "4024", 1),
        ]);
        let (changed, removed) = diff(&before, &now);
        assert_eq!(
            changed,
            vec![row(&r("2020", "9365", 3)), row(&r("2021", "4024", 1))]
        );
        assert_eq!(
            removed,
            vec![row(&[Cell::Text("2020".into()), Cell::Text("0418".into())])]
        );
        let (changed, removed) = diff(&now, &now);
        assert!(changed.is_empty() && removed.is_empty());
    }

    #[test]
    fn query_defaults_and_errors_name_the_field() {
        let q = query("clearance", "", "").unwrap();
        assert_eq!(
            (q.name, q.by, q.period),
            (TableName::Clearance, By::Code, PeriodKind::Year)
        );
        let e = query("clearance", "colour", "").unwrap_err();
        assert!(e.to_string().contains("field by"), "{e}");
        assert_eq!(Status::from(e).code(), tonic::Code::InvalidArgument);
        // A huge or identity-number-bearing name is echoed short and masked (a made-up number).
        let e = query(&format!("811218-9876 {}", "x".repeat(1 << 20)), "", "").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("field name") && text.len() < 200,
            "{}",
            &text[..200]
        );
        assert!(!text.contains("9876"), "{text}");
    }
}
