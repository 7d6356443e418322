//! The report as one self-contained HTML page: inline CSS for screen and A4 print, inline SVG
//! charts, no script and nothing loaded from elsewhere.
//!
//! Every figure taken from a table is a cell with `data-table` (the table's key, as in the CSV
//! file names), `data-row` (period, code or group, victim gender, joined by `|`) and
//! `data-column` (the table's column name), so a reader program can find it in the tables; its
//! text is the value in Swedish notation (thin spaces between thousands, decimal comma, one
//! decimal for percents and medians) or the suppression mark.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use gryning_projections::{By, Cell, PeriodKind, TableName};

use crate::labels;
use crate::suppress::{is_suppressed, SourcedTable};
use crate::svg::{bar, escape, LineChart, Look, Series};
use crate::{number, Figures, Report, Verdict};

/// What the clearance charts set the rates against.
enum Against {
    /// Nothing: the clearance tables' rates, labelled with this name.
    Nothing(String),
    /// The median of the regions, against this region's rates.
    Median(String),
}

const STYLE: &str = r#"
@page { size: A4; margin: 16mm 14mm 18mm 14mm; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 10pt; color: #111; max-width: 190mm; margin: 0 auto; line-height: 1.35; }
h1 { font-size: 18pt; margin: 0 0 4pt 0; }
h2 { font-size: 13pt; margin: 16pt 0 4pt 0; border-bottom: 1px solid #888; }
h3 { font-size: 11pt; margin: 10pt 0 3pt 0; }
p.lead { margin: 0 0 8pt 0; }
table { border-collapse: collapse; width: 100%; margin: 4pt 0 8pt 0; font-size: 8.5pt; }
caption { text-align: left; font-weight: bold; padding: 2pt 0; caption-side: top; }
th, td { border-bottom: 1px solid #ccc; padding: 2pt 4pt; vertical-align: top; }
th { text-align: left; background: #eee; font-weight: bold; }
td.n, th.n { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.bar { width: 18%; vertical-align: middle; }
tr { break-inside: avoid; page-break-inside: avoid; }
thead { display: table-header-group; }
figure { margin: 6pt 0; break-inside: avoid; page-break-inside: avoid; }
figcaption { font-size: 8.5pt; color: #333; }
.note { font-size: 8.5pt; color: #333; }
section.chapter { break-before: page; page-break-before: always; }
dl.source { display: grid; grid-template-columns: 38% 62%; gap: 2pt 8pt; font-size: 9pt; }
dl.source dt { font-weight: bold; }
dl.source dd { margin: 0; word-break: break-all; }
@media print { body { max-width: none; } a { color: inherit; text-decoration: none; } }
"#;

/// A number in Swedish notation: `5 669`, `14,2`.
pub fn swedish(value: f64, decimals: usize) -> String {
    let text = format!("{:.*}", decimals, value.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push('\u{a0}');
        }
        grouped.push(c);
    }
    let sign = if value < 0.0 && text.chars().any(|c| c != '0' && c != '.') {
        "\u{2212}"
    } else {
        ""
    };
    if fraction.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped},{fraction}")
    }
}

/// A cell's text on the page.
pub fn cell_text(cell: &Cell) -> String {
    match cell {
        Cell::Int(n) => swedish(*n as f64, 0),
        Cell::Float(x) => swedish(*x, 1),
        Cell::Text(t) => t.clone(),
        Cell::Null => "–".to_string(),
    }
}

fn text_of(cell: &Cell) -> &str {
    match cell {
        Cell::Text(t) => t,
        _ => "",
    }
}

/// Rows of a table for one period, keyed by code or group (and victim gender).
struct Rows<'a> {
    table: &'a SourcedTable,
    figures: &'a Figures,
}

impl<'a> Rows<'a> {
    fn new(figures: &'a Figures, name: TableName, by: By, period: PeriodKind) -> Option<Self> {
        figures
            .get(name, by, period)
            .map(|table| Rows { table, figures })
    }

    fn column(&self, name: &str) -> Option<usize> {
        self.table.table.columns.iter().position(|c| *c == name)
    }

    /// The row of `period` for `key` (and `gender` for clearance).
    fn row(&self, period: &str, key: &str, gender: Option<&str>) -> Option<&'a Vec<Cell>> {
        self.table.table.rows.iter().find(|r| {
            text_of(&r[0]) == period
                && (self.table.name == TableName::Care || text_of(&r[1]) == key)
                && gender.is_none_or(|g| text_of(&r[2]) == g)
        })
    }
}

/// A `<td>` holding one table cell, with where it comes from.
fn data_cell(table_key: &str, row_key: &str, column: &str, cell: Option<&Cell>) -> String {
    let zero = Cell::Int(0);
    let cell = cell.unwrap_or(&zero);
    format!(
        r#"<td class="n" data-table="{}" data-row="{}" data-column="{}">{}</td>"#,
        escape(table_key),
        escape(row_key),
        escape(column),
        escape(&cell_text(cell))
    )
}

/// The change from `before` to `now`: in numbers and in percent of `before`; `..` when either
/// is hidden (a change must not give a hidden count away), `–` when there is nothing to compare.
fn change(before: Option<&Cell>, now: Option<&Cell>) -> (String, String) {
    let zero = Cell::Int(0);
    let (before, now) = (before.unwrap_or(&zero), now.unwrap_or(&zero));
    if is_suppressed(before) || is_suppressed(now) {
        return ("..".into(), "..".into());
    }
    match (number(before), number(now)) {
        (Some(b), Some(n)) => {
            let diff = n - b;
            let sign = if diff > 0.0 { "+" } else { "" };
            let pct = if b != 0.0 {
                let p = diff / b * 100.0;
                format!("{}{}\u{a0}%", if p > 0.0 { "+" } else { "" }, swedish(p, 1))
            } else {
                "–".into()
            };
            (format!("{sign}{}", swedish(diff, 0)), pct)
        }
        _ => ("–".into(), "–".into()),
    }
}

struct Page<'r> {
    report: &'r Report,
    out: String,
    tables: usize,
    figures: usize,
}

impl<'r> Page<'r> {
    fn table_no(&mut self) -> usize {
        self.tables += 1;
        self.tables
    }

    fn figure_no(&mut self) -> usize {
        self.figures += 1;
        self.figures
    }

    fn period_words(&self, label: &str) -> String {
        if let Some((y, q)) = label.split_once("-Q1..Q") {
            format!("{y} (kv 1–{q})")
        } else if let Some((y, q)) = label.split_once("-Q") {
            format!("{y} kv {q}")
        } else {
            label.to_string()
        }
    }

    /// Tabell 1 / Tabell 2: the case flow per group or code, both years and the change.
    fn case_flow(&mut self, by: By) {
        let report = self.report;
        let period = report.period();
        let ((cur, cur_label), prev) = report.periods();
        let Some(now) = Rows::new(cur, TableName::CaseFlow, by, period) else {
            return;
        };
        let before = prev.as_ref().and_then(|(f, l)| {
            Rows::new(f, TableName::CaseFlow, by, period).map(|r| (r, l.clone()))
        });
        let keys = self.keys(
            &now,
            before.as_ref().map(|(r, _)| r),
            &cur_label,
            prev.as_ref().map(|p| p.1.as_str()),
        );
        let n = self.table_no();
        let what = match by {
            By::Group => "per brottskodsgrupp",
            By::Code => "per brottskod",
        };
        let prev_words = before
            .as_ref()
            .map_or("–".to_string(), |(_, l)| self.period_words(l));
        let cur_words = self.period_words(&cur_label);
        let _ = write!(
            self.out,
            "<table><caption>Tabell {n}. Anmälda brott, inkomna ärenden och ärenden redovisade till åklagare {what}, {prev_words} och {cur_words}, med förändring</caption><thead><tr><th>{}</th><th>Mått</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">Förändring, antal</th><th class=\"n\">Förändring, procent</th></tr></thead><tbody>",
            labels::column(TableName::CaseFlow, by.name()),
            escape(&prev_words),
            escape(&cur_words)
        );
        let now_key = now.table.key();
        let before_key = before.as_ref().map(|(r, _)| self.previous_key(r));
        for key in keys {
            let name = match by {
                By::Group => escape(&key),
                By::Code => format!(
                    "{} {}",
                    escape(&key),
                    escape(report.code_texts.get(&key).map_or("", String::as_str))
                ),
            };
            for (i, column) in ["reported", "cases", "referred"].into_iter().enumerate() {
                let j = now.column(column).expect("case-flow column");
                let c_now = now.row(&cur_label, &key, None).map(|r| &r[j]);
                let c_before = before
                    .as_ref()
                    .and_then(|(r, l)| r.row(l, &key, None).map(|row| &row[j]));
                let (diff, pct) = if before.is_some() {
                    change(c_before, c_now)
                } else {
                    ("–".into(), "–".into())
                };
                let first = if i == 0 {
                    format!("<td rowspan=\"3\">{name}</td>")
                } else {
                    String::new()
                };
                let before_td = match (&before, &before_key) {
                    (Some((_, l)), Some(k)) => {
                        data_cell(k, &format!("{l}|{key}"), column, c_before)
                    }
                    _ => "<td class=\"n\">–</td>".to_string(),
                };
                let _ = write!(
                    self.out,
                    "<tr>{first}<td>{}</td>{before_td}{}<td class=\"n\">{diff}</td><td class=\"n\">{pct}</td></tr>",
                    labels::column(TableName::CaseFlow, column),
                    data_cell(&now_key, &format!("{cur_label}|{key}"), column, c_now),
                );
            }
        }
        self.out.push_str("</tbody></table>");
    }

    /// The `data-table` key of the previous year's rows: the same table, from the previous
    /// year's publication when the figures come from publications.
    fn previous_key(&self, rows: &Rows) -> String {
        match (
            &rows.figures.publication,
            std::ptr::eq(rows.figures, &self.report.current),
        ) {
            (Some((q, _)), false) => format!("{}-{q}", rows.table.key()),
            _ => rows.table.key(),
        }
    }

    /// The codes or groups with a row in either period, in the catalogue's order for groups.
    fn keys(
        &self,
        now: &Rows,
        before: Option<&Rows>,
        cur: &str,
        prev: Option<&str>,
    ) -> Vec<String> {
        let mut seen = BTreeSet::new();
        for (rows, label) in std::iter::once((now, cur)).chain(before.zip(prev)) {
            for r in &rows.table.table.rows {
                if text_of(&r[0]) == label {
                    seen.insert(text_of(&r[1]).to_string());
                }
            }
        }
        if now.table.by == By::Group {
            let mut ordered: Vec<String> = self
                .report
                .groups
                .iter()
                .map(|(g, _)| g.clone())
                .filter(|g| seen.contains(g))
                .collect();
            let rest: Vec<String> = seen.into_iter().filter(|g| !ordered.contains(g)).collect();
            ordered.extend(rest);
            ordered
        } else {
            seen.into_iter().collect()
        }
    }

    /// Person-clearance per group or code and victim gender, both years.
    fn clearance(&mut self, by: By) {
        let report = self.report;
        let period = report.period();
        let ((cur, cur_label), prev) = report.periods();
        let Some(now) = Rows::new(cur, TableName::Clearance, by, period) else {
            return;
        };
        let before = prev.as_ref().and_then(|(f, l)| {
            Rows::new(f, TableName::Clearance, by, period).map(|r| (r, l.clone()))
        });
        let keys = self.keys(
            &now,
            before.as_ref().map(|(r, _)| r),
            &cur_label,
            prev.as_ref().map(|p| p.1.as_str()),
        );
        let n = self.table_no();
        let what = match by {
            By::Group => "per brottskodsgrupp",
            By::Code => "per brottskod",
        };
        let cur_words = self.period_words(&cur_label);
        let prev_words = before
            .as_ref()
            .map_or("–".to_string(), |(_, l)| self.period_words(l));
        let _ = write!(
            self.out,
            "<table><caption>Tabell {n}. Handlagda och personuppklarade brott och personuppklaringsprocent {what} och brottsoffrets kön, {prev_words} och {cur_words}</caption><thead><tr><th>{}</th><th>Brottsoffrets kön</th><th class=\"n\">Handlagda {p}</th><th class=\"n\">Personuppklarade {p}</th><th class=\"n\">Procent {p}</th><th class=\"n\">Handlagda {c}</th><th class=\"n\">Personuppklarade {c}</th><th class=\"n\">Procent {c}</th><th class=\"n\">Förändring, procentenheter</th></tr></thead><tbody>",
            labels::column(TableName::Clearance, by.name()),
            p = escape(&prev_words),
            c = escape(&cur_words),
        );
        let now_key = now.table.key();
        let before_key = before.as_ref().map(|(r, _)| self.previous_key(r));
        for key in keys {
            for gender in ["ALL", "FEMALE", "MALE", "UNKNOWN"] {
                let r_now = now.row(&cur_label, &key, Some(gender));
                let r_before = before
                    .as_ref()
                    .and_then(|(r, l)| r.row(l, &key, Some(gender)));
                if r_now.is_none() && r_before.is_none() {
                    continue;
                }
                let name = match by {
                    By::Group => escape(&key),
                    By::Code => format!(
                        "{} {}",
                        escape(&key),
                        escape(report.code_texts.get(&key).map_or("", String::as_str))
                    ),
                };
                let _ = write!(
                    self.out,
                    "<tr><td>{name}</td><td>{}</td>",
                    labels::gender(gender)
                );
                for column in ["handled", "cleared", "percent"] {
                    let j = now.column(column).expect("clearance column");
                    match (&before, &before_key) {
                        (Some((_, l)), Some(k)) => self.out.push_str(&data_cell(
                            k,
                            &format!("{l}|{key}|{gender}"),
                            column,
                            match r_before {
                                Some(r) => Some(&r[j]),
                                None if column == "percent" => Some(&Cell::Null),
                                None => None,
                            },
                        )),
                        _ => self.out.push_str("<td class=\"n\">–</td>"),
                    }
                }
                for column in ["handled", "cleared", "percent"] {
                    let j = now.column(column).expect("clearance column");
                    let null = Cell::Null;
                    let cell = match r_now {
                        Some(r) => Some(&r[j]),
                        None if column == "percent" => Some(&null),
                        None => None,
                    };
                    self.out.push_str(&data_cell(
                        &now_key,
                        &format!("{cur_label}|{key}|{gender}"),
                        column,
                        cell,
                    ));
                }
                let j = now.column("percent").expect("percent");
                let (diff, _) = match (r_before.map(|r| &r[j]), r_now.map(|r| &r[j])) {
                    (Some(b), Some(n)) if number(b).is_some() && number(n).is_some() => {
                        let d = number(n).unwrap_or(0.0) - number(b).unwrap_or(0.0);
                        (
                            format!("{}{}", if d > 0.0 { "+" } else { "" }, swedish(d, 1)),
                            (),
                        )
                    }
                    (Some(b), Some(n)) if is_suppressed(b) || is_suppressed(n) => ("..".into(), ()),
                    _ => ("–".into(), ()),
                };
                let _ = write!(self.out, "<td class=\"n\">{diff}</td></tr>");
            }
        }
        self.out.push_str("</tbody></table>");
    }

    /// One line chart per group: the person-clearance rate per victim gender over the years.
    fn clearance_charts(&mut self) {
        let report = self.report;
        let period = PeriodKind::Year;
        let ((cur, _), _) = report.periods();
        // The series' points: every year of the live tables, or the two publications.
        let mut sources: Vec<(&Figures, String, String)> = Vec::new();
        if cur.source == crate::Source::Live {
            if let Some(t) = cur.get(TableName::Clearance, By::Group, period) {
                let years: BTreeSet<String> = t
                    .table
                    .rows
                    .iter()
                    .map(|r| text_of(&r[0]).to_string())
                    .collect();
                for y in years
                    .into_iter()
                    .filter(|y| y.parse::<i32>().is_ok_and(|y| y <= report.year))
                {
                    sources.push((cur, y.clone(), y));
                }
            }
        } else {
            if let Some(p) = &report.previous {
                let l = crate::period_label(p, report.year - 1, None);
                sources.push((p, l, format!("{}", report.year - 1)));
            }
            let l = crate::period_label(cur, report.year, None);
            sources.push((cur, l, format!("{}", report.year)));
        }
        if sources.is_empty() {
            return;
        }
        let years: Vec<String> = sources.iter().map(|s| s.2.clone()).collect();
        let against = self.comparison_note();
        for (group, _) in &report.groups {
            let series = match &against {
                Against::Median(region) => self.median_series(group, region, &years),
                Against::Nothing(label) => Self::table_series(&sources, group, label),
            };
            if series.is_empty() {
                continue;
            }
            let n = self.figure_no();
            let desc = series
                .iter()
                .map(|s| {
                    let points: Vec<String> = years
                        .iter()
                        .zip(&s.values)
                        .map(|(y, v)| match v {
                            Some(v) => format!("{y}: {} procent", swedish(*v, 1)),
                            None => format!("{y}: uppgift saknas"),
                        })
                        .collect();
                    format!("{}: {}", s.label, points.join(", "))
                })
                .collect::<Vec<_>>()
                .join(". ");
            let (title, what) = match &against {
                Against::Median(region) => (
                    format!(
                        "Figur {n}. {group}: {} mot medianen av regionerna",
                        region.strip_prefix("Polisregion ").unwrap_or(region)
                    ),
                    format!(
                        "Heldragna linjer: {}; streckade linjer: medianen av polisregionernas procent; en färg och markör per brottsoffrets kön.",
                        escape(region)
                    ),
                ),
                Against::Nothing(_) => (
                    format!(
                        "Figur {n}. Personuppklaringsprocent, {group}, per år och brottsoffrets kön"
                    ),
                    String::new(),
                ),
            };
            let chart = LineChart {
                title,
                desc: format!("Linjediagram. {desc}."),
                x_label: "År".into(),
                y_label: "Personuppklaringsprocent".into(),
                x: years.clone(),
                series,
            };
            let _ = write!(
                self.out,
                "<figure>{}<figcaption>Figur {n}. Andel personuppklarade av handlagda brott, {}.{}{} Ett värde saknas där inga brott handlades eller där det döljs.</figcaption></figure>",
                chart.render(&format!("figur-{n}")),
                escape(group),
                if what.is_empty() { "" } else { " " },
                what
            );
        }
        if let Against::Median(region) = against {
            self.verdicts(&region);
        }
    }

    /// The series of one group's chart from the clearance tables: one per victim gender.
    fn table_series(
        sources: &[(&Figures, String, String)],
        group: &str,
        region: &str,
    ) -> Vec<Series> {
        let mut series = Vec::new();
        for gender in ["ALL", "FEMALE", "MALE"] {
            let values: Vec<Option<f64>> = sources
                .iter()
                .map(|(f, label, _)| {
                    let t = f.get(TableName::Clearance, By::Group, PeriodKind::Year)?;
                    let j = t.table.columns.iter().position(|c| *c == "percent")?;
                    t.table
                        .rows
                        .iter()
                        .find(|r| {
                            text_of(&r[0]) == label
                                && text_of(&r[1]) == group
                                && text_of(&r[2]) == gender
                        })
                        .and_then(|r| number(&r[j]))
                })
                .collect();
            if values.iter().any(Option::is_some) {
                series.push(Series {
                    label: format!("{region}, {}", labels::gender(gender).to_lowercase()),
                    values,
                    look: None,
                    key: format!("{group}|clearance|{gender}"),
                });
            }
        }
        series
    }

    /// The series of one group's chart against the median: per victim gender the region's rate
    /// (solid) and the median of the regions (dashed, same colour and marker), from
    /// `region-comparison`.
    fn median_series(&self, group: &str, region: &str, years: &[String]) -> Vec<Series> {
        let report = self.report;
        let Some(comparison) = &report.comparison else {
            return Vec::new();
        };
        let short = region.strip_prefix("Polisregion ").unwrap_or(region);
        let mut series = Vec::new();
        for (style, gender) in ["ALL", "FEMALE", "MALE"].into_iter().enumerate() {
            let found: Vec<_> = years
                .iter()
                .map(|y| comparison.find(By::Group, PeriodKind::Year, (y, group, gender), region))
                .collect();
            let own: Vec<Option<f64>> = found
                .iter()
                .map(|(row, _)| {
                    row.filter(|r| comparison.rate_shown(By::Group, PeriodKind::Year, r))
                        .map(|r| r.percent)
                })
                .collect();
            let median: Vec<Option<f64>> = found.iter().map(|(_, m)| *m).collect();
            if own.iter().chain(&median).all(Option::is_none) {
                continue;
            }
            let words = labels::gender(gender).to_lowercase();
            series.push(Series {
                label: format!("{short}, {words}"),
                values: own,
                look: Some(Look {
                    style,
                    dashed: false,
                }),
                key: format!("{group}|{region}|{gender}"),
            });
            series.push(Series {
                label: format!("Median, {words}"),
                values: median,
                look: Some(Look {
                    style,
                    dashed: true,
                }),
                key: format!("{group}|median|{gender}"),
            });
        }
        series
    }

    /// Says what the charts set the rates against, and returns it.
    fn comparison_note(&mut self) -> Against {
        let report = self.report;
        let compared = report.compared_region();
        let Some(comparison) = &report.comparison else {
            self.out.push_str("<p class=\"note\">Publiceringarna gäller alla regioner tillsammans och håller ingen jämförelse av regionerna: ingen median av regionerna kan ritas, diagrammen visar de publicerade siffrorna.</p>");
            return Against::Nothing(crate::COMPARED_REGION.to_string());
        };
        let regions = comparison.regions();
        let tables = match &report.region {
            Some(r) => format!("Tabellerna gäller {}.", escape(r)),
            None => "Tabellerna under diagrammen gäller alla regioner tillsammans.".into(),
        };
        match regions.as_slice() {
            [] | [_] if report.region.is_some() => {
                let _ = write!(
                    self.out,
                    "<p class=\"note\">Uppgifterna gäller {} polisregion: ingen median av regionerna kan ritas, diagrammen visar {}s personuppklaringsprocent.</p>",
                    if regions.is_empty() { "ingen" } else { "en enda" },
                    escape(compared)
                );
                Against::Nothing(compared.to_string())
            }
            [] | [_] => {
                let name = regions.first().copied().unwrap_or(crate::COMPARED_REGION);
                let _ = write!(
                    self.out,
                    "<p class=\"note\">Uppgifterna gäller en enda polisregion ({}): ingen median av regionerna kan ritas, diagrammen visar regionens personuppklaringsprocent.</p>",
                    escape(name)
                );
                Against::Nothing(name.to_string())
            }
            many if !many.contains(&compared) => {
                let _ = write!(
                    self.out,
                    "<p class=\"note\">Uppgifterna gäller {} polisregioner men inte {}: diagrammen visar {}, utan jämförelse med medianen.</p>",
                    many.len(),
                    escape(compared),
                    if report.region.is_some() { "regionens tabeller" } else { "alla regioner tillsammans" }
                );
                Against::Nothing(
                    report
                        .region
                        .clone()
                        .unwrap_or_else(|| "Alla regioner".to_string()),
                )
            }
            many => {
                let hidden = match report.suppress_below {
                    Some(n) => format!(" Regionens procent och bedömning döljs där dess handlagda eller personuppklarade brott är från 1 till {} eller döljs för att de annars skulle avslöja ett sådant antal; medianen visas, eftersom den är en procent som inte pekar ut någon region eller något antal.", n - 1),
                    None => String::new(),
                };
                let _ = write!(
                    self.out,
                    "<p class=\"note\">Uppgifterna gäller {} polisregioner. Diagrammen ställer {} (heldragna linjer) mot medianen av polisregionernas personuppklaringsprocent (streckade linjer), som tabellen region-comparison räknar den: medianen tas över de regioner som handlagt minst 10 brott, när minst 3 regioner gör det, och en region bedöms ligga över eller under medianen när den skiljer sig med mer än 2 procentenheter. {tables}{hidden}</p>",
                    many.len(),
                    escape(compared)
                );
                Against::Median(compared.to_string())
            }
        }
    }

    /// The region's verdicts per crime code for the report's period, all victims.
    fn verdicts(&mut self, region: &str) {
        let report = self.report;
        let Some(comparison) = &report.comparison else {
            return;
        };
        let ((_, label), _) = report.periods();
        let period = report.period();
        let n = self.table_no();
        let words = self.period_words(&label);
        let _ = write!(
            self.out,
            "<table><caption>Tabell {n}. {} mot medianen av polisregionerna: personuppklaringsprocent per brottskod, alla brottsoffer, {}</caption><thead><tr><th>Brottskod</th><th class=\"n\">{}, procent</th><th class=\"n\">Medianen, procent</th><th class=\"n\">Regioner</th><th>Bedömning</th></tr></thead><tbody>",
            escape(region),
            escape(&words),
            escape(region.strip_prefix("Polisregion ").unwrap_or(region))
        );
        for (code, text) in &report.code_texts {
            let cell = comparison
                .rows(By::Code, period)
                .iter()
                .find(|r| r.period == label && r.key == *code && r.victim_gender == "ALL");
            let Some(any) = cell else { continue };
            let (own, median) = comparison.find(By::Code, period, (&label, code, "ALL"), region);
            let shown = own.filter(|r| comparison.rate_shown(By::Code, period, r));
            let hidden = own.is_some() && shown.is_none();
            let place = escape(&format!("{label}|{code}|ALL|{region}"));
            let rate = match (shown, hidden) {
                (Some(r), _) => swedish(r.percent, 1),
                (None, true) => "..".into(),
                (None, false) => "–".into(),
            };
            let verdict = match (shown.and_then(|r| r.verdict), hidden) {
                (_, true) => "..",
                (Some(Verdict::Above), _) => "över medianen",
                (Some(Verdict::InLine), _) => "i linje med medianen",
                (Some(Verdict::Below), _) => "under medianen",
                (None, _) => "–",
            };
            let _ = write!(
                self.out,
                "<tr><td>{} {}</td><td class=\"n\" data-comparison=\"{place}\" data-column=\"percent\">{rate}</td><td class=\"n\" data-comparison=\"{place}\" data-column=\"median_percent\">{}</td><td class=\"n\" data-comparison=\"{place}\" data-column=\"regions_in_median\">{}</td><td data-comparison=\"{place}\" data-column=\"verdict\">{verdict}</td></tr>",
                escape(code),
                escape(text),
                median.map_or("–".into(), |m| swedish(m, 1)),
                any.regions_in_median
            );
        }
        self.out.push_str("</tbody></table><p class=\"note\">Regioner: hur många polisregioner som handlagt minst 10 brott och ingår i medianen. Bedömningen saknas (–) där regionen handlagt färre än 10 brott eller färre än 3 regioner gjort det.</p>");
    }

    /// The chain per crime code: reported → in a case → referred → decided → person-cleared,
    /// the open backlog and the median lead times.
    fn funnel(&mut self) {
        let report = self.report;
        let ((cur, cur_label), _) = report.periods();
        let Some(rows) = Rows::new(cur, TableName::Progress, By::Code, report.period()) else {
            return;
        };
        let n = self.table_no();
        let words = self.period_words(&cur_label);
        let _ = write!(
            self.out,
            "<table><caption>Tabell {n}. Var i kedjan brotten anmälda {words} finns: anmälda → i ett ärende → redovisade till åklagare → beslutade → personuppklarade, per brottskod, med balans och mediantider</caption><thead><tr><th>Brottskod</th><th class=\"n\">Anmälda</th><th class=\"n\">I ett ärende</th><th class=\"n\">Redovisade</th><th class=\"n\">Beslutade</th><th class=\"n\">Personuppklarade</th><th>Kedjan</th><th class=\"n\">Öppna (balans)</th><th class=\"n\">Dagar till redovisning (median)</th><th class=\"n\">Dagar till beslut (median)</th></tr></thead><tbody>"
        );
        let key = rows.table.key();
        let steps = ["reported", "in_case", "referred", "decided", "cleared"];
        for r in rows
            .table
            .table
            .rows
            .iter()
            .filter(|r| text_of(&r[0]) == cur_label)
        {
            let code = text_of(&r[1]).to_string();
            let row_key = format!("{cur_label}|{code}");
            let _ = write!(
                self.out,
                "<tr><td>{} {}</td>",
                escape(&code),
                escape(report.code_texts.get(&code).map_or("", String::as_str))
            );
            for step in steps {
                let j = rows.column(step).expect("progress column");
                self.out
                    .push_str(&data_cell(&key, &row_key, step, Some(&r[j])));
            }
            // The bars: each step against the reported crimes (hidden steps draw no bar).
            let reported = number(&r[rows.column("reported").expect("reported")]);
            self.out.push_str("<td class=\"bar\">");
            for step in steps {
                let j = rows.column(step).expect("progress column");
                let label = format!(
                    "{}: {}",
                    labels::column(TableName::Progress, step),
                    cell_text(&r[j])
                );
                match (number(&r[j]), reported) {
                    (Some(v), Some(max)) => self.out.push_str(&bar(v, max, &label)),
                    _ => self.out.push_str(&bar(0.0, 1.0, &label)),
                }
            }
            self.out.push_str("</td>");
            for step in ["open", "median_days_to_referral", "median_days_to_decision"] {
                let j = rows.column(step).expect("progress column");
                self.out
                    .push_str(&data_cell(&key, &row_key, step, Some(&r[j])));
            }
            self.out.push_str("</tr>");
        }
        self.out.push_str("</tbody></table><p class=\"note\">Kedjan följer de brott som anmäldes under perioden, hur långt de har kommit när siffrorna togs fram. Staplarna visar varje steg som andel av de anmälda brotten. Öppna är anmälda brott utan beslut.</p>");
    }

    /// Kriminalvården: contract care proposed and the treatment programmes.
    fn care(&mut self) {
        let report = self.report;
        let period = report.period();
        let ((cur, cur_label), prev) = report.periods();
        let Some(now) = Rows::new(cur, TableName::Care, By::Code, period) else {
            return;
        };
        let before = prev.as_ref().and_then(|(f, l)| {
            Rows::new(f, TableName::Care, By::Code, period).map(|r| (r, l.clone()))
        });
        let n = self.table_no();
        let cur_words = self.period_words(&cur_label);
        let prev_words = before
            .as_ref()
            .map_or("–".to_string(), |(_, l)| self.period_words(l));
        let _ = write!(
            self.out,
            "<table><caption>Tabell {n}. Kriminalvården: föreslagen kontraktsvård och behandlingsprogram mot våld i nära relation, {prev_words} och {cur_words}</caption><thead><tr><th>Mått</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">Förändring, antal</th><th class=\"n\">Förändring, procent</th></tr></thead><tbody>",
            escape(&prev_words),
            escape(&cur_words)
        );
        let now_key = now.table.key();
        let before_key = before.as_ref().map(|(r, _)| self.previous_key(r));
        for column in [
            "contract_care_proposed",
            "programmes_started",
            "programmes_completed",
            "programmes_discontinued",
            "programmes_continuing",
        ] {
            let j = now.column(column).expect("care column");
            let c_now = now.row(&cur_label, "", None).map(|r| &r[j]);
            let c_before = before
                .as_ref()
                .and_then(|(r, l)| r.row(l, "", None).map(|row| &row[j]));
            let (diff, pct) = if before.is_some() {
                change(c_before, c_now)
            } else {
                ("–".into(), "–".into())
            };
            let before_td = match (&before, &before_key) {
                (Some((_, l)), Some(k)) => data_cell(k, l, column, c_before),
                _ => "<td class=\"n\">–</td>".to_string(),
            };
            let _ = write!(
                self.out,
                "<tr><td>{}</td>{before_td}{}<td class=\"n\">{diff}</td><td class=\"n\">{pct}</td></tr>",
                labels::column(TableName::Care, column),
                data_cell(&now_key, &cur_label, column, c_now)
            );
        }
        self.out.push_str("</tbody></table>");
    }

    fn provenance(&mut self) {
        let report = self.report;
        let p = &report.provenance;
        let mut items: Vec<(String, String)> = vec![
            ("Händelselager".into(), p.store.clone()),
            (
                "Position i lagret".into(),
                format!(
                    "Tabellerna visar lagret till och med händelse nummer {}",
                    report.current.position
                ),
            ),
        ];
        match &report.current.publication {
            Some((q, revision)) => {
                items.push((
                    "Publicering".into(),
                    format!(
                        "{q}, revision {revision}{}: siffrorna är exakt de publicerade, vad som än har registrerats senare",
                        p.published_at
                            .as_ref()
                            .map_or(String::new(), |t| format!(", publicerad {t}"))
                    ),
                ));
                match &report.previous {
                    Some(prev) => {
                        let (pq, pr) = prev.publication.clone().unwrap_or_default();
                        items.push((
                            "Jämförelseår".into(),
                            format!("Publiceringen {pq}, revision {pr} (position {})", prev.position),
                        ));
                    }
                    None => items.push((
                        "Jämförelseår".into(),
                        "Ingen publicering för samma kvartal föregående år: förändringar visas inte".into(),
                    )),
                }
            }
            None => items.push((
                "Publicering".into(),
                "Ingen: levande tabeller, beräknade ur alla registrerade händelser".into(),
            )),
        }
        items.push((
            "Polisregion".into(),
            match &report.region {
                Some(r) => format!("{r}: tabellerna gäller de ärenden som hör till regionen"),
                None => "Alla regioner tillsammans".into(),
            },
        ));
        if report.comparison.is_some() {
            items.push((
                "Jämförelse med medianen".into(),
                format!(
                    "{} mot medianen av polisregionerna (tabellen region-comparison)",
                    report.compared_region()
                ),
            ));
        }
        items.push((
            "Brottskodskatalog".into(),
            format!(
                "version {} (SHA-256 {})",
                p.catalogue_version, p.catalogue_sha256
            ),
        ));
        items.push((
            "Klassificering".into(),
            match &p.classification {
                Some(v) => format!("Version {v}: varje brott räknat under versionens koder och grupper, så att alla år räknas i samma klassificering"),
                None => "Som registrerad: koderna som de registrerats och omklassificerats".into(),
            },
        ));
        items.push((
            "Brottskodsgrupper".into(),
            report
                .groups
                .iter()
                .map(|(g, codes)| format!("{g}: {}", codes.join(", ")))
                .collect::<Vec<_>>()
                .join("; "),
        ));
        items.push((
            "Röjandeskydd".into(),
            match report.suppress_below {
                Some(n) if n >= 2 => format!(
                    "Antal från 1 till {} visas som &lt;{n}. Antal som annars skulle avslöja dem visas som .. och likaså andelar och mediantider över ett dolt antal; förändringar mot ett dolt värde visas som ..",
                    n - 1
                ),
                _ => "Inget: alla antal visas".into(),
            },
        ));
        items.push(("Framtagen".into(), p.made_at.clone()));
        items.push(("Kommando".into(), p.command.clone()));
        items.push((
            "Filer".into(),
            format!(
                "rapport-{:04}.xlsx (ett blad per tabell) och en CSV-fil per tabell, som gryning table --format csv skriver den{}",
                report.year,
                if report.comparison.is_some() {
                    format!("; jämförelsen med medianen som blad och CSV-filer region-comparison, som gryning table region-comparison --region \"{}\" skriver dem", report.compared_region())
                } else {
                    String::new()
                }
            ),
        ));
        self.out.push_str("<dl class=\"source\">");
        for (term, text) in items {
            // The suppression text holds markup already escaped; everything else is escaped here.
            let text = if term == "Röjandeskydd" {
                text
            } else {
                escape(&text)
            };
            let _ = write!(self.out, "<dt>{}</dt><dd>{text}</dd>", escape(&term));
        }
        self.out.push_str("</dl>");
    }
}

/// The whole page.
pub fn render(report: &Report) -> String {
    let mut page = Page {
        report,
        out: String::new(),
        tables: 0,
        figures: 0,
    };
    let ((_, cur_label), _) = report.periods();
    let words = page.period_words(&cur_label);
    let _ = write!(
        page.out,
        "<!DOCTYPE html><html lang=\"sv\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Uppföljning av våld i nära relation {}</title><style>{STYLE}</style></head><body>",
        escape(&words)
    );
    let _ = write!(
        page.out,
        "<header><h1>Uppföljning {}: våld i nära relation, hedersrelaterat våld, sexuellt våld och människohandel</h1><p class=\"lead\">{} Siffror från gryning, beräknade ur de händelser myndigheterna har registrerat. {}{}</p></header>",
        escape(&words),
        match &report.region {
            Some(r) => format!("{}: de ärenden som hör till regionen.", escape(r)),
            None => "Polisregion Stockholm, åklagarna och Kriminalvården i Stockholms län.".into(),
        },
        match &report.provenance.classification {
            Some(v) => format!("Alla brott räknade under brottskodskatalogens version {}. ", escape(v)),
            None => String::new(),
        },
        match &report.current.publication {
            Some((q, r)) => format!("Publicerade siffror: {q}, revision {r}."),
            None => "Levande siffror, inte en publicering.".into(),
        }
    );
    page.out
        .push_str("<section><h2>Anmälda brott och ärenden</h2>");
    page.case_flow(By::Group);
    page.out.push_str("<p class=\"note\">Brottskodsgrupperna kan överlappa (sexualbrott mot barn räknas både som brott mot barn och som sexualbrott). Gruppernas koder står under Om siffrorna.</p>");
    page.case_flow(By::Code);
    page.out.push_str("</section><section class=\"chapter\"><h2>Personuppklaring</h2><p class=\"note\">Personuppklaringsprocent: personuppklarade brott (åtal väckt, strafföreläggande eller åtalsunderlåtelse) delat med handlagda brott, gånger 100.</p>");
    page.clearance_charts();
    page.clearance(By::Group);
    page.clearance(By::Code);
    page.out
        .push_str("</section><section class=\"chapter\"><h2>Var i kedjan brotten stannar</h2>");
    page.funnel();
    page.out
        .push_str("</section><section><h2>Kriminalvården</h2>");
    page.care();
    page.out
        .push_str("</section><section class=\"chapter\"><h2>Om siffrorna</h2>");
    page.provenance();
    page.out.push_str("</section></body></html>\n");
    page.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swedish_notation() {
        assert_eq!(swedish(5669.0, 0), "5\u{a0}669");
        assert_eq!(swedish(1234567.0, 0), "1\u{a0}234\u{a0}567");
        assert_eq!(swedish(14.25, 1), "14,2");
        assert_eq!(swedish(-12.0, 0), "\u{2212}12");
        assert_eq!(swedish(-0.01, 1), "0,0");
        assert_eq!(swedish(999.0, 0), "999");
    }

    #[test]
    fn a_change_against_a_hidden_value_is_hidden() {
        let hidden = Cell::Text("<5".into());
        assert_eq!(change(Some(&hidden), Some(&Cell::Int(40))).0, "..");
        assert_eq!(
            change(Some(&Cell::Int(40)), Some(&Cell::Int(50))),
            ("+10".to_string(), "+25,0\u{a0}%".to_string())
        );
        assert_eq!(change(None, Some(&Cell::Int(3))).1, "–");
    }
}
