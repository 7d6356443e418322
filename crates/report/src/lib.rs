//! The follow-up report of gryning's tables, and small-cell suppression.
//!
//! The report is made from tables as typed data ([`SourcedTable`]: which table, by code or
//! group, per year or quarter, and its cells), never from a store or a server: the command line
//! gathers them (from the data directory or a running server) and [`write`] turns them into
//! - `rapport-YYYY.html`: one self-contained page (inline CSS and SVG, no script) in Swedish,
//!   laid out for A4 ([`html`], charts in [`svg`]);
//! - `rapport-YYYY.xlsx`: one sheet per table, numbers as numeric cells ([`xlsx`]);
//! - one CSV per table, exactly as `gryning table --format csv` writes it
//!   ([`gryning_projections::Table::to_csv`]).
//!
//! [`suppress`] hides small counts, and the counts that would give them away, across a family
//! of tables; `gryning table --suppress-below N` and the report use the same function.

pub mod html;
pub mod labels;
pub mod suppress;
pub mod svg;
pub mod xlsx;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gryning_projections::{By, Cell, PeriodKind, TableName};
pub use gryning_projections::{RegionComparisonRow, Verdict};
pub use suppress::{suppress, Source, SourcedTable, Suppressed};

/// The region the report sets against the median of the regions: the report is Stockholm
/// county's.
pub const COMPARED_REGION: &str = "Polisregion Stockholm";

/// The `region-comparison` rows of the live tables at the report's position (publications
/// hold none): by group per year for the charts, by code per year and per quarter for the
/// verdicts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    /// Every region's rows (the median is taken over them).
    pub tables: Vec<(By, PeriodKind, Vec<RegionComparisonRow>)>,
    /// The compared region's rows of the same tables as `gryning table region-comparison
    /// --region REGION` gives them, suppressed as [`suppress_comparison`] leaves them: the
    /// report's sheets and CSV files of the comparison, and what the page may show of it.
    pub shown: Vec<SourcedTable>,
}

impl Comparison {
    /// The rows by `by` per `period` (empty when not gathered).
    pub fn rows(&self, by: By, period: PeriodKind) -> &[RegionComparisonRow] {
        self.tables
            .iter()
            .find(|(b, p, _)| *b == by && *p == period)
            .map_or(&[], |(_, _, rows)| rows.as_slice())
    }

    /// The regions that handled a crime, in the rows' order.
    pub fn regions(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for (_, _, rows) in &self.tables {
            for r in rows {
                if !out.contains(&r.region.as_str()) {
                    out.push(&r.region);
                }
            }
        }
        out
    }

    /// The row of `region` for (`period`, `key`, `gender`), and the median of that cell (which
    /// every region's row carries, so it is known even where `region` handled nothing).
    pub fn find(
        &self,
        by: By,
        period: PeriodKind,
        (label, key, gender): (&str, &str, &str),
        region: &str,
    ) -> (Option<&RegionComparisonRow>, Option<f64>) {
        let mut cell = self
            .rows(by, period)
            .iter()
            .filter(|r| r.period == label && r.key == key && r.victim_gender == gender)
            .peekable();
        let median = cell.peek().and_then(|r| r.median_percent);
        (cell.find(|r| r.region == region), median)
    }

    /// Whether `row`'s rate (and verdict) may be shown: not when [`Comparison::shown`] hides
    /// it (a rate over a hidden count of the compared region).
    pub fn rate_shown(&self, by: By, period: PeriodKind, row: &RegionComparisonRow) -> bool {
        let Some(t) = self.shown.iter().find(|t| t.by == by && t.period == period) else {
            return true;
        };
        let column = |name: &str| t.table.columns.iter().position(|c| *c == name);
        let (Some(p), Some(k), Some(g), Some(r), Some(pct)) = (
            column("period"),
            column(by.name()),
            column("victim_gender"),
            column("region"),
            column("percent"),
        ) else {
            return true;
        };
        let text = |c: &Cell| match c {
            Cell::Text(t) => t.clone(),
            _ => String::new(),
        };
        !t.table.rows.iter().any(|cells| {
            text(&cells[p]) == row.period
                && text(&cells[k]) == row.key
                && text(&cells[g]) == row.victim_gender
                && text(&cells[r]) == row.region
                && suppress::is_suppressed(&cells[pct])
        })
    }
}

