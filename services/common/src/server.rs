//! The server harness every service binary and `gryning up` share: binds the listener (port 0
//! picks a free port) and the optional metrics listener, mounts gRPC health and reflection
//! beside the services, serves (over TLS when a certificate is configured, requiring client
//! certificates when a client CA is) until a shutdown signal, then lets in-flight calls finish,
//! ends open streams (waiting at most `stalled_stream_timeout` for their clients to read the
//! end) and waits for the background tasks (the projections' final checkpoint).

use std::future::Future;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
pub use tonic::service::RoutesBuilder;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};
use tonic_health::ServingStatus;

use crate::context::{Context, StartError};
use crate::metrics;

/// The gRPC health statuses of one server. A service whose live projections stopped following
/// the store is NOT_SERVING, and so is the server as a whole (`""`), for the rest of the
/// process's life: its answers would be stale, so a load balancer should send calls elsewhere
/// and an operator restart it.
#[derive(Clone, Default)]
pub struct Health {
    reporter: HealthReporter,
    not_serving: Arc<Mutex<Vec<&'static str>>>,
}

impl Health {
    /// Reports `service` and the server NOT_SERVING from now on, logging `reason`.
    pub async fn stop_serving(&self, service: &'static str, reason: &str) {
        tracing::error!(
            service,
            reason,
            "reporting NOT_SERVING on gRPC health for this service and the server"
        );
        // Recorded before the status is set: `serve` re-applies it after marking services
        // SERVING, so the two orders of a race both end NOT_SERVING.
        self.not_serving
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(service);
        self.set_not_serving(service).await;
    }

    async fn set_not_serving(&self, service: &str) {
        self.reporter
            .set_service_status(service, ServingStatus::NotServing)
            .await;
        self.reporter
            .set_service_status("", ServingStatus::NotServing)
            .await;
    }

    /// Reports each of `services` SERVING, unless it stopped serving already.
    async fn serve(&self, services: &[&'static str]) {
        for name in services {
            self.reporter
                .set_service_status(*name, ServingStatus::Serving)
                .await;
        }
        let stopped = self
            .not_serving
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for name in stopped {
            self.set_not_serving(name).await;
        }
    }

    /// The `grpc.health.v1.Health` service answering these statuses.
    fn service(&self) -> HealthServer<HealthService> {
        HealthServer::new(HealthService::from_health_reporter(self.reporter.clone()))
    }
}

/// A bound, not yet serving, server.
pub struct Application {
    ctx: Arc<Context>,
    listener: TcpListener,
    port: u16,
    metrics: Option<(TcpListener, u16)>,
    tls: Option<tonic::transport::ServerTlsConfig>,
    routes: RoutesBuilder,
    /// Listened for from the bind on: a SIGTERM that arrives once `announce` has printed the
    /// address, but before serving starts, must stop the server gracefully, not kill it.
    stop: Termination,
}

/// Reads the PEM files the settings name into a TLS configuration (none without a certificate).
fn tls_config(
    settings: &crate::Settings,
) -> Result<Option<tonic::transport::ServerTlsConfig>, StartError> {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    settings.check_tls()?;
    let read = |path: &std::path::PathBuf| {
        std::fs::read(path).map_err(|source| StartError::TlsFile {
            path: path.clone(),
            source,
        })
    };
    let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) else {
        return Ok(None);
    };
    let mut config = ServerTlsConfig::new().identity(Identity::from_pem(read(cert)?, read(key)?));
    if let Some(ca) = &settings.tls_client_ca {
        config = config.client_ca_root(Certificate::from_pem(read(ca)?));
    }
    Ok(Some(config))
}

