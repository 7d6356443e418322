//! The analysts' dashboard of `gryning up --dashboard-listen`, read as people read it: Debian's
//! headless Chromium, driven over the DevTools protocol (`chromiumoxide`), signs in with a
//! token, and the page's figures are read from its DOM while a referral is recorded through the
//! police service; a police token is refused on the page. Beside the browser, plain HTTP
//! requests check that without a session only the sign-in page is served and every data
//! endpoint answers 401, and that suppression is honoured. Chromium must be installed
//! (scripts/test.sh does it): the test fails, saying how, when it is not.

#[path = "support/chromium.rs"]
mod chromium;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/up.rs"]
mod up;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::Page;
use futures_util::StreamExt;
use gryning_proto::pb;
use harness::Server;
use up::id;

/// How long the page may take to show a change. Generous so that a loaded CI machine does not
/// fail the test; the time it took is printed (and it is no assertion of speed).
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// A data directory with the Stockholm 2019–2020 case flow (`gryning demo`) and 2020-Q4
/// published, so the page has figures and a publication to compare with live.
fn demo_data(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let data_arg = data.to_str().unwrap();
    for args in [
        &["--data-dir", data_arg, "demo"][..],
        &["--data-dir", data_arg, "publish", "--quarter", "2020-Q4"][..],
    ] {
        let out = up::gryning_with(args, &[]);
        assert!(
            out.status.success(),
            "gryning {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    data
}

/// `gryning up` with the dashboard on a free port, its data in `data`, and the settings `env`.
fn up_with_dashboard(dir: &Path, data: &Path, env: &[(&str, &str)]) -> Server {
    Server::start(
        up::BIN,
        &[
            "up",
            "--listen",
            "127.0.0.1:0",
            "--dashboard-listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        env,
        &dir.join(format!("up-{}.log", id())),
    )
}

/// One HTTP/1.1 request to the dashboard: (status, headers, body).
async fn http(
    port: u16,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the dashboard");
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
    if let Some(c) = cookie {
        request.push_str(&format!("cookie: {c}\r\n"));
    }
    let body = form.unwrap_or("");
    if form.is_some() {
        request.push_str(&format!(
            "content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    // An event stream never ends by itself: read what came within a moment.
    let _ = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response).to_string();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// The session cookie (`gryning_session=…`) an analyst's sign-in sets.
async fn sign_in(port: u16, token: &str) -> String {
    let (status, head, _) = http(
        port,
        "POST",
        "/session",
        None,
        Some(&format!("token={token}")),
    )
    .await;
    assert_eq!(status, 303, "{head}");
    let line = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .expect("a session cookie");
    assert!(
        line.contains("httponly") && line.contains("samesite=strict"),
        "{line}"
    );
    assert!(!line.contains(token), "the token is not the cookie");
    line.split(';').next().unwrap().to_string()
}

/// Evaluates `expression` in the page.
async fn eval(page: &Page, expression: &str) -> serde_json::Value {
    page.evaluate(expression)
        .await
        .unwrap_or_else(|e| panic!("{expression}: {e}"))
        .into_value()
        .unwrap_or(serde_json::Value::Null)
}

/// Waits until `expression` is true in the page; the time it took.
async fn until(page: &Page, what: &str, expression: &str, timeout: Duration) -> Duration {
    let started = Instant::now();
    loop {
        // While the page navigates, its old context is gone: that is "not yet".
        let now = page
            .evaluate(expression)
            .await
            .ok()
            .and_then(|r| r.into_value().ok());
        if now == Some(serde_json::Value::Bool(true)) {
            return started.elapsed();
        }
        if started.elapsed() > timeout {
            let url = page.url().await.ok().flatten().unwrap_or_default();
            let content = page.content().await.unwrap_or_default();
            panic!("{what}: not on the page within {timeout:?}; the page {url}:\n{content}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The text of the dashboard's cell `column` of `table`'s row `row` (`2020|4024`).
fn cell(table: &str, row: &str, column: &str) -> String {
    format!(
        "(document.querySelector('td[data-table=\"{table}\"][data-row=\"{row}\"][data-column=\"{column}\"]') || {{}}).textContent"
    )
}

/// The number the page shows in a cell (digits only: Swedish grouping uses spaces).
async fn number(page: &Page, table: &str, row: &str, column: &str) -> Option<i64> {
    let text = eval(page, &cell(table, row, column)).await;
    let digits: String = text
        .as_str()?
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

async fn browser(profile: &Path) -> (Browser, tokio::task::JoinHandle<()>) {
    let config = BrowserConfig::builder()
        .chrome_executable(chromium::path("the dashboard's browser test"))
        .new_headless_mode()
        .no_sandbox()
        .window_size(1400, 1000)
        .viewport(None::<chromiumoxide::handler::viewport::Viewport>)
        .user_data_dir(profile)
        .args(["--disable-gpu", "--hide-scrollbars", "--lang=sv-SE"])
        .build()
        .expect("a browser configuration");
    let (browser, mut handler) = Browser::launch(config).await.expect("chromium starts");
    let events = tokio::spawn(async move {
        while let Some(event) = handler.next().await {
            if event.is_err() {
                break;
            }
        }
    });
    (browser, events)
}

/// Fills the sign-in form with `token` and submits it.
async fn submit_token(page: &Page, token: &str) {
    page.find_element("#token")
        .await
        .expect("the token field")
        .click()
        .await
        .unwrap()
        .type_str(token)
        .await
        .unwrap();
    page.find_element("#sign-in button[type=submit]")
        .await
        .expect("the sign-in button")
        .click()
        .await
        .unwrap();
}

fn crime_reported(case: &str) -> pb::ReportCrimeRequest {
    pb::ReportCrimeRequest {
        event_id: id(),
        occurred_on: "2020-03-02".into(),
        case_id: case.into(),
        crime_reported: Some(pb::CrimeReported {
            crime_id: id(),
            crime_code: "4024".into(),
            victim_gender: pb::Gender::Female as i32,
            victim_age_group: pb::AgeGroup::Adult as i32,
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyst_signs_in_and_sees_a_referral_arrive_without_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let data = demo_data(dir.path());
    let server = up_with_dashboard(dir.path(), &data, &[]);
    let port = server.dashboard_port.expect("the dashboard's address");
    let url = format!("http://127.0.0.1:{port}/");
    let (mut browser, events) = browser(&dir.path().join("profile")).await;
    let page = browser.new_page(url.as_str()).await.expect("a page");

    // Signed out: the sign-in page, and a police token is refused on it.
    until(
        &page,
        "the sign-in form",
        "document.getElementById('sign-in') !== null",
        harness::DEADLINE,
    )
    .await;
    assert_eq!(
        eval(&page, "document.getElementById('tables')").await,
        serde_json::Value::Null
    );
    submit_token(&page, &server.tokens["police"]).await;
    until(
        &page,
        "the refusal",
        "document.getElementById('refused') !== null",
        harness::DEADLINE,
    )
    .await;
    let refused = eval(
        &page,
        "(document.getElementById('refused') || {}).textContent",
    )
    .await;
    let refused = refused.as_str().unwrap_or_default();
    assert!(
        refused.contains("Nekad: en token för rollen police får inte använda översikten"),
        "{refused:?}"
    );
    assert!(
        page.get_cookies().await.unwrap().is_empty(),
        "no session for police"
    );

    // An analyst signs in: the dashboard, with a session cookie no script can read.
    let token = server.tokens["analyst"].clone();
    submit_token(&page, &token).await;
    until(
        &page,
        "the live tables",
        "document.body.dataset.position !== undefined",
        harness::DEADLINE,
    )
    .await;
    let cookies = page.get_cookies().await.unwrap();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert_eq!(cookies[0].name, "gryning_session");
    assert!(cookies[0].http_only, "{cookies:?}");
    assert_ne!(cookies[0].value, token);
    assert_eq!(eval(&page, "document.cookie").await, serde_json::json!(""));
    assert_eq!(
        eval(&page, "localStorage.length + sessionStorage.length").await,
        serde_json::json!(0)
    );
    let location = page.url().await.unwrap().unwrap_or_default();
    assert!(!location.contains(&token), "{location}");

    // The page is marked: a reload would lose the mark.
    eval(&page, "window.notReloaded = true").await;
    let reported = number(&page, "case-flow", "2020|4024", "reported")
        .await
        .expect("a 2020 row of 4024");
    let referred = number(&page, "case-flow", "2020|4024", "referred")
        .await
        .expect("a 2020 row of 4024");

    let mut police = up::as_role(&server, &server.tokens, "police").await;
    let case = id();
    police.police.open_case(up::open_case(&case)).await.unwrap();
    police
        .police
        .report_crime(crime_reported(&case))
        .await
        .unwrap();
    until(
        &page,
        "the reported crime",
        &format!(
            "{}.replace(/\\D/g, '') === '{}'",
            cell("case-flow", "2020|4024", "reported"),
            reported + 1
        ),
        CHANGE_TIMEOUT,
    )
    .await;

    let started = Instant::now();
    police
        .police
        .refer_to_prosecutor(pb::ReferToProsecutorRequest {
            event_id: id(),
            occurred_on: "2020-03-02".into(),
            case_id: case.clone(),
        })
        .await
        .unwrap();
    let recorded = started.elapsed();
    until(
        &page,
        "the referral",
        &format!(
            "{}.replace(/\\D/g, '') === '{}'",
            cell("case-flow", "2020|4024", "referred"),
            referred + 1
        ),
        CHANGE_TIMEOUT,
    )
    .await;
    let shown = started.elapsed();
    println!(
        "dashboard: the referral was recorded in {} ms and on the page {} ms after it was sent (without a reload)",
        recorded.as_millis(),
        shown.as_millis()
    );
    assert_eq!(
        eval(&page, "window.notReloaded === true").await,
        serde_json::json!(true)
    );
    assert_eq!(
        number(&page, "case-flow", "2020|4024", "referred").await,
        Some(referred + 1)
    );
    // The funnel of the code and the backlog are drawn from progress; the publication of
    // 2020-Q4 is listed with the cells that differ from live (the new case's year-to-date ones).
    assert_eq!(
        eval(
            &page,
            "document.querySelectorAll('svg[data-funnel=\"4024\"] rect').length"
        )
        .await,
        serde_json::json!(5)
    );
    assert!(
        number(&page, "backlog", "all", "all").await.is_some(),
        "the backlog's total"
    );
    until(
        &page,
        "the publications",
        "document.querySelector('[data-publication=\"2020-Q4\"]') !== null",
        harness::DEADLINE,
    )
    .await;
    // The page speaks Swedish, the report's words included: the changes against live are
    // counted in Swedish (once the publications are read again after the change) and each
    // measure is named by the report's label.
    until(
        &page,
        "the publication's changes against live",
        "document.querySelector('[data-publication=\"2020-Q4\"]').textContent.includes('skiljer sig från de levande siffrorna')",
        CHANGE_TIMEOUT,
    )
    .await;
    let publication = eval(
        &page,
        "document.querySelector('[data-publication=\"2020-Q4\"]').textContent",
    )
    .await;
    let publication = publication.as_str().unwrap_or_default();
    assert!(
        publication.contains("2020-Q4, revision 1")
            && publication.contains("skiljer sig från de levande siffrorna")
            && publication.contains("Anmälda brott"),
        "{publication:?}"
    );
    let words = eval(&page, "document.querySelector('header').textContent").await;
    let words = words.as_str().unwrap_or_default();
    for word in [
        "Rader per",
        "brottskodsgrupp",
        "kvartal",
        "Alla regioner",
        "Logga ut",
    ] {
        assert!(
            words.contains(word),
            "{word:?} not in the header: {words:?}"
        );
    }

    // The picture for the README: the top of the page after the change, taken on every run and
    // checked to be a picture; `UPDATE_SCREENSHOTS=1 cargo test --workspace --locked --test
    // dashboard` copies it over the README's.
    eval(&page, "window.scrollTo(0, 0)").await;
    let shots = tempfile::tempdir().unwrap();
    let png = shots.path().join("dashboard.png");
    page.save_screenshot(ScreenshotParams::builder().build(), png.as_path())
        .await
        .expect("a screenshot");
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
        "the screenshot shows the page, not a blank ({} bytes)",
        bytes.len()
    );
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/img");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(&png, docs.join("dashboard.png")).unwrap();
    }

    // Signing out ends the session; the page's stream says so or closes.
    let signed_out = http(
        port,
        "GET",
        "/api/tables",
        Some(&format!("gryning_session={}", cookies[0].value)),
        None,
    )
    .await;
    assert_eq!(signed_out.0, 200, "{}", signed_out.2);
    page.find_element("form[action='/session/end'] button")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    page.wait_for_navigation().await.unwrap();
    until(
        &page,
        "the sign-in page again",
        "document.getElementById('sign-in') !== null",
        harness::DEADLINE,
    )
    .await;
    let after = http(
        port,
        "GET",
        "/api/tables",
        Some(&format!("gryning_session={}", cookies[0].value)),
        None,
    )
    .await;
    assert_eq!(after.0, 401, "a closed session reads nothing");

    browser.close().await.unwrap();
    let _ = browser.wait().await;
    events.abort();
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_only_the_sign_in_page_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = up_with_dashboard(dir.path(), &dir.path().join("data"), &[]);
    let port = server.dashboard_port.expect("the dashboard's address");

    let (status, _, body) = http(port, "GET", "/", None, None).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("id=\"sign-in\"") && !body.contains("dashboard.js"),
        "{body}"
    );
    assert_eq!(
        http(port, "GET", "/assets/style.css", None, None).await.0,
        200
    );
    let forged = format!("gryning_session={}", "a".repeat(64));
    for path in [
        "/api/tables",
        "/api/events",
        "/api/publications",
        "/assets/dashboard.js",
    ] {
        for cookie in [None, Some(forged.as_str())] {
            let (status, _, body) = http(port, "GET", path, cookie, None).await;
            assert_eq!(status, 401, "{path} with {cookie:?}: {body}");
            assert!(body.contains("sign in first"), "{body}");
        }
    }
    // A token in the URL is no sign-in.
    let token = &server.tokens["analyst"];
    let (status, _, _) = http(
        port,
        "GET",
        &format!("/api/tables?token={token}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 401);

    // Refused tokens: unknown, and every role but analyst and admin, without a cookie.
    for (token, expected) in [
        ("gry_not-a-token".to_string(), 401),
        (server.tokens["police"].clone(), 403),
        (server.tokens["prosecution"].clone(), 403),
        (server.tokens["care"].clone(), 403),
        (server.tokens["auditor"].clone(), 403),
    ] {
        let (status, head, body) = http(
            port,
            "POST",
            "/session",
            None,
            Some(&format!("token={token}")),
        )
        .await;
        assert_eq!(status, expected, "{body}");
        assert!(!head.contains("set-cookie"), "{head}");
        assert!(body.contains("id=\"refused\""), "{body}");
    }
    let (_, _, body) = http(
        port,
        "POST",
        "/session",
        None,
        Some(&format!("token={}", server.tokens["police"])),
    )
    .await;
    assert!(
        body.contains("Nekad: en token för rollen police får inte använda översikten"),
        "{body}"
    );

    // The analyst's and the admin's sessions read the tables; a bad parameter is named.
    for role in ["analyst", "admin"] {
        let cookie = sign_in(port, &server.tokens[role]).await;
        let (status, head, body) = http(
            port,
            "GET",
            "/api/tables?by=group&period=quarter",
            Some(&cookie),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(
            head.contains("content-security-policy: default-src 'none'"),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["tables"].as_array().unwrap().len(), 3, "{v}");
        let (status, _, body) =
            http(port, "GET", "/api/tables?by=colour", Some(&cookie), None).await;
        assert_eq!(status, 400);
        assert!(
            body.contains("parameter by: must be code or group"),
            "{body}"
        );
        let (status, _, body) = http(port, "GET", "/api/events", Some(&cookie), None).await;
        assert_eq!(status, 200);
        assert!(body.contains("event: snapshot"), "{body}");
    }
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_honours_suppression() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = up_with_dashboard(
        dir.path(),
        &data,
        &[("GRYNING_DASHBOARD_SUPPRESS_BELOW", "5")],
    );
    let port = server.dashboard_port.expect("the dashboard's address");
    // Three cases of one code: every count of the year is 1 to 4, so hidden.
    let mut police = up::as_role(&server, &server.tokens, "police").await;
    for _ in 0..3 {
        let case = id();
        police.police.open_case(up::open_case(&case)).await.unwrap();
        police
            .police
            .report_crime(crime_reported(&case))
            .await
            .unwrap();
    }
    let cookie = sign_in(port, &server.tokens["analyst"]).await;
    let started = Instant::now();
    let body = loop {
        let (_, _, body) = http(port, "GET", "/api/tables", Some(&cookie), None).await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if v["position"].as_u64() >= Some(6) {
            break v;
        }
        assert!(
            started.elapsed() < harness::DEADLINE,
            "the six events not on the dashboard: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(body["about"]["suppress_below"], serde_json::json!(5));
    let flow = &body["tables"][0];
    assert_eq!(flow["name"], "case-flow");
    let columns: Vec<&str> = flow["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let row = flow["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[0] == "2020" && r[1] == "4024")
        .expect("the 2020 row of 4024");
    let reported = columns.iter().position(|c| *c == "reported").unwrap();
    assert_eq!(row[reported], "<5", "{row}");
    for table in body["tables"].as_array().unwrap() {
        for row in table["rows"].as_array().unwrap() {
            for v in row.as_array().unwrap() {
                if let Some(n) = v.as_i64() {
                    assert!(!(1..5).contains(&n), "a small count shown: {row}");
                }
            }
        }
    }
    let (status, _, body) = http(
        port,
        "GET",
        "/api/tables?region=Stockholm",
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("parameter region: small-cell suppression"),
        "{body}"
    );
    server.stop();
}
