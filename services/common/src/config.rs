//! Typed settings of a gryning server, layered with `figment`: built-in defaults, then the
//! TOML file named by `GRYNING_CONFIG`, then `GRYNING_…` environment variables, then the
//! command-line options of the binary (`gryning up`'s `--listen`, the global `--data-dir`, …).
//! Every binary loads its settings here. The environment is passed in as a map so tests can
//! layer settings without touching the process environment.
//!
//! The keys are the fields of [`Settings`]; a key's variable is `GRYNING_` and the key in
//! capitals. A key the file does not know and a `GRYNING_` variable that is neither a setting
//! nor one of [`NOT_SETTINGS`] are errors that name the key or the variable and the nearest
//! valid one, so a misspelling is never silently ignored.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Deserializer, Serialize};

/// The variable naming the settings file.
pub const CONFIG_VARIABLE: &str = "GRYNING_CONFIG";

/// Every `GRYNING_` variable that is not a setting, with what reads it: the misspelling check
/// leaves these alone. One list for the repository (a test finds every `GRYNING_` name in it).
pub const NOT_SETTINGS: &[(&str, &str)] = &[
    (CONFIG_VARIABLE, "names the settings file"),
    ("GRYNING_SERVER", "the CLI's --server"),
    ("GRYNING_TOKEN", "the CLI's --token"),
    ("GRYNING_CA_CERT", "the CLI's --ca-cert"),
    ("GRYNING_CLIENT_CERT", "the CLI's --client-cert"),
    ("GRYNING_CLIENT_KEY", "the CLI's --client-key"),
    (
        "GRYNING_NATS_SERVER",
        "the nats-server binary the tests start",
    ),
    (
        "GRYNING_NATS_BASE_PORT",
        "the first port of deploy/local-cluster.sh",
    ),
    (
        "GRYNING_STORE_CRASH_DIR",
        "the store's crash test, for its child process",
    ),
    ("GRYNING_SOAK_SECS", "the soak test's length in seconds"),
    (
        "GRYNING_CRASH_SEED",
        "the seed tests/crash_services.rs replays its random kills from",
    ),
    (
        "GRYNING_BUF_AGAINST",
        "the commit scripts/buf-breaking.sh compares the protos with",
    ),
    (
        "GRYNING_FUZZ_CASES",
        "the generated cases per fuzz target of the tests",
    ),
    (
        "GRYNING_CORPUS_SKIP_OVERSIZE",
        "the hostile-input test, to skip its oversized requests",
    ),
];

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: unknown key {key:?}; {hint}")]
    UnknownKey {
        path: PathBuf,
        key: String,
        hint: String,
    },
    #[error("environment variable {name}: not a gryning setting; {hint}")]
    UnknownVariable { name: String, hint: String },
    /// A value of the right key that is not right: `origin` names the key and its layer.
    #[error("{origin}: {problem}")]
    Value { origin: String, problem: String },
    #[error("setting {key}: {problem}")]
    Limit { key: &'static str, problem: String },
    #[error("setting {key}: {problem}")]
    Tls {
        key: &'static str,
        problem: &'static str,
    },
    #[error("setting {key}: {problem}")]
    Nats {
        key: &'static str,
        problem: &'static str,
    },
}

/// The text of a secret setting (`nats_password`, `nats_token`): `Debug` shows `<redacted>`, and
/// a value of the wrong type is refused without echoing it.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SecretText(String);

impl SecretText {
    pub fn new(text: impl Into<String>) -> SecretText {
        SecretText(text.into())
    }

