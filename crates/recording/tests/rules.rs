//! Every lifecycle rule and field rule, checked through the recorder against a real embedded
//! store: given events already recorded, when one more is recorded, then it is rejected with
//! the rule, field and value named, and nothing is stored (the head does not move).

use std::sync::Arc;

use gryning_domain::{
    AgeGroup, Body, Catalogue, ClosureReason, CrimeCode, Date, Event, Gender, ProsecutionDecision,
    Subject, TreatmentOutcome, Uuid,
};
use gryning_recording::{Clock, Outcome, Recorder, Rejection, Submission};
use gryning_store::{sqlite::SqliteStore, EventStore};

const TODAY: &str = "2021-06-30";

fn day(text: &str) -> Date {
    Date::parse(text).unwrap()
}

fn code(text: &str) -> CrimeCode {
    CrimeCode::parse(text).unwrap()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x6f1c_0000_0000_4000_8000_0000_0000_0000 | n)
}

fn case_event(n: u128, case: u128, date: &str, body: Body) -> Event {
    Event {
        event_id: id(1000 + n),
        occurred_on: day(date),
        subject: Subject::Case(id(case)),
        body,
    }
}

fn client_event(n: u128, client: u128, date: &str, body: Body) -> Event {
    Event {
        event_id: id(1000 + n),
        occurred_on: day(date),
        subject: Subject::Client(id(client)),
        body,
    }
}

fn opened(n: u128, case: u128) -> Event {
    case_event(
        n,
        case,
        "2020-01-10",
        Body::CaseOpened {
            lead_crime_code: code("4024"),
            police_region: "Polisregion Stockholm".into(),
            local_police_area: "Farsta".into(),
        },
    )
}

fn reported(n: u128, case: u128, crime: u128) -> Event {
    case_event(
        n,
        case,
        "2020-01-11",
        Body::CrimeReported {
            crime_id: id(crime),
            crime_code: code("4024"),
            victim_gender: Gender::Female,
            victim_age_group: AgeGroup::Adult,
        },
    )
}

fn referred(n: u128, case: u128) -> Event {
    case_event(n, case, "2020-02-01", Body::CaseReferredToProsecutor)
}

fn started(n: u128, client: u128, date: &str) -> Event {
    client_event(
        n,
        client,
        date,
        Body::TreatmentProgrammeStarted {
            programme: "IDAP".into(),
        },
    )
}

fn ended(n: u128, client: u128, date: &str) -> Event {
    client_event(
        n,
        client,
        date,
        Body::TreatmentProgrammeEnded {
            outcome: TreatmentOutcome::Completed,
        },
    )
}

struct Harness {
    _dir: tempfile::TempDir,
    store: Arc<dyn EventStore>,
    recorder: Recorder,
}

async fn harness() -> Harness {
    harness_with(Clock::noon_on(day(TODAY))).await
}

/// A recorder whose clock stands at the instant `now` (RFC 3339), over a fresh store.
async fn harness_at(now: &str) -> Harness {
    harness_with(Clock::Fixed(now.parse().unwrap())).await
}

async fn harness_with(clock: Clock) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let recorder =
        Recorder::new(store.clone(), Arc::new(Catalogue::default_catalogue())).with_clock(clock);
    Harness {
        _dir: dir,
        store,
        recorder,
    }
}

/// Records `given` (all must be stored), then `when`; returns the rejection and checks that
/// nothing more was stored.
async fn rejected(given: Vec<Event>, when: Event) -> Rejection {
    let h = harness().await;
    for event in given {
        let outcome = h.recorder.record(Submission::from(event.clone())).await;
        assert!(
            matches!(outcome, Ok(Outcome::Stored { .. })),
            "given event {event:?} was not stored: {outcome:?}"
        );
    }
    let head = h.store.head().await.unwrap();
    let err = h
        .recorder
        .record(Submission::from(when))
        .await
        .expect_err("the event must be rejected");
    assert_eq!(
        h.store.head().await.unwrap(),
        head,
        "a rejected event must store nothing"
    );
    err
}

