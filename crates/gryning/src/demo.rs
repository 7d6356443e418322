//! `gryning demo`: records the Stockholm 2019–2020 case flow (the synthetic scale-1 dataset) as
//! NDJSON through the same import path agencies use, then prints the report's tables beside the
//! figures gryning computes from the events, each with a mark saying whether they match.
//! Also home of the catalogue listing, which shares the table rendering.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use gryning_domain::Catalogue;
use gryning_projections::{By, Cell, PeriodKind, Projections, Table, TableName};
use gryning_recording::Recorder;
use gryning_synth::{MapsTo, VictimGender};

const MATCH: &str = "✓";
const DIFFERS: &str = "✗";

/// Where the demo keeps its store when `--data-dir` is not given.
const DEMO_DIR: &str = "gryning-demo";

/// Counts how many compared figures matched.
#[derive(Default)]
struct Tally {
    matched: usize,
    differed: usize,
}

impl Tally {
    fn mark(&mut self, ok: bool) -> Cell {
        if ok {
            self.matched += 1;
            Cell::Text(MATCH.into())
        } else {
            self.differed += 1;
            Cell::Text(DIFFERS.into())
        }
    }
}

fn column(table: &Table, name: &str) -> usize {
    table
        .columns
        .iter()
        .position(|c| *c == name)
        .unwrap_or_else(|| panic!("table {} has column {name}", table.name))
}

/// The row whose cells in the named columns equal the given texts.
fn find<'t>(table: &'t Table, keys: &[(&str, &str)]) -> Option<&'t [Cell]> {
    let idx: Vec<(usize, &str)> = keys.iter().map(|(c, v)| (column(table, c), *v)).collect();
    table
        .rows
        .iter()
        .find(|row| {
            idx.iter()
                .all(|(i, v)| matches!(&row[*i], Cell::Text(t) if t == v))
        })
        .map(Vec::as_slice)
}

fn int(table: &Table, row: Option<&[Cell]>, name: &str) -> i64 {
    match row.map(|r| &r[column(table, name)]) {
        Some(Cell::Int(n)) => *n,
        _ => 0,
    }
}

fn print_table(title: &str, columns: Vec<&'static str>, rows: Vec<Vec<Cell>>) {
    println!("{title}");
    let table = Table {
        name: title.into(),
        columns,
        rows,
    };
    for line in table.to_text().lines() {
        println!("  {line}");
    }
    println!();
}

