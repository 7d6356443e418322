//! Roles of `gryning up`: every role × RPC is allowed or PERMISSION_DENIED, and an allowed call
//! with a valid request succeeds; no token or an unknown one is UNAUTHENTICATED; the bulk append
//! checks each event against the caller's agency; health needs no token.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/up.rs"]
mod up;

use gryning_proto::pb;
use harness::{Server, DEADLINE};
use tonic::{Code, Status};
use up::{as_role, clients, id, tokio_stream_iter, up, Clients, ROLES};

/// Each RPC with the roles allowed to call it besides admin: the policy as the contract states it.
const POLICY: [(&str, &[&str]); 22] = [
    ("OpenCase", &["police"]),
    ("ReportCrime", &["police"]),
    ("ReclassifyCrime", &["police"]),
    ("ReclassifyCase", &["police"]),
    ("ReferToProsecutor", &["police"]),
    ("CloseInvestigation", &["police"]),
    ("NotifyChildWelfare", &["police"]),
    ("DecideProsecution", &["prosecution"]),
    ("ProposeContractCare", &["care"]),
    ("StartTreatmentProgramme", &["care"]),
    ("EndTreatmentProgramme", &["care"]),
    ("GrantSupport", &["care"]),
    ("Append", &["police", "prosecution", "care"]),
    ("Read", &["auditor"]),
    ("Subscribe", &["auditor"]),
    ("GetTable", &["analyst"]),
    ("Watch", &["analyst"]),
    ("Status", &["analyst"]),
    ("Publish", &[]),
    ("ListPublications", &["analyst"]),
    ("Explain", &["auditor"]),
    ("Audit", &["auditor"]),
];

const DAY: &str = "2020-03-02";

/// What a command needs recorded before it: set up by admin, so that the command itself is valid.
struct Given {
    case: String,
    crime: String,
    client: String,
}

impl Given {
    /// A case with a crime reported in it.
    async fn a_crime(admin: &mut Clients) -> Given {
        let given = Given {
            case: id(),
            crime: id(),
            client: id(),
        };
        admin
            .police
            .open_case(pb::OpenCaseRequest {
                event_id: id(),
                occurred_on: DAY.into(),
                case_id: given.case.clone(),
                case_opened: Some(pb::CaseOpened {
                    lead_crime_code: "4024".into(),
                    ..Default::default()
                }),
            })
            .await
            .expect("admin opens a case");
        admin
            .police
            .report_crime(pb::ReportCrimeRequest {
                event_id: id(),
                occurred_on: DAY.into(),
                case_id: given.case.clone(),
                crime_reported: Some(crime_reported(&given.crime)),
            })
            .await
            .expect("admin reports a crime");
        given
    }

    /// A case with a crime reported in it, referred to the prosecutor.
    async fn a_referred_crime(admin: &mut Clients) -> Given {
        let given = Given::a_crime(admin).await;
        admin
            .police
            .refer_to_prosecutor(pb::ReferToProsecutorRequest {
                event_id: id(),
                occurred_on: DAY.into(),
                case_id: given.case.clone(),
            })
            .await
            .expect("admin refers the case");
        given
    }

    /// A client with a treatment programme running.
    async fn a_running_programme(admin: &mut Clients) -> Given {
        let given = Given {
            case: id(),
            crime: id(),
            client: id(),
        };
        admin
            .care
            .start_treatment_programme(pb::StartTreatmentProgrammeRequest {
                event_id: id(),
                occurred_on: DAY.into(),
                client_id: given.client.clone(),
                treatment_programme_started: Some(programme()),
            })
            .await
            .expect("admin starts a programme");
        given
    }
}

fn crime_reported(crime: &str) -> pb::CrimeReported {
    pb::CrimeReported {
        crime_id: crime.into(),
        crime_code: "4024".into(),
        victim_gender: pb::Gender::Female as i32,
        victim_age_group: pb::AgeGroup::Adult as i32,
    }
}

fn programme() -> pb::TreatmentProgrammeStarted {
    pb::TreatmentProgrammeStarted {
        programme: "IDAP".into(),
    }
}

