//! The analysts' web dashboard that `gryning up --dashboard-listen ADDR` serves: one page with
//! the live tables (case-flow, clearance, progress by code or group, per year or quarter, for
//! one region or all), a funnel per code or group and the open backlog drawn from progress,
//! each projection's lag behind the store, and the latest publication of each quarter with its
//! changes against live.
//!
//! The page is three small hand-written files built into the binary (`assets/`, through
//! `include_str!`): no CDN, no external font, no inline script (the Content-Security-Policy
//! allows only this origin). The tables arrive as JSON and change without a reload through
//! server-sent events (`GET /api/events`): a snapshot first, then after every batch the live
//! projections apply (the same `LiveProjections` and the same position watch that feed
//! `Insight.Watch`) only the rows that changed, keyed like `Watch`'s
//! (`gryning_insight::changed_rows`).
//!
//! Sign-in ([`session`]): an analyst's or admin's bearer token (the gRPC credentials) is POSTed
//! once in a form body; the answer is a random session id in an `HttpOnly`, `SameSite=Strict`
//! cookie, so the token is never in a URL, in script-readable storage or in a cookie. Without a
//! valid session only the sign-in page and its style sheet are served and every data endpoint
//! answers 401; a token of another role is refused with 403 and says why. The page shows counts
//! only, never event-level data, and with `dashboard_suppress_below` every figure goes through
//! the report's small-cell suppression (`gryning_report::suppress`) first.

mod assets;
mod publications;
mod session;
mod view;

use std::convert::Infallible;
use std::future::IntoFuture as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use gryning_service_common::{Context, LiveProjections, Rpc, StartError};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub use session::{Sessions, COOKIE, SESSION_LIFETIME};
use view::{Query, View};

/// The largest request body the dashboard reads (the sign-in form).
const MAX_BODY_BYTES: usize = 4096;

/// Events buffered per open page beyond what its connection has taken; a page that leaves the
/// buffer full for `stalled_stream_timeout` has its stream ended.
const EVENTS_BUFFER: usize = 8;

/// How often an open page is told the store's head and each projection's lag when no batch
/// lands (a lag shows while the projections catch up).
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// What every handler shares.
struct Shared {
    ctx: Arc<Context>,
    live: Arc<LiveProjections>,
    sessions: Sessions,
    /// Small-cell suppression threshold (2 or more), when on.
    suppress_below: Option<u32>,
}

/// The dashboard, bound and not yet serving.
pub struct Dashboard {
    listener: TcpListener,
    port: u16,
    shared: Arc<Shared>,
}

impl Dashboard {
    /// Binds `addr` for the dashboard over `ctx`'s store and the live projections `live`.
    pub async fn bind(
        addr: SocketAddr,
        ctx: Arc<Context>,
        live: Arc<LiveProjections>,
    ) -> Result<Dashboard, StartError> {
        let bound = |source| StartError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bound)?;
        let port = listener.local_addr().map_err(bound)?.port();
        // Checked by the settings: at most u32::MAX.
        let below = u32::try_from(ctx.settings.dashboard_suppress_below).unwrap_or(u32::MAX);
        Ok(Dashboard {
            listener,
            port,
            shared: Arc::new(Shared {
                ctx,
                live,
                sessions: Sessions::default(),
                suppress_below: (below >= 2).then_some(below),
            }),
        })
    }

    /// The port the dashboard listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the context's shutdown; open event streams end at the shutdown, and a
    /// page that does not let its connection close is waited for at most
    /// `stalled_stream_timeout`.
    pub async fn serve(self) {
        let ctx = Arc::clone(&self.shared.ctx);
        let grace = ctx.settings.stalled_stream_timeout;
        let app = router(self.shared);
        let mut stop = ctx.shutdown_signal();
        let mut stopped = ctx.shutdown_signal();
        let serve = axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .into_future();
        let bounded = async {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            served = serve => if let Err(e) = served {
                tracing::error!(error = %e, "the dashboard stopped serving");
            },
            () = bounded => tracing::warn!("shutting down: dashboard pages still connected after stalled_stream_timeout; closing them"),
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/style.css", get(style))
        .route("/assets/dashboard.js", get(script))
        .route("/session", post(sign_in))
        .route("/session/end", post(sign_out))
        .route("/api/tables", get(tables))
        .route("/api/events", get(events))
        .route("/api/publications", get(publications))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(protect))
        .with_state(shared)
}

