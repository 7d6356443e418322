//! `gryning explain TABLE --period P (--code C | --group G) … --measure M [--published Q]`:
//! the events behind one cell, offline on the data directory's store or through a running
//! server's `Insight.Explain`. Both paths produce the reply message of `Explain` and print it
//! the same way, so the output is the same whichever answered.

use std::io::Write;

use gryning_domain::Catalogue;
use gryning_projections::explain::{self, CellRef};
use gryning_projections::{read_publication, PublicationEntry, Table};
use gryning_proto::pb;
use gryning_service_common::publish::PublishError;
use gryning_store::EventStore;

use crate::Format;

/// The cell and where to explain it, as the command line gives them.
#[derive(clap::Args)]
pub(crate) struct ExplainArgs {
    /// case-flow, clearance, care, progress or social-services.
    pub table: String,
    /// The row's period as the table shows it: 2020, 2020-Q3, or 2020-Q1..Q3 (a publication's
    /// year to date).
    #[arg(long)]
    pub period: String,
    /// The row's crime code (case-flow, clearance, progress).
    #[arg(long, conflicts_with = "group", default_value = "")]
    pub code: String,
    /// The row's group, by name (instead of --code).
    #[arg(long, default_value = "")]
    pub group: String,
    /// clearance: ALL (the default), FEMALE, MALE or UNKNOWN; social-services: the row's gender.
    #[arg(long, alias = "gender", default_value = "")]
    pub victim_gender: String,
    /// social-services: CHILD_WELFARE_NOTIFICATION, PROTECTED_HOUSING, SUPPORT_TALKS or
    /// OTHER_SUPPORT.
    #[arg(long, default_value = "")]
    pub service: String,
    /// social-services, notifications: the row's local police area.
    #[arg(long, alias = "area", default_value = "")]
    pub local_police_area: String,
    /// social-services, support: CHILD, ADULT or UNKNOWN.
    #[arg(long, default_value = "")]
    pub age_group: String,
    /// The column: reported, cases, referred, handled, cleared, percent, count, …
    #[arg(long)]
    pub measure: String,
    /// Explain the cell as published for this quarter (YYYY-QN or YYYY-QN@REVISION): the
    /// events up to the position the publication was computed at.
    #[arg(long, value_name = "QUARTER")]
    pub published: Option<String>,
    /// With --published: the revision (default: the latest).
    #[arg(long, value_name = "N", requires = "published")]
    pub revision: Option<u32>,
    /// One police region's cell, as `gryning table --region` shows it (not with --published:
    /// a publication is county-wide; not for social-services).
    #[arg(
        long,
        value_name = "REGION",
        conflicts_with = "published",
        default_value = ""
    )]
    pub region: String,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

impl ExplainArgs {
    fn request(&self) -> explain::Request {
        explain::Request {
            table: self.table.clone(),
            period: self.period.clone(),
            code: self.code.clone(),
            group: self.group.clone(),
            victim_gender: self.victim_gender.clone(),
            service: self.service.clone(),
            local_police_area: self.local_police_area.clone(),
            age_group: self.age_group.clone(),
            measure: self.measure.clone(),
            region: self.region.clone(),
        }
    }

    /// The publication asked for: quarter text and revision (0: the latest).
    pub(crate) fn published(&self) -> anyhow::Result<Option<(String, u32)>> {
        let Some(text) = &self.published else {
            return Ok(None);
        };
        let (quarter, at) = crate::publication::parse_published("--published", text)?;
        Ok(Some((
            quarter.to_string(),
            self.revision.or(at).unwrap_or(0),
        )))
    }

    /// The request of `Insight.Explain`.
    pub(crate) fn to_pb(&self) -> anyhow::Result<pb::ExplainRequest> {
        let r = self.request();
        let (published, revision) = self.published()?.unwrap_or_default();
        Ok(pb::ExplainRequest {
            table: r.table,
            period: r.period,
            code: r.code,
            group: r.group,
            victim_gender: r.victim_gender,
            measure: r.measure,
            published,
            revision,
            service: r.service,
            local_police_area: r.local_police_area,
            age_group: r.age_group,
            region: r.region,
        })
    }
}

/// Explains the cell offline: the log replayed from the store up to its head, or up to the
/// publication's position.
pub(crate) async fn offline(
    store: &dyn EventStore,
    catalogue: &Catalogue,
    args: &ExplainArgs,
) -> anyhow::Result<pb::ExplainReply> {
    let cell = CellRef::parse(&args.request(), catalogue)?;
    let (to, publication) = match args.published()? {
        None => (store.head().await?, None),
        Some((quarter, revision)) => {
            let quarter = gryning_service_common::publish::parse_quarter(&quarter)?;
            let (recorded, p) = read_publication(store, quarter, Some(revision))
                .await
                .map_err(PublishError::from)?;
            let value = explain::published_value(&p, &cell)?;
            let entry = PublicationEntry::of(recorded, &p);
            (p.position, Some((gryning_insight::summary(&entry), value)))
        }
    };
    let bar = crate::progress_bar(0, "replaying");
    bar.tick();
    let log = explain::replay(store, to).await?;
    bar.finish_and_clear();
    let cell = log.in_region(cell)?;
    Ok(gryning_insight::explain_reply(
        &log.explain(&cell),
        publication,
    ))
}

fn cell_text(c: &Option<pb::Cell>) -> String {
    match c.as_ref().and_then(|c| c.value.as_ref()) {
        Some(pb::cell::Value::Int(n)) => n.to_string(),
        Some(pb::cell::Value::Float(x)) => format!("{x}"),
        Some(pb::cell::Value::Text(t)) => t.clone(),
        Some(pb::cell::Value::Null(_)) | None => "-".to_string(),
    }
}

