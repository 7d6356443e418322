//! `gryning retain --older-than 5y [--dry-run]`: erases the event-level data of closed cases and
//! ended client records whose last event is older than the limit, keeping every table.
//!
//! Offline, on the embedded store of the data directory, holding its lock from the first read
//! to the last write. What is erased:
//! - a **closed case**: a case stream with at least one reported crime in which every crime has
//!   its final decision (a closed investigation or a prosecution decision);
//! - an **ended client record**: a client stream with no treatment programme running (every
//!   start has its end; a client with support grants only is ended too);
//! - **older than the limit**: the stream's last event is dated (`occurred_on`, the business
//!   date the tables bucket by) before the cutoff, today in Stockholm minus the limit. The
//!   recording time plays no part: a case closed in 2019 and imported today is as old as the
//!   case, since what the law measures is the case's own history.
//!
//! The erased streams are first folded on their own into a fresh state whose counts become the
//! `StreamsErased` aggregate (`gryning_projections`, `erasure.rs`); the projection checkpoint
//! and every snapshot are rewritten without the erased ids but with their counts (snapshots
//! before the erasure then answer as-of queries below it only); then one transaction records
//! the aggregate in stream `retention` and deletes the streams, and the database is vacuumed.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use anyhow::{bail, Context};
use gryning_domain::{Body, Date, Event, Subject, Uuid, RETENTION_STREAM};
use gryning_projections::{Projections, Snapshots};
use gryning_service_common::Settings;
use gryning_store::sqlite::{self, SqliteStore};
use gryning_store::{EventStore, NewEvent, Position};

use crate::{current_projections, Access, CHECKPOINT_FILE};

/// Who an offline run is recorded as, like an offline `gryning publish`.
const OFFLINE_PRINCIPAL: &str = "offline";

/// Events read per batch while scanning the log.
const BATCH: usize = 10_000;

/// A limit of `--older-than`: years, months or days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Limit {
    Years(i64),
    Months(i64),
    Days(i64),
}

impl Limit {
    /// `5y`, `18m`, `400d`: a whole number from 1, then its unit.
    pub(crate) fn parse(text: &str) -> anyhow::Result<Limit> {
        let fail = || {
            anyhow::anyhow!(
                "--older-than {text:?}: must be a whole number of years, months or days from 1, written like 5y, 18m or 400d"
            )
        };
        let text_trimmed = text.trim();
        let (number, unit) = text_trimmed.split_at(text_trimmed.len().saturating_sub(1));
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail());
        }
        let n: i64 = number.parse().map_err(|_| fail())?;
        let limit = match unit {
            "y" => Limit::Years(n),
            "m" => Limit::Months(n),
            "d" => Limit::Days(n),
            _ => return Err(fail()),
        };
        let too_far = match limit {
            Limit::Years(n) => n > 1000,
            Limit::Months(n) => n > 12_000,
            Limit::Days(n) => n > 365_000,
        };
        if n == 0 || too_far {
            return Err(fail());
        }
        Ok(limit)
    }

    /// The first day that is not older than the limit, counted back from `today` (a day past
    /// the end of a shorter month is its last day: 31 March less a month is 28 February).
    pub(crate) fn cutoff(self, today: Date) -> anyhow::Result<Date> {
        let (year, month, day) = today.ymd();
        let (year, month) = match self {
            Limit::Days(n) => return Ok(today.add_days(-(n as i32))),
            Limit::Years(n) => (i64::from(year) - n, i64::from(month)),
            Limit::Months(n) => {
                let total = i64::from(year) * 12 + i64::from(month) - 1 - n;
                (total.div_euclid(12), total.rem_euclid(12) + 1)
            }
        };
        let year = i32::try_from(year).context("--older-than reaches before the calendar")?;
        (0..4)
            .find_map(|back| Date::from_ymd(year, month as u32, day - back))
            .context("--older-than reaches before the calendar")
    }
}

/// What the scan learns of one stream.
#[derive(Default)]
struct Stream {
    case: bool,
    last_day: Option<Date>,
    crimes: HashSet<Uuid>,
    decided: HashSet<Uuid>,
    running: bool,
    events: u64,
    positions: Vec<Position>,
}

