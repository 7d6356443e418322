//! The report's workbook: one sheet per table with Swedish column labels in a frozen header
//! row, counts and rates as numeric cells (a suppression mark and the period and code as text,
//! a missing value as an empty cell), and a sheet saying where the figures come from.

use std::path::Path;

use gryning_projections::Cell;
use rust_xlsxwriter::{Format, Workbook, XlsxError};

use crate::{labels, Error, Report};

/// The name of the sheet saying where the figures come from.
pub const PROVENANCE_SHEET: &str = "Om siffrorna";

/// The rows of the provenance sheet: (what, value).
pub fn provenance_rows(report: &Report) -> Vec<(String, String)> {
    let p = &report.provenance;
    let mut rows = vec![
        ("Händelselager".to_string(), p.store.clone()),
        (
            "Position i lagret".to_string(),
            report.current.position.to_string(),
        ),
    ];
    match &report.current.publication {
        Some((q, r)) => {
            rows.push(("Publicering".into(), q.clone()));
            rows.push(("Revision".into(), r.to_string()));
            if let Some(at) = &p.published_at {
                rows.push(("Publicerad".into(), at.clone()));
            }
            match &report.previous {
                Some(prev) => {
                    let (pq, pr) = prev.publication.clone().unwrap_or_default();
                    rows.push((
                        "Jämförelseår".into(),
                        format!("publicering {pq} revision {pr}, position {}", prev.position),
                    ));
                }
                None => rows.push(("Jämförelseår".into(), "ingen publicering".into())),
            }
        }
        None => rows.push(("Publicering".into(), "ingen (levande tabeller)".into())),
    }
    rows.push((
        "Polisregion".into(),
        report
            .region
            .clone()
            .unwrap_or_else(|| "alla regioner tillsammans".into()),
    ));
    if report.comparison.is_some() {
        rows.push((
            "Jämförd med medianen".into(),
            report.compared_region().to_string(),
        ));
    }
    rows.push(("Katalogversion".into(), p.catalogue_version.clone()));
    rows.push((
        "Klassificering".into(),
        match &p.classification {
            Some(v) => {
                format!("version {v}: varje brott räknat under versionens koder och grupper")
            }
            None => "som registrerad (koderna som de registrerats och omklassificerats)".into(),
        },
    ));
    rows.push(("Katalogens SHA-256".into(), p.catalogue_sha256.clone()));
    rows.push((
        "Röjandeskydd".into(),
        match report.suppress_below {
            Some(n) if n >= 2 => format!(
                "antal 1–{} visas som <{n}; antal som skulle avslöja dem, och andelar och mediantider över dolda antal, som ..",
                n - 1
            ),
            _ => "inget".into(),
        },
    ));
    rows.push(("Framtagen".into(), p.made_at.clone()));
    rows.push(("Kommando".into(), p.command.clone()));
    rows
}

fn xlsx(path: &Path) -> impl Fn(XlsxError) -> Error + '_ {
    move |e| Error::Xlsx(path.to_path_buf(), e)
}

/// Writes the workbook to `path`.
pub fn write(report: &Report, path: &Path) -> Result<(), Error> {
    let e = xlsx(path);
    let mut book = Workbook::new();
    let header = Format::new().set_bold().set_text_wrap();
    let one_decimal = Format::new().set_num_format("0.0");
    for (key, t) in report.all_tables() {
        let suffix = key.strip_prefix(&t.key()).unwrap_or("").to_string();
        let sheet = book.add_worksheet();
        sheet.set_name(labels::sheet(t, &suffix)).map_err(&e)?;
        for (j, column) in t.table.columns.iter().enumerate() {
            let col = j as u16;
            sheet
                .write_string_with_format(0, col, labels::column(t.name, column), &header)
                .map_err(&e)?;
            sheet
                .set_column_width(col, if j < 2 { 22 } else { 16 })
                .map_err(&e)?;
        }
        for (i, row) in t.table.rows.iter().enumerate() {
            let r = i as u32 + 1;
            for (j, cell) in row.iter().enumerate() {
                let col = j as u16;
                match cell {
                    Cell::Int(n) => {
                        sheet.write_number(r, col, *n as f64).map_err(&e)?;
                    }
                    Cell::Float(x) => {
                        sheet
                            .write_number_with_format(r, col, *x, &one_decimal)
                            .map_err(&e)?;
                    }
                    Cell::Text(text) => {
                        let shown = match t.table.columns[j] {
                            "victim_gender" => labels::gender(text).to_string(),
                            "verdict" => labels::verdict(text).to_string(),
                            _ => text.clone(),
                        };
                        sheet.write_string(r, col, shown).map_err(&e)?;
                    }
                    Cell::Null => {}
                }
            }
        }
        sheet.set_freeze_panes(1, 0).map_err(&e)?;
    }
    let sheet = book.add_worksheet();
    sheet.set_name(PROVENANCE_SHEET).map_err(&e)?;
    sheet
        .write_string_with_format(0, 0, "Uppgift", &header)
        .map_err(&e)?;
    sheet
        .write_string_with_format(0, 1, "Värde", &header)
        .map_err(&e)?;
    sheet.set_column_width(0, 24).map_err(&e)?;
    sheet.set_column_width(1, 90).map_err(&e)?;
    for (i, (what, value)) in provenance_rows(report).into_iter().enumerate() {
        sheet.write_string(i as u32 + 1, 0, what).map_err(&e)?;
        sheet.write_string(i as u32 + 1, 1, value).map_err(&e)?;
    }
    sheet.set_freeze_panes(1, 0).map_err(&e)?;
    book.save(path).map_err(&e)?;
    Ok(())
}
