//! What one page shows: case-flow, clearance and progress for one choice of rows (code or
//! group), periods (year or quarter) and region (one or all), computed from the live
//! projections, with small-cell suppression over the whole family when it is on; and what
//! changed between two such views, row by row.

use gryning_domain::Catalogue;
use gryning_projections::{By, Cell, PeriodKind, Table, TableName};
use gryning_report::{Source, SourcedTable};
use gryning_service_common::LiveProjections;
use serde_json::{json, Value};

/// The tables of the page (the funnel and the backlog are drawn from progress).
pub const TABLES: [TableName; 3] = [
    TableName::CaseFlow,
    TableName::Clearance,
    TableName::Progress,
];

/// A page's choice of rows, periods and region.
#[derive(Clone, Debug)]
pub struct Query {
    pub by: By,
    pub period: PeriodKind,
    /// `None`: every region together.
    pub region: Option<String>,
}

impl Query {
    /// Reads `by`, `period` and `region` from a URL query (each may be left out: code, year,
    /// every region), naming the parameter and its rule when one is wrong.
    pub fn parse(
        text: &str,
        live: &LiveProjections,
        suppress_below: Option<u32>,
    ) -> Result<Query, String> {
        let mut q = Query {
            by: By::Code,
            period: PeriodKind::Year,
            region: None,
        };
        for (key, value) in form_urlencoded::parse(text.as_bytes()) {
            let value = value.trim();
            match key.as_ref() {
                "by" => {
                    q.by = By::parse(value).ok_or_else(|| {
                        format!("parameter by: must be code or group (value {value:?})")
                    })?
                }
                "period" => {
                    q.period = PeriodKind::parse(value).ok_or_else(|| {
                        format!("parameter period: must be year or quarter (value {value:?})")
                    })?
                }
                "region" if value.is_empty() => q.region = None,
                "region" => {
                    if let Some(below) = suppress_below {
                        return Err(format!(
                            "parameter region: small-cell suppression (dashboard_suppress_below = {below}) covers the tables of every region together, so one region is not shown; leave region empty"
                        ));
                    }
                    q.region = Some(
                        live.read(|p| p.resolve_region(value))
                            .map_err(|e| format!("parameter region: {e}"))?,
                    );
                }
                other => {
                    let shown: String = other.chars().take(40).collect();
                    return Err(format!(
                        "parameter {shown:?}: unknown; the parameters are by, period and region"
                    ));
                }
            }
        }
        Ok(q)
    }
}

/// The page's tables at one position.
pub struct View {
    pub position: u64,
    pub tables: Vec<SourcedTable>,
}

/// A table's cells as JSON: text, whole numbers, numbers and null.
fn cell(c: &Cell) -> Value {
    match c {
        Cell::Text(t) => json!(t),
        Cell::Int(n) => json!(n),
        Cell::Float(x) => json!(x),
        Cell::Null => Value::Null,
    }
}

fn row(cells: &[Cell]) -> Value {
    Value::Array(cells.iter().map(cell).collect())
}

impl View {
    pub fn empty() -> View {
        View {
            position: 0,
            tables: Vec::new(),
        }
    }

    /// The view of `q` now. With suppression, the whole family of the report's tables is
    /// computed and suppressed together (as `gryning table --suppress-below` does), so that two
    /// pages with other choices never show between them what one hides.
    pub fn compute(
        live: &LiveProjections,
        catalogue: &Catalogue,
        q: &Query,
        suppress_below: Option<u32>,
    ) -> View {
        match suppress_below {
            None => live.read(|p| View {
                position: p.position(),
                tables: TABLES
                    .into_iter()
                    .map(|name| SourcedTable {
                        name,
                        by: q.by,
                        period: q.period,
                        table: p
                            .region_table(name, q.by, q.period, catalogue, q.region.as_deref())
                            .unwrap_or_else(|_| Table {
                                name: name.name().to_string(),
                                columns: Vec::new(),
                                rows: Vec::new(),
                            }),
                    })
                    .collect(),
            }),
            Some(below) => {
                let (mut family, position) = live.read(|p| {
                    let family: Vec<SourcedTable> = gryning_report::kinds()
                        .into_iter()
                        .map(|(name, by, period)| SourcedTable {
                            name,
                            by,
                            period,
                            table: p.table(name, by, period, catalogue),
                        })
                        .collect();
                    (family, p.position())
                });
                gryning_report::suppress(
                    &mut family,
                    &gryning_report::groups(catalogue),
                    Source::Live,
                    below,
                );
                View {
                    position,
                    tables: TABLES
                        .into_iter()
                        .filter_map(|name| {
                            family
                                .iter()
                                .find(|t| t.name == name && t.by == q.by && t.period == q.period)
                                .cloned()
                        })
                        .collect(),
                }
            }
        }
    }

    /// Every table in full, with its Swedish title and column labels (the report's words).
    pub fn snapshot(&self) -> Value {
        json!({
            "position": self.position,
            "tables": self.tables.iter().map(|t| json!({
                "name": t.name.name(),
                "title": gryning_report::labels::title(t),
                "columns": t.table.columns,
                "labels": t.table.columns.iter().map(|c| gryning_report::labels::column(t.name, c)).collect::<Vec<_>>(),
                "rows": t.table.rows.iter().map(|r| row(r)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }

    /// The rows of `now` that are new or changed since this view and the keys of rows gone,
    /// per table (as `Insight.Watch` sends them); `None` when nothing changed.
    pub fn changes(&self, now: &View) -> Option<Value> {
        let mut tables = Vec::new();
        for t in &now.tables {
            let empty = Table {
                name: t.table.name.clone(),
                columns: Vec::new(),
                rows: Vec::new(),
            };
            let before = self
                .tables
                .iter()
                .find(|b| b.name == t.name)
                .map_or(&empty, |b| &b.table);
            let (changed, removed) = gryning_insight::changed_rows(before, &t.table);
            if changed.is_empty() && removed.is_empty() {
                continue;
            }
            tables.push(json!({
                "name": t.name.name(),
                "changed": changed.iter().map(|r| row(r)).collect::<Vec<_>>(),
                "removed": removed.iter().map(|k| row(k)).collect::<Vec<_>>(),
            }));
        }
        (!tables.is_empty()).then(|| json!({"position": now.position, "tables": tables}))
    }
}
