//! `gryning bench`: every benchmark of BENCHMARKS.md's "One command" section on generated data,
//! each figure beside its baseline measured in the same run on the same machine, repeated
//! (`--repeat`, 3 by default) for min/median/max, written as JSON (`--out`, schema in
//! BENCHMARKS.md) and summarised on standard output.
//!
//! Everything a user would run is run as they run it: this binary as a child process, timed
//! whole (process start and the store's open included), `gryning up` until it says
//! "listening on", its clients from this process measuring from each call's send.

mod child;
mod dashboard;
mod duckdb;
pub mod watch;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use gryning_proto::pb;
use gryning_proto::pb::insight_client::InsightClient;
use gryning_store::baseline::{Layout, Writer};
use gryning_store::EventStore;
use serde_json::{json, Value};

use child::{gryning, Up};

/// The events `gryning import` hands the recorder at once, and so the batch of the SQLite
/// baselines (`import::BATCH`).
const IMPORT_BATCH: usize = crate::import::BATCH;
/// The Watch rates offered, referrals per second.
const WATCH_RATES: [u64; 3] = [1_000, 5_000, 20_000];
/// Referrals sent one at a time to the loaded server while its dashboard's event stream is open.
const DASHBOARD_REFERRALS: usize = 100;
/// The version of the JSON result's layout (BENCHMARKS.md, "The result file").
const SCHEMA: &str = "gryning-bench/1";

#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// Copies of the 2019–2020 dataset to generate (8: about 1M events; 79: about 10M).
    #[arg(long, default_value_t = 8)]
    scale: u32,
    /// Keep only the first N generated events (a run smaller than scale 1, e.g. a smoke test).
    #[arg(long, value_name = "N")]
    events: Option<u64>,
    /// Repetitions of every measurement (min, median and max are reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Where to write the JSON result.
    #[arg(long, value_name = "FILE", default_value = "bench-results.json")]
    out: PathBuf,
    /// Seconds of referrals at each offered Watch rate.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    watch_secs: f64,
    /// Timed `GetTable` calls per repetition (after 20 untimed ones).
    #[arg(long, value_name = "N", default_value_t = 500)]
    calls: u32,
    /// Directory for the generated data and the stores (default: a new temporary directory,
    /// removed at the end).
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// The Python virtual environment of the DuckDB baseline (default: bench-venv in the
    /// target directory of this binary).
    #[arg(long, value_name = "DIR")]
    venv: Option<PathBuf>,
    /// Only these rows, by id, comma-separated (default: every row). The import that fills
    /// each repetition's store always runs; its baselines only with the `import` row.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    rows: Option<Vec<String>>,
}

/// Every row's id, in the result's order.
const ROW_IDS: [&str; 9] = [
    "table",
    "store_open",
    "rebuild",
    "import",
    "watch_lag_1000",
    "watch_lag_5000",
    "watch_lag_20000",
    "dashboard",
    "memory",
];

/// A measured quantity: one sample per repetition.
struct Figure {
    name: &'static str,
    unit: &'static str,
    samples: Vec<f64>,
}

impl Figure {
    fn new(name: &'static str, unit: &'static str) -> Figure {
        Figure {
            name,
            unit,
            samples: Vec::new(),
        }
    }

    fn sorted(&self) -> Vec<f64> {
        let mut s = self.samples.clone();
        s.sort_by(f64::total_cmp);
        s
    }

    fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }

    fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }

    fn median(&self) -> f64 {
        let s = self.sorted();
        match s.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => s[n / 2],
            n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
        }
    }

    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "unit": self.unit,
            "samples": self.samples,
            "min": num(self.min()),
            "median": num(self.median()),
            "max": num(self.max()),
        })
    }
}

