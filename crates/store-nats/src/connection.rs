//! How the store reaches the NATS servers and proves who it is: TLS (the CA the servers'
//! certificates must chain to, optionally a client certificate for servers that verify clients)
//! and one way of authenticating (user and password, token, NKey seed or a `.creds` file).
//! Connect errors from the client library are turned here into messages that say what was
//! wrong and which of gryning's settings to change (`nats_tls_ca`, `nats_user`, …, the keys
//! `gryning-service-common` fills a [`Connection`] from). Secrets never appear in a message,
//! in `Debug` output or in a log line.

use std::fmt;
use std::path::{Path, PathBuf};

use async_nats::rustls;
use async_nats::rustls::pki_types::pem::PemObject as _;
use async_nats::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use async_nats::{ConnectErrorKind, ConnectOptions};

/// Text that must not be shown: its `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// TLS to the servers. When set, every connection is TLS: a server that does not offer it is
/// refused, never spoken to in plain text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tls {
    /// CA certificates (PEM) the servers' certificates must chain to (setting `nats_tls_ca`);
    /// `None` trusts the system's roots.
    pub ca: Option<PathBuf>,
    /// A client certificate chain and its private key (PEM; settings `nats_tls_cert` and
    /// `nats_tls_key`), for servers that verify clients (`tls { verify: true }`).
    pub client: Option<(PathBuf, PathBuf)>,
}

/// How the store authenticates. The file-based ways hold the file's text (read, and refused
/// when group or others may read it, by the caller) and its path for messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Auth {
    /// None: for servers without an `authorization` block or accounts.
    #[default]
    None,
    /// A user and password (settings `nats_user` and `nats_password` or `nats_password_file`).
    UserPassword { user: String, password: Secret },
    /// A token (settings `nats_token` or `nats_token_file`).
    Token(Secret),
    /// An NKey user seed (`SU…`, setting `nats_nkey_seed_file`); the server lists its public
    /// key (`U…`) among its users.
    NKey { seed: Secret, path: PathBuf },
    /// A `.creds` file (a user JWT and its seed, setting `nats_creds_file`), for servers that
    /// trust an operator (JWT accounts).
    Creds { creds: Secret, path: PathBuf },
}

/// TLS and authentication of the store's connections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Connection {
    pub tls: Option<Tls>,
    pub auth: Auth,
}

impl Auth {
    /// What the store presented, for messages (never the secret).
    fn presented(&self) -> String {
        match self {
            Auth::None => "no credentials".into(),
            Auth::UserPassword { user, .. } => format!("user {user:?} and a password"),
            Auth::Token(_) => "a token".into(),
            Auth::NKey { seed, path } => match public_key(seed.expose()) {
                Some(key) => format!("NKey {key} (seed in {})", path.display()),
                None => format!("the NKey seed in {}", path.display()),
            },
            Auth::Creds { path, .. } => format!("the user JWT of {}", path.display()),
        }
    }

    /// Which settings to look at when the server refuses the credentials.
    fn what_to_check(&self) -> String {
        match self {
            Auth::None => "the server requires credentials: set nats_user with nats_password (or nats_password_file), nats_token (or nats_token_file), nats_nkey_seed_file or nats_creds_file, as the server's authorization block or accounts expect".into(),
            Auth::UserPassword { .. } => "check nats_user and nats_password (or the file nats_password_file names) against the server's authorization block".into(),
            Auth::Token(_) => "check nats_token (or the file nats_token_file names) against the server's authorization token".into(),
            Auth::NKey { .. } => "the public key of the seed in nats_nkey_seed_file must be one of the server's nkey users".into(),
            Auth::Creds { .. } => "the JWT in nats_creds_file must be a user of an account the server's resolver knows, signed by the account, not expired or revoked".into(),
        }
    }
}

fn public_key(seed: &str) -> Option<String> {
    nkeys::KeyPair::from_seed(seed.trim())
        .ok()
        .map(|k| k.public_key())
}

/// Why a connection is not even tried: a setting's file is not what it must be.
fn file_problem(setting: &str, path: &Path, problem: impl fmt::Display) -> String {
    format!("{setting} {}: {problem}", path.display())
}