pub async fn run(
    data_dir: Option<PathBuf>,
    seed: u64,
    options: gryning_synth::Options,
    catalogue: Arc<Catalogue>,
) -> anyhow::Result<std::process::ExitCode> {
    let dir = data_dir.unwrap_or_else(|| PathBuf::from(DEMO_DIR));
    let first = options.first_year;
    let last = gryning_synth::YEARS[1];
    if options.every_region {
        println!("gryning demo: the case flow of the seven police regions {first}–{last}, Stockholm's as published, recorded as events and projected into tables");
    } else {
        println!("gryning demo: the Stockholm {first}–{last} case flow, recorded as events and projected into tables");
    }
    println!("store: embedded (SQLite) in {}\n", dir.display());

    let started = Instant::now();
    let mut ndjson = Vec::new();
    let generated = gryning_synth::write_ndjson_with(seed, 1, &catalogue, options, &mut ndjson)?;
    println!(
        "generated {generated} events as NDJSON ({:.1} MB, seed {seed}) in {:.2} s",
        ndjson.len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    let embedded = gryning_service_common::Settings {
        data_dir: dir.clone(),
        ..Default::default()
    };
    let store = crate::open_store(&embedded).await?;
    let recorder = Recorder::new(store.clone(), catalogue.clone());
    let started = Instant::now();
    let bar = crate::progress_bar(ndjson.len() as u64, "recording");
    let summary = crate::import::import(
        &recorder,
        std::io::Cursor::new(ndjson),
        |r| bar.suspend(|| eprintln!("line {}: {}", r.line, r.reason)),
        |bytes| bar.set_position(bytes),
    )
    .await?;
    bar.finish_and_clear();
    crate::import::print_summary(
        &mut std::io::stdout(),
        &summary,
        started.elapsed().as_secs_f64(),
    )?;
    if summary.duplicates > 0 && summary.accepted == 0 {
        println!("(the store already held these events: each was recognised by its event id and stored once)");
    }

    let started = Instant::now();
    let projections = crate::current_projections(
        store.as_ref(),
        &dir,
        gryning_service_common::config::DEFAULT_SNAPSHOT_EVERY,
        crate::Access::Owner,
    )
    .await
    .context("projecting the events")?;
    println!(
        "projected {} events in {:.2} s\n",
        projections.position(),
        started.elapsed().as_secs_f64()
    );

    let mut tally = Tally::default();
    // With every region the report's figures are Stockholm's alone.
    let region = options.every_region.then_some(gryning_synth::POLICE_REGION);
    compare(&projections, &catalogue, region, &mut tally)?;
    if options.every_region {
        compare_verdicts(&projections, &catalogue, &mut tally)?;
    }
    if first < gryning_synth::YEARS[0] {
        compare_series(
            &projections,
            &catalogue,
            region,
            options.every_region,
            &mut tally,
        )?;
    }
    let total = tally.matched + tally.differed;
    if tally.differed == 0 {
        println!("{MATCH} all {total} published figures compared match the report");
        Ok(std::process::ExitCode::SUCCESS)
    } else {
        println!(
            "{DIFFERS} {} of {total} published figures compared differ from the report",
            tally.differed
        );
        Ok(std::process::ExitCode::from(1))
    }
}

/// One row comparing case flow: `labels`, then reported, cases and referred each as
/// gryning's figure beside the report's, then the match mark.
fn flow_row(
    case_flow: &Table,
    key: (&str, &str),
    year: i32,
    want: [u32; 3],
    mut labels: Vec<Cell>,
    tally: &mut Tally,
) -> Vec<Cell> {
    let period = year.to_string();
    let row = find(case_flow, &[key, ("period", &period)]);
    let got = ["reported", "cases", "referred"].map(|column| int(case_flow, row, column));
    let want = want.map(i64::from);
    for (g, w) in got.iter().zip(&want) {
        labels.push(Cell::Int(*g));
        labels.push(Cell::Int(*w));
    }
    labels.push(tally.mark(got == want));
    labels
}

fn compare(
    projections: &Projections,
    catalogue: &Catalogue,
    region: Option<&str>,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let reference = gryning_synth::reference();
    let table = |name, by| projections.region_table(name, by, PeriodKind::Year, catalogue, region);
    let by_group = table(TableName::CaseFlow, By::Group)?;
    let by_code = table(TableName::CaseFlow, By::Code)?;
    if let Some(region) = region {
        println!("The report's figures are {region}'s: the tables below are of its cases only (--region).\n");
    }

    let rows = reference
        .tabell_1
        .iter()
        .map(|r| {
            let labels = vec![Cell::Text(r.group.clone()), Cell::Text(r.year.to_string())];
            flow_row(
                &by_group,
                ("group", &r.group),
                r.year,
                [r.reported, r.cases, r.referred],
                labels,
                tally,
            )
        })
        .collect();
    print_table(
        "Tabell 1 — case flow by crime-code group (gryning | report)",
        vec![
            "group", "year", "reported", "report", "cases", "report", "referred", "report", "",
        ],
        rows,
    );
    if let Some(note) = catalogue
        .group("Brott i nära relation")
        .and_then(|g| g.note.as_deref())
    {
        println!("  Note on \"Brott i nära relation\": {note}\n");
    }

    let rows = reference
        .tabell_2
        .iter()
        .map(|r| {
            let text: String = r.text.chars().take(46).collect();
            let text = if text.len() < r.text.len() {
                format!("{text}…")
            } else {
                text
            };
            let labels = vec![
                Cell::Text(r.code.clone()),
                Cell::Text(text),
                Cell::Text(r.year.to_string()),
            ];
            flow_row(
                &by_code,
                ("code", &r.code),
                r.year,
                [r.reported, r.cases, r.referred],
                labels,
                tally,
            )
        })
        .collect();
    print_table(
        "Tabell 2 — case flow by crime code (gryning | report)",
        vec![
            "code", "text", "year", "reported", "report", "cases", "report", "referred", "report",
            "",
        ],
        rows,
    );

    // Contract care counts by the case's region; programmes are client events without one, and
    // only Stockholm's are generated, so the county-wide table is Stockholm's.
    let care = projections.table(TableName::Care, By::Code, PeriodKind::Year, catalogue);
    let region_care = table(TableName::Care, By::Code)?;
    let mut rows = Vec::new();
    let mut figure = |what: &str, year: i32, col: &str, want: u32| {
        let care = if col == "contract_care_proposed" {
            &region_care
        } else {
            &care
        };
        let row = find(care, &[("period", &year.to_string())]);
        let got = int(care, row, col);
        rows.push(vec![
            Cell::Text(what.into()),
            Cell::Text(year.to_string()),
            Cell::Int(got),
            Cell::Int(want.into()),
            tally.mark(got == i64::from(want)),
        ]);
    };
    for c in &reference.kriminalvarden.contract_care_proposed {
        figure(
            "contract care proposed",
            c.year,
            "contract_care_proposed",
            c.count,
        );
    }
    for p in &reference.kriminalvarden.ipv_treatment_programmes {
        figure(
            "IPV programmes started",
            p.year,
            "programmes_started",
            p.started,
        );
        if let Some(n) = p.completed {
            figure(
                "IPV programmes completed",
                p.year,
                "programmes_completed",
                n,
            );
        }
        if let Some(n) = p.continuing_over_year_end {
            figure(
                "IPV programmes continuing over year end",
                p.year,
                "programmes_continuing",
                n,
            );
        }
    }
    print_table(
        "Kriminalvården — contract care and treatment programmes (gryning | report)",
        vec!["figure", "year", "gryning", "report", ""],
        rows,
    );

    let clearance_code = table(TableName::Clearance, By::Code)?;
    let clearance_group = table(TableName::Clearance, By::Group)?;
    let mut rows = Vec::new();
    let mut unmapped = Vec::new();
    for r in &reference.clearance {
        let gender = match r.victim_gender {
            VictimGender::All => "ALL",
            VictimGender::Female => "FEMALE",
            VictimGender::Male => "MALE",
        };
        let (table, key_col, key) = match &r.maps_to {
            Some(MapsTo::Code(code)) => (&clearance_code, "code", code.clone()),
            Some(MapsTo::Group(group)) => (&clearance_group, "group", group.clone()),
            None => {
                unmapped.push(format!(
                    "{} ({gender}, {} %): {}",
                    r.crime_type,
                    r.percent,
                    r.note.as_deref().unwrap_or("no catalogue code")
                ));
                continue;
            }
        };
        let period = r.year.to_string();
        let row = find(
            table,
            &[
                (key_col, &key),
                ("period", &period),
                ("victim_gender", gender),
            ],
        );
        let handled = int(table, row, "handled");
        let cleared = int(table, row, "cleared");
        let percent = (handled > 0).then(|| 100.0 * cleared as f64 / handled as f64);
        let ok = percent.is_some_and(|p| (p - r.percent).abs() < 0.5);
        let crime_type: String = r.crime_type.chars().take(40).collect();
        rows.push(vec![
            Cell::Text(if crime_type.len() < r.crime_type.len() {
                format!("{crime_type}…")
            } else {
                crime_type
            }),
            Cell::Text(gender.into()),
            Cell::Text(key),
            Cell::Int(handled),
            Cell::Int(cleared),
            percent.map_or(Cell::Null, Cell::Float),
            Cell::Float(r.percent),
            tally.mark(ok),
        ]);
    }
    print_table(
        "Person-clearance rate 2019, % (gryning | report; a match is within the report's rounding)",
        vec![
            "crime type",
            "victim",
            "code or group",
            "handled",
            "cleared",
            "percent",
            "report",
            "",
        ],
        rows,
    );
    for line in unmapped {
        println!("  Not compared: {line}");
    }
    println!();

    let progress = table(TableName::Progress, By::Code)?;
    let codes: Vec<&str> = reference.tabell_2.iter().map(|r| r.code.as_str()).collect();
    let code_col = column(&progress, "code");
    let rows: Vec<Vec<Cell>> = progress
        .rows
        .iter()
        .filter(|row| matches!(&row[code_col], Cell::Text(c) if codes.contains(&c.as_str())))
        .cloned()
        .collect();
    print_table(
        "Per-crime-code progress of Tabell 2's codes, by year reported (where in the chain crimes are)",
        progress.columns.clone(),
        rows,
    );
    Ok(())
}

fn shorten(text: &str, chars: usize) -> String {
    let short: String = text.chars().take(chars).collect();
    if short.len() < text.len() {
        format!("{short}…")
    } else {
        short
    }
}

fn gender_name(g: VictimGender) -> &'static str {
    match g {
        VictimGender::All => "ALL",
        VictimGender::Female => "FEMALE",
        VictimGender::Male => "MALE",
    }
}

