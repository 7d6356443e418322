//! `region` on `Insight.GetTable` and `Insight.Watch` of a running `gryning up`, and
//! `gryning table --region` offline and in client mode: one region's cases only, a region named
//! short or in another case, a police region without cases empty, an unknown region refused
//! with INVALID_ARGUMENT naming the field and listing the regions, and no region on a
//! published table.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/up.rs"]
mod up;

use std::time::Duration;

use gryning_proto::pb;
use harness::next_matching;
use tonic::Code;
use up::{as_role, id, int, reason, up, value, Clients, BIN};

fn open_case(case: &str, region: &str) -> pb::OpenCaseRequest {
    pb::OpenCaseRequest {
        event_id: id(),
        occurred_on: "2020-03-02".into(),
        case_id: case.into(),
        case_opened: Some(pb::CaseOpened {
            lead_crime_code: "4024".into(),
            police_region: region.into(),
            local_police_area: "Centrum".into(),
        }),
    }
}

async fn report(police: &mut Clients, case: &str) {
    police
        .police
        .report_crime(pb::ReportCrimeRequest {
            event_id: id(),
            occurred_on: "2020-03-03".into(),
            case_id: case.into(),
            crime_reported: Some(pb::CrimeReported {
                crime_id: id(),
                crime_code: "4024".into(),
                victim_gender: pb::Gender::Female as i32,
                victim_age_group: pb::AgeGroup::Adult as i32,
            }),
        })
        .await
        .unwrap();
}

fn request(name: &str, region: &str) -> pb::GetTableRequest {
    pb::GetTableRequest {
        name: name.into(),
        region: region.into(),
        ..Default::default()
    }
}

async fn reported(analyst: &mut Clients, region: &str) -> Option<pb::cell::Value> {
    let t = analyst
        .insight
        .get_table(request("case-flow", region))
        .await
        .unwrap()
        .into_inner();
    value(&t.columns, &t.rows, &["2020", "4024"], "reported")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_table_and_watch_answer_for_one_region() {
    let dir = tempfile::tempdir().unwrap();
    let server = up(dir.path());
    let mut police = as_role(&server, &server.tokens, "police").await;
    let mut analyst = as_role(&server, &server.tokens, "analyst").await;
    let (stockholm, syd) = (id(), id());
    police
        .police
        .open_case(open_case(&stockholm, "Polisregion Stockholm"))
        .await
        .unwrap();
    police
        .police
        .open_case(open_case(&syd, "Polisregion Syd"))
        .await
        .unwrap();
    report(&mut police, &stockholm).await;
    report(&mut police, &syd).await;
    // The live projections have applied everything once the whole table shows it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while reported(&mut analyst, "").await != int(2) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "tables never caught up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        reported(&mut analyst, "Polisregion Stockholm").await,
        int(1)
    );
    assert_eq!(reported(&mut analyst, "stockholm").await, int(1));
    assert_eq!(reported(&mut analyst, "SYD").await, int(1));
    // A police region no case is in: no rows.
    let nord = analyst
        .insight
        .get_table(request("clearance", "Nord"))
        .await
        .unwrap()
        .into_inner();
    assert!(nord.rows.is_empty(), "{:?}", nord.rows);
    // The comparison table answers, one region's rows only with a region.
    let comparison = analyst
        .insight
        .get_table(request("region-comparison", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(comparison.columns[3], "region");

    // An unknown region, on GetTable and on Watch.
    let e = analyst
        .insight
        .get_table(request("case-flow", "Atlantis"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert_eq!(reason(&e), "invalid-field");
    for expected in [
        "field region",
        "Atlantis",
        "Polisregion Nord",
        "Polisregion Syd",
    ] {
        assert!(e.message().contains(expected), "{}", e.message());
    }
    let e = analyst
        .insight
        .watch(pb::WatchRequest {
            name: "case-flow".into(),
            region: "Atlantis".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("field region"), "{}", e.message());
    // Publications are county-wide.
    let e = analyst
        .insight
        .get_table(pb::GetTableRequest {
            published: "2020-Q1".into(),
            ..request("case-flow", "Stockholm")
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("field region"), "{}", e.message());

    // Watch of Stockholm: the first table is Stockholm's; a crime in Syd changes nothing in
    // it, so the next message is the one a Stockholm crime brings.
    let mut stream = analyst
        .insight
        .watch(pb::WatchRequest {
            name: "case-flow".into(),
            region: "Stockholm".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let first = next_matching(&mut stream, "initial table", |_| true).await;
    assert!(first.initial);
    assert_eq!(
        value(
            &first.columns,
            &first.changed,
            &["2020", "4024"],
            "reported"
        ),
        int(1)
    );
    report(&mut police, &syd).await;
    report(&mut police, &stockholm).await;
    let next = tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("a change within the deadline")
        .unwrap()
        .expect("the stream is open");
    assert_eq!(
        value(&next.columns, &next.changed, &["2020", "4024"], "reported"),
        int(2),
        "{next:?}"
    );
    assert_eq!(reported(&mut analyst, "Syd").await, int(2));

    // Client mode prints the region's table as the offline command would.
    let out = std::process::Command::new(BIN)
        .args([
            "table",
            "case-flow",
            "--region",
            "Stockholm",
            "--format",
            "json",
            "--server",
            &server.url(),
            "--token",
            &server.tokens["analyst"],
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["reported"], 2);
    let out = std::process::Command::new(BIN)
        .args([
            "table",
            "case-flow",
            "--region",
            "Atlantis",
            "--server",
            &server.url(),
            "--token",
            &server.tokens["analyst"],
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("InvalidArgument") && stderr.contains("field region"),
        "{stderr}"
    );
    server.stop();
}

#[test]
fn offline_table_takes_a_region_and_refuses_an_unknown_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("events.ndjson");
    let case = |n: u32, region: &str| {
        format!(
            "{{\"eventId\":\"6f1c2a0e-3b7d-4c55-9a8e-0000000000{n:02}\",\"occurredOn\":\"2020-03-02\",\"caseId\":\"9b2e0c1d-2e3f-4a5b-8c7d-0000000000{n:02}\",\"caseOpened\":{{\"leadCrimeCode\":\"4024\",\"policeRegion\":\"{region}\",\"localPoliceArea\":\"A\"}}}}"
        )
    };
    std::fs::write(
        &file,
        format!(
            "{}\n{}\n{}\n",
            case(1, "Polisregion Stockholm"),
            case(2, "Polisregion Väst"),
            case(3, "Polisregion Väst")
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["--data-dir", data.to_str().unwrap()];
        all.extend_from_slice(args);
        std::process::Command::new(BIN).args(&all).output().unwrap()
    };
    assert!(run(&["import", file.to_str().unwrap()]).status.success());
    let cases = |region: &str| -> serde_json::Value {
        let out = run(&["table", "case-flow", "--region", region, "--format", "json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        rows[0]["cases"].clone()
    };
    assert_eq!(cases("väst"), 2);
    assert_eq!(cases("Polisregion Stockholm"), 1);
    let out = run(&["table", "clearance", "--region", "Gotland"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in ["field region", "\"Gotland\"", "Polisregion Bergslagen"] {
        assert!(stderr.contains(expected), "{stderr}");
    }
    let out = run(&[
        "table",
        "case-flow",
        "--region",
        "Väst",
        "--published",
        "2020-Q1",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--region and --published conflict"
    );
}
