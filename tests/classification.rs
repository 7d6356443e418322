//! Classification history end to end: `gryning table --classification` offline, through a
//! running `gryning up` (`Insight.GetTable`'s `classification`) and in client mode;
//! `gryning catalog --version` and `gryning catalog diff`; and each bad input refused with an
//! error naming the option or field (and, for an unknown version, listing the versions).

#[path = "support/harness.rs"]
mod harness;
#[path = "support/run.rs"]
mod run;
#[path = "support/up.rs"]
mod up;

use std::path::Path;
use std::time::Duration;

use gryning_proto::pb;
use run::{gryning_in, ok, text};
use tonic::Code;
use up::{as_role, reason};

const STOCKHOLM: &str = "Polisregion Stockholm";

fn opened(n: u32, date: &str, lead: &str) -> String {
    format!(
        r#"{{"eventId":"6f1c2a0e-3b7d-4c55-9a8e-0000000000{n:02}","occurredOn":"{date}","caseId":"9b2e0c1d-2e3f-4a5b-8c7d-0000000000{n:02}","caseOpened":{{"leadCrimeCode":"{lead}","policeRegion":"{STOCKHOLM}","localPoliceArea":"Farsta"}}}}"#
    )
}

fn crime(case: u32, n: u32, date: &str, code: &str, gender: &str) -> String {
    format!(
        r#"{{"eventId":"6f1c2a0e-3b7d-4c55-9a8e-1000000000{n:02}","occurredOn":"{date}","caseId":"9b2e0c1d-2e3f-4a5b-8c7d-0000000000{case:02}","crimeReported":{{"crimeId":"a41d0000-0000-4000-8000-0000000000{n:02}","crimeCode":"{code}","victimGender":"{gender}","victimAgeGroup":"AGE_GROUP_ADULT"}}}}"#
    )
}

/// A 2019 case (lead 9605, a crime 9605 against a man) and a 2020 case (lead 9691, a crime
/// 9691 against a woman and one 9381), imported into `data`.
fn import(dir: &Path) -> std::path::PathBuf {
    let data = dir.join("data");
    let file = dir.join("events.ndjson");
    let lines = [
        opened(1, "2019-03-01", "9605"),
        crime(1, 1, "2019-03-01", "9605", "GENDER_MALE"),
        opened(2, "2020-03-02", "9691"),
        crime(2, 2, "2020-03-02", "9691", "GENDER_FEMALE"),
        crime(2, 3, "2020-03-03", "9381", "GENDER_FEMALE"),
    ];
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    ok(gryning_in(&data, &["import", file.to_str().unwrap()]));
    data
}