    /// The secret itself, for the one place that hands it to the NATS client.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SecretText, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = SecretText;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("text")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SecretText, E> {
                Ok(SecretText(v.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<SecretText, E> {
                Err(not_text())
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<SecretText, E> {
                Err(not_text())
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<SecretText, E> {
                Err(not_text())
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<SecretText, E> {
                Err(not_text())
            }
        }
        fn not_text<E: serde::de::Error>() -> E {
            E::custom("must be text in quotes (the value is not shown)")
        }
        d.deserialize_any(Text)
    }
}

/// Everything a server needs to start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on; port 0 picks a free port (see `Application::port`).
    #[serde(deserialize_with = "address")]
    pub listen: SocketAddr,
    /// Data directory of the embedded store, the projections' checkpoint and the credentials.
    pub data_dir: PathBuf,
    /// Store backend URL (`nats://…`); `None` is the embedded store in `data_dir`.
    pub store: Option<String>,
    /// Crime-code catalogue file; `None` is the shipped catalogue.
    pub catalog: Option<PathBuf>,
    /// Credentials file; `None` is `credentials.toml` in `data_dir`.
    pub credentials: Option<PathBuf>,
    /// Log filter such as `info` or `info,gryning_insight=debug`.
    pub log: String,
    /// Address of the Prometheus `GET /metrics` endpoint; `None` serves no metrics.
    #[serde(deserialize_with = "optional_address")]
    pub metrics_listen: Option<SocketAddr>,
    /// Address of the analysts' web dashboard (`gryning up` only); `None` serves none.
    #[serde(deserialize_with = "optional_address")]
    pub dashboard_listen: Option<SocketAddr>,
    /// Small-cell suppression on the dashboard: counts from 1 to this minus 1 are hidden (and
    /// the counts that would give them away); 0 hides nothing.
    #[serde(deserialize_with = "count")]
    pub dashboard_suppress_below: u64,
    /// Server certificate chain (PEM); with `tls_key`, gRPC is served over TLS only.
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// CA certificate (PEM): when set, every client must present a certificate it signed.
    pub tls_client_ca: Option<PathBuf>,
    /// Replicas of the JetStream stream when gryning creates it (`nats://` stores only), 1 to 5.
    #[serde(deserialize_with = "replicas")]
    pub nats_replicas: usize,
    /// CA certificate (PEM) the NATS servers' certificates must chain to; setting it (or
    /// `nats_tls_cert`) makes every NATS connection TLS, refused rather than sent in plain text.
    pub nats_tls_ca: Option<PathBuf>,
    /// Client certificate chain (PEM) for NATS servers that verify clients; with `nats_tls_key`.
    pub nats_tls_cert: Option<PathBuf>,
    /// The NATS client certificate's private key (PEM); refused when group or others may read it.
    pub nats_tls_key: Option<PathBuf>,
    /// NATS user name, with `nats_password` or `nats_password_file`.
    pub nats_user: Option<String>,
    /// NATS password (better: `nats_password_file`, so it need not sit in the settings).
    pub nats_password: Option<SecretText>,
    /// File holding the NATS password (trailing line breaks ignored); mode 0600.
    pub nats_password_file: Option<PathBuf>,
    /// NATS authorization token (better: `nats_token_file`).
    pub nats_token: Option<SecretText>,
    /// File holding the NATS token (trailing line breaks ignored); mode 0600.
    pub nats_token_file: Option<PathBuf>,
    /// File holding an NKey user seed (`SU…`); mode 0600.
    pub nats_nkey_seed_file: Option<PathBuf>,
    /// A NATS `.creds` file (user JWT and seed, for servers with JWT accounts); mode 0600.
    pub nats_creds_file: Option<PathBuf>,
    /// `gryning up` publishes each quarter automatically once it has ended by this many days
    /// (Europe/Stockholm calendar).
    #[serde(deserialize_with = "days")]
    pub publish_after_days: u32,
    /// Whether `gryning up` publishes quarters automatically.
    #[serde(deserialize_with = "flag")]
    pub publish_automatically: bool,
    /// For tests only: a fixed instant (RFC 3339) the server and `gryning publish` take as
    /// "now" instead of the system clock. Never set in production.
    pub test_clock: Option<String>,
    /// How long a `Watch` or `Subscribe` stream may go without its client accepting a message
    /// (its buffer full) before the server ends it with RESOURCE_EXHAUSTED; also how long a
    /// shutting-down server waits for clients to drain their ended streams. Text such as
    /// `30s`, `1.5s` or `2m`.
    #[serde(deserialize_with = "stall_timeout", serialize_with = "duration_text")]
    pub stalled_stream_timeout: Duration,
    /// The largest request message, in bytes, of a recording RPC, and of each event of a bulk
    /// `Append` (and of `Read` and `Subscribe` requests, which the event-log service shares).
    #[serde(deserialize_with = "count")]
    pub max_message_bytes: u64,
    /// The largest request message, in bytes, of `GetTable`, `Watch` and `Status`.
    #[serde(deserialize_with = "count")]
    pub max_query_bytes: u64,
    /// The most crimes one `InvestigationClosed` sent to a service may name (`crime_ids`).
    #[serde(deserialize_with = "count")]
    pub max_crime_ids: u64,
    /// The most events one bulk `Append` call may send.
    #[serde(deserialize_with = "count")]
    pub max_append_events: u64,
    /// The most calls (streams included, while open) the server serves at once; 0 is no limit.
    #[serde(deserialize_with = "count")]
    pub max_concurrent_calls: u64,
    /// Events between two snapshots of the projections kept for as-of queries (under
    /// `snapshots/` in the data directory); 0 keeps none, and as-of queries replay from the
    /// first event.
    #[serde(deserialize_with = "count")]
    pub snapshot_every: u64,
    /// Milliseconds a call may take to its reply (a client's shorter `grpc-timeout` wins);
    /// 0 is no server deadline.
    #[serde(deserialize_with = "count")]
    pub request_deadline_ms: u64,
    /// Calls each principal may make per second, on average; 0 is no rate limit.
    #[serde(deserialize_with = "count")]
    pub rate_limit_per_second: u64,
    /// Calls a principal may make at once after being idle; 0 is `rate_limit_per_second`.
    #[serde(deserialize_with = "count")]
    pub rate_limit_burst: u64,
}

/// Smallest accepted `max_message_bytes` and `max_query_bytes`: below it, ordinary requests
/// would not fit.
pub const MIN_MESSAGE_BYTES: u64 = 1024;

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: PathBuf::from("gryning-data"),
            store: None,
            catalog: None,
            credentials: None,
            log: "info".to_string(),
            metrics_listen: None,
            dashboard_listen: None,
            dashboard_suppress_below: 0,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            nats_replicas: 1,
            nats_tls_ca: None,
            nats_tls_cert: None,
            nats_tls_key: None,
            nats_user: None,
            nats_password: None,
            nats_password_file: None,
            nats_token: None,
            nats_token_file: None,
            nats_nkey_seed_file: None,
            nats_creds_file: None,
            publish_after_days: 15,
            publish_automatically: true,
            test_clock: None,
            stalled_stream_timeout: DEFAULT_STALLED_STREAM_TIMEOUT,
            max_message_bytes: 64 * 1024,
            max_query_bytes: 4 * 1024,
            max_crime_ids: 1_000,
            max_append_events: 100_000,
            max_concurrent_calls: 1_000,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            request_deadline_ms: 60_000,
            rate_limit_per_second: 0,
            rate_limit_burst: 0,
        }
    }
}

