//! The analysts' dashboard on the loaded server (`gryning bench`'s `dashboard` row), as a
//! browser uses it, over HTTP/1.1 (hyper's client): sign in with the analyst's token, load the
//! tables the page loads (`GET /api/tables`), open the page's event stream (`GET /api/events`,
//! server-sent events) and see a referral arrive on it. A referral's time runs from the moment
//! its client sends `ReferToProsecutor` to the arrival of the first `change` event after the
//! send, one referral at a time (nothing else writes meanwhile, so that change is the
//! referral's); the referral's own acknowledgement is the baseline.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use gryning_proto::pb;
use gryning_proto::pb::police_client::PoliceClient;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::{header, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tonic::transport::Channel;

use super::watch;

/// How long one referral may take to reach the page before the run fails.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// What one run measured.
pub struct Figures {
    /// `GET /api/tables` from the send to the last byte of the answer, ms, sorted.
    pub tables_ms: Vec<f64>,
    /// `GET /api/events` from the send to the end of its first event (`snapshot`), ms.
    pub open_ms: f64,
    /// A referral's send to the first `change` event after it, ms, sorted.
    pub change_ms: Vec<f64>,
    /// The referral's send to its acknowledgement, ms, sorted.
    pub ack_ms: Vec<f64>,
}

/// A client connection to the dashboard at `port`.
async fn connect(port: u16) -> anyhow::Result<http1::SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot connect to the dashboard on port {port}"))?;
    let (send, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .context("the dashboard's HTTP handshake")?;
    tokio::spawn(connection);
    Ok(send)
}

fn request(method: &str, path: &str, cookie: Option<&str>, body: Bytes) -> Request<Full<Bytes>> {
    let mut r = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "127.0.0.1");
    if let Some(cookie) = cookie {
        r = r.header(header::COOKIE, cookie);
    }
    if !body.is_empty() {
        r = r.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    r.body(Full::new(body)).expect("a well-formed request")
}

/// Signs in with `token`: the session cookie (`name=value`) the answer sets.
async fn sign_in(port: u16, token: &str) -> anyhow::Result<String> {
    let mut send = connect(port).await?;
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token)
        .finish();
    let answer = send
        .send_request(request("POST", "/session", None, Bytes::from(body)))
        .await
        .context("POST /session")?;
    if answer.status() != StatusCode::SEE_OTHER {
        bail!("POST /session answered {}, not 303", answer.status());
    }
    let cookie = answer
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("POST /session set no cookie")?;
    Ok(cookie.to_string())
}