/// A JSON number, or null for a value that is not one.
fn num(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

/// A ratio of two figures, sample by sample (the same repetition's), `a / b`.
struct Ratio {
    name: &'static str,
    of: (&'static str, &'static str),
    meaning: &'static str,
    figure: Figure,
}

/// A target of the project, on a figure or a ratio by name: the median must be at most or at
/// least `threshold`; `from_events` is the store size it is set for (None: any).
struct Target {
    text: &'static str,
    on: &'static str,
    at_most: bool,
    threshold: f64,
    from_events: Option<u64>,
}

/// One row of the result: gryning's figures, the baseline's (or why there is none), ratios
/// and targets.
struct Row {
    id: &'static str,
    title: String,
    command: String,
    figures: Vec<Figure>,
    baseline: Result<Vec<Figure>, String>,
    baseline_what: String,
    ratios: Vec<Ratio>,
    targets: Vec<Target>,
    notes: Vec<String>,
    /// Answers compared while measuring (e.g. DuckDB's rows against gryning's).
    checks: Value,
}

impl Row {
    fn find(&self, name: &str) -> Option<&Figure> {
        self.figures
            .iter()
            .chain(self.baseline.iter().flatten())
            .chain(self.ratios.iter().map(|r| &r.figure))
            .find(|f| f.name == name)
    }

    /// Computes the ratios' samples from the figures they name.
    fn compute_ratios(&mut self) {
        let pairs: Vec<Vec<f64>> = self
            .ratios
            .iter()
            .map(|r| {
                let (a, b) = (self.find(r.of.0), self.find(r.of.1));
                match (a, b) {
                    (Some(a), Some(b)) => a
                        .samples
                        .iter()
                        .zip(&b.samples)
                        .map(|(x, y)| x / y)
                        .collect(),
                    _ => Vec::new(),
                }
            })
            .collect();
        for (r, samples) in self.ratios.iter_mut().zip(pairs) {
            r.figure.samples = samples;
        }
    }

    fn target_met(&self, t: &Target, events: u64) -> Value {
        if t.from_events.is_some_and(|n| events < n) {
            return Value::Null;
        }
        match self.find(t.on).map(Figure::median) {
            Some(m) if m.is_finite() => json!(if t.at_most {
                m <= t.threshold
            } else {
                m >= t.threshold
            }),
            _ => Value::Null,
        }
    }

    fn json(&self, events: u64) -> Value {
        let baseline = match &self.baseline {
            Ok(figures) => json!({
                "what": self.baseline_what,
                "figures": figures.iter().map(Figure::json).collect::<Vec<_>>(),
            }),
            Err(why) => json!({ "what": self.baseline_what, "unavailable": why }),
        };
        json!({
            "id": self.id,
            "title": self.title,
            "command": self.command,
            "figures": self.figures.iter().map(Figure::json).collect::<Vec<_>>(),
            "baseline": baseline,
            "ratios": self.ratios.iter().map(|r| {
                let mut v = r.figure.json();
                v["of"] = json!([r.of.0, r.of.1]);
                v["meaning"] = json!(r.meaning);
                v
            }).collect::<Vec<_>>(),
            "targets": self.targets.iter().map(|t| json!({
                "text": t.text,
                "on": t.on,
                "at_most": t.at_most,
                "threshold": t.threshold,
                "from_events": t.from_events,
                "median": self.find(t.on).map(|f| num(f.median())),
                "met": self.target_met(t, events),
            })).collect::<Vec<_>>(),
            "notes": self.notes,
            "checks": self.checks,
        })
    }

    fn summary(&self, events: u64) -> String {
        let line = |f: &Figure| {
            format!(
                "    {:<28} {:>12} {:<6} (min {}, max {})\n",
                f.name,
                short(f.median()),
                f.unit,
                short(f.min()),
                short(f.max())
            )
        };
        let mut s = format!("== {}\n", self.title);
        self.figures.iter().for_each(|f| s += &line(f));
        match &self.baseline {
            Ok(b) if b.is_empty() => {}
            Ok(b) => {
                s += &format!("  baseline: {}\n", self.baseline_what);
                b.iter().for_each(|f| s += &line(f));
            }
            Err(why) => s += &format!("  baseline unavailable: {why}\n"),
        }
        for r in &self.ratios {
            s += &format!(
                "  ratio {} = {} / {}: {}\n",
                r.name, r.of.0, r.of.1, r.meaning
            );
            s += &line(&r.figure);
        }
        for t in &self.targets {
            let verdict = match self.target_met(t, events) {
                Value::Bool(true) => "met",
                Value::Bool(false) => "MISSED",
                _ => "not judged at this scale",
            };
            s += &format!("  target {}: {verdict}\n", t.text);
        }
        for n in &self.notes {
            s += &format!("  note: {n}\n");
        }
        s
    }
}

/// Four significant digits, without exponent for everyday magnitudes.
fn short(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let a = x.abs();
    if a >= 1000.0 {
        format!("{x:.0}")
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.4}")
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The `p`-quantile of `samples` (sorted here), nearest rank.
fn quantile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    watch::Lag::quantile(samples, p)
}

/// What the generated data holds.
struct Data {
    path: PathBuf,
    events: u64,
    crimes: u64,
    cases: u64,
    bytes: u64,
}

/// Generates the dataset (`gryning generate`), keeps its first `keep` lines when asked, and
/// counts what it holds.
fn prepare(work: &Path, scale: u32, keep: Option<u64>) -> anyhow::Result<Data> {
    use std::io::{BufRead, Write};
    let full = work.join("generated.ndjson");
    let mut generate = gryning()?;
    generate
        .args(["generate", "--scale", &scale.to_string(), "--output"])
        .arg(&full);
    child::run(generate)?;
    let path = work.join("events.ndjson");
    let input = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&full)?);
    let mut output = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
    let (mut events, mut crimes, mut cases, mut bytes) = (0u64, 0u64, 0u64, 0u64);
    for line in input.split(b'\n') {
        let line = line?;
        if keep.is_some_and(|n| events >= n) {
            break;
        }
        if line.is_empty() {
            continue;
        }
        events += 1;
        bytes += line.len() as u64 + 1;
        let has = |key: &[u8]| line.windows(key.len()).any(|w| w == key);
        if has(b"\"crimeReported\"") {
            crimes += 1;
        } else if has(b"\"caseOpened\"") {
            cases += 1;
        }
        output.write_all(&line)?;
        output.write_all(b"\n")?;
    }
    output.flush()?;
    drop(output);
    std::fs::remove_file(&full)?;
    Ok(Data {
        path,
        events,
        crimes,
        cases,
        bytes,
    })
}

