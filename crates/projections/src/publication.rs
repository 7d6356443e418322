//! Publications: every table of the contract for one ended quarter, computed once and stored as
//! a `TablesPublished` event in the quarter's own stream (`publication-2020-Q4`), then read back
//! exactly as stored, whatever is recorded later.
//!
//! [`Projections::publish_tables`] computes the tables of a publication from the state: for
//! `case-flow`, `clearance` and `progress` by code and by group, and `care`, each for the
//! quarter and for the year to date (1 January through the quarter's last day). The state keeps
//! an [`Index`] of the publications it has applied (quarter → revisions, with where each was
//! computed and stored), so listing them reads no events; [`read_publication`] fetches one
//! publication's tables from its stream.

use std::collections::BTreeMap;

use gryning_domain::{Catalogue, Publication, PublishedCell, PublishedTable, Quarter};
use gryning_store::EventStore;

use crate::period::{label, median_histogram};
use crate::query::{columns, key_label, keys_of, push_care_row, push_rows, CareCounts, Sum};
use crate::state::{Projections, NIL};
use crate::table::{By, Cell, PeriodKind, Table, TableName};
use crate::Error;

/// Which rows of a publication: the quarter's, or the year to date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PublishedPeriod {
    Quarter,
    YearToDate,
}

impl PublishedPeriod {
    pub const ALL: [PublishedPeriod; 2] = [PublishedPeriod::Quarter, PublishedPeriod::YearToDate];

    /// `quarter` or `year-to-date`, as stored in `PublishedTable.period`.
    pub fn name(self) -> &'static str {
        match self {
            PublishedPeriod::Quarter => "quarter",
            PublishedPeriod::YearToDate => "year-to-date",
        }
    }

    /// A table query's `--period`: `quarter` is the quarter, `year` the year to date.
    pub fn of(kind: PeriodKind) -> PublishedPeriod {
        match kind {
            PeriodKind::Quarter => PublishedPeriod::Quarter,
            PeriodKind::Year => PublishedPeriod::YearToDate,
        }
    }

    /// The text of the period cell of the rows: `2020-Q3`, or `2020-Q1..Q3` for the year to date.
    pub fn label(self, quarter: Quarter) -> String {
        match self {
            PublishedPeriod::Quarter => quarter.to_string(),
            PublishedPeriod::YearToDate => {
                format!("{:04}-Q1..Q{}", quarter.year(), quarter.number())
            }
        }
    }
}

/// Every (table, by, period) a publication holds, in the order it stores them: `by` is `None`
/// for `care`, which has no code or group rows.
pub fn published_kinds() -> Vec<(TableName, Option<By>, PublishedPeriod)> {
    let mut kinds = Vec::new();
    // Publications are county-wide: the comparison of the regions is not one of their tables.
    for name in TableName::ALL
        .into_iter()
        .filter(|&t| t != TableName::RegionComparison)
    {
        let bys: Vec<Option<By>> = if !name.has_codes() {
            vec![None]
        } else {
            By::ALL.into_iter().map(Some).collect()
        };
        for by in bys {
            for period in PublishedPeriod::ALL {
                kinds.push((name, by, period));
            }
        }
    }
    kinds
}

/// What the index keeps of one publication (everything but its tables).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicationEntry {
    pub quarter: Quarter,
    pub revision: u32,
    /// The position the tables were computed at.
    pub computed_at: u64,
    /// The position of the publication event itself.
    pub recorded_at: u64,
    pub catalogue_version: String,
    pub catalogue_sha256: String,
    pub published_at: String,
    pub principal: String,
    pub note: String,
    pub automatic: bool,
}

impl PublicationEntry {
    pub fn of(recorded_at: u64, p: &Publication) -> PublicationEntry {
        PublicationEntry {
            quarter: p.quarter,
            revision: p.revision,
            computed_at: p.position,
            recorded_at,
            catalogue_version: p.catalogue_version.clone(),
            catalogue_sha256: p.catalogue_sha256.clone(),
            published_at: p.published_at.clone(),
            principal: p.principal.clone(),
            note: p.note.clone(),
            automatic: p.automatic,
        }
    }
}

/// The publications applied so far: per quarter, its revisions in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Index(pub(crate) BTreeMap<Quarter, Vec<PublicationEntry>>);

impl Index {
    pub(crate) fn record(&mut self, position: u64, p: &Publication) {
        self.0
            .entry(p.quarter)
            .or_default()
            .push(PublicationEntry::of(position, p));
    }
}

impl Projections {
    /// The earliest `occurred_on` of any case or care event applied.
    pub fn earliest_date(&self) -> Option<gryning_domain::Date> {
        gryning_domain::Date::from_days(self.span?.0)
    }