/// Headers on every answer: nothing but this origin may be loaded or framed, nothing cached.
async fn protect(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// The answer of every data endpoint without a valid session.
fn unauthorized() -> Response {
    json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"error": "sign in first: POST an analyst's or admin's token to /session"}),
    )
}

fn bad_request(problem: String) -> Response {
    json_response(StatusCode::BAD_REQUEST, &json!({ "error": problem }))
}

async fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, &json!({"error": "no such page"}))
}

/// `/`: the dashboard with a session, the sign-in page without.
async fn index(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match s.sessions.principal(&headers) {
        Some(_) => html(StatusCode::OK, assets::DASHBOARD_HTML.to_string()),
        None => html(StatusCode::OK, assets::sign_in_page(None)),
    }
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        assets::STYLE_CSS,
    )
        .into_response()
}

/// The page's script: only with a session (the sign-in page needs none).
async fn script(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if s.sessions.principal(&headers).is_none() {
        return unauthorized();
    }
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        assets::DASHBOARD_JS,
    )
        .into_response()
}

/// Whether a role may use the dashboard: the roles that may read tables and watch them.
fn may_sign_in(role: gryning_service_common::Role) -> bool {
    Rpc::GetTable.allows(role) && Rpc::Watch.allows(role)
}

/// `POST /session` with the form field `token`: a session cookie and back to `/`.
async fn sign_in(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let token = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    if token.is_empty() {
        return html(
            StatusCode::UNAUTHORIZED,
            assets::sign_in_page(Some("Klistra in en token för att logga in.")),
        );
    }
    let principal = match s
        .ctx
        .credentials
        .authenticate(Some(&format!("Bearer {token}")))
    {
        Ok(p) => p,
        Err(_) => {
            tracing::info!("dashboard sign-in refused: unknown token");
            return html(
                StatusCode::UNAUTHORIZED,
                assets::sign_in_page(Some(
                    "Okänd token: den här servern har inte utfärdat den. Använd den token som gryning up skrev ut för rollen analyst eller admin.",
                )),
            );
        }
    };
    if !may_sign_in(principal.role) {
        tracing::info!(principal = %principal.name, role = principal.role.name(), "dashboard sign-in refused: role");
        let message = format!(
            "Nekad: en token för rollen {} får inte använda översikten. Den visar analytikernas tabeller; logga in med en token för rollen analyst eller admin.",
            principal.role.name()
        );
        return html(StatusCode::FORBIDDEN, assets::sign_in_page(Some(&message)));
    }
    tracing::info!(principal = %principal.name, role = principal.role.name(), "dashboard sign-in");
    let id = s.sessions.open(principal);
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/".to_string()),
            (header::SET_COOKIE, session::cookie(&id)),
        ],
    )
        .into_response()
}

/// `POST /session/end`: the session is forgotten and its cookie cleared.
async fn sign_out(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    s.sessions.close(&headers);
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/".to_string()),
            (header::SET_COOKIE, session::cleared_cookie()),
        ],
    )
        .into_response()
}

impl Shared {
    fn query(&self, uri: &Uri) -> Result<Query, String> {
        Query::parse(uri.query().unwrap_or(""), &self.live, self.suppress_below)
    }

    /// The view of `q` now; suppression (which solves a system of relations) runs on a
    /// blocking thread.
    async fn view(self: &Arc<Self>, q: &Query) -> View {
        let s = Arc::clone(self);
        let q = q.clone();
        let computed = tokio::task::spawn_blocking(move || {
            View::compute(&s.live, &s.ctx.catalogue, &q, s.suppress_below)
        })
        .await;
        computed.unwrap_or_else(|_| View::empty())
    }