impl Application {
    /// Binds `ctx.settings.listen` and mounts `routes` plus health (each of `service_names`
    /// reported SERVING unless its projections stopped already) and reflection over every
    /// gryning proto.
    pub async fn bind(
        ctx: Arc<Context>,
        mut routes: RoutesBuilder,
        service_names: &[&'static str],
    ) -> Result<Application, StartError> {
        let (listener, port) = bind(ctx.settings.listen).await?;
        let metrics = match ctx.settings.metrics_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let tls = tls_config(&ctx.settings)?;
        ctx.health.serve(service_names).await;
        let health_service = ctx.health.service();
        // Reflection in both versions: many tools (grpcio-reflection's client, older grpcurl,
        // GUI clients) still ask `grpc.reflection.v1alpha`.
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(gryning_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        routes.add_service(health_service);
        routes.add_service(
            reflection()
                .build_v1()
                .expect("the gryning descriptor set is valid"),
        );
        routes.add_service(
            reflection()
                .build_v1alpha()
                .expect("the gryning descriptor set is valid"),
        );
        Ok(Application {
            ctx,
            listener,
            port,
            metrics,
            tls,
            routes,
            stop: Termination::listen(),
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `GET /metrics`, when `metrics_listen` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(_, port)| *port)
    }

    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// Shows the tokens issued on this start (the only time they are shown), then prints, on
    /// standard output, the metrics address and, last, the address the server listens on;
    /// scripts and tests read these lines. The tokens go to standard output only when it is a
    /// terminal; otherwise (a service manager or a container runtime keeps standard output as a
    /// log) into a file of mode 0600 beside the credentials file, whose path is printed.
    pub fn announce(&self) {
        let mut out = std::io::stdout().lock();
        if !self.ctx.issued.is_empty() {
            let text = issued_lines(&self.ctx.issued);
            if std::io::IsTerminal::is_terminal(&out) {
                let _ = out.write_all(text.as_bytes());
                eprintln!(
                    "keep the tokens above: they are shown once and only their hashes are stored"
                );
            } else {
                let path = tokens_path(&self.ctx.settings.credentials_path());
                match write_private(&path, &text) {
                    Ok(()) => {
                        let _ = writeln!(out, "tokens in {}", path.display());
                        eprintln!(
                            "standard output is not a terminal, so the tokens issued on this first start were written to {} (mode 0600) and not shown: keep them somewhere safe, then delete the file",
                            path.display()
                        );
                    }
                    Err(e) => {
                        tracing::error!(path = %path.display(), error = %e, "could not write the issued tokens");
                        eprintln!(
                            "could not write the tokens issued on this first start to {}: {e}; they are lost: issue new ones with gryning credentials rotate --principal NAME --token-out FILE",
                            path.display()
                        );
                    }
                }
            }
        }
        if let (Some(port), Some(addr)) = (self.metrics_port(), self.ctx.settings.metrics_listen) {
            let _ = writeln!(out, "metrics on http://{}:{port}/metrics", addr.ip());
        }
        let _ = writeln!(
            out,
            "listening on {}:{}{}",
            self.ctx.settings.listen.ip(),
            self.port,
            if self.tls.is_some() { " (tls)" } else { "" }
        );
        let _ = out.flush();
    }

    /// Serves until SIGTERM or ctrl-c.
    pub async fn run_until_stopped(mut self) -> Result<(), StartError> {
        let stop = std::mem::replace(&mut self.stop, Termination::Unlistened);
        self.run_until(stop.wait()).await
    }

    /// Serves until `signal` completes, then shuts down gracefully.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> Result<(), StartError> {
        let Application {
            ctx,
            listener,
            port,
            metrics,
            tls,
            routes,
            stop: _,
        } = self;
        let stopping = Arc::clone(&ctx);
        ctx.spawn_background(tokio::spawn(metrics::upkeep(ctx.shutdown_signal())));
        ctx.spawn_background(tokio::spawn(watch_credentials(
            Arc::clone(&ctx.credentials),
            ctx.shutdown_signal(),
        )));
        if let Some((listener, metrics_port)) = metrics {
            tracing::info!(port = metrics_port, "serving metrics");
            ctx.spawn_background(tokio::spawn(metrics::serve(listener, Arc::clone(&ctx))));
        }
        tracing::info!(port, tls = tls.is_some(), "serving");
        let limits = crate::limits::LimitLayer::new(&ctx.settings, Arc::clone(&ctx.credentials));
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            builder = builder.tls_config(tls)?;
        }
        let calls = crate::drain::Calls::default();
        let serve = builder
            .layer(metrics::TimingLayer)
            .layer(calls.layer())
            .layer(limits)
            .add_routes(routes.routes())
            // Without TCP_NODELAY, a reply finished while an earlier one is still unacknowledged
            // waits for the client's delayed ACK (up to 40 ms): Nagle's algorithm.
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                async move {
                    signal.await;
                    tracing::info!("shutting down: finishing in-flight calls");
                    stopping.begin_shutdown();
                },
            );
        // The graceful shutdown waits for every connection to close, and a client that stopped
        // reading keeps its connection open with the ended stream's last messages unread. So
        // the wait is bounded: after `stalled_stream_timeout`, once no unary call or bulk
        // `Append` is in flight (those always finish), the server stops waiting and exits.
        let grace = ctx.settings.stalled_stream_timeout;
        let mut stopped = ctx.shutdown_signal();
        let bounded = async {
            let _ = stopped.wait_for(|stop| *stop).await;
            tokio::time::sleep(grace).await;
            calls.finished().await;
        };
        tokio::select! {
            served = serve => served?,
            () = bounded => tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "shutting down: clients still hold streams open after stalled_stream_timeout; closing their connections"
            ),
        }
        // Reached also when serving fails: the streams and tasks must still be told to stop.
        ctx.begin_shutdown();
        for task in ctx.take_background() {
            let _ = task.await;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// A listener on `addr` and the port it got (`addr` may name port 0).
async fn bind(addr: std::net::SocketAddr) -> Result<(TcpListener, u16), StartError> {
    let bound = |source| StartError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bound)?;
    let port = listener.local_addr().map_err(bound)?.port();
    Ok((listener, port))
}

/// Completes on SIGTERM (Unix) or ctrl-c.
pub async fn termination() {
    Termination::listen().wait().await
}

/// SIGTERM and ctrl-c, caught from the moment of `listen` (a signal before `wait` is kept).
enum Termination {
    #[cfg(unix)]
    Signals {
        term: tokio::signal::unix::Signal,
        interrupt: tokio::signal::unix::Signal,
    },
    /// Ctrl-c only, listened for once `wait` is polled.
    Unlistened,
}

impl Termination {
    fn listen() -> Termination {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(term), Ok(interrupt)) => return Termination::Signals { term, interrupt },
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM; ctrl-c only");
                }
            }
        }
        Termination::Unlistened
    }

    async fn wait(self) {
        match self {
            #[cfg(unix)]
            Termination::Signals {
                mut term,
                mut interrupt,
            } => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = interrupt.recv() => {}
                }
            }
            Termination::Unlistened => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

