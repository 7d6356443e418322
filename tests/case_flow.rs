//! A case's flow through the services of `gryning up`: a case goes police → prosecution → care
//! and the insight tables, `GetTable` (also `as_of` a position) and `Watch` streams see each
//! step, the auditor's subscription sees every event with its principal; a resent command is
//! recorded once; a command that breaks a field or lifecycle rule is refused with the code and
//! the rule's name.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/up.rs"]
mod up;

use gryning_proto::pb;
use harness::next_matching;
use tonic::Code;
use up::{
    as_role, await_change, id, int, open_case, read_log, reason, up, value, watch, Clients, ROLES,
};

fn report_crime(case: &str, crime: &str, code: &str) -> pb::ReportCrimeRequest {
    pb::ReportCrimeRequest {
        event_id: id(),
        occurred_on: "2020-03-02".into(),
        case_id: case.into(),
        crime_reported: Some(pb::CrimeReported {
            crime_id: crime.into(),
            crime_code: code.into(),
            victim_gender: pb::Gender::Female as i32,
            victim_age_group: pb::AgeGroup::Adult as i32,
        }),
    }
}

fn decide(case: &str, crime: &str) -> pb::DecideProsecutionRequest {
    pb::DecideProsecutionRequest {
        event_id: id(),
        occurred_on: "2020-05-01".into(),
        case_id: case.into(),
        prosecution_decided: Some(pb::ProsecutionDecided {
            crime_id: crime.into(),
            decision: pb::ProsecutionDecision::Indictment as i32,
        }),
    }
}

