//! A batch is recorded as if its events were recorded one by one, in submission order: for any
//! mix of new events, resends (same id, same content, whether or not they break a lifecycle
//! rule), reused ids (same id, other content) and rule breaks, split into batches of any sizes,
//! every outcome and every stored position equals that of recording the events singly, so the
//! accepted events' positions increase in submission order.

use std::sync::Arc;

use gryning_domain::{
    AgeGroup, Body, Catalogue, ClosureReason, CrimeCode, Date, Event, Gender, ProsecutionDecision,
    Subject, TreatmentOutcome, Uuid,
};
use gryning_recording::{Outcome, Recorder, Submission};
use gryning_store::{sqlite::SqliteStore, EventStore};
use proptest::prelude::*;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x6f1c_0000_0000_4000_8000_0000_0000_0000 | n)
}

/// One submission, as numbers proptest can shrink.
#[derive(Clone, Debug)]
enum Step {
    /// A new event of body kind `kind` on case (or client) `stream`, naming crime `crime`.
    New {
        kind: u8,
        stream: u8,
        crime: u8,
        day: u8,
    },
    /// An earlier submission again, unchanged.
    Resend(usize),
    /// An earlier submission's id with other content (another date).
    Reuse(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..8, 0u8..3, 0u8..3, 0u8..4).prop_map(|(kind, stream, crime, day)| Step::New {
            kind,
            stream,
            crime,
            day
        }),
        2 => any::<usize>().prop_map(Step::Resend),
        1 => any::<usize>().prop_map(Step::Reuse),
    ]
}

fn new_event(n: usize, kind: u8, stream: u8, crime: u8, day: u8) -> Event {
    let crime_id = id(500 + u128::from(crime));
    let code = |c: &str| CrimeCode::parse(c).unwrap();
    let body = match kind {
        0 => Body::CaseOpened {
            lead_crime_code: code("4024"),
            police_region: "Polisregion Stockholm".into(),
            local_police_area: "Farsta".into(),
        },
        1 => Body::CrimeReported {
            crime_id,
            crime_code: code("4024"),
            victim_gender: Gender::Female,
            victim_age_group: AgeGroup::Adult,
        },
        2 => Body::CrimeReclassified {
            crime_id,
            crime_code: code("0609"),
        },
        3 => Body::CaseReferredToProsecutor,
        4 => Body::ProsecutionDecided {
            crime_id,
            decision: ProsecutionDecision::Indictment,
        },
        5 => Body::InvestigationClosed {
            crime_ids: vec![crime_id],
            reason: ClosureReason::NoSuspect,
        },
        6 => Body::TreatmentProgrammeStarted {
            programme: "IDAP".into(),
        },
        _ => Body::TreatmentProgrammeEnded {
            outcome: TreatmentOutcome::Completed,
        },
    };
    let subject = if kind >= 6 {
        Subject::Client(id(200 + u128::from(stream)))
    } else {
        Subject::Case(id(100 + u128::from(stream)))
    };
    Event {
        event_id: id(1000 + n as u128),
        occurred_on: Date::parse(&format!("2020-01-1{day}")).unwrap(),
        subject,
        body,
    }
}

fn events(steps: &[Step]) -> Vec<Event> {
    let mut events: Vec<Event> = Vec::with_capacity(steps.len());
    for (n, step) in steps.iter().enumerate() {
        let event = match *step {
            Step::Resend(k) if n > 0 => events[k % n].clone(),
            Step::Reuse(k) if n > 0 => {
                let mut other = events[k % n].clone();
                other.occurred_on = Date::parse("2020-02-01").unwrap();
                other
            }
            Step::New {
                kind,
                stream,
                crime,
                day,
            } => new_event(n, kind, stream, crime, day),
            _ => new_event(n, 0, 0, 0, 0),
        };
        events.push(event);
    }
    events
}

