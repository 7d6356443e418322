//! Publishing a quarter: every table of the contract, computed from the projections, recorded
//! through the one `Recorder` as a `TablesPublished` event in the quarter's stream
//! (`publication-2020-Q4`), so a publication has the durability, idempotency, optimistic
//! concurrency and crash safety of every other event. Its revision is its version in that
//! stream: revision 1 is recorded only at expected version 0, so of several writers publishing
//! revision 1 at once exactly one wins, and the lifecycle rule `revision-must-be-next` refuses
//! the others once the recorder has re-read the stream.
//!
//! Used by `gryning publish` (offline), `Insight.Publish` and `gryning up`'s automatic
//! publisher ([`run_automatic`]), which publishes each quarter once it has ended by
//! `publish_after_days` days in the Europe/Stockholm calendar.

use std::sync::Arc;
use std::time::Duration;

use gryning_domain::{
    Body, Catalogue, Date, Event, Publication, Quarter, QuarterError, Rule, Subject, Uuid,
};
use gryning_projections::publication::ReadError;
use gryning_projections::Projections;
use gryning_recording::{Outcome, Recorder, Rejection, Submission};

use crate::context::Context;
use crate::LiveProjections;

/// The principal `gryning up`'s automatic publisher records as (role admin).
pub const AUTOMATIC_PRINCIPAL: &str = "gryning-up";
/// The principal of an offline `gryning publish` on a data directory.
pub const OFFLINE_PRINCIPAL: &str = "offline";

/// Times a manual publication re-reads the stream when another writer recorded a revision
/// between its read and its append.
const REVISION_RETRIES: usize = 8;

/// How often the automatic publisher looks for a quarter that has become due.
const CHECK_EVERY: Duration = Duration::from_secs(600);

/// Why a quarter was not published, or a publication not read.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// `field`: the request's field naming the quarter (`quarter`, or GetTable's `published`).
    #[error("field {field}: {error}")]
    Quarter {
        field: &'static str,
        error: QuarterError,
    },
    #[error("field quarter: quarter {quarter} has not ended: it ends on {last_day}, and today is {today} in the Europe/Stockholm calendar; a quarter can be published from the day after its end (value \"{quarter}\")")]
    NotEnded {
        quarter: Quarter,
        last_day: Date,
        today: Date,
    },
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("quarter {quarter}: other writers kept recording revisions; try again")]
    Contended { quarter: Quarter },
}

/// Parses a request's quarter (its field `quarter`).
pub fn parse_quarter(text: &str) -> Result<Quarter, PublishError> {
    parse_quarter_in("quarter", text)
}

/// Parses a quarter given in the request's field `field`.
pub fn parse_quarter_in(field: &'static str, text: &str) -> Result<Quarter, PublishError> {
    Quarter::parse(text).map_err(|error| PublishError::Quarter { field, error })
}

/// Refuses a note that is not free text (at most 200 bytes, no control characters, no
/// personal identity or coordination number), naming the request's field `note`.
pub fn check_note(note: &str) -> Result<(), PublishError> {
    gryning_domain::validate::free_text("note", note)
        .map_err(|e| PublishError::Rejected(Rejection::Invalid(e)))
}

/// Refuses a quarter that has not ended by `today`.
pub fn check_ended(quarter: Quarter, today: Date) -> Result<(), PublishError> {
    if quarter.last_day() >= today {
        return Err(PublishError::NotEnded {
            quarter,
            last_day: quarter.last_day(),
            today,
        });
    }
    Ok(())
}

/// A publication's content from `projections` (revision still to be decided).
pub fn compute(
    projections: &Projections,
    catalogue: &Catalogue,
    quarter: Quarter,
    note: &str,
    principal: &str,
    automatic: bool,
    now: jiff::Timestamp,
) -> Publication {
    Publication {
        quarter,
        revision: 0,
        position: projections.position(),
        catalogue_version: catalogue.version().to_string(),
        catalogue_sha256: catalogue.content_sha256().to_string(),
        published_at: crate::context::recorded_at(now),
        principal: principal.to_string(),
        note: note.to_string(),
        automatic,
        tables: projections.publish_tables(quarter, catalogue),
    }
}