fn cell_json(c: &Option<pb::Cell>) -> serde_json::Value {
    match c.as_ref().and_then(|c| c.value.as_ref()) {
        Some(pb::cell::Value::Int(n)) => (*n).into(),
        Some(pb::cell::Value::Float(x)) => (*x).into(),
        Some(pb::cell::Value::Text(t)) => t.as_str().into(),
        Some(pb::cell::Value::Null(_)) | None => serde_json::Value::Null,
    }
}

/// The events of a reply as a table, one line per event (the set first).
fn events_table(reply: &pb::ExplainReply) -> Table {
    use gryning_projections::Cell;
    Table {
        name: "explain".to_string(),
        columns: vec![
            "set",
            "event_id",
            "stream",
            "position",
            "occurred_on",
            "event_type",
            "crime_id",
            "days",
        ],
        rows: reply
            .sets
            .iter()
            .flat_map(|set| {
                set.events.iter().map(move |e| {
                    vec![
                        Cell::Text(set.name.clone()),
                        Cell::Text(e.event_id.clone()),
                        Cell::Text(e.stream.clone()),
                        Cell::Int(e.position as i64),
                        Cell::Text(e.occurred_on.clone()),
                        Cell::Text(e.event_type.clone()),
                        if e.crime_id.is_empty() {
                            Cell::Null
                        } else {
                            Cell::Text(e.crime_id.clone())
                        },
                        e.days.map_or(Cell::Null, |d| Cell::Int(i64::from(d))),
                    ]
                })
            })
            .collect(),
    }
}

/// The reply as text (a summary, then the events), JSON (one object) or CSV (the events).
pub(crate) fn render(reply: &pb::ExplainReply, format: Format) -> String {
    match format {
        Format::Csv => events_table(reply).to_csv(),
        Format::Json => {
            let sets: serde_json::Map<String, serde_json::Value> = reply
                .sets
                .iter()
                .map(|set| {
                    let events: Vec<serde_json::Value> = set
                        .events
                        .iter()
                        .map(|e| {
                            serde_json::json!({
                                "event_id": e.event_id,
                                "stream": e.stream,
                                "position": e.position,
                                "occurred_on": e.occurred_on,
                                "event_type": e.event_type,
                                "crime_id": (!e.crime_id.is_empty()).then_some(&e.crime_id),
                                "days": e.days,
                            })
                        })
                        .collect();
                    (set.name.clone(), events.into())
                })
                .collect();
            let published = reply.publication.as_ref().map(|p| {
                serde_json::json!({
                    "quarter": p.quarter,
                    "revision": p.revision,
                    "computed_at": p.computed_at,
                    "value": cell_json(&reply.published_value),
                })
            });
            // Per set, what streams erased by retention add (a count; no events to list).
            let erased: serde_json::Map<String, serde_json::Value> = reply
                .sets
                .iter()
                .map(|set| (set.name.clone(), set.erased.into()))
                .collect();
            let out = serde_json::json!({
                "table": reply.table,
                "row": reply.row,
                "measure": reply.measure,
                "value": cell_json(&reply.value),
                "position": reply.position,
                "published": published,
                "sets": sets,
                "erased": erased,
            });
            format!("{out:#}\n")
        }
        Format::Text => {
            let mut out = format!(
                "{} {} {}: {} at position {}\n",
                reply.table,
                reply.row.join(" / "),
                reply.measure,
                cell_text(&reply.value),
                reply.position
            );
            let sizes: Vec<String> = reply
                .sets
                .iter()
                .map(|s| {
                    if s.erased > 0 {
                        format!(
                            "{} {} ({} listed, {} from erased streams)",
                            s.name,
                            s.events.len() as u64 + s.erased,
                            s.events.len(),
                            s.erased
                        )
                    } else {
                        format!("{} {}", s.name, s.events.len())
                    }
                })
                .collect();
            out.push_str(&format!("events: {}\n", sizes.join(", ")));
            if let Some(p) = &reply.publication {
                let published = match reply
                    .published_value
                    .as_ref()
                    .and_then(|c| c.value.as_ref())
                {
                    Some(pb::cell::Value::Null(_)) | None => {
                        "no such row (every count zero)".to_string()
                    }
                    _ => cell_text(&reply.published_value),
                };
                out.push_str(&format!(
                    "published {} revision {} (computed at position {}): {published}\n",
                    p.quarter, p.revision, p.computed_at
                ));
            }
            out.push('\n');
            out.push_str(&events_table(reply).to_text());
            out
        }
    }
}

/// Prints the reply; a published value that the events do not give is said on standard error
/// (the catalogue in force differs from the publication's, or the log was rewritten).
pub(crate) fn print(reply: &pb::ExplainReply, format: Format) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(render(reply, format).as_bytes())?;
    if let (Some(p), Some(published)) = (&reply.publication, &reply.published_value) {
        let absent = matches!(published.value, Some(pb::cell::Value::Null(_)) | None);
        let zero = matches!(
            reply.value.as_ref().and_then(|c| c.value.as_ref()),
            Some(pb::cell::Value::Int(0) | pb::cell::Value::Null(_))
        );
        let same = if absent {
            zero
        } else {
            Some(published) == reply.value.as_ref()
        };
        if !same {
            eprintln!(
                "warning: the events give {} but {} revision {} published {} (catalogue {} at publication)",
                cell_text(&reply.value),
                p.quarter,
                p.revision,
                cell_text(&reply.published_value),
                p.catalogue_version
            );
        }
    }
    Ok(())
}
