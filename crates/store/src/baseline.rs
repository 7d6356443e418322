//! The SQLite layouts the embedded store is measured against (`gryning bench`, the
//! `append_bench` example): the same rows written straight into SQLite, with no group commit,
//! no lifecycle check and no in-memory index, so that the store's append rate can be read as a
//! fraction of what SQLite itself does on this machine.
//!
//! - [`Layout::AppendOnly`], the ceiling: the store's own table (`position INTEGER PRIMARY
//!   KEY`, no other index), rows inserted in position order.
//! - [`Layout::Plain`], the layout an event store usually starts with: the same table with
//!   `UNIQUE (stream, version)`, which SQLite keeps as a B-tree touched at random.
//!
//! Both run in WAL mode with the `synchronous` setting asked for (`FULL` is the store's: every
//! commit fsyncs the log). Only the transactions are timed.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// Which table the rows go into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// The store's table alone: no index but the position (the rowid).
    AppendOnly,
    /// With `UNIQUE (stream, version)`.
    Plain,
}

impl Layout {
    fn schema(self) -> &'static str {
        match self {
            Layout::AppendOnly => {
                "CREATE TABLE events (
                    position INTEGER PRIMARY KEY,
                    stream   TEXT    NOT NULL,
                    version  INTEGER NOT NULL,
                    event_id BLOB    NOT NULL,
                    payload  BLOB    NOT NULL,
                    metadata BLOB    NOT NULL
                )"
            }
            Layout::Plain => {
                "CREATE TABLE events (
                    position INTEGER PRIMARY KEY,
                    stream   TEXT    NOT NULL,
                    version  INTEGER NOT NULL,
                    event_id BLOB    NOT NULL,
                    payload  BLOB    NOT NULL,
                    metadata BLOB    NOT NULL,
                    UNIQUE (stream, version)
                )"
            }
        }
    }
}

/// One row as the store keeps it.
#[derive(Clone, Debug)]
pub struct Row<'a> {
    pub position: u64,
    pub stream: &'a str,
    pub version: u64,
    pub event_id: &'a [u8],
    pub payload: &'a [u8],
    pub metadata: &'a [u8],
}

/// A fresh SQLite database holding one layout's table.
pub struct Writer {
    conn: Connection,
    written: u64,
    took: Duration,
}

impl Writer {
    /// Creates `path` (which must not exist) in WAL mode with `synchronous` (`FULL`, `NORMAL`
    /// or `OFF`).
    pub fn create(path: &Path, layout: Layout, synchronous: &str) -> rusqlite::Result<Writer> {
        let conn = Connection::open(path)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        assert!(mode.eq_ignore_ascii_case("wal"), "journal_mode is {mode}");
        conn.pragma_update(None, "synchronous", synchronous)?;
        conn.execute_batch(layout.schema())?;
        Ok(Writer {
            conn,
            written: 0,
            took: Duration::ZERO,
        })
    }

    /// Inserts `rows` in one transaction; returns the time it took.
    pub fn write(&mut self, rows: &[Row<'_>]) -> rusqlite::Result<Duration> {
        let started = Instant::now();
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (position, stream, version, event_id, payload, metadata)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for r in rows {
                insert.execute((
                    r.position as i64,
                    r.stream,
                    r.version as i64,
                    r.event_id,
                    r.payload,
                    r.metadata,
                ))?;
            }
        }
        tx.commit()?;
        let took = started.elapsed();
        self.written += rows.len() as u64;
        self.took += took;
        Ok(took)
    }

    /// Rows written and the time their transactions took.
    pub fn totals(&self) -> (u64, Duration) {
        (self.written, self.took)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_layout_refuses_a_second_version_and_the_ceiling_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        let row = |position, id: &'static [u8]| Row {
            position,
            stream: "s",
            version: 1,
            event_id: id,
            payload: b"p",
            metadata: b"m",
        };
        let mut plain = Writer::create(&dir.path().join("p"), Layout::Plain, "FULL").unwrap();
        plain.write(&[row(1, b"a")]).unwrap();
        assert!(
            plain.write(&[row(2, b"b")]).is_err(),
            "UNIQUE (stream, version)"
        );
        plain
            .write(&[Row {
                version: 2,
                ..row(3, b"b")
            }])
            .unwrap();
        assert_eq!(plain.totals().0, 2);
        let mut ceiling =
            Writer::create(&dir.path().join("c"), Layout::AppendOnly, "FULL").unwrap();
        ceiling.write(&[row(1, b"a"), row(2, b"a")]).unwrap();
        assert_eq!(ceiling.totals().0, 2);
    }
}