/// Hides in the compared region's `region-comparison` tables (`shown`) what the suppression of
/// that region's own family of tables (`family`, already suppressed) hides: its `handled` and
/// `cleared` are the region's `clearance` counts, so each takes the mark of the same cell of
/// the region's `clearance` table (by the same code or group and period), and a rate and a
/// verdict over a hidden count are `..`. The median and the number of regions in it stay: a
/// rate of at least 3 regions, no region's count.
pub fn suppress_comparison(shown: &mut [SourcedTable], family: &[SourcedTable]) {
    let text = |c: &Cell| match c {
        Cell::Text(t) => t.clone(),
        _ => String::new(),
    };
    for t in shown.iter_mut() {
        let Some(clearance) = family
            .iter()
            .find(|f| f.name == TableName::Clearance && f.by == t.by && f.period == t.period)
        else {
            continue;
        };
        let col = |table: &gryning_projections::Table, name: &str| {
            table.columns.iter().position(|c| *c == name)
        };
        let (Some(ch), Some(cc)) = (
            col(&clearance.table, "handled"),
            col(&clearance.table, "cleared"),
        ) else {
            continue;
        };
        let marks: BTreeMap<(String, String, String), (Cell, Cell)> = clearance
            .table
            .rows
            .iter()
            .map(|r| {
                (
                    (text(&r[0]), text(&r[1]), text(&r[2])),
                    (r[ch].clone(), r[cc].clone()),
                )
            })
            .collect();
        let columns = |name: &str| col(&t.table, name);
        let (Some(h), Some(c), Some(pct), Some(v), Some(g)) = (
            columns("handled"),
            columns("cleared"),
            columns("percent"),
            columns("verdict"),
            columns("victim_gender"),
        ) else {
            continue;
        };
        for row in &mut t.table.rows {
            let key = (text(&row[0]), text(&row[1]), text(&row[g]));
            let Some((handled, cleared)) = marks.get(&key) else {
                continue;
            };
            let mut hidden = false;
            for (j, mark) in [(h, handled), (c, cleared)] {
                if suppress::is_suppressed(mark) {
                    row[j] = mark.clone();
                    hidden = true;
                }
            }
            if hidden {
                row[pct] = Cell::Text(suppress::COMPLEMENTARY_MARK.to_string());
                row[v] = Cell::Text(suppress::COMPLEMENTARY_MARK.to_string());
            }
        }
    }
}

/// Every (table, by, period) of one source's family, as a publication holds them (care once per
/// period): the report's tables, and the family small-cell suppression works across.
pub fn kinds() -> Vec<(TableName, By, PeriodKind)> {
    let mut out = Vec::new();
    // The report's tables (social-services and the comparison of the regions are not in it).
    for name in [
        TableName::CaseFlow,
        TableName::Clearance,
        TableName::Care,
        TableName::Progress,
    ] {
        let bys: &[By] = if name == TableName::Care {
            &[By::Code]
        } else {
            &By::ALL
        };
        for &by in bys {
            for period in PeriodKind::ALL {
                out.push((name, by, period));
            }
        }
    }
    out
}

/// The catalogue's groups with their codes' four-digit texts, as [`suppress`] takes them.
pub fn groups(catalogue: &gryning_domain::Catalogue) -> Vec<(String, Vec<String>)> {
    catalogue
        .groups()
        .iter()
        .map(|g| {
            (
                g.name.clone(),
                g.codes.iter().map(|c| c.to_string()).collect(),
            )
        })
        .collect()
}

/// The tables of one source: the live tables at one position, or one publication.
#[derive(Clone, Debug, PartialEq)]
pub struct Figures {
    pub source: Source,
    /// The global store position the tables reflect.
    pub position: u64,
    /// With [`Source::Published`]: the quarter and revision, `2020-Q4` and 2.
    pub publication: Option<(String, u32)>,
    pub tables: Vec<SourcedTable>,
}

