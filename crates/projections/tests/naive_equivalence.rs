//! The incremental projections equal the naive recomputation on random valid histories, for
//! every table, `--by` and `--period`; and a state checkpointed halfway, reloaded and fed the
//! rest equals the one fed everything. A second property sends the same histories through the
//! real ingestion path (recorder and embedded store), salted with resent events and reused event
//! ids, and checks that what the store then projects still equals the naive recomputation over
//! the history without them.

use std::collections::HashMap;

use gryning_domain::lifecycle::StreamState;
use gryning_domain::{
    AgeGroup, Body, Catalogue, ClosureReason, CrimeCode, Date, Event, Gender, ProsecutionDecision,
    Subject, SupportKind, TreatmentOutcome, Uuid,
};
use gryning_projections::{
    explain, load_checkpoint, naive, By, Cell, Origin, PeriodKind, Projections, TableName,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Codes in one group (9365, 4012, 9381), in two overlapping ones (0418), in three (0610), and
/// in none (0419 is only in "Människohandel…", 4024 only in "Sexualbrott"); and codes the
/// shipped catalogue's versions map: 9605 (2020.1 splits it by victim gender), 9691 (2019.1 takes
/// it back by victim gender), 9382 (back into 9365) and 0456 (split into codes of no group).
const CODES: [&str; 11] = [
    "9365", "4012", "9381", "0418", "0610", "4024", "0419", "9605", "9691", "9382", "0456",
];

/// Local police areas of the cases: the pilot's two and one other.
const AREAS: [&str; 3] = ["Farsta", "Skärholmen", "Norrmalm"];

/// One random step: what to try, a few choice numbers, and a date offset within 2019–2021.
type Step = (u8, u8, u8, u16);

fn build(steps: &[Step]) -> Vec<Event> {
    let start = Date::parse("2019-01-01").unwrap();
    let mut streams: HashMap<Subject, StreamState> = HashMap::new();
    let mut events = Vec::new();
    for (n, &(kind, a, b, offset)) in steps.iter().enumerate() {
        let code = |x: u8| CrimeCode::parse(CODES[usize::from(x) % CODES.len()]).unwrap();
        let case = Subject::Case(Uuid::from_u128(100 + u128::from(a % 4)));
        let client = Subject::Client(Uuid::from_u128(200 + u128::from(a % 3)));
        let mut date = start.add_days(i32::from(offset % 1096));
        let state = |s: &Subject| streams.get(s).cloned().unwrap_or_default();
        // The crimes reported in the case so far, in a stable order.
        let crimes_of = |s: &StreamState| -> Vec<Uuid> {
            let mut ids: Vec<Uuid> = match s {
                StreamState::Case(c) => c.crimes.iter().copied().collect(),
                _ => vec![],
            };
            ids.sort();
            ids
        };
        let pick = |s: &StreamState, x: u8| {
            let ids = crimes_of(s);
            (!ids.is_empty()).then(|| ids[usize::from(x) % ids.len()])
        };
        let (subject, body) = match kind % 100 {
            0..10 => (
                case,
                Body::CaseOpened {
                    lead_crime_code: code(b),
                    // Three regions, one of them not a police region's name.
                    police_region: [
                        "Polisregion Stockholm",
                        "Polisregion Syd",
                        "R",
                        "Polisregion Stockholm",
                    ][usize::from(a % 4)]
                    .into(),
                    local_police_area: AREAS[usize::from(b / 7) % AREAS.len()].into(),
                },
            ),
            // Crime ids 1–6 are reused across cases: they are unique per case only.
            10..32 => (
                case,
                Body::CrimeReported {
                    crime_id: Uuid::from_u128(1 + u128::from(b % 6)),
                    crime_code: code(b / 6),
                    victim_gender: Gender::ALL[usize::from(b) % 3],
                    victim_age_group: AgeGroup::Adult,
                },
            ),
            32..40 => match pick(&state(&case), b) {
                Some(crime_id) => (
                    case,
                    Body::CrimeReclassified {
                        crime_id,
                        crime_code: code(b / 7),
                    },
                ),
                None => continue,
            },
            40..45 => (
                case,
                Body::CaseReclassified {
                    lead_crime_code: code(b),
                },
            ),
            45..56 => (case, Body::CaseReferredToProsecutor),
            56..64 => {
                let ids: Vec<Uuid> = crimes_of(&state(&case))
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| b >> (i % 8) & 1 == 1)
                    .map(|(_, id)| id)
                    .collect();
                if ids.is_empty() {
                    continue;
                }
                (
                    case,
                    Body::InvestigationClosed {
                        crime_ids: ids,
                        reason: ClosureReason::InsufficientEvidence,
                    },
                )
            }
            64..78 => match pick(&state(&case), b) {
                Some(crime_id) => {
                    let decision = [
                        ProsecutionDecision::Indictment,
                        ProsecutionDecision::SummaryPenaltyOrder,
                        ProsecutionDecision::WaiverOfProsecution,
                        ProsecutionDecision::NoProsecution,
                    ][usize::from(b / 7) % 4];
                    (case, Body::ProsecutionDecided { crime_id, decision })
                }
                None => continue,
            },
            78..82 => (case, Body::ContractCareProposed),
            82..84 => (case, Body::ChildWelfareNotified),
            84..91 => (
                client,
                Body::TreatmentProgrammeStarted {
                    programme: "IDAP".into(),
                },
            ),
            91..97 => {
                // An end is never dated before its start.
                if let StreamState::Client(c) = state(&client) {
                    if let Some(since) = c.running_since {
                        date = date.max(since);
                    }
                }
                let outcome = if b % 2 == 0 {
                    TreatmentOutcome::Completed
                } else {
                    TreatmentOutcome::Discontinued
                };
                (client, Body::TreatmentProgrammeEnded { outcome })
            }
            _ => (
                client,
                Body::SupportGranted {
                    kind: [
                        SupportKind::ProtectedHousing,
                        SupportKind::SupportTalks,
                        SupportKind::Other,
                    ][usize::from(b) % 3],
                    gender: Gender::ALL[usize::from(b / 3) % 3],
                    age_group: [AgeGroup::Child, AgeGroup::Adult, AgeGroup::Unknown]
                        [usize::from(b / 9) % 3],
                },
            ),
        };
        let event = Event {
            event_id: Uuid::from_u128(0xE000 + n as u128),
            occurred_on: date,
            subject,
            body,
        };
        let stream = streams.entry(subject).or_default();
        if stream.check(&event).is_ok() {
            stream.apply(&event);
            events.push(event);
        }
    }
    events
}