    /// Every publication applied, by quarter, then revision.
    pub fn publications(&self) -> impl Iterator<Item = &PublicationEntry> {
        self.publications.0.values().flatten()
    }

    /// A quarter's publication: revision `revision`, or the latest for `None`.
    pub fn publication(
        &self,
        quarter: Quarter,
        revision: Option<u32>,
    ) -> Option<&PublicationEntry> {
        let revisions = self.publications.0.get(&quarter)?;
        match revision {
            None => revisions.last(),
            Some(n) => revisions.iter().find(|e| e.revision == n),
        }
    }

    /// Every table a publication of `quarter` holds, computed from this state with the groups
    /// of `catalogue` ([`published_kinds`] order).
    pub fn publish_tables(&self, quarter: Quarter, catalogue: &Catalogue) -> Vec<PublishedTable> {
        published_kinds()
            .into_iter()
            .map(|(name, by, period)| {
                let table = self.published_table(name, by, period, quarter, catalogue);
                PublishedTable {
                    name: name.name().to_string(),
                    by: by.map_or_else(String::new, |b| b.name().to_string()),
                    period: period.name().to_string(),
                    columns: table.columns.iter().map(|c| c.to_string()).collect(),
                    rows: table
                        .rows
                        .into_iter()
                        .map(|r| r.into_iter().map(published_cell).collect())
                        .collect(),
                }
            })
            .collect()
    }

    /// One table of a publication of `quarter`, as this state would publish it now.
    pub fn published_table(
        &self,
        name: TableName,
        by: Option<By>,
        period: PublishedPeriod,
        quarter: Quarter,
        catalogue: &Catalogue,
    ) -> Table {
        let by = by.unwrap_or(By::Code);
        let q = quarter.year() * 4 + i32::from(quarter.number()) - 1;
        match period {
            PublishedPeriod::Quarter => {
                let mut table = self.table(name, by, PeriodKind::Quarter, catalogue);
                let wanted = label(false, q);
                table
                    .rows
                    .retain(|row| matches!(row.first(), Some(Cell::Text(p)) if *p == wanted));
                table
            }
            PublishedPeriod::YearToDate => self.year_to_date(name, by, quarter, q, catalogue),
        }
    }

    /// The rows of 1 January through the end of quarter number `q` (as `period.rs` numbers
    /// quarters): tallies summed over the year's quarters up to `q`; a case referred in two of
    /// them counts once, as in a year.
    fn year_to_date(
        &self,
        name: TableName,
        by: By,
        quarter: Quarter,
        q: i32,
        catalogue: &Catalogue,
    ) -> Table {
        let first = quarter.year() * 4;
        let period = PublishedPeriod::YearToDate.label(quarter);
        let mut rows = Vec::new();
        if name == TableName::SocialServices {
            self.social_rows(
                |at| (first..=q).contains(&at).then_some(0),
                |_| period.clone(),
                &mut rows,
            );
            return self.social_table(rows);
        }
        if name == TableName::Care {
            let mut c = CareCounts::default();
            let (mut started, mut ended) = (0i64, 0i64);
            for (&at, tally) in self.care.range(..=q) {
                started += tally.started;
                ended += tally.completed + tally.discontinued;
                if at >= first {
                    c.proposed += tally.proposed;
                    c.started += tally.started;
                    c.completed += tally.completed;
                    c.discontinued += tally.discontinued;
                }
            }
            // An end is never dated before its start: running totals give what is running on
            // the quarter's last day.
            c.continuing = started - ended;
            push_care_row(&period, &c, &mut rows);
        } else {
            let mut sums: BTreeMap<u32, Sum> = BTreeMap::new();
            for (&(at, _region, code), tally) in &self.tallies {
                if (first..=q).contains(&at) {
                    for key in keys_of(by, code, catalogue) {
                        sums.entry(key).or_default().add(tally, false);
                    }
                }
            }
            for case in &self.cases {
                let mut p = case.referrals;
                while p != NIL {
                    let node = self.referrals[p as usize];
                    if (first..=q).contains(&node.quarter) {
                        for key in keys_of(by, case.lead, catalogue) {
                            sums.entry(key).or_default().counts.referred_cases += 1;
                        }
                        break;
                    }
                    p = node.next;
                }
            }
            // Erased cases: each counts once, in the quarter of its first referral of the year.
            for (&(at, _region, lead, first_in_year), &n) in &self.erased.referrals {
                if first_in_year && (first..=q).contains(&at) {
                    for key in keys_of(by, lead, catalogue) {
                        sums.entry(key).or_default().counts.referred_cases += n;
                    }
                }
            }
            for (key, mut sum) in sums {
                sum.counts.median_to_referral = median_histogram(&sum.to_referral);
                sum.counts.median_to_decision = median_histogram(&sum.to_decision);
                push_rows(
                    name,
                    &period,
                    &key_label(by, key, catalogue),
                    &sum.counts,
                    &mut rows,
                );
            }
        }
        Table {
            name: name.name().to_string(),
            columns: columns(name, by),
            rows,
        }
    }
}

