//! Typed settings of a gryning server, layered: built-in defaults, then an optional TOML file,
//! then `GRYNING_…` environment variables. The environment is passed in as a map so tests can
//! layer settings without touching the process environment.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

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
    #[error("setting {key}: {problem}")]
    Tls {
        key: &'static str,
        problem: &'static str,
    },
    #[error("environment variable {name}: {problem} (value {value:?})")]
    Environment {
        name: &'static str,
        value: String,
        problem: &'static str,
    },
}

/// Everything a server needs to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Address to listen on; port 0 picks a free port (see `Application::port`).
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
    pub metrics_listen: Option<SocketAddr>,
    /// Server certificate chain (PEM); with `tls_key`, gRPC is served over TLS only.
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// CA certificate (PEM): when set, every client must present a certificate it signed.
    pub tls_client_ca: Option<PathBuf>,
    /// Replicas of the JetStream stream when gryning creates it (`nats://` stores only).
    pub nats_replicas: usize,
}

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
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            nats_replicas: 1,
        }
    }
}

/// The file layer: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLayer {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    store: Option<String>,
    catalog: Option<PathBuf>,
    credentials: Option<PathBuf>,
    log: Option<String>,
    metrics_listen: Option<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    nats_replicas: Option<usize>,
}

impl Settings {
    /// Defaults, then `file` (or the file named by `GRYNING_CONFIG` when `file` is `None`), then
    /// the `GRYNING_LISTEN`, `GRYNING_DATA_DIR`, `GRYNING_STORE`, `GRYNING_CATALOG`,
    /// `GRYNING_CREDENTIALS`, `GRYNING_LOG`, `GRYNING_METRICS_LISTEN`, `GRYNING_TLS_CERT`,
    /// `GRYNING_TLS_KEY`, `GRYNING_TLS_CLIENT_CA` and `GRYNING_NATS_REPLICAS` variables of `env`. A TLS key without a
    /// certificate (or the reverse), or a client CA without either, is an error.
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Settings, Error> {
        let mut settings = Settings::default();
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| env.get("GRYNING_CONFIG").map(PathBuf::from));
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            let layer: FileLayer = toml::from_str(&text).map_err(|e| Error::Parse {
                path: path.clone(),
                message: e.to_string(),
            })?;
            settings.apply(layer);
        }
        let var = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();
        let address = |name: &'static str| match var(name) {
            Some(value) => match value.parse() {
                Ok(addr) => Ok(Some(addr)),
                Err(_) => Err(Error::Environment {
                    name,
                    value,
                    problem: "must be an address such as 127.0.0.1:50051",
                }),
            },
            None => Ok(None),
        };
        let listen = address("GRYNING_LISTEN")?;
        let metrics_listen = address("GRYNING_METRICS_LISTEN")?;
        let nats_replicas = match var("GRYNING_NATS_REPLICAS") {
            Some(value) => Some(value.parse().ok().filter(|n| (1..=5).contains(n)).ok_or(
                Error::Environment {
                    name: "GRYNING_NATS_REPLICAS",
                    value,
                    problem: "must be a replica count from 1 to 5, such as 3",
                },
            )?),
            None => None,
        };
        settings.apply(FileLayer {
            listen,
            data_dir: var("GRYNING_DATA_DIR").map(PathBuf::from),
            store: var("GRYNING_STORE"),
            catalog: var("GRYNING_CATALOG").map(PathBuf::from),
            credentials: var("GRYNING_CREDENTIALS").map(PathBuf::from),
            log: var("GRYNING_LOG"),
            metrics_listen,
            tls_cert: var("GRYNING_TLS_CERT").map(PathBuf::from),
            tls_key: var("GRYNING_TLS_KEY").map(PathBuf::from),
            tls_client_ca: var("GRYNING_TLS_CLIENT_CA").map(PathBuf::from),
            nats_replicas,
        });
        settings.check_tls()?;
        Ok(settings)
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

    fn apply(&mut self, layer: FileLayer) {
        if let Some(v) = layer.listen {
            self.listen = v;
        }
        if let Some(v) = layer.data_dir {
            self.data_dir = v;
        }
        if layer.store.is_some() {
            self.store = layer.store;
        }
        if layer.catalog.is_some() {
            self.catalog = layer.catalog;
        }
        if layer.credentials.is_some() {
            self.credentials = layer.credentials;
        }
        if let Some(v) = layer.log {
            self.log = v;
        }
        if layer.metrics_listen.is_some() {
            self.metrics_listen = layer.metrics_listen;
        }
        if layer.tls_cert.is_some() {
            self.tls_cert = layer.tls_cert;
        }
        if layer.tls_key.is_some() {
            self.tls_key = layer.tls_key;
        }
        if layer.tls_client_ca.is_some() {
            self.tls_client_ca = layer.tls_client_ca;
        }
        if let Some(n) = layer.nats_replicas {
            self.nats_replicas = n;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_overrides_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gryning.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:7000\"\ndata_dir = \"/srv/a\"\nlog = \"debug\"\n",
        )
        .unwrap();
        let s = Settings::load(Some(&file), &env(&[("GRYNING_DATA_DIR", "/srv/b")])).unwrap();
        assert_eq!(s.listen, "0.0.0.0:7000".parse().unwrap());
        assert_eq!(s.data_dir, PathBuf::from("/srv/b"));
        assert_eq!(s.log, "debug");
        assert_eq!(s.store, None);
        assert_eq!(
            s.credentials_path(),
            PathBuf::from("/srv/b/credentials.toml")
        );
        assert_eq!(
            Settings::load(None, &env(&[])).unwrap(),
            Settings::default()
        );
    }

    #[test]
    fn bad_values_name_the_variable_and_the_key() {
        let e = Settings::load(None, &env(&[("GRYNING_LISTEN", "nope")])).unwrap_err();
        assert!(e.to_string().contains("GRYNING_LISTEN"), "{e}");
        let e = Settings::load(None, &env(&[("GRYNING_METRICS_LISTEN", "9")])).unwrap_err();
        assert!(e.to_string().contains("GRYNING_METRICS_LISTEN"), "{e}");
        let e = Settings::load(None, &env(&[("GRYNING_TLS_CERT", "/c.pem")])).unwrap_err();
        assert!(e.to_string().contains("tls_key"), "{e}");
        let s = Settings::load(
            None,
            &env(&[
                ("GRYNING_TLS_CERT", "/c.pem"),
                ("GRYNING_TLS_KEY", "/k.pem"),
                ("GRYNING_METRICS_LISTEN", "127.0.0.1:9100"),
            ]),
        )
        .unwrap();
        assert_eq!(s.tls_key, Some(PathBuf::from("/k.pem")));
        assert_eq!(s.metrics_listen, Some("127.0.0.1:9100".parse().unwrap()));
        let e = Settings::load(None, &env(&[("GRYNING_LISTEN", "nope")])).unwrap_err();
        assert!(e.to_string().contains("GRYNING_LISTEN"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gryning.toml");
        std::fs::write(&file, "colour = 1\n").unwrap();
        let e = Settings::load(Some(&file), &env(&[])).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
    }
}