async fn whole(answer: Response<Incoming>) -> anyhow::Result<(StatusCode, Bytes)> {
    let status = answer.status();
    let body = answer.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// One server-sent event: its name, its data, and when its last line arrived.
struct Sse {
    name: String,
    data: String,
    at: Instant,
}

/// Reads `answer`'s event stream into `events` until it ends.
async fn read_events(answer: Response<Incoming>, events: tokio::sync::mpsc::UnboundedSender<Sse>) {
    let mut body = answer.into_body();
    let mut pending = String::new();
    let (mut name, mut data) = (String::new(), String::new());
    while let Some(Ok(frame)) = body.frame().await {
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        pending.push_str(&String::from_utf8_lossy(&chunk));
        let at = Instant::now();
        while let Some(end) = pending.find('\n') {
            let line: String = pending.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !name.is_empty() || !data.is_empty() {
                    let event = Sse {
                        name: std::mem::take(&mut name),
                        data: std::mem::take(&mut data),
                        at,
                    };
                    if events.send(event).is_err() {
                        return;
                    }
                }
            } else if let Some(v) = line.strip_prefix("event:") {
                name = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
    }
}

/// Measures the dashboard on `port` of a server whose gRPC `channel` takes the referrals:
/// `calls` timed table loads (after 5 untimed), then `referrals` referrals, one at a time.
pub async fn measure(
    port: u16,
    channel: Channel,
    tokens: &watch::Tokens<'_>,
    calls: u32,
    referrals: usize,
) -> anyhow::Result<Figures> {
    let cookie = sign_in(port, tokens.analyst).await?;
    let mut send = connect(port).await?;
    let mut tables_ms = Vec::with_capacity(calls as usize);
    for i in 0..calls + 5 {
        // The connection takes the next request only once it has finished with the last
        // answer (hyper refuses a request sent before, "connection was not ready").
        send.ready()
            .await
            .context("the dashboard's connection closed")?;
        let sent = Instant::now();
        let answer = send
            .send_request(request("GET", "/api/tables", Some(&cookie), Bytes::new()))
            .await
            .context("GET /api/tables")?;
        let (status, body) = whole(answer).await?;
        let done = Instant::now();
        if status != StatusCode::OK {
            bail!(
                "GET /api/tables answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let value: serde_json::Value =
            serde_json::from_slice(&body).context("GET /api/tables: not JSON")?;
        if value["tables"].as_array().is_none_or(Vec::is_empty) {
            bail!("GET /api/tables holds no tables");
        }
        if i >= 5 {
            tables_ms.push(watch::signed_ms(sent, done));
        }
    }
    tables_ms.sort_by(f64::total_cmp);

    // The cases to refer, opened in bulk before the page opens.
    let cases = watch::open_cases(channel.clone(), tokens.admin, referrals).await?;

    let mut stream = connect(port).await?;
    let sent = Instant::now();
    let answer = stream
        .send_request(request("GET", "/api/events", Some(&cookie), Bytes::new()))
        .await
        .context("GET /api/events")?;
    if answer.status() != StatusCode::OK {
        let (status, body) = whole(answer).await?;
        bail!(
            "GET /api/events answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(read_events(answer, tx));
    let first = tokio::time::timeout(CHANGE_TIMEOUT, rx.recv())
        .await
        .ok()
        .flatten()
        .context("the event stream sent no snapshot")?;
    if first.name != "snapshot" {
        bail!("the event stream began with {:?}, not snapshot", first.name);
    }
    let open_ms = watch::signed_ms(sent, first.at);

    let police = PoliceClient::new(channel);
    let token = watch::bearer(tokens.police)?;
    let mut change_ms = Vec::with_capacity(cases.len());
    let mut ack_ms = Vec::with_capacity(cases.len());
    for case in cases {
        // What arrived before this send belongs to earlier work.
        while rx.try_recv().is_ok() {}
        let mut police = police.clone();
        let request = watch::with_bearer(
            &token,
            pb::ReferToProsecutorRequest {
                event_id: watch::id(),
                occurred_on: "2020-02-01".into(),
                case_id: case,
            },
        );
        let sent = Instant::now();
        let recorded = police
            .refer_to_prosecutor(request)
            .await
            .context("ReferToProsecutor")?
            .into_inner();
        ack_ms.push(watch::signed_ms(sent, Instant::now()));
        let deadline = tokio::time::Instant::now() + CHANGE_TIMEOUT;
        loop {
            let event = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .ok()
                .flatten()
                .context("the referral did not reach the page within 30 s")?;
            if event.name != "change" {
                continue;
            }
            let change: serde_json::Value =
                serde_json::from_str(&event.data).context("a change event that is not JSON")?;
            if change["position"].as_u64() < Some(recorded.position) {
                continue;
            }
            let tables = change["tables"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            if !tables.iter().any(|t| t["name"] == "case-flow") {
                bail!(
                    "the change that holds a referral does not touch case-flow: {}",
                    event.data
                );
            }
            change_ms.push(watch::signed_ms(sent, event.at));
            break;
        }
    }
    reader.abort();
    change_ms.sort_by(f64::total_cmp);
    ack_ms.sort_by(f64::total_cmp);
    Ok(Figures {
        tables_ms,
        open_ms,
        change_ms,
        ack_ms,
    })
}
