//! `gryning report` end to end, read back the way people read it: the HTML page rendered by
//! Debian's headless Chromium (with the network cut off), the workbook read back with calamine,
//! the CSV files beside `gryning table --format csv`; offline on a data directory, from a
//! publication, and through a running server. Chromium must be installed (scripts/test.sh does
//! it): the test fails, saying how, when it is not.

#[path = "support/chromium.rs"]
mod chromium;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/up.rs"]
mod up;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The report's tables: (file key, `gryning table` arguments).
const TABLES: [(&str, &[&str]); 14] = [
    (
        "case-flow-code-year",
        &["case-flow", "--by", "code", "--period", "year"],
    ),
    (
        "case-flow-code-quarter",
        &["case-flow", "--by", "code", "--period", "quarter"],
    ),
    (
        "case-flow-group-year",
        &["case-flow", "--by", "group", "--period", "year"],
    ),
    (
        "case-flow-group-quarter",
        &["case-flow", "--by", "group", "--period", "quarter"],
    ),
    (
        "clearance-code-year",
        &["clearance", "--by", "code", "--period", "year"],
    ),
    (
        "clearance-code-quarter",
        &["clearance", "--by", "code", "--period", "quarter"],
    ),
    (
        "clearance-group-year",
        &["clearance", "--by", "group", "--period", "year"],
    ),
    (
        "clearance-group-quarter",
        &["clearance", "--by", "group", "--period", "quarter"],
    ),
    ("care-year", &["care", "--period", "year"]),
    ("care-quarter", &["care", "--period", "quarter"]),
    (
        "progress-code-year",
        &["progress", "--by", "code", "--period", "year"],
    ),
    (
        "progress-code-quarter",
        &["progress", "--by", "code", "--period", "quarter"],
    ),
    (
        "progress-group-year",
        &["progress", "--by", "group", "--period", "year"],
    ),
    (
        "progress-group-quarter",
        &["progress", "--by", "group", "--period", "quarter"],
    ),
];

fn gryning(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let data = data.to_str().expect("a UTF-8 temporary path");
    up::gryning_with(&[&["--data-dir", data], args].concat(), env)
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A data directory of its own for test `name`, holding the Stockholm 2019–2020 case flow
/// (recorded once, then copied while no process has it open).
fn data_copy(name: &str) -> PathBuf {
    copy_of(master(), name)
}

/// A data directory of its own for test `name`, holding the seven police regions' 2019–2020
/// case flow.
fn regions_copy(name: &str) -> PathBuf {
    copy_of(regions_master(), name)
}

fn copy_of(master: &Path, name: &str) -> PathBuf {
    let dir = master.parent().unwrap().join(name);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for entry in std::fs::read_dir(master).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "gryning.lock" {
            std::fs::copy(entry.path(), data.join(entry.file_name())).unwrap();
        }
    }
    data
}

/// The Stockholm 2019–2020 case flow, recorded once into a data directory for every test.
fn master() -> &'static Path {
    static DATA: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DATA.get_or_init(|| demo_data("gryning-report-test", &["demo"]))
}

/// The seven police regions' 2019–2020 case flow (Stockholm's as published), recorded once.
fn regions_master() -> &'static Path {
    static DATA: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DATA.get_or_init(|| demo_data("gryning-report-regions", &["demo", "--regions", "all"]))
}

/// A fresh temporary directory `PREFIX-PID` whose `data` holds what `demo` (with `args`)
/// records.
fn demo_data(prefix: &str, args: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("data");
    ok(gryning(&data, args, &[]));
    data
}

/// Chromium headless on `page` with a fresh profile and no way out to the network: every host
/// resolves to nothing and every request goes to a proxy that does not exist.
fn browse(page: &Path, extra: &[&str]) -> Output {
    let profile = page.with_extension("chromium-profile");
    let _ = std::fs::remove_dir_all(&profile);
    let out = Command::new(chromium::path("the report's browser tests"))
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=http://127.0.0.1:9",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium failed on {}: {}",
        page.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The CSV of `gryning table` (one line per row, cells split on commas; the tables quote
/// nothing but group names, which hold no comma).
fn table_csv(data: &Path, args: &[&str]) -> String {
    let mut all = vec!["table"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "csv"]);
    ok(gryning(data, &all, &[]))
}

/// Rows of a CSV text, the header first.
fn rows(csv: &str) -> Vec<Vec<String>> {
    csv.split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// (row key, column) → value, for a table's CSV; the row key as the page names it.
fn by_place(csv: &str) -> BTreeMap<(String, String), String> {
    let rows = rows(csv);
    let header = rows[0].clone();
    let gender = header.iter().position(|c| c == "victim_gender");
    let keyed = header[1] == "code" || header[1] == "group";
    let mut out = BTreeMap::new();
    for row in &rows[1..] {
        let key = match (keyed, gender) {
            (false, _) => row[0].clone(),
            (true, None) => format!("{}|{}", row[0], row[1]),
            (true, Some(g)) => format!("{}|{}|{}", row[0], row[1], row[g]),
        };
        for (j, c) in header.iter().enumerate() {
            out.insert((key.clone(), c.clone()), row[j].clone());
        }
    }
    out
}

/// A value as the report page writes it: thousands grouped with no-break spaces, a decimal
/// comma and one decimal for a rate or median, a minus sign, `–` for no value.
fn on_page(column: &str, csv_value: &str) -> String {
    if csv_value.is_empty() {
        return "–".into();
    }
    let rate = column == "percent" || column.starts_with("median");
    if let (false, Ok(n)) = (rate, csv_value.parse::<i64>()) {
        let digits = n.unsigned_abs().to_string();
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push('\u{a0}');
            }
            grouped.push(c);
        }
        return if n < 0 {
            format!("\u{2212}{grouped}")
        } else {
            grouped
        };
    }
    if let Ok(x) = csv_value.parse::<f64>() {
        return format!("{x:.1}").replace('.', ",");
    }
    csv_value.to_string()
}