/// The default of [`Settings::stalled_stream_timeout`].
pub const DEFAULT_STALLED_STREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// Events between two snapshots of the projections, by default: an as-of query replays at
/// most this many events after loading a snapshot (about 1.5 s of replay on this project's
/// reference machine; see BENCHMARKS.md, "As of").
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 1_000_000;

/// Command-line options of a binary: each one given wins over the file and the environment.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Options {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dashboard_listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dashboard_suppress_below: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog: Option<PathBuf>,
}

/// The setting keys, in declaration order: the fields of [`Settings`].
pub fn keys() -> &'static [String] {
    static KEYS: LazyLock<Vec<String>> = LazyLock::new(|| {
        dict_of(&Settings::default())
            .map(|dict| dict.into_keys().collect())
            .unwrap_or_default()
    });
    &KEYS
}

/// The environment variable of setting `key`.
pub fn variable(key: &str) -> String {
    format!("GRYNING_{}", key.to_ascii_uppercase())
}

fn dict_of(value: &impl Serialize) -> Option<Dict> {
    match Value::serialize(value).ok()? {
        Value::Dict(_, dict) => Some(dict),
        _ => None,
    }
}

/// "did you mean …? valid …: …", the nearest of `candidates` to `wrong` first when it is close.
fn hint(wrong: &str, candidates: &[String], what: &str) -> String {
    let nearest = candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(wrong, c), c))
        .min()
        .filter(|(distance, c)| *distance <= 3.max(c.len() / 3));
    let valid = candidates.join(", ");
    match nearest {
        Some((_, c)) => format!("did you mean {c}? the valid {what} are {valid}"),
        None => format!("the valid {what} are {valid}"),
    }
}

const FILE_LAYER: &str = "config file";
const ENV_LAYER: &str = "environment variable";
const OPTION_LAYER: &str = "command-line option";

/// One layer of settings with the metadata that lets an error name its origin.
struct Layer {
    metadata: Metadata,
    dict: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

impl Settings {
    /// The clock of the recorder: the system clock, or `test_clock` when a test fixed it.
    pub fn clock(&self) -> Result<gryning_recording::Clock, Error> {
        match self.test_clock.as_deref().filter(|t| !t.is_empty()) {
            None => Ok(gryning_recording::Clock::System),
            Some(text) => text
                .parse::<jiff::Timestamp>()
                .map(gryning_recording::Clock::Fixed)
                .map_err(|e| Error::Value {
                    origin: "setting test_clock".to_string(),
                    problem: format!("must be an RFC 3339 instant such as 2021-01-20T12:00:00Z (value {text:?}): {e}"),
                }),
        }
    }

    /// Defaults, then the file named by `GRYNING_CONFIG` in `env`, then the `GRYNING_…` setting
    /// variables of `env` (an empty one counts as unset), then `options`. A TLS key without a
    /// certificate (or the reverse), or a client CA without either, is an error.
    pub fn load(env: &HashMap<String, String>, options: &Options) -> Result<Settings, Error> {
        let mut figment = Figment::from(Layer {
            metadata: Metadata::named("built-in default"),
            dict: dict_of(&Settings::default()).unwrap_or_default(),
        });
        if let Some(path) = env.get(CONFIG_VARIABLE).filter(|v| !v.is_empty()) {
            figment = figment.merge(file_layer(&PathBuf::from(path))?);
        }
        figment = figment.merge(env_layer(env)?);
        figment = figment.merge(Layer {
            metadata: Metadata::named(OPTION_LAYER)
                .interpolater(|_, keys| format!("--{}", keys.join(".").replace('_', "-"))),
            dict: dict_of(options).unwrap_or_default(),
        });
        let settings: Settings = figment.extract().map_err(value_error)?;
        settings.check_tls()?;
        settings.check_nats()?;
        settings.check_limits()?;
        Ok(settings)
    }

    /// The limits must let ordinary requests through: messages of at least
    /// [`MIN_MESSAGE_BYTES`] and at most 4 GiB, at least one crime id per closure and one
    /// event per `Append`, and a rate
    /// that fits the rate limiter (at most 2³²−1 calls per second and burst).
    pub fn check_limits(&self) -> Result<(), Error> {
        for (key, value) in [
            ("max_message_bytes", self.max_message_bytes),
            ("max_query_bytes", self.max_query_bytes),
        ] {
            if !(MIN_MESSAGE_BYTES..=u64::from(u32::MAX)).contains(&value) {
                return Err(Error::Limit {
                    key,
                    problem: format!(
                        "must be from {MIN_MESSAGE_BYTES} to {} bytes (value {value})",
                        u32::MAX
                    ),
                });
            }
        }
        for (key, value) in [
            ("max_crime_ids", self.max_crime_ids),
            ("max_append_events", self.max_append_events),
        ] {
            if value == 0 {
                return Err(Error::Limit {
                    key,
                    problem: "must be at least 1 (value 0)".to_string(),
                });
            }
        }
        for (key, value) in [
            ("rate_limit_per_second", self.rate_limit_per_second),
            ("rate_limit_burst", self.rate_limit_burst),
            ("dashboard_suppress_below", self.dashboard_suppress_below),
        ] {
            if value > u64::from(u32::MAX) {
                return Err(Error::Limit {
                    key,
                    problem: format!("must be at most {} (value {value})", u32::MAX),
                });
            }
        }
        Ok(())
    }

