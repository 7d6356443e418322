//! The client side of `gryning table --server URL`, `gryning explain --server URL` and
//! `gryning import --server URL`: the first two ask a running server's insight service and
//! render the reply exactly as the offline command would; the third streams an NDJSON file through the event-log service's `Append` and
//! reports each rejection by its line number, as the offline import does. An `https://` URL is
//! reached over TLS, trusting the `--ca-cert` given (the system's roots are not consulted:
//! gryning servers use a deployment's own CA), with a client certificate when the server
//! requires one.

use std::io::BufRead;
use std::ops::ControlFlow;
use std::path::PathBuf;

use anyhow::Context as _;
use gryning_projections::{Cell, Table};
use gryning_proto::pb;
use gryning_proto::pb::event_log_client::EventLogClient;
use gryning_proto::pb::insight_client::InsightClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::import::{LineRejection, Summary};
use crate::Format;

/// How to reach a running server: its URL, the caller's token and the TLS files of the client
/// side. Shared by every subcommand that can talk to a server.
#[derive(clap::Args, Default)]
pub(crate) struct ServerArgs {
    /// Talk to a running server (e.g. http://127.0.0.1:50051) instead of the data directory.
    #[arg(long, value_name = "URL", env = "GRYNING_SERVER")]
    pub server: Option<String>,
    /// Bearer token for --server (`gryning up` prints one per role when it creates them).
    #[arg(long, env = "GRYNING_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate (PEM) that signed the server's certificate, for an https:// --server.
    #[arg(long, value_name = "FILE", env = "GRYNING_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM), for a server that requires one; needs --client-key.
    #[arg(
        long,
        value_name = "FILE",
        env = "GRYNING_CLIENT_CERT",
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(
        long,
        value_name = "FILE",
        env = "GRYNING_CLIENT_KEY",
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,
}

/// A connected channel and the `authorization` header value to send on it.
pub(crate) struct Server {
    url: String,
    channel: Channel,
    bearer: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
}

impl ServerArgs {
    /// Connects to `url` with these settings; `who` says which token the command needs.
    pub(crate) async fn connect(&self, url: &str, who: &str) -> anyhow::Result<Server> {
        let token = self
            .token
            .as_deref()
            .with_context(|| format!("--server needs --token (or GRYNING_TOKEN): {who}"))?;
        let bearer = format!("Bearer {token}")
            .parse()
            .context("--token: not a valid header value")?;
        Ok(Server {
            url: url.to_string(),
            channel: connect(url, self).await?,
            bearer,
        })
    }
}

impl Server {
    /// The server's URL, as given.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.bearer.clone());
        request
    }

    /// A refused call as the user should read it: where, the gRPC code, the server's words.
    fn refused(&self, status: tonic::Status) -> anyhow::Error {
        anyhow::anyhow!("{}: {:?}: {}", self.url, status.code(), status.message())
    }
}

fn read(option: &str, path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{option} {}: cannot read", path.display()))
}

/// A channel to `url`: plain for `http://`, TLS for `https://`.
async fn connect(url: &str, tls: &ServerArgs) -> anyhow::Result<Channel> {
    let mut endpoint = Channel::from_shared(url.to_string())
        .with_context(|| format!("--server {url:?}: not a URL such as http://127.0.0.1:50051"))?;
    if url.starts_with("https://") {
        let ca = tls.ca_cert.as_ref().context(
            "--server https://…: needs --ca-cert FILE, the CA that signed the server's certificate",
        )?;
        let mut config =
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("--ca-cert", ca)?));
        if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
            config = config.identity(Identity::from_pem(
                read("--client-cert", cert)?,
                read("--client-key", key)?,
            ));
        }
        endpoint = endpoint
            .tls_config(config)
            .with_context(|| format!("--server {url}: tls"))?;
    } else if tls.ca_cert.is_some() || tls.client_cert.is_some() {
        anyhow::bail!("--server {url}: --ca-cert and --client-cert need an https:// URL");
    }
    endpoint
        .connect()
        .await
        .with_context(|| format!("cannot connect to {url}"))
}

/// A table as a running server's insight service answers it: the rows, the JSON rendering,
/// the position the rows reflect and, for a published table, its publication.
pub(crate) struct Fetched {
    pub table: Table,
    pub json: String,
    pub position: u64,
    pub publication: Option<pb::Publication>,
}

/// Asks the server for one table of every region (`GetTable`); the status of a refused call is
/// kept so that a caller can tell a missing publication (`NotFound`) from other refusals.
pub(crate) async fn fetch(
    server: &Server,
    name: &str,
    by: &str,
    period: &str,
    as_of: Option<u64>,
    published: Option<(&str, u32)>,
) -> Result<Fetched, (tonic::Status, anyhow::Error)> {
    let (published, revision) = published.unwrap_or_default();
    fetch_request(
        server,
        pb::GetTableRequest {
            name: name.to_string(),
            by: by.to_string(),
            period: period.to_string(),
            as_of,
            published: published.to_string(),
            revision,
            ..Default::default()
        },
    )
    .await
}