/// Stockholm's region-comparison row for a report crime type (code or group, gender, year).
fn stockholm_row(
    projections: &Projections,
    catalogue: &Catalogue,
    maps_to: &MapsTo,
    gender: &str,
    year: i32,
) -> anyhow::Result<Option<gryning_projections::RegionComparisonRow>> {
    let (by, key) = match maps_to {
        MapsTo::Code(code) => (By::Code, code.as_str()),
        MapsTo::Group(group) => (By::Group, group.as_str()),
    };
    let rows = projections.region_comparison(
        by,
        PeriodKind::Year,
        catalogue,
        Some(gryning_synth::POLICE_REGION),
    )?;
    let period = year.to_string();
    Ok(rows
        .into_iter()
        .find(|r| r.period == period && r.key == key && r.victim_gender == gender))
}

/// The report's verdicts on Stockholm's 2019 rates beside those of `region-comparison`.
fn compare_verdicts(
    projections: &Projections,
    catalogue: &Catalogue,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let reference = gryning_synth::reference();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for v in &reference.verdicts {
        let gender = gender_name(v.victim_gender);
        let row = stockholm_row(projections, catalogue, &v.maps_to, gender, v.year)?;
        let verdict = row.as_ref().and_then(|r| r.verdict);
        let key = match &v.maps_to {
            MapsTo::Code(c) => c.clone(),
            MapsTo::Group(g) => g.clone(),
        };
        if let Some(note) = &v.note {
            notes.push(format!("{} ({gender}): {note}", v.crime_type));
        }
        rows.push(vec![
            Cell::Text(shorten(&v.crime_type, 32)),
            Cell::Text(gender.into()),
            Cell::Text(shorten(&key, 24)),
            row.as_ref().map_or(Cell::Null, |r| Cell::Int(r.handled)),
            row.as_ref().map_or(Cell::Null, |r| Cell::Float(r.percent)),
            row.as_ref()
                .and_then(|r| r.median_percent)
                .map_or(Cell::Null, Cell::Float),
            row.as_ref()
                .map_or(Cell::Null, |r| Cell::Int(r.regions_in_median as i64)),
            verdict.map_or(Cell::Null, |v| Cell::Text(v.name().into())),
            Cell::Text(v.verdict.name().into()),
            Cell::Text(shorten(&v.report_words, 44)),
            tally.mark(verdict.map(|x| x.name()) == Some(v.verdict.name())),
        ]);
    }
    print_table(
        "Polisregion Stockholm against the median of the police regions, 2019 (gryning | report; rule: docs/contract.md, region-comparison)",
        vec![
            "crime type",
            "victim",
            "code or group",
            "handled",
            "percent",
            "median",
            "regions",
            "verdict",
            "report",
            "report's words",
            "",
        ],
        rows,
    );
    for note in notes {
        println!("  Note: {note}");
    }
    println!();
    Ok(())
}

