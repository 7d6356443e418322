//! The shipped secure NATS example, end to end: `deploy/nats/secure.conf` (TLS with client
//! certificates, a JetStream account and its user) run by a nats-server of the test's own, and
//! `deploy/nats/gryning-secure.toml` as gryning's settings file, with only the paths, the port
//! and the host changed to the test's. `gryning import` and `gryning table` work through it;
//! a wrong password, a password file others may read and a settings file without the client
//! certificate are refused with what to change.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gryning_store_nats::testkit;

#[path = "../crates/store-nats/tests/support/secure.rs"]
mod secure;

/// The example password whose bcrypt hash `deploy/nats/secure.conf` holds.
const EXAMPLE_PASSWORD: &str = "example-only-change-me";

fn example(name: &str) -> String {
    std::fs::read_to_string(testkit::workspace_root().join("deploy/nats").join(name)).unwrap()
}

/// `deploy/nats/secure.conf` with the test's certificates, storage and port.
fn server(dir: &Path, pki: &secure::Pki) -> testkit::Server {
    let port = testkit::free_port();
    let config = example("secure.conf")
        .replace("listen: 0.0.0.0:4222", &format!("listen: 127.0.0.1:{port}"))
        .replace(
            "/var/lib/nats/jetstream",
            dir.join("jetstream").to_str().unwrap(),
        )
        .replace(
            "/etc/nats/tls/server.pem",
            pki.server_cert.to_str().unwrap(),
        )
        .replace("/etc/nats/tls/server.key", pki.server_key.to_str().unwrap())
        .replace("/etc/nats/tls/ca.pem", pki.ca.to_str().unwrap());
    assert!(!config.contains("/etc/nats"), "{config}");
    testkit::Server::from_config(dir, port, &config)
}

/// `deploy/nats/gryning-secure.toml` with the test's server and files, less the lines
/// containing any of `without`.
fn settings(dir: &Path, pki_dir: &Path, port: u16, without: &[&str]) -> PathBuf {
    let text: String = example("gryning-secure.toml")
        .replace(
            "nats://nats.example.internal:4222",
            &format!("nats://127.0.0.1:{port}"),
        )
        .replace("/etc/gryning/nats/", &format!("{}/", pki_dir.display()))
        .lines()
        .filter(|line| !without.iter().any(|w| line.contains(w)))
        .map(|line| format!("{line}\n"))
        .collect();
    let path = dir.join(format!("gryning-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, text).unwrap();
    path
}

fn gryning(config: &Path, data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gryning"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("GRYNING_STORE")
        .env_remove("GRYNING_CATALOG")
        .env_remove("GRYNING_TOKEN")
        .env("GRYNING_CONFIG", config)
        .output()
        .expect("gryning runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn refused(out: &Output, parts: &[&str]) {
    assert!(!out.status.success(), "allowed: {}", stderr(out));
    let e = stderr(out);
    for part in parts {
        assert!(e.contains(part), "{part:?} not in: {e}");
    }
    assert!(!e.contains(EXAMPLE_PASSWORD), "the password shown: {e}");
}

#[test]
fn the_shipped_secure_example_connects_and_refuses_what_it_must() {
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    let pki = secure::pki(&pki_dir);
    let password = secure::write(&pki_dir, "password", &format!("{EXAMPLE_PASSWORD}\n"));
    let server = server(&dir.path().join("nats"), &pki);
    let data = dir.path().join("data");

    // A few events of the generated dataset, through the example's settings.
    let all = dir.path().join("all.ndjson");
    let out = Command::new(env!("CARGO_BIN_EXE_gryning"))
        .args([
            "generate",
            "--scale",
            "1",
            "--output",
            all.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let sample: String = std::fs::read_to_string(&all)
        .unwrap()
        .lines()
        .take(300)
        .map(|l| format!("{l}\n"))
        .collect();
    let sample_path = dir.path().join("sample.ndjson");
    std::fs::write(&sample_path, sample).unwrap();

    let config = settings(dir.path(), &pki_dir, server.port, &[]);
    let out = gryning(&config, &data, &["import", sample_path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("300 accepted, 0 duplicate, 0 rejected"),
        "{stdout}"
    );
    let out = gryning(&config, &data, &["table", "case-flow", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let again = gryning(&config, &data, &["import", sample_path.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("0 accepted, 300 duplicate"),
        "{}",
        stderr(&again)
    );

    // A wrong password.
    std::fs::write(&password, "not-the-password\n").unwrap();
    let out = gryning(&config, &data, &["table", "case-flow"]);
    refused(
        &out,
        &[
            "refused user \"gryning\" and a password (authorization violation)",
            "nats_password_file",
        ],
    );
    assert!(
        !stderr(&out).contains("not-the-password"),
        "{}",
        stderr(&out)
    );
    std::fs::write(&password, format!("{EXAMPLE_PASSWORD}\n")).unwrap();

    // A password file others may read.
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = gryning(&config, &data, &["table", "case-flow"]);
    refused(
        &out,
        &[
            "setting nats_password_file",
            "mode 0644",
            &format!("chmod 600 {}", password.display()),
        ],
    );
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();

    // No client certificate.
    let without_cert = settings(
        dir.path(),
        &pki_dir,
        server.port,
        &["nats_tls_cert", "nats_tls_key"],
    );
    let out = gryning(&without_cert, &data, &["table", "case-flow"]);
    refused(
        &out,
        &[
            "requires a client certificate",
            "set nats_tls_cert and nats_tls_key",
        ],
    );

    // No TLS settings at all: the server asks for TLS, gryning has no CA for it.
    let plain = settings(dir.path(), &pki_dir, server.port, &["nats_tls_"]);
    let out = gryning(&plain, &data, &["table", "case-flow"]);
    refused(&out, &["requires TLS", "set nats_tls_ca"]);

    // A key without its certificate is a settings error, before any connection.
    let half = settings(dir.path(), &pki_dir, server.port, &["nats_tls_cert"]);
    let out = gryning(&half, &data, &["table", "case-flow"]);
    refused(
        &out,
        &["setting nats_tls_cert: nats_tls_key is set, so nats_tls_cert must be too"],
    );
}
