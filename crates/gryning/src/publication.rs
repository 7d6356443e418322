//! `gryning publish`, `gryning publications`, `gryning diff` and `gryning table --published`:
//! quarterly publications on the data directory's store (or `--store`). The rules live in
//! `gryning_service_common::publish` and `gryning_projections::{publication, diff}`.

use std::io::Write;
use std::sync::Arc;

use anyhow::bail;
use gryning_domain::{Catalogue, Quarter};
use gryning_projections::diff::{changed_cells, changes_table, count_changes};
use gryning_projections::{
    read_publication, stored_table_or_why, By, Cell, PeriodKind, PublicationEntry, PublishedPeriod,
    Table, TableName,
};
use gryning_proto::pb;
use gryning_recording::Recorder;
use gryning_service_common::context::Access;
use gryning_service_common::publish::{self, PublishError};
use gryning_service_common::Settings;
use gryning_store::EventStore;

use crate::Format;

/// Prints `table` in `format` on standard output.
pub(crate) fn print(table: &Table, format: Format) -> anyhow::Result<()> {
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
    Ok(())
}

/// `2020-Q4` or `2020-Q4@2`: a quarter and maybe a revision.
pub(crate) fn parse_published(flag: &str, text: &str) -> anyhow::Result<(Quarter, Option<u32>)> {
    let (quarter, revision) = match text.split_once('@') {
        None => (text, None),
        Some((q, n)) => match n.parse::<u32>() {
            Ok(n) if n > 0 => (q, Some(n)),
            _ => bail!(
                "{flag}: revision {n:?} of {text:?}: a revision is a whole number from 1, as in 2020-Q4@2"
            ),
        },
    };
    let quarter = Quarter::parse(quarter).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
    Ok((quarter, revision))
}

/// `gryning publish --quarter Q [--note TEXT]`.
pub(crate) async fn publish(
    settings: &Settings,
    catalogue: Arc<Catalogue>,
    quarter: &str,
    note: &str,
) -> anyhow::Result<()> {
    let quarter = publish::parse_quarter(quarter)?;
    publish::check_note(note)?;
    let clock = settings.clock()?;
    let now = clock.now();
    publish::check_ended(quarter, clock.today())?;
    let dir = &settings.data_dir;
    if settings.store.as_deref().is_none_or(str::is_empty) && !dir.join("events.sqlite3").exists() {
        bail!(
            "no event store in {}: import events first (gryning import FILE) or pass --data-dir",
            dir.display()
        );
    }
    let store = crate::open_store(settings).await?;
    let projections = crate::current_projections(
        store.as_ref(),
        &settings.data_dir,
        settings.snapshot_every,
        Access::Owner,
    )
    .await?;
    let publication = publish::compute(
        &projections,
        &catalogue,
        quarter,
        note,
        publish::OFFLINE_PRINCIPAL,
        false,
        now,
    );
    let recorder = Recorder::new(store, Arc::clone(&catalogue)).with_clock(clock);
    let Some((position, p)) = publish::record(&recorder, publication, Vec::new()).await? else {
        bail!("quarter {quarter}: not recorded")
    };
    let entry = PublicationEntry::of(position, &p);
    println!("{}", published_line(&gryning_insight::summary(&entry)));
    Ok(())
}

/// What `gryning publish` says once the publication is recorded, offline or through a server.
pub(crate) fn published_line(p: &pb::Publication) -> String {
    format!(
        "published {} revision {} at position {}: tables computed at position {}, catalogue {} (sha256 {})",
        p.quarter,
        p.revision,
        p.recorded_at_position,
        p.computed_at,
        p.catalogue_version,
        p.catalogue_sha256
    )
}

/// The publications as a table, from the summaries `Insight.ListPublications` answers with.
pub(crate) fn publications_table(entries: &[pb::Publication]) -> Table {
    Table {
        name: "publications".to_string(),
        columns: vec![
            "quarter",
            "revision",
            "computed_at",
            "recorded_at_position",
            "published_at",
            "principal",
            "automatic",
            "catalogue_version",
            "catalogue_sha256",
            "note",
        ],
        rows: entries
            .iter()
            .map(|e| {
                vec![
                    Cell::Text(e.quarter.to_string()),
                    Cell::Int(i64::from(e.revision)),
                    Cell::Int(e.computed_at as i64),
                    Cell::Int(e.recorded_at_position as i64),
                    Cell::Text(e.published_at.clone()),
                    Cell::Text(e.principal.clone()),
                    Cell::Text(if e.automatic { "yes" } else { "no" }.to_string()),
                    Cell::Text(e.catalogue_version.clone()),
                    Cell::Text(e.catalogue_sha256.clone()),
                    Cell::Text(e.note.clone()),
                ]
            })
            .collect(),
    }
}

/// `gryning publications [--quarter Q]`.
pub(crate) async fn list(
    store: &dyn EventStore,
    settings: &Settings,
    access: Access,
    quarter: Option<&str>,
    format: Format,
) -> anyhow::Result<()> {
    let quarter = quarter.map(publish::parse_quarter).transpose()?;
    let projections =
        crate::current_projections(store, &settings.data_dir, settings.snapshot_every, access)
            .await?;
    let entries: Vec<pb::Publication> = projections
        .publications()
        .filter(|e| quarter.is_none_or(|q| e.quarter == q))
        .map(gryning_insight::summary)
        .collect();
    print(&publications_table(&entries), format)
}

/// `gryning table NAME --published Q [--revision N]`, offline.
pub(crate) async fn table(
    store: &dyn EventStore,
    name: TableName,
    by: By,
    period: PeriodKind,
    published: &str,
    revision: Option<u32>,
    format: Format,
) -> anyhow::Result<()> {
    let (quarter, at) = parse_published("--published", published)?;
    let revision = revision.or(at);
    let (_, publication) = read_publication(store, quarter, revision)
        .await
        .map_err(PublishError::from)?;
    let table = stored_table_or_why(&publication, name, by, PublishedPeriod::of(period))
        .map_err(PublishError::from)?;
    print(&table, format)
}

/// `gryning diff --published Q[@N] [--revision N] [--against live|Q@M]`.
pub(crate) async fn diff(
    store: &dyn EventStore,
    catalogue: &Catalogue,
    published: &str,
    revision: Option<u32>,
    against: &str,
    format: Format,
) -> anyhow::Result<()> {
    let (quarter, at) = parse_published("--published", published)?;
    let (_, base) = read_publication(store, quarter, revision.or(at))
        .await
        .map_err(PublishError::from)?;
    let (counts, now) = if against == "live" {
        let head = store.head().await?;
        let (counts, state) = count_changes(store, &base, head, catalogue).await?;
        (counts, state.publish_tables(quarter, catalogue))
    } else {
        let (other_quarter, other_revision) = parse_published("--against", against)?;
        if other_quarter != quarter {
            bail!("--against {against}: compare a publication with live or with another revision of the same quarter ({quarter}@N)");
        }
        let Some(other_revision) = other_revision else {
            bail!("--against {against}: name the revision, as in {quarter}@2, or use live");
        };
        let (_, other) = read_publication(store, quarter, Some(other_revision))
            .await
            .map_err(PublishError::from)?;
        let (first, last) = if other.position >= base.position {
            (&base, other.position)
        } else {
            (&other, base.position)
        };
        let (counts, _) = count_changes(store, first, last, catalogue).await?;
        (counts, other.tables)
    };
    let changes = changed_cells(&base.tables, &now, &counts);
    print(&changes_table(&changes), format)
}
