//! `Insight.Explain` and `gryning explain` against `gryning up`: auditor and admin get the
//! events that make up a cell (exactly those, at their positions), analyst and police are
//! PERMISSION_DENIED, each bad field is INVALID_ARGUMENT naming it, a published cell is
//! explained as published while live events move on, and the CLI gives the same answer
//! offline and through `--server`.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/up.rs"]
mod up;

use gryning_proto::pb;
use tonic::Code;
use up::{as_role, id, reason, up, Clients, BIN};

/// What was recorded, by name: each event's id and position.
#[derive(Default)]
struct Recorded {
    events: std::collections::HashMap<&'static str, (String, u64)>,
    case_a: String,
    case_b: String,
    crime_1: String,
    crime_2: String,
}

impl Recorded {
    fn at(&self, name: &str) -> (String, u64) {
        self.events[name].clone()
    }
}

fn case_event(case: &str, date: &str, body: pb::event::Body) -> pb::Event {
    pb::Event {
        event_id: id(),
        occurred_on: date.into(),
        subject: Some(pb::event::Subject::CaseId(case.into())),
        body: Some(body),
    }
}

/// Two cases in 2020-Q1: case A (4024, Farsta) with a female and a male victim's crime, one
/// cleared and one not, and a child-welfare notification 5 days after the opening; case B
/// (9365) with one crime; and one support granted.
async fn record(admin: &mut Clients) -> Recorded {
    use pb::event::Body as B;
    let mut r = Recorded {
        case_a: id(),
        case_b: id(),
        crime_1: id(),
        crime_2: id(),
        ..Recorded::default()
    };
    let crime = |crime: &str, code: &str, gender: pb::Gender| {
        B::CrimeReported(pb::CrimeReported {
            crime_id: crime.into(),
            crime_code: code.into(),
            victim_gender: gender as i32,
            victim_age_group: pb::AgeGroup::Adult as i32,
        })
    };
    let decided = |crime: &str, decision: pb::ProsecutionDecision| {
        B::ProsecutionDecided(pb::ProsecutionDecided {
            crime_id: crime.into(),
            decision: decision as i32,
        })
    };
    let a = r.case_a.clone();
    let b = r.case_b.clone();
    let events: Vec<(&'static str, pb::Event)> = vec![
        (
            "open a",
            case_event(
                &a,
                "2020-01-10",
                B::CaseOpened(pb::CaseOpened {
                    lead_crime_code: "4024".into(),
                    police_region: "Polisregion Stockholm".into(),
                    local_police_area: "Farsta".into(),
                }),
            ),
        ),
        (
            "crime 1",
            case_event(
                &a,
                "2020-01-10",
                crime(&r.crime_1, "4024", pb::Gender::Female),
            ),
        ),
        (
            "notify",
            case_event(
                &a,
                "2020-01-15",
                B::ChildWelfareNotified(pb::ChildWelfareNotified {}),
            ),
        ),
        (
            "crime 2",
            case_event(
                &a,
                "2020-02-01",
                crime(&r.crime_2, "4024", pb::Gender::Male),
            ),
        ),
        (
            "refer a",
            case_event(
                &a,
                "2020-02-10",
                B::CaseReferredToProsecutor(pb::CaseReferredToProsecutor {}),
            ),
        ),
        (
            "decide 1",
            case_event(
                &a,
                "2020-03-01",
                decided(&r.crime_1, pb::ProsecutionDecision::Indictment),
            ),
        ),
        (
            "decide 2",
            case_event(
                &a,
                "2020-03-05",
                decided(&r.crime_2, pb::ProsecutionDecision::NoProsecution),
            ),
        ),
        (
            "open b",
            case_event(
                &b,
                "2020-01-20",
                B::CaseOpened(pb::CaseOpened {
                    lead_crime_code: "9365".into(),
                    police_region: "Polisregion Stockholm".into(),
                    local_police_area: "Skärholmen".into(),
                }),
            ),
        ),
        (
            "crime b",
            case_event(&b, "2020-01-20", crime(&id(), "9365", pb::Gender::Female)),
        ),
        (
            "support",
            pb::Event {
                event_id: id(),
                occurred_on: "2020-02-02".into(),
                subject: Some(pb::event::Subject::ClientId(id())),
                body: Some(B::SupportGranted(pb::SupportGranted {
                    kind: pb::SupportKind::ProtectedHousing as i32,
                    gender: pb::Gender::Female as i32,
                    age_group: pb::AgeGroup::Adult as i32,
                })),
            },
        ),
    ];
    let summary = admin
        .log
        .append(up::tokio_stream_iter(
            events.iter().map(|(_, e)| e.clone()).collect(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.accepted, events.len() as u64, "{summary:?}");
    // One writer: the positions are 1, 2, … in the order sent.
    for (i, (name, event)) in events.iter().enumerate() {
        r.events
            .insert(name, (event.event_id.clone(), i as u64 + 1));
    }
    r
}

fn int(n: i64) -> Option<pb::Cell> {
    Some(pb::Cell {
        value: Some(pb::cell::Value::Int(n)),
    })
}

fn float(x: f64) -> Option<pb::Cell> {
    Some(pb::Cell {
        value: Some(pb::cell::Value::Float(x)),
    })
}

/// (event id, position, crime id, days) of a set's events.
fn listed(set: &pb::ExplainedSet) -> Vec<(String, u64, String, Option<i32>)> {
    set.events
        .iter()
        .map(|e| (e.event_id.clone(), e.position, e.crime_id.clone(), e.days))
        .collect()
}

fn reported(code: &str) -> pb::ExplainRequest {
    pb::ExplainRequest {
        table: "case-flow".into(),
        period: "2020-Q1".into(),
        code: code.into(),
        measure: "reported".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditor_and_admin_get_the_events_of_a_cell_and_analyst_and_police_are_denied() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    let mut admin = as_role(&server, &server.tokens, "admin").await;
    let r = record(&mut admin).await;
    for role in ["auditor", "admin"] {
        let mut c = as_role(&server, &server.tokens, role).await;

        let reply = c
            .insight
            .explain(reported("4024"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.table, "case-flow");
        assert_eq!(reply.row, ["2020-Q1", "4024"]);
        assert_eq!(reply.value, int(2), "{role}");
        assert_eq!(reply.position, 10);
        let (crime_1, crime_2) = (r.at("crime 1"), r.at("crime 2"));
        assert_eq!(
            listed(&reply.sets[0]),
            [
                (crime_1.0, crime_1.1, r.crime_1.clone(), None),
                (crime_2.0, crime_2.1, r.crime_2.clone(), None)
            ]
        );
        let e = &reply.sets[0].events[0];
        assert_eq!(
            (
                e.stream.as_str(),
                e.occurred_on.as_str(),
                e.event_type.as_str()
            ),
            (
                format!("case-{}", r.case_a).as_str(),
                "2020-01-10",
                "CrimeReported"
            )
        );

        // A percent: the cleared and the handled crimes, by their final decisions.
        let reply = c
            .insight
            .explain(pb::ExplainRequest {
                table: "clearance".into(),
                period: "2020".into(),
                code: "4024".into(),
                measure: "percent".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.value, float(50.0));
        assert_eq!(reply.row, ["2020", "4024", "ALL"]);
        let names: Vec<&str> = reply.sets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["cleared", "handled"]);
        let (d1, d2) = (r.at("decide 1"), r.at("decide 2"));
        assert_eq!(
            listed(&reply.sets[0]),
            [(d1.0.clone(), d1.1, r.crime_1.clone(), None)]
        );
        assert_eq!(
            listed(&reply.sets[1]),
            [
                (d1.0, d1.1, r.crime_1.clone(), None),
                (d2.0, d2.1, r.crime_2.clone(), None)
            ]
        );

        // Social services: the notification of the Farsta case, 5 days after its opening.
        let reply = c
            .insight
            .explain(pb::ExplainRequest {
                table: "social-services".into(),
                period: "2020-Q1".into(),
                service: "CHILD_WELFARE_NOTIFICATION".into(),
                local_police_area: "Farsta".into(),
                measure: "median_days_to_notification".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.value, float(5.0));
        let notify = r.at("notify");
        assert_eq!(
            listed(&reply.sets[0]),
            [(notify.0, notify.1, String::new(), Some(5))]
        );
        let reply = c
            .insight
            .explain(pb::ExplainRequest {
                table: "social-services".into(),
                period: "2020".into(),
                service: "PROTECTED_HOUSING".into(),
                victim_gender: "FEMALE".into(),
                age_group: "ADULT".into(),
                measure: "count".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.value, int(1));
        assert_eq!(reply.sets[0].events[0].event_id, r.at("support").0);
        assert!(reply.sets[0].events[0].stream.starts_with("client-"));
    }
    for role in ["analyst", "police", "prosecution", "care"] {
        let mut c = as_role(&server, &server.tokens, role).await;
        let e = c.insight.explain(reported("4024")).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{role}: {e:?}");
        assert_eq!(reason(&e), "permission-denied");
    }
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_field_is_invalid_argument_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    let mut auditor = as_role(&server, &server.tokens, "auditor").await;
    let cases: Vec<(&str, pb::ExplainRequest)> = vec![
        (
            "table",
            pb::ExplainRequest {
                table: "case-flood".into(),
                ..reported("4024")
            },
        ),
        (
            "measure",
            pb::ExplainRequest {
                measure: "handled".into(),
                ..reported("4024")
            },
        ),
        ("code", reported("9999")),
        ("code", reported("40x4")),
        (
            "period",
            pb::ExplainRequest {
                period: "2020-Q5".into(),
                ..reported("4024")
            },
        ),
        (
            "group",
            pb::ExplainRequest {
                code: String::new(),
                group: "Inga brott".into(),
                ..reported("4024")
            },
        ),
        (
            "victim_gender",
            pb::ExplainRequest {
                table: "clearance".into(),
                victim_gender: "WOMEN".into(),
                measure: "handled".into(),
                ..reported("4024")
            },
        ),
        (
            "published",
            pb::ExplainRequest {
                published: "2020Q1".into(),
                ..reported("4024")
            },
        ),
        (
            "revision",
            pb::ExplainRequest {
                revision: 2,
                ..reported("4024")
            },
        ),
    ];
    for (field, request) in cases {
        let e = auditor.insight.explain(request.clone()).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {e:?}");
        assert_eq!(reason(&e), "invalid-field", "{field}");
        assert!(
            e.message().contains(&format!("field {field}")),
            "{field}: {}",
            e.message()
        );
    }
    server.stop();
}

fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(args)
        .env_remove("GRYNING_STORE")
        .env_remove("GRYNING_CONFIG")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_cell_is_explained_as_published_and_the_cli_agrees_offline_and_remote() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = up(dir.path());
    let mut admin = as_role(&server, &server.tokens, "admin").await;
    let r = record(&mut admin).await;
    // Publish computes from the live projections: wait until they have applied the events.
    let started = std::time::Instant::now();
    loop {
        let status = admin
            .insight
            .status(pb::StatusRequest {})
            .await
            .unwrap()
            .into_inner();
        if status.projections.iter().all(|p| p.position >= 10) {
            break;
        }
        assert!(started.elapsed() < harness::DEADLINE, "{status:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let publication = admin
        .insight
        .publish(pb::PublishRequest {
            quarter: "2020-Q1".into(),
            note: "explain".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .publication
        .unwrap();
    assert_eq!(publication.computed_at, 10);
    // A late crime of case A, dated in the published quarter.
    let late = case_event(
        &r.case_a,
        "2020-03-20",
        pb::event::Body::CrimeReported(pb::CrimeReported {
            crime_id: id(),
            crime_code: "4024".into(),
            victim_gender: pb::Gender::Female as i32,
            victim_age_group: pb::AgeGroup::Child as i32,
        }),
    );
    admin
        .log
        .append(up::tokio_stream_iter(vec![late]))
        .await
        .unwrap();
    let mut auditor = as_role(&server, &server.tokens, "auditor").await;
    let live = auditor
        .insight
        .explain(reported("4024"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(live.value, int(3));
    assert_eq!(live.position, 12);
    for period in ["2020-Q1", "2020-Q1..Q1"] {
        let published = auditor
            .insight
            .explain(pb::ExplainRequest {
                period: period.into(),
                published: "2020-Q1".into(),
                ..reported("4024")
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(published.value, int(2), "{period}");
        assert_eq!(published.published_value, int(2), "{period}");
        assert_eq!(published.position, 10);
        assert_eq!(published.publication.as_ref().unwrap().revision, 1);
        assert_eq!(published.sets[0].events.len(), 2);
    }
    // A period the publication does not hold.
    let e = auditor
        .insight
        .explain(pb::ExplainRequest {
            period: "2020".into(),
            published: "2020-Q1".into(),
            ..reported("4024")
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("field period"), "{}", e.message());

    // The CLI through the server, with an auditor's token, and an analyst's refused.
    let url = server.url();
    let cli = |token: &str, extra: &[&str]| {
        let mut args = vec![
            "explain",
            "case-flow",
            "--period",
            "2020-Q1",
            "--code",
            "4024",
            "--measure",
            "reported",
            "--format",
            "json",
            "--server",
            &url,
            "--token",
            token,
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    let remote = cli(&server.tokens["auditor"], &["--published", "2020-Q1"]);
    assert!(
        remote.status.success(),
        "{}",
        String::from_utf8_lossy(&remote.stderr)
    );
    let denied = cli(&server.tokens["analyst"], &[]);
    assert_eq!(denied.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("PermissionDenied"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );

    // gryning publish and gryning publications through the server: an admin publishes the
    // quarter's second revision, an analyst lists both, police may do neither.
    let publish = |token: &str| {
        run(&[
            "publish",
            "--quarter",
            "2020-Q1",
            "--note",
            "again",
            "--server",
            &url,
            "--token",
            token,
        ])
    };
    let refused = publish(&server.tokens["police"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("PermissionDenied"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let second = publish(&server.tokens["admin"]);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let said = String::from_utf8_lossy(&second.stdout).to_string();
    // Computed from the live projections: at the late event (12), or just before it if they
    // had not applied it yet; the list must give the same position.
    let computed: i64 = said
        .strip_prefix("published 2020-Q1 revision 2 at position 13: tables computed at position ")
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    assert!((11..=12).contains(&computed), "{said}");
    let list = |token: &str| {
        run(&[
            "publications",
            "--format",
            "json",
            "--server",
            &url,
            "--token",
            token,
        ])
    };
    let listed = list(&server.tokens["analyst"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let revisions: Vec<(String, i64, i64, String)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["quarter"].as_str().unwrap().to_string(),
                r["revision"].as_i64().unwrap(),
                r["computed_at"].as_i64().unwrap(),
                r["note"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        revisions,
        [
            ("2020-Q1".to_string(), 1, 10, "explain".to_string()),
            ("2020-Q1".to_string(), 2, computed, "again".to_string())
        ]
    );
    assert_eq!(list(&server.tokens["police"]).status.code(), Some(2));
    server.stop();

    // Offline on the data directory: the same answer.
    let offline = run(&[
        "explain",
        "case-flow",
        "--period",
        "2020-Q1",
        "--code",
        "4024",
        "--measure",
        "reported",
        "--format",
        "json",
        "--published",
        // Revision 1, as the server explained it before revision 2 was published.
        "2020-Q1@1",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(
        offline.status.success(),
        "{}",
        String::from_utf8_lossy(&offline.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&offline.stdout),
        String::from_utf8_lossy(&remote.stdout)
    );
    let json: serde_json::Value = serde_json::from_slice(&offline.stdout).unwrap();
    assert_eq!(json["value"], 2);
    assert_eq!(json["published"]["value"], 2);
    assert_eq!(json["published"]["quarter"], "2020-Q1");
    let ids: Vec<&str> = json["sets"]["reported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [r.at("crime 1").0.as_str(), r.at("crime 2").0.as_str()]
    );

    // Text names the cell, the value, the publication and lists the events (the head is 13: the
    // second publication); a bad field
    // offline is named as over gRPC.
    let text = run(&[
        "explain",
        "clearance",
        "--period",
        "2020",
        "--code",
        "4024",
        "--victim-gender",
        "FEMALE",
        "--measure",
        "cleared",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(
        text.status.success(),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.starts_with("clearance 2020 / 4024 / FEMALE cleared: 1 at position 13\n"),
        "{text}"
    );
    assert!(text.contains(&r.at("decide 1").0), "{text}");
    let bad = run(&[
        "explain",
        "clearance",
        "--period",
        "2020",
        "--code",
        "4024",
        "--measure",
        "opened",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("field measure"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// One region's cell: only the events of that region's cases, the same as the region's table
/// shows; the region is named as `--region` names it; a region with a publication, for the
/// county-wide social-services table, or for a care programme measure is refused, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_regions_cell_lists_only_that_regions_events() {
    use pb::event::Body as B;
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    let mut admin = as_role(&server, &server.tokens, "admin").await;
    let mut events = Vec::new();
    let mut crimes = std::collections::BTreeMap::<&str, Vec<String>>::new();
    for (region, n) in [("Polisregion Stockholm", 2), ("Polisregion Syd", 1)] {
        for _ in 0..n {
            let case = id();
            events.push(case_event(
                &case,
                "2020-02-03",
                B::CaseOpened(pb::CaseOpened {
                    lead_crime_code: "4024".into(),
                    police_region: region.into(),
                    local_police_area: "Centrum".into(),
                }),
            ));
            let crime = case_event(
                &case,
                "2020-02-03",
                B::CrimeReported(pb::CrimeReported {
                    crime_id: id(),
                    crime_code: "4024".into(),
                    victim_gender: pb::Gender::Female as i32,
                    victim_age_group: pb::AgeGroup::Adult as i32,
                }),
            );
            crimes
                .entry(region)
                .or_default()
                .push(crime.event_id.clone());
            events.push(crime);
        }
    }
    let summary = admin
        .log
        .append(up::tokio_stream_iter(events))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.accepted, 6);
    let mut auditor = as_role(&server, &server.tokens, "auditor").await;
    for (given, region) in [
        ("Polisregion Syd", "Polisregion Syd"),
        ("syd", "Polisregion Syd"),
        ("Stockholm", "Polisregion Stockholm"),
    ] {
        let reply = auditor
            .insight
            .explain(pb::ExplainRequest {
                region: given.into(),
                ..reported("4024")
            })
            .await
            .unwrap()
            .into_inner();
        let ids: Vec<&str> = reply.sets[0]
            .events
            .iter()
            .map(|e| e.event_id.as_str())
            .collect();
        assert_eq!(ids, crimes[region], "{given}");
        // The region's table shows the same count.
        let table = admin
            .insight
            .get_table(pb::GetTableRequest {
                name: "case-flow".into(),
                by: "code".into(),
                period: "quarter".into(),
                region: given.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let row = table
            .rows
            .iter()
            .find(|r| up::key(r) == ["2020-Q1", "4024"])
            .expect("the row of 4024");
        let at = table.columns.iter().position(|c| c == "reported").unwrap();
        assert_eq!(row.cells[at].value, int(ids.len() as i64).unwrap().value);
    }
    // A police region no case is in: no events; a name that is no region: refused.
    let none = auditor
        .insight
        .explain(pb::ExplainRequest {
            region: "Nord".into(),
            ..reported("4024")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(none.value, int(0));
    for (request, field) in [
        (
            pb::ExplainRequest {
                region: "Atlantis".into(),
                ..reported("4024")
            },
            "field region",
        ),
        (
            pb::ExplainRequest {
                region: "Syd".into(),
                published: "2020-Q1".into(),
                ..reported("4024")
            },
            "field region",
        ),
        (
            pb::ExplainRequest {
                table: "social-services".into(),
                period: "2020".into(),
                service: "CHILD_WELFARE_NOTIFICATION".into(),
                local_police_area: "Centrum".into(),
                measure: "count".into(),
                region: "Syd".into(),
                ..Default::default()
            },
            "field region",
        ),
        (
            pb::ExplainRequest {
                table: "care".into(),
                period: "2020".into(),
                measure: "programmes_started".into(),
                region: "Syd".into(),
                ..Default::default()
            },
            "field measure",
        ),
    ] {
        let e = auditor.insight.explain(request.clone()).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{request:?}");
        assert!(e.message().contains(field), "{request:?}: {}", e.message());
    }
    server.stop();
}