/// The points the report gives of Stockholm's rates in earlier years (its figures 2 and 3).
fn compare_series(
    projections: &Projections,
    catalogue: &Catalogue,
    region: Option<&str>,
    every_region: bool,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let reference = gryning_synth::reference();
    let mut rows = Vec::new();
    for point in &reference.series {
        let (by, key) = match &point.maps_to {
            MapsTo::Code(code) => (By::Code, code.clone()),
            MapsTo::Group(group) => (By::Group, group.clone()),
        };
        let clearance = projections.region_table(
            TableName::Clearance,
            by,
            PeriodKind::Year,
            catalogue,
            region,
        )?;
        let period = point.year.to_string();
        let key_col = by.name();
        let row = find(
            &clearance,
            &[
                (key_col, &key),
                ("period", &period),
                ("victim_gender", "ALL"),
            ],
        );
        if row.is_none() && point.year < projections.earliest_date().map_or(0, |d| d.year()) {
            continue;
        }
        let handled = int(&clearance, row, "handled");
        let cleared = int(&clearance, row, "cleared");
        let percent = (handled > 0).then(|| 100.0 * cleared as f64 / handled as f64);
        let median = if every_region {
            stockholm_row(projections, catalogue, &point.maps_to, "ALL", point.year)?
                .and_then(|r| r.median_percent)
        } else {
            None
        };
        rows.push(vec![
            Cell::Text(shorten(&point.crime_type, 36)),
            Cell::Text(period),
            Cell::Int(handled),
            percent.map_or(Cell::Null, Cell::Float),
            Cell::Float(point.percent),
            median.map_or(Cell::Null, Cell::Float),
            tally.mark(percent.is_some_and(|p| (p - point.percent).abs() < 0.5)),
        ]);
    }
    print_table(
        "Polisregion Stockholm's rate in the report's time series, % (gryning | report; median of the regions with --regions all)",
        vec![
            "crime type",
            "year",
            "handled",
            "percent",
            "report",
            "median",
            "",
        ],
        rows,
    );
    Ok(())
}

