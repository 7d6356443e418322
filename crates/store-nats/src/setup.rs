//! Opening the JetStream streams at connect: the events stream and the id stream (see `ids`)
//! are created if they do not exist, and an existing one is checked. Both are created with
//! `deny_delete` and `deny_purge`: a deleted or purged message would leave a gap in the
//! positions, a stream's versions, or an event without its claim (a resend stored twice). An
//! existing stream that allows either is refused, naming the `nats` command that sets them (the
//! server lets both be set on an existing stream, never cleared); erasure, if retention ever
//! needs it, is an explicit operation of an administrator with the server's own credentials.

use std::time::Duration;

use async_nats::jetstream::{self, stream::Stream};
use tokio::time::Instant;

use crate::ids::{ids_prefix, ids_stream_name};
use crate::{NatsError, Options};

/// The events stream, as opened.
pub(crate) struct Opened {
    pub(crate) events: Stream,
    pub(crate) info: jetstream::stream::Info,
}

/// Creates or opens and checks both streams.
pub(crate) async fn open_streams(
    js: &jetstream::Context,
    options: &Options,
) -> Result<Opened, NatsError> {
    let events_config = config(
        &options.stream,
        format!("{}.>", options.subject_prefix),
        options.replicas,
    );
    let (events, info) = open(js, events_config, options).await?;
    let ids_config = config(
        &ids_stream_name(&options.stream),
        format!("{}.>", ids_prefix(&options.subject_prefix)),
        options.replicas,
    );
    open(js, ids_config, options).await?;
    Ok(Opened { events, info })
}

fn config(name: &str, subjects: String, replicas: usize) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: name.to_owned(),
        subjects: vec![subjects],
        num_replicas: replicas,
        storage: jetstream::stream::StorageType::File,
        allow_direct: true,
        allow_atomic_publish: true,
        deny_delete: true,
        deny_purge: true,
        ..Default::default()
    }
}

async fn open(
    js: &jetstream::Context,
    config: jetstream::stream::Config,
    options: &Options,
) -> Result<(Stream, jetstream::stream::Info), NatsError> {
    let name = config.name.clone();
    let stream_error = |reason: String| NatsError::Stream {
        stream: name.clone(),
        reason,
    };
    // Creation races with other processes and, in a cluster, with the meta leader's
    // election right after start; retry within the retry budget.
    let deadline = Instant::now() + options.retry_for;
    let stream = loop {
        match js.get_or_create_stream(config.clone()).await {
            Ok(stream) => break stream,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(stream_error(format!("cannot create or open: {e}"))),
        }
    };
    let mut info = stream.cached_info().clone();
    if !info.config.allow_direct {
        return Err(stream_error(
            "exists without allow_direct, which the store reads with".into(),
        ));
    }
    if let Some(allowed) = allows_removal(&info.config) {
        return Err(stream_error(format!(
            "exists allowing {allowed}: a removed message would break the store's positions, \
             versions and duplicate detection, so gryning does not run on it; set deny_delete \
             and deny_purge (`nats stream edit {name} --deny-delete --deny-purge`, or \
             \"deny_delete\": true, \"deny_purge\": true in the stream's configuration; the \
             server lets them be set on an existing stream, never cleared)"
        )));
    }
    if !info.config.allow_atomic_publish {
        // A stream made by an older gryning: atomic batches only add to what it accepts,
        // so the store turns them on rather than refusing the stream.
        let mut config = info.config.clone();
        config.allow_atomic_publish = true;
        info = js.update_stream(&config).await.map_err(|e| {
            stream_error(format!(
                "exists without allow_atomic, which the store appends with, and cannot be updated ({e}); set allow_atomic: true on the stream"
            ))
        })?;
        if !info.config.allow_atomic_publish {
            return Err(stream_error(
                "exists without allow_atomic, which the store appends with, and the server did not turn it on; set allow_atomic: true on the stream".into(),
            ));
        }
    }
    let wanted = &config.subjects[0];
    if !info.config.subjects.contains(wanted) {
        return Err(stream_error(format!(
            "exists with subjects {:?}, not {wanted}",
            info.config.subjects
        )));
    }
    Ok((stream, info))
}

/// What an existing stream lets an API client remove, if anything.
fn allows_removal(config: &jetstream::stream::Config) -> Option<&'static str> {
    match (config.deny_delete, config.deny_purge) {
        (true, true) => None,
        (false, true) => Some("message deletes (deny_delete is off)"),
        (true, false) => Some("purges (deny_purge is off)"),
        (false, false) => Some("message deletes and purges (deny_delete and deny_purge are off)"),
    }
}