    /// The store's head and each projection's lag behind it, as `Insight.Status` reports them.
    async fn status(&self) -> Value {
        let position = self.live.read(|p| p.position());
        let head = self.ctx.store.head().await.ok();
        let lag = head.map(|h| h.saturating_sub(position));
        json!({
            "head": head,
            "position": position,
            "projections": gryning_projections::TableName::ALL
                .into_iter()
                .map(|t| json!({"name": t.name(), "position": position, "lag": lag}))
                .collect::<Vec<_>>(),
        })
    }

    fn about(&self) -> Value {
        json!({
            "suppress_below": self.suppress_below,
            "regions": gryning_domain::region::POLICE_REGIONS,
        })
    }
}

/// `GET /api/tables?by=&period=&region=`: the view as JSON, once.
async fn tables(State(s): State<Arc<Shared>>, headers: HeaderMap, uri: Uri) -> Response {
    if s.sessions.principal(&headers).is_none() {
        return unauthorized();
    }
    let q = match s.query(&uri) {
        Ok(q) => q,
        Err(problem) => return bad_request(problem),
    };
    let view = s.view(&q).await;
    let mut body = view.snapshot();
    body["status"] = s.status().await;
    body["about"] = s.about();
    json_response(StatusCode::OK, &body)
}

/// `GET /api/publications`: the latest publication of each quarter and its changes against live.
async fn publications(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if s.sessions.principal(&headers).is_none() {
        return unauthorized();
    }
    match publications::latest_against_live(&s.ctx, Arc::clone(&s.live), s.suppress_below).await {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(problem) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "error": problem }),
        ),
    }
}

type Events = mpsc::Sender<Result<Event, Infallible>>;

/// `GET /api/events?by=&period=&region=`: server-sent events: `snapshot` (the view), then
/// `change` (changed rows and removed keys per table) after batches that change the view,
/// `status` (head and lag), and `ended` when the session has expired.
async fn events(State(s): State<Arc<Shared>>, headers: HeaderMap, uri: Uri) -> Response {
    let Some(session) = s.sessions.id(&headers) else {
        return unauthorized();
    };
    let q = match s.query(&uri) {
        Ok(q) => q,
        Err(problem) => return bad_request(problem),
    };
    let (tx, rx) = mpsc::channel(EVENTS_BUFFER);
    tokio::spawn(feed(s, q, session, tx));
    Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Sends `value` as event `name`; false when the page is gone or has not read for
/// `stalled_stream_timeout`.
async fn send(tx: &Events, stall: Duration, name: &str, value: &Value) -> bool {
    let event = Event::default().event(name).data(value.to_string());
    matches!(
        tokio::time::timeout(stall, tx.send(Ok(event))).await,
        Ok(Ok(()))
    )
}

async fn feed(s: Arc<Shared>, q: Query, session: String, tx: Events) {
    let stall = s.ctx.settings.stalled_stream_timeout;
    let mut position = s.live.watch_position();
    let mut shutdown = s.ctx.shutdown_signal();
    position.borrow_and_update();
    let mut view = s.view(&q).await;
    let mut snapshot = view.snapshot();
    let mut status = s.status().await;
    snapshot["status"] = status.clone();
    snapshot["about"] = s.about();
    if !send(&tx, stall, "snapshot", &snapshot).await {
        return;
    }
    let mut tick = tokio::time::interval(STATUS_EVERY);
    loop {
        let batch = tokio::select! {
            changed = position.changed() => match changed {
                Ok(()) => true,
                // The projections stopped: the process is ending.
                Err(_) => return,
            },
            _ = tick.tick() => false,
            _ = shutdown.wait_for(|stop| *stop) => return,
            () = tx.closed() => return,
        };
        if !s.sessions.is_open(&session) {
            let _ = send(
                &tx,
                stall,
                "ended",
                &json!({"reason": "the session has ended; sign in again"}),
            )
            .await;
            return;
        }
        if batch {
            // Batches that land while the view is computed are folded into the next one.
            position.borrow_and_update();
            let now = s.view(&q).await;
            if let Some(change) = view.changes(&now) {
                if !send(&tx, stall, "change", &change).await {
                    return;
                }
            }
            view = now;
        }
        let now = s.status().await;
        if now != status {
            if !send(&tx, stall, "status", &now).await {
                return;
            }
            status = now;
        }
    }
}
