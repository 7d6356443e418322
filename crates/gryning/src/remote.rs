//! The client side of `gryning table --server URL`: asks a running server's insight service and
//! renders the reply exactly as the offline command would. An `https://` URL is reached over
//! TLS, trusting the `--ca-cert` given (the system's roots are not consulted: gryning servers
//! use a deployment's own CA), with a client certificate when the server requires one.

use std::path::PathBuf;

use anyhow::Context as _;
use gryning_projections::{Cell, Table};
use gryning_proto::pb;
use gryning_proto::pb::insight_client::InsightClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::Format;

/// The TLS files of the client side.
#[derive(Default)]
pub(crate) struct Tls {
    pub ca_cert: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

fn read(option: &str, path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{option} {}: cannot read", path.display()))
}

/// A channel to `url`: plain for `http://`, TLS for `https://`.
pub(crate) async fn connect(url: &str, tls: &Tls) -> anyhow::Result<Channel> {
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

pub(crate) async fn table(
    url: &str,
    tls: &Tls,
    token: Option<&str>,
    name: &str,
    by: &str,
    period: &str,
    as_of: Option<u64>,
    format: Format,
) -> anyhow::Result<String> {
    let token =
        token.context("--server needs --token (or GRYNING_TOKEN): an analyst or admin token")?;
    let mut client = InsightClient::new(connect(url, tls).await?);
    let mut request = tonic::Request::new(pb::GetTableRequest {
        name: name.to_string(),
        by: by.to_string(),
        period: period.to_string(),
        as_of,
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}")
            .parse()
            .context("--token: not a valid header value")?,
    );
    let reply = client
        .get_table(request)
        .await
        .map_err(|s| anyhow::anyhow!("{url}: {:?}: {}", s.code(), s.message()))?
        .into_inner();
    if format == Format::Json {
        return Ok(reply.json);
    }
    // Column names arrive as strings; `Table` holds static names because the tables are
    // fixed. One table per process run, so leaking its few names costs nothing.
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
    let table = Table {
        name: reply.name,
        columns,
        rows,
    };
    Ok(match format {
        Format::Csv => table.to_csv(),
        _ => table.to_text(),
    })
}