/// The same rows as the store holds, written into the append-only ceiling and the plain
/// layout, `IMPORT_BATCH` rows per transaction, synchronous=FULL as the store: events/s of the
/// transactions alone (reading the store's rows is not timed).
async fn sqlite_baselines(data_dir: &Path, work: &Path) -> anyhow::Result<(f64, f64)> {
    let store = gryning_store::sqlite::SqliteStore::open(data_dir)?;
    let ceiling_path = work.join("ceiling.sqlite3");
    let plain_path = work.join("plain.sqlite3");
    for p in [&ceiling_path, &plain_path] {
        let _ = std::fs::remove_file(p);
        let _ = std::fs::remove_file(p.with_extension("sqlite3-wal"));
        let _ = std::fs::remove_file(p.with_extension("sqlite3-shm"));
    }
    let mut ceiling = Writer::create(&ceiling_path, Layout::AppendOnly, "FULL")?;
    let mut plain = Writer::create(&plain_path, Layout::Plain, "FULL")?;
    let mut after = 0;
    loop {
        let page = store.read_all(after, IMPORT_BATCH).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        let rows: Vec<gryning_store::baseline::Row> = page
            .iter()
            .map(|e| gryning_store::baseline::Row {
                position: e.position,
                stream: &e.stream,
                version: e.version,
                event_id: e.event_id.as_bytes(),
                payload: &e.payload,
                metadata: &e.metadata,
            })
            .collect();
        ceiling.write(&rows)?;
        plain.write(&rows)?;
    }
    let rate = |w: &Writer| {
        let (n, took) = w.totals();
        n as f64 / took.as_secs_f64()
    };
    let rates = (rate(&ceiling), rate(&plain));
    drop((ceiling, plain, store));
    for p in [&ceiling_path, &plain_path] {
        let _ = std::fs::remove_file(p);
        let _ = std::fs::remove_file(p.with_extension("sqlite3-wal"));
        let _ = std::fs::remove_file(p.with_extension("sqlite3-shm"));
    }
    Ok(rates)
}

/// `gryning bench-scan`: the rebuild's scan floor, run as its own process. Opens the store
/// as `rebuild` does and reads every payload in the replay's pages, without decoding or
/// projecting; prints the events and bytes read.
pub(crate) async fn scan_floor(settings: &gryning_service_common::Settings) -> anyhow::Result<()> {
    let store = crate::open_store(settings).await?;
    let (mut after, mut events, mut bytes) = (0, 0u64, 0u64);
    loop {
        let page = store
            .read_payloads(after, gryning_projections::BATCH_SIZE)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.0;
        events += page.len() as u64;
        bytes += page.iter().map(|(_, p)| p.len() as u64).sum::<u64>();
    }
    println!("read {events} payloads, {bytes} bytes");
    Ok(())
}

/// `GetTable` `name` on `up`: 20 untimed calls, then `calls` timed from each send; returns
/// p50 and p99 in ms and the last reply's JSON rows.
async fn get_table(up: &Up, name: &str, calls: u32) -> anyhow::Result<(f64, f64, String)> {
    let token: tonic::metadata::MetadataValue<tonic::metadata::Ascii> =
        format!("Bearer {}", up.token("analyst")?).parse()?;
    let mut client = InsightClient::new(up.channel().await?);
    let request = || {
        let mut request = tonic::Request::new(pb::GetTableRequest {
            name: name.into(),
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("authorization", token.clone());
        request
    };
    let mut json = String::new();
    for _ in 0..20 {
        json = client
            .get_table(request())
            .await
            .context("GetTable")?
            .into_inner()
            .json;
    }
    let mut ms = Vec::with_capacity(calls as usize);
    for _ in 0..calls {
        let request = request();
        let sent = Instant::now();
        let reply = client.get_table(request).await.context("GetTable")?;
        ms.push(secs(sent.elapsed()) * 1e3);
        drop(reply);
    }
    Ok((quantile(&mut ms, 0.5), quantile(&mut ms, 0.99), json))
}

fn machine() -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "memory_kib": read("/proc/meminfo").lines().find_map(|l| l.strip_prefix("MemTotal:")).map(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap_or(0)),
    })
}

