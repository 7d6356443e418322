//! Tables as they stood at an earlier point of the log: after a store position, or with the
//! events recorded before an instant (an RFC 3339 time, or the end of a Stockholm calendar day).
//!
//! An as-of query does not replay the whole log. The projections' state is kept as
//! **snapshots**: checkpoint files under `snapshots/` in the data directory, one per
//! `snapshot_every` events (named by their position, `00000000000001000000.ckpt`). A query
//! starts from the latest snapshot (or the checkpoint) at or before its point that fits the
//! store — the same checks as resuming from a checkpoint — and replays only the events between
//! it and the point, so its work is bounded by the snapshot interval, not by the log's length.
//!
//! **Time.** An event's recording time is the `recorded_at` of its stored metadata. "As of T"
//! is the longest prefix of the log whose events were all recorded before T: the replay stops
//! at the first event recorded at or after T. On one writer the recording times never decrease
//! along the log, so this is exactly "every event recorded before T". An event without a time
//! (imported offline before import stamped events) belongs to the prefix it is in: it never ends
//! one. A snapshot serves a time query only when the event at its position has a time before T.

use std::fs;
use std::path::{Path, PathBuf};

use gryning_store::{EventStore, Position};
use jiff::{civil, Timestamp};

use crate::checkpoint::Origin;
use crate::{resume, Error, Projections, Resumed, BATCH_SIZE};

/// The directory, under the data directory, that holds the snapshots.
pub const SNAPSHOT_DIR: &str = "snapshots";

/// In the snapshot directory: the position below which the snapshots are retention's.
pub const KEPT_BELOW_FILE: &str = "kept-below";

/// Where in the log an as-of query stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsOf {
    /// After the event at this global position (0: before the first event).
    Position(Position),
    /// With the events recorded strictly before this instant.
    Before(Timestamp),
}

impl AsOf {
    /// Reads `123` (a position), an RFC 3339 instant (`2021-01-20T12:00:00+01:00`: the events
    /// recorded at or before it), or a date (`2021-01-20`: the events recorded before the next
    /// midnight in Stockholm, that is, up to the end of that day). The error says which forms
    /// are accepted.
    pub fn parse(text: &str) -> Result<AsOf, String> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse()
                .map(AsOf::Position)
                .map_err(|_| format!("the position {text} is too large"));
        }
        AsOf::parse_time(text)
    }

    /// Like [`AsOf::parse`] but only the time forms (an instant or a date).
    pub fn parse_time(text: &str) -> Result<AsOf, String> {
        let text = text.trim();
        let forms = "a store position (123), an RFC 3339 instant (2021-01-20T12:00:00+01:00) or a date (2021-01-20, up to the end of that day in Stockholm)";
        if text.len() == 10 {
            let date: civil::Date = text
                .parse()
                .map_err(|e| format!("{text:?} is not a valid date ({e}); use {forms}"))?;
            let next = date
                .tomorrow()
                .map_err(|e| format!("{text:?} is the last date there is ({e})"))?;
            let midnight = next
                .to_zoned(gryning_domain::date::stockholm().clone())
                .map_err(|e| format!("{text:?}: {e}"))?;
            return Ok(AsOf::Before(midnight.timestamp()));
        }
        let instant: Timestamp = text.parse().map_err(|e| {
            format!("{text:?} is neither a position, a time nor a date ({e}); use {forms}")
        })?;
        // Recording times are whole seconds: the events recorded at or before `instant` are
        // those recorded before the next nanosecond.
        instant
            .checked_add(jiff::SignedDuration::from_nanos(1))
            .map(AsOf::Before)
            .map_err(|e| format!("{text:?}: {e}"))
    }
}

/// The snapshots of a data directory.
#[derive(Clone, Debug)]
pub struct Snapshots {
    dir: PathBuf,
}

/// What an as-of query replayed, for the caller to report.
#[derive(Debug)]
pub struct Past {
    /// The state at the query's point.
    pub projections: Projections,
    /// The position of the snapshot or checkpoint it started from (`None`: the first event).
    pub started_from: Option<Position>,
    /// Events applied after that start.
    pub replayed: u64,
    /// Snapshots that could not serve (damaged, another store or format), with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

impl Snapshots {
    /// The snapshots under `data_dir/snapshots`.
    pub fn in_data_dir(data_dir: &Path) -> Snapshots {
        Snapshots {
            dir: data_dir.join(SNAPSHOT_DIR),
        }
    }