fn assert_rule(err: &Rejection, rule: &str, field: &str, value_part: &str) {
    let text = err.to_string();
    assert_eq!(err.reason(), rule, "{text}");
    match err {
        Rejection::Invalid(e) => assert_eq!(e.field(), field, "{text}"),
        other => panic!("expected a rule rejection, got {other:?}"),
    }
    assert!(
        text.contains(rule) || rule == "invalid-field",
        "message names the rule: {text}"
    );
    assert!(text.contains(field), "message names the field: {text}");
    assert!(
        text.contains(value_part),
        "message names the value {value_part:?}: {text}"
    );
}

#[tokio::test]
async fn case_opened_is_the_first_event_once() {
    let err = rejected(vec![opened(1, 1)], opened(2, 1)).await;
    assert_rule(&err, "case-opened-once", "case_id", &id(1).to_string());
}

#[tokio::test]
async fn case_events_need_an_opened_case() {
    for when in [
        reported(1, 7, 70),
        referred(2, 7),
        case_event(3, 7, "2020-03-01", Body::ContractCareProposed),
    ] {
        let err = rejected(vec![], when).await;
        assert_rule(&err, "case-must-be-opened", "case_id", &id(7).to_string());
    }
}

#[tokio::test]
async fn crime_id_is_new_in_its_case() {
    let err = rejected(vec![opened(1, 1), reported(2, 1, 50)], reported(3, 1, 50)).await;
    assert_rule(
        &err,
        "crime-id-new-in-case",
        "crime_reported.crime_id",
        &id(50).to_string(),
    );
}

#[tokio::test]
async fn reclassification_closure_and_decision_name_crimes_of_the_case() {
    let given = || {
        vec![
            opened(1, 1),
            reported(2, 1, 50),
            referred(3, 1),
            opened(4, 2),
            reported(5, 2, 60),
        ]
    };
    let cases = [
        (
            case_event(
                10,
                1,
                "2020-03-01",
                Body::CrimeReclassified {
                    crime_id: id(60),
                    crime_code: code("0609"),
                },
            ),
            "crime_reclassified.crime_id",
        ),
        (
            case_event(
                11,
                1,
                "2020-03-01",
                Body::InvestigationClosed {
                    crime_ids: vec![id(50), id(60)],
                    reason: ClosureReason::NoSuspect,
                },
            ),
            "investigation_closed.crime_ids",
        ),
        (
            case_event(
                12,
                1,
                "2020-03-01",
                Body::ProsecutionDecided {
                    crime_id: id(60),
                    decision: ProsecutionDecision::Indictment,
                },
            ),
            "prosecution_decided.crime_id",
        ),
    ];
    for (when, field) in cases {
        let err = rejected(given(), when).await;
        assert_rule(
            &err,
            "crime-must-be-reported-in-case",
            field,
            &id(60).to_string(),
        );
    }
}

#[tokio::test]
async fn prosecution_decision_needs_a_referral_before_it() {
    let when = case_event(
        9,
        1,
        "2020-03-01",
        Body::ProsecutionDecided {
            crime_id: id(50),
            decision: ProsecutionDecision::Indictment,
        },
    );
    let err = rejected(vec![opened(1, 1), reported(2, 1, 50)], when).await;
    assert_rule(&err, "case-must-be-referred", "case_id", &id(1).to_string());
}

#[tokio::test]
async fn programme_rules() {
    let err = rejected(
        vec![started(1, 5, "2020-01-01")],
        started(2, 5, "2020-02-01"),
    )
    .await;
    assert_rule(
        &err,
        "no-programme-running",
        "client_id",
        &id(5).to_string(),
    );
    let err = rejected(vec![], ended(1, 5, "2020-02-01")).await;
    assert_rule(
        &err,
        "programme-must-be-running",
        "client_id",
        &id(5).to_string(),
    );
    let err = rejected(
        vec![
            started(1, 5, "2020-03-01"),
            ended(2, 5, "2020-05-01"),
            started(3, 5, "2020-06-01"),
        ],
        ended(4, 5, "2020-05-31"),
    )
    .await;
    assert_rule(
        &err,
        "programme-end-not-before-start",
        "occurred_on",
        "2020-05-31",
    );
}

