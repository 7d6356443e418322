//! `gryning report` and `gryning table --suppress-below N`: gathers every table of one source
//! (the live tables at one position, or one publication) from the data directory or a running
//! server, hides small counts across them with `gryning_report::suppress`, and hands them to
//! `gryning_report` as typed data. The report's rendering lives in `crates/report`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use gryning_domain::{Catalogue, Quarter};
use gryning_projections::publication::ReadError;
use gryning_projections::{
    read_publication, stored_table, By, PeriodKind, PublishedPeriod, TableName,
};
use gryning_projections::{Cell, RegionComparisonRow, Table, Verdict};
use gryning_proto::pb;
use gryning_report::{Comparison, Figures, Provenance, Report, Source, SourcedTable};
use gryning_service_common::context::Access;
use gryning_service_common::publish::PublishError;
use gryning_service_common::Settings;
use gryning_store::EventStore;

use crate::{publication, remote, Format};

pub(crate) use gryning_report::{groups, kinds};

/// The `region-comparison` tables the report draws: by group per year (the charts), by code
/// per year and per quarter (the verdicts of the report's period).
const COMPARED: [(By, PeriodKind); 3] = [
    (By::Group, PeriodKind::Year),
    (By::Code, PeriodKind::Year),
    (By::Code, PeriodKind::Quarter),
];

/// The typed rows of a `region-comparison` table as a server sends it.
fn comparison_rows(table: &Table) -> anyhow::Result<Vec<RegionComparisonRow>> {
    let column = |name: &str| {
        table
            .columns
            .iter()
            .position(|c| *c == name)
            .with_context(|| format!("the server's region-comparison table has no column {name}"))
    };
    let key = match column("code") {
        Ok(j) => j,
        Err(_) => column("group")?,
    };
    let (period, gender, region, handled, cleared, percent, median, regions, verdict) = (
        column("period")?,
        column("victim_gender")?,
        column("region")?,
        column("handled")?,
        column("cleared")?,
        column("percent")?,
        column("median_percent")?,
        column("regions_in_median")?,
        column("verdict")?,
    );
    let text = |c: &Cell| match c {
        Cell::Text(t) => Ok(t.clone()),
        other => bail!("the server's region-comparison table holds {other:?} where a text belongs"),
    };
    let int = |c: &Cell| match c {
        Cell::Int(n) => Ok(*n),
        other => {
            bail!("the server's region-comparison table holds {other:?} where a count belongs")
        }
    };
    let float = |c: &Cell| match c {
        Cell::Float(x) => Ok(Some(*x)),
        Cell::Int(n) => Ok(Some(*n as f64)),
        Cell::Null => Ok(None),
        other => bail!("the server's region-comparison table holds {other:?} where a rate belongs"),
    };
    table
        .rows
        .iter()
        .map(|r| {
            let victim_gender = match text(&r[gender])?.as_str() {
                "ALL" => "ALL",
                "FEMALE" => "FEMALE",
                "MALE" => "MALE",
                "UNKNOWN" => "UNKNOWN",
                other => {
                    bail!("the server's region-comparison table names victim gender {other:?}")
                }
            };
            let verdict = match &r[verdict] {
                Cell::Null => None,
                c => Some(match text(c)?.as_str() {
                    "above" => Verdict::Above,
                    "in line" => Verdict::InLine,
                    "below" => Verdict::Below,
                    other => bail!("the server's region-comparison table holds verdict {other:?}"),
                }),
            };
            Ok(RegionComparisonRow {
                period: text(&r[period])?,
                key: text(&r[key])?,
                victim_gender,
                region: text(&r[region])?,
                handled: int(&r[handled])?,
                cleared: int(&r[cleared])?,
                percent: float(&r[percent])?.unwrap_or(0.0),
                median_percent: float(&r[median])?,
                regions_in_median: usize::try_from(int(&r[regions])?)?,
                verdict,
            })
        })
        .collect()
}

/// Where the tables are read: the data directory's store, or a server.
pub(crate) enum Reader<'a> {
    Offline {
        settings: &'a Settings,
        store: &'a dyn EventStore,
        access: Access,
    },
    Remote(&'a remote::Server),
}

/// The figures of one source and what the report says about it.
pub(crate) struct Gathered {
    pub figures: Figures,
    pub catalogue: Option<(String, String)>,
    pub published_at: Option<String>,
    /// The regions against their median, at the same position (live figures only).
    pub comparison: Option<Comparison>,
    /// The compared region's own family of tables, when asked for (to suppress its rows).
    pub compared_family: Option<Vec<SourcedTable>>,
    /// The region of the tables, by its full name; `None`: every region together.
    pub region: Option<String>,
}