    /// The position of the latest retention record: the snapshots below it are the ones
    /// retention changed, kept as they are (0 when retention never ran).
    pub fn kept_below(&self) -> Position {
        fs::read_to_string(self.dir.join(KEPT_BELOW_FILE))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Records that the snapshots below `position` are retention's, never to be replaced.
    pub fn keep_below(&self, position: Position) -> Result<(), Error> {
        let path = self.dir.join(KEPT_BELOW_FILE);
        fs::create_dir_all(&self.dir).map_err(|source| Error::Io {
            path: self.dir.clone(),
            source,
        })?;
        fs::write(&path, format!("{position}\n")).map_err(|source| Error::Io { path, source })
    }

    /// The directory of the snapshots.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every snapshot file, by position, lowest first (files with other names are ignored).
    pub fn list(&self) -> Vec<(Position, PathBuf)> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found: Vec<(Position, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let position = name.strip_suffix(".ckpt")?.parse().ok()?;
                Some((position, e.path()))
            })
            .collect();
        found.sort();
        found
    }

    /// Keeps the checkpoint just written at `checkpoint` (state at `position`) as the snapshot
    /// of its interval of `every` events, replacing any other snapshot of that interval. The
    /// checkpoint is renamed into place whole by its writer, so a hard link is a consistent
    /// copy that costs no bytes; where links are not possible the file is copied.
    pub fn keep(&self, checkpoint: &Path, position: Position, every: u64) -> Result<(), Error> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        // Below a retention's record the snapshots retention changed are kept: a replay of
        // the log there no longer sees the erased events, so it cannot take their place.
        if position < self.kept_below() {
            return Ok(());
        }
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let name = self.dir.join(format!("{position:020}.ckpt"));
        let tmp = self.dir.join(format!("{position:020}.ckpt.tmp"));
        let _ = fs::remove_file(&tmp);
        if fs::hard_link(checkpoint, &tmp).is_err() {
            fs::copy(checkpoint, &tmp).map_err(io(&tmp))?;
            fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(io(&tmp))?;
        }
        fs::rename(&tmp, &name).map_err(io(&name))?;
        if let Some(interval) = position.checked_div(every) {
            for (other, path) in self.list() {
                if other != position && other.checked_div(every) == Some(interval) {
                    let _ = fs::remove_file(path);
                }
            }
        }
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.dir))?;
        Ok(())
    }
}

/// Whether moving from `before` to `after` crosses a multiple of `every` (never when `every`
/// is 0): the moment to keep a snapshot.
pub fn crosses_interval(before: Position, after: Position, every: u64) -> bool {
    every > 0 && after / every > before / every
}

/// The state at `at`, from the latest snapshot at or before it that fits `store`, plus the
/// events between. Without snapshots it replays from the first event. (The checkpoint is not
/// a candidate: it is usually past the point, and telling would mean loading it.)
pub async fn as_of(
    store: &dyn EventStore,
    snapshots: Option<&Snapshots>,
    at: AsOf,
) -> Result<Past, Error> {
    let head = store.head().await?;
    let candidates: Vec<(Position, PathBuf)> = snapshots.map(Snapshots::list).unwrap_or_default();
    let mut skipped = Vec::new();
    let mut start: Option<Projections> = None;
    for (position, path) in candidates.into_iter().rev() {
        let usable = match at {
            AsOf::Position(p) => position <= p.min(head),
            AsOf::Before(limit) => {
                position <= head
                    && match time_at(store, position).await? {
                        Some(t) => t < limit,
                        None => position == 0,
                    }
            }
        };
        if !usable {
            continue;
        }
        match resume(&path, store).await? {
            // A snapshot that retention changed holds the erased streams' contribution up to
            // its own position: it may start a query that ends before the erasure's record,
            // never one that would fold the record in again.
            Resumed::From(p)
                if p.position() == position && before_erasure(store, &p, at).await? =>
            {
                start = Some(p);
                break;
            }
            Resumed::From(_) | Resumed::NoCheckpoint => {}
            Resumed::Discarded(why) => skipped.push((path, why.to_string())),
        }
    }
    let started_from = start.as_ref().map(Projections::position);
    let mut projections = start.unwrap_or_default();
    let replayed = match at {
        AsOf::Position(p) => {
            crate::catch_up(&mut projections, store, Some(p.min(head)), |_| {}).await?
        }
        AsOf::Before(limit) => replay_before(&mut projections, store, limit).await?,
    };
    Ok(Past {
        projections,
        started_from,
        replayed,
        skipped,
    })
}

/// Whether a query `at` ends before the erasure record a snapshot stands before, if any.
async fn before_erasure(store: &dyn EventStore, p: &Projections, at: AsOf) -> Result<bool, Error> {
    let Some(record) = p.valid_below() else {
        return Ok(true);
    };
    Ok(match at {
        AsOf::Position(target) => target < record,
        AsOf::Before(limit) => time_at(store, record).await?.is_some_and(|t| t >= limit),
    })
}