    /// TLS needs a certificate and its key together; a client CA needs TLS.
    pub fn check_tls(&self) -> Result<(), Error> {
        let problem = match (&self.tls_cert, &self.tls_key, &self.tls_client_ca) {
            (Some(_), None, _) => Some(("tls_key", "tls_cert is set, so tls_key must be too")),
            (None, Some(_), _) => Some(("tls_cert", "tls_key is set, so tls_cert must be too")),
            (None, None, Some(_)) => Some((
                "tls_client_ca",
                "client certificates need TLS; set tls_cert and tls_key",
            )),
            _ => None,
        };
        match problem {
            Some((key, problem)) => Err(Error::Tls { key, problem }),
            None => Ok(()),
        }
    }

    /// The NATS settings must make one connection: a client certificate with its key, a user
    /// with one password, and at most one way of authenticating.
    pub fn check_nats(&self) -> Result<(), Error> {
        let password = self.nats_password.is_some() || self.nats_password_file.is_some();
        let token = self.nats_token.is_some() || self.nats_token_file.is_some();
        let problem = if self.nats_tls_cert.is_some() && self.nats_tls_key.is_none() {
            Some((
                "nats_tls_key",
                "nats_tls_cert is set, so nats_tls_key must be too",
            ))
        } else if self.nats_tls_key.is_some() && self.nats_tls_cert.is_none() {
            Some((
                "nats_tls_cert",
                "nats_tls_key is set, so nats_tls_cert must be too",
            ))
        } else if self.nats_password.is_some() && self.nats_password_file.is_some() {
            Some((
                "nats_password_file",
                "nats_password is set too; set one of them (the file keeps the password out of the settings)",
            ))
        } else if self.nats_token.is_some() && self.nats_token_file.is_some() {
            Some((
                "nats_token_file",
                "nats_token is set too; set one of them (the file keeps the token out of the settings)",
            ))
        } else if self.nats_user.is_some() && !password {
            Some((
                "nats_password_file",
                "nats_user is set, so a password must be too (nats_password_file or nats_password)",
            ))
        } else if password && self.nats_user.is_none() {
            Some((
                "nats_user",
                "a NATS password is set, so nats_user must be too",
            ))
        } else {
            let ways = [
                ("nats_user", self.nats_user.is_some()),
                (
                    if self.nats_token.is_some() {
                        "nats_token"
                    } else {
                        "nats_token_file"
                    },
                    token,
                ),
                ("nats_nkey_seed_file", self.nats_nkey_seed_file.is_some()),
                ("nats_creds_file", self.nats_creds_file.is_some()),
            ];
            ways.iter().filter(|(_, set)| *set).nth(1).map(|(key, _)| {
                (
                    *key,
                    "another way of authenticating to NATS is set too; set one: nats_user with a password, nats_token (or nats_token_file), nats_nkey_seed_file or nats_creds_file",
                )
            })
        };
        match problem {
            Some((key, problem)) => Err(Error::Nats { key, problem }),
            None => Ok(()),
        }
    }

    /// The credentials file in use.
    pub fn credentials_path(&self) -> PathBuf {
        self.credentials
            .clone()
            .unwrap_or_else(|| self.data_dir.join("credentials.toml"))
    }

    /// The process environment's `GRYNING_…` variables, for binaries.
    pub fn process_env() -> HashMap<String, String> {
        std::env::vars()
            .filter(|(k, _)| k.starts_with("GRYNING_"))
            .collect()
    }
}

/// The file's keys, each checked against [`keys`].
fn file_layer(path: &PathBuf) -> Result<Layer, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    let dict: Dict = toml::from_str(&text).map_err(|e| Error::Parse {
        path: path.clone(),
        message: e.to_string(),
    })?;
    if let Some(key) = dict.keys().find(|k| !keys().contains(k)) {
        return Err(Error::UnknownKey {
            path: path.clone(),
            key: key.clone(),
            hint: hint(key, keys(), "keys"),
        });
    }
    Ok(Layer {
        metadata: Metadata::from(FILE_LAYER, path.as_path()).interpolater(|_, keys| keys.join(".")),
        dict,
    })
}

/// The setting variables of `env` as strings (each setting parses its own); any other
/// `GRYNING_` variable not in [`NOT_SETTINGS`] is a misspelling.
fn env_layer(env: &HashMap<String, String>) -> Result<Layer, Error> {
    let mut dict = Dict::new();
    let mut names: Vec<&String> = env.keys().collect();
    names.sort();
    for name in names {
        let Some(rest) = name.strip_prefix("GRYNING_") else {
            continue;
        };
        if NOT_SETTINGS.iter().any(|(n, _)| n == name) {
            continue;
        }
        let key = rest.to_ascii_lowercase();
        if !keys().contains(&key) || variable(&key) != *name {
            let mut known: Vec<String> = keys().iter().map(|k| variable(k)).collect();
            known.extend(NOT_SETTINGS.iter().map(|(n, _)| n.to_string()));
            return Err(Error::UnknownVariable {
                name: name.clone(),
                hint: hint(name, &known, "variables"),
            });
        }
        let value = &env[name];
        if !value.is_empty() {
            dict.insert(key, Value::from(value.clone()));
        }
    }
    Ok(Layer {
        metadata: Metadata::named(ENV_LAYER).interpolater(|_, keys| variable(&keys.join("_"))),
        dict,
    })
}

