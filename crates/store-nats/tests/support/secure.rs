//! What the tests of TLS and authentication to NATS share (this crate's and the workspace's
//! end-to-end tests include it by path): certificates made at test time with rcgen, the
//! `tls { … }` and `authorization { … }` blocks of a test server, and an operator with one
//! JetStream account and user signed here with NKeys, for `.creds` authentication.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

/// PEM files: a CA, a server certificate for 127.0.0.1 and a client certificate signed by it,
/// and a second CA that signed neither (a CA the server is not from).
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub other_ca: PathBuf,
}

pub fn pki(dir: &Path) -> Pki {
    std::fs::create_dir_all(dir).unwrap();
    let ca = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        (cert, key)
    };
    let (ca_cert, ca_key) = ca("gryning test CA");
    let (other_ca, _) = ca("some other CA");
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca_cert, &ca_key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(vec!["127.0.0.1".into(), "localhost".into()]);
    let (client_cert, client_key) = leaf(vec!["gryning.example".into()]);
    Pki {
        ca: write(dir, "ca.pem", &ca_cert.pem()),
        server_cert: write(dir, "server.pem", &server_cert),
        server_key: write(dir, "server.key", &server_key),
        client_cert: write(dir, "client.pem", &client_cert),
        client_key: write(dir, "client.key", &client_key),
        other_ca: write(dir, "other-ca.pem", &other_ca.pem()),
    }
}

/// Writes a file of mode 0600 (what a file of secrets must have).
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// The server's `tls { … }` block: TLS only, and with `verify` a client certificate from the CA
/// required.
pub fn tls_block(pki: &Pki, verify: bool) -> String {
    format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: {verify}\n  timeout: 5\n}}\n",
        pki.server_cert.display(),
        pki.server_key.display(),
        pki.ca.display()
    )
}

/// An `authorization` block with one user and password.
pub fn user_block(user: &str, password: &str) -> String {
    format!("authorization {{\n  users: [ {{ user: \"{user}\", password: \"{password}\" }} ]\n}}\n")
}

/// An operator (trusted by the server through `operator` and a memory resolver), one account
/// with JetStream and no limits, and a user of it: the server's configuration and the user's
/// `.creds` file text.
pub struct Operator {
    pub config: String,
    pub creds: String,
    /// The user's public key (`U…`).
    pub user: String,
}

pub fn operator() -> Operator {
    let operator = nkeys::KeyPair::new_operator();
    let account = nkeys::KeyPair::new_account();
    let system = nkeys::KeyPair::new_account();
    let user = nkeys::KeyPair::new_user();
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        "gryning-test",
        serde_json::json!({"type": "operator", "version": 2}),
    );
    let account_limits = |jetstream: bool| {
        let mut limits = serde_json::json!({
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
            "wildcards": true, "conn": -1, "leaf": -1,
        });
        if jetstream {
            for key in ["mem_storage", "disk_storage", "streams", "consumer"] {
                limits[key] = serde_json::json!(-1);
            }
        }
        serde_json::json!({
            "limits": limits,
            "default_permissions": {"pub": {}, "sub": {}},
            "type": "account",
            "version": 2,
        })
    };
    let account_jwt = jwt(
        &operator,
        &account.public_key(),
        "GRYNING",
        account_limits(true),
    );
    let system_jwt = jwt(
        &operator,
        &system.public_key(),
        "SYS",
        account_limits(false),
    );
    let user_jwt = jwt(
        &account,
        &user.public_key(),
        "gryning",
        serde_json::json!({
            "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
            "type": "user", "version": 2,
        }),
    );
    let config = format!(
        "operator: \"{operator_jwt}\"\nsystem_account: \"{sys}\"\nresolver: MEMORY\nresolver_preload: {{\n  {acc}: \"{account_jwt}\"\n  {sys}: \"{system_jwt}\"\n}}\n",
        sys = system.public_key(),
        acc = account.public_key(),
    );
    let creds = format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user.seed().unwrap()
    );
    Operator {
        config,
        creds,
        user: user.public_key(),
    }
}

/// A JWT of `claims` about `subject`, issued and signed by `issuer` (NATS's `ed25519-nkey`).
fn jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let header = b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "jti": uuid::Uuid::new_v4().simple().to_string().to_uppercase(),
        "iat": now,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let body = b64(claims.to_string().as_bytes());
    let signed = format!("{header}.{body}");
    let signature = issuer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", b64(&signature))
}