fn project(events: &[Event], from: usize, mut p: Projections) -> Projections {
    for (i, event) in events.iter().enumerate().skip(from) {
        p.apply(i as u64 + 1, event);
    }
    p
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    // Opening cases early makes most later steps valid.
    let opens = prop::collection::vec((0u8..10, any::<u8>(), any::<u8>(), any::<u16>()), 1..5);
    let rest = prop::collection::vec(
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u16>()),
        0..150,
    );
    (opens, rest).prop_map(|(mut a, b)| {
        a.extend(b);
        a
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn incremental_equals_naive_and_survives_a_checkpoint(steps in steps(), split in any::<prop::sample::Index>()) {
        let catalogue = Catalogue::default_catalogue();
        let events = build(&steps);
        let whole = project(&events, 0, Projections::new());

        let half = split.index(events.len() + 1);
        let first = project(&events[..half], 0, Projections::new());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("projections.ckpt");
        let origin = Origin {
            store: gryning_store::StoreIdentity { backend: "sqlite".into(), id: "a-test-store".into() },
            event_id: (half > 0).then(|| events[half - 1].event_id),
        };
        first.save_checkpoint(&path, &origin).unwrap();
        let checkpoint = load_checkpoint(&path).unwrap().unwrap();
        prop_assert_eq!(&checkpoint.origin, &origin);
        let reloaded = checkpoint.projections;
        prop_assert_eq!(&reloaded, &first);
        prop_assert_eq!(reloaded.position(), half as u64);
        let resumed = project(&events, half, reloaded);
        prop_assert_eq!(&resumed, &whole);

        for name in TableName::ALL {
            for by in By::ALL {
                for period in PeriodKind::ALL {
                    let expected = naive::table(&events, name, by, period, &catalogue);
                    prop_assert_eq!(&whole.table(name, by, period, &catalogue), &expected, "{:?} {:?} {:?}", name, by, period);
                    prop_assert_eq!(&resumed.table(name, by, period, &catalogue), &expected);
                }
            }
            // One region's tables, the region counted from each case's CaseOpened by the
            // naive path itself.
            for region in ["Polisregion Stockholm", "Polisregion Syd", "R"] {
                let got = resumed.region_table(name, By::Group, PeriodKind::Year, &catalogue, Some(region));
                let stored = events.iter().any(|e| matches!(&e.body, Body::CaseOpened { police_region, .. } if police_region == region));
                if region == "R" && !stored {
                    // Not a police region, and no case carries it: an unknown region.
                    prop_assert!(got.is_err());
                    continue;
                }
                let expected = naive::region_table(&events, name, By::Group, PeriodKind::Year, &catalogue, Some(region));
                prop_assert_eq!(&got.unwrap(), &expected, "{:?} {}", name, region);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    /// A table under a classification (every crime's code translated into one version's codes,
    /// that version's groups) equals the naive recomputation with the same mapping applied, for
    /// every table, `--by` and `--period`, every region together and one region; and under
    /// `recorded` it is the table of today.
    #[test]
    fn classified_tables_equal_the_naive_recomputation_with_the_mapping(steps in steps(), split in any::<prop::sample::Index>()) {
        let catalogue = Catalogue::default_catalogue();
        let events = build(&steps);
        let half = split.index(events.len() + 1);
        // Through a checkpoint, so the crimes the classification reads are those reloaded.
        let first = project(&events[..half], 0, Projections::new());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("projections.ckpt");
        let origin = Origin {
            store: gryning_store::StoreIdentity { backend: "sqlite".into(), id: "a-test-store".into() },
            event_id: (half > 0).then(|| events[half - 1].event_id),
        };
        first.save_checkpoint(&path, &origin).unwrap();
        let reloaded = load_checkpoint(&path).unwrap().unwrap().projections;
        let state = project(&events, half, reloaded);
        let recorded = catalogue.under("recorded").unwrap();
        for version in ["2019.1", "2020.1"] {
            let under = catalogue.under(version).unwrap();
            prop_assert_eq!(under.classification(), Some(version));
            for name in TableName::ALL {
                for by in By::ALL {
                    for period in PeriodKind::ALL {
                        let expected = naive::table(&events, name, by, period, &under);
                        prop_assert_eq!(&state.table(name, by, period, &under), &expected, "{} {:?} {:?} {:?}", version, name, by, period);
                    }
                }
                if name != TableName::SocialServices {
                    let region = "Polisregion Stockholm";
                    if let Ok(got) = state.region_table(name, By::Code, PeriodKind::Quarter, &under, Some(region)) {
                        let expected = naive::region_table(&events, name, By::Code, PeriodKind::Quarter, &under, Some(region));
                        prop_assert_eq!(&got, &expected, "{} {:?} {}", version, name, region);
                    }
                }
            }
        }
        for name in TableName::ALL {
            prop_assert_eq!(
                state.table(name, By::Group, PeriodKind::Quarter, &recorded),
                state.table(name, By::Group, PeriodKind::Quarter, &catalogue)
            );
        }
    }
}

/// The mapping changes the tables where the versions differ: a 2019 crime recorded as 9605 with
/// a male victim is 9695 under 2020.1, and 9691 recorded in 2020 is 9605 under 2019.1 for a woman.
#[test]
fn a_classification_moves_crimes_between_codes() {
    let catalogue = Catalogue::default_catalogue();
    let case = Subject::Case(Uuid::from_u128(1));
    let day = |d: &str| Date::parse(d).unwrap();
    let code = |c: &str| CrimeCode::parse(c).unwrap();
    let event = |n: u128, on: &str, body: Body| Event {
        event_id: Uuid::from_u128(1000 + n),
        occurred_on: day(on),
        subject: case,
        body,
    };
    let report = |n: u128, on: &str, c: &str, victim_gender: Gender| {
        event(
            n,
            on,
            Body::CrimeReported {
                crime_id: Uuid::from_u128(n),
                crime_code: code(c),
                victim_gender,
                victim_age_group: AgeGroup::Adult,
            },
        )
    };
    let events = vec![
        event(
            0,
            "2019-03-01",
            Body::CaseOpened {
                lead_crime_code: code("9605"),
                police_region: "Polisregion Stockholm".into(),
                local_police_area: "Farsta".into(),
            },
        ),
        report(1, "2019-03-01", "9605", Gender::Male),
        report(2, "2020-03-01", "9691", Gender::Female),
        report(3, "2020-03-02", "9381", Gender::Female),
    ];
    let p = project(&events, 0, Projections::new());
    let reported = |version: &str| -> Vec<(String, String, i64)> {
        let under = catalogue.under(version).unwrap();
        p.table(TableName::CaseFlow, By::Code, PeriodKind::Year, &under)
            .rows
            .iter()
            .map(|r| match (&r[0], &r[1], &r[2]) {
                (Cell::Text(p), Cell::Text(c), Cell::Int(n)) => (p.clone(), c.clone(), *n),
                other => panic!("{other:?}"),
            })
            .filter(|r| r.2 != 0)
            .collect()
    };
    let rows = |r: &[(&str, &str, i64)]| -> Vec<(String, String, i64)> {
        r.iter()
            .map(|(p, c, n)| (p.to_string(), c.to_string(), *n))
            .collect()
    };
    assert_eq!(
        reported("recorded"),
        rows(&[
            ("2019", "9605", 1),
            ("2020", "9381", 1),
            ("2020", "9691", 1)
        ])
    );
    assert_eq!(
        reported("2020.1"),
        rows(&[
            ("2019", "9695", 1),
            ("2020", "9381", 1),
            ("2020", "9691", 1)
        ])
    );
    assert_eq!(
        reported("2019.1"),
        rows(&[
            ("2019", "9605", 1),
            ("2020", "9365", 1),
            ("2020", "9605", 1)
        ])
    );
}

/// The generator is worth something only if it produces the interesting events.
#[test]
fn generated_histories_cover_every_event_type() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen: HashMap<&'static str, usize> = HashMap::new();
    let mut replaced_decisions = 0;
    for _ in 0..50 {
        let events = build(&steps().new_tree(&mut runner).unwrap().current());
        let mut decided = std::collections::HashSet::new();
        for e in &events {
            *seen.entry(e.body.type_name()).or_default() += 1;
            let ids: Vec<Uuid> = match &e.body {
                Body::ProsecutionDecided { crime_id, .. } => vec![*crime_id],
                Body::InvestigationClosed { crime_ids, .. } => crime_ids.clone(),
                _ => vec![],
            };
            for id in ids {
                if !decided.insert((e.subject, id)) {
                    replaced_decisions += 1;
                }
            }
        }
    }
    for name in [
        "CaseOpened",
        "CrimeReported",
        "CrimeReclassified",
        "CaseReclassified",
        "CaseReferredToProsecutor",
        "InvestigationClosed",
        "ProsecutionDecided",
        "ContractCareProposed",
        "ChildWelfareNotified",
        "TreatmentProgrammeStarted",
        "TreatmentProgrammeEnded",
        "SupportGranted",
    ] {
        assert!(
            seen.get(name).copied().unwrap_or(0) > 10,
            "{name}: {seen:?}"
        );
    }
    assert!(replaced_decisions > 10, "{replaced_decisions}");
}

/// What to send besides the history: after event `i`, resend an earlier event, or send an
/// earlier event's id with other content; and where to cut batches.
type Extra = (u8, u16, u8);

fn submissions(events: &[Event], extras: &[Extra]) -> (Vec<Event>, usize) {
    let mut out = Vec::new();
    let mut reused = 0;
    for (i, event) in events.iter().enumerate() {
        out.push(event.clone());
        let (kind, pick, _) = extras[i % extras.len().max(1)];
        let earlier = &events[usize::from(pick) % (i + 1)];
        match kind % 8 {
            0 | 1 => out.push(earlier.clone()),
            2 => {
                let mut other = earlier.clone();
                other.occurred_on = other.occurred_on.add_days(1);
                out.push(other);
                reused += 1;
            }
            _ => {}
        }
    }
    (out, reused)
}

fn extras() -> impl Strategy<Value = Vec<Extra>> {
    prop::collection::vec((any::<u8>(), any::<u16>(), any::<u8>()), 1..40)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn ingestion_with_duplicates_projects_like_the_naive_recomputation(steps in steps(), extras in extras()) {
        use gryning_recording::{Outcome, Recorder, Submission};
        use gryning_store::EventStore;
        use std::sync::Arc;

        let catalogue = Arc::new(Catalogue::default_catalogue());
        let events = build(&steps);
        let (sent, reused) = submissions(&events, &extras);
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (stored, duplicates, rejected, projected) = runtime.block_on(async {
            let store: Arc<dyn EventStore> = Arc::new(gryning_store::sqlite::SqliteStore::open(dir.path()).unwrap());
            let recorder = Recorder::new(store.clone(), catalogue.clone());
            let (mut stored, mut duplicates, mut rejected) = (0, 0, 0);
            // Batches of varied size, cut where the extras say, so resends meet their
            // originals both within one batch and across batches.
            let mut rest: &[Event] = &sent;
            let mut k = 0;
            while !rest.is_empty() {
                let size = 1 + usize::from(extras[k % extras.len()].2 % 16);
                let (batch, tail) = rest.split_at(size.min(rest.len()));
                rest = tail;
                k += 1;
                for result in recorder.record_batch(batch.iter().cloned().map(Submission::from).collect()).await {
                    match result {
                        Ok(Outcome::Stored { .. }) => stored += 1,
                        Ok(Outcome::Duplicate { .. }) => duplicates += 1,
                        Err(e) => {
                            assert_eq!(e.reason(), "event-id-reused", "{e}");
                            rejected += 1;
                        }
                    }
                }
            }
            // Each stream holds exactly its events of the history, in their order.
            let mut subjects: Vec<Subject> = events.iter().map(|e| e.subject).collect();
            subjects.sort();
            subjects.dedup();
            for subject in subjects {
                let stored: Vec<Event> = store
                    .read_stream(&subject.stream_name())
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| gryning_proto::decode_event(&r.payload).unwrap())
                    .collect();
                let sent: Vec<Event> = events.iter().filter(|e| e.subject == subject).cloned().collect();
                assert_eq!(stored, sent, "stream {subject}");
            }
            let mut projected = Projections::new();
            gryning_projections::catch_up(&mut projected, store.as_ref(), None, |_| {}).await.unwrap();
            (stored, duplicates, rejected, projected)
        });
        prop_assert_eq!(stored, events.len());
        prop_assert_eq!(rejected, reused);
        prop_assert_eq!(duplicates, sent.len() - events.len() - reused);
        // Events of different streams may be stored in another order than sent (an event
        // retried after a conflict lands after later events of other streams); tables depend
        // only on each stream's own order, which the recorder keeps.
        for name in TableName::ALL {
            for by in By::ALL {
                for period in PeriodKind::ALL {
                    let expected = naive::table(&events, name, by, period, &catalogue);
                    prop_assert_eq!(&projected.table(name, by, period, &catalogue), &expected, "{:?} {:?} {:?}", name, by, period);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// As of a position or a time, from snapshots kept every `every` events: the tables equal
    /// the naive recomputation over the events up to the position, or recorded before the
    /// time; and the replay after the snapshot is shorter than the snapshot interval.
    #[test]
    fn as_of_from_snapshots_equals_the_naive_recomputation_of_the_prefix(
        steps in steps(),
        gaps in prop::collection::vec(0u8..3, 200),
        every in 0u64..40,
        position in any::<prop::sample::Index>(),
        time in any::<prop::sample::Index>(),
    ) {
        use gryning_projections::asof::{self, AsOf, Snapshots};
        use gryning_store::{AppendRequest, EventStore, ExpectedVersion, NewEvent};

        let catalogue = Catalogue::default_catalogue();
        let events = build(&steps);
        // Recording times that never decrease, several events sharing a second.
        let start: jiff::Timestamp = "2021-01-20T11:00:00Z".parse().unwrap();
        let mut times = Vec::new();
        let mut t = start;
        for (i, _) in events.iter().enumerate() {
            t = t.checked_add(jiff::SignedDuration::from_secs(i64::from(gaps[i % gaps.len()]))).unwrap();
            times.push(t);
        }
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let store = gryning_store::sqlite::SqliteStore::open(dir.path()).unwrap();
            for (event, at) in events.iter().zip(&times) {
                store.append(AppendRequest {
                    stream: event.event_id.to_string(),
                    expected_version: ExpectedVersion::Exact(0),
                    events: vec![NewEvent {
                        event_id: event.event_id,
                        payload: gryning_proto::encode_event(event),
                        metadata: gryning_proto::encode_metadata("local:test", "local", &at.to_string()),
                    }],
                }).await.unwrap();
            }
            let snapshots = Snapshots::in_data_dir(dir.path());
            let checkpoint = dir.path().join("projections.ckpt");
            let mut whole = Projections::new();
            let head = store.head().await.unwrap();
            asof::catch_up_keeping_snapshots(&mut whole, &store, head, &snapshots, &checkpoint, every, |_| {}).await.unwrap();
            let kept = snapshots.list().len() as u64;
            prop_assert_eq!(kept, head.checked_div(every).unwrap_or(0), "snapshots kept");

            let check = |past: &gryning_projections::asof::Past, n: usize| -> Result<(), TestCaseError> {
                prop_assert_eq!(past.projections.position(), n as u64);
                if every > 0 {
                    prop_assert!(past.replayed < every, "replayed {} with a snapshot every {}", past.replayed, every);
                } else {
                    prop_assert_eq!(past.replayed, n as u64);
                }
                for name in TableName::ALL {
                    for by in By::ALL {
                        for period in PeriodKind::ALL {
                            let expected = naive::table(&events[..n], name, by, period, &catalogue);
                            prop_assert_eq!(&past.projections.table(name, by, period, &catalogue), &expected, "{:?} {:?} {:?} at {}", name, by, period, n);
                        }
                    }
                }
                Ok(())
            };
            let n = position.index(events.len() + 1);
            let past = asof::as_of(&store, Some(&snapshots), AsOf::Position(n as u64)).await.unwrap();
            check(&past, n)?;
            // A time between the recorded ones (or before the first, or after the last).
            let k = time.index(events.len() + 1);
            let limit = if k == 0 { start } else { times[k - 1].checked_add(jiff::SignedDuration::from_secs(1)).unwrap() };
            let expected = times.iter().take_while(|t| **t < limit).count();
            let past = asof::as_of(&store, Some(&snapshots), AsOf::Before(limit)).await.unwrap();
            check(&past, expected)?;
            Ok(())
        })?;
    }
}

/// The request naming a row's cell of `measure`, from the row's key cells as the table shows
/// them.
fn request(name: TableName, by: By, row: &[Cell], measure: &str) -> explain::Request {
    let text = |i: usize| match &row[i] {
        Cell::Text(t) => t.clone(),
        other => panic!("key cell {i} is {other:?}"),
    };
    let mut r = explain::Request {
        table: name.name().into(),
        period: text(0),
        measure: measure.into(),
        ..explain::Request::default()
    };
    if name.has_codes() {
        match by {
            By::Code => r.code = text(1),
            By::Group => r.group = text(1),
        }
    }
    if name == TableName::Clearance {
        r.victim_gender = text(2);
    }
    if name == TableName::SocialServices {
        r.service = text(1);
        r.local_police_area = text(2);
        r.victim_gender = text(3);
        r.age_group = text(4);
    }
    r
}

/// Every cell of `table` against its explanation from `log`: the value the explanation gives is
/// the cell, a count is the size of its list, a percent's lists are the row's cleared and
/// handled, and every event listed is the one stored at its position.
fn check_every_cell(
    events: &[Event],
    log: &explain::Log,
    (name, by, region): (TableName, By, Option<&str>),
    table: &gryning_projections::Table,
    catalogue: &Catalogue,
) -> Result<usize, TestCaseError> {
    let mut checked = 0;
    for row in &table.rows {
        for (j, column) in table.columns.iter().enumerate() {
            if !explain::measures(name).contains(column) {
                continue;
            }
            let mut r = request(name, by, row, column);
            r.region = region.unwrap_or_default().to_string();
            if region.is_some() && name == TableName::Care && *column != "contract_care_proposed" {
                // One region's care row counts only its cases' proposals (programmes are client
                // events, which carry no region): the other cells are null and not explained.
                prop_assert_eq!(&row[j], &Cell::Null);
                let e = explain::CellRef::parse(&r, catalogue).unwrap_err();
                prop_assert_eq!(e.field, "measure");
                continue;
            }
            if name == TableName::SocialServices
                && r.service != "CHILD_WELFARE_NOTIFICATION"
                && *column == "median_days_to_notification"
            {
                // Support rows have no median: the cell is null and names nothing to explain.
                prop_assert_eq!(&row[j], &Cell::Null);
                let e = explain::CellRef::parse(&r, catalogue).unwrap_err();
                prop_assert_eq!(e.field, "measure");
                continue;
            }
            let cell = explain::CellRef::parse(&r, catalogue)
                .and_then(|cell| log.in_region(cell))
                .map_err(|e| TestCaseError::fail(format!("{r:?}: {e}")))?;
            let e = log.explain(&cell);
            prop_assert_eq!(&e.value, &row[j], "{:?} {:?}", r, e.sets);
            match &row[j] {
                Cell::Int(n) => prop_assert_eq!(e.sets[0].events.len() as i64, *n, "{:?}", r),
                _ if *column == "percent" => {
                    let at = |c: &str| &row[table.columns.iter().position(|x| *x == c).unwrap()];
                    prop_assert_eq!(e.sets[0].name, "cleared");
                    prop_assert_eq!(&Cell::Int(e.sets[0].events.len() as i64), at("cleared"));
                    prop_assert_eq!(e.sets[1].name, "handled");
                    prop_assert_eq!(&Cell::Int(e.sets[1].events.len() as i64), at("handled"));
                }
                _ => {}
            }
            for x in e.sets.iter().flat_map(|s| &s.events) {
                let stored = &events[x.position as usize - 1];
                prop_assert_eq!(x.event_id, stored.event_id);
                prop_assert_eq!(&x.stream, &stored.subject.stream_name());
                prop_assert_eq!(x.occurred_on, stored.occurred_on);
                prop_assert_eq!(x.event_type, stored.body.type_name());
            }
            checked += 1;
        }
    }
    Ok(checked)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    /// Every cell of every table (by code and group, by year and quarter, and a publication's
    /// year to date) equals what its explanation gives.
    #[test]
    fn every_cell_of_every_table_equals_the_size_of_its_explanation(steps in steps()) {
        let catalogue = Catalogue::default_catalogue();
        let events = build(&steps);
        let state = project(&events, 0, Projections::new());
        let mut log = explain::Log::new();
        for (i, event) in events.iter().enumerate() {
            log.apply(i as u64 + 1, event);
        }
        let mut checked = 0;
        // The comparison of the regions is checked against its own recomputation.
        for name in TableName::ALL.into_iter().filter(|&t| t != TableName::RegionComparison) {
            let bys: &[By] = if name.has_codes() { &By::ALL } else { &[By::Code] };
            for &by in bys {
                for period in PeriodKind::ALL {
                    let table = state.table(name, by, period, &catalogue);
                    checked += check_every_cell(&events, &log, (name, by, None), &table, &catalogue)?;
                    // One region's cells (social-services is county-wide), for a region of the
                    // log and one no case is in.
                    if name == TableName::SocialServices {
                        continue;
                    }
                    for region in ["Polisregion Stockholm", "Syd", "Nord"] {
                        let table = state
                            .region_table(name, by, period, &catalogue, Some(region))
                            .map_err(|e| TestCaseError::fail(e.to_string()))?;
                        checked += check_every_cell(&events, &log, (name, by, Some(region)), &table, &catalogue)?;
                    }
                }
                // The year to date of the quarter of the last event, as a publication holds it.
                if let Some(last) = events.last() {
                    let quarter = gryning_domain::Quarter::of(last.occurred_on);
                    let by_option = name.has_codes().then_some(by);
                    let table = state.published_table(
                        name,
                        by_option,
                        gryning_projections::PublishedPeriod::YearToDate,
                        quarter,
                        &catalogue,
                    );
                    checked += check_every_cell(&events, &log, (name, by, None), &table, &catalogue)?;
                }
            }
        }
        prop_assert!(events.len() < 3 || checked > 0, "no cell checked in {} events", events.len());
    }
}

/// A cell no row shows explains as zero events, and each bad field is named.
#[test]
fn an_empty_cell_explains_as_nothing() {
    let catalogue = Catalogue::default_catalogue();
    let log = explain::Log::new();
    let r = explain::Request {
        table: "case-flow".into(),
        period: "2020-Q2".into(),
        code: "9365".into(),
        measure: "reported".into(),
        ..explain::Request::default()
    };
    let e = log.explain(&explain::CellRef::parse(&r, &catalogue).unwrap());
    assert_eq!(e.value, Cell::Int(0));
    assert!(e.sets[0].events.is_empty());
}