fn published_cell(cell: Cell) -> PublishedCell {
    match cell {
        Cell::Text(t) => PublishedCell::Text(t),
        Cell::Int(n) => PublishedCell::Int(n),
        Cell::Float(x) => PublishedCell::Float(x),
        Cell::Null => PublishedCell::Null,
    }
}

fn table_cell(cell: &PublishedCell) -> Cell {
    match cell {
        PublishedCell::Text(t) => Cell::Text(t.clone()),
        PublishedCell::Int(n) => Cell::Int(*n),
        PublishedCell::Float(x) => Cell::Float(*x),
        PublishedCell::Null => Cell::Null,
    }
}

/// The stored table of `publication` for (`name`, `by`, `period`), as a [`Table`] to render;
/// `None` when the publication holds no such table.
pub fn stored_table(
    publication: &Publication,
    name: TableName,
    by: By,
    period: PublishedPeriod,
) -> Option<Table> {
    let by_name = if name.has_codes() { by.name() } else { "" };
    let stored = publication
        .tables
        .iter()
        .find(|t| t.name == name.name() && t.by == by_name && t.period == period.name())?;
    Some(Table {
        name: name.name().to_string(),
        columns: columns(name, by),
        rows: stored
            .rows
            .iter()
            .map(|r| r.iter().map(table_cell).collect())
            .collect(),
    })
}

/// The stored table of `publication` for (`name`, `by`, `period`), or why it holds none: a
/// comparison of the regions (publications are county-wide), or a table added to gryning after
/// the publication was recorded.
pub fn stored_table_or_why(
    publication: &Publication,
    name: TableName,
    by: By,
    period: PublishedPeriod,
) -> Result<Table, ReadError> {
    stored_table(publication, name, by, period).ok_or(ReadError::NoTable {
        quarter: publication.quarter,
        revision: publication.revision,
        table: name.name(),
        why: if name == TableName::RegionComparison {
            "publications are county-wide and hold no comparison of the regions"
        } else {
            "it was recorded before gryning published that table; read the table live, or publish the quarter again for a revision that holds it"
        },
    })
}

/// Why a publication could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(
        "quarter {quarter} has no publication; publish it with gryning publish --quarter {quarter}"
    )]
    NoPublication { quarter: Quarter },
    #[error("quarter {quarter} has no revision {revision}: its revisions are 1 to {latest}")]
    NoRevision {
        quarter: Quarter,
        revision: u32,
        latest: u32,
    },
    #[error("the publication of {quarter} revision {revision} holds no {table} table: {why}")]
    NoTable {
        quarter: Quarter,
        revision: u32,
        table: &'static str,
        why: &'static str,
    },
    #[error(transparent)]
    Projections(#[from] Error),
}

/// Reads revision `revision` (the latest for `None` or 0) of `quarter`'s publication from its
/// stream, with the position it is stored at.
pub async fn read_publication(
    store: &dyn EventStore,
    quarter: Quarter,
    revision: Option<u32>,
) -> Result<(u64, Publication), ReadError> {
    let stream = store
        .read_stream(&quarter.stream_name())
        .await
        .map_err(Error::from)?;
    let latest = stream.len() as u32;
    if latest == 0 {
        return Err(ReadError::NoPublication { quarter });
    }
    let revision = revision.filter(|&n| n != 0).unwrap_or(latest);
    let Some(recorded) = stream.iter().find(|e| e.version == u64::from(revision)) else {
        return Err(ReadError::NoRevision {
            quarter,
            revision,
            latest,
        });
    };
    let event = gryning_proto::decode_event(&recorded.payload).map_err(|source| Error::Decode {
        position: recorded.position,
        source,
    })?;
    match event.body {
        gryning_domain::Body::TablesPublished(p) => Ok((recorded.position, *p)),
        other => Err(ReadError::Projections(Error::Decode {
            position: recorded.position,
            source: gryning_proto::convert::DecodeError::Invalid(gryning_domain::Error::invalid(
                "body",
                other.type_name(),
                "a publication stream holds TablesPublished events only",
            )),
        })),
    }
}
