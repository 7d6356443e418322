//! TLS on `gryning up`: a CA and a server certificate generated at test time; one server with
//! TLS only (a call with the CA trusted succeeds, a plaintext call fails, `gryning table
//! --server https://… --ca-cert` works and without `--ca-cert` says what is missing), and one
//! that requires client certificates (refused without one, served with one the CA signed, from
//! a typed client and from the CLI).

#[path = "support/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

use gryning_proto::pb;
use gryning_proto::pb::insight_client::InsightClient;
use harness::{Bearer, Server};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

const BIN: &str = env!("CARGO_BIN_EXE_gryning");

/// PEM files: the CA, a server certificate for 127.0.0.1 and a client certificate, both
/// signed by the CA.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(vec!["127.0.0.1".into(), "localhost".into()]);
    let (client_cert, client_key) = leaf(vec!["analyst.example".into()]);
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    Pki {
        ca: write("ca.pem", &ca.pem()),
        server_cert: write("server.pem", &server_cert),
        server_key: write("server.key", &server_key),
        client_cert: write("client.pem", &client_cert),
        client_key: write("client.key", &client_key),
    }
}

fn up(dir: &Path, env: &[(&str, &str)]) -> Server {
    let name = format!("data-{}", uuid::Uuid::new_v4());
    Server::start(
        BIN,
        &[
            "up",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.join(&name).to_str().unwrap(),
        ],
        env,
        &dir.join(format!("{name}.log")),
    )
}

async fn channel(
    url: &str,
    pki: &Pki,
    client_cert: bool,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(&pki.ca).unwrap()));
    if client_cert {
        tls = tls.identity(Identity::from_pem(
            std::fs::read(&pki.client_cert).unwrap(),
            std::fs::read(&pki.client_key).unwrap(),
        ));
    }
    Channel::from_shared(url.to_string())
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

async fn get_table(channel: Channel, token: &str) -> Result<pb::TableReply, tonic::Status> {
    InsightClient::with_interceptor(channel, Bearer(Some(token.to_string())))
        .get_table(pb::GetTableRequest {
            name: "case-flow".into(),
            by: String::new(),
            period: String::new(),
            as_of: None,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

fn table_cli(url: &str, token: &str, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(["table", "case-flow", "--server", url, "--token", token])
        .args(extra)
        .env_remove("GRYNING_CA_CERT")
        .env_remove("GRYNING_CLIENT_CERT")
        .env_remove("GRYNING_CLIENT_KEY")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_trusting_clients_and_can_require_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let cert = pki.server_cert.to_str().unwrap();
    let key = pki.server_key.to_str().unwrap();
    let ca = pki.ca.to_str().unwrap();

    // TLS only: bearer tokens still decide who may call what.
    let server = up(
        dir.path(),
        &[("GRYNING_TLS_CERT", cert), ("GRYNING_TLS_KEY", key)],
    );
    let https = format!("https://127.0.0.1:{}", server.port);
    let analyst = server.tokens["analyst"].clone();
    let reply = get_table(channel(&https, &pki, false).await.unwrap(), &analyst)
        .await
        .unwrap();
    assert_eq!(reply.name, "case-flow");
    let e = get_table(
        channel(&https, &pki, false).await.unwrap(),
        &server.tokens["police"],
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    let plaintext = get_table(server.channel().await, &analyst).await;
    assert!(
        plaintext.is_err(),
        "a plaintext call to a TLS server must fail"
    );
    let out = table_cli(&https, &analyst, &["--ca-cert", ca]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("period"));
    let out = table_cli(&https, &analyst, &[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--ca-cert"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop();

    // Client certificates required.
    let server = up(
        dir.path(),
        &[
            ("GRYNING_TLS_CERT", cert),
            ("GRYNING_TLS_KEY", key),
            ("GRYNING_TLS_CLIENT_CA", ca),
        ],
    );
    let https = format!("https://127.0.0.1:{}", server.port);
    let analyst = server.tokens["analyst"].clone();
    let without = match channel(&https, &pki, false).await {
        Ok(channel) => get_table(channel, &analyst).await.map(|_| ()),
        Err(e) => Err(tonic::Status::unavailable(e.to_string())),
    };
    assert!(
        without.is_err(),
        "a client without a certificate must be refused"
    );
    let reply = get_table(channel(&https, &pki, true).await.unwrap(), &analyst)
        .await
        .unwrap();
    assert_eq!(reply.name, "case-flow");
    let out = table_cli(
        &https,
        &analyst,
        &[
            "--ca-cert",
            ca,
            "--client-cert",
            pki.client_cert.to_str().unwrap(),
            "--client-key",
            pki.client_key.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop();
}