/// A figment error as the key, its layer and the problem.
fn value_error(error: figment::Error) -> Error {
    let key = error.path.join(".");
    let origin = match &error.metadata {
        Some(md) if md.name == FILE_LAYER => match &md.source {
            Some(source) => format!("config file {source}, key {key}"),
            None => format!("config file, key {key}"),
        },
        Some(md) if md.name == ENV_LAYER => format!("environment variable {}", variable(&key)),
        Some(md) if md.name == OPTION_LAYER => format!("option --{}", key.replace('_', "-")),
        _ => format!("setting {key}"),
    };
    Error::Value {
        origin,
        problem: error.kind.to_string(),
    }
}

fn parse_address<E: serde::de::Error>(text: &str) -> Result<SocketAddr, E> {
    text.parse().map_err(|_| {
        E::custom(format!(
            "must be an address such as 127.0.0.1:50051 (value {text:?})"
        ))
    })
}

fn address<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    parse_address(&String::deserialize(d)?)
}

fn optional_address<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|text| parse_address(&text))
        .transpose()
}

/// A whole number, from a number (the file) or a string (the environment).
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Count {
        Number(i64),
        Text(String),
    }
    let (value, n) = match Count::deserialize(d)? {
        Count::Number(n) => (n.to_string(), u64::try_from(n).ok()),
        Count::Text(text) => (text.clone(), text.trim().parse().ok()),
    };
    n.ok_or_else(|| {
        serde::de::Error::custom(format!(
            "must be a whole number such as 65536 (value {value:?})"
        ))
    })
}

/// A number of days, from a number (the file) or a string (the environment).
fn days<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = count(d)?;
    u32::try_from(n).map_err(|_| {
        serde::de::Error::custom(format!(
            "must be a number of days such as 15, at most 4294967295 (value {n})"
        ))
    })
}

/// `true` or `false`, from a boolean (the file) or a string (the environment).
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Text(String),
    }
    match Flag::deserialize(d)? {
        Flag::Bool(b) => Ok(b),
        Flag::Text(text) => match text.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(serde::de::Error::custom(format!(
                "must be true or false (value {text:?})"
            ))),
        },
    }
}

/// A replica count from 1 to 5, from a number (the file) or a string (the environment).
fn replicas<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Count {
        Number(i64),
        Text(String),
    }
    let (value, n) = match Count::deserialize(d)? {
        Count::Number(n) => (n.to_string(), usize::try_from(n).ok()),
        Count::Text(text) => (text.clone(), text.trim().parse().ok()),
    };
    n.filter(|n| (1..=5).contains(n)).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "must be a replica count from 1 to 5, such as 3 (value {value:?})"
        ))
    })
}

/// A duration as text (`30s`, `1.5s`, `2m`, ISO 8601 `PT30S`), from 1 ms to 1 hour.
fn stall_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    text.trim()
        .parse::<jiff::SignedDuration>()
        .ok()
        .and_then(|d| Duration::try_from(d).ok())
        .filter(|d| (Duration::from_millis(1)..=Duration::from_secs(3600)).contains(d))
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "must be a duration from 1ms to 1h such as 30s or 1.5s (value {text:?})"
            ))
        })
}