/// The catalogue as aligned text (codes, then groups) or as JSON.
pub fn render_catalogue(catalogue: &Catalogue, json: bool) -> String {
    let group_names = |code| -> Vec<&str> {
        catalogue
            .groups_of(code)
            .iter()
            .map(|&i| catalogue.groups()[i].name.as_str())
            .collect()
    };
    if json {
        let codes: Vec<serde_json::Value> = catalogue
            .codes()
            .map(|(code, text)| serde_json::json!({"code": code.to_string(), "text": text, "groups": group_names(code)}))
            .collect();
        let groups: Vec<serde_json::Value> = catalogue
            .groups()
            .iter()
            .map(|g| serde_json::json!({"name": g.name, "codes": g.codes.iter().map(|c| c.to_string()).collect::<Vec<_>>(), "note": g.note}))
            .collect();
        let mut doc =
            serde_json::json!({"version": catalogue.version(), "codes": codes, "groups": groups});
        if let (Some(doc), serde_json::Value::Object(more)) = (
            doc.as_object_mut(),
            crate::catalog::versions_json(catalogue),
        ) {
            doc.extend(more);
        }
        return serde_json::to_string_pretty(&doc).expect("json") + "\n";
    }
    let mut out = format!("Crime-code catalogue, version {}\n", catalogue.version());
    out.push_str(&crate::catalog::versions_text(catalogue));
    out.push('\n');
    let rows = catalogue
        .codes()
        .map(|(code, text)| {
            vec![
                Cell::Text(code.to_string()),
                Cell::Text(text.to_string()),
                Cell::Text(group_names(code).join(", ")),
            ]
        })
        .collect();
    out.push_str(
        &Table {
            name: "codes".into(),
            columns: vec!["code", "text", "groups"],
            rows,
        }
        .to_text(),
    );
    out.push_str("\nGroups\n");
    for g in catalogue.groups() {
        let codes: Vec<String> = g.codes.iter().map(|c| c.to_string()).collect();
        out.push_str(&format!(
            "\n{} ({} codes): {}\n",
            g.name,
            codes.len(),
            codes.join(" ")
        ));
        if let Some(note) = &g.note {
            out.push_str(&format!("  note: {note}\n"));
        }
    }
    out
}