fn case_event(case: &str, body: pb::event::Body) -> pb::Event {
    pb::Event {
        event_id: id(),
        occurred_on: DAY.into(),
        subject: Some(pb::event::Subject::CaseId(case.into())),
        body: Some(body),
    }
}

/// A command recorded for the first time: a new event at the stream's next version.
fn recorded(reply: pb::Recorded, version: u64) -> Result<(), Status> {
    assert!(!reply.duplicate, "{reply:?}");
    assert_eq!(reply.version, version, "{reply:?}");
    Ok(())
}

/// Calls `rpc` as `c` (whose role is `role`) with a valid request, after `admin` recorded what
/// the request needs. An allowed call succeeds: `Ok` after checking its reply says so.
async fn call(c: &mut Clients, role: &str, admin: &mut Clients, rpc: &str) -> Result<(), Status> {
    use pb::event::Body as B;
    match rpc {
        "OpenCase" => {
            let reply = c
                .police
                .open_case(pb::OpenCaseRequest {
                    event_id: id(),
                    occurred_on: DAY.into(),
                    case_id: id(),
                    case_opened: Some(pb::CaseOpened {
                        lead_crime_code: "4024".into(),
                        ..Default::default()
                    }),
                })
                .await?;
            recorded(reply.into_inner(), 1)
        }
        "ReportCrime" => {
            let given = Given::a_crime(admin).await;
            let reply = c
                .police
                .report_crime(pb::ReportCrimeRequest {
                    event_id: id(),
                    occurred_on: DAY.into(),
                    case_id: given.case,
                    crime_reported: Some(crime_reported(&id())),
                })
                .await?;
            recorded(reply.into_inner(), 3)
        }
        "ReclassifyCrime" => {
            let given = Given::a_crime(admin).await;
            let reply = c
                .police
                .reclassify_crime(pb::ReclassifyCrimeRequest {
                    event_id: id(),
                    occurred_on: DAY.into(),
                    case_id: given.case,
                    crime_reclassified: Some(pb::CrimeReclassified {
                        crime_id: given.crime,
                        crime_code: "9365".into(),
                    }),
                })
                .await?;
            recorded(reply.into_inner(), 3)
        }
        "ReclassifyCase" => {
            let given = Given::a_crime(admin).await;
            let reply = c
                .police
                .reclassify_case(pb::ReclassifyCaseRequest {
                    event_id: id(),
                    occurred_on: DAY.into(),
                    case_id: given.case,
                    case_reclassified: Some(pb::CaseReclassified {
                        lead_crime_code: "9365".into(),
                    }),
                })
                .await?;
            recorded(reply.into_inner(), 3)
        }
        "ReferToProsecutor" => {
            let given = Given::a_crime(admin).await;
            let reply = c
                .police
                .refer_to_prosecutor(pb::ReferToProsecutorRequest {
                    event_id: id(),
                    occurred_on: DAY.into(),
                    case_id: given.case,
                })
                .await?;
            recorded(reply.into_inner(), 3)
        }
        "CloseInvestigation" => {
            let given = Given::a_crime(admin).await;
            let reply = c
                .police
                .close_investigation(pb::CloseInvestigationRequest {
                    event_id: id(),
                    occurred_on: DAY.into(),
                    case_id: given.case,
                    investigation_closed: Some(pb::InvestigationClosed {
                        crime_ids: vec![given.crime],
                        reason: pb::ClosureReason::InsufficientEvidence as i32,
                    }),
                })
                .await?;
            recorded(reply.into_inner(), 3)
        }
        "NotifyChildWelfare" => {
            let given = Given::a_crime(admin).await;
            let reply = c
                .police
                .notify_child_welfare(pb::NotifyChildWelfareRequest {
                    event_id: id(),
                    occurred_on: DAY.into(),
                    case_id: given.case,
                })
                .await?;
            recorded(reply.into_inner(), 3)
        }
        "DecideProsecution" => {
            let given = Given::a_referred_crime(admin).await;
            let reply = c
                .prosecution
                .decide_prosecution(pb::DecideProsecutionRequest {
                    event_id: id(),
                    occurred_on: DAY.into(),
                    case_id: given.case,
                    prosecution_decided: Some(pb::ProsecutionDecided {
                        crime_id: given.crime,
                        decision: pb::ProsecutionDecision::Indictment as i32,
                    }),
                })
                .await?;
            recorded(reply.into_inner(), 4)
        }
        "ProposeContractCare" => {
            let given = Given::a_crime(admin).await;
            let reply = c
                .care
                .propose_contract_care(pb::ProposeContractCareRequest {
                    event_id: id(),
                    occurred_on: DAY.into(),
                    case_id: given.case,
                })
                .await?;
            recorded(reply.into_inner(), 3)
        }
        "StartTreatmentProgramme" => {
            let reply = c
                .care
                .start_treatment_programme(pb::StartTreatmentProgrammeRequest {
                    event_id: id(),
                    occurred_on: DAY.into(),
                    client_id: id(),
                    treatment_programme_started: Some(programme()),
                })
                .await?;
            recorded(reply.into_inner(), 1)
        }
        "EndTreatmentProgramme" => {
            let given = Given::a_running_programme(admin).await;
            let reply = c
                .care
                .end_treatment_programme(pb::EndTreatmentProgrammeRequest {
                    event_id: id(),
                    occurred_on: DAY.into(),
                    client_id: given.client,
                    treatment_programme_ended: Some(pb::TreatmentProgrammeEnded {
                        outcome: pb::TreatmentOutcome::Completed as i32,
                    }),
                })
                .await?;
            recorded(reply.into_inner(), 2)
        }
        "GrantSupport" => {
            let reply = c
                .care
                .grant_support(pb::GrantSupportRequest {
                    event_id: id(),
                    occurred_on: DAY.into(),
                    client_id: id(),
                    support_granted: Some(pb::SupportGranted {
                        kind: pb::SupportKind::ProtectedHousing as i32,
                        gender: pb::Gender::Female as i32,
                        age_group: pb::AgeGroup::Adult as i32,
                    }),
                })
                .await?;
            recorded(reply.into_inner(), 1)
        }
        "Append" => {
            // An event of the caller's own agency (any one for roles that record nothing).
            let event = match role {
                "prosecution" => {
                    let given = Given::a_referred_crime(admin).await;
                    case_event(
                        &given.case,
                        B::ProsecutionDecided(pb::ProsecutionDecided {
                            crime_id: given.crime,
                            decision: pb::ProsecutionDecision::NoProsecution as i32,
                        }),
                    )
                }
                "care" => {
                    let given = Given::a_crime(admin).await;
                    case_event(
                        &given.case,
                        B::ContractCareProposed(pb::ContractCareProposed {}),
                    )
                }
                _ => case_event(
                    &id(),
                    B::CaseOpened(pb::CaseOpened {
                        lead_crime_code: "9365".into(),
                        ..Default::default()
                    }),
                ),
            };
            let summary = c
                .log
                .append(tokio_stream_iter(vec![event]))
                .await?
                .into_inner();
            assert_eq!(
                (summary.accepted, summary.duplicates, summary.rejected),
                (1, 0, 0),
                "{role}: {:?}",
                summary.rejections
            );
            Ok(())
        }
        "Read" => {
            Given::a_crime(admin).await;
            let mut read = c
                .log
                .read(pb::ReadRequest { after: 0, limit: 0 })
                .await?
                .into_inner();
            let mut events = 0;
            while read.message().await?.is_some() {
                events += 1;
            }
            assert!(events >= 2, "read {events} events");
            Ok(())
        }
        "Subscribe" => {
            Given::a_crime(admin).await;
            let mut subscription = c
                .log
                .subscribe(pb::SubscribeRequest { after: 0 })
                .await?
                .into_inner();
            let first = tokio::time::timeout(DEADLINE, subscription.message())
                .await
                .expect("the first event within the deadline")?;
            assert_eq!(first.expect("an event").position, 1);
            Ok(())
        }
        "GetTable" => {
            let table = c
                .insight
                .get_table(pb::GetTableRequest {
                    name: "care".into(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            assert_eq!(table.name, "care");
            Ok(())
        }
        "Watch" => {
            let mut stream = c
                .insight
                .watch(pb::WatchRequest {
                    name: "care".into(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            let first = tokio::time::timeout(DEADLINE, stream.message())
                .await
                .expect("the initial table within the deadline")?;
            assert!(first.expect("the initial table").initial);
            Ok(())
        }
        "Status" => {
            let status = c.insight.status(pb::StatusRequest {}).await?.into_inner();
            assert!(!status.projections.is_empty(), "{status:?}");
            Ok(())
        }
        "Publish" => {
            Given::a_crime(admin).await;
            let reply = c
                .insight
                .publish(pb::PublishRequest {
                    quarter: "2020-Q1".into(),
                    note: "roles".into(),
                })
                .await?
                .into_inner();
            let publication = reply.publication.expect("the publication");
            assert_eq!(publication.quarter, "2020-Q1");
            assert!(publication.revision >= 1, "{publication:?}");
            Ok(())
        }
        "ListPublications" => {
            c.insight
                .list_publications(pb::ListPublicationsRequest::default())
                .await?;
            Ok(())
        }
        "Explain" => {
            let given = Given::a_crime(admin).await;
            let reply = c
                .insight
                .explain(pb::ExplainRequest {
                    table: "case-flow".into(),
                    period: "2020-Q1".into(),
                    code: "4024".into(),
                    measure: "reported".into(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            // Every earlier call recorded crimes of 4024 on the same day: the crime just
            // reported is among the listed, and the value is the list's size.
            let events = &reply.sets[0].events;
            assert_eq!(
                reply.value,
                Some(pb::Cell {
                    value: Some(pb::cell::Value::Int(events.len() as i64))
                })
            );
            assert!(
                events.iter().any(|e| e.crime_id == given.crime
                    && e.stream == format!("case-{}", given.case)
                    && e.event_type == "CrimeReported"),
                "{reply:?}"
            );
            Ok(())
        }
        "Audit" => {
            let given = Given::a_crime(admin).await;
            let reply = c
                .insight
                .audit(pb::AuditRequest {
                    stream: format!("case-{}", given.case),
                    ..Default::default()
                })
                .await?
                .into_inner();
            // The case admin just opened and the crime it reported, in order, by admin.
            let listed: Vec<(&str, &str)> = reply
                .entries
                .iter()
                .map(|e| (e.principal.as_str(), e.event_type.as_str()))
                .collect();
            assert_eq!(
                listed,
                [("admin", "CaseOpened"), ("admin", "CrimeReported")],
                "{reply:?}"
            );
            Ok(())
        }
        other => panic!("unknown rpc {other}"),
    }
}

async fn admin(server: &Server) -> Clients {
    as_role(server, &server.tokens, "admin").await
}

#[test]
fn the_policy_table_names_every_rpc() {
    let named: Vec<&str> = POLICY.iter().map(|(rpc, _)| *rpc).collect();
    let all: Vec<String> = gryning_service_common::Rpc::ALL
        .iter()
        .map(|rpc| format!("{rpc:?}"))
        .collect();
    assert_eq!(named, all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_may_call_its_rpcs_and_succeeds_and_is_permission_denied_for_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    let mut admin = admin(&server).await;
    for role in ROLES {
        let mut c = as_role(&server, &server.tokens, role).await;
        for (rpc, allowed) in POLICY {
            let result = call(&mut c, role, &mut admin, rpc).await;
            if role == "admin" || allowed.contains(&role) {
                if let Err(e) = result {
                    panic!("{role} may call {rpc} and a valid request succeeds: {e:?}");
                }
            } else {
                let code = result.map_or_else(|e| e.code(), |()| Code::Ok);
                assert_eq!(code, Code::PermissionDenied, "{role} calling {rpc}");
            }
        }
    }
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_an_unknown_token_is_unauthenticated_for_every_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    let mut admin = admin(&server).await;
    let mut anonymous = clients(&server, None).await;
    let mut wrong = clients(&server, Some("gry_not-a-token")).await;
    for (rpc, _) in POLICY {
        for (who, c) in [("no token", &mut anonymous), ("unknown token", &mut wrong)] {
            let code = call(c, "admin", &mut admin, rpc)
                .await
                .map_or_else(|e| e.code(), |()| Code::Ok);
            assert_eq!(code, Code::Unauthenticated, "{who}: {rpc}");
        }
    }
    server.stop();
}

/// Through the bulk append, each event is checked against the caller's agency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bulk_append_checks_each_event_against_the_callers_agency() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    let case = id();
    let events = vec![
        pb::Event {
            event_id: id(),
            occurred_on: "2020-01-02".into(),
            subject: Some(pb::event::Subject::CaseId(case.clone())),
            body: Some(pb::event::Body::CaseOpened(pb::CaseOpened {
                lead_crime_code: "9365".into(),
                ..Default::default()
            })),
        },
        pb::Event {
            event_id: id(),
            occurred_on: "2020-01-03".into(),
            subject: Some(pb::event::Subject::CaseId(case.clone())),
            body: Some(pb::event::Body::ContractCareProposed(
                pb::ContractCareProposed {},
            )),
        },
    ];
    let mut police = as_role(&server, &server.tokens, "police").await;
    let summary = police
        .log
        .append(tokio_stream_iter(events.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (summary.accepted, summary.duplicates, summary.rejected),
        (1, 0, 1)
    );
    assert_eq!(summary.rejections[0].index, 1);
    assert_eq!(summary.rejections[0].reason, "permission-denied");
    let mut admin = admin(&server).await;
    let summary = admin
        .log
        .append(tokio_stream_iter(events))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (summary.accepted, summary.duplicates, summary.rejected),
        (1, 1, 0)
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_needs_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "gryning.v1.Police".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reply.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    server.stop();
}

/// A publication event: only admin may record one through `Append` (copying a log); every
/// other role's is refused on its own with `permission-denied`, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admin_may_append_a_publication() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    let publication = |revision| pb::Event {
        event_id: id(),
        occurred_on: "2020-04-02".into(),
        subject: Some(pb::event::Subject::PublicationQuarter("2020-Q1".into())),
        body: Some(pb::event::Body::TablesPublished(pb::TablesPublished {
            quarter: "2020-Q1".into(),
            revision,
            position: 0,
            catalogue_version: "2020.1".into(),
            catalogue_sha256: "0".repeat(64),
            published_at: "2020-04-02T12:00:00+02:00".into(),
            principal: "copied".into(),
            note: String::new(),
            automatic: false,
            tables: Vec::new(),
        })),
    };
    for role in ["police", "prosecution", "care"] {
        let mut c = as_role(&server, &server.tokens, role).await;
        let summary = c
            .log
            .append(tokio_stream_iter(vec![publication(1)]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!((summary.accepted, summary.rejected), (0, 1), "{role}");
        assert_eq!(summary.rejections[0].reason, "permission-denied", "{role}");
    }
    for role in ["analyst", "auditor"] {
        let mut c = as_role(&server, &server.tokens, role).await;
        let e = c
            .log
            .append(tokio_stream_iter(vec![publication(1)]))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{role}");
    }
    let mut admin = admin(&server).await;
    let listed = admin
        .insight
        .list_publications(pb::ListPublicationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.publications.is_empty(), "{listed:?}");
    let summary = admin
        .log
        .append(tokio_stream_iter(vec![publication(1), publication(1)]))
        .await
        .unwrap()
        .into_inner();
    // The second is revision 1 again: the lifecycle rule keeps revisions in order.
    assert_eq!((summary.accepted, summary.rejected), (1, 1));
    assert_eq!(summary.rejections[0].reason, "revision-must-be-next");
    server.stop();
}