/// What the live tables are asked for.
#[derive(Clone, Copy, Default)]
pub(crate) struct Scope<'a> {
    /// One police region's cases (as `--region` names it), or every region together.
    pub region: Option<&'a str>,
    /// `recorded` or a catalogue version (the catalogue handed to [`Reader::live`] is already
    /// under it; a server is asked for it by name).
    pub classification: &'a str,
    /// The region whose `region-comparison` rows the report shows (none: no comparison is
    /// read), and whether that region's own family of tables is wanted too, to suppress them.
    pub compared: Option<(&'a str, bool)>,
}

/// `--region`'s refusal of a name that is no region, naming the option and the regions.
fn unknown_region(e: gryning_domain::UnknownRegion) -> anyhow::Error {
    anyhow::anyhow!(
        "--region {:?}: not a police region; the regions are {} (the full name, or without \"Polisregion \", in any case); leave out --region for every region together",
        e.given,
        e.known.join(", ")
    )
}

impl Reader<'_> {
    /// Every live table of `scope`, all at one position (`as_of`, or the store's head).
    async fn live(
        &self,
        catalogue: &Catalogue,
        as_of: Option<u64>,
        scope: Scope<'_>,
    ) -> anyhow::Result<Gathered> {
        match self {
            Reader::Offline {
                settings,
                store,
                access,
            } => {
                let projections = match as_of {
                    None => {
                        crate::current_projections(
                            *store,
                            &settings.data_dir,
                            settings.snapshot_every,
                            *access,
                        )
                        .await?
                    }
                    Some(p) => {
                        crate::past_projections(
                            *store,
                            &settings.data_dir,
                            gryning_projections::AsOf::Position(p),
                        )
                        .await?
                    }
                };
                let resolve =
                    |given: &str| projections.resolve_region(given).map_err(unknown_region);
                let region = scope.region.map(resolve).transpose()?;
                let family = |region: Option<&str>| -> anyhow::Result<Vec<SourcedTable>> {
                    kinds()
                        .into_iter()
                        .map(|(name, by, period)| {
                            Ok(SourcedTable {
                                name,
                                by,
                                period,
                                table: projections
                                    .region_table(name, by, period, catalogue, region)
                                    .map_err(unknown_region)?,
                            })
                        })
                        .collect()
                };
                let tables = family(region.as_deref())?;
                let mut comparison = None;
                let mut compared_family = None;
                if let Some((compared, with_family)) = scope.compared {
                    let compared = resolve(compared)?;
                    let mut c = Comparison::default();
                    for (by, period) in COMPARED {
                        let rows = projections.region_comparison(by, period, catalogue, None)?;
                        c.tables.push((by, period, rows));
                        c.shown.push(SourcedTable {
                            name: TableName::RegionComparison,
                            by,
                            period,
                            table: projections.region_table(
                                TableName::RegionComparison,
                                by,
                                period,
                                catalogue,
                                Some(&compared),
                            )?,
                        });
                    }
                    if with_family {
                        compared_family = Some(family(Some(&compared))?);
                    }
                    comparison = Some(c);
                }
                Ok(Gathered {
                    comparison,
                    compared_family,
                    region,
                    figures: Figures {
                        source: Source::Live,
                        position: projections.position(),
                        publication: None,
                        tables,
                    },
                    catalogue: Some((
                        catalogue.version().to_string(),
                        catalogue.content_sha256().to_string(),
                    )),
                    published_at: None,
                })
            }
            Reader::Remote(server) => {
                let ask =
                    |name: TableName, by: By, period: PeriodKind, region: Option<&str>, at| {
                        pb::GetTableRequest {
                            name: name.name().to_string(),
                            by: by.name().to_string(),
                            period: period.name().to_string(),
                            as_of: at,
                            region: region.unwrap_or_default().to_string(),
                            classification: scope.classification.to_string(),
                            ..Default::default()
                        }
                    };
                let refused =
                    |region: Option<&str>, (status, e): (tonic::Status, anyhow::Error)| match region
                    {
                        Some(given)
                            if gryning_service_common::status::is_invalid_argument(&status)
                                && status.message().starts_with("field region") =>
                        {
                            e.context(format!("--region {given:?}"))
                        }
                        _ => e,
                    };
                // The first table fixes the position; the others are asked as of it, so that
                // every table of the family reflects the same events.
                let mut position = as_of;
                let mut tables = Vec::new();
                for (name, by, period) in kinds() {
                    let f = remote::fetch_request(
                        server,
                        ask(name, by, period, scope.region, position),
                    )
                    .await
                    .map_err(|r| refused(scope.region, r))?;
                    position.get_or_insert(f.position);
                    tables.push(SourcedTable {
                        name,
                        by,
                        period,
                        table: f.table,
                    });
                }
                // A police region by its full name, as the server's rows name it.
                let full = |given: &str| {
                    gryning_domain::resolve_region(given, [])
                        .unwrap_or_else(|_| given.trim().to_string())
                };
                let mut comparison = None;
                let mut compared_family = None;
                if let Some((compared, with_family)) = scope.compared {
                    let compared = full(compared);
                    let mut c = Comparison::default();
                    for (by, period) in COMPARED {
                        let all = ask(TableName::RegionComparison, by, period, None, position);
                        let f = remote::fetch_request(server, all)
                            .await
                            .map_err(|(_, e)| e)?;
                        c.tables.push((by, period, comparison_rows(&f.table)?));
                        let one = ask(
                            TableName::RegionComparison,
                            by,
                            period,
                            Some(&compared),
                            position,
                        );
                        let f = remote::fetch_request(server, one)
                            .await
                            .map_err(|r| refused(Some(&compared), r))?;
                        c.shown.push(SourcedTable {
                            name: TableName::RegionComparison,
                            by,
                            period,
                            table: f.table,
                        });
                    }
                    if with_family {
                        let mut tables = Vec::new();
                        for (name, by, period) in kinds() {
                            let f = remote::fetch_request(
                                server,
                                ask(name, by, period, Some(&compared), position),
                            )
                            .await
                            .map_err(|r| refused(Some(&compared), r))?;
                            tables.push(SourcedTable {
                                name,
                                by,
                                period,
                                table: f.table,
                            });
                        }
                        compared_family = Some(tables);
                    }
                    comparison = Some(c);
                }
                Ok(Gathered {
                    comparison,
                    compared_family,
                    region: scope.region.map(full),
                    figures: Figures {
                        source: Source::Live,
                        position: position.unwrap_or(0),
                        publication: None,
                        tables,
                    },
                    // The server does not say which catalogue its live tables use.
                    catalogue: None,
                    published_at: None,
                })
            }
        }
    }

    /// Every table of a publication (its quarter's and year-to-date rows); `None` when the
    /// quarter has no publication and `missing_ok`.
    async fn published(
        &self,
        quarter: Quarter,
        revision: Option<u32>,
        missing_ok: bool,
    ) -> anyhow::Result<Option<Gathered>> {
        let mut tables = Vec::new();
        let gathered = match self {
            Reader::Offline { store, .. } => {
                let (_, p) = match read_publication(*store, quarter, revision).await {
                    Ok(found) => found,
                    Err(ReadError::NoPublication { .. }) if missing_ok => return Ok(None),
                    Err(e) => return Err(PublishError::from(e).into()),
                };
                for (name, by, period) in kinds() {
                    let Some(table) = stored_table(&p, name, by, PublishedPeriod::of(period))
                    else {
                        bail!(
                            "the publication of {quarter} revision {} holds no {} table",
                            p.revision,
                            name.name()
                        )
                    };
                    tables.push(SourcedTable {
                        name,
                        by,
                        period,
                        table,
                    });
                }
                Gathered {
                    figures: Figures {
                        source: Source::Published,
                        position: p.position,
                        publication: Some((quarter.to_string(), p.revision)),
                        tables,
                    },
                    catalogue: Some((p.catalogue_version, p.catalogue_sha256)),
                    published_at: Some(p.published_at),
                    comparison: None,
                    compared_family: None,
                    region: None,
                }
            }
            Reader::Remote(server) => {
                let mut about = None;
                for (name, by, period) in kinds() {
                    let q = quarter.to_string();
                    let f = match remote::fetch(
                        server,
                        name.name(),
                        by.name(),
                        period.name(),
                        None,
                        Some((&q, revision.unwrap_or(0))),
                    )
                    .await
                    {
                        Ok(f) => f,
                        Err((status, _))
                            if missing_ok
                                && gryning_service_common::status::is_not_found(&status)
                                && about.is_none() =>
                        {
                            return Ok(None)
                        }
                        Err((_, e)) => return Err(e),
                    };
                    // Every table of the family from the same revision: the first answer's.
                    let p = f
                        .publication
                        .context("the server's reply names no publication")?;
                    match &about {
                        None => about = Some(p),
                        Some(first) if first.revision != p.revision => bail!(
                            "{quarter}: revision {} was published while the report was read; run it again",
                            p.revision
                        ),
                        Some(_) => {}
                    }
                    tables.push(SourcedTable {
                        name,
                        by,
                        period,
                        table: f.table,
                    });
                }
                let p = about.context("no tables")?;
                Gathered {
                    figures: Figures {
                        source: Source::Published,
                        position: p.computed_at,
                        publication: Some((quarter.to_string(), p.revision)),
                        tables,
                    },
                    catalogue: Some((p.catalogue_version, p.catalogue_sha256)),
                    published_at: Some(p.published_at),
                    comparison: None,
                    compared_family: None,
                    region: None,
                }
            }
        };
        Ok(Some(gathered))
    }

    fn store_words(&self) -> String {
        match self {
            Reader::Offline { settings, .. } => crate::store_name(settings),
            Reader::Remote(server) => format!("the server {}", server.url()),
        }
    }
}