/// Structured logs on standard error, filtered by `filter` (`info`, `info,gryning_insight=debug`);
/// an unparsable filter falls back to `info` and says so.
pub fn init_telemetry(filter: &str) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let (targets, bad) = match filter.parse::<tracing_subscriber::filter::Targets>() {
        Ok(t) => (t, false),
        Err(_) => ("info".parse().expect("valid filter"), true),
    };
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false),
        )
        .with(targets)
        .try_init();
    if bad {
        tracing::warn!(
            filter,
            "GRYNING_LOG: not a log filter such as info or info,gryning=debug; using info"
        );
    }
}

/// Declares a service crate's `Application`: `build(settings)` opens the context the settings
/// name, runs the mount block (which adds the crate's gRPC service to `routes`, and may start
/// what it needs first), and binds with health and reflection; `port`, `announce`,
/// `run_until_stopped` and `run_until` serve it. One definition for every service binary.
#[macro_export]
macro_rules! service_application {
    ($(#[$doc:meta])* names: [$($name:expr),+], mount($ctx:ident, $routes:ident) $mount:block) => {
        $(#[$doc])*
        pub struct Application($crate::Application);

        impl Application {
            /// Opens the store, catalogue and credentials that `settings` name and binds the listener.
            pub async fn build(settings: $crate::Settings) -> Result<Application, $crate::StartError> {
                let $ctx = $crate::Context::open(settings).await?;
                #[allow(unused_mut)]
                let mut $routes = $crate::server::RoutesBuilder::default();
                $mount
                Ok(Application($crate::Application::bind($ctx, $routes, &[$($name),+]).await?))
            }

            pub fn port(&self) -> u16 {
                self.0.port()
            }

            /// Prints the tokens issued on this start and the listening address on standard output.
            pub fn announce(&self) {
                self.0.announce()
            }

            /// Serves until SIGTERM or ctrl-c, then shuts down gracefully.
            pub async fn run_until_stopped(self) -> Result<(), $crate::StartError> {
                self.0.run_until_stopped().await
            }

            /// Serves until `signal` completes (tests), then shuts down gracefully.
            pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) -> Result<(), $crate::StartError> {
                self.0.run_until(signal).await
            }
        }
    };
}

/// How often a running server looks at its credentials file for changes.
pub const CREDENTIALS_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Reads the credentials file again whenever it changed (every [`CREDENTIALS_POLL`]) until the
/// server shuts down: added, rotated and revoked tokens take effect without a restart. A
/// changed file that cannot be used is logged and the credentials in force stay.
async fn watch_credentials(
    credentials: Arc<crate::auth::Credentials>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(CREDENTIALS_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        let creds = Arc::clone(&credentials);
        let Ok(Some(reloaded)) =
            tokio::task::spawn_blocking(move || creds.reload_if_changed()).await
        else {
            continue;
        };
        match reloaded {
            Ok(r) => {
                metrics::global().credentials_reloaded("loaded");
                tracing::info!(
                    tokens = r.tokens,
                    principals = r.principals,
                    "credentials file changed: reloaded"
                );
            }
            Err(e) => {
                metrics::global().credentials_reloaded("refused");
                tracing::warn!(error = %e, "credentials file changed but cannot be used; the credentials read before stay in force");
            }
        }
    }
}

/// One `token role=R principal=P TOKEN` line per issued token.
fn issued_lines(issued: &[crate::credentials::IssuedToken]) -> String {
    issued
        .iter()
        .map(|t| {
            format!(
                "token role={} principal={} {}\n",
                t.principal.role.name(),
                t.principal.name,
                t.token
            )
        })
        .collect()
}

/// Where a first start writes its tokens when standard output is not a terminal: beside the
/// credentials file, its name with `.tokens` added.
pub fn tokens_path(credentials: &std::path::Path) -> std::path::PathBuf {
    let mut name = credentials.file_name().unwrap_or_default().to_os_string();
    name.push(".tokens");
    credentials.with_file_name(name)
}

/// Writes `text` to a new file at `path`, readable and writable by the owner only. Whatever
/// was there (a file of an earlier first start, a link) is removed first, so the new file is
/// never one another user opened or pointed elsewhere.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
