//! The latest publication of each quarter and the cells that differ between it and the tables
//! the live state would publish for that quarter now (`gryning diff --against live`'s cells,
//! from `gryning_projections::diff::changed_cells`, without its count of the events behind
//! each change, which needs a replay of the log after the publication).
//!
//! With suppression on, each value is shown as its own family shows it: the publication's
//! tables and the live quarter's tables are each suppressed as one family of publication
//! tables, and a change between two hidden values is left out.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use gryning_domain::{Catalogue, PublishedCell, Quarter};
use gryning_projections::diff::changed_cells;
use gryning_projections::{read_publication, stored_table, Cell, PublishedPeriod, TableName};
use gryning_report::{Source, SourcedTable};
use gryning_service_common::{Context, LiveProjections};
use serde_json::{json, Value};

/// The place of a value: table, `by` (empty for care), period, row key, column.
type Place = (String, String, String, Vec<String>, String);

/// A family's values by place, as suppression left them.
fn places(family: &[SourcedTable]) -> HashMap<Place, Cell> {
    let mut out = HashMap::new();
    for t in family {
        let by = if t.name == TableName::Care {
            String::new()
        } else {
            t.by.name().to_string()
        };
        let period = PublishedPeriod::of(t.period).name().to_string();
        for r in &t.table.rows {
            let key: Vec<String> = r
                .iter()
                .map_while(|c| match c {
                    Cell::Text(s) => Some(s.clone()),
                    _ => None,
                })
                .collect();
            for (j, c) in r.iter().enumerate().skip(key.len()) {
                let column = t.table.columns.get(j).copied().unwrap_or_default();
                out.insert(
                    (
                        t.name.name().to_string(),
                        by.clone(),
                        period.clone(),
                        key.clone(),
                        column.to_string(),
                    ),
                    c.clone(),
                );
            }
        }
    }
    out
}

fn published_json(c: &Option<PublishedCell>) -> Value {
    match c {
        None | Some(PublishedCell::Null) => Value::Null,
        Some(PublishedCell::Text(t)) => json!(t),
        Some(PublishedCell::Int(n)) => json!(n),
        Some(PublishedCell::Float(x)) => json!(x),
    }
}

fn cell_json(c: &Cell) -> Value {
    match c {
        Cell::Text(t) => json!(t),
        Cell::Int(n) => json!(n),
        Cell::Float(x) => json!(x),
        Cell::Null => Value::Null,
    }
}

/// A value as its suppressed family shows it: the mark when hidden.
fn shown(
    family: Option<&HashMap<Place, Cell>>,
    place: &Place,
    raw: &Option<PublishedCell>,
) -> Value {
    match family.and_then(|f| f.get(place)) {
        Some(c) if gryning_report::suppress::is_suppressed(c) => cell_json(c),
        _ => published_json(raw),
    }
}

/// One quarter's publication against live.
fn compare(
    quarter: Quarter,
    publication: &gryning_domain::Publication,
    recorded_at: u64,
    live: &LiveProjections,
    catalogue: &Catalogue,
    suppress_below: Option<u32>,
) -> Value {
    let (now, now_family) = live.read(|p| {
        let now = p.publish_tables(quarter, catalogue);
        let family = suppress_below.map(|_| {
            gryning_report::kinds()
                .into_iter()
                .map(|(name, by, period)| SourcedTable {
                    name,
                    by,
                    period,
                    table: p.published_table(
                        name,
                        (name != TableName::Care).then_some(by),
                        PublishedPeriod::of(period),
                        quarter,
                        catalogue,
                    ),
                })
                .collect::<Vec<_>>()
        });
        (now, family)
    });
    let changes = changed_cells(&publication.tables, &now, &BTreeMap::new());
    let (published_places, now_places) = match (suppress_below, now_family) {
        (Some(below), Some(mut now_family)) => {
            let groups = gryning_report::groups(catalogue);
            let mut published_family: Vec<SourcedTable> = gryning_report::kinds()
                .into_iter()
                .filter_map(|(name, by, period)| {
                    Some(SourcedTable {
                        name,
                        by,
                        period,
                        table: stored_table(publication, name, by, PublishedPeriod::of(period))?,
                    })
                })
                .collect();
            gryning_report::suppress(&mut published_family, &groups, Source::Published, below);
            gryning_report::suppress(&mut now_family, &groups, Source::Published, below);
            (Some(places(&published_family)), Some(places(&now_family)))
        }
        _ => (None, None),
    };
    let rows: Vec<Value> = changes
        .iter()
        .filter_map(|c| {
            let place = (
                c.table.clone(),
                c.by.clone(),
                c.period.clone(),
                c.row.clone(),
                c.measure.clone(),
            );
            let published = shown(published_places.as_ref(), &place, &c.published);
            let now = shown(now_places.as_ref(), &place, &c.now);
            let hidden = |v: &Value| {
                v.as_str()
                    .is_some_and(|t| gryning_report::suppress::is_suppressed(&Cell::Text(t.into())))
            };
            if hidden(&published) && hidden(&now) {
                return None;
            }
            // The report's Swedish word for the measure, for the page.
            let measure_label =
                TableName::parse(&c.table).map(|t| gryning_report::labels::column(t, &c.measure));
            Some(json!({
                "table": c.table,
                "by": c.by,
                "period": c.period,
                "row": c.row,
                "measure": c.measure,
                "measure_label": measure_label,
                "published": published,
                "now": now,
            }))
        })
        .collect();
    json!({
        "quarter": quarter.to_string(),
        "revision": publication.revision,
        "computed_at": publication.position,
        "recorded_at_position": recorded_at,
        "published_at": publication.published_at,
        "automatic": publication.automatic,
        "catalogue_version": publication.catalogue_version,
        "changes": rows,
    })
}

/// Every quarter's latest publication, newest quarter first, with its changes against live.
/// The comparisons (and their suppression) run on a blocking thread.
pub async fn latest_against_live(
    ctx: &Context,
    live: Arc<LiveProjections>,
    suppress_below: Option<u32>,
) -> Result<Value, String> {
    let latest: Vec<(Quarter, u32)> = live.read(|p| {
        let mut by_quarter: BTreeMap<Quarter, u32> = BTreeMap::new();
        for e in p.publications() {
            let r = by_quarter.entry(e.quarter).or_default();
            *r = (*r).max(e.revision);
        }
        by_quarter.into_iter().rev().collect()
    });
    let mut read = Vec::new();
    for (quarter, revision) in latest {
        let (recorded_at, publication) =
            read_publication(ctx.store.as_ref(), quarter, Some(revision))
                .await
                .map_err(|e| format!("the publication of {quarter}: {e}"))?;
        read.push((quarter, recorded_at, publication));
    }
    let catalogue = Arc::clone(&ctx.catalogue);
    tokio::task::spawn_blocking(move || {
        let out: Vec<Value> = read
            .iter()
            .map(|(quarter, recorded_at, publication)| {
                compare(
                    *quarter,
                    publication,
                    *recorded_at,
                    &live,
                    &catalogue,
                    suppress_below,
                )
            })
            .collect();
        let position = live.read(|p| p.position());
        json!({"position": position, "publications": out})
    })
    .await
    .map_err(|e| format!("comparing the publications with live failed: {e}"))
}