/// Hides small counts of `gathered` with threshold `below`. The relations between a group's
/// row and its codes' rows need the catalogue the tables were computed with: a publication
/// made under another catalogue is refused.
fn suppress(
    gathered: &mut Gathered,
    catalogue: &Catalogue,
    below: Option<u32>,
) -> anyhow::Result<()> {
    let Some(below) = below else { return Ok(()) };
    if let Some((version, sha)) = &gathered.catalogue {
        if sha != catalogue.content_sha256() {
            bail!(
                "--suppress-below: the tables were computed with catalogue {version} (sha256 {sha}), \
                 but the catalogue in force is {} (sha256 {}); small cells can only be hidden \
                 safely with the groups the tables were made with: pass that catalogue with --catalog FILE",
                catalogue.version(),
                catalogue.content_sha256()
            );
        }
    }
    let source = gathered.figures.source;
    gryning_report::suppress(
        &mut gathered.figures.tables,
        &groups(catalogue),
        source,
        below,
    );
    Ok(())
}

/// `gryning table NAME … --suppress-below N`: the table as the whole family's suppression
/// leaves it, so that no two tables asked one after the other give a hidden count away. Under
/// a classification (`catalogue` is then under it) the family is that classification's tables
/// and groups.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn suppressed_table(
    reader: Reader<'_>,
    catalogue: &Catalogue,
    classification: &str,
    name: TableName,
    by: By,
    period: PeriodKind,
    as_of: Option<u64>,
    published: Option<(Quarter, Option<u32>)>,
    format: Format,
    below: u32,
) -> anyhow::Result<()> {
    let mut gathered = match published {
        Some((quarter, revision)) => reader
            .published(quarter, revision, false)
            .await?
            .context("no publication")?,
        None => {
            let scope = Scope {
                classification,
                ..Scope::default()
            };
            reader.live(catalogue, as_of, scope).await?
        }
    };
    suppress(&mut gathered, catalogue, Some(below))?;
    let table = gathered
        .figures
        .get(name, by, period)
        .context("no such table")?;
    publication::print(&table.table, format)
}