#[tokio::test]
async fn field_rules_need_no_history() {
    let future = case_event(1, 1, "2021-07-01", Body::CaseReferredToProsecutor);
    assert_rule(
        &rejected(vec![], future).await,
        "invalid-field",
        "occurred_on",
        "2021-07-01",
    );

    let unknown = case_event(
        1,
        1,
        "2020-01-01",
        Body::CaseOpened {
            lead_crime_code: code("9999"),
            police_region: "Polisregion Stockholm".into(),
            local_police_area: "Nacka".into(),
        },
    );
    let err = rejected(vec![], unknown).await;
    assert_rule(&err, "invalid-field", "case_opened.lead_crime_code", "9999");
    assert!(err.to_string().contains("catalogue"), "{err}");

    let pnr = case_event(
        1,
        1,
        "2020-01-01",
        Body::CaseOpened {
            lead_crime_code: code("4024"),
            police_region: "Polisregion Stockholm".into(),
            local_police_area: "811218-9876".into(),
        },
    );
    let err = rejected(vec![], pnr).await;
    assert_rule(
        &err,
        "invalid-field",
        "case_opened.local_police_area",
        "######-####",
    );
    assert!(
        !err.to_string().contains("811218"),
        "the number itself must never be echoed: {err}"
    );

    let programme = client_event(
        1,
        5,
        "2020-01-01",
        Body::TreatmentProgrammeStarted {
            programme: "IDAP 198112189876".into(),
        },
    );
    assert_rule(
        &rejected(vec![], programme).await,
        "invalid-field",
        "treatment_programme_started.programme",
        "############",
    );

    let wrong_subject = client_event(1, 5, "2020-01-01", Body::ContractCareProposed);
    assert_rule(
        &rejected(vec![], wrong_subject).await,
        "invalid-field",
        "client_id",
        &id(5).to_string(),
    );

    let no_crimes = case_event(
        2,
        1,
        "2020-02-01",
        Body::InvestigationClosed {
            crime_ids: vec![],
            reason: ClosureReason::Other,
        },
    );
    assert_rule(
        &rejected(vec![opened(1, 1)], no_crimes).await,
        "invalid-field",
        "investigation_closed.crime_ids",
        "[]",
    );
}

fn opened_in(n: u128, case: u128, police_region: &str, local_police_area: &str) -> Event {
    case_event(
        n,
        case,
        "2020-01-01",
        Body::CaseOpened {
            lead_crime_code: code("4024"),
            police_region: police_region.into(),
            local_police_area: local_police_area.into(),
        },
    )
}

#[tokio::test]
async fn free_text_holds_no_control_characters() {
    for (bad, shown) in [
        ("Polisregion\u{0}Stockholm", "U+0000"),
        ("Polisregion \u{1b}[2JStockholm", "U+001B"),
        ("Polisregion\r\nStockholm", "U+000D"),
        ("Polisregion\nStockholm", "U+000A"),
        ("Polisregion\u{7f}", "U+007F"),
        ("Polisregion\u{85}", "U+0085"),
        ("Polisregion\u{9b}31m", "U+009B"),
        ("Polisregion \u{202e}mlohkcotS", "U+202E"),
        ("Polis\u{200b}region", "U+200B"),
    ] {
        let err = rejected(vec![], opened_in(1, 1, bad, "Farsta")).await;
        assert_rule(&err, "invalid-field", "case_opened.police_region", shown);
        assert!(!err.to_string().chars().any(char::is_control), "{err:?}");
        let err = rejected(vec![], opened_in(1, 1, "Polisregion Stockholm", bad)).await;
        assert_rule(
            &err,
            "invalid-field",
            "case_opened.local_police_area",
            shown,
        );
        let programme = client_event(
            1,
            5,
            "2020-01-01",
            Body::TreatmentProgrammeStarted {
                programme: format!("IDAP{bad}"),
            },
        );
        assert_rule(
            &rejected(vec![], programme).await,
            "invalid-field",
            "treatment_programme_started.programme",
            shown,
        );
    }
    // Letters of every script stay allowed.
    let h = harness().await;
    let outcome = h
        .recorder
        .record(opened_in(1, 1, "Polisregion Stockholm", "Södermalm – Årsta").into())
        .await;
    assert!(matches!(outcome, Ok(Outcome::Stored { .. })), "{outcome:?}");
}

