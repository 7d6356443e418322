//! What later events changed in a publication: cell by cell, the published value, the value
//! now (or in a later revision) and how many events since the publication changed that cell.
//!
//! The count comes from a replay: the state is rebuilt up to the position the publication was
//! computed at, then the events after it are applied one at a time, the publication's tables
//! are recomputed after each, and every cell whose value moved is charged one event. A cell is
//! listed when its final value differs from the published one (a cell changed and changed back
//! is not listed). Publications after the base position change no cell and are charged nothing.

use std::collections::BTreeMap;

use gryning_domain::{Body, Catalogue, Publication, PublishedCell, PublishedTable};
use gryning_store::EventStore;

use crate::runner::BATCH_SIZE;
use crate::table::{Cell, Table};
use crate::{catch_up, Error, Projections};

/// One changed cell.
#[derive(Clone, Debug, PartialEq)]
pub struct CellChange {
    pub table: String,
    /// `code`, `group`, or empty (`care`).
    pub by: String,
    /// `quarter` or `year-to-date`.
    pub period: String,
    /// The row's key: its leading text cells (period, code or group, victim gender).
    pub row: Vec<String>,
    /// The column.
    pub measure: String,
    /// `None`: the row was not in the table (every count zero).
    pub published: Option<PublishedCell>,
    pub now: Option<PublishedCell>,
    /// Events after the publication's position that changed this cell.
    pub events: u64,
}

/// A cell's place: the table's index in the publication, the row key, the column's index.
pub type CellKey = (usize, Vec<String>, usize);

/// Every measure cell of `tables`, by place.
fn cells(tables: &[PublishedTable]) -> BTreeMap<CellKey, PublishedCell> {
    cells_of(tables.iter().enumerate())
}

/// The index in `published` of each table of `now` (matched by name, `by` and period); a
/// table of `now` that `published` does not hold (a table added to publications since) has
/// none.
fn place_of(published: &[PublishedTable], table: &PublishedTable) -> Option<usize> {
    published
        .iter()
        .position(|p| p.name == table.name && p.by == table.by && p.period == table.period)
}

/// The cells of `now`'s tables at the places of the same tables in `published`, leaving out
/// the tables `published` does not hold.
fn cells_aligned(
    published: &[PublishedTable],
    now: &[PublishedTable],
) -> BTreeMap<CellKey, PublishedCell> {
    cells_of(
        now.iter()
            .filter_map(|t| Some((place_of(published, t)?, t))),
    )
}

fn cells_of<'a>(
    tables: impl Iterator<Item = (usize, &'a PublishedTable)>,
) -> BTreeMap<CellKey, PublishedCell> {
    let mut out = BTreeMap::new();
    for (t, table) in tables {
        for row in &table.rows {
            let key: Vec<String> = row
                .iter()
                .map_while(|c| match c {
                    PublishedCell::Text(s) => Some(s.clone()),
                    _ => None,
                })
                .collect();
            for (c, cell) in row.iter().enumerate().skip(key.len()) {
                out.insert((t, key.clone(), c), cell.clone());
            }
        }
    }
    out
}

/// Whether two cells of one place hold the same value. A row is left out of a table when every
/// count in it is zero, so a missing cell equals a zero count or a missing value.
fn same(a: Option<&PublishedCell>, b: Option<&PublishedCell>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        (None, Some(c)) | (Some(c), None) => {
            matches!(c, PublishedCell::Int(0) | PublishedCell::Null)
        }
        (None, None) => true,
    }
}

/// Places whose values differ between `a` and `b`.
fn differing<'a>(
    a: &'a BTreeMap<CellKey, PublishedCell>,
    b: &'a BTreeMap<CellKey, PublishedCell>,
) -> impl Iterator<Item = &'a CellKey> {
    a.keys()
        .chain(b.keys().filter(|k| !a.contains_key(*k)))
        .filter(|k| !same(a.get(*k), b.get(*k)))
}

