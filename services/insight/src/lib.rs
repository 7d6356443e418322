//! The insight service (`gryning.v1.Insight`): the contract's tables for analysts, from live
//! projections that follow the event log; never event-level data, except `Explain`, which
//! lists the events behind one cell for auditors (replayed from the log up to the position
//! asked, apart from the live projections). `Watch` sends a table once in
//! full and then, after each batch the projections apply, only the rows that changed (a row is
//! keyed by its leading text cells: period, code or group, victim gender, region). Every table
//! can be asked for one police region (`region`); publications are county-wide. When batches land
//! faster than a watcher is served, it skips to the newest state rather than falling behind.

use std::collections::BTreeMap;
use std::sync::Arc;

use gryning_projections::{
    AsOf, By, Cell, PeriodKind, Projections, PublicationEntry, PublishedPeriod, Snapshots, Table,
    TableName,
};
use gryning_proto::pb;
use gryning_proto::pb::insight_server::{Insight, InsightServer};
use gryning_service_common::auth::{require, Authenticator};
use gryning_service_common::publish::{self, PublishError};
use gryning_service_common::{Context, LiveProjections, Outbox, ResponseStream, Rpc, ServiceError};
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
/// defaults of `gryning table` (code, year), an empty `region` every region together.
#[derive(Clone, Debug)]
struct Query {
    name: TableName,
    by: By,
    period: PeriodKind,
    region: Option<String>,
}