/// The recording time of the event at `position` (`None` at 0, or when it has none).
async fn time_at(store: &dyn EventStore, position: Position) -> Result<Option<Timestamp>, Error> {
    if position == 0 {
        return Ok(None);
    }
    let found = store.read_all(position - 1, 1).await?;
    Ok(found
        .first()
        .filter(|e| e.position == position)
        .and_then(|e| gryning_proto::recorded_at(&e.metadata)))
}

/// Applies the events after the state's position until the first one recorded at or after
/// `limit`.
async fn replay_before(
    projections: &mut Projections,
    store: &dyn EventStore,
    limit: Timestamp,
) -> Result<u64, Error> {
    let mut applied = 0;
    loop {
        let batch = store.read_all(projections.position(), BATCH_SIZE).await?;
        if batch.is_empty() {
            return Ok(applied);
        }
        for recorded in &batch {
            if gryning_proto::recorded_at(&recorded.metadata).is_some_and(|t| t >= limit) {
                return Ok(applied);
            }
            let event =
                gryning_proto::decode_event(&recorded.payload).map_err(|source| Error::Decode {
                    position: recorded.position,
                    source,
                })?;
            projections.apply(recorded.position, &event);
            applied += 1;
        }
    }
}

/// Catches `projections` up to `target`, saving the checkpoint at `checkpoint` and keeping a
/// snapshot each time the state crosses a multiple of `every` events (and nothing when `every`
/// is 0). `origin` gives the checkpoint's origin at a position; `progress` sees each position
/// reached. Returns the events applied.
pub async fn catch_up_keeping_snapshots(
    projections: &mut Projections,
    store: &dyn EventStore,
    target: Position,
    snapshots: &Snapshots,
    checkpoint: &Path,
    every: u64,
    mut progress: impl FnMut(u64),
) -> Result<u64, Error> {
    let mut applied = 0;
    loop {
        let at = projections.position();
        let stop = match at.checked_div(every) {
            None => target,
            Some(interval) => target.min((interval + 1).saturating_mul(every)),
        };
        applied += crate::catch_up(projections, store, Some(stop), &mut progress).await?;
        let reached = projections.position();
        if crosses_interval(at, reached, every) {
            let origin: Origin = crate::origin_of(store, reached).await?;
            projections.save_checkpoint(checkpoint, &origin)?;
            snapshots.keep(checkpoint, reached, every)?;
        }
        if reached >= target || reached == at {
            return Ok(applied);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_positions_instants_and_dates() {
        assert_eq!(AsOf::parse("0"), Ok(AsOf::Position(0)));
        assert_eq!(AsOf::parse(" 1234 "), Ok(AsOf::Position(1234)));
        let t: Timestamp = "2021-01-20T11:00:00.000000001Z".parse().unwrap();
        assert_eq!(
            AsOf::parse("2021-01-20T12:00:00+01:00"),
            Ok(AsOf::Before(t))
        );
        // The end of 2021-01-20 in Stockholm (winter, +01:00) is 23:00 UTC.
        let winter: Timestamp = "2021-01-20T23:00:00Z".parse().unwrap();
        assert_eq!(AsOf::parse("2021-01-20"), Ok(AsOf::Before(winter)));
        // In summer time (+02:00) the day ends at 22:00 UTC.
        let summer: Timestamp = "2021-06-15T22:00:00Z".parse().unwrap();
        assert_eq!(AsOf::parse("2021-06-15"), Ok(AsOf::Before(summer)));
    }

    #[test]
    fn refuses_what_is_no_point_of_the_log() {
        for bad in [
            "",
            "2020-13-01",
            "2020-02-30",
            "yesterday",
            "-5",
            "2021-01-20T25:00:00Z",
        ] {
            let e = AsOf::parse(bad).unwrap_err();
            assert!(e.contains("RFC 3339") || e.contains("date"), "{bad}: {e}");
        }
        assert!(AsOf::parse("99999999999999999999999")
            .unwrap_err()
            .contains("too large"));
        assert!(AsOf::parse_time("12").is_err());
    }

    #[test]
    fn an_interval_is_crossed_once() {
        assert!(!crosses_interval(0, 999, 1000));
        assert!(crosses_interval(999, 1000, 1000));
        assert!(crosses_interval(10, 2500, 1000));
        assert!(!crosses_interval(1000, 1999, 1000));
        assert!(!crosses_interval(0, 1_000_000, 0));
    }
}
