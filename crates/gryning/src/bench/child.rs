//! The child processes `gryning bench` times: this same binary run as a user runs it, timed as
//! a whole (process start, the store's open and the work), with its peak resident memory from
//! the kernel (`wait4`), and `gryning up` started and read until it announces "listening on".

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// This binary, with the environment that would point it elsewhere removed (another store,
/// a configuration file, a server), and automatic publishing off.
pub fn gryning() -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("the path of this gryning binary")?;
    let mut command = Command::new(exe);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GRYNING_") {
            command.env_remove(&key);
        }
    }
    command.env("GRYNING_PUBLISH_AUTOMATICALLY", "false");
    Ok(command)
}

/// A finished child: its wall time, peak resident memory and standard output.
pub struct Finished {
    pub wall: Duration,
    pub max_rss_kib: u64,
    pub stdout: Vec<u8>,
}

/// Runs `command` to its end; an exit status other than 0 is an error carrying its stderr.
pub fn run(mut command: Command) -> anyhow::Result<Finished> {
    let what = format!("{command:?}");
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {what}"))?;
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let (status, rss) = wait4(&child)?;
    let wall = started.elapsed();
    // Reaped by wait4: the handle must not be waited on again.
    std::mem::forget(child);
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if status != 0 {
        bail!(
            "{what} failed (status {status}): {}",
            String::from_utf8_lossy(&stderr).trim()
        );
    }
    Ok(Finished {
        wall,
        max_rss_kib: rss,
        stdout,
    })
}

/// Waits for `child` with `wait4`: its exit code (or 128 + signal) and peak RSS in KiB.
fn wait4(child: &Child) -> anyhow::Result<(i32, u64)> {
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value of the plain C struct wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: the pid is our own child's, not yet reaped; both pointers are valid.
        let r = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
        if r >= 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).context("wait4");
        }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    Ok((code, usage.ru_maxrss as u64))
}

/// The resident memory of process `pid` now, KiB (VmRSS).
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/PID/status")
}

/// A running `gryning up`.
pub struct Up {
    child: Child,
    pub url: String,
    pub tokens: std::collections::HashMap<String, String>,
    /// From the spawn to the "listening on" line: the store opened, the projections caught
    /// up, the port bound.
    pub ready: Duration,
    /// VmRSS when it said "listening on", KiB.
    pub rss_kib: u64,
    /// The port of the analysts' dashboard it serves beside the gRPC services.
    pub dashboard_port: u16,
}

impl Up {
    /// Starts `gryning up` on a free loopback port over the embedded store in `data_dir`, with
    /// the dashboard on another (as the operations centre runs it); its log goes to `log`.
    pub fn start(data_dir: &Path, log: &Path) -> anyhow::Result<Up> {
        let mut command = gryning()?;
        command
            .arg("--data-dir")
            .arg(data_dir)
            .args(["up", "--listen", "127.0.0.1:0"])
            .args(["--dashboard-listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).context("the server's log file")?);
        let started = Instant::now();
        let mut child = command.spawn().context("cannot start gryning up")?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut tokens = std::collections::HashMap::new();
        let mut dashboard_port = None;
        let mut up = |child: &mut Child| -> anyhow::Result<(String, Duration)> {
            loop {
                let line = match rx.recv_timeout(Duration::from_secs(600)) {
                    Ok(line) => line,
                    Err(_) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        bail!(
                            "gryning up did not say \"listening on\" (see {})",
                            log.display()
                        );
                    }
                };
                if let Some(url) = line.strip_prefix("dashboard on ") {
                    let port = url
                        .trim_end_matches('/')
                        .rsplit(':')
                        .next()
                        .unwrap_or_default();
                    dashboard_port = port.parse().ok();
                }
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let port = addr.rsplit(':').next().unwrap_or_default();
                    return Ok((format!("http://127.0.0.1:{port}"), started.elapsed()));
                }
                // A first start on a standard output that is not a terminal writes its
                // tokens to a private file and prints where.
                if let Some(path) = line.strip_prefix("tokens in ") {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("the tokens file {path}"))?;
                    for line in text.lines() {
                        let words: Vec<&str> = line.split_whitespace().collect();
                        if let ["token", role, .., token] = words.as_slice() {
                            if let Some(role) = role.strip_prefix("role=") {
                                tokens.insert(role.to_string(), token.to_string());
                            }
                        }
                    }
                }
            }
        };
        let (url, ready) = up(&mut child)?;
        let rss_kib = rss_kib(child.id())?;
        let dashboard_port = dashboard_port.context("gryning up did not say \"dashboard on\"")?;
        Ok(Up {
            child,
            url,
            tokens,
            ready,
            rss_kib,
            dashboard_port,
        })
    }

    pub fn token(&self, role: &str) -> anyhow::Result<&str> {
        self.tokens.get(role).map(String::as_str).with_context(|| {
            format!("gryning up printed no {role} token (only a new data directory gets them)")
        })
    }

    pub async fn channel(&self) -> anyhow::Result<tonic::transport::Channel> {
        tonic::transport::Channel::from_shared(self.url.clone())?
            .connect()
            .await
            .with_context(|| format!("cannot connect to {}", self.url))
    }

    /// SIGTERM, then waits for the graceful shutdown.
    pub fn stop(mut self) -> anyhow::Result<()> {
        // SAFETY: signalling our own child, which has not been reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        self.child
            .wait()
            .context("waiting for gryning up to stop")?;
        Ok(())
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