impl Connection {
    /// The client library's options for this connection, after checking that every file named
    /// holds what it must (a CA certificate, a certificate and its key, a seed, a `.creds`
    /// file), so a bad file is named before any server is asked.
    pub(crate) fn options(&self) -> Result<ConnectOptions, String> {
        let mut options = ConnectOptions::new();
        if let Some(tls) = &self.tls {
            options = options.require_tls(true);
            if let Some(ca) = &tls.ca {
                let certs = read_certs(ca).map_err(|p| file_problem("nats_tls_ca", ca, p))?;
                for cert in &certs {
                    webpki_anchor(cert).map_err(|p| file_problem("nats_tls_ca", ca, p))?;
                }
                options = options.add_root_certificates(ca.clone());
            }
            if let Some((cert, key)) = &tls.client {
                read_certs(cert).map_err(|p| file_problem("nats_tls_cert", cert, p))?;
                PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    file_problem(
                        "nats_tls_key",
                        key,
                        format!("no private key in PEM form ({e})"),
                    )
                })?;
                options = options.add_client_certificate(cert.clone(), key.clone());
            }
        }
        options = match &self.auth {
            Auth::None => options,
            Auth::UserPassword { user, password } => {
                options.user_and_password(user.clone(), password.expose().to_owned())
            }
            Auth::Token(token) => options.token(token.expose().trim().to_owned()),
            Auth::NKey { seed, path } => {
                let seed = seed.expose().trim();
                match nkeys::KeyPair::from_seed(seed) {
                    Ok(pair) if pair.public_key().starts_with('U') => {
                        options.nkey(seed.to_owned())
                    }
                    Ok(_) => {
                        return Err(file_problem(
                            "nats_nkey_seed_file",
                            path,
                            "holds a seed that is not a user's (a user seed starts with SU)",
                        ))
                    }
                    Err(_) => {
                        return Err(file_problem(
                            "nats_nkey_seed_file",
                            path,
                            "is not an NKey seed (one line starting with SU, as `nk -gen user` writes)",
                        ))
                    }
                }
            }
            Auth::Creds { creds, path } => options.credentials(creds.expose()).map_err(|_| {
                file_problem(
                    "nats_creds_file",
                    path,
                    "is not a NATS credentials file (a user JWT and a user seed between BEGIN/END lines, as `nsc generate creds` writes)",
                )
            })?,
        };
        Ok(options)
    }

    /// A connect error as what was wrong and what to change.
    pub(crate) fn explain(&self, error: &async_nats::ConnectError) -> String {
        let tls = rustls_error(error);
        match (error.kind(), tls) {
            (ConnectErrorKind::AuthorizationViolation, _) => format!(
                "the server refused {} (authorization violation); {}",
                self.auth.presented(),
                self.auth.what_to_check()
            ),
            (ConnectErrorKind::Authentication, _) => format!(
                "could not sign the server's challenge with {}; {}",
                self.auth.presented(),
                self.auth.what_to_check()
            ),
            (_, Some(e)) => self.explain_tls(&e),
            (ConnectErrorKind::Tls, None) => match &self.tls {
                None => format!(
                    "the server requires TLS and gryning has no TLS settings: set nats_tls_ca to the CA certificate (PEM) that signed the server's certificate, and nats_tls_cert and nats_tls_key if the server verifies clients ({error})"
                ),
                Some(_) => format!("TLS setup failed: {error}; check nats_tls_ca, nats_tls_cert and nats_tls_key"),
            },
            (_, None) if self.tls.is_some() && looks_like_plain_server(error) => format!(
                "the server did not answer TLS, and gryning requires it because nats_tls_ca, nats_tls_cert or nats_tls_key is set: give the server a tls {{ }} block, or use a server that has one ({error})"
            ),
            (_, None) => error.to_string(),
        }
    }

    fn explain_tls(&self, e: &rustls::Error) -> String {
        use rustls::{AlertDescription, CertificateError};
        let ca = || match self.tls.as_ref().and_then(|t| t.ca.as_ref()) {
            Some(ca) => format!("nats_tls_ca ({})", ca.display()),
            None => "the system's trusted roots (nats_tls_ca is not set)".into(),
        };
        match e {
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
            | rustls::Error::InvalidCertificate(CertificateError::BadSignature) => match &self.tls {
                None => "the server requires TLS and gryning has no TLS settings, and the server's certificate is not signed by a CA the system trusts: set nats_tls_ca to the CA certificate (PEM) that signed it, and nats_tls_cert and nats_tls_key if the server verifies clients".into(),
                Some(_) => format!(
                    "the server's certificate is not trusted: it is not signed by a CA in {}; set nats_tls_ca to the CA certificate that signed the server's certificate",
                    ca()
                ),
            },
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => "the server's certificate does not name the host in the store URL: connect with a host name (or IP address) the certificate lists, or have the certificate reissued for it".into(),
            rustls::Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. },
            ) => "the server's certificate has expired: renew it on the server".into(),
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
            ) => "the server's certificate is not valid yet (check the clocks)".into(),
            rustls::Error::InvalidCertificate(other) => format!(
                "the server's certificate is not acceptable ({other:?}); check it against {}",
                ca()
            ),
            rustls::Error::AlertReceived(
                AlertDescription::CertificateRequired | AlertDescription::HandshakeFailure,
            ) if self.tls.as_ref().is_none_or(|t| t.client.is_none()) => "the server requires a client certificate and none is set: set nats_tls_cert and nats_tls_key to a certificate (and its key, PEM) signed by a CA the server trusts (its tls { ca_file })".into(),
            rustls::Error::AlertReceived(
                AlertDescription::BadCertificate
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateUnknown
                | AlertDescription::CertificateRequired
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateRevoked
                | AlertDescription::HandshakeFailure,
            ) => format!(
                "the server refused the client certificate in nats_tls_cert ({e}): it must be signed by a CA the server trusts (its tls {{ ca_file }}), valid now and usable for client authentication"
            ),
            rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } if self.tls.is_some() => format!(
                "the server did not answer TLS ({e}), and gryning requires it because nats_tls_ca, nats_tls_cert or nats_tls_key is set: give the server a tls {{ }} block"
            ),
            other => format!("TLS failed: {other}"),
        }
    }
}