/// The table `request` names, as [`fetch`] gives it.
pub(crate) async fn fetch_request(
    server: &Server,
    request: pb::GetTableRequest,
) -> Result<Fetched, (tonic::Status, anyhow::Error)> {
    let reply = InsightClient::new(server.channel.clone())
        .get_table(server.request(request))
        .await
        .map_err(|s| (s.clone(), server.refused(s)))?
        .into_inner();
    // Column names arrive as strings; `Table` holds static names because the tables are
    // fixed. A few tables per process run, so leaking their few names costs nothing.
    let columns = reply
        .columns
        .into_iter()
        .map(|c| &*Box::leak(c.into_boxed_str()))
        .collect();
    let rows = reply
        .rows
        .into_iter()
        .map(|r| {
            r.cells
                .into_iter()
                .map(|c| match c.value {
                    Some(pb::cell::Value::Text(t)) => Cell::Text(t),
                    Some(pb::cell::Value::Int(n)) => Cell::Int(n),
                    Some(pb::cell::Value::Float(x)) => Cell::Float(x),
                    Some(pb::cell::Value::Null(_)) | None => Cell::Null,
                })
                .collect()
        })
        .collect();
    Ok(Fetched {
        table: Table {
            name: reply.name,
            columns,
            rows,
        },
        json: reply.json,
        position: reply.position,
        publication: reply.publication,
    })
}

/// `gryning table … --server URL`: the table `request` names, rendered as `format`.
pub(crate) async fn table(
    server: &Server,
    request: pb::GetTableRequest,
    format: Format,
) -> anyhow::Result<String> {
    let fetched = fetch_request(server, request).await.map_err(|(_, e)| e)?;
    if format == Format::Json {
        return Ok(fetched.json);
    }
    Ok(match format {
        Format::Csv => fetched.table.to_csv(),
        _ => fetched.table.to_text(),
    })
}

/// `gryning publish … --server URL`: the quarter published through `Insight.Publish` (admin).
pub(crate) async fn publish(
    server: &Server,
    quarter: &str,
    note: &str,
) -> anyhow::Result<pb::Publication> {
    InsightClient::new(server.channel.clone())
        .publish(server.request(pb::PublishRequest {
            quarter: quarter.to_string(),
            note: note.to_string(),
        }))
        .await
        .map_err(|s| server.refused(s))?
        .into_inner()
        .publication
        .with_context(|| format!("{}: Publish answered without the publication", server.url))
}

/// `gryning publications … --server URL`: `Insight.ListPublications` (empty quarter: all).
pub(crate) async fn publications(
    server: &Server,
    quarter: &str,
) -> anyhow::Result<Vec<pb::Publication>> {
    Ok(InsightClient::new(server.channel.clone())
        .list_publications(server.request(pb::ListPublicationsRequest {
            quarter: quarter.to_string(),
        }))
        .await
        .map_err(|s| server.refused(s))?
        .into_inner()
        .publications)
}

/// `gryning explain … --server URL`: the cell's events through `Insight.Explain`. A large cell
/// lists many events, so the reply is read without the default 4 MiB limit.
pub(crate) async fn explain(
    server: &Server,
    request: pb::ExplainRequest,
) -> anyhow::Result<pb::ExplainReply> {
    Ok(InsightClient::new(server.channel.clone())
        .max_decoding_message_size(usize::MAX)
        .explain(server.request(request))
        .await
        .map_err(|s| server.refused(s))?
        .into_inner())
}

/// `gryning audit … --server URL`: the listing through `Insight.Audit` (read without the
/// default 4 MiB limit: up to 100,000 entries).
pub(crate) async fn audit(
    server: &Server,
    request: pb::AuditRequest,
) -> anyhow::Result<pb::AuditResponse> {
    Ok(InsightClient::new(server.channel.clone())
        .max_decoding_message_size(usize::MAX)
        .audit(server.request(request))
        .await
        .map_err(|s| server.refused(s))?
        .into_inner())
}

/// Events in flight between the file reader and the `Append` stream.
const IN_FLIGHT: usize = 8192;

/// Events per `Append` call of an import: a server refuses a call of more than its
/// `max_append_events` (100,000 by default), so a file is sent in calls of this many, one after
/// the other (each call's events are stored in order, and the next starts after its summary).
pub(crate) const EVENTS_PER_CALL: u64 = 10_000;