fn duration_text<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{}ms", d.as_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A settings file with `text` and the environment naming it plus `pairs`.
    fn with_file(
        text: &str,
        pairs: &[(&str, &str)],
    ) -> (tempfile::TempDir, HashMap<String, String>) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gryning.toml");
        std::fs::write(&file, text).unwrap();
        let mut env = env(pairs);
        env.insert(CONFIG_VARIABLE.into(), file.to_str().unwrap().into());
        (dir, env)
    }

    fn load(env: &HashMap<String, String>) -> Result<Settings, Error> {
        Settings::load(env, &Options::default())
    }

    #[test]
    fn options_override_environment_overrides_file_overrides_defaults() {
        assert_eq!(load(&env(&[])).unwrap(), Settings::default());
        let file = "listen = \"0.0.0.0:7000\"\ndata_dir = \"/srv/a\"\nlog = \"debug\"\nnats_replicas = 3\n";
        let (_dir, file_only) = with_file(file, &[]);
        let s = load(&file_only).unwrap();
        assert_eq!(s.listen, "0.0.0.0:7000".parse().unwrap());
        assert_eq!(s.data_dir, PathBuf::from("/srv/a"));
        assert_eq!(s.log, "debug");
        assert_eq!(s.nats_replicas, 3);
        assert_eq!(s.store, None);

        let (_dir, env) = with_file(
            file,
            &[
                ("GRYNING_DATA_DIR", "/srv/b"),
                ("GRYNING_LISTEN", "0.0.0.0:7001"),
                ("GRYNING_NATS_REPLICAS", "5"),
                ("GRYNING_LOG", ""),
            ],
        );
        let s = load(&env).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/srv/b"));
        assert_eq!(s.listen, "0.0.0.0:7001".parse().unwrap());
        assert_eq!(s.nats_replicas, 5);
        assert_eq!(s.log, "debug", "an empty variable counts as unset");
        assert_eq!(
            s.credentials_path(),
            PathBuf::from("/srv/b/credentials.toml")
        );

        let options = Options {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            data_dir: Some("/srv/c".into()),
            store: Some("nats://127.0.0.1:4222".into()),
            ..Options::default()
        };
        let s = Settings::load(&env, &options).unwrap();
        assert_eq!(s.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(s.data_dir, PathBuf::from("/srv/c"));
        assert_eq!(s.store.as_deref(), Some("nats://127.0.0.1:4222"));
        assert_eq!(
            s.nats_replicas, 5,
            "no option: the environment's value stays"
        );
        assert_eq!(
            s.log, "debug",
            "no option or variable: the file's value stays"
        );
    }

    #[test]
    fn an_unknown_file_key_is_named_with_the_file_and_the_nearest_key() {
        let (dir, env) = with_file("listen = \"0.0.0.0:7000\"\nnats_replica = 3\n", &[]);
        let e = load(&env).unwrap_err().to_string();
        assert!(e.contains("unknown key \"nats_replica\""), "{e}");
        assert!(
            e.contains(dir.path().join("gryning.toml").to_str().unwrap()),
            "{e}"
        );
        assert!(e.contains("did you mean nats_replicas?"), "{e}");
        assert!(
            e.contains("valid keys are catalog, credentials, dashboard_listen, dashboard_suppress_below, data_dir,"),
            "{e}"
        );
        let (_dir, env) = with_file("colour = 1\n", &[]);
        let e = load(&env).unwrap_err().to_string();
        assert!(
            e.contains("unknown key \"colour\"") && !e.contains("did you mean"),
            "{e}"
        );
    }

    #[test]
    fn a_misspelt_variable_is_named_with_the_nearest_one() {
        let e = load(&env(&[("GRYNING_LISTN", "0.0.0.0:7000")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("environment variable GRYNING_LISTN"), "{e}");
        assert!(e.contains("did you mean GRYNING_LISTEN?"), "{e}");
        let e = load(&env(&[("GRYNING_CONFG", "/etc/gryning.toml")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean GRYNING_CONFIG?"), "{e}");
        let e = load(&env(&[("GRYNING_listen", "0.0.0.0:7000")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("GRYNING_listen"), "{e}");
        // What is not a setting passes, as does every setting's own variable.
        let mut all: Vec<(String, String)> = NOT_SETTINGS
            .iter()
            .map(|(n, _)| (n.to_string(), String::new()))
            .collect();
        all.extend(keys().iter().map(|k| (variable(k), String::new())));
        assert_eq!(
            Settings::load(&all.into_iter().collect(), &Options::default()).unwrap(),
            Settings::default()
        );
        // Other programs' variables are not ours to judge.
        assert!(load(&env(&[("PATH", "/bin"), ("GRYNINGX", "1")])).is_ok());
    }

    #[test]
    fn bad_values_name_the_variable_the_key_and_the_option() {
        let e = load(&env(&[("GRYNING_LISTEN", "nope")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("environment variable GRYNING_LISTEN: must be an address"),
            "{e}"
        );
        let e = load(&env(&[("GRYNING_METRICS_LISTEN", "9")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("environment variable GRYNING_METRICS_LISTEN:"),
            "{e}"
        );
        let e = load(&env(&[("GRYNING_NATS_REPLICAS", "7")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("GRYNING_NATS_REPLICAS: must be a replica count from 1 to 5"),
            "{e}"
        );
        let (dir, env_file) = with_file("nats_replicas = 0\n", &[]);
        let e = load(&env_file).unwrap_err().to_string();
        let path = dir.path().join("gryning.toml");
        assert!(
            e.starts_with(&format!(
                "config file {}, key nats_replicas: must be a replica count",
                path.display()
            )),
            "{e}"
        );
        let (_dir, env_file) = with_file("listen = 50051\n", &[]);
        let e = load(&env_file).unwrap_err().to_string();
        assert!(e.contains("key listen:"), "{e}");
        let (_dir, env_file) = with_file("listen = \n", &[]);
        let e = load(&env_file).unwrap_err().to_string();
        assert!(e.starts_with("config file"), "{e}");
        let e = load(&env(&[(CONFIG_VARIABLE, "/no/such/gryning.toml")]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("config file /no/such/gryning.toml:"), "{e}");

        let e = load(&env(&[("GRYNING_TLS_CERT", "/c.pem")])).unwrap_err();
        assert!(e.to_string().contains("tls_key"), "{e}");
        let s = load(&env(&[
            ("GRYNING_TLS_CERT", "/c.pem"),
            ("GRYNING_TLS_KEY", "/k.pem"),
            ("GRYNING_METRICS_LISTEN", "127.0.0.1:9100"),
        ]))
        .unwrap();
        assert_eq!(s.tls_key, Some(PathBuf::from("/k.pem")));
        assert_eq!(s.metrics_listen, Some("127.0.0.1:9100".parse().unwrap()));
        // A path that looks like a number is still a path.
        let s = load(&env(&[("GRYNING_DATA_DIR", "2024")])).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("2024"));
    }

    #[test]
    fn the_stall_timeout_is_a_duration_from_a_millisecond_to_an_hour() {
        assert_eq!(
            load(&env(&[])).unwrap().stalled_stream_timeout,
            Duration::from_secs(30)
        );
        for (text, expected) in [
            ("1s", Duration::from_secs(1)),
            ("1.5s", Duration::from_millis(1500)),
            ("250ms", Duration::from_millis(250)),
            ("2m", Duration::from_secs(120)),
            ("PT10S", Duration::from_secs(10)),
        ] {
            let s = load(&env(&[("GRYNING_STALLED_STREAM_TIMEOUT", text)])).unwrap();
            assert_eq!(s.stalled_stream_timeout, expected, "{text}");
        }
        let (_dir, file) = with_file("stalled_stream_timeout = \"45s\"\n", &[]);
        assert_eq!(
            load(&file).unwrap().stalled_stream_timeout,
            Duration::from_secs(45)
        );
        for bad in ["0s", "2h", "-1s", "soon", "30"] {
            let e = load(&env(&[("GRYNING_STALLED_STREAM_TIMEOUT", bad)]))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("environment variable GRYNING_STALLED_STREAM_TIMEOUT: must be a duration from 1ms to 1h"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn publishing_settings_come_from_the_file_and_the_environment() {
        let s = load(&env(&[])).unwrap();
        assert_eq!((s.publish_after_days, s.publish_automatically), (15, true));
        let s = load(&env(&[
            ("GRYNING_PUBLISH_AUTOMATICALLY", "false"),
            ("GRYNING_PUBLISH_AFTER_DAYS", "20"),
        ]))
        .unwrap();
        assert_eq!((s.publish_after_days, s.publish_automatically), (20, false));
        let (_dir, file) = with_file(
            "publish_automatically = false\npublish_after_days = 3\n",
            &[],
        );
        let s = load(&file).unwrap();
        assert_eq!((s.publish_after_days, s.publish_automatically), (3, false));
        let e = load(&env(&[("GRYNING_PUBLISH_AUTOMATICALLY", "no")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "environment variable GRYNING_PUBLISH_AUTOMATICALLY: must be true or false"
            ),
            "{e}"
        );
    }

    #[test]
    fn dashboard_settings_come_from_the_file_the_environment_and_the_options() {
        let s = load(&env(&[])).unwrap();
        assert_eq!((s.dashboard_listen, s.dashboard_suppress_below), (None, 0));
        let s = load(&env(&[
            ("GRYNING_DASHBOARD_LISTEN", "127.0.0.1:8080"),
            ("GRYNING_DASHBOARD_SUPPRESS_BELOW", "5"),
        ]))
        .unwrap();
        assert_eq!(s.dashboard_listen, Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(s.dashboard_suppress_below, 5);
        let (_dir, file) = with_file(
            "dashboard_listen = \"0.0.0.0:8081\"\ndashboard_suppress_below = 3\n",
            &[],
        );
        let options = Options {
            dashboard_listen: Some("127.0.0.1:0".parse().unwrap()),
            ..Options::default()
        };
        let s = Settings::load(&file, &options).unwrap();
        assert_eq!(s.dashboard_listen, Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(s.dashboard_suppress_below, 3);
        let e = load(&env(&[("GRYNING_DASHBOARD_LISTEN", "8080")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("environment variable GRYNING_DASHBOARD_LISTEN: must be an address"),
            "{e}"
        );
        let e = load(&env(&[("GRYNING_DASHBOARD_SUPPRESS_BELOW", "5000000000")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("setting dashboard_suppress_below: must be at most"),
            "{e}"
        );
    }

    #[test]
    fn limits_are_whole_numbers_within_their_ranges() {
        let s = load(&env(&[])).unwrap();
        assert_eq!(
            (s.max_message_bytes, s.max_query_bytes, s.max_append_events),
            (65536, 4096, 100_000)
        );
        assert_eq!((s.rate_limit_per_second, s.rate_limit_burst), (0, 0));
        let s = load(&env(&[
            ("GRYNING_RATE_LIMIT_PER_SECOND", "20"),
            ("GRYNING_MAX_CONCURRENT_CALLS", " 8 "),
        ]))
        .unwrap();
        assert_eq!((s.rate_limit_per_second, s.max_concurrent_calls), (20, 8));
        let (_dir, file) = with_file("max_append_events = 500\nrequest_deadline_ms = 0\n", &[]);
        let s = load(&file).unwrap();
        assert_eq!((s.max_append_events, s.request_deadline_ms), (500, 0));

        let e = load(&env(&[("GRYNING_MAX_MESSAGE_BYTES", "64k")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("environment variable GRYNING_MAX_MESSAGE_BYTES: must be a whole number"),
            "{e}"
        );
        let (_dir, file) = with_file("rate_limit_burst = -1\n", &[]);
        let e = load(&file).unwrap_err().to_string();
        assert!(
            e.contains("key rate_limit_burst: must be a whole number"),
            "{e}"
        );
        let e = load(&env(&[("GRYNING_MAX_QUERY_BYTES", "100")]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "setting max_query_bytes: must be from 1024 to 4294967295 bytes (value 100)"
        );
        let e = load(&env(&[("GRYNING_MAX_APPEND_EVENTS", "0")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("setting max_append_events: must be at least 1"),
            "{e}"
        );
        let e = load(&env(&[("GRYNING_RATE_LIMIT_PER_SECOND", "5000000000")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("setting rate_limit_per_second: must be at most"),
            "{e}"
        );
    }

    #[test]
    fn nats_connection_settings_come_from_the_file_and_the_environment() {
        let (_dir, file) = with_file(
            "nats_tls_ca = \"/etc/g/ca.pem\"\nnats_tls_cert = \"/etc/g/c.pem\"\nnats_tls_key = \"/etc/g/c.key\"\nnats_user = \"gryning\"\nnats_password_file = \"/etc/g/pw\"\n",
            &[("GRYNING_NATS_USER", "other")],
        );
        let s = load(&file).unwrap();
        assert_eq!(s.nats_tls_ca, Some(PathBuf::from("/etc/g/ca.pem")));
        assert_eq!(s.nats_tls_key, Some(PathBuf::from("/etc/g/c.key")));
        assert_eq!(s.nats_user.as_deref(), Some("other"));
        assert_eq!(s.nats_password_file, Some(PathBuf::from("/etc/g/pw")));
        let s = load(&env(&[("GRYNING_NATS_TOKEN", "tok-secret-1")])).unwrap();
        assert_eq!(
            s.nats_token.as_ref().map(SecretText::expose),
            Some("tok-secret-1")
        );
        assert!(
            !format!("{s:?}").contains("tok-secret-1"),
            "Debug shows the token"
        );
        let s = load(&env(&[("GRYNING_NATS_CREDS_FILE", "/c.creds")])).unwrap();
        assert_eq!(s.nats_creds_file, Some(PathBuf::from("/c.creds")));
        // A secret of the wrong type is refused without echoing it.
        let (_dir, file) = with_file("nats_user = \"g\"\nnats_password = 918273645\n", &[]);
        let e = load(&file).unwrap_err().to_string();
        assert!(
            e.contains("key nats_password: must be text in quotes"),
            "{e}"
        );
        assert!(!e.contains("918273645"), "{e}");
    }

    #[test]
    fn nats_settings_must_make_one_connection() {
        for (pairs, expected) in [
            (
                &[("GRYNING_NATS_TLS_CERT", "/c.pem")][..],
                "setting nats_tls_key: nats_tls_cert is set, so nats_tls_key must be too",
            ),
            (
                &[("GRYNING_NATS_TLS_KEY", "/c.key")][..],
                "setting nats_tls_cert: nats_tls_key is set, so nats_tls_cert must be too",
            ),
            (
                &[("GRYNING_NATS_USER", "g")][..],
                "setting nats_password_file: nats_user is set, so a password must be too",
            ),
            (
                &[("GRYNING_NATS_PASSWORD_FILE", "/pw")][..],
                "setting nats_user: a NATS password is set, so nats_user must be too",
            ),
            (
                &[
                    ("GRYNING_NATS_USER", "g"),
                    ("GRYNING_NATS_PASSWORD", "p"),
                    ("GRYNING_NATS_PASSWORD_FILE", "/pw"),
                ][..],
                "setting nats_password_file: nats_password is set too",
            ),
            (
                &[
                    ("GRYNING_NATS_TOKEN", "t"),
                    ("GRYNING_NATS_TOKEN_FILE", "/t"),
                ][..],
                "setting nats_token_file: nats_token is set too",
            ),
            (
                &[
                    ("GRYNING_NATS_TOKEN_FILE", "/t"),
                    ("GRYNING_NATS_CREDS_FILE", "/c.creds"),
                ][..],
                "setting nats_creds_file: another way of authenticating to NATS is set too",
            ),
        ] {
            let e = load(&env(pairs)).unwrap_err().to_string();
            assert!(e.starts_with(expected), "{pairs:?}: {e}");
        }
        assert!(load(&env(&[("GRYNING_NATS_TLS_CA", "/ca.pem")])).is_ok());
    }

    #[test]
    fn every_option_is_a_setting() {
        let options = Options {
            listen: Some("127.0.0.1:1".parse().unwrap()),
            metrics_listen: Some("127.0.0.1:2".parse().unwrap()),
            dashboard_listen: Some("127.0.0.1:3".parse().unwrap()),
            dashboard_suppress_below: Some(5),
            data_dir: Some("d".into()),
            store: Some("s".into()),
            catalog: Some("c".into()),
        };
        let dict = dict_of(&options).unwrap();
        assert_eq!(dict.len(), 7);
        for key in dict.keys() {
            assert!(keys().contains(key), "{key}");
        }
        assert_eq!(keys().len(), 36, "{:?}", keys());
    }

    /// Every `GRYNING_` name in the repository's code, scripts and docs is a setting's variable,
    /// one of [`NOT_SETTINGS`], or a name that is not a variable.
    #[test]
    fn every_gryning_variable_in_the_repository_is_declared() {
        // Names that are not environment variables: the JetStream stream and subject prefix.
        const NOT_VARIABLES: &[&str] = &["GRYNING_EVENTS", "GRYNING_TAIL"];
        // The misspelling docs/services.md shows the error for.
        const MISSPELT_IN_THE_DOCS: &[&str] = &["GRYNING_LISTN"];
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        // This file spells variables wrong on purpose.
        let this = root.join("services/common/src/config.rs");
        let mut unknown = std::collections::BTreeSet::new();
        let mut stack = vec![root.clone()];
        let mut scanned = 0;
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                if path.is_dir() {
                    if !name.starts_with('.') && name != "target" {
                        stack.push(path);
                    }
                    continue;
                }
                if path == this {
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                scanned += 1;
                for (i, _) in text.match_indices("GRYNING_") {
                    let found: String = text[i..]
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    let found = found.trim_end_matches('_');
                    if found == "GRYNING"
                        || NOT_VARIABLES.contains(&found)
                        || MISSPELT_IN_THE_DOCS.contains(&found)
                    {
                        continue;
                    }
                    let setting = keys().iter().any(|k| variable(k) == found);
                    let declared = NOT_SETTINGS.iter().any(|(n, _)| *n == found);
                    if !setting && !declared {
                        unknown.insert(format!("{found} in {}", path.display()));
                    }
                }
            }
        }
        assert!(scanned > 50, "scanned only {scanned} files");
        assert!(
            unknown.is_empty(),
            "declare these in NOT_SETTINGS (or make them settings): {unknown:?}"
        );
    }
}