#[tokio::test]
async fn identity_numbers_are_found_whatever_the_separator() {
    // Test numbers with a correct Luhn digit, made up for the tests.
    for written in [
        "811218\u{2013}9876",
        "811218\u{2014}9876",
        "811218\u{2212}9876",
        "811218 9876",
        "811218\u{a0}9876",
        "19811218\u{2013}9876",
        "1981 12 18 - 9876",
        "81.12.18-9876",
        "\u{ff18}\u{ff11}\u{ff11}\u{ff12}\u{ff11}\u{ff18}\u{ff19}\u{ff18}\u{ff17}\u{ff16}",
        "811278\u{2013}9873",
    ] {
        let err = rejected(vec![], opened_in(1, 1, "Polisregion Stockholm", written)).await;
        assert_rule(&err, "invalid-field", "case_opened.local_police_area", "#");
        let text = err.to_string();
        assert!(
            text.contains("personal identity"),
            "{written:?} must be named an identity number: {text}"
        );
        assert!(!text.contains("9876") && !text.contains("9873"), "{text}");
    }
}

#[tokio::test]
async fn closing_many_crimes_at_once_is_checked_in_one_pass() {
    // 100,000 distinct crimes closed by one event, and one id named twice among them.
    let h = harness().await;
    let mut given = vec![opened(1, 1)];
    let crimes: Vec<u128> = (0..100_000).map(|n| 10_000 + n).collect();
    for (n, &crime) in crimes.iter().enumerate() {
        given.push(reported(2 + n as u128, 1, crime));
    }
    let stored = h
        .recorder
        .record_batch(given.into_iter().map(Submission::from).collect())
        .await;
    assert!(stored
        .iter()
        .all(|r| matches!(r, Ok(Outcome::Stored { .. }))));
    let mut ids: Vec<Uuid> = crimes.iter().map(|&c| id(c)).collect();
    ids.push(id(crimes[50_000]));
    let twice = case_event(
        200_000,
        1,
        "2020-03-01",
        Body::InvestigationClosed {
            crime_ids: ids.clone(),
            reason: ClosureReason::NoSuspect,
        },
    );
    let err = h.recorder.record(twice.into()).await.unwrap_err();
    assert_rule(
        &err,
        "invalid-field",
        "investigation_closed.crime_ids",
        "names the same crime twice",
    );
    ids.pop();
    let closed = case_event(
        200_001,
        1,
        "2020-03-01",
        Body::InvestigationClosed {
            crime_ids: ids,
            reason: ClosureReason::NoSuspect,
        },
    );
    let outcome = h.recorder.record(closed.into()).await;
    assert!(matches!(outcome, Ok(Outcome::Stored { .. })), "{outcome:?}");
}

#[tokio::test]
async fn same_id_same_content_is_stored_once_and_other_content_is_rejected() {
    let h = harness().await;
    let first = h.recorder.record(opened(1, 1).into()).await.unwrap();
    let Outcome::Stored { position, .. } = first else {
        panic!("{first:?}")
    };
    // A resend breaks case-opened-once, yet reads as the duplicate it is.
    assert_eq!(
        h.recorder.record(opened(1, 1).into()).await.unwrap(),
        Outcome::Duplicate { position }
    );
    // Same id, other content: rejected, nothing stored.
    let mut other = opened(1, 1);
    other.occurred_on = day("2020-01-11");
    let err = h.recorder.record(other.into()).await.unwrap_err();
    assert_eq!(err.reason(), "event-id-reused", "{err}");
    // A resend that breaks no rule is a duplicate too.
    h.recorder.record(referred(2, 1).into()).await.unwrap();
    assert!(matches!(
        h.recorder.record(referred(2, 1).into()).await.unwrap(),
        Outcome::Duplicate { .. }
    ));
    assert_eq!(h.store.head().await.unwrap(), 2);
}