/// The TLS error at the root of a connect error, if one is.
fn rustls_error(error: &async_nats::ConnectError) -> Option<rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.clone());
        }
        // An I/O error hides the error it wraps from `source()`: look inside it too.
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Some(tls.clone());
            }
        }
        next = e.source();
    }
    None
}

/// A server without TLS answers a TLS client hello by closing the connection or with a
/// protocol error rather than with a handshake.
fn looks_like_plain_server(error: &async_nats::ConnectError) -> bool {
    let text = error.to_string().to_ascii_lowercase();
    [
        "unknown protocol",
        "broken pipe",
        "connection reset",
        "unexpected eof",
        "expected info",
        "corrupt message",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read it as PEM ({e})"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates ({e})"))?;
    if certs.is_empty() {
        return Err("holds no certificate (BEGIN CERTIFICATE)".into());
    }
    Ok(certs)
}

fn webpki_anchor(cert: &CertificateDer<'_>) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(cert.clone())
        .map_err(|e| format!("a certificate in it cannot be a CA to trust ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_never_shown() {
        let auth = Auth::UserPassword {
            user: "gryning".into(),
            password: Secret::new("hunter2-secret"),
        };
        let connection = Connection {
            tls: None,
            auth: auth.clone(),
        };
        let shown = format!(
            "{connection:?} {} {}",
            auth.presented(),
            auth.what_to_check()
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        let token = Auth::Token(Secret::new("tok-abc-123"));
        let shown = format!("{token:?} {}", token.presented());
        assert!(!shown.contains("tok-abc"), "{shown}");
    }

    #[test]
    fn bad_files_are_named_before_connecting() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let connection = Connection {
            tls: Some(Tls {
                ca: Some(empty.clone()),
                client: None,
            }),
            auth: Auth::None,
        };
        let e = connection.options().err().unwrap();
        assert!(
            e.starts_with(&format!(
                "nats_tls_ca {}: holds no certificate",
                empty.display()
            )),
            "{e}"
        );
        let seed = dir.path().join("seed.nk");
        let connection = Connection {
            tls: None,
            auth: Auth::NKey {
                seed: Secret::new("not a seed"),
                path: seed.clone(),
            },
        };
        let e = connection.options().err().unwrap();
        assert!(
            e.starts_with(&format!(
                "nats_nkey_seed_file {}: is not an NKey seed",
                seed.display()
            )),
            "{e}"
        );
        let account = nkeys::KeyPair::new_account();
        let connection = Connection {
            tls: None,
            auth: Auth::NKey {
                seed: Secret::new(account.seed().unwrap()),
                path: seed.clone(),
            },
        };
        let e = connection.options().err().unwrap();
        assert!(e.contains("not a user's"), "{e}");
        let creds = dir.path().join("x.creds");
        let connection = Connection {
            tls: None,
            auth: Auth::Creds {
                creds: Secret::new("nonsense"),
                path: creds.clone(),
            },
        };
        let e = connection.options().err().unwrap();
        assert!(
            e.starts_with(&format!(
                "nats_creds_file {}: is not a NATS credentials file",
                creds.display()
            )),
            "{e}"
        );
    }
}