/// The data cells of the rendered DOM: (table, row, column) → text.
fn dom_cells(dom: &str) -> Vec<((String, String, String), String)> {
    let mut out = Vec::new();
    for piece in dom.split("<td class=\"n\" data-table=\"").skip(1) {
        let (table, rest) = piece.split_once("\" data-row=\"").unwrap();
        let (row, rest) = rest.split_once("\" data-column=\"").unwrap();
        let (column, rest) = rest.split_once("\">").unwrap();
        let (text, _) = rest.split_once("</td>").unwrap();
        let text = text
            .replace("&lt;", "<")
            .replace("&nbsp;", "\u{a0}")
            .replace("&amp;", "&");
        out.push(((table.into(), row.into(), column.into()), text));
    }
    out
}

/// Nothing on the page can load anything: no URL, no `src`, no stylesheet link, no script.
fn self_contained(html: &str) {
    for needle in [
        "http://", "https://", "src=", "<link", "<script", "@import", "url(", "<iframe", "<object",
        "<embed", "<img",
    ] {
        assert!(!html.contains(needle), "the report page holds {needle:?}");
    }
}

/// The page, rendered, shows exactly `gryning table`'s figures for every cell it takes from a
/// table; returns how many cells it checked.
fn page_equals_tables(dom: &str, tables: &BTreeMap<String, String>) -> usize {
    let mut places: BTreeMap<&str, BTreeMap<(String, String), String>> = BTreeMap::new();
    for (key, csv) in tables {
        places.insert(key.as_str(), by_place(csv));
    }
    let cells = dom_cells(dom);
    for ((table, row, column), text) in &cells {
        let place = places
            .get(table.as_str())
            .unwrap_or_else(|| panic!("the page names table {table:?}, not one of the report's"));
        let expected = match place.get(&(row.clone(), column.clone())) {
            Some(v) => on_page(column, v),
            // A row the table does not have: no crimes, so zero (and no rate).
            None if column == "percent" || column.starts_with("median") => "–".into(),
            None => "0".into(),
        };
        assert_eq!(
            text, &expected,
            "{table} {row} {column}: page {text:?}, table {expected:?}"
        );
    }
    cells.len()
}

/// The workbook read back with calamine equals the tables: one sheet per table in the report's
/// order, a frozen header row of Swedish labels, numbers as numbers; and a provenance sheet.
fn workbook_equals_tables(
    path: &Path,
    keys: &[String],
    tables: &BTreeMap<String, String>,
) -> usize {
    use calamine::{open_workbook, Data, Reader, Xlsx};
    let mut book: Xlsx<_> = open_workbook(path).unwrap();
    let names = book.sheet_names();
    assert_eq!(
        names.len(),
        keys.len() + 1,
        "a sheet per table and one about the figures: {names:?}"
    );
    assert_eq!(names.last().map(String::as_str), Some("Om siffrorna"));
    let mut checked = 0;
    for (key, sheet) in keys.iter().zip(&names) {
        let range = book.worksheet_range(sheet).unwrap();
        let expected = rows(&tables[key]);
        let got: Vec<&[Data]> = range.rows().collect();
        assert_eq!(got.len(), expected.len(), "{sheet}: rows");
        let header: Vec<String> = got[0].iter().map(|d| d.to_string()).collect();
        assert!(
            header.iter().any(|h| h == "Period"),
            "{sheet}: Swedish labels, got {header:?}"
        );
        assert!(
            !header.iter().any(|h| h == "period" || h == "reported"),
            "{sheet}: {header:?}"
        );
        for (want, have) in expected[1..].iter().zip(&got[1..]) {
            for (j, (w, h)) in want.iter().zip(have.iter()).enumerate() {
                match h {
                    Data::Float(x) => {
                        let w: f64 = w.parse().unwrap_or_else(|_| {
                            panic!("{sheet} col {j}: {w:?} is not a number, sheet has {x}")
                        });
                        assert!((w - x).abs() < 1e-9, "{sheet} col {j}: {w} vs {x}");
                    }
                    Data::Int(n) => assert_eq!(w, &n.to_string(), "{sheet} col {j}"),
                    Data::String(s) => {
                        let gender = match w.as_str() {
                            "ALL" => "Alla",
                            "FEMALE" => "Kvinnor",
                            "MALE" => "Män",
                            "UNKNOWN" => "Okänt kön",
                            "above" => "över medianen",
                            "in line" => "i linje med medianen",
                            "below" => "under medianen",
                            other => other,
                        };
                        let key = ["period", "code", "group", "victim_gender", "region"]
                            .contains(&expected[0][j].as_str());
                        assert!(
                            key || w.parse::<f64>().is_err(),
                            "{sheet} col {j}: the number {w} is text in the sheet"
                        );
                        assert_eq!(s, gender, "{sheet} col {j}");
                    }
                    Data::Empty => assert_eq!(w, "", "{sheet} col {j}"),
                    other => panic!("{sheet} col {j}: unexpected {other:?}"),
                }
                checked += 1;
            }
        }
    }
    let text = about_sheet(path);
    assert!(
        text.iter().any(|l| l.starts_with("Position i lagret=")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|l| l.starts_with("Katalogversion=")),
        "{text:?}"
    );
    checked
}