/// `--classification VERSION` with `--published`: refused, for `gryning table` and `gryning
/// report` alike.
pub(crate) fn classified_publication(classification: &str) -> anyhow::Error {
    anyhow::anyhow!("--classification {classification}: a publication holds its tables as recorded (the catalogue version it names), not reclassified; leave out --classification with --published, or ask the live table (or --as-of) under a version")
}

/// `--suppress-below` with `--region`: refused, for `gryning table` and `gryning report` alike.
pub(crate) fn suppressed_region() -> anyhow::Error {
    anyhow::anyhow!(
        "--suppress-below works on the tables of every region together: leave out --region"
    )
}

/// The options of `gryning report`.
pub(crate) struct Options {
    pub year: i32,
    pub quarter: Option<String>,
    pub published: Option<String>,
    pub region: Option<String>,
    pub classification: String,
    pub suppress_below: Option<u32>,
    pub out: PathBuf,
}

/// `gryning report --year Y [--quarter Q] [--published Q] [--region R] [--classification V]
/// [--suppress-below N] --out DIR`.
pub(crate) async fn report(
    reader: Reader<'_>,
    settings: &Settings,
    catalogue: &Catalogue,
    options: Options,
) -> anyhow::Result<()> {
    let year = options.year;
    let classification = options.classification.as_str();
    let classified = classification != gryning_domain::catalogue::RECORDED;
    if classified && options.published.is_some() {
        return Err(classified_publication(classification));
    }
    if options.region.is_some() && options.suppress_below.is_some() {
        return Err(suppressed_region());
    }
    // Every table, its groups and its codes' texts in the classification's codes.
    let under = catalogue
        .under(classification)
        .map_err(|e| anyhow::anyhow!("--classification: {e}"))?;
    let quarter = match &options.quarter {
        None => None,
        Some(text) => {
            let q = gryning_service_common::publish::parse_quarter(text)?;
            if q.year() != year {
                bail!("--quarter {q} is not in --year {year}: name a quarter of {year}, as in {year}-Q4");
            }
            Some(q)
        }
    };
    let published = match &options.published {
        None => None,
        Some(text) => {
            let (q, revision) = publication::parse_published("--published", text)?;
            if q.year() != year {
                bail!("--published {q} is not in --year {year}: a report of {year} reads a publication of {year} (its year-to-date tables), as in {year}-Q4");
            }
            if let Some(wanted) = quarter {
                if wanted != q {
                    bail!("--quarter {wanted} with --published {q}: a publication holds its own quarter's rows only; use --quarter {q}, or leave --quarter out for the year to date");
                }
            }
            Some((q, revision))
        }
    };
    let (mut current, mut previous) = match published {
        Some((q, revision)) => {
            let current = reader
                .published(q, revision, false)
                .await?
                .context("no publication")?;
            let before = Quarter::new(year - 1, q.number()).context("quarter")?;
            let previous = reader.published(before, None, true).await?;
            (current, previous)
        }
        None => {
            let compared = options
                .region
                .as_deref()
                .unwrap_or(gryning_report::COMPARED_REGION);
            let scope = Scope {
                region: options.region.as_deref(),
                classification,
                compared: Some((compared, options.suppress_below.is_some())),
            };
            let mut live = reader.live(&under, None, scope).await?;
            // The catalogue in force (under a classification the tables name its version too).
            if live.catalogue.is_some() {
                live.catalogue = Some((
                    catalogue.version().to_string(),
                    catalogue.content_sha256().to_string(),
                ));
            }
            (live, None)
        }
    };
    suppress(&mut current, &under, options.suppress_below)?;
    if let Some(p) = previous.as_mut() {
        suppress(p, &under, options.suppress_below)?;
    }
    // The compared region's comparison rows, as the suppression of its own tables leaves them.
    if let (Some(below), Some(mut family), Some(comparison)) = (
        options.suppress_below,
        current.compared_family.take(),
        current.comparison.as_mut(),
    ) {
        gryning_report::suppress(&mut family, &groups(&under), Source::Live, below);
        gryning_report::suppress_comparison(&mut comparison.shown, &family);
    }
    let (catalogue_version, catalogue_sha256) = current.catalogue.clone().unwrap_or_else(|| {
        (
            format!(
                "{} (the server's; this client's catalogue is shown)",
                catalogue.version()
            ),
            catalogue.content_sha256().to_string(),
        )
    });
    let mut command = format!("gryning report --year {year}");
    if let Some(q) = &options.quarter {
        command.push_str(&format!(" --quarter {q}"));
    }
    if let Some(p) = &options.published {
        command.push_str(&format!(" --published {p}"));
    }
    if let Some(r) = &options.region {
        command.push_str(&format!(" --region {r:?}"));
    }
    if classified {
        command.push_str(&format!(" --classification {classification}"));
    }
    if let Some(n) = options.suppress_below {
        command.push_str(&format!(" --suppress-below {n}"));
    }
    command.push_str(&format!(" --out {}", options.out.display()));
    let code_texts: BTreeMap<String, String> = under
        .codes()
        .map(|(c, text)| (c.to_string(), text.to_string()))
        .collect();
    let report = Report {
        year,
        quarter: quarter.map(|q| q.number()),
        provenance: Provenance {
            store: reader.store_words(),
            catalogue_version,
            catalogue_sha256,
            made_at: settings.clock()?.now().to_string(),
            command,
            published_at: current.published_at.clone(),
            classification: classified.then(|| classification.to_string()),
        },
        current: current.figures,
        previous: previous.map(|p| p.figures),
        code_texts,
        groups: groups(&under),
        suppress_below: options.suppress_below,
        comparison: current.comparison.take(),
        region: current.region.take(),
    };
    let written = gryning_report::write(&report, &options.out)?;
    println!("wrote {}", written.html.display());
    println!("wrote {}", written.xlsx.display());
    for csv in &written.csv {
        println!("wrote {}", csv.display());
    }
    Ok(())
}