#[tokio::test]
async fn a_batch_stores_its_valid_events_and_reports_each_rejection() {
    let h = harness().await;
    let batch: Vec<Submission> = vec![
        opened(1, 1).into(),
        reported(2, 1, 50).into(),
        reported(3, 1, 50).into(), // crime id reused
        opened(1, 1).into(),       // resend of the first, inside the batch
        referred(4, 9).into(),     // case 9 never opened
        referred(5, 1).into(),
    ];
    let results = h.recorder.record_batch(batch).await;
    let reasons: Vec<&str> = results
        .iter()
        .map(|r| match r {
            Ok(Outcome::Stored { .. }) => "stored",
            Ok(Outcome::Duplicate { .. }) => "duplicate",
            Err(e) => e.reason(),
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "stored",
            "stored",
            "crime-id-new-in-case",
            "duplicate",
            "case-must-be-opened",
            "stored"
        ]
    );
    assert_eq!(h.store.head().await.unwrap(), 3);
    assert_eq!(
        h.store
            .read_stream(&Subject::Case(id(1)).stream_name())
            .await
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_recorders_on_one_case_never_lose_an_event() {
    let h = harness().await;
    h.recorder.record(opened(1, 1).into()).await.unwrap();
    // A second recorder shares the store but not the cache: its writes make the first
    // recorder's cached state stale, which the expected-version check must catch.
    let other = Arc::new(
        Recorder::new(h.store.clone(), Arc::new(Catalogue::default_catalogue()))
            .with_today(day(TODAY)),
    );
    let first = Arc::new(h.recorder);
    let mut tasks = Vec::new();
    for (k, recorder) in [first.clone(), other.clone()].into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for i in 0..50u128 {
                let n = 100 + k as u128 * 1000 + i;
                // A recorder that keeps losing races answers Conflict ("try again", ABORTED
                // over gRPC) with nothing stored; a client then resends, as this one does. On a
                // loaded machine one writer can lose twelve races in a row.
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    match recorder.record(reported(n, 1, n).into()).await {
                        Ok(Outcome::Stored { .. }) => break,
                        Err(Rejection::Conflict { .. }) if attempts < 50 => continue,
                        other => panic!("crime {n}, attempt {attempts}: {other:?}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stream = h
        .store
        .read_stream(&Subject::Case(id(1)).stream_name())
        .await
        .unwrap();
    assert_eq!(stream.len(), 101);
    assert!(stream
        .iter()
        .enumerate()
        .all(|(i, e)| e.version == i as u64 + 1));
    // Both caches must now see all 100 crimes: reporting any of them again is refused.
    for recorder in [first, other] {
        let err = recorder
            .record(reported(5000, 1, 100).into())
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "crime-id-new-in-case");
    }
}

/// "Not after today" reads the Europe/Stockholm calendar at the recorder's clock, not UTC's.
#[tokio::test]
async fn today_is_the_date_in_stockholm() {
    for (now, today, tomorrow) in [
        // 00:30 on 2 December in Stockholm (UTC+1) is still 1 December in UTC.
        ("2020-12-01T23:30:00Z", "2020-12-02", "2020-12-03"),
        // One second before midnight in Stockholm, 2 December is still tomorrow.
        ("2020-12-01T22:59:59Z", "2020-12-01", "2020-12-02"),
        // Summer time (UTC+2): 00:30 on 15 June in Stockholm is 22:30 on 14 June in UTC.
        ("2020-06-14T22:30:00Z", "2020-06-15", "2020-06-16"),
        // 23:30 on 14 June in Stockholm is 21:30 UTC: the UTC date is no day ahead.
        ("2020-06-14T21:30:00Z", "2020-06-14", "2020-06-15"),
    ] {
        let h = harness_at(now).await;
        assert_eq!(h.recorder.clock().today(), day(today), "{now}");
        let on_the_day = case_event(
            1,
            1,
            today,
            Body::CaseOpened {
                lead_crime_code: code("4024"),
                police_region: "Polisregion Stockholm".into(),
                local_police_area: "Farsta".into(),
            },
        );
        let outcome = h.recorder.record(on_the_day.into()).await;
        assert!(
            matches!(outcome, Ok(Outcome::Stored { position: 1, .. })),
            "at {now} an event dated {today} must be stored: {outcome:?}"
        );

        let early = case_event(2, 1, tomorrow, Body::CaseReferredToProsecutor);
        let err = h
            .recorder
            .record(early.into())
            .await
            .expect_err("an event dated tomorrow must be rejected");
        assert_rule(&err, "invalid-field", "occurred_on", tomorrow);
        let names_today =
            format!("must not be after today in the Europe/Stockholm calendar ({today})");
        assert!(err.to_string().contains(&names_today), "{now}: {err}");
        assert_eq!(
            h.store.head().await.unwrap(),
            1,
            "{now}: nothing more stored"
        );
    }
}