/// The cells of `now` that differ from `published`, charged the counts of `events`. Tables
/// are matched by name, `by` and period; only the tables both hold are compared (a
/// publication recorded before a table was added to publications holds no such table).
pub fn changed_cells(
    published: &[PublishedTable],
    now: &[PublishedTable],
    events: &BTreeMap<CellKey, u64>,
) -> Vec<CellChange> {
    let held: Vec<bool> = published
        .iter()
        .map(|p| place_of(now, p).is_some())
        .collect();
    let mut before = cells(published);
    before.retain(|(t, _, _), _| held[*t]);
    let after = cells_aligned(published, now);
    let mut keys: Vec<&CellKey> = differing(&before, &after).collect();
    keys.sort();
    keys.into_iter()
        .map(|key| {
            let (t, row, c) = key;
            let table = &published[*t];
            CellChange {
                table: table.name.clone(),
                by: table.by.clone(),
                period: table.period.clone(),
                row: row.clone(),
                measure: table.columns.get(*c).cloned().unwrap_or_default(),
                published: before.get(key).cloned(),
                now: after.get(key).cloned(),
                events: events.get(key).copied().unwrap_or(0),
            }
        })
        .collect()
}

/// Per cell, how many events at positions after `from` up to `to` changed it, with the state
/// rebuilt to `from` first; also returns the state at `to`. Cells are placed as in
/// `publication`'s tables, and only its tables are followed.
pub async fn count_changes(
    store: &dyn EventStore,
    publication: &Publication,
    to: u64,
    catalogue: &Catalogue,
) -> Result<(BTreeMap<CellKey, u64>, Projections), Error> {
    let quarter = publication.quarter;
    let mut state = Projections::default();
    catch_up(&mut state, store, Some(publication.position), |_| {}).await?;
    let base = &publication.tables;
    let mut previous = cells_aligned(base, &state.publish_tables(quarter, catalogue));
    let mut counts: BTreeMap<CellKey, u64> = BTreeMap::new();
    let mut after = state.position();
    while after < to {
        let limit = BATCH_SIZE.min(usize::try_from(to - after).unwrap_or(usize::MAX));
        let batch = store.read_payloads(after, limit).await?;
        let Some(&(last, _)) = batch.last() else {
            break;
        };
        for (position, payload) in &batch {
            if *position > to {
                break;
            }
            let event = gryning_proto::decode_event(payload).map_err(|source| Error::Decode {
                position: *position,
                source,
            })?;
            state.apply(*position, &event);
            if matches!(event.body, Body::TablesPublished(_)) {
                continue;
            }
            let now = cells_aligned(base, &state.publish_tables(quarter, catalogue));
            for key in differing(&previous, &now) {
                *counts.entry(key.clone()).or_default() += 1;
            }
            previous = now;
        }
        after = last;
    }
    Ok((counts, state))
}

/// The changes as a table (columns `table`, `by`, `period`, `row`, `measure`, `published`,
/// `now`, `events`) for the text, JSON and CSV renderings; a cell absent from a table is null.
pub fn changes_table(changes: &[CellChange]) -> Table {
    let cell = |c: &Option<PublishedCell>| match c {
        None | Some(PublishedCell::Null) => Cell::Null,
        Some(PublishedCell::Text(t)) => Cell::Text(t.clone()),
        Some(PublishedCell::Int(n)) => Cell::Int(*n),
        Some(PublishedCell::Float(x)) => Cell::Float(*x),
    };
    Table {
        name: "diff".to_string(),
        columns: vec![
            "table",
            "by",
            "period",
            "row",
            "measure",
            "published",
            "now",
            "events",
        ],
        rows: changes
            .iter()
            .map(|c| {
                vec![
                    Cell::Text(c.table.clone()),
                    Cell::Text(c.by.clone()),
                    Cell::Text(c.period.clone()),
                    Cell::Text(c.row.join(" / ")),
                    Cell::Text(c.measure.clone()),
                    cell(&c.published),
                    cell(&c.now),
                    Cell::Int(c.events as i64),
                ]
            })
            .collect(),
    }
}
