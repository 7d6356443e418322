//! What the handlers of every service share: the store, the one `Recorder`, the catalogue, the
//! credentials, the shutdown signal and the background tasks that must finish before the
//! process exits. Also the recording helper every command RPC goes through.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gryning_domain::date::stockholm;
use gryning_domain::Catalogue;
use gryning_proto::pb;
use gryning_recording::{Outcome, Recorder, Submission};
use gryning_store::EventStore;
use jiff::Timestamp;
use prost::Message;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::{self, Credentials, IssuedToken, Principal};
use crate::status::ServiceError;
use crate::Settings;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    // A variant with a source names only its own context: the source follows in the error
    // chain (`{:#}`), so putting it in the message too would print it twice.
    #[error("cannot open the event store")]
    Store(#[from] gryning_store::Error),
    #[error("store {url}: {problem}")]
    Backend { url: String, problem: &'static str },
    #[error("cannot open the NATS JetStream store at {url}")]
    Nats {
        url: String,
        source: gryning_store_nats::NatsError,
    },
    /// A file a NATS setting names cannot be used (unreadable, or readable by others).
    #[error("setting {setting}: {path}: {problem}", path = .path.display())]
    NatsFile {
        setting: &'static str,
        path: PathBuf,
        problem: String,
    },
    #[error("catalogue file {path}: {message}")]
    Catalogue { path: PathBuf, message: String },
    #[error(transparent)]
    Credentials(#[from] auth::CredentialsError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("tls file {path}")]
    TlsFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot bring the projections up to date")]
    Projections(#[from] gryning_projections::Error),
    #[error("the gRPC server failed")]
    Serve(#[from] tonic::transport::Error),
}

/// The shared state of one server process.
pub struct Context {
    pub settings: Settings,
    pub store: Arc<dyn EventStore>,
    pub recorder: Arc<Recorder>,
    pub catalogue: Arc<Catalogue>,
    pub credentials: Arc<Credentials>,
    /// Tokens issued on this start (the credentials file was new): shown once, then gone.
    pub issued: Vec<IssuedToken>,
    /// The server's gRPC health statuses.
    pub health: crate::server::Health,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Where each case or client stream a scoped principal recorded in belongs: decided by the
    /// stream's first event, which never changes.
    places: Mutex<std::collections::HashMap<String, auth::Place>>,
}

/// Streams whose place [`Context`] keeps before it forgets them all and reads them again.
const PLACES_KEPT: usize = 100_000;

/// Opens the event store `settings` name: the embedded one in `data_dir`, or NATS JetStream
/// for `nats://…` URLs (several comma-separated server URLs for a cluster), creating the
/// JetStream stream with `nats_replicas` replicas when it does not exist. The one place a
/// backend is chosen: `gryning` commands, `gryning up` and every service binary come through here.
pub async fn open_store(settings: &Settings) -> Result<Arc<dyn EventStore>, StartError> {
    match settings.store.as_deref() {
        None | Some("") => Ok(Arc::new(gryning_store::sqlite::SqliteStore::open(
            &settings.data_dir,
        )?)),
        Some(url) if gryning_store_nats::is_nats_url(url) => {
            let store = gryning_store_nats::NatsStore::connect(url, nats_options(settings)?)
                .await
                .map_err(|source| StartError::Nats {
                    url: url.to_string(),
                    source,
                })?;
            Ok(Arc::new(store))
        }
        Some(url) => Err(StartError::Backend {
            url: url.to_string(),
            problem: "unknown backend; use nats://HOST:PORT or leave the store unset for the embedded one",
        }),
    }
}

/// The NATS store's options from the settings: replicas, TLS and credentials. Secret files
/// (password, token, seed, `.creds`, client key) are refused when group or others may read or
/// write them, as the credentials file is.
pub fn nats_options(settings: &Settings) -> Result<gryning_store_nats::Options, StartError> {
    Ok(gryning_store_nats::Options {
        replicas: settings.nats_replicas,
        connection: nats_connection(settings)?,
        ..Default::default()
    })
}

fn nats_connection(settings: &Settings) -> Result<gryning_store_nats::Connection, StartError> {
    use gryning_store_nats::{Auth, Connection, Secret, Tls};
    let tls = match (
        &settings.nats_tls_ca,
        &settings.nats_tls_cert,
        &settings.nats_tls_key,
    ) {
        (None, None, _) => None,
        (ca, cert, key) => {
            if let Some(key) = key {
                secret_file("nats_tls_key", key)?;
            }
            Some(Tls {
                ca: ca.clone(),
                client: cert.clone().zip(key.clone()),
            })
        }
    };
    let text = |setting: &'static str, path: &Path| -> Result<Secret, StartError> {
        Ok(Secret::new(
            secret_file(setting, path)?.trim_end_matches(['\r', '\n']),
        ))
    };
    let auth = if let Some(user) = &settings.nats_user {
        let password = match (&settings.nats_password, &settings.nats_password_file) {
            (_, Some(path)) => text("nats_password_file", path)?,
            (Some(password), None) => Secret::new(password.expose()),
            (None, None) => Secret::new(""),
        };
        Auth::UserPassword {
            user: user.clone(),
            password,
        }
    } else if let Some(path) = &settings.nats_token_file {
        Auth::Token(text("nats_token_file", path)?)
    } else if let Some(token) = &settings.nats_token {
        Auth::Token(Secret::new(token.expose()))
    } else if let Some(path) = &settings.nats_nkey_seed_file {
        Auth::NKey {
            seed: text("nats_nkey_seed_file", path)?,
            path: path.clone(),
        }
    } else if let Some(path) = &settings.nats_creds_file {
        Auth::Creds {
            creds: Secret::new(secret_file("nats_creds_file", path)?),
            path: path.clone(),
        }
    } else {
        Auth::None
    };
    Ok(Connection { tls, auth })
}

/// The text of a file of secrets, refused when group or others may read or write it.
fn secret_file(setting: &'static str, path: &Path) -> Result<String, StartError> {
    let problem = |problem: String| StartError::NatsFile {
        setting,
        path: path.to_path_buf(),
        problem,
    };
    let meta = std::fs::metadata(path).map_err(|e| problem(format!("cannot read it: {e}")))?;
    if let Some(mode) = crate::credentials::shared_mode(&meta) {
        return Err(problem(format!(
            "may be read or written by group or others (mode {mode:04o}); it holds a secret and must be private to the user the servers run as: run `chmod 600 {}`",
            path.display()
        )));
    }
    std::fs::read_to_string(path).map_err(|e| problem(format!("cannot read it: {e}")))
}

/// Whether a store opened by [`open_store_to_read`] may be written (and its data directory's
/// checkpoint with it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// This process owns the store (or it is a shared NATS store).
    Owner,
    /// Another process owns the embedded store: it is read as committed at the open, nothing is
    /// written, the data directory's checkpoint included.
    ReadOnly { owner_pid: Option<u32> },
}

/// [`open_store`] for a command that only reads: when another process owns the embedded store
/// in the data directory, the store is opened read-only beside it instead of being refused.
pub async fn open_store_to_read(
    settings: &Settings,
) -> Result<(Arc<dyn EventStore>, Access), StartError> {
    match open_store(settings).await {
        Ok(opened) => Ok((opened, Access::Owner)),
        Err(StartError::Store(gryning_store::Error::Locked { pid, .. })) => {
            let opened = gryning_store::sqlite::SqliteStore::open_read_only(&settings.data_dir)?;
            Ok((Arc::new(opened), Access::ReadOnly { owner_pid: pid }))
        }
        Err(e) => Err(e),
    }
}

pub fn load_catalogue(path: Option<&Path>) -> Result<Arc<Catalogue>, StartError> {
    Ok(Arc::new(match path {
        None => Catalogue::default_catalogue(),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| StartError::Catalogue {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
            Catalogue::from_toml(&text).map_err(|e| StartError::Catalogue {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?
        }
    }))
}

impl Context {
    /// Opens everything the settings name: store, catalogue, credentials.
    pub async fn open(settings: Settings) -> Result<Arc<Context>, StartError> {
        let store = open_store(&settings).await?;
        Context::with_store(settings, store)
    }

    /// Uses an already opened store (any backend).
    pub fn with_store(
        settings: Settings,
        store: Arc<dyn EventStore>,
    ) -> Result<Arc<Context>, StartError> {
        let catalogue = load_catalogue(settings.catalog.as_deref())?;
        let (credentials, issued) = Credentials::load_or_create(&settings.credentials_path())?;
        if !issued.is_empty() {
            tracing::info!(path = %settings.credentials_path().display(), "issued one token per role; they are shown once");
        }
        let recorder =
            Recorder::new(Arc::clone(&store), Arc::clone(&catalogue)).with_clock(settings.clock()?);
        let recorder = Arc::new(recorder);
        Ok(Arc::new(Context {
            settings,
            store,
            recorder,
            catalogue,
            credentials: Arc::new(credentials),
            issued,
            health: crate::server::Health::default(),
            shutdown: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
            places: Mutex::new(std::collections::HashMap::new()),
        }))
    }

    pub fn authenticator(&self) -> auth::Authenticator {
        auth::Authenticator::new(Arc::clone(&self.credentials))
    }

    /// A receiver that turns `true` when the server begins to shut down; streaming handlers
    /// end their streams on it so that the graceful shutdown does not wait on them forever.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub(crate) fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// A background task the server waits for after shutdown begins (e.g. the projections'
    /// final checkpoint).
    pub fn spawn_background(&self, task: JoinHandle<()>) {
        self.tasks.lock().expect("task list poisoned").push(task);
    }

    pub(crate) fn take_background(&self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut *self.tasks.lock().expect("task list poisoned"))
    }

    /// Records one event for `principal`: converts it (`from_pb` checks every field's form),
    /// checks that the principal's role may record its type, and hands it to the shared
    /// `Recorder` with the principal in the stored metadata.
    pub async fn record(
        &self,
        principal: &Principal,
        event: pb::Event,
        rpc: auth::Rpc,
    ) -> Result<pb::Recorded, ServiceError> {
        let submission = self.submission(principal, event, rpc).await?;
        let event_id = submission.event.event_id;
        let event_type = submission.event.body.type_name();
        let outcome = self.recorder.record(submission).await?;
        if let Outcome::Stored { .. } = outcome {
            crate::metrics::global().appended(event_type, principal.role.name());
        }
        // Per event: debug, not info. The event log itself is the audit trail (the principal
        // is in each event's metadata) and the metrics count appends; a line per event at the
        // default level cost the police benchmark 10-20 %.
        tracing::debug!(%event_id, principal = %principal.name, ?outcome, "recorded");
        Ok(recorded(event_id.to_string(), outcome))
    }

    /// Converts and authorizes one event without recording it (bulk appends batch these). A
    /// closure naming more than `max_crime_ids` crimes is refused before its ids are parsed.
    /// A scoped principal's event is checked against the place of its stream (a refusal of
    /// its type or place is logged and counted under `rpc`).
    pub async fn submission(
        &self,
        principal: &Principal,
        event: pb::Event,
        rpc: auth::Rpc,
    ) -> Result<Submission, ServiceError> {
        let event_id = event.event_id.clone();
        if let Some(pb::event::Body::InvestigationClosed(closed)) = &event.body {
            let found = closed.crime_ids.len() as u64;
            if found > self.settings.max_crime_ids {
                return Err(ServiceError::TooManyItems {
                    field: "investigation_closed.crime_ids",
                    found,
                    limit: self.settings.max_crime_ids,
                    setting: "max_crime_ids",
                });
            }
        }
        let event = gryning_proto::from_pb(event)?;
        if !auth::may_append(principal.role, &event.body) {
            let e = auth::Error::EventDenied {
                principal: principal.name.clone(),
                role: principal.role.name(),
                event_type: event.body.type_name(),
                event_id,
            };
            auth::refused(&e, rpc.name());
            return Err(e.into());
        }
        if principal.scope != auth::Scope::County {
            let stream = event.subject.stream_name();
            let place = self.place_of(&event, &stream).await?;
            if let Err(e) = auth::check_scope(principal, &place, &stream, &event_id) {
                auth::refused(&e, rpc.name());
                return Err(e.into());
            }
        }
        Ok(Submission {
            event,
            metadata: metadata(principal, self.recorder.clock().now()).encode_to_vec(),
        })
    }

    /// Where `event` lands: a case opened by it or before it, or a client stream and the scope
    /// of its first event.
    async fn place_of(
        &self,
        event: &gryning_domain::Event,
        stream: &str,
    ) -> Result<auth::Place, ServiceError> {
        use gryning_domain::{Body, Subject};
        match (&event.subject, &event.body) {
            (
                Subject::Case(_),
                Body::CaseOpened {
                    police_region,
                    local_police_area,
                    ..
                },
            ) => {
                return Ok(auth::Place::Case {
                    region: police_region.clone(),
                    area: local_police_area.clone(),
                })
            }
            (Subject::Case(_) | Subject::Client(_), _) => {}
            _ => return Ok(auth::Place::New),
        }
        if let Some(place) = self.places.lock().expect("places poisoned").get(stream) {
            return Ok(place.clone());
        }
        let events = self.store.read_stream(stream).await?;
        let Some(first) = events.first() else {
            return Ok(auth::Place::New);
        };
        let place = match &event.subject {
            Subject::Client(_) => auth::Place::Client {
                scope: pb::EventMetadata::decode(first.metadata.as_slice())
                    .map(|m| m.scope)
                    .unwrap_or_default(),
            },
            _ => match gryning_proto::decode_event(&first.payload) {
                Ok(gryning_domain::Event {
                    body:
                        Body::CaseOpened {
                            police_region,
                            local_police_area,
                            ..
                        },
                    ..
                }) => auth::Place::Case {
                    region: police_region,
                    area: local_police_area,
                },
                Ok(_) => auth::Place::New,
                Err(e) => {
                    return Err(ServiceError::StoredEventUnreadable {
                        position: first.position,
                        message: e.to_string(),
                    })
                }
            },
        };
        let mut places = self.places.lock().expect("places poisoned");
        if places.len() >= PLACES_KEPT {
            places.clear();
        }
        places.insert(stream.to_string(), place.clone());
        Ok(place)
    }
}

/// The reply of a command RPC.
pub fn recorded(event_id: String, outcome: Outcome) -> pb::Recorded {
    match outcome {
        Outcome::Stored { position, version } => pb::Recorded {
            event_id,
            position,
            version,
            duplicate: false,
        },
        Outcome::Duplicate { position } => pb::Recorded {
            event_id,
            position,
            version: 0,
            duplicate: true,
        },
    }
}

/// The encoded metadata of an event recorded by `principal` (of role `agency`) at `now`.
pub fn metadata_of(principal: &str, agency: &str, now: Timestamp) -> Vec<u8> {
    gryning_proto::encode_metadata(principal, agency, &recorded_at(now))
}

fn metadata(principal: &Principal, now: Timestamp) -> pb::EventMetadata {
    pb::EventMetadata {
        principal: principal.name.clone(),
        agency: principal.role.name().to_string(),
        recorded_at: recorded_at(now),
        scope: principal.scope.stored(),
    }
}

/// `now` as RFC 3339 to the second, with Europe/Stockholm's offset at that instant
/// (`2020-12-02T00:30:00+01:00`, `2020-06-15T00:30:00+02:00`): the date and time read as they
/// did in Stockholm, the calendar "not after today" was judged by, and still one exact instant.
pub fn recorded_at(now: Timestamp) -> String {
    let second = Timestamp::from_second(now.as_second()).expect("a whole second of an instant");
    second
        .display_with_offset(stockholm().to_offset(second))
        .to_string()
}

impl Context {
    /// A command RPC from end to end: the caller's role was checked (`principal`), the event is
    /// recorded, and the reply or the status is built.
    pub async fn command(
        &self,
        principal: Result<Principal, auth::Error>,
        event: pb::Event,
        rpc: auth::Rpc,
    ) -> Result<tonic::Response<pb::Recorded>, tonic::Status> {
        let principal = principal.map_err(ServiceError::from)?;
        Ok(tonic::Response::new(
            self.record(&principal, event, rpc).await?,
        ))
    }
}

/// A case event from a command's fields.
pub fn case_event(
    event_id: String,
    occurred_on: String,
    case_id: String,
    body: pb::event::Body,
) -> pb::Event {
    pb::Event {
        event_id,
        occurred_on,
        subject: Some(pb::event::Subject::CaseId(case_id)),
        body: Some(body),
    }
}

/// A care event (subject: a client) from a command's fields.
pub fn client_event(
    event_id: String,
    occurred_on: String,
    client_id: String,
    body: pb::event::Body,
) -> pb::Event {
    pb::Event {
        event_id,
        occurred_on,
        subject: Some(pb::event::Subject::ClientId(client_id)),
        body: Some(body),
    }
}

/// The body of a command RPC: authorise the caller for `Rpc::$rpc`, build the event from the
/// request's `event_id`, `occurred_on`, subject (`case` → `case_id`, `client` → `client_id`) and
/// the body `$body` makes of the request, and record it through `$self.ctx`.
#[macro_export]
macro_rules! record_command {
    ($self:ident, $request:ident, $rpc:ident, case, |$r:ident| $body:expr) => {{
        let principal = $crate::auth::require(&$request, $crate::Rpc::$rpc);
        let $r = $request.into_inner();
        let event = $crate::case_event($r.event_id, $r.occurred_on, $r.case_id, $body);
        $self.ctx.command(principal, event, $crate::Rpc::$rpc).await
    }};
    ($self:ident, $request:ident, $rpc:ident, client, |$r:ident| $body:expr) => {{
        let principal = $crate::auth::require(&$request, $crate::Rpc::$rpc);
        let $r = $request.into_inner();
        let event = $crate::client_event($r.event_id, $r.occurred_on, $r.client_id, $body);
        $self.ctx.command(principal, event, $crate::Rpc::$rpc).await
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_replicas_from_the_file_reach_the_store_options() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gryning.toml");
        std::fs::write(
            &file,
            "store = \"nats://127.0.0.1:4222\"\nnats_replicas = 3\n",
        )
        .unwrap();
        let env = [(
            crate::config::CONFIG_VARIABLE.to_string(),
            file.to_str().unwrap().to_string(),
        )]
        .into();
        let settings = Settings::load(&env, &crate::Options::default()).unwrap();
        assert_eq!(nats_options(&settings).unwrap().replicas, 3);
        assert_eq!(nats_options(&Settings::default()).unwrap().replicas, 1);
    }

    #[test]
    fn nats_secret_files_are_read_private_and_refused_shared() {
        use gryning_store_nats::{Auth, Secret};
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("password");
        std::fs::write(&password, "pass word\r\n").unwrap();
        std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
        let settings = Settings {
            nats_user: Some("gryning".into()),
            nats_password_file: Some(password.clone()),
            nats_tls_ca: Some("/ca.pem".into()),
            ..Settings::default()
        };
        let connection = nats_options(&settings).unwrap().connection;
        assert_eq!(
            connection.auth,
            Auth::UserPassword {
                user: "gryning".into(),
                password: Secret::new("pass word"),
            }
        );
        let tls = connection.tls.unwrap();
        assert_eq!(tls.ca, Some(PathBuf::from("/ca.pem")));
        assert_eq!(tls.client, None);

        std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = nats_options(&settings).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "setting nats_password_file: {0}: may be read or written by group or others (mode 0640); it holds a secret and must be private to the user the servers run as: run `chmod 600 {0}`",
                password.display()
            )
        );
        let key = dir.path().join("client.key");
        std::fs::write(&key, "key").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o604)).unwrap();
        let settings = Settings {
            nats_tls_cert: Some("/c.pem".into()),
            nats_tls_key: Some(key.clone()),
            ..Settings::default()
        };
        let e = nats_options(&settings).unwrap_err().to_string();
        assert!(e.starts_with("setting nats_tls_key:"), "{e}");
        let settings = Settings {
            nats_creds_file: Some(dir.path().join("missing.creds")),
            ..Settings::default()
        };
        let e = nats_options(&settings).unwrap_err().to_string();
        assert!(e.contains("missing.creds: cannot read it"), "{e}");
    }

    #[test]
    fn recorded_at_is_rfc3339_to_the_second_with_the_stockholm_offset() {
        for (now, stamped) in [
            // Winter (UTC+1): already 2 December in Stockholm.
            ("2020-12-01T23:30:00Z", "2020-12-02T00:30:00+01:00"),
            // Summer time (UTC+2), and a fraction of a second dropped.
            (
                "2020-06-14T22:30:00.987654321Z",
                "2020-06-15T00:30:00+02:00",
            ),
            // The last second before summer time starts, and the first after.
            ("2021-03-28T00:59:59Z", "2021-03-28T01:59:59+01:00"),
            ("2021-03-28T01:00:00Z", "2021-03-28T03:00:00+02:00"),
        ] {
            let now: Timestamp = now.parse().unwrap();
            let text = recorded_at(now);
            assert_eq!(text, stamped, "{now}");
            let back: Timestamp = text.parse().expect("RFC 3339 reads back");
            assert_eq!(back.as_second(), now.as_second(), "{text}");
        }
    }
}