/// The workbook's sheet `Om siffrorna`, a line `what=value` per row.
fn about_sheet(path: &Path) -> Vec<String> {
    use calamine::{open_workbook, Reader, Xlsx};
    let mut book: Xlsx<_> = open_workbook(path).unwrap();
    let about = book.worksheet_range("Om siffrorna").unwrap();
    about
        .rows()
        .map(|r| {
            r.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("=")
        })
        .collect()
}

/// Every sheet's header row is frozen: the pane in each sheet's XML (calamine does not read
/// panes; Python's zipfile, which scripts/test.sh installs with python3, unpacks them).
fn headers_frozen(path: &Path, sheets: usize) {
    let script = "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nfor n in sorted(x for x in z.namelist() if x.startswith('xl/worksheets/sheet')):\n    print('frozen' if 'ySplit=\"1\"' in z.read(n).decode() and 'state=\"frozen\"' in z.read(n).decode() else 'not frozen', n)\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("frozen ")).count(),
        sheets,
        "{text}"
    );
}

fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is a PNG",
        path.display()
    );
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w, h)
}

/// The region-comparison tables of a live report: (file key, `gryning table` arguments).
const COMPARED: [(&str, &[&str]); 3] = [
    (
        "region-comparison-group-year",
        &["region-comparison", "--by", "group", "--period", "year"],
    ),
    (
        "region-comparison-code-year",
        &["region-comparison", "--by", "code", "--period", "year"],
    ),
    (
        "region-comparison-code-quarter",
        &["region-comparison", "--by", "code", "--period", "quarter"],
    ),
];

/// `options` without `flag` and its value.
fn without<'a>(options: &[&'a str], flag: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut skip = false;
    for o in options {
        if std::mem::take(&mut skip) {
            continue;
        }
        if *o == flag {
            skip = true;
            continue;
        }
        out.push(*o);
    }
    out
}

/// The value of `flag` in `options`.
fn value_of<'a>(options: &[&'a str], flag: &str) -> Option<&'a str> {
    options
        .iter()
        .position(|o| *o == flag)
        .map(|i| options[i + 1])
}

/// The comparison files of a live report made with `options`, checked against `gryning table
/// region-comparison --region R` (R: the report's region, or Polisregion Stockholm) with the
/// same options: byte for byte; under `--suppress-below N`, every count from 1 to N−1 marked
/// `<N`, every other cell as the table has it or hidden (`..`, never a zero), a rate and a
/// verdict hidden exactly where a count of its row is. Returns (file key, the file's CSV).
fn comparison_files(
    data: &Path,
    out: &Path,
    year: &str,
    options: &[&str],
) -> Vec<(String, String)> {
    let region = value_of(options, "--region").unwrap_or("Polisregion Stockholm");
    let below: Option<i64> = value_of(options, "--suppress-below").map(|n| n.parse().unwrap());
    let mut found = Vec::new();
    for (key, args) in COMPARED {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(without(&without(options, "--region"), "--suppress-below"));
        all.extend_from_slice(&["--region", region]);
        let table = table_csv(data, &all);
        let file = out.join(format!("rapport-{year}-{key}.csv"));
        let written =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let Some(below) = below else {
            assert!(
                written == table,
                "{} is not `gryning table {}`'s CSV",
                file.display(),
                all.join(" ")
            );
            found.push((key.to_string(), written));
            continue;
        };
        let (want, have) = (rows(&table), rows(&written));
        assert_eq!(want.len(), have.len(), "{key}: rows");
        assert_eq!(want[0], have[0], "{key}: header");
        let header = &want[0];
        let at = |name: &str| header.iter().position(|c| c == name).unwrap();
        for (w, h) in want[1..].iter().zip(&have[1..]) {
            let mut hidden = false;
            for c in [at("handled"), at("cleared")] {
                let n: i64 = w[c].parse().unwrap();
                if n > 0 && n < below {
                    assert_eq!(
                        h[c],
                        format!("<{below}"),
                        "{key} {w:?}: a small count is marked"
                    );
                    hidden = true;
                } else if h[c] == ".." {
                    assert!(n > 0, "{key} {w:?}: a zero is never hidden");
                    hidden = true;
                } else {
                    assert_eq!(h[c], w[c], "{key} {w:?}");
                }
            }
            for (j, (wv, hv)) in w.iter().zip(h).enumerate() {
                if j == at("percent") || j == at("verdict") {
                    let expected = if hidden { ".." } else { wv.as_str() };
                    assert_eq!(hv, expected, "{key} {w:?} column {}", header[j]);
                } else if j != at("handled") && j != at("cleared") {
                    assert_eq!(hv, wv, "{key} {w:?} column {}", header[j]);
                }
            }
        }
        found.push((key.to_string(), written));
    }
    found
}