/// What a user sees of one outcome: stored where and as which version, a duplicate of what,
/// or the rejection's reason.
fn seen(result: &Result<Outcome, gryning_recording::Rejection>) -> String {
    match result {
        Ok(Outcome::Stored { position, version }) => format!("stored at {position} as v{version}"),
        Ok(Outcome::Duplicate { position }) => format!("duplicate of {position}"),
        Err(e) => e.reason().to_owned(),
    }
}

fn recorder(dir: &tempfile::TempDir) -> Recorder {
    let store: Arc<dyn EventStore> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    Recorder::new(store, Arc::new(Catalogue::default_catalogue()))
        .with_today(Date::parse("2021-06-30").unwrap())
}

async fn singly(events: &[Event]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let recorder = recorder(&dir);
    let mut seen_all = Vec::new();
    for event in events {
        seen_all.push(seen(
            &recorder.record(Submission::from(event.clone())).await,
        ));
    }
    seen_all
}

async fn in_batches(events: &[Event], sizes: &[usize]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let recorder = recorder(&dir);
    let mut results = Vec::new();
    let mut rest = events;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let take = (*sizes.next().unwrap()).clamp(1, rest.len());
        let (batch, later) = rest.split_at(take);
        let submissions = batch.iter().cloned().map(Submission::from).collect();
        results.extend(recorder.record_batch(submissions).await);
        rest = later;
    }
    // The accepted events' positions increase in submission order.
    let positions: Vec<u64> = results
        .iter()
        .filter_map(|r| match r {
            Ok(Outcome::Stored { position, .. }) => Some(*position),
            _ => None,
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "stored out of submission order: {positions:?}"
    );
    let head = recorder.store().head().await.unwrap();
    assert_eq!(
        head,
        positions.len() as u64,
        "only accepted events are stored"
    );
    results.iter().map(seen).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_batch_records_as_if_one_by_one_in_order(
        steps in prop::collection::vec(step(), 1..40),
        sizes in prop::collection::vec(1usize..40, 1..4),
    ) {
        let events = events(&steps);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (one_by_one, batched) =
            runtime.block_on(async { (singly(&events).await, in_batches(&events, &sizes).await) });
        prop_assert_eq!(batched, one_by_one);
    }
}

/// The case that broke file order: a resent referral (it breaks no rule, so only the id lookup
/// tells it is a resend) and a resent reclassification in the middle of a batch, followed by
/// events of the same and of other cases.
#[tokio::test]
async fn resends_that_break_no_rule_keep_the_batch_in_order() {
    let steps = [
        Step::New {
            kind: 0,
            stream: 0,
            crime: 0,
            day: 0,
        },
        Step::New {
            kind: 1,
            stream: 0,
            crime: 0,
            day: 0,
        },
        Step::New {
            kind: 3,
            stream: 0,
            crime: 0,
            day: 1,
        },
        Step::New {
            kind: 2,
            stream: 0,
            crime: 0,
            day: 1,
        },
        Step::New {
            kind: 0,
            stream: 1,
            crime: 0,
            day: 1,
        },
        Step::Resend(2),
        Step::Resend(3),
        Step::New {
            kind: 1,
            stream: 0,
            crime: 1,
            day: 2,
        },
        Step::New {
            kind: 1,
            stream: 1,
            crime: 0,
            day: 2,
        },
        Step::New {
            kind: 4,
            stream: 0,
            crime: 0,
            day: 3,
        },
    ];
    let events = events(&steps);
    let batched = in_batches(&events, &[events.len()]).await;
    assert_eq!(batched, singly(&events).await);
    assert_eq!(
        batched,
        [
            "stored at 1 as v1",
            "stored at 2 as v2",
            "stored at 3 as v3",
            "stored at 4 as v4",
            "stored at 5 as v1",
            "duplicate of 3",
            "duplicate of 4",
            "stored at 6 as v5",
            "stored at 7 as v2",
            "stored at 8 as v6",
        ]
    );
}