/// A case opened with one crime reported, not referred: (case id, crime id).
async fn a_case_with_a_crime(police: &mut Clients) -> (String, String) {
    let (case, crime) = (id(), id());
    police.police.open_case(open_case(&case)).await.unwrap();
    police
        .police
        .report_crime(report_crime(&case, &crime, "4024"))
        .await
        .unwrap();
    (case, crime)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_in_a_case_never_opened_is_not_found_naming_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    let mut prosecution = as_role(&server, &server.tokens, "prosecution").await;
    let e = prosecution
        .prosecution
        .decide_prosecution(decide(&id(), &id()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert_eq!(reason(&e), "case-must-be-opened");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_command_is_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    let mut police = as_role(&server, &server.tokens, "police").await;
    let open = open_case(&id());
    let opened = police
        .police
        .open_case(open.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(!opened.duplicate && opened.version == 1, "{opened:?}");
    let again = police.police.open_case(open).await.unwrap().into_inner();
    assert!(again.duplicate, "a resent command is recorded once");
    assert_eq!(again.position, opened.position);
    let mut auditor = as_role(&server, &server.tokens, "auditor").await;
    assert_eq!(read_log(&mut auditor, 0).await.len(), 1);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_field_is_invalid_argument_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    let mut police = as_role(&server, &server.tokens, "police").await;
    let case = id();
    police.police.open_case(open_case(&case)).await.unwrap();
    let e = police
        .police
        .report_crime(report_crime(&case, &id(), "40"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().contains("crime_reported.crime_code"),
        "{}",
        e.message()
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_before_the_referral_is_failed_precondition_naming_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    let mut police = as_role(&server, &server.tokens, "police").await;
    let mut prosecution = as_role(&server, &server.tokens, "prosecution").await;
    let (case, crime) = a_case_with_a_crime(&mut police).await;
    let e = prosecution
        .prosecution
        .decide_prosecution(decide(&case, &crime))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert_eq!(reason(&e), "case-must-be-referred");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_goes_police_prosecution_care_and_tables_and_watch_see_each_step() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    let tokens = server.tokens.clone();
    assert_eq!(
        tokens.len(),
        ROLES.len(),
        "one token per role is printed on first start"
    );
    let mut police = as_role(&server, &tokens, "police").await;
    let mut prosecution = as_role(&server, &tokens, "prosecution").await;
    let mut care = as_role(&server, &tokens, "care").await;
    let mut analyst = as_role(&server, &tokens, "analyst").await;
    let mut auditor = as_role(&server, &tokens, "auditor").await;

    let mut flow = watch(&mut analyst, "case-flow").await;
    let mut clearance = watch(&mut analyst, "clearance").await;
    let mut care_table = watch(&mut analyst, "care").await;
    let mut log = auditor
        .log
        .subscribe(pb::SubscribeRequest { after: 0 })
        .await
        .unwrap()
        .into_inner();

    // Police: the case is opened, a crime reported, the case referred.
    let (case, crime) = (id(), id());
    police.police.open_case(open_case(&case)).await.unwrap();
    await_change(&mut flow, &["2020", "4024"], "cases", 1).await;
    police
        .police
        .report_crime(report_crime(&case, &crime, "4024"))
        .await
        .unwrap();
    await_change(&mut flow, &["2020", "4024"], "reported", 1).await;
    police
        .police
        .refer_to_prosecutor(pb::ReferToProsecutorRequest {
            event_id: id(),
            occurred_on: "2020-04-01".into(),
            case_id: case.clone(),
        })
        .await
        .unwrap();
    await_change(&mut flow, &["2020", "4024"], "referred", 1).await;

    // Prosecution: an indictment clears the crime.
    let decided = prosecution
        .prosecution
        .decide_prosecution(decide(&case, &crime))
        .await
        .unwrap()
        .into_inner();
    let change = await_change(&mut clearance, &["2020", "4024", "ALL"], "cleared", 1).await;
    assert!(change.position >= decided.position);

    // Care: contract care proposed in the case, a programme started for a client.
    care.care
        .propose_contract_care(pb::ProposeContractCareRequest {
            event_id: id(),
            occurred_on: "2020-06-01".into(),
            case_id: case.clone(),
        })
        .await
        .unwrap();
    await_change(&mut care_table, &["2020"], "contract_care_proposed", 1).await;
    let started = care
        .care
        .start_treatment_programme(pb::StartTreatmentProgrammeRequest {
            event_id: id(),
            occurred_on: "2020-06-02".into(),
            client_id: id(),
            treatment_programme_started: Some(pb::TreatmentProgrammeStarted {
                programme: "IDAP".into(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    await_change(&mut care_table, &["2020"], "programmes_started", 1).await;

    // The tables as GetTable sees them, at the position of the last event.
    let status = analyst
        .insight
        .status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.head, started.position);
    let t = analyst
        .insight
        .get_table(pb::GetTableRequest {
            name: "case-flow".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.position, started.position);
    for (column, n) in [("reported", 1), ("cases", 1), ("referred", 1)] {
        assert_eq!(
            value(&t.columns, &t.rows, &["2020", "4024"], column),
            int(n),
            "{column}"
        );
    }
    let json: serde_json::Value = serde_json::from_str(&t.json).unwrap();
    assert_eq!(json[0]["code"], "4024");
    let c = analyst
        .insight
        .get_table(pb::GetTableRequest {
            name: "clearance".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        value(&c.columns, &c.rows, &["2020", "4024", "FEMALE"], "handled"),
        int(1)
    );
    assert_eq!(
        value(&c.columns, &c.rows, &["2020", "4024", "ALL"], "percent"),
        Some(pb::cell::Value::Float(100.0))
    );
    // As of the referral the decision had not happened.
    let before = analyst
        .insight
        .get_table(pb::GetTableRequest {
            name: "clearance".into(),
            as_of: Some(decided.position - 1),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(before.rows.is_empty(), "{:?}", before.rows);

    // The auditor's subscription saw every event, with the principal in its metadata.
    let last = next_matching(&mut log, "the last event", |e| {
        e.position == started.position
    })
    .await;
    assert_eq!(last.metadata.unwrap().principal, "care");
    let principals: Vec<String> = read_log(&mut auditor, 0)
        .await
        .into_iter()
        .map(|e| e.metadata.unwrap().principal)
        .collect();
    assert_eq!(
        principals,
        ["police", "police", "police", "prosecution", "care", "care"]
    );
    server.stop();
}