impl Stream {
    fn closed(&self) -> bool {
        if self.case {
            !self.crimes.is_empty() && self.crimes.iter().all(|c| self.decided.contains(c))
        } else {
            !self.running
        }
    }
}

pub(crate) async fn run(
    settings: &Settings,
    older_than: &str,
    dry_run: bool,
) -> anyhow::Result<()> {
    let limit = Limit::parse(older_than)?;
    if settings.store.as_deref().is_some_and(|s| !s.is_empty()) {
        bail!(
            "gryning retain works on the embedded store only; the JetStream backend ({}) does not support retention yet",
            settings.store.as_deref().unwrap_or_default()
        );
    }
    let dir = &settings.data_dir;
    if !dir.join(sqlite::DB_FILE).exists() {
        bail!(
            "no event store in {}: {} does not exist",
            dir.display(),
            sqlite::DB_FILE
        );
    }
    let now = gryning_recording::Clock::System.now();
    let today = Date::in_stockholm(now);
    let cutoff = limit.cutoff(today)?;
    // Held to the end: no server opens the store while it is read, rewritten and erased.
    let lock = sqlite::lock(dir)?;
    let store = SqliteStore::open_read_only(dir)?;
    let head = store.head().await?;

    let mut streams: HashMap<String, Stream> = HashMap::new();
    let mut after = 0;
    loop {
        let batch = store.read_all(after, BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        for recorded in batch {
            let event = gryning_proto::decode_event(&recorded.payload).with_context(|| {
                format!("the event at position {} is unreadable", recorded.position)
            })?;
            let case = match event.subject {
                Subject::Case(_) => true,
                Subject::Client(_) => false,
                Subject::Publication(_) | Subject::Retention => continue,
            };
            let s = streams.entry(recorded.stream.clone()).or_default();
            s.case = case;
            s.events += 1;
            s.positions.push(recorded.position);
            s.last_day = Some(
                s.last_day
                    .map_or(event.occurred_on, |d| d.max(event.occurred_on)),
            );
            match &event.body {
                Body::CrimeReported { crime_id, .. } => {
                    s.crimes.insert(*crime_id);
                }
                Body::InvestigationClosed { crime_ids, .. } => s.decided.extend(crime_ids),
                Body::ProsecutionDecided { crime_id, .. } => {
                    s.decided.insert(*crime_id);
                }
                Body::TreatmentProgrammeStarted { .. } => s.running = true,
                Body::TreatmentProgrammeEnded { .. } => s.running = false,
                _ => {}
            }
        }
    }
    let doomed: BTreeSet<String> = streams
        .iter()
        .filter(|(_, s)| s.closed() && s.last_day.is_some_and(|d| d < cutoff))
        .map(|(name, _)| name.clone())
        .collect();
    let doomed_cases: HashSet<Uuid> = doomed
        .iter()
        .filter_map(|name| match Subject::parse_stream_name(name) {
            Some(Subject::Case(id)) => Some(id),
            _ => None,
        })
        .collect();
    let erased_positions: HashSet<Position> = doomed
        .iter()
        .flat_map(|name| streams[name].positions.iter().copied())
        .collect();

    // The erased streams alone, folded in log order: their contribution to every table.
    let mut gone = Projections::new();
    let mut wanted: Vec<Position> = erased_positions.iter().copied().collect();
    wanted.sort_unstable();
    let mut after = 0;
    let mut next = wanted.iter().peekable();
    while next.peek().is_some() {
        let batch = store.read_all(after, BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        for recorded in batch {
            if next.peek() == Some(&&recorded.position) {
                next.next();
                let event = gryning_proto::decode_event(&recorded.payload)?;
                gone.apply(recorded.position, &event);
            }
        }
    }
    let mut erasure = gone.erasure_of();
    erasure.run = store.stream_version(RETENTION_STREAM).await? as u32 + 1;
    erasure.erased_at = gryning_service_common::context::recorded_at(now);
    erasure.principal = OFFLINE_PRINCIPAL.to_string();
    erasure.older_than = older_than.trim().to_string();
    erasure.cutoff = Some(cutoff);
    erasure.cases = doomed_cases.len() as u64;
    erasure.clients = (doomed.len() - doomed_cases.len()) as u64;
    erasure.events = erased_positions.len() as u64;

    if dry_run || doomed.is_empty() {
        println!(
            "{}: {} streams ({} events) whose last event is before {cutoff}: {}",
            if dry_run {
                "dry run, nothing changed; would erase"
            } else {
                "nothing to erase"
            },
            doomed.len(),
            erasure.events,
            gryning_proto::erasure_summary(&erasure)
        );
        return Ok(());
    }

    let record = Event {
        event_id: Uuid::new_v4(),
        occurred_on: today,
        subject: Subject::Retention,
        body: Body::StreamsErased(Box::new(erasure.clone())),
    };
    let record_position = head + 1;

    // The projections first: if anything below fails, the store is unchanged and these files
    // still give every table (their counts are the same; only the erased ids are gone).
    let mut live = current_projections(&store, dir, settings.snapshot_every, Access::Owner).await?;
    live.forget_cases(&doomed_cases, None);
    live.note_erasure(record_position, &erasure);
    let origin = gryning_projections::Origin {
        store: store.identity(),
        event_id: Some(record.event_id),
    };
    live.save_checkpoint(&dir.join(CHECKPOINT_FILE), &origin)?;
    rewrite_snapshots(
        dir,
        &store,
        &doomed_cases,
        &erased_positions,
        record_position,
    )
    .await?;
    drop(store);

    let metadata = gryning_proto::encode_metadata(OFFLINE_PRINCIPAL, "admin", &erasure.erased_at);
    let names: Vec<String> = doomed.into_iter().collect();
    let done = sqlite::erase_streams(
        dir,
        &lock,
        &sqlite::Erasure {
            streams: &names,
            expected_head: head,
            erased_on: &today.to_string(),
            record_stream: RETENTION_STREAM,
            record: NewEvent {
                event_id: record.event_id,
                payload: gryning_proto::encode_event(&record),
                metadata,
            },
        },
    )?;
    debug_assert_eq!(done.position, record_position);
    drop(lock);
    println!(
        "erased {} streams ({} events) whose last event is before {cutoff}; recorded at position {} in stream {RETENTION_STREAM}: {}; {} is now {} bytes",
        done.streams,
        done.events,
        done.position,
        gryning_proto::erasure_summary(&erasure),
        sqlite::DB_FILE,
        done.file_bytes
    );
    Ok(())
}

/// Rewrites every snapshot without the erased cases' ids, keeping their counts; a snapshot
/// that does not fit the store is removed (it may hold erased ids and serves no query).
async fn rewrite_snapshots(
    dir: &Path,
    store: &SqliteStore,
    doomed_cases: &HashSet<Uuid>,
    erased_positions: &HashSet<Position>,
    record_position: Position,
) -> anyhow::Result<()> {
    let snapshots = Snapshots::in_data_dir(dir);
    for (position, path) in snapshots.list() {
        let fits = match gryning_projections::resume(&path, store).await? {
            gryning_projections::Resumed::From(p) if p.position() == position => Some(p),
            _ => None,
        };
        let Some(mut p) = fits else {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
            continue;
        };
        p.forget_cases(doomed_cases, Some(record_position));
        let mut origin = gryning_projections::origin_of(store, position).await?;
        if erased_positions.contains(&position) {
            origin.event_id = None;
        }
        p.save_checkpoint(&path, &origin)?;
    }
    snapshots.keep_below(record_position)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_years_months_and_days_and_refuses_the_rest() {
        assert_eq!(Limit::parse("5y").unwrap(), Limit::Years(5));
        assert_eq!(Limit::parse("18m").unwrap(), Limit::Months(18));
        assert_eq!(Limit::parse("400d").unwrap(), Limit::Days(400));
        for bad in [
            "",
            "5",
            "y",
            "-5y",
            "5w",
            "5 y",
            "0d",
            "1.5y",
            "5Y",
            "99999999999999999999d",
        ] {
            let e = Limit::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--older-than"), "{bad:?}: {e}");
        }
        let today = Date::from_ymd(2026, 3, 31).unwrap();
        assert_eq!(
            Limit::Months(1).cutoff(today).unwrap(),
            Date::from_ymd(2026, 2, 28).unwrap()
        );
        assert_eq!(
            Limit::Years(5).cutoff(today).unwrap(),
            Date::from_ymd(2021, 3, 31).unwrap()
        );
    }
}
