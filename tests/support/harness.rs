//! Test harness for the gRPC servers: starts a real binary on port 0 with a temporary data
//! directory, reads the issued tokens and the port from its standard output, and hands out
//! typed clients that send a role's bearer token. Conditions are awaited with deadlines.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

/// How long a server may take to start or stop, and an awaited condition to hold.
pub const DEADLINE: Duration = Duration::from_secs(60);

pub struct Server {
    pub child: Child,
    pub port: u16,
    /// Tokens by role; only the first start of a data directory prints them.
    pub tokens: HashMap<String, String>,
    /// Port of `GET /metrics`, when the server was started with metrics on.
    pub metrics_port: Option<u16>,
    /// Port of the web dashboard, when the server was started with one.
    pub dashboard_port: Option<u16>,
    pub log: PathBuf,
}

impl Server {
    /// Starts `program args…` with `env`, waiting for its "listening on" line.
    pub fn start(program: &str, args: &[&str], env: &[(&str, &str)], log: &Path) -> Server {
        let stderr = std::fs::File::create(log).expect("log file");
        let mut command = Command::new(program);
        command
            .args(args)
            .env_remove("GRYNING_CONFIG")
            .env_remove("GRYNING_STORE")
            .env("GRYNING_LOG", "info")
            // Tests that are not about publications keep their event logs to what they record;
            // the publication tests turn it on through `env`.
            .env("GRYNING_PUBLISH_AUTOMATICALLY", "false")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut tokens = HashMap::new();
        let mut metrics_port = None;
        let mut dashboard_port = None;
        let started = std::time::Instant::now();
        loop {
            let left = DEADLINE.saturating_sub(started.elapsed());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "{program} did not report listening within {DEADLINE:?}; log:\n{}",
                        std::fs::read_to_string(log).unwrap_or_default()
                    );
                }
            };
            if line.starts_with("token role=") {
                panic!("{program} printed a token on standard output, which is not a terminal here: {line}");
            } else if let Some(path) = line.strip_prefix("tokens in ") {
                // A first start on a standard output that is not a terminal: the tokens are
                // in a private file beside the credentials file.
                tokens = read_tokens(Path::new(path));
            } else if let Some(url) = line.strip_prefix("metrics on ") {
                let port = url.rsplit(':').next().unwrap();
                metrics_port = Some(port.trim_end_matches("/metrics").parse().unwrap());
            } else if let Some(url) = line.strip_prefix("dashboard on ") {
                let port = url.trim_end_matches('/').rsplit(':').next().unwrap();
                dashboard_port = Some(port.parse().unwrap());
            } else if let Some(addr) = line.strip_prefix("listening on ") {
                let addr = addr.trim_end_matches(" (tls)");
                let port = addr.rsplit(':').next().unwrap().parse().unwrap();
                return Server {
                    child,
                    port,
                    tokens,
                    metrics_port,
                    dashboard_port,
                    log: log.to_path_buf(),
                };
            }
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .unwrap()
            .connect()
            .await
            .expect("connect")
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(self) {
        self.terminate();
        self.wait_for_clean_exit();
    }

    /// Sends SIGTERM without waiting.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits, up to the deadline, for the process to exit with success.
    pub fn wait_for_clean_exit(mut self) {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "server exited with {status}; log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
                return;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "server did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A test failing because the server died says how it died.
        if std::thread::panicking() {
            if let Ok(Some(status)) = self.child.try_wait() {
                eprintln!(
                    "the server had already exited ({status}); log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /metrics` over plain HTTP/1.1: the status line and the body.
pub async fn scrape(port: u16, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fut = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to metrics");
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let (head, body) = response.split_once("\r\n\r\n").expect("http response");
        (head.lines().next().unwrap().to_string(), body.to_string())
    };
    tokio::time::timeout(DEADLINE, fut)
        .await
        .expect("metrics answered within the deadline")
}

/// The value of the sample `name{labels}` (exact text before the value) in an exposition.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// An interceptor adding `authorization: Bearer <token>` (or nothing).
#[derive(Clone)]
pub struct Bearer(pub Option<String>);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.0 {
            let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

/// Awaits `condition` on the items of a stream, failing after the deadline.
pub async fn next_matching<T>(
    stream: &mut tonic::Streaming<T>,
    what: &str,
    mut condition: impl FnMut(&T) -> bool,
) -> T {
    let fut = async {
        loop {
            let item = stream
                .message()
                .await
                .unwrap_or_else(|s| panic!("{what}: stream failed: {s:?}"))
                .unwrap_or_else(|| panic!("{what}: stream ended"));
            if condition(&item) {
                return item;
            }
        }
    };
    tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: not seen within {DEADLINE:?}"))
}

/// Polls `probe` until it gives a value, failing after the deadline (for state a server
/// reaches in the background, such as live projections catching up).
pub fn await_value<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{what}: not seen within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `token role=R principal=P TOKEN` lines of a first start's tokens file, by role. The file
/// must be private to its owner.
pub fn read_tokens(path: &Path) -> HashMap<String, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode,
        0o600,
        "{} must be private to its owner",
        path.display()
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let rest = line
                .strip_prefix("token role=")
                .unwrap_or_else(|| panic!("{line}"));
            let mut parts = rest.split_whitespace();
            let role = parts.next().unwrap().to_string();
            (role, parts.last().unwrap().to_string())
        })
        .collect()
}