/// (period, key, reported, cases) of a case-flow table as JSON.
fn flow(json: &str) -> Vec<(String, String, i64, i64)> {
    let rows: Vec<serde_json::Value> = serde_json::from_str(json).expect("a JSON table");
    rows.iter()
        .map(|r| {
            let key = r.get("code").or(r.get("group")).unwrap();
            (
                r["period"].as_str().unwrap().to_string(),
                key.as_str().unwrap().to_string(),
                r["reported"].as_i64().unwrap(),
                r["cases"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn rows(r: &[(&str, &str, i64, i64)]) -> Vec<(String, String, i64, i64)> {
    r.iter()
        .map(|(p, k, a, b)| (p.to_string(), k.to_string(), *a, *b))
        .collect()
}

fn table(data: &Path, args: &[&str]) -> Vec<(String, String, i64, i64)> {
    let mut all = vec!["table", "case-flow", "--format", "json"];
    all.extend_from_slice(args);
    flow(&ok(gryning_in(data, &all)))
}

/// The rows each classification gives for the imported events.
fn expected(classification: &str) -> Vec<(String, String, i64, i64)> {
    match classification {
        "recorded" => rows(&[
            ("2019", "9605", 1, 1),
            ("2020", "9381", 1, 0),
            ("2020", "9691", 1, 1),
        ]),
        // 2020.1 reads 9605 by the victim's gender (a man: 9695); the lead code has no victim
        // and takes the code for an unknown gender (9691).
        "2020.1" => rows(&[
            ("2019", "9691", 0, 1),
            ("2019", "9695", 1, 0),
            ("2020", "9381", 1, 0),
            ("2020", "9691", 1, 1),
        ]),
        // 2019.1 takes 9381 back into 9365 and 9691 (a woman) into 9605.
        "2019.1" => rows(&[
            ("2019", "9605", 1, 1),
            ("2020", "9365", 1, 0),
            ("2020", "9605", 1, 1),
        ]),
        other => panic!("{other}"),
    }
}

#[test]
fn offline_tables_take_a_classification_and_refuse_what_does_not_go_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = import(dir.path());
    assert_eq!(table(&data, &[]), expected("recorded"));
    for c in ["recorded", "2020.1", "2019.1"] {
        assert_eq!(table(&data, &["--classification", c]), expected(c), "{c}");
    }
    // The groups are the version's: under 2019.1 "Brott i nära relation" is 9365 and 4012,
    // so the 9381 crime of 2020 is in it; as recorded it is too (9381 is in 2020.1's group).
    let group = |c: &str| -> Vec<(String, String, i64, i64)> {
        table(&data, &["--by", "group", "--classification", c])
            .into_iter()
            .filter(|r| r.1 == "Brott i nära relation")
            .collect()
    };
    assert_eq!(
        group("2019.1"),
        rows(&[("2020", "Brott i nära relation", 1, 0)])
    );
    assert_eq!(group("recorded"), group("2019.1"));
    // As of a position: the first two events only, under a version.
    assert_eq!(
        table(&data, &["--classification", "2020.1", "--as-of", "2"]),
        rows(&[("2019", "9691", 0, 1), ("2019", "9695", 1, 0)])
    );

    // An unknown version: exit 2, the option named and the classifications listed.
    let out = gryning_in(&data, &["table", "case-flow", "--classification", "2018.1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("--classification: unknown classification \"2018.1\": the classifications are recorded, 2019.1, 2020.1"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    // Not with a publication; with small-cell suppression, suppressed under the version.
    let out = gryning_in(
        &data,
        &[
            "table",
            "case-flow",
            "--classification",
            "2019.1",
            "--published",
            "2020-Q4",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .contains("--classification 2019.1: a publication holds its tables as recorded"),
        "{}",
        text(&out.stderr)
    );
    let out = gryning_in(
        &data,
        &[
            "table",
            "case-flow",
            "--classification",
            "2019.1",
            "--suppress-below",
            "5",
        ],
    );
    // Suppression works on the version's tables and groups (tests/report.rs checks it cell by
    // cell against the report's).
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("<5"), "{}", text(&out.stdout));
    // region-comparison follows the classification too (by group, the version's groups).
    let out = ok(gryning_in(
        &data,
        &[
            "table",
            "region-comparison",
            "--by",
            "group",
            "--classification",
            "2019.1",
            "--format",
            "json",
        ],
    ));
    assert!(out.starts_with('['), "{out}");
}

#[test]
fn the_catalog_shows_a_version_and_the_difference_between_two() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let shown = ok(gryning_in(&data, &["catalog"]));
    assert!(
        shown.starts_with("Crime-code catalogue, version 2020.1\n"),
        "{shown}"
    );
    assert!(
        shown.contains("versions: 2019.1 (from 2019-01-01), 2020.1 (from 2020-02-01, in force)"),
        "{shown}"
    );
    let old = ok(gryning_in(&data, &["catalog", "--version", "2019.1"]));
    assert!(
        old.starts_with("Crime-code catalogue, version 2019.1\n"),
        "{old}"
    );
    assert!(old.contains("gryning's assumption"), "{old}");
    assert!(!old.contains("\n9381  "), "{old}");
    let doc: serde_json::Value = serde_json::from_str(&ok(gryning_in(
        &data,
        &["catalog", "--version", "2019.1", "--format", "json"],
    )))
    .unwrap();
    assert_eq!(doc["version"], "2019.1");
    assert_eq!(doc["effective"], "2019-01-01");
    assert_eq!(doc["in_force"], "2020.1");
    let close = doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "Brott i nära relation")
        .unwrap();
    assert_eq!(close["codes"], serde_json::json!(["9365", "4012"]));
    let new: serde_json::Value = serde_json::from_str(&ok(gryning_in(
        &data,
        &["catalog", "--version", "2020.1", "--format", "json"],
    )))
    .unwrap();
    let mapping = new["mapping"].as_array().unwrap();
    assert!(
        mapping.contains(&serde_json::json!({"direction": "map", "code": "9605", "to": {"by": "victim_gender", "FEMALE": "9691", "MALE": "9695", "UNKNOWN": "9691"}})),
        "{mapping:?}"
    );
    assert!(
        mapping.contains(
            &serde_json::json!({"direction": "back", "code": "9381", "to": {"code": "9365"}})
        ),
        "{mapping:?}"
    );

    let diff = ok(gryning_in(&data, &["catalog", "diff", "2019.1", "2020.1"]));
    for expected in [
        "Crime-code catalogue, version 2020.1 against 2019.1",
        "codes added in 2020.1 (26):",
        "codes removed in 2020.1 (0):",
        "codes of 2019.1 counted under other codes in 2020.1 (6):",
        "by victim gender: FEMALE 9691, MALE 9695, UNKNOWN 9691",
        "groups changed (",
    ] {
        assert!(diff.contains(expected), "{expected}\n{diff}");
    }
    let doc: serde_json::Value = serde_json::from_str(&ok(gryning_in(
        &data,
        &["catalog", "diff", "2020.1", "2019.1", "--format", "json"],
    )))
    .unwrap();
    assert_eq!(doc["removed"].as_array().unwrap().len(), 26);
    assert!(doc["mapped"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!({"code": "9382", "to": {"code": "9365"}})));
    let close = doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "Brott i nära relation")
        .unwrap();
    assert_eq!(close["removed"], serde_json::json!(["9381", "9382"]));

    // Bad input: an unknown version, for --version and for diff; CSV for a diff.
    for (args, expected) in [
        (
            vec!["catalog", "--version", "1999"],
            "--version: unknown classification \"1999\": the classifications are recorded, 2019.1, 2020.1",
        ),
        (
            vec!["catalog", "diff", "2019.1", "1999"],
            "catalog diff: unknown classification \"1999\": the classifications are 2019.1, 2020.1",
        ),
        (
            vec!["catalog", "diff", "2019.1", "2020.1", "--format", "csv"],
            "--format: catalog diff is shown as text or json, not csv",
        ),
    ] {
        let out = gryning_in(&data, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains(expected), "{}", text(&out.stderr));
    }
}

#[test]
fn a_catalogue_file_with_versions_is_checked_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("catalogue.toml");
    let good = "version = \"b\"\neffective = \"2020-01-01\"\n[[code]]\ncode = \"0002\"\ntext = \"two\"\n[[back]]\nfrom = \"0002\"\nto = \"0001\"\n[[map]]\nfrom = \"0001\"\nto = \"0002\"\n[[versions]]\nname = \"a\"\neffective = \"2019-01-01\"\n[[versions.code]]\ncode = \"0001\"\ntext = \"one\"\n";
    std::fs::write(&file, good).unwrap();
    let out = ok(gryning_in(
        &data,
        &[
            "--catalog",
            file.to_str().unwrap(),
            "catalog",
            "diff",
            "a",
            "b",
        ],
    ));
    assert!(out.contains("0001  0002"), "{out}");
    for (from, to, expected) in [
        (
            "to = \"0002\"",
            "to = \"0003\"",
            "catalogue line 11, map.to: code 0003 is not a code of version \"b\"",
        ),
        (
            "[[back]]\nfrom = \"0002\"\nto = \"0001\"\n",
            "",
            "catalogue line 1, back: version \"b\" adds code 0002, which \"a\" does not list, without mapping it back",
        ),
        (
            "name = \"a\"",
            "nam = \"a\"",
            "unknown field `nam`",
        ),
    ] {
        std::fs::write(&file, good.replacen(from, to, 1)).unwrap();
        let out = gryning_in(&data, &["--catalog", file.to_str().unwrap(), "catalog"]);
        assert_eq!(out.status.code(), Some(2));
        let err = text(&out.stderr);
        assert!(err.contains(expected), "{expected}\n{err}");
        assert!(err.contains("catalogue.toml"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_table_takes_a_classification_and_refuses_an_unknown_one() {
    let dir = tempfile::tempdir().unwrap();
    import(dir.path());
    let server = up::up(dir.path());
    let mut analyst = as_role(&server, &server.tokens, "analyst").await;
    let request = |classification: &str| pb::GetTableRequest {
        name: "case-flow".into(),
        classification: classification.into(),
        ..Default::default()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let t = analyst
            .insight
            .get_table(request(""))
            .await
            .unwrap()
            .into_inner();
        if flow(&t.json) == expected("recorded") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tables never caught up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for c in ["recorded", "2020.1", "2019.1"] {
        let t = analyst
            .insight
            .get_table(request(c))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(flow(&t.json), expected(c), "{c}");
    }
    let as_of = analyst
        .insight
        .get_table(pb::GetTableRequest {
            as_of: Some(2),
            ..request("2020.1")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        flow(&as_of.json),
        rows(&[("2019", "9691", 0, 1), ("2019", "9695", 1, 0)])
    );
    let e = analyst
        .insight
        .get_table(request("2018.1"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert_eq!(reason(&e), "invalid-field");
    assert_eq!(
        e.message(),
        "field classification: unknown classification \"2018.1\": the classifications are recorded, 2019.1, 2020.1"
    );
    let e = analyst
        .insight
        .get_table(pb::GetTableRequest {
            published: "2020-Q4".into(),
            ..request("2019.1")
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        e.message()
            .starts_with("field classification: a publication holds its tables as recorded"),
        "{}",
        e.message()
    );

    // Client mode sends the classification and prints what the offline command prints.
    let out = up::gryning_with(
        &[
            "table",
            "case-flow",
            "--classification",
            "2019.1",
            "--format",
            "json",
            "--server",
            &server.url(),
            "--token",
            &server.tokens["analyst"],
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(flow(&text(&out.stdout)), expected("2019.1"));
    let out = up::gryning_with(
        &[
            "table",
            "case-flow",
            "--classification",
            "2018.1",
            "--server",
            &server.url(),
            "--token",
            &server.tokens["analyst"],
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("InvalidArgument") && err.contains("field classification"),
        "{err}"
    );
    server.stop();
}
