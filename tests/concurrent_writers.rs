//! Concurrent writers to one case through `gryning up`: two police clients on separate
//! connections report crimes into the same case at once; no event is lost or doubled and the
//! case's events share one gap-free version order.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/up.rs"]
mod up;

use gryning_proto::pb;
use up::{as_role, id, read_log, up};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_to_one_case_lose_no_event_and_share_one_version_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    let case = id();
    let mut first = as_role(&server, &server.tokens, "police").await;
    first
        .police
        .open_case(pb::OpenCaseRequest {
            event_id: id(),
            occurred_on: "2020-02-01".into(),
            case_id: case.clone(),
            case_opened: Some(pb::CaseOpened {
                lead_crime_code: "9381".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    const EACH: usize = 40;
    let mut writers = Vec::new();
    let mut sent = Vec::new();
    for _ in 0..2 {
        // Separate connections, so the two writers really race.
        let mut c = as_role(&server, &server.tokens, "police").await;
        let ids: Vec<String> = (0..EACH).map(|_| id()).collect();
        sent.extend(ids.clone());
        let case = case.clone();
        writers.push(tokio::spawn(async move {
            for event_id in ids {
                c.police
                    .report_crime(pb::ReportCrimeRequest {
                        event_id,
                        occurred_on: "2020-02-02".into(),
                        case_id: case.clone(),
                        crime_reported: Some(pb::CrimeReported {
                            crime_id: uuid::Uuid::new_v4().to_string(),
                            crime_code: "9381".into(),
                            victim_gender: 1,
                            victim_age_group: 2,
                        }),
                    })
                    .await
                    .expect("every concurrent write is accepted");
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let mut auditor = as_role(&server, &server.tokens, "auditor").await;
    let mut versions = Vec::new();
    let mut stored = Vec::new();
    let mut last_position = 0;
    for e in read_log(&mut auditor, 10_000).await {
        assert_eq!(e.stream, format!("case-{case}"));
        assert!(e.position > last_position);
        last_position = e.position;
        versions.push(e.version);
        stored.push(e.event.unwrap().event_id);
    }
    assert_eq!(
        versions,
        (1..=(2 * EACH as u64 + 1)).collect::<Vec<_>>(),
        "one gap-free version order"
    );
    let mut stored_reports: Vec<String> = stored[1..].to_vec();
    stored_reports.sort();
    sent.sort();
    assert_eq!(stored_reports, sent, "no lost and no doubled event");
    server.stop();
}