impl Figures {
    /// The table `name` by `by` per `period`, if the source holds it.
    pub fn get(&self, name: TableName, by: By, period: PeriodKind) -> Option<&SourcedTable> {
        self.tables.iter().find(|t| {
            t.name == name && (name == TableName::Care || t.by == by) && t.period == period
        })
    }
}

/// What a report covers and where its figures come from.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub year: i32,
    /// With `--quarter`: the quarter's number (1–4); the report then shows that quarter.
    pub quarter: Option<u8>,
    /// The figures the report is about.
    pub current: Figures,
    /// From a publication: the same quarter's publication a year earlier, for the change from
    /// the previous year and the chart (live tables hold every year themselves).
    pub previous: Option<Figures>,
    /// Four-digit code → the catalogue's text.
    pub code_texts: BTreeMap<String, String>,
    /// The catalogue's groups with their member codes.
    pub groups: Vec<(String, Vec<String>)>,
    pub provenance: Provenance,
    /// The threshold of small-cell suppression, when on.
    pub suppress_below: Option<u32>,
    /// The regions against their median; `None` with a publication's figures.
    pub comparison: Option<Comparison>,
    /// With `--region`: the police region whose tables the report holds (its full name); it is
    /// then the region set against the median. `None`: every region together.
    pub region: Option<String>,
}

/// Where the figures come from, as the report states it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Provenance {
    /// `embedded store in ./gryning-data` or `http://127.0.0.1:50051`.
    pub store: String,
    pub catalogue_version: String,
    pub catalogue_sha256: String,
    /// When the report was made, RFC 3339 (UTC).
    pub made_at: String,
    /// The command that made it.
    pub command: String,
    /// With a publication: when it was published and by whom.
    pub published_at: Option<String>,
    /// With `--classification VERSION`: the version every crime is counted under.
    pub classification: Option<String>,
}

/// A period's label in the tables of `figures`: `2020`, `2020-Q4`, or from a publication
/// `2020-Q1..Q4` (the year to date) or `2020-Q4` (the quarter).
pub fn period_label(figures: &Figures, year: i32, quarter: Option<u8>) -> String {
    match (figures.source, quarter, &figures.publication) {
        (_, Some(q), _) => format!("{year:04}-Q{q}"),
        (Source::Published, None, Some((published, _))) => {
            let q = published.rsplit('Q').next().unwrap_or("4");
            format!("{year:04}-Q1..Q{q}")
        }
        _ => format!("{year:04}"),
    }
}

impl Report {
    /// The region set against the median of the regions: the report's region, or Polisregion
    /// Stockholm for a report of every region together.
    pub fn compared_region(&self) -> &str {
        self.region.as_deref().unwrap_or(COMPARED_REGION)
    }

    /// The period kind of the report's tables.
    pub fn period(&self) -> PeriodKind {
        if self.quarter.is_some() {
            PeriodKind::Quarter
        } else {
            PeriodKind::Year
        }
    }

    /// The figures and period label of the report's period and of the same period a year
    /// earlier (when there are figures for it).
    pub fn periods(&self) -> ((&Figures, String), Option<(&Figures, String)>) {
        let current = (
            &self.current,
            period_label(&self.current, self.year, self.quarter),
        );
        let previous = match (self.current.source, &self.previous) {
            (Source::Published, Some(p)) => Some((p, period_label(p, self.year - 1, self.quarter))),
            (Source::Published, None) => None,
            (Source::Live, _) => Some((
                &self.current,
                period_label(&self.current, self.year - 1, self.quarter),
            )),
        };
        (current, previous)
    }

    /// Every table the report carries, in order: the current figures', the compared region's
    /// `region-comparison` tables, then the previous year's publication's, each with its file
    /// stem.
    pub fn all_tables(&self) -> Vec<(String, &SourcedTable)> {
        let mut out = Vec::new();
        for t in &self.current.tables {
            out.push((t.key(), t));
        }
        for t in self.comparison.iter().flat_map(|c| &c.shown) {
            out.push((t.key(), t));
        }
        for (figures, suffix) in self.previous.iter().map(|p| {
            let q = p
                .publication
                .as_ref()
                .map(|(q, _)| q.clone())
                .unwrap_or_default();
            (p, format!("-{q}"))
        }) {
            for t in &figures.tables {
                out.push((format!("{}{suffix}", t.key()), t));
            }
        }
        out
    }
}

