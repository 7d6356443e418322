//! End-to-end tests of the `gryning` binary: each runs the real command against a fresh data
//! directory and checks what a user sees (exit code, standard output and error) and what the
//! store then holds, read back through `gryning table`.

use std::path::Path;
use std::process::Command;

#[path = "support/run.rs"]
mod run;
use run::{gryning_in as gryning, text};

fn json_table(data_dir: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["table"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let out = gryning(data_dir, &all);
    assert!(
        out.status.success(),
        "gryning {all:?} failed: {}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("table --format json prints JSON")
}

const CASE: &str = "9b2e0c1d-2e3f-4a5b-8c7d-6e5f4a3b2c1d";

fn line(event_id: &str, date: &str, body: &str) -> String {
    format!(r#"{{"eventId":"{event_id}","occurredOn":"{date}","caseId":"{CASE}",{body}}}"#)
}

fn opened() -> String {
    line(
        "6f1c2a0e-3b7d-4c55-9a8e-000000000001",
        "2020-03-02",
        r#""caseOpened":{"leadCrimeCode":"4024","policeRegion":"Polisregion Stockholm","localPoliceArea":"Farsta"}"#,
    )
}

fn crime(n: u32, code: &str, gender: &str, date: &str) -> String {
    line(
        &format!("6f1c2a0e-3b7d-4c55-9a8e-1000000000{n:02}"),
        date,
        &format!(
            r#""crimeReported":{{"crimeId":"a41d0000-0000-4000-8000-0000000000{n:02}","crimeCode":"{code}","victimGender":"{gender}","victimAgeGroup":"AGE_GROUP_ADULT"}}"#
        ),
    )
}

#[test]
fn import_reports_each_bad_line_with_its_number_and_stores_only_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let oversize = format!(r#"{{"eventId":"{}"}}"#, "x".repeat(70 * 1024));
    let cases: Vec<(String, &str)> = vec![
        (opened(), ""),
        (
            "{\"eventId\": ".into(),
            "not a gryning.v1.Event in proto3 JSON",
        ),
        (
            crime(2, "4024", "GENDER_FEMAL", "2020-03-02"),
            "GENDER_FEMAL",
        ),
        (
            crime(3, "4024", "GENDER_FEMALE", "2020-03-02")
                .replace("a41d0000-0000-4000-8000-000000000003", "a41d-not-a-uuid"),
            "field crime_reported.crime_id: must be a UUID",
        ),
        (
            crime(4, "4024", "GENDER_FEMALE", "2020-02-30"),
            "field occurred_on: must be a calendar date",
        ),
        (
            crime(5, "4024", "GENDER_FEMALE", "2999-01-01"),
            "field occurred_on: must not be after today",
        ),
        (
            crime(6, "9999", "GENDER_FEMALE", "2020-03-02"),
            "field crime_reported.crime_code: unknown crime code",
        ),
        (
            opened()
                .replace("Farsta", "Farsta 811218-9876")
                .replace("000000000001", "000000000007"),
            "personal identity",
        ),
        (oversize, "the limit is 65536 bytes"),
        (
            crime(8, "4024", "GENDER_UNSPECIFIED", "2020-03-02"),
            "field crime_reported.victim_gender: is required",
        ),
        (crime(9, "4024", "GENDER_FEMALE", "2020-03-03"), ""),
        (
            crime(9, "4024", "GENDER_FEMALE", "2020-03-03").replace("1000000000", "2000000000"),
            "rule crime-id-new-in-case",
        ),
    ];
    let body: String = cases.iter().map(|(l, _)| format!("{l}\n")).collect();
    let file = dir.path().join("events.ndjson");
    std::fs::write(&file, body).unwrap();
    let data = dir.path().join("data");

    let out = gryning(&data, &["import", file.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a rejected line makes the import fail; stderr: {stderr}"
    );
    assert!(
        text(&out.stdout).contains("2 accepted, 0 duplicate, 10 rejected"),
        "{}",
        text(&out.stdout)
    );
    let reported: Vec<&str> = stderr.lines().filter(|l| l.starts_with("line ")).collect();
    let expected: Vec<(usize, &str)> = cases
        .iter()
        .enumerate()
        .filter(|(_, (_, e))| !e.is_empty())
        .map(|(i, (_, e))| (i + 1, *e))
        .collect();
    assert_eq!(
        reported.len(),
        expected.len(),
        "one message per rejected line: {stderr}"
    );
    for ((n, want), got) in expected.iter().zip(&reported) {
        assert!(
            got.starts_with(&format!("line {n}: ")) && got.contains(want),
            "line {n} should say {want:?}, got {got:?}"
        );
    }
    assert!(
        !stderr.contains("811218"),
        "an identity number must never be echoed"
    );

    let rows = json_table(&data, &["case-flow"]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["period"], "2020");
    assert_eq!(rows[0]["code"], "4024");
    assert_eq!(rows[0]["reported"], 1);
    assert_eq!(rows[0]["cases"], 1);
}

#[test]
fn importing_the_same_file_twice_stores_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.ndjson");
    std::fs::write(
        &file,
        format!(
            "{}\n{}\n{}\n",
            opened(),
            crime(1, "0609", "GENDER_MALE", "2020-04-01"),
            crime(2, "4024", "GENDER_FEMALE", "2020-05-01")
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let first = gryning(&data, &["import", file.to_str().unwrap()]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stdout).contains("3 accepted, 0 duplicate, 0 rejected"),
        "{}",
        text(&first.stdout)
    );
    let before = json_table(&data, &["case-flow"]);
    let second = gryning(&data, &["import", file.to_str().unwrap()]);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        text(&second.stdout).contains("0 accepted, 3 duplicate, 0 rejected"),
        "{}",
        text(&second.stdout)
    );
    assert_eq!(json_table(&data, &["case-flow"]), before);
    let reported: i64 = before.iter().map(|r| r["reported"].as_i64().unwrap()).sum();
    assert_eq!(reported, 2);
}

#[test]
fn demo_reproduces_the_published_figures() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let out = gryning(&data, &["demo"]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("Tabell 1") && stdout.contains("Tabell 2"),
        "{stdout}"
    );
    assert!(!stdout.contains('✗'), "a figure differs: {stdout}");

    // Independently of the demo's own comparison: the tables, read back through the CLI,
    // hold the report's figures as kept in the project's fixture.
    let reference = gryning_synth::reference();
    let by_group = json_table(&data, &["case-flow", "--by", "group"]);
    for row in &reference.tabell_1 {
        assert_flow(
            &by_group,
            ("group", &row.group),
            row.year,
            [row.reported, row.cases, row.referred],
        );
    }
    let by_code = json_table(&data, &["case-flow"]);
    for row in &reference.tabell_2 {
        assert_flow(
            &by_code,
            ("code", &row.code),
            row.year,
            [row.reported, row.cases, row.referred],
        );
    }
}

#[test]
fn demo_with_every_region_shows_the_reports_verdicts_on_stockholm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let out = gryning(&data, &["demo", "--regions", "all"]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        text(&out.stderr)
    );
    assert!(!stdout.contains('✗'), "a figure differs: {stdout}");
    let verdicts = stdout
        .split("against the median of the police regions")
        .nth(1)
        .unwrap_or_else(|| panic!("no verdict table: {stdout}"));
    // Each of the report's twelve verdicts, beside the report's own words, matched.
    for v in gryning_synth::reference().verdicts {
        let words: String = v.report_words.chars().take(20).collect();
        let line = verdicts
            .lines()
            .find(|l| l.contains(&words))
            .unwrap_or_else(|| panic!("no line with {words:?}: {verdicts}"));
        assert!(line.ends_with('✓'), "{line}");
        assert_eq!(line.matches(v.verdict.name()).count(), 2, "{line}");
    }
    // The tables read back through the CLI: Stockholm's figures are the report's.
    let stockholm = json_table(
        &data,
        &["case-flow", "--by", "group", "--region", "Stockholm"],
    );
    for row in &gryning_synth::reference().tabell_1 {
        assert_flow(
            &stockholm,
            ("group", &row.group),
            row.year,
            [row.reported, row.cases, row.referred],
        );
    }
    let comparison = json_table(
        &data,
        &[
            "region-comparison",
            "--by",
            "group",
            "--region",
            "Stockholm",
        ],
    );
    let row = comparison
        .iter()
        .find(|r| {
            r["period"] == "2019" && r["group"] == "Tvångsäktenskap" && r["victim_gender"] == "ALL"
        })
        .expect("a 2019 row for Tvångsäktenskap");
    assert_eq!(row["verdict"], "above");
    assert_eq!(row["regions_in_median"], 7);
}

/// The case-flow row for `key` in `year` holds exactly the published reported, cases, referred.
fn assert_flow(rows: &[serde_json::Value], key: (&str, &str), year: i32, want: [u32; 3]) {
    let period = year.to_string();
    let got = rows
        .iter()
        .find(|r| r[key.0] == key.1 && r["period"] == period.as_str())
        .unwrap_or_else(|| panic!("no row for {} {year}", key.1));
    let got = ["reported", "cases", "referred"].map(|column| got[column].as_u64());
    assert_eq!(got, want.map(|n| Some(u64::from(n))), "{} {year}", key.1);
}

#[test]
fn tables_resume_from_their_checkpoint_and_agree_with_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = dir.path().join("a.ndjson");
    let second = dir.path().join("b.ndjson");
    std::fs::write(
        &first,
        format!(
            "{}\n{}\n",
            opened(),
            crime(1, "4024", "GENDER_FEMALE", "2020-04-01")
        ),
    )
    .unwrap();
    std::fs::write(
        &second,
        format!("{}\n", crime(2, "0609", "GENDER_MALE", "2021-01-05")),
    )
    .unwrap();
    assert!(gryning(&data, &["import", first.to_str().unwrap()])
        .status
        .success());
    let early = json_table(&data, &["case-flow", "--period", "quarter"]);
    assert!(
        data.join("projections.ckpt").exists(),
        "reading a table leaves a checkpoint"
    );
    assert!(gryning(&data, &["import", second.to_str().unwrap()])
        .status
        .success());
    let resumed = json_table(&data, &["case-flow", "--period", "quarter"]);
    assert_ne!(early, resumed);
    let rebuild = gryning(&data, &["rebuild"]);
    assert!(rebuild.status.success(), "{}", text(&rebuild.stderr));
    assert_eq!(
        json_table(&data, &["case-flow", "--period", "quarter"]),
        resumed
    );
    // As of position 2 the table is what it was before the second import.
    assert_eq!(
        json_table(&data, &["case-flow", "--period", "quarter", "--as-of", "2"]),
        early
    );
}