/// Reads the report in `out` against `gryning table` with `options`, in the browser, the
/// workbook and the CSV files.
fn check_report(data: &Path, out: &Path, year: &str, options: &[&str], previous: Option<&str>) {
    let mut tables = BTreeMap::new();
    let mut keys = Vec::new();
    for (suffix, published) in std::iter::once(("", None)).chain(previous.map(|p| (p, Some(p)))) {
        for (key, args) in TABLES {
            let mut all: Vec<&str> = args.to_vec();
            // The options the report was made with, and for the previous year's publication
            // its own quarter instead of --published.
            let mut skip = false;
            for o in options {
                if skip {
                    skip = false;
                    continue;
                }
                if *o == "--published" && published.is_some() {
                    skip = true;
                    continue;
                }
                all.push(o);
            }
            if let Some(p) = published {
                all.extend_from_slice(&["--published", p]);
            }
            let key = if suffix.is_empty() {
                key.to_string()
            } else {
                format!("{key}-{suffix}")
            };
            let csv = table_csv(data, &all);
            let file = out.join(format!("rapport-{year}-{key}.csv"));
            let written = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            if written != csv {
                let line = written.lines().zip(csv.lines()).find(|(a, b)| a != b);
                panic!("{} is not `gryning table {}`'s CSV: first different line (file, table) {line:?}", file.display(), all.join(" "));
            }
            tables.insert(key.clone(), csv);
            keys.push(key);
        }
    }
    if !options.contains(&"--published") {
        for (key, csv) in comparison_files(data, out, year, options) {
            tables.insert(key.clone(), csv);
            keys.push(key);
        }
    }
    let page = out.join(format!("rapport-{year}.html"));
    let html = std::fs::read_to_string(&page).unwrap();
    self_contained(&html);
    let dom = String::from_utf8(browse(&page, &["--dump-dom"]).stdout).unwrap();
    for needle in [
        "Tabell 1.",
        "Tabell 2.",
        "Figur 1.",
        "<svg",
        "<title id=\"figur-1-title\">",
        "<desc",
        "Kriminalvården",
        "Om siffrorna",
        "Personuppklaringsprocent",
    ] {
        assert!(dom.contains(needle), "the rendered page shows {needle:?}");
    }
    let checked = page_equals_tables(&dom, &tables);
    assert!(
        checked > 200,
        "the page shows {checked} cells of the tables"
    );
    let xlsx = out.join(format!("rapport-{year}.xlsx"));
    headers_frozen(&xlsx, keys.len() + 1);
    let cells = workbook_equals_tables(&xlsx, &keys, &tables);
    assert!(cells > 1000, "{cells} cells of the workbook checked");
    eprintln!(
        "{}: {checked} page cells and {cells} workbook cells equal `gryning table`",
        out.display()
    );
}

#[test]
fn the_report_renders_in_chromium_and_its_numbers_are_the_tables() {
    let data = &data_copy("live");
    let out = data.parent().unwrap().join("out");
    let printed = ok(gryning(
        data,
        &[
            "report",
            "--year",
            "2020",
            "--suppress-below",
            "5",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    ));
    assert!(printed.contains("rapport-2020.html"), "{printed}");
    check_report(data, &out, "2020", &["--suppress-below", "5"], None);
    let html = std::fs::read_to_string(out.join("rapport-2020.html")).unwrap();
    // Suppression is on: small cells are marked, the page says so.
    assert!(html.contains("&lt;5"), "small cells are shown as <5");
    assert!(html.contains("Antal från 1 till 4 visas som &lt;5"));
    // One police region in the data: no median of the regions.
    assert!(html.contains(
        "Uppgifterna gäller en enda polisregion (Polisregion Stockholm): ingen median av regionerna kan ritas"
    ));
    assert!(
        !html.contains("data-comparison="),
        "no verdicts without a median"
    );

    // A page of the report as the browser draws it: A4 width at 96 dpi.
    let shot = out.join("rapport-2020.png");
    browse(
        &out.join("rapport-2020.html"),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=794,1123",
        ],
    );
    let (w, h) = png_size(&shot);
    assert_eq!((w, h), (794, 1123), "the screenshot is one A4 page");
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 20_000,
        "the screenshot shows the page, not a blank"
    );
    // `UPDATE_SCREENSHOTS=1 cargo test --workspace --locked --test report` refreshes the
    // README's picture from this run.
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/img");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(&shot, docs.join("rapport-2020.png")).unwrap();
    }

    // Printing needs no script and no network: Chromium prints it to a PDF of A4 pages.
    let pdf = out.join("rapport-2020.pdf");
    browse(
        &out.join("rapport-2020.html"),
        &[
            &format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer",
        ],
    );
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF"), "a PDF");
    let pages = bytes
        .windows(b"/Type /Page\n".len())
        .filter(|w| w.starts_with(b"/Type /Page") && !w.starts_with(b"/Type /Pages"))
        .count();
    assert!(
        pages >= 3,
        "the report prints on several pages, got {pages}"
    );
    let a4 = {
        let text = String::from_utf8_lossy(&bytes);
        text.contains("/MediaBox [0 0 595 842]")
            || text.contains("/MediaBox [0 0 594.95996 841.91998]")
    };
    assert!(a4, "the pages are A4 (595 × 842 points)");
}