fn load_average() -> Value {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let v: Vec<f64> = text
        .split_whitespace()
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect();
    json!(v)
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Runs every benchmark; prints the summary and writes the JSON to `--out`.
pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    // NaN too is refused.
    if args.watch_secs.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        bail!("--watch-secs must be more than 0");
    }
    if args.scale == 0 {
        bail!("--scale must be at least 1");
    }
    if let Some(rows) = &args.rows {
        if let Some(unknown) = rows.iter().find(|r| !ROW_IDS.contains(&r.as_str())) {
            bail!(
                "--rows: no row {unknown:?}; the rows are {}",
                ROW_IDS.join(", ")
            );
        }
    }
    let want = |id: &str| args.rows.as_ref().is_none_or(|r| r.iter().any(|x| x == id));
    let want_watch = WATCH_RATES
        .iter()
        .any(|rate| want(&format!("watch_lag_{rate}")));
    let temp;
    let work = match &args.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temp = tempfile_dir()?;
            temp.0.clone()
        }
    };
    let started_at = now_unix();
    let load_before = load_average();
    let clock = Instant::now();
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    eprintln!(
        "gryning bench: scale {}, {} repetitions, {profile} build, in {}",
        args.scale,
        args.repeat,
        work.display()
    );
    let data = prepare(&work, args.scale, args.events)?;
    eprintln!(
        "  {} events ({} crimes in {} cases), {:.0} MiB of NDJSON",
        data.events,
        data.crimes,
        data.cases,
        data.bytes as f64 / (1 << 20) as f64
    );
    let venv = args
        .venv
        .clone()
        .unwrap_or_else(|| duckdb::default_venv(&work));
    // DuckDB is installed only for the row that uses it.
    let duck_ready = if want("table") {
        duckdb::install(&venv)
    } else {
        Err(anyhow::anyhow!("the table row was not asked for"))
    };

    let n = data.events as f64;
    let mut import = Figure::new("import_events_per_s", "ev/s");
    let mut ceiling = Figure::new("ceiling_events_per_s", "ev/s");
    let mut plain = Figure::new("plain_events_per_s", "ev/s");
    let mut rebuild_wall = Figure::new("rebuild_wall_s", "s");
    let mut rebuild_rate = Figure::new("rebuild_events_per_s", "ev/s");
    let mut scan_wall = Figure::new("scan_floor_wall_s", "s");
    let mut scan_rate = Figure::new("scan_floor_events_per_s", "ev/s");
    let mut offline_wall = Figure::new("offline_table_wall_s", "s");
    let mut offline_rss = Figure::new("offline_table_max_rss_mib", "MiB");
    let mut offline_ms = Figure::new("offline_table_wall_ms", "ms");
    let mut get_p50 = Figure::new("get_table_p50_ms", "ms");
    let mut get_p99 = Figure::new("get_table_p99_ms", "ms");
    let mut care_p50 = Figure::new("get_table_care_p50_ms", "ms");
    let mut duck_load = Figure::new("duckdb_load_ms", "ms");
    let mut duck_query = Figure::new("duckdb_query_ms", "ms");
    let mut duck_total = Figure::new("duckdb_load_and_query_ms", "ms");
    let mut up_ready = Figure::new("up_ready_s", "s");
    let mut up_rss = Figure::new("up_rss_mib", "MiB");
    let mut empty_ready = Figure::new("empty_up_ready_s", "s");
    let mut empty_rss = Figure::new("empty_up_rss_mib", "MiB");
    let mut per_crime = Figure::new("rss_bytes_per_crime", "B");
    let mut growth = Figure::new("rss_growth_mib", "MiB");
    let mut dash_tables_p50 = Figure::new("dashboard_tables_p50_ms", "ms");
    let mut dash_tables_p99 = Figure::new("dashboard_tables_p99_ms", "ms");
    let mut dash_open = Figure::new("dashboard_open_ms", "ms");
    let mut dash_change_p50 = Figure::new("dashboard_change_p50_ms", "ms");
    let mut dash_change_p99 = Figure::new("dashboard_change_p99_ms", "ms");
    let mut dash_change_max = Figure::new("dashboard_change_max_ms", "ms");
    let mut dash_get_p50 = Figure::new("get_table_p50_ms", "ms");
    let mut dash_ack_p50 = Figure::new("ack_p50_ms", "ms");
    let mut dash_ack_p99 = Figure::new("ack_p99_ms", "ms");
    let mut lag: Vec<[Figure; 6]> = WATCH_RATES
        .iter()
        .map(|_| {
            [
                Figure::new("lag_p50_ms", "ms"),
                Figure::new("lag_p99_ms", "ms"),
                Figure::new("lag_max_ms", "ms"),
                Figure::new("reached_per_s", "/s"),
                Figure::new("ack_p50_ms", "ms"),
                Figure::new("ack_p99_ms", "ms"),
            ]
        })
        .collect();
    let mut duck_error: Option<String> = duck_ready.as_ref().err().map(|e| format!("{e:#}"));
    let mut duck_version = String::new();
    let mut rows_equal = Vec::new();
    let mut table_rows = 0;

    for r in 1..=args.repeat {
        eprintln!("-- repetition {r} of {}", args.repeat);
        let data_dir = work.join(format!("data-{r}"));
        let empty_dir = work.join(format!("empty-{r}"));
        for d in [&data_dir, &empty_dir] {
            if d.exists() {
                std::fs::remove_dir_all(d)?;
            }
        }
        let with_dir = |dir: &Path| -> anyhow::Result<std::process::Command> {
            let mut c = gryning()?;
            c.arg("--data-dir").arg(dir);
            Ok(c)
        };

        // (d) Durable import against the SQLite ceiling and the plain layout.
        let mut c = with_dir(&data_dir)?;
        c.arg("import").arg(&data.path);
        let took = child::run(c)?.wall;
        import.samples.push(n / secs(took));
        eprintln!("  import {:.2} s", secs(took));
        if want("import") {
            let (c_rate, p_rate) = sqlite_baselines(&data_dir, &work).await?;
            ceiling.samples.push(c_rate);
            plain.samples.push(p_rate);
        }

        // (c) Rebuild against the scan floor, each a whole process.
        if want("rebuild") {
            let mut c = with_dir(&data_dir)?;
            c.arg("rebuild");
            let took = child::run(c)?.wall;
            rebuild_wall.samples.push(secs(took));
            rebuild_rate.samples.push(n / secs(took));
            let mut c = with_dir(&data_dir)?;
            c.arg("bench-scan");
            let took = child::run(c)?.wall;
            scan_wall.samples.push(secs(took));
            scan_rate.samples.push(n / secs(took));
        }

        // (a) The table offline, as a whole process (its rows are what every answer is
        // checked against).
        let mut c = with_dir(&data_dir)?;
        c.args(["table", "case-flow", "--format", "json"]);
        let offline = child::run(c)?;
        offline_wall.samples.push(secs(offline.wall));
        offline_ms.samples.push(secs(offline.wall) * 1e3);
        offline_rss.samples.push(mib(offline.max_rss_kib));
        let ours = duckdb::gryning_rows(&offline.stdout)?;
        table_rows = ours.len();

        // (b) Store open ready to serve, and (a) GetTable on the warm server.
        let up = Up::start(&data_dir, &work.join(format!("up-{r}.log")))?;
        up_ready.samples.push(secs(up.ready));
        up_rss.samples.push(mib(up.rss_kib));
        let (p50, p99, json) = get_table(&up, "case-flow", args.calls).await?;
        get_p50.samples.push(p50);
        get_p99.samples.push(p99);
        if duckdb::gryning_rows(json.as_bytes())? != ours {
            bail!("GetTable case-flow and the offline gryning table case-flow differ");
        }
        let (care, _, _) = get_table(&up, "care", args.calls).await?;
        care_p50.samples.push(care);
        let loaded_rss = up.rss_kib;

        // (g) The dashboard of the loaded server: the page's tables and a referral arriving.
        if want("dashboard") {
            let tokens = watch::Tokens {
                admin: up.token("admin")?,
                analyst: up.token("analyst")?,
                police: up.token("police")?,
            };
            let d = dashboard::measure(
                up.dashboard_port,
                up.channel().await?,
                &tokens,
                args.calls,
                DASHBOARD_REFERRALS,
            )
            .await
            .context("the dashboard")?;
            let q = watch::Lag::quantile;
            dash_tables_p50.samples.push(q(&d.tables_ms, 0.5));
            dash_tables_p99.samples.push(q(&d.tables_ms, 0.99));
            dash_open.samples.push(d.open_ms);
            dash_change_p50.samples.push(q(&d.change_ms, 0.5));
            dash_change_p99.samples.push(q(&d.change_ms, 0.99));
            dash_change_max.samples.push(q(&d.change_ms, 1.0));
            dash_get_p50.samples.push(p50);
            dash_ack_p50.samples.push(q(&d.ack_ms, 0.5));
            dash_ack_p99.samples.push(q(&d.ack_ms, 0.99));
            eprintln!(
            "  dashboard: tables p50 {:.2} ms, opened in {:.1} ms, referral on the page p99 {:.1} ms",
            q(&d.tables_ms, 0.5),
            d.open_ms,
            q(&d.change_ms, 0.99)
        );
        }
        up.stop()?;

        // (e) Watch lag on a server over an empty store, whose open is (b)'s baseline.
        let up = Up::start(&empty_dir, &work.join(format!("empty-{r}.log")))?;
        empty_ready.samples.push(secs(up.ready));
        empty_rss.samples.push(mib(up.rss_kib));
        // (f) Memory per live crime: the whole process's growth over the empty server's.
        let grew = loaded_rss.saturating_sub(up.rss_kib);
        growth.samples.push(mib(grew));
        per_crime
            .samples
            .push(grew as f64 * 1024.0 / data.crimes.max(1) as f64);
        let tokens = watch::Tokens {
            admin: up.token("admin")?,
            analyst: up.token("analyst")?,
            police: up.token("police")?,
        };
        for (i, &rate) in WATCH_RATES.iter().enumerate() {
            if !want_watch {
                break;
            }
            if !want(&format!("watch_lag_{rate}")) {
                continue;
            }
            let m = watch::measure(
                up.channel().await?,
                up.channel().await?,
                &tokens,
                rate,
                args.watch_secs,
            )
            .await
            .with_context(|| format!("Watch lag at {rate}/s"))?;
            let q = watch::Lag::quantile;
            let f = &mut lag[i];
            f[0].samples.push(q(&m.lag_ms, 0.5));
            f[1].samples.push(q(&m.lag_ms, 0.99));
            f[2].samples.push(q(&m.lag_ms, 1.0));
            f[3].samples.push(m.reached);
            f[4].samples.push(q(&m.ack_ms, 0.5));
            f[5].samples.push(q(&m.ack_ms, 0.99));
            eprintln!(
                "  watch {}/s offered, {:.0}/s reached, {} referrals, {} Watch messages: lag p99 {:.2} ms",
                m.offered,
                m.reached,
                m.referrals,
                m.messages,
                q(&m.lag_ms, 0.99)
            );
        }
        up.stop()?;

        // (a) DuckDB's recompute from the same NDJSON, checked equal to gryning's rows.
        if duck_error.is_none() && want("table") {
            match duckdb::run(&venv, &work, &data.path, 1) {
                Ok(run) => {
                    let mut theirs = run.rows;
                    theirs.sort();
                    rows_equal.push(theirs == ours);
                    if theirs != ours {
                        let first = theirs.iter().zip(&ours).find(|(a, b)| a != b);
                        eprintln!(
                            "  DuckDB's rows differ from gryning's ({} against {}); first: {first:?}",
                            theirs.len(),
                            ours.len()
                        );
                    }
                    duck_version = run.version;
                    let q = run.query_s.first().copied().unwrap_or(f64::NAN) * 1e3;
                    duck_load.samples.push(run.load_s * 1e3);
                    duck_query.samples.push(q);
                    duck_total.samples.push(run.load_s * 1e3 + q);
                }
                Err(e) => duck_error = Some(format!("{e:#}")),
            }
        }
        std::fs::remove_dir_all(&data_dir)?;
        std::fs::remove_dir_all(&empty_dir)?;
    }
    let duck_equal = (!rows_equal.is_empty()).then(|| rows_equal.iter().all(|e| *e));
    if duck_equal == Some(false) {
        eprintln!("warning: DuckDB {duck_version}'s case-flow rows differ from gryning's");
    }

    let events = data.events;
    let scale_words = format!(
        "{} events (scale {}{})",
        events,
        args.scale,
        match args.events {
            Some(k) => format!(", first {k} events"),
            None => String::new(),
        }
    );
    let bench_cmd = format!(
        "gryning bench --scale {}{} --repeat {}{}",
        args.scale,
        args.events
            .map(|k| format!(" --events {k}"))
            .unwrap_or_default(),
        args.repeat,
        args.rows
            .as_ref()
            .map(|r| format!(" --rows {}", r.join(",")))
            .unwrap_or_default()
    );
    let mut rows = vec![
        Row {
            id: "table",
            title: format!("One table answered (case-flow by code and year), {scale_words} stored"),
            command: format!("{bench_cmd}; alone: gryning table case-flow --server URL --token ANALYST; gryning --data-dir DIR table case-flow"),
            figures: vec![get_p50, get_p99, care_p50, offline_ms, offline_wall, offline_rss],
            baseline: match &duck_error {
                Some(why) => Err(why.clone()),
                None => Ok(vec![duck_query, duck_load, duck_total]),
            },
            baseline_what: format!("DuckDB {} (Python, PyPI) computing the same rows from the same NDJSON with SQL of the contract's definitions (crates/gryning/src/bench/case_flow.py), rows checked equal", duckdb::VERSION),
            ratios: vec![
                Ratio { name: "duckdb_query_over_get_table", of: ("duckdb_query_ms", "get_table_p50_ms"), meaning: "times faster a warm server answers than DuckDB recomputes", figure: Figure::new("duckdb_query_over_get_table", "x") },
                Ratio { name: "duckdb_total_over_offline", of: ("duckdb_load_and_query_ms", "offline_table_wall_ms"), meaning: "times faster the offline command is than DuckDB loading and computing", figure: Figure::new("duckdb_total_over_offline", "x") },
            ],
            targets: vec![
                Target { text: "GetTable p99 <= 1 ms at 10M events", on: "get_table_p99_ms", at_most: true, threshold: 1.0, from_events: Some(9_500_000) },
                Target { text: "GetTable >= 100 x faster than DuckDB's recompute at 10M events", on: "duckdb_query_over_get_table", at_most: false, threshold: 100.0, from_events: Some(9_500_000) },
            ],
            notes: vec![
                                "latency is from the client's send, one call at a time on one connection, after 20 untimed calls; get_table_care_p50_ms (a small table) is the client's and gRPC's floor".into(),
                "the offline figure is the whole `gryning table` process (start, the store's open, the checkpoint's load, the answer); DuckDB's times are inside its Python process (load: read_json into a table; query: the SQL)".into(),
            ],
            checks: json!({
                "rows": table_rows,
                "get_table_rows_equal_offline": true,
                "duckdb_rows_equal": duck_equal,
                "duckdb_version": duck_version,
            }),
        },
        Row {
            id: "store_open",
            title: format!("Store open, ready to serve: gryning up over {scale_words}"),
            command: format!("{bench_cmd}; alone: gryning --data-dir DIR up --listen 127.0.0.1:0 (spawn to \"listening on\", then VmRSS)"),
            figures: vec![up_ready, up_rss],
            baseline: Ok(vec![empty_ready, empty_rss]),
            baseline_what: "the same command over an empty data directory".into(),
            ratios: vec![],
            targets: vec![
                Target { text: "ready to serve in <= 2 s at 10M events", on: "up_ready_s", at_most: true, threshold: 2.0, from_events: Some(9_500_000) },
                Target { text: "resident memory <= 400 MB at 10M events", on: "up_rss_mib", at_most: true, threshold: 400e6 / (1 << 20) as f64, from_events: Some(9_500_000) },
            ],
            notes: vec!["ready = the \"listening on\" line, printed after the store's open, the checkpoint's load and the projections' catch-up".into()],
            checks: Value::Null,
        },
        Row {
            id: "rebuild",
            title: format!("Rebuild every projection, {scale_words}"),
            command: format!("{bench_cmd}; alone: gryning --data-dir DIR rebuild (the whole process timed)"),
            figures: vec![rebuild_wall, rebuild_rate],
            baseline: Ok(vec![scan_wall, scan_rate]),
            baseline_what: "the scan floor: `gryning bench-scan`, a process that opens the store as rebuild does and reads every payload in the replay's pages, without decoding or projecting".into(),
            ratios: vec![Ratio { name: "rebuild_over_scan_floor", of: ("rebuild_events_per_s", "scan_floor_events_per_s"), meaning: "rebuild's rate as a fraction of the scan floor's", figure: Figure::new("rebuild_over_scan_floor", "x") }],
            targets: vec![Target { text: "rebuild >= 0.8 x the scan floor", on: "rebuild_over_scan_floor", at_most: false, threshold: 0.8, from_events: None }],
            notes: vec![],
            checks: Value::Null,
        },
        Row {
            id: "import",
            title: format!("Durable import (gryning import FILE, offline), {scale_words}"),
            command: format!("{bench_cmd}; alone: gryning --data-dir DIR import events.ndjson (the whole process timed)"),
            figures: vec![import],
            baseline: Ok(vec![ceiling, plain]),
            baseline_what: format!("the same rows (read back from the store) written straight into SQLite, {IMPORT_BATCH} rows per transaction (import's batch), WAL, synchronous=FULL as the store: the append-only ceiling (the store's table, no index) and the plain layout (UNIQUE(stream, version)); only the transactions timed"),
            ratios: vec![
                Ratio { name: "import_over_ceiling", of: ("import_events_per_s", "ceiling_events_per_s"), meaning: "the import as a fraction of what SQLite itself does here", figure: Figure::new("import_over_ceiling", "x") },
                Ratio { name: "import_over_plain", of: ("import_events_per_s", "plain_events_per_s"), meaning: "the import against the plain layout", figure: Figure::new("import_over_plain", "x") },
            ],
            targets: vec![Target { text: "durable import >= 0.8 x the append-only ceiling", on: "import_over_ceiling", at_most: false, threshold: 0.8, from_events: None }],
            notes: vec!["the import also reads and parses the NDJSON and checks every event's rules; the ceiling only inserts".into()],
            checks: Value::Null,
        },
    ];
    for (i, figures) in lag.into_iter().enumerate() {
        let rate = WATCH_RATES[i];
        let [p50, p99, max, reached, ack50, ack99] = figures;
        rows.push(Row {
            id: ["watch_lag_1000", "watch_lag_5000", "watch_lag_20000"][i],
            title: format!("Watch lag at {rate} referrals/s offered (send -> first Watch message containing it), gryning up over an empty store"),
            command: format!("{bench_cmd}; alone (server in-process): cargo run --release -p gryning --example watch_lag_bench -- {} {rate}", args.watch_secs.ceil()),
            figures: vec![p50, p99, max, reached],
            baseline: Ok(vec![ack50, ack99]),
            baseline_what: "the referrals' own send -> acknowledgement latency".into(),
            ratios: vec![],
            targets: if rate >= 5_000 {
                vec![Target { text: if rate == 5_000 { "p99 <= 50 ms at 5,000 events/s" } else { "p99 <= 50 ms at 20,000 events/s" }, on: "lag_p99_ms", at_most: true, threshold: 50.0, from_events: None }]
            } else { vec![] },
            notes: vec![format!("{} s of referrals per repetition, {} referring tasks; never clamped", args.watch_secs, (rate / 200).max(1))],
            checks: Value::Null,
        });
    }
    rows.push(Row {
        id: "dashboard",
        title: format!("The analysts' dashboard of gryning up over {scale_words}: the page's tables, its event stream, and a referral arriving on it"),
        command: format!("{bench_cmd}; alone: gryning --data-dir DIR up --dashboard-listen ADDR, then sign in and GET /api/tables, /api/events"),
        figures: vec![dash_tables_p50, dash_tables_p99, dash_open, dash_change_p50, dash_change_p99, dash_change_max],
        baseline: Ok(vec![dash_get_p50, dash_ack_p50, dash_ack_p99]),
        baseline_what: "in the same run on the same server: Insight.GetTable case-flow (one table; the page loads three, as JSON) and the referrals' own send -> acknowledgement".into(),
        ratios: vec![Ratio { name: "dashboard_tables_over_get_table", of: ("dashboard_tables_p50_ms", "get_table_p50_ms"), meaning: "the page's three tables as JSON against one table over gRPC", figure: Figure::new("dashboard_tables_over_get_table", "x") }],
        targets: vec![Target { text: "a referral on the page within a second (p99)", on: "dashboard_change_p99_ms", at_most: true, threshold: 1000.0, from_events: None }],
        notes: vec![
            format!("HTTP/1.1 (hyper) signed in with the analyst's token, as the page's script calls; dashboard_tables: GET /api/tables (case-flow, clearance and progress by code and year), {} timed after 5 untimed; dashboard_open: GET /api/events from the send to its first event (the snapshot)", args.calls),
            format!("dashboard_change: {DASHBOARD_REFERRALS} referrals, one at a time, from the client's send of ReferToProsecutor to the first `change` event at or past its position on the open event stream; never clamped"),
            "both servers of the run (loaded and empty) serve the dashboard beside gRPC, so store_open and memory include it alike".into(),
        ],
        checks: Value::Null,
    });
    rows.push(Row {
        id: "memory",
        title: format!("Memory per live crime: gryning up's whole-process VmRSS growth over an empty server, / crimes ({} crimes in {} cases, {:.2} per case)", data.crimes, data.cases, data.crimes as f64 / data.cases.max(1) as f64),
        command: bench_cmd.to_string(),
        figures: vec![per_crime, growth],
        baseline: Ok(vec![]),
        baseline_what: "none (the empty server's VmRSS is subtracted)".into(),
        ratios: vec![],
        targets: vec![Target { text: "<= 64 bytes per live crime, everything counted", on: "rss_bytes_per_crime", at_most: true, threshold: 64.0, from_events: None }],
        notes: vec!["everything counted: projections, the store's in-memory indexes, SQLite's caches, the runtime".into()],
        checks: Value::Null,
    });
    rows.retain(|r| want(r.id));
    for row in &mut rows {
        row.compute_ratios();
    }

    let result = json!({
        "schema": SCHEMA,
        "command": bench_cmd,
        "gryning_version": env!("CARGO_PKG_VERSION"),
        "build": profile,
        "started_at_unix": started_at,
        "seconds": secs(clock.elapsed()),
        "machine": machine(),
        "load_average": { "start": load_before, "end": load_average() },
        "data": {
            "scale": args.scale,
            "events": data.events,
            "crimes": data.crimes,
            "cases": data.cases,
            "ndjson_bytes": data.bytes,
        },
        "repeat": args.repeat,
        "rows": rows.iter().map(|r| r.json(events)).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&result)? + "\n";
    std::fs::write(&args.out, text)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "gryning bench: {scale_words}, {} repetitions, {profile} build, load average {} at the start and {} at the end",
        args.repeat, load_before, result["load_average"]["end"]
    );
    for row in &rows {
        print!("{}", row.summary(events));
    }
    println!("written: {}", args.out.display());
    Ok(())
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir() -> anyhow::Result<TempDir> {
    let base = std::env::temp_dir();
    for i in 0..1000u32 {
        let dir = base.join(format!("gryning-bench-{}-{i}", std::process::id()));
        if std::fs::create_dir(&dir).is_ok() {
            return Ok(TempDir(dir));
        }
    }
    bail!("cannot create a directory in {}", base.display())
}