fn query(name: &str, by: &str, period: &str) -> Result<Query, ServiceError> {
    let name = TableName::parse(name).ok_or_else(|| ServiceError::InvalidArgument {
        field: "name",
        value: name.to_string(),
        problem:
            "must be case-flow, clearance, care, progress, social-services or region-comparison",
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
    Ok(Query {
        name,
        by,
        period,
        region: None,
    })
}

/// [`query`] with the request's `region`, checked against the police regions and the regions
/// of the stored cases.
fn query_in(
    live: &LiveProjections,
    name: &str,
    by: &str,
    period: &str,
    region: &str,
) -> Result<Query, ServiceError> {
    let mut q = query(name, by, period)?;
    if !region.is_empty() && q.name == TableName::SocialServices {
        return Err(ServiceError::InvalidArgument {
            field: "region",
            value: region.to_string(),
            problem: "the social-services table is county-wide (support is granted to clients, who carry no region); leave region empty",
        });
    }
    if !region.is_empty() {
        q.region = Some(live.read(|p| p.resolve_region(region))?);
    }
    Ok(q)
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
pub fn key(cells: &[Cell]) -> Vec<Cell> {
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

/// The rows of `now` that are new or differ from `before`, and the keys of rows gone: what
/// `Watch` sends after a batch (and the dashboard's live updates too).
pub fn changed_rows<'a>(before: &Table, now: &'a Table) -> (Vec<&'a Vec<Cell>>, Vec<Vec<Cell>>) {
    let old = keyed(before);
    let new = keyed(now);
    let changed = new
        .iter()
        .filter(|(k, r)| old.get(*k) != Some(r))
        .map(|(_, r)| *r)
        .collect();
    let removed = old
        .iter()
        .filter(|(k, _)| !new.contains_key(*k))
        .map(|(_, r)| key(r))
        .collect();
    (changed, removed)
}

/// [`changed_rows`] as protobuf rows.
fn diff(before: &Table, now: &Table) -> (Vec<pb::Row>, Vec<pb::Row>) {
    let (changed, removed) = changed_rows(before, now);
    (
        changed.into_iter().map(|r| row(r)).collect(),
        removed.iter().map(|k| row(k)).collect(),
    )
}

/// The reply's summary of a publication.
pub fn summary(e: &PublicationEntry) -> pb::Publication {
    pb::Publication {
        quarter: e.quarter.to_string(),
        revision: e.revision,
        computed_at: e.computed_at,
        recorded_at_position: e.recorded_at,
        catalogue_version: e.catalogue_version.clone(),
        catalogue_sha256: e.catalogue_sha256.clone(),
        published_at: e.published_at.clone(),
        principal: e.principal.clone(),
        note: e.note.clone(),
        automatic: e.automatic,
    }
}

fn reply(table: &Table, position: u64, publication: Option<pb::Publication>) -> pb::TableReply {
    pb::TableReply {
        name: table.name.clone(),
        columns: table.columns.iter().map(|c| c.to_string()).collect(),
        rows: table.rows.iter().map(|r| row(r)).collect(),
        position,
        json: table.to_json(),
        publication,
    }
}

impl InsightService {
    /// A published table, read from the quarter's stream exactly as recorded.
    async fn published(
        &self,
        q: Query,
        quarter: &str,
        revision: u32,
    ) -> Result<pb::TableReply, ServiceError> {
        let quarter = publish::parse_quarter_in("published", quarter)?;
        let (position, publication) =
            gryning_projections::read_publication(self.ctx.store.as_ref(), quarter, Some(revision))
                .await
                .map_err(PublishError::from)?;
        let table = gryning_projections::stored_table_or_why(
            &publication,
            q.name,
            q.by,
            PublishedPeriod::of(q.period),
        )
        .map_err(PublishError::from)?;
        let entry = PublicationEntry::of(position, &publication);
        Ok(reply(&table, publication.position, Some(summary(&entry))))
    }
}

fn table_of(
    projections: &Projections,
    q: &Query,
    catalogue: &gryning_domain::Catalogue,
) -> Result<Table, ServiceError> {
    Ok(projections.region_table(q.name, q.by, q.period, catalogue, q.region.as_deref())?)
}

/// The reply of `Explain` from an explanation (and, with `published`, the publication).
pub fn explain_reply(
    e: &gryning_projections::explain::Explanation,
    publication: Option<(pb::Publication, Option<Cell>)>,
) -> pb::ExplainReply {
    let (publication, published_value) = match publication {
        None => (None, None),
        Some((p, value)) => (Some(p), Some(cell(&value.unwrap_or(Cell::Null)))),
    };
    pb::ExplainReply {
        table: e.cell.table.name().to_string(),
        row: e.cell.row(),
        measure: e.cell.measure.to_string(),
        value: Some(cell(&e.value)),
        position: e.position,
        sets: e
            .sets
            .iter()
            .map(|set| pb::ExplainedSet {
                name: set.name.to_string(),
                events: set
                    .events
                    .iter()
                    .map(|x| pb::ExplainedEvent {
                        event_id: x.event_id.to_string(),
                        stream: x.stream.clone(),
                        position: x.position,
                        occurred_on: x.occurred_on.to_string(),
                        event_type: x.event_type.to_string(),
                        crime_id: x.crime_id.map(|c| c.to_string()).unwrap_or_default(),
                        days: x.days,
                    })
                    .collect(),
                erased: set.erased,
                erased_days: set
                    .erased_days
                    .iter()
                    .map(|&(days, count)| pb::ErasedDays { days, count })
                    .collect(),
            })
            .collect(),
        publication,
        published_value,
    }
}

type ChangeStream = ResponseStream<pb::TableChange>;

/// The gRPC path of `Watch` (its label in the stream metrics).
const WATCH_METHOD: &str = "/gryning.v1.Insight/Watch";

/// Changes buffered per `Watch` stream beyond what HTTP/2 flow control has let through; a
/// client that leaves the buffer full for `stalled_stream_timeout` has its stream ended.
pub const WATCH_BUFFER: usize = 16;

#[tonic::async_trait]
impl Insight for InsightService {
    async fn get_table(
        &self,
        request: Request<pb::GetTableRequest>,
    ) -> Result<Response<pb::TableReply>, Status> {
        require(&request, Rpc::GetTable).map_err(ServiceError::from)?;
        let r = request.into_inner();
        let q = query_in(&self.live, &r.name, &r.by, &r.period, &r.region)?;
        let catalogue = match r.classification.as_str() {
            "" => self
                .ctx
                .catalogue
                .under(gryning_domain::catalogue::RECORDED),
            name => self.ctx.catalogue.under(name),
        }
        .map_err(ServiceError::from)?;
        if catalogue.classification().is_some() && !r.published.is_empty() {
            return Err(ServiceError::Combination {
                field: "classification",
                value: r.classification,
                problem: format!(
                    "a publication holds its tables as recorded (catalogue version {} when published), not reclassified; leave classification empty or recorded with published, or ask the live table under a version",
                    self.ctx.catalogue.version()
                ),
            }
            .into());
        }
        let as_of_time = match r.as_of_time.trim() {
            "" => None,
            text => Some(AsOf::parse_time(text).map_err(|_| {
                ServiceError::InvalidArgument {
                    field: "as_of_time",
                    value: text.to_string(),
                    problem: "must be an RFC 3339 instant (2021-01-20T12:00:00+01:00) or a date (2021-01-20: up to the end of that day in Stockholm)",
                }
            })?),
        };
        if as_of_time.is_some() && (r.as_of.is_some() || !r.published.is_empty()) {
            return Err(ServiceError::InvalidArgument {
                field: "as_of_time",
                value: r.as_of_time.clone(),
                problem: "as_of_time goes alone: not with as_of (a position) nor with published",
            }
            .into());
        }
        if !r.published.is_empty() {
            if !r.region.is_empty() {
                return Err(ServiceError::InvalidArgument {
                    field: "region",
                    value: r.region,
                    problem: "publications are county-wide: a published table has no region; leave region empty",
                }
                .into());
            }
            if r.as_of.is_some() {
                return Err(ServiceError::InvalidArgument {
                    field: "as_of",
                    value: r.as_of.unwrap_or_default().to_string(),
                    problem: "a published table is as it was published; as_of goes with live tables only",
                }
                .into());
            }
            return Ok(Response::new(
                self.published(q, &r.published, r.revision).await?,
            ));
        }
        if r.revision != 0 {
            return Err(ServiceError::InvalidArgument {
                field: "revision",
                value: r.revision.to_string(),
                problem: "a revision names a publication: set published to its quarter",
            }
            .into());
        }
        let at = as_of_time.or(r.as_of.map(AsOf::Position));
        let (table, position) = match at {
            None => self
                .live
                .read(|p| (table_of(p, &q, &catalogue), p.position())),
            Some(at) => {
                // The live state cannot be rewound: an earlier one starts from the nearest
                // snapshot at or before the point and replays the events between.
                let snapshots = Snapshots::in_data_dir(&self.ctx.settings.data_dir);
                let past =
                    gryning_projections::asof::as_of(self.ctx.store.as_ref(), Some(&snapshots), at)
                        .await
                        .map_err(ServiceError::from)?;
                for (path, why) in &past.skipped {
                    tracing::warn!(path = %path.display(), reason = %why, "snapshot not used for an as-of query");
                }
                (
                    table_of(&past.projections, &q, &catalogue),
                    past.projections.position(),
                )
            }
        };
        Ok(Response::new(reply(&table?, position, None)))
    }

    async fn publish(
        &self,
        request: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let principal = require(&request, Rpc::Publish).map_err(ServiceError::from)?;
        let r = request.into_inner();
        let quarter = publish::parse_quarter(&r.quarter).map_err(ServiceError::from)?;
        publish::check_note(&r.note).map_err(ServiceError::from)?;
        let now = self.ctx.recorder.clock().now();
        publish::check_ended(quarter, gryning_domain::Date::in_stockholm(now))
            .map_err(ServiceError::from)?;
        let publication = self.live.read(|p| {
            publish::compute(
                p,
                &self.ctx.catalogue,
                quarter,
                &r.note,
                &principal.name,
                false,
                now,
            )
        });
        let metadata = gryning_service_common::context::metadata_of(
            &principal.name,
            principal.role.name(),
            now,
        );
        let (position, publication) = publish::record(&self.ctx.recorder, publication, metadata)
            .await
            .map_err(ServiceError::from)?
            .ok_or(ServiceError::Publish(PublishError::Contended { quarter }))?;
        tracing::info!(%quarter, revision = publication.revision, position, principal = %principal.name, "published");
        Ok(Response::new(pb::PublishResponse {
            publication: Some(summary(&PublicationEntry::of(position, &publication))),
        }))
    }

    async fn list_publications(
        &self,
        request: Request<pb::ListPublicationsRequest>,
    ) -> Result<Response<pb::ListPublicationsResponse>, Status> {
        require(&request, Rpc::ListPublications).map_err(ServiceError::from)?;
        let r = request.into_inner();
        let quarter = match r.quarter.as_str() {
            "" => None,
            text => Some(publish::parse_quarter(text).map_err(ServiceError::from)?),
        };
        let publications = self.live.read(|p| {
            p.publications()
                .filter(|e| quarter.is_none_or(|q| e.quarter == q))
                .map(summary)
                .collect()
        });
        Ok(Response::new(pb::ListPublicationsResponse { publications }))
    }

    async fn audit(
        &self,
        request: Request<pb::AuditRequest>,
    ) -> Result<Response<pb::AuditResponse>, Status> {
        require(&request, Rpc::Audit).map_err(ServiceError::from)?;
        let filter = gryning_service_common::audit::Filter::from_request(request.get_ref())?;
        let reply = gryning_service_common::audit::audit(
            self.ctx.store.as_ref(),
            self.ctx.credentials.path(),
            &filter,
        )
        .await?;
        Ok(Response::new(reply))
    }

    async fn explain(
        &self,
        request: Request<pb::ExplainRequest>,
    ) -> Result<Response<pb::ExplainReply>, Status> {
        use gryning_projections::explain;
        require(&request, Rpc::Explain).map_err(ServiceError::from)?;
        let r = request.into_inner();
        let cell = explain::CellRef::parse(
            &explain::Request {
                table: r.table,
                period: r.period,
                code: r.code,
                group: r.group,
                victim_gender: r.victim_gender,
                service: r.service,
                local_police_area: r.local_police_area,
                age_group: r.age_group,
                measure: r.measure,
                region: r.region.clone(),
            },
            &self.ctx.catalogue,
        )
        .map_err(ServiceError::from)?;
        if !r.region.is_empty() && !r.published.is_empty() {
            return Err(ServiceError::InvalidArgument {
                field: "region",
                value: r.region,
                problem: "a publication is county-wide: leave region out, or published for live",
            }
            .into());
        }
        let store = self.ctx.store.as_ref();
        let (to, publication) = if r.published.is_empty() {
            if r.revision != 0 {
                return Err(ServiceError::InvalidArgument {
                    field: "revision",
                    value: r.revision.to_string(),
                    problem: "a revision names a publication: set published to its quarter",
                }
                .into());
            }
            (store.head().await.map_err(ServiceError::from)?, None)
        } else {
            let quarter = publish::parse_quarter(&r.published).map_err(|_| {
                ServiceError::InvalidArgument {
                    field: "published",
                    value: r.published.clone(),
                    problem: "must be a quarter, YYYY-QN (e.g. 2020-Q4), or empty for live",
                }
            })?;
            let (recorded, p) =
                gryning_projections::read_publication(store, quarter, Some(r.revision))
                    .await
                    .map_err(|e| ServiceError::from(PublishError::from(e)))?;
            let value = explain::published_value(&p, &cell).map_err(ServiceError::from)?;
            let entry = PublicationEntry::of(recorded, &p);
            (p.position, Some((summary(&entry), value)))
        };
        // Replayed from the log, apart from the live state: an auditor's question is rare,
        // and a published figure needs the log as it stood at the publication's position.
        let log = explain::replay(store, to)
            .await
            .map_err(ServiceError::from)?;
        let cell = log.in_region(cell).map_err(ServiceError::from)?;
        let explanation = log.explain(&cell);
        tracing::info!(
            table = cell.table.name(),
            measure = cell.measure,
            position = to,
            "explained"
        );
        Ok(Response::new(explain_reply(&explanation, publication)))
    }

    type WatchStream = ChangeStream;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<ChangeStream>, Status> {
        require(&request, Rpc::Watch).map_err(ServiceError::from)?;
        let r = request.into_inner();
        let q = query_in(&self.live, &r.name, &r.by, &r.period, &r.region)?;
        // The region is known now (checked above), so every later table of it is answered.
        let live = Arc::clone(&self.live);
        let catalogue = Arc::clone(&self.ctx.catalogue);
        let mut position = live.watch_position();
        let (mut outbox, stream) = Outbox::open(&self.ctx, WATCH_METHOD, WATCH_BUFFER);
        tokio::spawn(async move {
            let snapshot = || {
                live.read(|p| {
                    let table = table_of(p, &q, &catalogue).unwrap_or_else(|_| Table {
                        name: q.name.name().to_string(),
                        columns: Vec::new(),
                        rows: Vec::new(),
                    });
                    (table, p.position())
                })
            };
            position.borrow_and_update();
            let (mut previous, at) = snapshot();
            let first = pb::TableChange {
                position: at,
                columns: previous.columns.iter().map(|c| c.to_string()).collect(),
                changed: previous.rows.iter().map(|r| row(r)).collect(),
                removed: Vec::new(),
                initial: true,
            };
            if outbox.send(first).await.is_err() {
                return;
            }
            loop {
                match outbox.wait(position.changed()).await {
                    Ok(Ok(())) => {}
                    // The projections stopped (the process is ending) or the stream ended.
                    Ok(Err(_)) | Err(_) => return,
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
                // While the client reads slowly, the changes of several batches become one.
                if outbox.send(change).await.is_err() {
                    return;
                }
                previous = now;
            }
        });
        Ok(Response::new(stream))
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