/// Records `publication` as its quarter's next revision: the stored position and the
/// publication as recorded. An automatic publication is recorded only as revision 1: `None`
/// when the quarter already has one (another replica, or an earlier run, published it).
pub async fn record(
    recorder: &Recorder,
    mut publication: Publication,
    metadata: Vec<u8>,
) -> Result<Option<(u64, Publication)>, PublishError> {
    let quarter = publication.quarter;
    let stream = quarter.stream_name();
    let today = recorder.clock().today();
    for _ in 0..REVISION_RETRIES {
        let version = recorder
            .store()
            .stream_version(&stream)
            .await
            .map_err(Rejection::Store)?;
        if publication.automatic && version > 0 {
            return Ok(None);
        }
        publication.revision = u32::try_from(version + 1).unwrap_or(u32::MAX);
        let event = Event {
            event_id: Uuid::new_v4(),
            occurred_on: today,
            subject: Subject::Publication(quarter),
            body: Body::TablesPublished(Box::new(publication.clone())),
        };
        let submission = Submission {
            event,
            metadata: metadata.clone(),
        };
        match recorder.record(submission).await {
            Ok(Outcome::Stored { position, .. } | Outcome::Duplicate { position }) => {
                return Ok(Some((position, publication)))
            }
            Err(Rejection::Invalid(gryning_domain::Error::Lifecycle {
                rule: Rule::RevisionMustBeNext,
                ..
            })) => {
                if publication.automatic {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(PublishError::Contended { quarter })
}

/// The quarters due for automatic publication on `today`: from the quarter of `earliest` (the
/// earliest stored event's date) to the last quarter that ended at least `after_days` days
/// before `today`.
pub fn due_quarters(earliest: Option<Date>, today: Date, after_days: u32) -> Vec<Quarter> {
    let Some(earliest) = earliest else {
        return Vec::new();
    };
    let mut due = Vec::new();
    let mut q = Quarter::of(earliest);
    while q
        .last_day()
        .add_days(i32::try_from(after_days).unwrap_or(i32::MAX))
        < today
    {
        due.push(q);
        q = q.next();
    }
    due
}

/// One pass of the automatic publisher: publishes each due quarter that has no publication.
/// Returns the quarters it recorded.
pub async fn publish_due(
    ctx: &Context,
    live: &LiveProjections,
) -> Result<Vec<Quarter>, PublishError> {
    let now = ctx.recorder.clock().now();
    let today = Date::in_stockholm(now);
    let earliest = live.read(|p| p.earliest_date());
    let mut recorded = Vec::new();
    for quarter in due_quarters(earliest, today, ctx.settings.publish_after_days) {
        if live.read(|p| p.publication(quarter, None).is_some()) {
            tracing::info!(%quarter, "the quarter is already published; not publishing it again");
            continue;
        }
        let publication = live.read(|p| {
            compute(
                p,
                &ctx.catalogue,
                quarter,
                "",
                AUTOMATIC_PRINCIPAL,
                true,
                now,
            )
        });
        let metadata = crate::context::metadata_of(AUTOMATIC_PRINCIPAL, "admin", now);
        match record(&ctx.recorder, publication, metadata).await? {
            Some((position, p)) => {
                tracing::info!(%quarter, position, computed_at = p.position, "published the quarter automatically");
                recorded.push(quarter);
            }
            None => {
                tracing::info!(%quarter, "the quarter is already published; not publishing it again")
            }
        }
    }
    Ok(recorded)
}

/// `gryning up`'s automatic publisher: a pass at start, then every [`CHECK_EVERY`], until
/// shutdown. A failed pass is logged and tried again at the next.
pub async fn run_automatic(ctx: Arc<Context>, live: Arc<LiveProjections>) {
    let mut shutdown = ctx.shutdown_signal();
    loop {
        if let Err(e) = publish_due(&ctx, &live).await {
            tracing::warn!(error = %e, "automatic publication failed; trying again later");
        }
        tokio::select! {
            _ = tokio::time::sleep(CHECK_EVERY) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> Date {
        Date::parse(text).unwrap()
    }

    #[test]
    fn a_quarter_is_due_once_its_grace_period_has_passed() {
        let names = |v: Vec<Quarter>| v.iter().map(|q| q.to_string()).collect::<Vec<_>>();
        let earliest = Some(date("2020-08-03"));
        // 2020-Q4 ends on 31 December; 15 days later is 15 January.
        assert_eq!(
            names(due_quarters(earliest, date("2021-01-15"), 15)),
            ["2020-Q3"]
        );
        assert_eq!(
            names(due_quarters(earliest, date("2021-01-16"), 15)),
            ["2020-Q3", "2020-Q4"]
        );
        assert_eq!(
            names(due_quarters(earliest, date("2021-01-01"), 0)),
            ["2020-Q3", "2020-Q4"]
        );
        assert!(due_quarters(None, date("2021-01-16"), 15).is_empty());
    }

    #[test]
    fn only_an_ended_quarter_may_be_published() {
        let q = Quarter::parse("2020-Q4").unwrap();
        let e = check_ended(q, date("2020-12-31")).unwrap_err().to_string();
        assert!(
            e.contains("has not ended") && e.contains("2020-12-31"),
            "{e}"
        );
        check_ended(q, date("2021-01-01")).unwrap();
    }
}