#[test]
fn the_catalogue_is_data_and_can_be_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = gryning(&data, &["catalog", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let close = doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "Brott i nära relation")
        .unwrap();
    assert_eq!(
        close["codes"],
        serde_json::json!(["9365", "9381", "9382", "4012"])
    );
    let text_out = text(&gryning(&data, &["catalog"]).stdout);
    assert!(
        text_out.contains("4024  Köp av sexuell tjänst"),
        "{text_out}"
    );

    // A catalogue without 4024: the same line is now refused, naming the catalogue's version.
    let catalogue = dir.path().join("catalogue.toml");
    std::fs::write(
        &catalogue,
        "version = \"test-1\"\n[[code]]\ncode = \"0609\"\ntext = \"Koppleri\"\n",
    )
    .unwrap();
    let file = dir.path().join("events.ndjson");
    std::fs::write(&file, format!("{}\n", opened())).unwrap();
    let out = gryning(
        &data,
        &[
            "--catalog",
            catalogue.to_str().unwrap(),
            "import",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("line 1: field case_opened.lead_crime_code: unknown crime code")
            && stderr.contains("test-1"),
        "{stderr}"
    );

    let broken = dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        "version = \"x\"\n[[group]]\nname = \"g\"\ncodes = [\"0001\"]\n",
    )
    .unwrap();
    let out = gryning(&data, &["--catalog", broken.to_str().unwrap(), "catalog"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("names code \"0001\", which the catalogue does not list"),
        "{}",
        text(&out.stderr)
    );
}

/// The settings layers reach the CLI: a key of the `GRYNING_CONFIG` file, the environment
/// over it, an option over both; a misspelt variable or file key stops the command, named.
#[test]
fn settings_come_from_the_file_the_environment_and_the_options() {
    let dir = tempfile::tempdir().unwrap();
    let catalogue = |version: &str| {
        let path = dir.path().join(format!("{version}.toml"));
        std::fs::write(
            &path,
            format!("version = \"{version}\"\n[[code]]\ncode = \"0609\"\ntext = \"Koppleri\"\n"),
        )
        .unwrap();
        path
    };
    let (from_file, from_env, from_option) = (
        catalogue("file-1"),
        catalogue("env-1"),
        catalogue("option-1"),
    );
    let config = dir.path().join("gryning.toml");
    std::fs::write(
        &config,
        format!("catalog = {:?}\n", from_file.to_str().unwrap()),
    )
    .unwrap();
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_gryning"))
            .args(args)
            .env_remove("GRYNING_STORE")
            .env_remove("GRYNING_CATALOG")
            .env_remove("GRYNING_DATA_DIR")
            .env("GRYNING_CONFIG", &config)
            .envs(env.iter().copied())
            .output()
            .expect("gryning runs");
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let version = |stdout: &str| stdout.lines().next().unwrap_or_default().to_string();
    let (code, out, err) = run(&[], &["catalog"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(version(&out), "Crime-code catalogue, version file-1");
    let env = [("GRYNING_CATALOG", from_env.to_str().unwrap())];
    let (_, out, _) = run(&env, &["catalog"]);
    assert_eq!(version(&out), "Crime-code catalogue, version env-1");
    let (_, out, _) = run(
        &env,
        &["--catalog", from_option.to_str().unwrap(), "catalog"],
    );
    assert_eq!(version(&out), "Crime-code catalogue, version option-1");

    // Spelt in two parts, so that the repository's scan for undeclared variables passes over it.
    let misspelt = format!("GRYNING_{}", "LISTN");
    let (code, _, err) = run(&[(&misspelt, "127.0.0.1:0")], &["catalog"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "environment variable {misspelt}: not a gryning setting; did you mean GRYNING_LISTEN?"
        )),
        "{err}"
    );
    std::fs::write(&config, "catalogue = \"x.toml\"\n").unwrap();
    let (code, _, err) = run(&[], &["catalog"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "config file {}: unknown key \"catalogue\"; did you mean catalog?",
            config.display()
        )),
        "{err}"
    );
}

#[test]
fn credentials_are_issued_once_and_stored_as_hashes_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials.toml");
    let tokens_file = dir.path().join("tokens.txt");
    // `gryning credentials --file FILE` alone creates the file; its standard output is no
    // terminal here, so the tokens go to --token-out only.
    let out = gryning(
        dir.path(),
        &[
            "credentials",
            "--file",
            file.to_str().unwrap(),
            "--token-out",
            tokens_file.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stdout).contains("token"),
        "{}",
        text(&out.stdout)
    );
    let written = std::fs::read_to_string(&tokens_file).unwrap();
    let tokens: Vec<&str> = written
        .lines()
        .filter(|l| l.starts_with("token role="))
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(tokens.len(), 6, "one token per role: {written}");
    let stored = std::fs::read_to_string(&file).unwrap();
    for token in &tokens {
        assert!(
            !stored.contains(token),
            "a token must never be stored in the clear"
        );
    }
    let again = gryning(
        dir.path(),
        &["credentials", "--file", file.to_str().unwrap()],
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn a_stored_event_of_an_unknown_type_stops_a_replay_naming_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("events.ndjson");
    std::fs::write(
        &file,
        format!(
            "{}\n{}\n",
            opened(),
            crime(1, "4024", "GENDER_FEMALE", "2020-04-01")
        ),
    )
    .unwrap();
    assert!(gryning(&data, &["import", file.to_str().unwrap()])
        .status
        .success());
    // What a later version might store: an event whose body (field 19 of gryning.v1.Event) this
    // version does not know, after a body it knows.
    let case: uuid::Uuid = CASE.parse().unwrap();
    let mut payload = gryning_proto::encode_event(&gryning_domain::Event {
        event_id: uuid::Uuid::from_u128(0x6f1c_2a0e_3b7d_4c55_9a8e_0000_0000_0099),
        occurred_on: gryning_domain::Date::parse("2020-04-02").unwrap(),
        subject: gryning_domain::Subject::Case(case),
        body: gryning_domain::Body::CaseReferredToProsecutor,
    });
    payload.extend_from_slice(&[0x9a, 0x01, 0x00]);
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = gryning_store::sqlite::SqliteStore::open(&data).unwrap();
            let stream = gryning_domain::Subject::Case(case).stream_name();
            let appended = gryning_store::EventStore::append(
                &store,
                gryning_store::AppendRequest {
                    stream,
                    expected_version: gryning_store::ExpectedVersion::Exact(2),
                    events: vec![gryning_store::NewEvent {
                        event_id: uuid::Uuid::new_v4(),
                        payload,
                        metadata: Vec::new(),
                    }],
                },
            )
            .await
            .unwrap();
            assert_eq!(appended.positions, [3]);
        });
    }
    let wants = ["position 3", "field number 19"];
    let rebuild = gryning(&data, &["rebuild"]);
    let stderr = text(&rebuild.stderr);
    assert!(!rebuild.status.success(), "the replay must fail: {stderr}");
    assert!(wants.iter().all(|w| stderr.contains(w)), "{stderr}");
    let table = gryning(&data, &["table", "case-flow"]);
    let stderr = text(&table.stderr);
    assert!(
        !table.status.success(),
        "the table must not skip it: {stderr}"
    );
    assert!(wants.iter().all(|w| stderr.contains(w)), "{stderr}");
    // Recording into that case reads its events first: the line is refused, naming them.
    let more = dir.path().join("more.ndjson");
    std::fs::write(
        &more,
        format!("{}\n", crime(2, "4024", "GENDER_MALE", "2020-04-03")),
    )
    .unwrap();
    let import = gryning(&data, &["import", more.to_str().unwrap()]);
    let stderr = text(&import.stderr);
    assert!(!import.status.success(), "{stderr}");
    assert!(wants.iter().all(|w| stderr.contains(w)), "{stderr}");
}

#[test]
fn a_start_error_names_its_context_and_shows_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    // A port this test holds: `gryning up` cannot listen on it.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let out = gryning(&dir.path().join("data"), &["up", "--listen", &addr]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    // The operating system's words for the cause, once: not repeated by every layer above it.
    assert_eq!(err.matches("Address already in use").count(), 1, "{err}");
    drop(held);
}