/// A count or a number of the tables, as the report reads it.
pub(crate) fn number(cell: &Cell) -> Option<f64> {
    match cell {
        Cell::Int(n) => Some(*n as f64),
        Cell::Float(x) => Some(*x),
        _ => None,
    }
}

/// The files [`write`] made.
#[derive(Clone, Debug, Default)]
pub struct Written {
    pub html: PathBuf,
    pub xlsx: PathBuf,
    pub csv: Vec<PathBuf>,
}

/// Writes the report's HTML page, workbook and CSV files into `dir` (created when missing).
pub fn write(report: &Report, dir: &Path) -> Result<Written, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Io(dir.to_path_buf(), e))?;
    let stem = format!("rapport-{:04}", report.year);
    let html = dir.join(format!("{stem}.html"));
    std::fs::write(&html, html::render(report)).map_err(|e| Error::Io(html.clone(), e))?;
    let xlsx = dir.join(format!("{stem}.xlsx"));
    xlsx::write(report, &xlsx)?;
    let mut csv = Vec::new();
    for (key, t) in report.all_tables() {
        let path = dir.join(format!("{stem}-{key}.csv"));
        std::fs::write(&path, t.table.to_csv()).map_err(|e| Error::Io(path.clone(), e))?;
        csv.push(path);
    }
    Ok(Written { html, xlsx, csv })
}

/// Why the report could not be written.
#[derive(Debug)]
pub enum Error {
    Io(PathBuf, std::io::Error),
    Xlsx(PathBuf, rust_xlsxwriter::XlsxError),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(path, e) => write!(f, "cannot write {}: {e}", path.display()),
            Error::Xlsx(path, e) => write!(f, "cannot write the workbook {}: {e}", path.display()),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;
    use gryning_projections::Table;

    fn text(t: &str) -> Cell {
        Cell::Text(t.to_string())
    }

    #[test]
    fn the_comparison_hides_what_the_regions_own_clearance_table_hides() {
        let clearance = SourcedTable {
            name: TableName::Clearance,
            by: By::Code,
            period: PeriodKind::Year,
            table: Table {
                name: "clearance".into(),
                columns: vec![
                    "period",
                    "code",
                    "victim_gender",
                    "handled",
                    "cleared",
                    "percent",
                ],
                rows: vec![
                    vec![
                        text("2020"),
                        text("9365"),
                        text("ALL"),
                        Cell::Int(40),
                        text(".."),
                        text(".."),
                    ],
                    vec![
                        text("2020"),
                        text("9366"),
                        text("ALL"),
                        Cell::Int(40),
                        Cell::Int(20),
                        Cell::Float(50.0),
                    ],
                ],
            },
        };
        let row = |code: &str, cleared: i64, percent: f64| {
            vec![
                text("2020"),
                text(code),
                text("ALL"),
                text(COMPARED_REGION),
                Cell::Int(40),
                Cell::Int(cleared),
                Cell::Float(percent),
                Cell::Float(40.0),
                Cell::Int(5),
                text("above"),
            ]
        };
        let mut shown = vec![SourcedTable {
            name: TableName::RegionComparison,
            by: By::Code,
            period: PeriodKind::Year,
            table: Table {
                name: "region-comparison".into(),
                columns: gryning_projections::comparison::columns(By::Code),
                rows: vec![row("9365", 7, 17.5), row("9366", 20, 50.0)],
            },
        }];
        suppress_comparison(&mut shown, &[clearance]);
        let rows = &shown[0].table.rows;
        assert_eq!(
            rows[0][5],
            text(".."),
            "the count hidden in the region's family"
        );
        assert_eq!((&rows[0][6], &rows[0][9]), (&text(".."), &text("..")));
        assert_eq!(rows[0][4], Cell::Int(40), "a shown count stays");
        assert_eq!(rows[0][7], Cell::Float(40.0), "the median stays");
        assert_eq!(
            rows[1],
            row("9366", 20, 50.0),
            "nothing hidden, nothing changed"
        );
    }
}
