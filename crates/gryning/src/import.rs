//! `gryning import`: NDJSON in, through the recorder, in file order. A reader thread splits
//! lines and parses them while the recorder appends the previous batch, so parsing and fsyncs
//! overlap. Every rejected line is reported with its number and reason; valid lines are stored
//! even when others are rejected.

use std::io::{BufRead, Write};
use std::ops::ControlFlow;
use std::sync::mpsc;

use anyhow::Context;
use gryning_proto::ndjson::{self, MAX_LINE_BYTES};
use gryning_proto::pb;
use gryning_recording::{Outcome, Recorder, Submission};

/// Events handed to the recorder at once: large enough to share fsyncs, small enough to keep
/// the pipeline full.
pub(crate) const BATCH: usize = 8192;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

/// A line that could not be recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineRejection {
    pub line: u64,
    pub reason: String,
}

struct Parsed {
    submissions: Vec<Submission>,
    lines: Vec<u64>,
    rejections: Vec<LineRejection>,
    bytes: u64,
}

/// Reads one line of at most `MAX_LINE_BYTES`, without its line break. Longer lines are read to
/// their end but not kept, so a huge line cannot exhaust memory. `Ok(None)` at end of input.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<(usize, u64)>> {
    buf.clear();
    let mut total = 0usize;
    let mut consumed = 0u64;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(if consumed == 0 {
                None
            } else {
                Some((total, consumed))
            });
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        if buf.len() <= MAX_LINE_BYTES {
            buf.extend_from_slice(&chunk[..take.min(MAX_LINE_BYTES + 1 - buf.len())]);
        }
        total += take;
        let used = if done { take + 1 } else { take };
        consumed += used as u64;
        input.consume(used);
        if done {
            if buf.last() == Some(&b'\r') {
                buf.pop();
                total -= 1;
            }
            return Ok(Some((total, consumed)));
        }
    }
}

/// Reads NDJSON lines from `input` and parses each non-blank one into a `gryning.v1.Event`,
/// calling `f(line number, bytes consumed, parsed)` for every line read (`parsed` is `None` for
/// a blank line) until the input ends or `f` says stop. A line longer than `MAX_LINE_BYTES` is
/// an error of that line, read to its end but not kept.
pub(crate) fn for_each_line(
    mut input: impl BufRead,
    mut f: impl FnMut(u64, u64, Option<Result<pb::Event, String>>) -> ControlFlow<()>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    while let Some((len, consumed)) = read_line(&mut input, &mut buf)? {
        line_no += 1;
        let parsed = if len > MAX_LINE_BYTES {
            Some(Err(ndjson::LineError::TooLong { len }.to_string()))
        } else if buf.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            Some(ndjson::parse_line(&buf).map_err(|e| e.to_string()))
        };
        if f(line_no, consumed, parsed).is_break() {
            break;
        }
    }
    Ok(())
}

fn parse_batches(input: impl BufRead, tx: mpsc::SyncSender<std::io::Result<Parsed>>) {
    let empty = || Parsed {
        submissions: Vec::with_capacity(BATCH),
        lines: Vec::with_capacity(BATCH),
        rejections: Vec::new(),
        bytes: 0,
    };
    let mut batch = empty();
    let read = for_each_line(input, |line, consumed, parsed| {
        batch.bytes += consumed;
        match parsed.map(|p| p.and_then(|pb| gryning_proto::from_pb(pb).map_err(|e| e.to_string())))
        {
            None => {}
            Some(Ok(event)) => {
                batch.submissions.push(Submission::from(event));
                batch.lines.push(line);
            }
            Some(Err(reason)) => batch.rejections.push(LineRejection { line, reason }),
        }
        if batch.submissions.len() + batch.rejections.len() < BATCH {
            return ControlFlow::Continue(());
        }
        match tx.send(Ok(std::mem::replace(&mut batch, empty()))) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    });
    let _ = tx.send(read.map(|()| batch));
}

/// The `agency` of events imported offline: no service recorded them.
pub const LOCAL_AGENCY: &str = "local";

