//! The `gryning` command line. Each subcommand is a thin layer over the library crates:
//! recording (import), projections (table, rebuild), the catalogue and the synthetic generator.

mod audit;
mod bench;
mod catalog;
mod credentials;
mod demo;
mod explain;
mod import;
mod publication;
mod remote;
mod report;
mod retain;
mod up;

use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use gryning_domain::Catalogue;
use gryning_projections::{AsOf, By, PeriodKind, Projections, Resumed, Snapshots, TableName};
use gryning_recording::Recorder;
use gryning_service_common::context::Access;
use gryning_service_common::{Options, Settings};
use gryning_store::EventStore;

/// File under the data directory holding the projections' checkpoint.
const CHECKPOINT_FILE: &str = "projections.ckpt";

#[derive(Parser)]
#[command(
    name = "gryning",
    version,
    about = "Event-sourced case tracking for the agencies of Stockholm county: record events, read tables"
)]
struct Cli {
    /// Data directory of the embedded store.
    #[arg(long, global = true, env = "GRYNING_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Event store backend URL, e.g. nats://127.0.0.1:4222 (default: the embedded store in the data directory).
    #[arg(long, global = true, env = "GRYNING_STORE")]
    store: Option<String>,
    /// Crime-code catalogue file (TOML) to use instead of the one shipped with gryning.
    #[arg(long, global = true, env = "GRYNING_CATALOG")]
    catalog: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Record events from an NDJSON file (`-` for standard input), in file order: into the data
    /// directory's store, or with --server through a running server's event-log service.
    Import {
        /// NDJSON file, one gryning.v1.Event per line; `-` reads standard input.
        file: PathBuf,
        /// With --server, the token decides which event types may be recorded (admin: all).
        #[command(flatten)]
        remote: remote::ServerArgs,
    },
    /// Print a table computed from every stored event.
    Table {
        /// case-flow, clearance, care, progress, social-services or region-comparison.
        name: String,
        #[arg(long, value_enum, default_value_t = ByArg::Code)]
        by: ByArg,
        #[arg(long, value_enum, default_value_t = PeriodArg::Year)]
        period: PeriodArg,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Show the table as it stood at an earlier point: a global store position (`1234`),
        /// an RFC 3339 instant (the events recorded at or before it), or a date (the events
        /// recorded up to the end of that day in Stockholm).
        #[arg(long, value_name = "POSITION|TIME|DATE", conflicts_with = "published", value_parser = parse_as_of)]
        as_of: Option<AsOfArg>,
        /// Show the table exactly as published for this quarter (YYYY-QN, or YYYY-QN@REVISION);
        /// --period quarter gives the quarter, year (the default) the year to date.
        #[arg(long, value_name = "QUARTER")]
        published: Option<String>,
        /// With --published: the revision (default: the latest).
        #[arg(long, value_name = "N", requires = "published")]
        revision: Option<u32>,
        /// Only the cases of this police region (e.g. Stockholm or "Polisregion Stockholm");
        /// default: every region together. Publications are county-wide.
        #[arg(long, value_name = "NAME", conflicts_with = "published")]
        region: Option<String>,
        /// How crimes are classified: recorded (codes as recorded and reclassified, the groups
        /// of the catalogue in force) or a catalogue version (`gryning catalog` lists them):
        /// every crime's code translated into that version's codes, and its groups, so that a
        /// series of years uses one classification throughout.
        #[arg(long, value_name = "recorded|VERSION", default_value = "recorded")]
        classification: String,
        /// Show counts from 1 to N-1 as "<N", and hide as ".." the counts, rates and medians
        /// that would give them away (docs/contract.md, "Small-cell suppression").
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(2..))]
        suppress_below: Option<u32>,
        /// With --server, the token is an analyst's or an admin's.
        #[command(flatten)]
        remote: remote::ServerArgs,
    },
    /// Write the follow-up report: DIR/rapport-YEAR.html (one self-contained page for screen
    /// and A4), DIR/rapport-YEAR.xlsx (a sheet per table) and one CSV per table.
    Report {
        /// The year the report is about (YYYY); the previous year is shown beside it.
        #[arg(long)]
        year: i32,
        /// Report on this quarter of the year (YYYY-QN) instead of the whole year.
        #[arg(long, value_name = "QUARTER")]
        quarter: Option<String>,
        /// Use the figures exactly as published for this quarter of the year (YYYY-QN or
        /// YYYY-QN@REVISION): its year to date, or with --quarter its quarter.
        #[arg(long, value_name = "QUARTER")]
        published: Option<String>,
        /// The report of one police region's cases (e.g. Stockholm or "Polisregion
        /// Stockholm"), set against the median of the regions; default: every region together,
        /// with Polisregion Stockholm set against the median. Publications are county-wide.
        #[arg(long, value_name = "NAME", conflicts_with = "published")]
        region: Option<String>,
        /// Every table and chart in a catalogue version's codes and groups, as for `gryning
        /// table --classification` (default: recorded). Not with --published.
        #[arg(long, value_name = "recorded|VERSION", default_value = "recorded")]
        classification: String,
        /// Small-cell suppression, as for `gryning table --suppress-below` (not with --region).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(2..))]
        suppress_below: Option<u32>,
        /// Directory to write into (created when missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// With --server, the token is an analyst's or an admin's.
        #[command(flatten)]
        remote: remote::ServerArgs,
    },
    /// Erase the event-level data of closed cases and ended client records whose last event is
    /// older than the limit, keeping every table: their contribution is recorded first as a
    /// StreamsErased aggregate (counts only). Admin, offline on the data directory's embedded
    /// store.
    Retain {
        /// The age limit: years, months or days, e.g. 5y, 18m, 400d.
        #[arg(long, value_name = "AGE")]
        older_than: String,
        /// Only say how many streams and events would go and the aggregate's totals.
        #[arg(long)]
        dry_run: bool,
    },
    /// Compute every table for an ended quarter and record it as the quarter's next revision,
    /// never changed afterwards.
    Publish {
        /// The quarter, YYYY-QN (e.g. 2020-Q4); it must have ended.
        #[arg(long)]
        quarter: String,
        /// Free text kept with the publication (at most 200 bytes).
        #[arg(long, default_value = "")]
        note: String,
        /// With --server, through `Insight.Publish`: the token is an admin's.
        #[command(flatten)]
        remote: remote::ServerArgs,
    },
    /// List the recorded publications: quarter, revision, positions, time, principal, catalogue.
    Publications {
        /// Only this quarter's (YYYY-QN).
        #[arg(long)]
        quarter: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// With --server, through `Insight.ListPublications`: the token is an analyst's, an
        /// auditor's or an admin's.
        #[command(flatten)]
        remote: remote::ServerArgs,
    },
    /// List every cell of a publication that later events changed: table, row, measure,
    /// published value, value now, and how many events since the publication changed it.
    Diff {
        /// The publication: YYYY-QN (the latest revision) or YYYY-QN@REVISION.
        #[arg(long, value_name = "QUARTER")]
        published: String,
        /// The revision of --published (default: the latest).
        #[arg(long, value_name = "N")]
        revision: Option<u32>,
        /// live (the tables now) or another revision of the same quarter, YYYY-QN@REVISION.
        #[arg(long, default_value = "live")]
        against: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// List the streams and events that make up one cell of a table (event-level data: with
    /// --server, an auditor's or an admin's token), live or as published.
    Explain {
        #[command(flatten)]
        cell: explain::ExplainArgs,
        #[command(flatten)]
        remote: remote::ServerArgs,
    },
    /// The audit trail: who recorded what and when (events, publications, credential changes);
    /// with --server an auditor's or admin's token.
    Audit {
        #[command(flatten)]
        args: audit::AuditArgs,
        #[command(flatten)]
        remote: remote::ServerArgs,
    },
    /// Serve every gRPC service (police, prosecution, care, event_log, insight) on one port.
    Up {
        /// Address to listen on (default 127.0.0.1:50051, or GRYNING_LISTEN); port 0 picks a free port.
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// Serve Prometheus metrics (GET /metrics) on this address (or GRYNING_METRICS_LISTEN); off when unset.
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<std::net::SocketAddr>,
        /// Serve the analysts' web dashboard on this address (or GRYNING_DASHBOARD_LISTEN); off when unset.
        #[arg(long, value_name = "ADDR")]
        dashboard_listen: Option<std::net::SocketAddr>,
        /// Small-cell suppression on the dashboard, as for `gryning table --suppress-below`
        /// (or GRYNING_DASHBOARD_SUPPRESS_BELOW); 0 or unset hides nothing.
        #[arg(long, value_name = "N")]
        dashboard_suppress_below: Option<u64>,
    },
    /// Create the credentials file (token hashes only, mode 0600) with one token per role, or
    /// add, rotate, revoke and list principals; running servers take changes within seconds.
    Credentials(credentials::CredentialsArgs),
    /// Print the crime-code catalogue in force (or one version): codes, texts, groups, and
    /// the mapping from the version before; `catalog diff V1 V2` compares two versions.
    Catalog {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Show this version of the catalogue (default: the one in force).
        #[arg(long = "version", id = "catalog_version", value_name = "VERSION")]
        version: Option<String>,
        #[command(subcommand)]
        action: Option<CatalogAction>,
    },
    /// Write deterministic synthetic events as NDJSON (scale 1 is the Stockholm 2019–2020 case flow).
    Generate {
        #[arg(long, default_value_t = gryning_synth::DEFAULT_SEED)]
        seed: u64,
        /// Number of independent copies of the scale-1 dataset.
        #[arg(long, default_value_t = 1)]
        scale: u32,
        /// Output file; standard output when absent or `-`.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Replay every projection from the first stored event and write a fresh checkpoint.
    Rebuild,
    /// Run the benchmarks on generated data, each figure beside its baseline measured in the
    /// same run, and write them as JSON (BENCHMARKS.md describes the file) with a summary.
    Bench(bench::BenchArgs),
    /// The rebuild's scan floor for `gryning bench`: open the store and read every payload.
    #[command(hide = true)]
    BenchScan,
    /// Record the Stockholm 2019–2020 case flow and compare the tables with the published report.
    Demo {
        #[arg(long, default_value_t = gryning_synth::DEFAULT_SEED)]
        seed: u64,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Subcommand)]
enum CatalogAction {
    /// What changes from version FROM to version TO: codes added, removed and counted under
    /// other codes (the mapping), and groups whose codes differ.
    Diff {
        from: String,
        to: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// Which synthetic data `generate` and `demo` make.
#[derive(clap::Args, Clone, Copy)]
struct DataArgs {
    /// stockholm (Polisregion Stockholm only) or all (the seven police regions; Stockholm's
    /// figures stay the report's).
    #[arg(long, value_enum, default_value_t = RegionsArg::Stockholm)]
    regions: RegionsArg,
    /// The years, FIRST-2020 (FIRST from 2010 to 2019); default 2019-2020, the report's.
    #[arg(long, value_name = "FIRST-2020", value_parser = parse_years)]
    years: Option<i32>,
}

impl DataArgs {
    fn options(self) -> gryning_synth::Options {
        gryning_synth::Options {
            every_region: self.regions == RegionsArg::All,
            first_year: self
                .years
                .unwrap_or(gryning_synth::Options::default().first_year),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RegionsArg {
    Stockholm,
    All,
}

/// `2016-2020` → 2016: the first year of a range that ends with the report's last year.
fn parse_years(text: &str) -> Result<i32, String> {
    let last = gryning_synth::YEARS[1];
    let wrong = || {
        format!(
            "{text:?} is not a range of years FIRST-{last} with FIRST from {} to {}, e.g. 2016-{last}",
            gryning_synth::EARLIEST_YEAR,
            gryning_synth::YEARS[0]
        )
    };
    let (first, end) = text.split_once('-').ok_or_else(wrong)?;
    let (first, end): (i32, i32) = (
        first.trim().parse().map_err(|_| wrong())?,
        end.trim().parse().map_err(|_| wrong())?,
    );
    let options = gryning_synth::Options {
        first_year: first,
        ..Default::default()
    };
    if end != last || options.check().is_err() {
        return Err(wrong());
    }
    Ok(first)
}

#[derive(Clone, Copy, ValueEnum)]
enum ByArg {
    Code,
    Group,
}

impl ByArg {
    fn name(self) -> &'static str {
        match self {
            ByArg::Code => "code",
            ByArg::Group => "group",
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum PeriodArg {
    Year,
    Quarter,
}

impl PeriodArg {
    fn name(self) -> &'static str {
        match self {
            PeriodArg::Year => "year",
            PeriodArg::Quarter => "quarter",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
    Csv,
}

impl Cli {
    /// The settings (defaults → `GRYNING_CONFIG` file → `GRYNING_…` environment → options),
    /// with this command line's options on top.
    fn settings(&self) -> anyhow::Result<Settings> {
        let mut options = Options {
            data_dir: self.data_dir.clone(),
            store: self.store.clone(),
            catalog: self.catalog.clone(),
            ..Options::default()
        };
        if let Command::Up {
            listen,
            metrics_listen,
            dashboard_listen,
            dashboard_suppress_below,
        } = &self.command
        {
            options.listen = *listen;
            options.metrics_listen = *metrics_listen;
            options.dashboard_listen = *dashboard_listen;
            options.dashboard_suppress_below = *dashboard_suppress_below;
        }
        Ok(Settings::load(&Settings::process_env(), &options)?)
    }

    /// Whether this command touches no network socket. Only then may SIGPIPE keep its default
    /// action: vectored socket writes (`writev`, as HTTP/2 uses) raise SIGPIPE when the peer
    /// has reset the connection, so a server or client with it would be killed by any peer
    /// that hangs up at the wrong moment.
    fn uses_no_socket(&self, settings: &Settings) -> bool {
        let offline = settings.store.as_deref().is_none_or(str::is_empty);
        match &self.command {
            Command::Up { .. } => false,
            Command::Import { remote, .. }
            | Command::Table { remote, .. }
            | Command::Explain { remote, .. }
            | Command::Publish { remote, .. }
            | Command::Publications { remote, .. }
            | Command::Audit { remote, .. }
            | Command::Report { remote, .. } => offline && remote.server.is_none(),
            Command::Rebuild
            | Command::Diff { .. }
            | Command::BenchScan
            | Command::Retain { .. } => offline,
            Command::Bench(_) => false,
            Command::Credentials { .. } | Command::Catalog { .. } | Command::Generate { .. } => {
                true
            }
            Command::Demo { .. } => offline,
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let settings = match cli.settings() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    if cli.uses_no_socket(&settings) {
        // Output piped into `head` or `less` ends quietly when the reader goes away, as a
        // shell tool should, instead of panicking on a broken pipe.
        // SAFETY: no other thread exists yet (the runtime starts below).
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli, settings)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

pub(crate) fn load_catalogue(path: Option<&Path>) -> anyhow::Result<Arc<Catalogue>> {
    Ok(Arc::new(match path {
        None => Catalogue::default_catalogue(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read catalogue file {}", path.display()))?;
            Catalogue::from_toml(&text)
                .with_context(|| format!("catalogue file {}", path.display()))?
        }
    }))
}

/// Opens the event store the settings name (`--store`, embedded in the data directory when
/// unset; `nats_replicas` when gryning creates the JetStream stream).
pub(crate) async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn EventStore>> {
    gryning_service_common::context::open_store(settings)
        .await
        .with_context(|| store_name(settings))
}

/// [`open_store`] for a command that only reads: beside a running owner of the embedded store,
/// the store is opened read-only (and the checkpoint left to the owner).
pub(crate) async fn open_store_to_read(
    settings: &Settings,
) -> anyhow::Result<(Arc<dyn EventStore>, Access)> {
    gryning_service_common::context::open_store_to_read(settings)
        .await
        .with_context(|| store_name(settings))
}

/// [`open_store_to_read`] for a command that needs stored events: an embedded store must exist.
pub(crate) async fn open_existing_to_read(
    settings: &Settings,
) -> anyhow::Result<(Arc<dyn EventStore>, Access)> {
    let dir = &settings.data_dir;
    if settings.store.as_deref().is_none_or(str::is_empty) && !dir.join("events.sqlite3").exists() {
        bail!(
            "no event store in {}: import events first (gryning import FILE) or pass --data-dir",
            dir.display()
        );
    }
    open_store_to_read(settings).await
}

fn store_name(settings: &Settings) -> String {
    match settings.store.as_deref() {
        Some(url) if !url.is_empty() => format!("--store {url}"),
        _ => format!("the embedded store in {}", settings.data_dir.display()),
    }
}

/// A progress bar on standard error when it is a terminal, hidden otherwise.
pub(crate) fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} [{{bar:40}}] {{percent:>3}}% {{msg}} eta {{eta}}"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// `--as-of` as given (sent as it is to a server) and as read.
#[derive(Clone, Debug)]
pub(crate) struct AsOfArg {
    pub text: String,
    pub at: AsOf,
}

fn parse_as_of(text: &str) -> Result<AsOfArg, String> {
    Ok(AsOfArg {
        text: text.trim().to_string(),
        at: AsOf::parse(text)?,
    })
}

/// Brings projections up to date from the checkpoint, saving the new checkpoint when this
/// process owns the store (`access`), and keeping a snapshot for as-of queries each time the
/// state crosses a multiple of `snapshot_every` events (none when 0).
pub(crate) async fn current_projections(
    store: &dyn EventStore,
    data_dir: &Path,
    snapshot_every: u64,
    access: Access,
) -> anyhow::Result<Projections> {
    let checkpoint = data_dir.join(CHECKPOINT_FILE);
    // A discarded checkpoint is replaced even when there is nothing to replay.
    let mut discarded = false;
    let mut projections = match gryning_projections::resume(&checkpoint, store).await? {
        Resumed::Discarded(why) => {
            eprintln!(
                "warning: discarding checkpoint {}: {why}; replaying from the first event",
                checkpoint.display()
            );
            discarded = true;
            Projections::default()
        }
        resumed => resumed.into_projections(),
    };
    let target = store.head().await?;
    let bar = progress_bar(target.saturating_sub(projections.position()), "projecting");
    let start = projections.position();
    let owner = data_dir.exists() && access == Access::Owner;
    let progress = |pos: u64| bar.set_position(pos - start);
    let applied = if owner {
        gryning_projections::asof::catch_up_keeping_snapshots(
            &mut projections,
            store,
            target,
            &Snapshots::in_data_dir(data_dir),
            &checkpoint,
            snapshot_every,
            progress,
        )
        .await?
    } else {
        gryning_projections::catch_up(&mut projections, store, Some(target), progress).await?
    };
    bar.finish_and_clear();
    if owner && (applied > 0 || discarded) {
        let origin = gryning_projections::origin_of(store, projections.position()).await?;
        projections
            .save_checkpoint(&checkpoint, &origin)
            .with_context(|| format!("cannot write checkpoint {}", checkpoint.display()))?;
    }
    Ok(projections)
}

/// The projections as they stood at `at`, from the data directory's snapshots (see
/// [`gryning_projections::asof`]), saying on standard error where the replay started.
pub(crate) async fn past_projections(
    store: &dyn EventStore,
    data_dir: &Path,
    at: AsOf,
) -> anyhow::Result<Projections> {
    let past = gryning_projections::asof::as_of(store, Some(&Snapshots::in_data_dir(data_dir)), at)
        .await?;
    for (path, why) in &past.skipped {
        eprintln!("warning: snapshot {} not used: {why}", path.display());
    }
    match past.started_from {
        Some(p) => eprintln!(
            "note: as of position {}: from the snapshot at position {p}, then {} events",
            past.projections.position(),
            past.replayed
        ),
        None => eprintln!(
            "note: as of position {}: replayed {} events from the first",
            past.projections.position(),
            past.replayed
        ),
    }
    Ok(past.projections)
}

/// `gryning import FILE --server URL`: the file's events through the event-log service, with
/// the same progress, rejection lines, summary and exit status as the offline import.
async fn import_remote(
    server: &remote::Server,
    file: &Path,
) -> anyhow::Result<std::process::ExitCode> {
    let started = Instant::now();
    let (input, bar) = import_input(file, "sending")?;
    let progress = bar.clone();
    let (summary, rejections, unlisted) =
        remote::import(server, input, move |bytes| show_progress(&progress, bytes)).await?;
    bar.finish_and_clear();
    for r in &rejections {
        eprintln!("line {}: {}", r.line, r.reason);
    }
    if unlisted > 0 {
        eprintln!(
            "note: {unlisted} more lines were rejected that the server did not name (it lists the \
             first {} of a call's rejections): fix the lines above and import the file again, \
             which stores nothing twice, to see the next ones",
            gryning_event_log::MAX_LISTED_REJECTIONS
        );
    }
    import_summary(&summary, started)
}

/// The NDJSON input of an import (`-`: standard input) and a progress bar over its bytes (of
/// unknown length for standard input).
fn import_input(
    file: &Path,
    what: &str,
) -> anyhow::Result<(Box<dyn std::io::BufRead + Send>, indicatif::ProgressBar)> {
    if file.as_os_str() == "-" {
        return Ok((
            Box::new(BufReader::new(std::io::stdin())),
            progress_bar(0, what),
        ));
    }
    let f = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((
        Box::new(BufReader::with_capacity(1 << 20, f)),
        progress_bar(len, what),
    ))
}

/// Moves an import's progress bar to `bytes` read, or only ticks it when the length is unknown.
fn show_progress(bar: &indicatif::ProgressBar, bytes: u64) {
    if bar.length() == Some(0) {
        bar.tick();
    } else {
        bar.set_position(bytes);
    }
}

/// Prints an import's summary line; the exit status says whether any line was rejected.
fn import_summary(
    summary: &import::Summary,
    started: Instant,
) -> anyhow::Result<std::process::ExitCode> {
    import::print_summary(
        &mut std::io::stdout(),
        summary,
        started.elapsed().as_secs_f64(),
    )?;
    Ok(if summary.rejected > 0 {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    })
}

/// `gryning table … --suppress-below N`, offline or with --server.
#[allow(clippy::too_many_arguments)]
async fn suppressed_table(
    settings: &Settings,
    (catalogue, classification): (&Catalogue, &str),
    remote: &remote::ServerArgs,
    (name, by, period, format): (&str, ByArg, PeriodArg, Format),
    as_of: Option<u64>,
    published: Option<&str>,
    revision: Option<u32>,
    below: u32,
) -> anyhow::Result<std::process::ExitCode> {
    let Some(table_name) = TableName::parse(name) else {
        bail!("unknown table {name:?}; the tables are case-flow, clearance, care and progress")
    };
    let by = match by {
        ByArg::Code => By::Code,
        ByArg::Group => By::Group,
    };
    let period = match period {
        PeriodArg::Year => PeriodKind::Year,
        PeriodArg::Quarter => PeriodKind::Quarter,
    };
    let published = match published {
        None => None,
        Some(text) => {
            let (quarter, at) = publication::parse_published("--published", text)?;
            Some((quarter, revision.or(at)))
        }
    };
    // Through a server, or offline on the data directory: the same table either way.
    let (server, store, access);
    let reader = match &remote.server {
        Some(url) => {
            server = remote.connect(url, "an analyst or admin token").await?;
            report::Reader::Remote(&server)
        }
        None => {
            (store, access) = open_existing_to_read(settings).await?;
            report::Reader::Offline {
                settings,
                store: store.as_ref(),
                access,
            }
        }
    };
    report::suppressed_table(
        reader,
        catalogue,
        classification,
        table_name,
        by,
        period,
        as_of,
        published,
        format,
        below,
    )
    .await?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn run(cli: Cli, settings: Settings) -> anyhow::Result<std::process::ExitCode> {
    let ok = std::process::ExitCode::SUCCESS;
    let catalogue = load_catalogue(settings.catalog.as_deref())?;
    match cli.command {
        Command::Import { file, remote } => {
            if let Some(url) = &remote.server {
                let server = remote
                    .connect(
                        url,
                        "one of a role that may record the file's events (admin: any)",
                    )
                    .await?;
                return import_remote(&server, &file).await;
            }
            let store = open_store(&settings).await?;
            let recorder = Recorder::new(store, catalogue);
            let started = Instant::now();
            let (input, bar) = import_input(&file, "importing")?;
            let summary = import::import(
                &recorder,
                input,
                |r| bar.suspend(|| eprintln!("line {}: {}", r.line, r.reason)),
                |bytes| show_progress(&bar, bytes),
            )
            .await?;
            bar.finish_and_clear();
            import_summary(&summary, started)
        }
        Command::Table {
            name,
            by,
            period,
            format,
            as_of,
            published,
            revision,
            region,
            classification,
            suppress_below,
            remote,
        } => {
            let classified = classification != gryning_domain::catalogue::RECORDED;
            if classified && published.is_some() {
                return Err(report::classified_publication(&classification));
            }
            if let Some(below) = suppress_below {
                if region.is_some() {
                    return Err(report::suppressed_region());
                }
                if matches!(
                    TableName::parse(&name),
                    Some(TableName::SocialServices | TableName::RegionComparison)
                ) {
                    bail!("--suppress-below covers case-flow, clearance, care and progress (the report's tables); {name} is not suppressed yet");
                }
                let as_of = match &as_of {
                    None => None,
                    Some(a) => match a.at {
                        AsOf::Position(p) => Some(p),
                        AsOf::Before(_) => bail!(
                            "--suppress-below takes --as-of as a store position only, not a time ({})",
                            a.text
                        ),
                    },
                };
                let catalogue = match catalogue.under(&classification) {
                    Ok(under) => under,
                    Err(e) => bail!("--classification: {e}"),
                };
                return suppressed_table(
                    &settings,
                    (&catalogue, &classification),
                    &remote,
                    (&name, by, period, format),
                    as_of,
                    published.as_deref(),
                    revision,
                    below,
                )
                .await;
            }
            if let Some(url) = &remote.server {
                let server = remote.connect(url, "an analyst or admin token").await?;
                let published = match &published {
                    None => None,
                    Some(text) => {
                        let (quarter, at) = publication::parse_published("--published", text)?;
                        Some((quarter.to_string(), revision.or(at).unwrap_or(0)))
                    }
                };
                let (published, revision) = published.unwrap_or_default();
                // A position travels as `as_of`, a time or a date as the text given in
                // `as_of_time`.
                let (as_of, as_of_time) = match &as_of {
                    None => (None, String::new()),
                    Some(a) => match a.at {
                        AsOf::Position(p) => (Some(p), String::new()),
                        AsOf::Before(_) => (None, a.text.clone()),
                    },
                };
                let request = gryning_proto::pb::GetTableRequest {
                    name: name.clone(),
                    by: by.name().to_string(),
                    period: period.name().to_string(),
                    as_of,
                    published,
                    revision,
                    region: region.clone().unwrap_or_default(),
                    as_of_time,
                    classification: classification.clone(),
                };
                let text = remote::table(&server, request, format).await?;
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())?;
                return Ok(ok);
            }
            let Some(table_name) = TableName::parse(&name) else {
                bail!(
                    "unknown table {name:?}; the tables are {}",
                    TableName::names()
                )
            };
            if table_name == TableName::SocialServices && region.is_some() {
                bail!("the social-services table is county-wide (support is granted to clients, who carry no region): leave out --region");
            }
            let catalogue = match catalogue.under(&classification) {
                Ok(under) => Arc::new(under),
                Err(e) => bail!("--classification: {e}"),
            };
            let dir = &settings.data_dir;
            if settings.store.is_none() && !dir.join("events.sqlite3").exists() {
                bail!("no event store in {}: import events first (gryning import FILE) or pass --data-dir", dir.display());
            }
            let (store, access) = open_store_to_read(&settings).await?;
            if let Access::ReadOnly { owner_pid } = access {
                let owner = owner_pid.map_or_else(
                    || "another process".to_string(),
                    |pid| format!("process {pid}"),
                );
                eprintln!(
                    "note: {} is owned by {owner}: reading its events as committed now, read-only (the checkpoint is left to the owner)",
                    dir.display()
                );
            }
            let by = match by {
                ByArg::Code => By::Code,
                ByArg::Group => By::Group,
            };
            let period = match period {
                PeriodArg::Year => PeriodKind::Year,
                PeriodArg::Quarter => PeriodKind::Quarter,
            };
            if let Some(published) = &published {
                publication::table(
                    store.as_ref(),
                    table_name,
                    by,
                    period,
                    published,
                    revision,
                    format,
                )
                .await?;
                return Ok(ok);
            }
            let projections = match as_of {
                None => {
                    current_projections(store.as_ref(), dir, settings.snapshot_every, access)
                        .await?
                }
                Some(at) => past_projections(store.as_ref(), dir, at.at).await?,
            };
            let table =
                projections.region_table(table_name, by, period, &catalogue, region.as_deref())?;
            let text = match format {
                Format::Text => table.to_text(),
                Format::Json => table.to_json(),
                Format::Csv => table.to_csv(),
            };
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            if !text.ends_with('\n') {
                writeln!(out)?;
            }
            Ok(ok)
        }
        Command::Explain { cell, remote } => {
            let reply = if let Some(url) = &remote.server {
                let server = remote.connect(url, "an auditor or admin token").await?;
                remote::explain(&server, cell.to_pb()?).await?
            } else {
                let (store, _) = open_existing_to_read(&settings).await?;
                explain::offline(store.as_ref(), &catalogue, &cell).await?
            };
            explain::print(&reply, cell.format)?;
            Ok(ok)
        }
        Command::Audit { args, remote } => {
            let request = args.to_pb();
            let reply = if let Some(url) = &remote.server {
                let server = remote.connect(url, "an auditor or admin token").await?;
                remote::audit(&server, request).await?
            } else {
                let filter = gryning_service_common::audit::Filter::from_request(&request)?;
                let (store, _) = open_existing_to_read(&settings).await?;
                let credentials = settings.credentials_path();
                gryning_service_common::audit::audit(
                    store.as_ref(),
                    credentials.exists().then_some(credentials.as_path()),
                    &filter,
                )
                .await?
            };
            std::io::stdout().write_all(audit::render(&reply, args.format).as_bytes())?;
            audit::warn_omitted(&reply, args.format);
            Ok(ok)
        }
        Command::Report {
            year,
            quarter,
            published,
            region,
            classification,
            suppress_below,
            out,
            remote,
        } => {
            let options = report::Options {
                year,
                quarter,
                published,
                region,
                classification,
                suppress_below,
                out,
            };
            if let Some(url) = &remote.server {
                let server = remote.connect(url, "an analyst or admin token").await?;
                report::report(
                    report::Reader::Remote(&server),
                    &settings,
                    &catalogue,
                    options,
                )
                .await?;
                return Ok(ok);
            }
            let (store, access) = open_existing_to_read(&settings).await?;
            let reader = report::Reader::Offline {
                settings: &settings,
                store: store.as_ref(),
                access,
            };
            report::report(reader, &settings, &catalogue, options).await?;
            Ok(ok)
        }
        Command::Credentials(args) => {
            credentials::run(args, settings.credentials_path())?;
            Ok(ok)
        }
        Command::Catalog {
            format,
            version,
            action,
        } => {
            match action {
                Some(CatalogAction::Diff { from, to, format }) => {
                    if version.is_some() {
                        bail!("catalog diff names its two versions: leave out --version");
                    }
                    if format == Format::Csv {
                        bail!("--format: catalog diff is shown as text or json, not csv");
                    }
                    print!(
                        "{}",
                        catalog::diff(&catalogue, &from, &to, format == Format::Json)?
                    );
                }
                None => {
                    let shown = catalog::version(&catalogue, version.as_deref())?;
                    print!("{}", demo::render_catalogue(&shown, format == Format::Json));
                }
            }
            Ok(ok)
        }
        Command::Generate {
            seed,
            scale,
            output,
            data,
        } => {
            if scale == 0 {
                bail!("--scale must be at least 1");
            }
            let options = data.options();
            let started = Instant::now();
            let written = match output.as_deref().filter(|p| p.as_os_str() != "-") {
                None => gryning_synth::write_ndjson_with(
                    seed,
                    scale,
                    &catalogue,
                    options,
                    std::io::BufWriter::new(std::io::stdout().lock()),
                )?,
                Some(path) => {
                    let f = std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    let n = gryning_synth::write_ndjson_with(
                        seed,
                        scale,
                        &catalogue,
                        options,
                        std::io::BufWriter::with_capacity(1 << 20, f),
                    )?;
                    eprintln!(
                        "wrote {n} events to {} in {:.2} s",
                        path.display(),
                        started.elapsed().as_secs_f64()
                    );
                    n
                }
            };
            let _ = written;
            Ok(ok)
        }
        Command::Rebuild => {
            let dir = &settings.data_dir;
            let store = open_store(&settings).await?;
            let checkpoint = dir.join(CHECKPOINT_FILE);
            if checkpoint.exists() {
                std::fs::remove_file(&checkpoint)
                    .with_context(|| format!("cannot remove {}", checkpoint.display()))?;
            }
            let started = Instant::now();
            let projections =
                current_projections(store.as_ref(), dir, settings.snapshot_every, Access::Owner)
                    .await?;
            let secs = started.elapsed().as_secs_f64();
            let n = projections.position();
            println!(
                "rebuilt every projection from {n} events in {secs:.2} s ({:.0} events/s); checkpoint at position {n}",
                n as f64 / secs.max(1e-9)
            );
            Ok(ok)
        }
        Command::Bench(args) => {
            bench::run(args).await?;
            Ok(ok)
        }
        Command::BenchScan => {
            bench::scan_floor(&settings).await?;
            Ok(ok)
        }
        Command::Retain {
            older_than,
            dry_run,
        } => {
            retain::run(&settings, &older_than, dry_run).await?;
            Ok(ok)
        }
        Command::Up { .. } => {
            gryning_service_common::init_telemetry(&settings.log);
            let store = open_store(&settings).await?;
            up::run(settings, store).await?;
            Ok(ok)
        }
        Command::Demo { seed, data } => {
            demo::run(cli.data_dir, seed, data.options(), catalogue).await
        }
        Command::Publish {
            quarter,
            note,
            remote,
        } => {
            if let Some(url) = &remote.server {
                let server = remote.connect(url, "an admin token").await?;
                let p = remote::publish(&server, &quarter, &note).await?;
                println!("{}", publication::published_line(&p));
            } else {
                publication::publish(&settings, catalogue, &quarter, &note).await?;
            }
            Ok(ok)
        }
        Command::Publications {
            quarter,
            format,
            remote,
        } => {
            if let Some(url) = &remote.server {
                let server = remote
                    .connect(url, "an analyst's, an auditor's or an admin's token")
                    .await?;
                let list = remote::publications(&server, quarter.as_deref().unwrap_or("")).await?;
                return publication::print(&publication::publications_table(&list), format)
                    .map(|()| ok);
            }
            let (store, access) = open_existing_to_read(&settings).await?;
            publication::list(
                store.as_ref(),
                &settings,
                access,
                quarter.as_deref(),
                format,
            )
            .await?;
            Ok(ok)
        }
        Command::Diff {
            published,
            revision,
            against,
            format,
        } => {
            let (store, _) = open_existing_to_read(&settings).await?;
            publication::diff(
                store.as_ref(),
                &catalogue,
                &published,
                revision,
                &against,
                format,
            )
            .await?;
            Ok(ok)
        }
    }
}