#[test]
fn a_report_of_a_quarter_and_of_a_publication_is_the_published_tables() {
    let data = &data_copy("published");
    let dir = data.parent().unwrap();
    // The data directory's events are all of 2019 and 2020: both quarters have ended.
    for q in ["2019-Q4", "2020-Q4"] {
        let printed = ok(gryning(data, &["publish", "--quarter", q], &[]));
        assert!(printed.starts_with(&format!("published {q}")), "{printed}");
    }
    let out = dir.join("published");
    ok(gryning(
        data,
        &[
            "report",
            "--year",
            "2020",
            "--published",
            "2020-Q4",
            "--suppress-below",
            "3",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    ));
    check_report(
        data,
        &out,
        "2020",
        &["--published", "2020-Q4", "--suppress-below", "3"],
        Some("2019-Q4"),
    );
    let html = std::fs::read_to_string(out.join("rapport-2020.html")).unwrap();
    assert!(
        html.contains("Publicerade siffror: 2020-Q4, revision 1"),
        "the page names the publication"
    );
    assert!(
        html.contains("Publiceringen 2019-Q4, revision 1"),
        "and the comparison year's"
    );

    let out = dir.join("quarter");
    ok(gryning(
        data,
        &[
            "report",
            "--year",
            "2020",
            "--quarter",
            "2020-Q4",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    ));
    check_report(data, &out, "2020", &[], None);
    let html = std::fs::read_to_string(out.join("rapport-2020.html")).unwrap();
    assert!(
        html.contains("2020 kv 4") && html.contains("2019 kv 4"),
        "the quarter against the same quarter a year earlier"
    );

    let refused = gryning(
        data,
        &[
            "report",
            "--year",
            "2020",
            "--quarter",
            "2019-Q4",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr)
        .contains("--quarter 2019-Q4 is not in --year 2020"));
}

#[test]
fn suppressed_tables_through_a_server_are_the_offline_ones() {
    let data = &data_copy("offline");
    // Another copy for the server to own.
    let served = data_copy("served");
    let dir = served.parent().unwrap().to_path_buf();
    let server = up::up(&dir);
    let token = server.tokens["analyst"].clone();
    let url = server.url();
    for (_, args) in TABLES {
        let mut all = vec!["table"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--suppress-below", "5", "--format", "csv"]);
        let offline = ok(gryning(data, &all, &[]));
        all.extend_from_slice(&["--server", &url, "--token", &token]);
        let remote = ok(gryning(&served, &all, &[]));
        assert!(
            remote == offline,
            "{}: through the server {:?}",
            all.join(" "),
            remote.lines().zip(offline.lines()).find(|(a, b)| a != b)
        );
        assert!(
            offline.contains("<5") || args[0] == "care",
            "{}: some cell is small",
            args[0]
        );
    }
    let out = dir.join("report");
    ok(gryning(
        &served,
        &[
            "report",
            "--year",
            "2020",
            "--suppress-below",
            "5",
            "--out",
            out.to_str().unwrap(),
            "--server",
            &url,
            "--token",
            &token,
        ],
        &[],
    ));
    let offline = data.parent().unwrap().join("live-for-server");
    ok(gryning(
        data,
        &[
            "report",
            "--year",
            "2020",
            "--suppress-below",
            "5",
            "--out",
            offline.to_str().unwrap(),
        ],
        &[],
    ));
    for (key, _) in TABLES.iter().chain(&COMPARED) {
        let name = format!("rapport-2020-{key}.csv");
        assert!(
            std::fs::read_to_string(out.join(&name)).unwrap()
                == std::fs::read_to_string(offline.join(&name)).unwrap(),
            "{name} through the server differs from the offline one"
        );
    }
    let html = std::fs::read_to_string(out.join("rapport-2020.html")).unwrap();
    assert!(
        html.contains(&format!("the server {url}")),
        "the page names where its figures come from"
    );
    // The server's region-comparison tables are read: one region, so no median.
    assert!(
        html.contains("Uppgifterna gäller en enda polisregion (Polisregion Stockholm)"),
        "the page through the server says what the charts compare"
    );
    let police = gryning(
        &served,
        &[
            "report",
            "--year",
            "2020",
            "--out",
            out.to_str().unwrap(),
            "--server",
            &url,
            "--token",
            &server.tokens["police"],
        ],
        &[],
    );
    assert_eq!(
        police.status.code(),
        Some(2),
        "a police token may not read tables"
    );
    server.stop();
}

/// `gryning table region-comparison --by BY --period year`, as rows of column → value. Read
/// from the CSV, whose rates are the shortest text that reads back as the same f64 (as in the
/// JSON, whose reader here may round the last digit differently).
fn comparison_rows(data: &Path, by: &str) -> Vec<BTreeMap<String, String>> {
    let rows = rows(&table_csv(
        data,
        &["region-comparison", "--by", by, "--period", "year"],
    ));
    rows[1..]
        .iter()
        .map(|r| rows[0].iter().cloned().zip(r.iter().cloned()).collect())
        .collect()
}

/// A chart series' points: year → value, `None` where nothing is drawn.
type Points = Vec<(String, Option<f64>)>;

/// The series the rendered page's charts draw: (`group|region-or-median|gender`, its points).
fn drawn_series(dom: &str) -> Vec<(String, Points)> {
    let mut out = Vec::new();
    for piece in dom.split("data-series=\"").skip(1) {
        let (key, rest) = piece.split_once("\" data-points=\"").unwrap();
        let (points, _) = rest.split_once('"').unwrap();
        let points = points
            .split(';')
            .map(|p| {
                let (year, value) = p.split_once('=').unwrap();
                (year.to_string(), value.parse::<f64>().ok())
            })
            .collect();
        out.push((key.replace("&amp;", "&"), points));
    }
    out
}

/// The verdict table's cells: (`period|code|gender|region`, column) → text.
fn verdict_cells(dom: &str) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for piece in dom.split("data-comparison=\"").skip(1) {
        let (place, rest) = piece.split_once("\" data-column=\"").unwrap();
        let (column, rest) = rest.split_once("\">").unwrap();
        let (text, _) = rest.split_once("</td>").unwrap();
        out.insert(
            (place.to_string(), column.to_string()),
            text.replace("&nbsp;", "\u{a0}"),
        );
    }
    out
}

/// A `region-comparison` row is hidden under suppression below `below` when its handled or
/// cleared count is from 1 to `below` − 1.
fn small(row: &BTreeMap<String, String>, below: Option<i64>) -> bool {
    let Some(b) = below else { return false };
    ["handled", "cleared"].iter().any(|c| {
        let n: i64 = row[*c].parse().unwrap();
        n > 0 && n < b
    })
}

/// Whether the report in `out` hides `region`'s rate in the `region-comparison` row of
/// (`period`, code or group `key`, `gender`), as its comparison file `KEY` shows it.
fn rate_hidden(
    out: &Path,
    file: &str,
    (period, key, gender): (&str, &str, &str),
    region: &str,
) -> bool {
    let rows =
        rows(&std::fs::read_to_string(out.join(format!("rapport-2020-{file}.csv"))).unwrap());
    let at = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    rows[1..].iter().any(|r| {
        r[0] == period
            && r[1] == key
            && r[at("victim_gender")] == gender
            && r[at("region")] == region
            && r[at("percent")] == ".."
    })
}

/// Checks the charts and the verdict table of a report of 2020 made from data of every region,
/// setting `region` against the median, against `gryning table region-comparison` (a rate
/// hidden where the report's comparison file hides it, which it must where a count is small);
/// returns how many points and cells it checked.
fn drawn_equals_comparison(
    data: &Path,
    out: &Path,
    below: Option<i64>,
    region: &str,
) -> (usize, usize) {
    let page = out.join("rapport-2020.html");
    let html = std::fs::read_to_string(&page).unwrap();
    self_contained(&html);
    let dom = String::from_utf8(browse(&page, &["--dump-dom"]).stdout).unwrap();
    assert!(
        dom.contains("Uppgifterna gäller 7 polisregioner")
            && dom.contains(&format!("{region} (heldragna linjer) mot medianen")),
        "the page says what the charts compare"
    );
    let groups = comparison_rows(data, "group");
    let codes = comparison_rows(data, "code");
    let text = |v: &String| v.clone();
    let rate = |v: &String| v.parse::<f64>().ok();
    let mut points = 0;
    let mut hidden = 0;
    let series = drawn_series(&dom);
    for (key, drawn) in &series {
        let parts: Vec<&str> = key.split('|').collect();
        let [group, who, gender] = parts[..] else {
            panic!("series {key:?}")
        };
        for (year, value) in drawn {
            let cell: Vec<&BTreeMap<String, String>> = groups
                .iter()
                .filter(|r| {
                    text(&r["period"]) == *year
                        && text(&r["group"]) == group
                        && text(&r["victim_gender"]) == gender
                })
                .collect();
            let expected = if who == "median" {
                cell.first().and_then(|r| rate(&r["median_percent"]))
            } else {
                let row = cell.iter().find(|r| text(&r["region"]) == who);
                let file_hides = rate_hidden(
                    out,
                    "region-comparison-group-year",
                    (year.as_str(), group, gender),
                    who,
                );
                if row.is_some_and(|r| small(r, below)) {
                    assert!(
                        file_hides,
                        "{key} {year}: a rate over a small count is hidden"
                    );
                }
                if file_hides {
                    hidden += 1;
                    None
                } else {
                    row.and_then(|r| rate(&r["percent"]))
                }
            };
            assert_eq!(
                *value, expected,
                "{key} {year}: drawn {value:?}, region-comparison {expected:?}"
            );
            points += usize::from(value.is_some());
        }
    }
    assert!(
        series.iter().any(|(k, _)| k.contains("|median|"))
            && series
                .iter()
                .any(|(k, _)| k.contains(&format!("|{region}|"))),
        "the charts draw {region} and the median: {series:?}"
    );
    // The verdicts of 2020, all victims, per code.
    let cells = verdict_cells(&dom);
    let mut checked = 0;
    for row in codes
        .iter()
        .filter(|r| text(&r["period"]) == "2020" && text(&r["victim_gender"]) == "ALL")
    {
        let place = format!("2020|{}|ALL|{region}", text(&row["code"]));
        let median = cells
            .get(&(place.clone(), "median_percent".into()))
            .unwrap_or_else(|| panic!("the verdict table has no row {place}"));
        let expected_median = on_page("median_percent", &row["median_percent"]);
        assert_eq!(median, &expected_median, "{place}: median");
        assert_eq!(
            cells[&(place.clone(), "regions_in_median".into())],
            row["regions_in_median"],
            "{place}: regions in the median"
        );
        checked += 2;
        if text(&row["region"]) != region {
            continue;
        }
        let hides = rate_hidden(
            out,
            "region-comparison-code-year",
            ("2020", row["code"].as_str(), "ALL"),
            region,
        );
        assert!(
            !small(row, below) || hides,
            "{place}: a rate over a small count is hidden"
        );
        let (rate, verdict) = if hides {
            ("..".to_string(), "..")
        } else {
            (
                on_page("percent", &row["percent"]),
                match row["verdict"].as_str() {
                    "above" => "över medianen",
                    "in line" => "i linje med medianen",
                    "below" => "under medianen",
                    "" => "–",
                    other => panic!("verdict {other:?}"),
                },
            )
        };
        assert_eq!(cells[&(place.clone(), "percent".into())], rate, "{place}");
        assert_eq!(
            cells[&(place.clone(), "verdict".into())],
            verdict,
            "{place}"
        );
        checked += 2;
    }
    if below.is_some() {
        assert!(hidden > 0, "suppression hides some of Stockholm's rates");
    }
    (points, checked)
}

#[test]
fn with_every_region_the_charts_set_stockholm_against_the_median_of_region_comparison() {
    let data = regions_copy("stockholm");
    let dir = data.parent().unwrap().to_path_buf();
    for (name, below) in [("all", None), ("suppressed", Some(20))] {
        let out = dir.join(name);
        let mut args = vec![
            "report".to_string(),
            "--year".into(),
            "2020".into(),
            "--out".into(),
            out.display().to_string(),
        ];
        if let Some(n) = below {
            args.extend(["--suppress-below".into(), n.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(gryning(&data, &args, &[]));
        let options: Vec<&str> = args[5..].to_vec();
        let files = comparison_files(&data, &out, "2020", &options);
        assert_eq!(files.len(), 3);
        let (points, cells) = drawn_equals_comparison(&data, &out, below, "Polisregion Stockholm");
        assert!(points > 20, "{points} points drawn");
        assert!(cells > 40, "{cells} verdict cells");
        eprintln!(
            "{name}: {points} chart points and {cells} verdict cells equal region-comparison"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The files a report wrote into `dir`: file name → content, CSV files only.
fn csv_files(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// `gryning report` with `args` refused: exit status 2, nothing written to `out`, and the
/// message holding each of `expected`.
fn refused(data: &Path, args: &[&str], out: &Path, expected: &[&str]) {
    let mut all = vec!["report", "--year", "2020", "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let result = gryning(data, &all, &[]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{}: {stderr}", all.join(" "));
    for e in expected {
        assert!(stderr.contains(e), "{}: {stderr}", all.join(" "));
    }
    assert!(
        !out.exists(),
        "{}: a refused report writes nothing",
        all.join(" ")
    );
}

#[test]
fn a_report_of_one_region_is_that_regions_tables_offline_and_through_a_server() {
    let data = &regions_copy("region");
    let dir = data.parent().unwrap().to_path_buf();
    let out = dir.join("vast");
    let options = ["--region", "väst"];
    let mut args = vec!["report", "--year", "2020", "--out", out.to_str().unwrap()];
    args.extend_from_slice(&options);
    ok(gryning(data, &args, &[]));
    // Every table, CSV file and sheet is `gryning table --region väst`'s; the comparison files
    // are `gryning table region-comparison --region väst`'s.
    check_report(data, &out, "2020", &options, None);
    let (points, cells) = drawn_equals_comparison(data, &out, None, "Polisregion Väst");
    assert!(
        points > 20 && cells > 40,
        "{points} points, {cells} verdict cells"
    );
    let html = std::fs::read_to_string(out.join("rapport-2020.html")).unwrap();
    assert!(
        html.contains("Polisregion Väst: de ärenden som hör till regionen")
            && html.contains("Tabellerna gäller Polisregion Väst."),
        "the page says whose figures they are"
    );
    assert!(
        html.contains("<dt>Polisregion</dt><dd>Polisregion Väst: tabellerna gäller"),
        "the provenance names the region"
    );
    let about = about_sheet(&out.join("rapport-2020.xlsx"));
    for line in [
        "Polisregion=Polisregion Väst",
        "Jämförd med medianen=Polisregion Väst",
    ] {
        assert!(about.iter().any(|l| l == line), "{line}: {about:?}");
    }
    // Not Stockholm's or the country's figures: the region's own differ from both.
    let county = table_csv(data, &["case-flow", "--by", "group"]);
    let stockholm = table_csv(
        data,
        &["case-flow", "--by", "group", "--region", "Stockholm"],
    );
    let written =
        std::fs::read_to_string(out.join("rapport-2020-case-flow-group-year.csv")).unwrap();
    assert!(written != county && written != stockholm);

    refused(
        data,
        &["--region", "Atlantis"],
        &dir.join("atlantis"),
        &[
            "--region \"Atlantis\": not a police region",
            "Polisregion Bergslagen",
            "Polisregion Syd",
        ],
    );

    // Through a server: the same files, and the same refusal.
    let served = regions_copy("region-served");
    let remote = dir.join("vast-remote");
    let (server, url, token) = report_through_a_server(&served, &remote, &options);
    let (here, there) = (csv_files(&out), csv_files(&remote));
    assert_eq!(here.len(), TABLES.len() + COMPARED.len());
    assert!(
        here == there,
        "the region's files through the server differ from the offline ones"
    );
    let html = std::fs::read_to_string(remote.join("rapport-2020.html")).unwrap();
    assert!(html.contains("Polisregion Väst (heldragna linjer) mot medianen"));
    refused(
        &served,
        &["--region", "Atlantis", "--server", &url, "--token", &token],
        &dir.join("atlantis-remote"),
        &[
            "--region \"Atlantis\"",
            "field region",
            "Polisregion Bergslagen",
        ],
    );
    server.stop();
}

#[test]
fn a_classified_report_is_the_tables_under_that_version_offline_and_through_a_server() {
    let data = &data_copy("classified");
    let dir = data.parent().unwrap().to_path_buf();
    let out = dir.join("2019.1");
    let options = ["--classification", "2019.1", "--suppress-below", "5"];
    let mut args = vec!["report", "--year", "2020", "--out", out.to_str().unwrap()];
    args.extend_from_slice(&options);
    ok(gryning(data, &args, &[]));
    // Every file is `gryning table --classification 2019.1 --suppress-below 5`'s: suppression
    // works on the version's tables and groups, the rows the report shows.
    check_report(data, &out, "2020", &options, None);
    let recorded = table_csv(
        data,
        &["case-flow", "--by", "code", "--suppress-below", "5"],
    );
    let classified =
        std::fs::read_to_string(out.join("rapport-2020-case-flow-code-year.csv")).unwrap();
    assert!(
        recorded != classified && classified.contains("<5"),
        "the version counts 2020's codes under 2019's, suppressed"
    );
    let html = std::fs::read_to_string(out.join("rapport-2020.html")).unwrap();
    assert!(
        html.contains("<dt>Klassificering</dt><dd>Version 2019.1:"),
        "the provenance names the classification"
    );
    let about = about_sheet(&out.join("rapport-2020.xlsx"));
    assert!(
        about
            .iter()
            .any(|l| l.starts_with("Klassificering=version 2019.1")),
        "{about:?}"
    );

    // Through a server: the same files.
    let served = data_copy("classified-served");
    let remote = dir.join("2019.1-remote");
    let (server, _, _) = report_through_a_server(&served, &remote, &options);
    assert!(
        csv_files(&out) == csv_files(&remote),
        "the classified files through the server differ from the offline ones"
    );
    server.stop();
}

/// Starts `gryning up` on the data directory `served` and writes the 2020 report with
/// `options` through it into `out`; returns the server, its URL and the analyst's token.
fn report_through_a_server(
    served: &Path,
    out: &Path,
    options: &[&str],
) -> (harness::Server, String, String) {
    let server = up::up(served.parent().unwrap());
    let (url, token) = (server.url(), server.tokens["analyst"].clone());
    let mut args = vec!["report", "--year", "2020", "--out", out.to_str().unwrap()];
    args.extend_from_slice(options);
    args.extend_from_slice(&["--server", &url, "--token", &token]);
    ok(gryning(served, &args, &[]));
    (server, url, token)
}

#[test]
fn report_options_that_do_not_go_together_are_refused_naming_the_option() {
    let data = &data_copy("refused");
    let dir = data.parent().unwrap().to_path_buf();
    ok(gryning(data, &["publish", "--quarter", "2020-Q4"], &[]));
    let out = dir.join("nothing");
    refused(
        data,
        &["--classification", "2018.1"],
        &out,
        &["--classification: unknown classification \"2018.1\": the classifications are recorded, 2019.1, 2020.1"],
    );
    refused(
        data,
        &["--classification", "2019.1", "--published", "2020-Q4"],
        &out,
        &["--classification 2019.1: a publication holds its tables as recorded"],
    );
    refused(
        data,
        &["--region", "Väst", "--suppress-below", "5"],
        &out,
        &["--suppress-below works on the tables of every region together: leave out --region"],
    );
    refused(
        data,
        &["--region", "Väst", "--published", "2020-Q4"],
        &out,
        &["--region", "--published", "cannot be used with"],
    );
}