/// The principal of events imported offline: `local:` and the operating-system user
/// (`$USER`, else `$LOGNAME`, else `uid-N`).
pub fn local_principal() -> String {
    let user = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| !u.trim().is_empty())
        .unwrap_or_else(|| {
            // SAFETY: getuid takes no arguments, cannot fail and touches no memory of ours.
            format!("uid-{}", unsafe { libc::getuid() })
        });
    format!("local:{user}")
}

/// Imports NDJSON from `input`, stamping each event with [`local_principal`], agency
/// [`LOCAL_AGENCY`] and the time its batch was stored. `on_rejection` is told of each rejected line as it is found,
/// `on_progress` of the input bytes consumed so far.
pub async fn import(
    recorder: &Recorder,
    input: impl BufRead + Send + 'static,
    mut on_rejection: impl FnMut(&LineRejection),
    mut on_progress: impl FnMut(u64),
) -> anyhow::Result<Summary> {
    let principal = local_principal();
    let (tx, rx) = mpsc::sync_channel(2);
    let reader = std::thread::spawn(move || parse_batches(input, tx));
    let mut summary = Summary::default();
    let mut bytes = 0u64;
    let mut rx = Some(rx);
    loop {
        // Waiting for the reader thread blocks; hand the wait to tokio's blocking pool.
        let receiver = rx.take().expect("receiver kept between batches");
        let (receiver, next) = tokio::task::spawn_blocking(move || {
            let next = receiver.recv();
            (receiver, next)
        })
        .await
        .context("reader task failed")?;
        rx = Some(receiver);
        let Ok(batch) = next else { break };
        let batch = batch.context("reading the input failed")?;
        bytes += batch.bytes;
        let mut rejections = batch.rejections;
        // Stamped as the batch is handed to the store: who recorded it (this operating-system
        // user) and when, as the services stamp what they record.
        let metadata = gryning_service_common::context::metadata_of(
            &principal,
            LOCAL_AGENCY,
            recorder.clock().now(),
        );
        let mut submissions = batch.submissions;
        for s in &mut submissions {
            s.metadata.clone_from(&metadata);
        }
        let results = recorder.record_batch(submissions).await;
        for (line, result) in batch.lines.into_iter().zip(results) {
            match result {
                Ok(Outcome::Stored { .. }) => summary.accepted += 1,
                Ok(Outcome::Duplicate { .. }) => summary.duplicates += 1,
                Err(gryning_recording::Rejection::Store(e)) => {
                    anyhow::bail!("line {line}: the event store failed, stopping the import: {e}")
                }
                Err(e) => rejections.push(LineRejection {
                    line,
                    reason: e.to_string(),
                }),
            }
        }
        rejections.sort_by_key(|r| r.line);
        summary.rejected += rejections.len() as u64;
        rejections.iter().for_each(&mut on_rejection);
        on_progress(bytes);
    }
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("the input reader thread panicked"))?;
    Ok(summary)
}

/// Prints the summary line the contract asks for.
pub fn print_summary(out: &mut impl Write, summary: &Summary, seconds: f64) -> std::io::Result<()> {
    let total = summary.accepted + summary.duplicates + summary.rejected;
    let rate = if seconds > 0.0 {
        total as f64 / seconds
    } else {
        0.0
    };
    writeln!(
        out,
        "imported {} lines in {:.2} s ({:.0} events/s): {} accepted, {} duplicate, {} rejected",
        total, seconds, rate, summary.accepted, summary.duplicates, summary.rejected
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_line_caps_memory_and_reports_the_full_length() {
        let long = "x".repeat(MAX_LINE_BYTES + 10);
        let text = format!("short\r\n{long}\nlast");
        let mut input = std::io::BufReader::with_capacity(1024, text.as_bytes());
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut input, &mut buf).unwrap(), Some((5, 7)));
        assert_eq!(buf, b"short");
        let (len, _) = read_line(&mut input, &mut buf).unwrap().unwrap();
        assert_eq!(len, MAX_LINE_BYTES + 10);
        assert!(buf.len() <= MAX_LINE_BYTES + 1);
        assert_eq!(read_line(&mut input, &mut buf).unwrap(), Some((4, 4)));
        assert_eq!(buf, b"last");
        assert_eq!(read_line(&mut input, &mut buf).unwrap(), None);
    }
}