/// Sends the events of `events` through `Append` calls of at most [`EVENTS_PER_CALL`] events,
/// one after the other, until `events` ends or a call fails; the summaries are added up, with
/// each rejection's index counted from the first event of the first call.
async fn append_in_calls(
    server: &Server,
    mut events: tokio::sync::mpsc::Receiver<pb::Event>,
) -> Result<pb::AppendSummary, tonic::Status> {
    let mut client =
        EventLogClient::new(server.channel.clone()).max_decoding_message_size(usize::MAX);
    let mut total = pb::AppendSummary::default();
    let mut before = 0u64;
    loop {
        let (tx, rx) = tokio::sync::mpsc::channel::<pb::Event>(IN_FLIGHT);
        let forward = async {
            let mut sent = 0u64;
            while sent < EVENTS_PER_CALL {
                let Some(event) = events.recv().await else {
                    return (sent, true);
                };
                if tx.send(event).await.is_err() {
                    // The call ended early; its status says why.
                    break;
                }
                sent += 1;
            }
            drop(tx);
            (sent, false)
        };
        let call = client.append(server.request(tokio_stream::wrappers::ReceiverStream::new(rx)));
        let ((sent, ended), reply) = tokio::join!(forward, call);
        let summary = reply?.into_inner();
        total.accepted += summary.accepted;
        total.duplicates += summary.duplicates;
        total.rejected += summary.rejected;
        total.rejections_omitted += summary.rejections_omitted;
        total
            .rejections
            .extend(summary.rejections.into_iter().map(|r| pb::AppendRejection {
                index: r.index + before,
                ..r
            }));
        before += sent;
        if ended {
            return Ok(total);
        }
    }
}

/// Streams the NDJSON of `input` through the event-log service's `Append` (in calls of at most
/// [`EVENTS_PER_CALL`] events), in file order. Lines
/// that are not an event in the NDJSON format are rejected here, without being sent; the
/// server's rejections come back by the event's place in the stream and are turned into line
/// numbers, with the number of rejections the server counted but did not list (it lists the
/// first `MAX_LISTED_REJECTIONS`). All rejections are returned sorted by line; `on_progress` is told of the input
/// bytes read so far.
pub(crate) async fn import(
    server: &Server,
    input: impl BufRead + Send + 'static,
    on_progress: impl Fn(u64) + Send + 'static,
) -> anyhow::Result<(Summary, Vec<LineRejection>, u64)> {
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::Event>(IN_FLIGHT);
    // The reader thread keeps, for each event sent, its line number: the n-th event sent is the
    // n-th of the stream, which is how the server names it in a rejection.
    let reader = std::thread::spawn(move || {
        let mut sent_lines = Vec::new();
        let mut rejections = Vec::new();
        let mut bytes = 0u64;
        let read = crate::import::for_each_line(input, |line, consumed, parsed| {
            bytes += consumed;
            match parsed {
                None => {}
                Some(Ok(event)) => {
                    if tx.blocking_send(event).is_err() {
                        // The call ended early; its status says why.
                        return ControlFlow::Break(());
                    }
                    sent_lines.push(line);
                }
                Some(Err(reason)) => rejections.push(LineRejection { line, reason }),
            }
            on_progress(bytes);
            ControlFlow::Continue(())
        });
        (read, sent_lines, rejections)
    });
    let calls = append_in_calls(server, rx).await;
    let (read, sent_lines, mut rejections) = tokio::task::spawn_blocking(move || reader.join())
        .await
        .context("the input reader task failed")?
        .map_err(|_| anyhow::anyhow!("the input reader thread panicked"))?;
    let summary = calls.map_err(|s| match s.code() {
        // Refused as a whole before any event was recorded.
        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => server.refused(s),
        _ => {
            let refused = server.refused(s);
            anyhow::anyhow!(
                "{refused}\nthe import stopped with {} events sent; those the server recorded \
                 before it stopped stay recorded, and importing the file again is safe: they \
                 count as duplicates",
                sent_lines.len()
            )
        }
    })?;
    if let Err(e) = read {
        // Everything before the failed read was sent and recorded.
        return Err(anyhow::Error::new(e).context(format!(
            "reading the input failed after line {}; the {} events before it were recorded \
             ({} stored, {} duplicate, {} rejected)",
            sent_lines.last().copied().unwrap_or(0),
            sent_lines.len(),
            summary.accepted,
            summary.duplicates,
            summary.rejected
        )));
    }
    for r in summary.rejections {
        let line = usize::try_from(r.index)
            .ok()
            .and_then(|i| sent_lines.get(i))
            .with_context(|| {
                format!(
                    "the server rejected event #{} of {} sent: {}",
                    r.index,
                    sent_lines.len(),
                    r.message
                )
            })?;
        rejections.push(LineRejection {
            line: *line,
            reason: r.message,
        });
    }
    rejections.sort_by_key(|r| r.line);
    let unlisted = summary.rejections_omitted;
    Ok((
        Summary {
            accepted: summary.accepted,
            duplicates: summary.duplicates,
            rejected: rejections.len() as u64 + unlisted,
        },
        rejections,
        unlisted,
    ))
}
