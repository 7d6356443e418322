//! The embedded event store: one SQLite file (`events.sqlite3`) in a directory of its own.
//!
//! **Fsync policy.** The database runs in WAL mode with `synchronous=FULL`: every commit
//! fsyncs the write-ahead log before it returns. An append is acknowledged only after the
//! commit holding it has returned, so an acknowledged event is on disk and survives a killed
//! process or a lost machine. To make that affordable, appends are group-committed: one writer
//! thread takes every append waiting for it, writes them all in one transaction and pays one
//! fsync for the lot, so concurrent appenders share transactions.
//!
//! **Layout.** One append-only table, `events`, keyed by position, with no secondary index: an
//! index per lookup would multiply the pages written per event. The lookups the store needs
//! (stream → version and positions, event id → position) live in memory instead, in compact
//! tables (`compact.rs`: about 20 bytes per event and 60 per stream, where hash maps of ids and
//! of position lists took several times that), and are rebuilt at open by one sequential scan,
//! which also checks that each stream's versions run 1, 2, 3… without a gap. The id table keeps
//! 32 bits of each id's hash, not the id: a match is confirmed by reading the stored row.
//!
//! **Visibility.** The in-memory index is changed only by the writer thread and only after the
//! commit has returned, so a reader never finds an index entry whose row is not committed, and
//! `read_all` never returns an event above the head that the index publishes.
//!
//! **One owner.** One directory is written by one `SqliteStore` at a time (clones share it):
//! two would each keep their own index and hand out the same positions. [`SqliteStore::open`]
//! therefore takes an exclusive lock on [`LOCK_FILE`] in the directory (an advisory `flock`,
//! released by the kernel when the process ends, however it ends) and writes the owner's
//! process id into it; a second open, from another process or from this one, fails with
//! [`Error::Locked`] before anything is written. [`SqliteStore::open_read_only`] takes no
//! lock: it reads through read-only connections, which WAL mode lets run beside the owner's
//! writer, and never writes.
//!
//! **Retention.** [`erase_streams`] deletes whole streams (`gryning retain`): in one
//! transaction it records the caller's aggregate event, deletes the streams' rows with
//! `secure_delete` on (freed bytes are zeroed), and notes a keyed hash of each erased event id
//! and stream name with the erasure's date in table `erased`; then `VACUUM` rewrites the file
//! and a truncating WAL checkpoint empties the log, so the erased bytes are in neither file.
//! The hash key is [`RETENTION_KEY_FILE`] (mode 0600) beside the database, not in it: a copy of
//! the database alone cannot tell whether a given id was erased. With the key, an append of an
//! erased event id, or of any event to an erased stream, is refused with [`Error::Erased`]
//! naming the date, so a resend is never recorded again as new. Erasure leaves gaps in the
//! positions; the count of erased events is kept in `meta` and the index scan checks the gaps
//! add up to it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use crate::compact::{Chain, Ids, StreamEntry, Streams};
use crate::verdict::{self, Verdict};
use crate::{
    AppendRequest, Appended, Error, EventStore, Position, RecordedEvent, StoreIdentity, Version,
};

/// The database file inside the store's directory.
pub const DB_FILE: &str = "events.sqlite3";

/// The lock file inside the store's directory: locked by the owning store while it is open,
/// holding the owner's process id.
pub const LOCK_FILE: &str = "gryning.lock";

/// The writer stops taking more waiting jobs into a transaction once it holds this many events
/// (a single larger job still goes whole into one transaction: a request is all or none).
const MAX_EVENTS_PER_TRANSACTION: usize = 50_000;

/// Read connections kept for reuse; more are opened when needed and closed after use.
const MAX_IDLE_READERS: usize = 4;

/// SQLite's page cache per connection, in KiB (negative `cache_size` means KiB).
const WRITER_CACHE_KIB: i64 = 32 * 1024;
const READER_CACHE_KIB: i64 = 8 * 1024;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY,
    stream   TEXT    NOT NULL,
    version  INTEGER NOT NULL,
    event_id BLOB    NOT NULL,
    payload  BLOB    NOT NULL,
    metadata BLOB    NOT NULL
)";

/// Facts about the store itself, each written once: `store_id`, the store's identity, is
/// created with the database (or at the first open by a build that knows the table).
const META_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID";

/// What retention keeps of erased data: a keyed hash (HMAC-SHA-256 truncated to 16 bytes) of
/// each erased event id and stream name, and the date it was erased.
const ERASED_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS erased (
    hash      BLOB PRIMARY KEY,
    erased_on TEXT NOT NULL
) WITHOUT ROWID";

/// The key of retention's hashes, beside the database (see the module, "Retention").
pub const RETENTION_KEY_FILE: &str = "retention.key";

/// The [`StoreIdentity::backend`] of this store.
pub const BACKEND: &str = "sqlite";

const INSERT: &str = "INSERT INTO events (position, stream, version, event_id, payload, metadata)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const SELECT_ONE: &str =
    "SELECT position, stream, version, event_id, payload, metadata FROM events WHERE position = ?1";
const SELECT_RANGE: &str = "SELECT position, stream, version, event_id, payload, metadata
    FROM events WHERE position > ?1 AND position <= ?2 ORDER BY position LIMIT ?3";

const SELECT_PAYLOADS: &str = "SELECT position, payload
    FROM events WHERE position > ?1 AND position <= ?2 ORDER BY position LIMIT ?3";

/// The event store on an embedded SQLite database. Cheap to clone: clones share the database,
/// the writer thread and the index. The writer stops when the last clone is dropped, after
/// finishing the appends already handed to it.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    identity: StoreIdentity,
    /// The locked [`LOCK_FILE`] (`None` for a read-only store); closing it releases the lock,
    /// after the writer has stopped.
    _lock: Option<File>,
    /// `None` only while dropping: closing the channel is what stops the writer.
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    head: watch::Receiver<Position>,
}

/// What the writer thread and the readers share.
struct Shared {
    index: RwLock<Index>,
    readers: ReaderPool,
}

/// The in-memory lookups, holding committed events only (in compact form: [`crate::compact`]).
struct Index {
    /// Each stream's version and last position.
    streams: Streams,
    /// Each position's link back to the previous event of its stream.
    chain: Chain,
    /// Where each event id is stored (candidates, confirmed against the stored id).
    events: Ids,
    head: Position,
    /// Retention's record: the key, and the hashes of erased event ids and stream names with
    /// the date they were erased.
    retention: Option<Retention>,
}

struct Retention {
    key: [u8; 32],
    erased: HashMap<[u8; 16], String>,
}

impl Retention {
    fn erased_on(&self, event_id: Option<Uuid>, stream: &str) -> Option<&str> {
        event_id
            .and_then(|id| {
                self.erased
                    .get(&keyed_hash(&self.key, b"event", id.as_bytes()))
            })
            .or_else(|| {
                self.erased
                    .get(&keyed_hash(&self.key, b"stream", stream.as_bytes()))
            })
            .map(String::as_str)
    }
}

/// One `append_batch` call waiting for the writer.
struct Job {
    requests: Vec<AppendRequest>,
    reply: oneshot::Sender<Vec<Result<Appended, Error>>>,
}

impl SqliteStore {
    /// Opens the store in `dir`, creating the directory and the database if needed. Reads the
    /// whole log once to rebuild the in-memory index (about 0.6 s per million events) and
    /// fails if a stream's versions are not contiguous.
    ///
    /// Fails with [`Error::Locked`] while another store (in any process) has `dir` open.
    pub fn open(dir: &Path) -> Result<SqliteStore, Error> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Unavailable(format!(
                "cannot create store directory {}: {e}",
                dir.display()
            ))
        })?;
        let lock = lock_directory(dir)?;
        let path = dir.join(DB_FILE);
        let conn = open_writer(&path)?;
        let identity = identity(&conn, true)?;
        // The scan runs on a connection of its own, closed after it, so that the pages it reads
        // do not stay in the writer's cache.
        let index = {
            let scan = ReaderPool::open(&path)?;
            let mut index = load_index(&scan, &path)?;
            index.retention = load_retention(&scan, dir)?;
            index
        };
        let (head_tx, head_rx) = watch::channel(index.head);
        let shared = Arc::new(Shared {
            index: RwLock::new(index),
            readers: ReaderPool {
                path: path.clone(),
                idle: Mutex::new(Vec::new()),
            },
        });
        let (jobs_tx, jobs_rx) = mpsc::channel();
        let writer = Writer {
            conn,
            shared: Arc::clone(&shared),
            head: head_tx,
        };
        let handle = std::thread::Builder::new()
            .name("gryning-store-writer".into())
            .spawn(move || writer.run(jobs_rx))
            .map_err(|e| Error::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                identity,
                _lock: Some(lock),
                jobs: Some(jobs_tx),
                writer: Some(handle),
                shared,
                head: head_rx,
            }),
        })
    }

    /// Opens an existing store in `dir` for reading only, without the owner's lock: beside a
    /// running owner (WAL mode lets readers and the one writer work at once), it sees the log
    /// as committed when it opened and never writes the database. Appends fail with
    /// [`Error::Unavailable`]; the head does not move after the open.
    pub fn open_read_only(dir: &Path) -> Result<SqliteStore, Error> {
        let path = dir.join(DB_FILE);
        if !path.exists() {
            return Err(Error::Unavailable(format!(
                "no event store in {}: {} does not exist",
                dir.display(),
                DB_FILE
            )));
        }
        let (index, identity) = {
            let scan = ReaderPool::open(&path)?;
            // One read transaction: the index and its head come from one snapshot.
            scan.execute_batch("BEGIN").map_err(sql("begin a read"))?;
            let mut index = load_index(&scan, &path)?;
            index.retention = load_retention(&scan, dir)?;
            let identity = identity(&scan, false)?;
            scan.execute_batch("COMMIT").map_err(sql("end a read"))?;
            (index, identity)
        };
        let (_head_tx, head_rx) = watch::channel(index.head);
        let shared = Arc::new(Shared {
            index: RwLock::new(index),
            readers: ReaderPool {
                path,
                idle: Mutex::new(Vec::new()),
            },
        });
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                identity,
                _lock: None,
                jobs: None,
                writer: None,
                shared,
                head: head_rx,
            }),
        })
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Runs blocking read work on a pooled read connection, off the async executor.
    async fn with_reader<T, F>(&self, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Shared, &Connection) -> Result<T, Error> + Send + 'static,
    {
        let shared = Arc::clone(&self.inner.shared);
        tokio::task::spawn_blocking(move || {
            let conn = shared.readers.take()?;
            let result = work(&shared, &conn);
            shared.readers.give_back(conn);
            result
        })
        .await
        .map_err(|e| Error::Unavailable(format!("read task failed: {e}")))?
    }

    fn index(&self) -> RwLockReadGuard<'_, Index> {
        read_index(&self.inner.shared.index)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The idle readers close first, so that the writer's connection is the last one: SQLite
        // then checkpoints the write-ahead log into the database file and removes it, and a
        // cleanly closed store is the one file `events.sqlite3`.
        self.shared
            .readers
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        // Closing the channel lets the writer finish what is queued and return.
        drop(self.jobs.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append_batch(&self, requests: Vec<AppendRequest>) -> Vec<Result<Appended, Error>> {
        let count = requests.len();
        let (reply, answer) = oneshot::channel();
        let sent = match &self.inner.jobs {
            Some(jobs) => jobs.send(Job { requests, reply }).is_ok(),
            None => false,
        };
        if sent {
            if let Ok(results) = answer.await {
                return results;
            }
        }
        let why = if self.inner._lock.is_none() {
            format!(
                "the store in {} was opened read-only",
                self.inner.dir.display()
            )
        } else {
            "the store's writer thread has stopped".to_string()
        };
        (0..count)
            .map(|_| Err(Error::Unavailable(why.clone())))
            .collect()
    }

    async fn read_stream(&self, stream: &str) -> Result<Vec<RecordedEvent>, Error> {
        let positions = {
            let index = self.index();
            match index.streams.get(stream) {
                Some(entry) => index.chain.positions(entry),
                None => return Ok(Vec::new()),
            }
        };
        self.with_reader(move |_, conn| {
            // One read transaction: one snapshot and one lock for all the point lookups.
            conn.execute_batch("BEGIN").map_err(sql("begin a read"))?;
            let events = positions.iter().map(|&p| read_event(conn, p)).collect();
            conn.execute_batch("COMMIT").map_err(sql("end a read"))?;
            events
        })
        .await
    }

    fn erased_on(&self, event_id: Uuid, stream: &str) -> Option<String> {
        let index = self.index();
        let retention = index.retention.as_ref()?;
        retention
            .erased_on(Some(event_id), stream)
            .map(str::to_owned)
    }

    async fn stream_version(&self, stream: &str) -> Result<Version, Error> {
        Ok(self.index().streams.get(stream).map_or(0, |e| e.version))
    }

    async fn find_event(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, Error> {
        let mut found = self.find_events(&[event_id]).await?;
        Ok(found.pop().flatten())
    }

    async fn find_events(&self, event_ids: &[Uuid]) -> Result<Vec<Option<RecordedEvent>>, Error> {
        let candidates: Vec<(Uuid, Vec<Position>)> = {
            let index = self.index();
            event_ids
                .iter()
                .map(|id| (*id, index.events.candidates(id)))
                .collect()
        };
        if candidates.iter().all(|(_, c)| c.is_empty()) {
            return Ok(candidates.iter().map(|_| None).collect());
        }
        self.with_reader(move |_, conn| {
            candidates
                .into_iter()
                .map(|(id, positions)| {
                    for p in positions {
                        let event = read_event(conn, p)?;
                        if event.event_id == id {
                            return Ok(Some(event));
                        }
                    }
                    Ok(None)
                })
                .collect()
        })
        .await
    }

    async fn read_all(&self, after: Position, limit: usize) -> Result<Vec<RecordedEvent>, Error> {
        let head = self.index().head;
        if limit == 0 || after >= head {
            return Ok(Vec::new());
        }
        self.with_reader(move |_, conn| {
            let mut statement = conn
                .prepare_cached(SELECT_RANGE)
                .map_err(sql("prepare read_all"))?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = statement
                .query_map((to_sql(after), to_sql(head), limit), row_to_event)
                .map_err(sql("read_all"))?;
            rows.map(|row| row.map_err(sql("read_all"))?).collect()
        })
        .await
    }

    async fn read_payloads(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<(Position, Vec<u8>)>, Error> {
        let head = self.index().head;
        if limit == 0 || after >= head {
            return Ok(Vec::new());
        }
        self.with_reader(move |_, conn| {
            let mut statement = conn
                .prepare_cached(SELECT_PAYLOADS)
                .map_err(sql("prepare read_payloads"))?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let mut rows = statement
                .query((to_sql(after), to_sql(head), limit))
                .map_err(sql("read_payloads"))?;
            let mut out = Vec::with_capacity(usize::try_from(limit).unwrap_or(0).min(1 << 16));
            while let Some(row) = rows.next().map_err(sql("read_payloads"))? {
                let position: i64 = row.get(0).map_err(sql("read_payloads"))?;
                let payload = row
                    .get_ref(1)
                    .and_then(|v| v.as_blob().map_err(Into::into))
                    .map_err(sql("read_payloads"))?;
                out.push((from_sql(position)?, payload.to_vec()));
            }
            Ok(out)
        })
        .await
    }

    async fn head(&self) -> Result<Position, Error> {
        Ok(self.index().head)
    }

    fn watch_head(&self) -> watch::Receiver<Position> {
        let mut head = self.inner.head.clone();
        head.mark_unchanged();
        head
    }

    fn identity(&self) -> StoreIdentity {
        self.inner.identity.clone()
    }
}

// ---------------------------------------------------------------------------------------------
// The writer thread

/// Owns the only write connection; runs group commits until every store handle is gone.
struct Writer {
    conn: Connection,
    shared: Arc<Shared>,
    head: watch::Sender<Position>,
}

/// A committed transaction: what to apply to the index, and one result per request.
type GroupOutcome = (Tentative, Vec<Result<Appended, Error>>);

/// What one transaction has written so far, applied to the shared index after the commit.
#[derive(Default)]
struct Tentative {
    /// Positions appended per stream in this transaction (after those already committed).
    streams: HashMap<String, Vec<Position>>,
    events: HashMap<Uuid, Position>,
    head: Position,
}

impl Writer {
    fn run(mut self, jobs: mpsc::Receiver<Job>) {
        // `recv` fails only once every sender is gone and the queue is empty.
        while let Ok(first) = jobs.recv() {
            let mut batch = vec![first];
            let mut events: usize = batch[0].requests.iter().map(|r| r.events.len()).sum();
            while events < MAX_EVENTS_PER_TRANSACTION {
                match jobs.try_recv() {
                    Ok(job) => {
                        events += job.requests.iter().map(|r| r.events.len()).sum::<usize>();
                        batch.push(job);
                    }
                    Err(_) => break,
                }
            }
            self.commit_group(batch);
        }
    }

    /// Processes every request of `jobs` in one transaction, commits, publishes, answers.
    fn commit_group(&mut self, jobs: Vec<Job>) {
        let outcome = self.write_group(&jobs);
        match outcome {
            Ok((tentative, results)) => {
                // The rows are durable: only now may readers find them.
                let new_head = {
                    let mut index = self.shared.index.write().unwrap_or_else(|e| e.into_inner());
                    index.apply(tentative);
                    index.head
                };
                self.head.send_if_modified(|head| {
                    let changed = *head != new_head;
                    *head = new_head;
                    changed
                });
                let mut results = results.into_iter();
                for job in jobs {
                    let answers = results.by_ref().take(job.requests.len()).collect();
                    let _ = job.reply.send(answers);
                }
            }
            Err(error) => {
                let message = error.to_string();
                for job in jobs {
                    let answers = (0..job.requests.len())
                        .map(|_| Err(Error::Unavailable(message.clone())))
                        .collect();
                    let _ = job.reply.send(answers);
                }
            }
        }
    }

    /// Runs the transaction; an `Err` means nothing of it was committed.
    fn write_group(&mut self, jobs: &[Job]) -> Result<GroupOutcome, Error> {
        let shared = Arc::clone(&self.shared);
        // Only this thread changes the index, so holding a read guard for the whole
        // transaction is safe and spares a lock per lookup.
        let index = read_index(&shared.index);
        let tx = self
            .conn
            .transaction()
            .map_err(sql("begin a transaction"))?;
        let mut tentative = Tentative {
            head: index.head,
            ..Tentative::default()
        };
        let mut results = Vec::with_capacity(jobs.iter().map(|j| j.requests.len()).sum());
        {
            let mut insert = tx
                .prepare_cached(INSERT)
                .map_err(sql("prepare the insert"))?;
            for job in jobs {
                let mut chain = verdict::Chain::default();
                for request in &job.requests {
                    let result =
                        append_one(&tx, &mut insert, &index, &mut tentative, &chain, request)?;
                    chain.record(request, &result);
                    results.push(result);
                }
            }
        }
        tx.commit().map_err(sql("commit"))?;
        Ok((tentative, results))
    }
}

/// Decides and writes one request. The outer `Err` is a database failure that sinks the whole
/// transaction; the inner one is this request's own refusal.
fn append_one(
    conn: &Connection,
    insert: &mut rusqlite::CachedStatement<'_>,
    index: &Index,
    tentative: &mut Tentative,
    chain: &verdict::Chain,
    request: &AppendRequest,
) -> Result<Result<Appended, Error>, Error> {
    let stream = request.stream.as_str();
    let mut verdict = match Verdict::new(request) {
        Ok(verdict) => verdict,
        Err(refused) => return Ok(Err(refused)),
    };
    let committed = index.streams.get(stream).map_or(0, |e| e.version);
    let pending = tentative.streams.get(stream).map_or(0, Vec::len);
    let current = committed + pending as Version;
    if let Some(refused) = chain.refusal(request, current) {
        return Ok(Err(refused));
    }

    // Idempotency: look every id up before deciding anything.
    for event in &request.events {
        let found = match tentative.events.get(&event.event_id) {
            Some(&position) => {
                let (_, stored_stream, stored_payload) = read_identity(conn, position)?;
                Some((position, stored_stream, stored_payload))
            }
            None => stored_event(conn, &index.events, event.event_id)?,
        };
        let stored = found.map(|(position, stored_stream, stored_payload)| {
            (
                position,
                stored_stream == stream && stored_payload == event.payload,
            )
        });
        if let Err(refused) = verdict.see(event.event_id, stored) {
            return Ok(Err(refused));
        }
    }
    if let Some(answer) = verdict.finish(current) {
        return Ok(answer);
    }
    if let Some(retention) = &index.retention {
        for event in &request.events {
            if let Some(day) = retention.erased_on(Some(event.event_id), stream) {
                let what = if retention.erased_on(Some(event.event_id), "").is_some() {
                    format!("event_id {}", event.event_id)
                } else {
                    format!("stream {stream}")
                };
                return Ok(Err(Error::Erased {
                    what,
                    erased_on: day.to_owned(),
                }));
            }
        }
    }

    if current + request.events.len() as Version > MAX_VERSION {
        return Ok(Err(Error::Unavailable(format!(
            "stream {stream} holds {current} events and may hold at most {MAX_VERSION}; this request of {} is not stored",
            request.events.len()
        ))));
    }
    let mut positions = Vec::with_capacity(request.events.len());
    let mut version = current;
    for event in &request.events {
        let position = tentative.head + 1;
        version += 1;
        insert
            .execute((
                to_sql(position),
                stream,
                to_sql(version),
                event.event_id.as_bytes().as_slice(),
                event.payload.as_slice(),
                event.metadata.as_slice(),
            ))
            .map_err(sql("insert an event"))?;
        tentative.head = position;
        tentative.events.insert(event.event_id, position);
        positions.push(position);
    }
    match tentative.streams.get_mut(stream) {
        Some(pending) => pending.extend_from_slice(&positions),
        None => {
            tentative
                .streams
                .insert(stream.to_owned(), positions.clone());
        }
    }
    Ok(Ok(Appended {
        positions,
        version,
        duplicate: false,
    }))
}

/// The most events one stream may hold (the compact index counts versions in 32 bits).
const MAX_VERSION: Version = u32::MAX as Version;

/// The stored event with `id`, if any: its position, stream and payload, read through `conn`
/// for each of the index's candidates until the id matches.
fn stored_event(
    conn: &Connection,
    ids: &Ids,
    id: Uuid,
) -> Result<Option<(Position, String, Vec<u8>)>, Error> {
    for position in ids.candidates(&id) {
        let (stored_id, stream, payload) = read_identity(conn, position)?;
        if stored_id == *id.as_bytes() {
            return Ok(Some((position, stream, payload)));
        }
    }
    Ok(None)
}

impl Index {
    fn empty(expected_events: usize) -> Index {
        Index {
            streams: Streams::new(),
            chain: Chain::with_capacity(expected_events),
            events: Ids::with_capacity(expected_events),
            head: 0,
            retention: None,
        }
    }

    /// Adds the event at `position` to `stream`: the stream's entry before it.
    fn note(&mut self, stream: &str, position: Position) -> Option<StreamEntry> {
        let before = self.streams.push(stream, position);
        self.chain.push(position, before.map(|e| e.last));
        before
    }

    fn apply(&mut self, tentative: Tentative) {
        for (stream, positions) in tentative.streams {
            for position in positions {
                self.note(&stream, position);
            }
        }
        for (id, position) in tentative.events {
            self.events.insert(&id, position);
        }
        self.head = tentative.head;
    }
}

// ---------------------------------------------------------------------------------------------
// Opening

/// Takes the directory's exclusive lock and records this process's id in the lock file. The
/// lock belongs to the open file description, so a second open in this same process is refused
/// as well as one in another process.
fn lock_directory(dir: &Path) -> Result<File, Error> {
    let path = dir.join(LOCK_FILE);
    let failed = |doing: &str, e: std::io::Error| {
        Error::Unavailable(format!("cannot {doing} lock file {}: {e}", path.display()))
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| failed("open the", e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(Error::Locked {
                dir: dir.to_path_buf(),
                pid: text.trim().parse().ok(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(failed("lock the", e)),
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(|e| failed("write the", e))?;
    Ok(file)
}

fn open_writer(path: &Path) -> Result<Connection, Error> {
    let conn = Connection::open(path)
        .map_err(|e| Error::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(sql("set journal_mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Unavailable(format!(
            "{}: journal_mode is {mode}, WAL is required",
            path.display()
        )));
    }
    // FULL in WAL mode: the log is fsynced at every commit, so a commit that returned is durable.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql("set synchronous"))?;
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
        .map_err(sql("set cache_size"))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sql("set busy_timeout"))?;
    conn.execute_batch(SCHEMA)
        .map_err(sql("create the events table"))?;
    conn.execute_batch(META_SCHEMA)
        .map_err(sql("create the meta table"))?;
    conn.execute_batch(ERASED_SCHEMA)
        .map_err(sql("create the erased table"))?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

/// The store's identity from the `meta` table; the writer (`create`) gives the store one if it
/// has none yet. A read-only connection on a database without the table gets an empty id.
fn identity(conn: &Connection, create: bool) -> Result<StoreIdentity, Error> {
    if create {
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('store_id', ?1)",
            [Uuid::new_v4().to_string()],
        )
        .map_err(sql("record the store id"))?;
    } else {
        let has_meta: bool = conn
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'",
                [],
                |row| row.get(0),
            )
            .map_err(sql("look for the meta table"))?;
        if !has_meta {
            return Ok(StoreIdentity {
                backend: BACKEND.into(),
                id: String::new(),
            });
        }
    }
    let id: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'store_id'", [], |row| {
            row.get(0)
        })
        .optional()
        .map_err(sql("read the store id"))?;
    Ok(StoreIdentity {
        backend: BACKEND.into(),
        id: id.unwrap_or_default(),
    })
}

/// Rebuilds the index with one scan of the log, checking positions and versions as it goes.
fn load_index(conn: &Connection, path: &Path) -> Result<Index, Error> {
    let corrupt =
        |what: String| Error::Unavailable(format!("{} is inconsistent: {what}", path.display()));
    // Positions run 1..=n, so the last one sizes the id map and spares its regrowth.
    let last: Option<i64> = conn
        .query_row("SELECT max(position) FROM events", [], |row| row.get(0))
        .map_err(sql("read the last position"))?;
    let expected_events = usize::try_from(last.unwrap_or(0)).unwrap_or(0);
    let mut index = Index::empty(expected_events);
    // Retention leaves gaps: as many positions as it erased events.
    let erased = erased_events(conn)?;
    let mut gaps = 0u64;
    let mut statement = conn
        .prepare("SELECT position, stream, version, event_id FROM events ORDER BY position")
        .map_err(sql("prepare the index scan"))?;
    let mut rows = statement.query([]).map_err(sql("scan the log"))?;
    while let Some(row) = rows.next().map_err(sql("scan the log"))? {
        let position = from_sql(
            row.get_ref(0)
                .and_then(|v| Ok(v.as_i64()?))
                .map_err(sql("scan the log"))?,
        )?;
        let stream = row
            .get_ref(1)
            .and_then(|v| Ok(v.as_str()?))
            .map_err(sql("scan the log"))?;
        let version = from_sql(
            row.get_ref(2)
                .and_then(|v| Ok(v.as_i64()?))
                .map_err(sql("scan the log"))?,
        )?;
        let id = row
            .get_ref(3)
            .and_then(|v| Ok(v.as_blob()?))
            .map_err(sql("scan the log"))?;
        let event_id = uuid_from(id, position)?;

        if position <= index.head || (position != index.head + 1 && erased == 0) {
            return Err(corrupt(format!(
                "position {position} follows position {}",
                index.head
            )));
        }
        gaps += position - index.head - 1;
        if version > MAX_VERSION {
            return Err(corrupt(format!(
                "stream {stream} has version {version} at position {position}, above the most a stream may hold ({MAX_VERSION})"
            )));
        }
        let expected = index.note(stream, position).map_or(1, |e| e.version + 1);
        if version != expected {
            return Err(corrupt(format!(
                "stream {stream} has version {version} at position {position} where version {expected} was due"
            )));
        }
        if let Some((first, _, _)) = stored_event(conn, &index.events, event_id)? {
            return Err(corrupt(format!(
                "event_id {event_id} is stored at positions {first} and {position}"
            )));
        }
        index.events.insert(&event_id, position);
        index.head = position;
    }
    if gaps != erased {
        return Err(corrupt(format!(
            "the positions skip {gaps} events, but retention erased {erased}"
        )));
    }
    Ok(index)
}

/// How many events retention erased (0 for a store that never ran it, or one whose database
/// predates the meta table).
fn erased_events(conn: &Connection) -> Result<u64, Error> {
    let has_meta: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'",
            [],
            |row| row.get(0),
        )
        .map_err(sql("look for the meta table"))?;
    if !has_meta {
        return Ok(0);
    }
    let n: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'erased_events'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql("read the erased count"))?;
    Ok(n.and_then(|n| n.parse().ok()).unwrap_or(0))
}

// ---------------------------------------------------------------------------------------------
// Reading

struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReaderPool {
    fn take(&self) -> Result<Connection, Error> {
        if let Some(conn) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(conn);
        }
        let conn = ReaderPool::open(&self.path)?;
        conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)
            .map_err(sql("set cache_size"))?;
        Ok(conn)
    }

    /// A read-only connection with SQLite's default (small) page cache.
    fn open(path: &Path) -> Result<Connection, Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| {
            Error::Unavailable(format!("cannot open {} for reading: {e}", path.display()))
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql("set busy_timeout"))?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        // A connection left inside a transaction by a failed read is not reused.
        if !conn.is_autocommit() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
    }
}

fn read_event(conn: &Connection, position: Position) -> Result<RecordedEvent, Error> {
    let mut statement = conn
        .prepare_cached(SELECT_ONE)
        .map_err(sql("prepare a point read"))?;
    statement
        .query_row([to_sql(position)], row_to_event)
        .optional()
        .map_err(sql("read an event"))?
        .ok_or_else(|| Error::Unavailable(format!("the event at position {position} is missing")))?
}

/// The event id, stream and payload stored at `position`, for the idempotency check (rare:
/// only when the index has a candidate for an id). Through the writer's connection it reads
/// in the writer's own transaction, so it sees its own rows.
fn read_identity(
    conn: &Connection,
    position: Position,
) -> Result<([u8; 16], String, Vec<u8>), Error> {
    let mut statement = conn
        .prepare_cached("SELECT event_id, stream, payload FROM events WHERE position = ?1")
        .map_err(sql("prepare an identity read"))?;
    let (id, stream, payload): (Vec<u8>, String, Vec<u8>) = statement
        .query_row([to_sql(position)], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .map_err(sql("read a stored event"))?;
    let id = uuid_from(&id, position)?;
    Ok((*id.as_bytes(), stream, payload))
}

/// Decodes a row of `SELECT position, stream, version, event_id, payload, metadata`. The outer
/// result is SQLite's, the inner one a value that does not fit the model.
fn row_to_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<RecordedEvent, Error>> {
    let position: i64 = row.get(0)?;
    let stream: String = row.get(1)?;
    let version: i64 = row.get(2)?;
    let event_id: Vec<u8> = row.get(3)?;
    let payload: Vec<u8> = row.get(4)?;
    let metadata: Vec<u8> = row.get(5)?;
    Ok((|| {
        let position = from_sql(position)?;
        Ok(RecordedEvent {
            position,
            stream,
            version: from_sql(version)?,
            event_id: uuid_from(&event_id, position)?,
            payload,
            metadata,
        })
    })())
}

// ---------------------------------------------------------------------------------------------
// Small conversions

fn read_index(index: &RwLock<Index>) -> RwLockReadGuard<'_, Index> {
    // The index is only changed by whole `apply` calls, so a panic elsewhere cannot leave it
    // half-changed; a poisoned lock is still usable.
    index.read().unwrap_or_else(|e| e.into_inner())
}

/// Positions and versions are far below `i64::MAX`; SQLite integers are signed.
fn to_sql(value: u64) -> i64 {
    i64::try_from(value).expect("positions and versions fit in an i64")
}

fn from_sql(value: i64) -> Result<u64, Error> {
    u64::try_from(value)
        .map_err(|_| Error::Unavailable(format!("negative position or version {value} in the log")))
}

fn uuid_from(bytes: &[u8], position: Position) -> Result<Uuid, Error> {
    Uuid::from_slice(bytes).map_err(|_| {
        Error::Unavailable(format!(
            "the event at position {position} has a malformed event_id ({} bytes)",
            bytes.len()
        ))
    })
}

/// Wraps a SQLite failure as `Unavailable`, saying what the store was doing.
fn sql(doing: &'static str) -> impl Fn(rusqlite::Error) -> Error {
    move |e| Error::Unavailable(format!("sqlite failed to {doing}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Retention

/// The directory's exclusive lock, held by an offline tool across reading and erasing so that
/// no server starts in between (read through [`SqliteStore::open_read_only`] meanwhile).
pub struct DirectoryLock(#[allow(dead_code)] File);

/// Takes the lock of the store in `dir` ([`Error::Locked`] while a store has it open).
pub fn lock(dir: &Path) -> Result<DirectoryLock, Error> {
    lock_directory(dir).map(DirectoryLock)
}

/// What [`erase_streams`] is to do: delete `streams` whole, and append `record` (the
/// aggregate of what they held) to `record_stream`, in one transaction.
pub struct Erasure<'a> {
    pub streams: &'a [String],
    /// The head the caller read the log at: if the store moved since, nothing is erased.
    pub expected_head: Position,
    /// The date to note with the hashes (YYYY-MM-DD).
    pub erased_on: &'a str,
    pub record_stream: &'a str,
    pub record: crate::NewEvent,
}

/// What [`erase_streams`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Erased {
    pub streams: u64,
    pub events: u64,
    /// Where the record was stored.
    pub position: Position,
    /// The database file's size after the vacuum, in bytes.
    pub file_bytes: u64,
}

/// HMAC-SHA-256 of `domain`/`message` under `key`, truncated to 16 bytes: a keyed hash that
/// tells a known id again, and without the key tells nothing (RFC 2104).
fn keyed_hash(key: &[u8; 32], domain: &[u8], message: &[u8]) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let mut inner_key = [0x36u8; 64];
    let mut outer_key = [0x5cu8; 64];
    for (i, b) in key.iter().enumerate() {
        inner_key[i] ^= b;
        outer_key[i] ^= b;
    }
    let inner = Sha256::new()
        .chain_update(inner_key)
        .chain_update(domain)
        .chain_update([0u8])
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(outer_key)
        .chain_update(inner)
        .finalize();
    outer[..16].try_into().expect("16 of 32 bytes")
}

/// Reads the retention key of the store in `dir`, creating it (mode 0600) if `create`.
fn retention_key(dir: &Path, create: bool) -> Result<Option<[u8; 32]>, Error> {
    let path = dir.join(RETENTION_KEY_FILE);
    let failed = |doing: &str, e: std::io::Error| {
        Error::Unavailable(format!("cannot {doing} {}: {e}", path.display()))
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                Error::Unavailable(format!(
                    "{} holds {} bytes, not the 32 of a retention key",
                    path.display(),
                    bytes.len()
                ))
            })?;
            Ok(Some(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !create {
                return Ok(None);
            }
            let mut key = [0u8; 32];
            key[..16].copy_from_slice(Uuid::new_v4().as_bytes());
            key[16..].copy_from_slice(Uuid::new_v4().as_bytes());
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&path).map_err(|e| failed("create", e))?;
            file.write_all(&key)
                .and_then(|()| file.sync_all())
                .map_err(|e| failed("write", e))?;
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| failed("sync the directory of", e))?;
            Ok(Some(key))
        }
        Err(e) => Err(failed("read", e)),
    }
}

/// Retention's record of the store in `dir`, if retention ever ran there (and its key is
/// still there: without it the hashes cannot be matched and erased ids read as unknown).
fn load_retention(conn: &Connection, dir: &Path) -> Result<Option<Retention>, Error> {
    let has_table: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'erased'",
            [],
            |row| row.get(0),
        )
        .map_err(sql("look for the erased table"))?;
    if !has_table {
        return Ok(None);
    }
    let Some(key) = retention_key(dir, false)? else {
        return Ok(None);
    };
    let mut erased = HashMap::new();
    let mut statement = conn
        .prepare("SELECT hash, erased_on FROM erased")
        .map_err(sql("prepare the erased scan"))?;
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(sql("read the erased hashes"))?;
    for row in rows {
        let (hash, day) = row.map_err(sql("read the erased hashes"))?;
        if let Ok(hash) = <[u8; 16]>::try_from(hash.as_slice()) {
            erased.insert(hash, day);
        }
    }
    Ok(Some(Retention { key, erased }))
}

/// Erases `erasure.streams` from the store in `dir` (which must not be open elsewhere: this
/// takes the directory's lock) and appends `erasure.record`, in one transaction; then vacuums
/// the database and truncates its write-ahead log so the erased bytes are in neither file.
pub fn erase_streams(
    dir: &Path,
    _lock: &DirectoryLock,
    erasure: &Erasure<'_>,
) -> Result<Erased, Error> {
    let path = dir.join(DB_FILE);
    let mut conn = open_writer(&path)?;
    let key = retention_key(dir, true)?.expect("created");
    conn.pragma_update(None, "secure_delete", "ON")
        .map_err(sql("set secure_delete"))?;
    // The list of streams to erase must not reach a temporary file.
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(sql("set temp_store"))?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql("begin the erasure"))?;
    tx.execute_batch("CREATE TEMP TABLE doomed (stream TEXT PRIMARY KEY) WITHOUT ROWID")
        .map_err(sql("list the streams to erase"))?;
    {
        let mut add = tx
            .prepare("INSERT OR IGNORE INTO doomed (stream) VALUES (?1)")
            .map_err(sql("list the streams to erase"))?;
        let mut note = tx
            .prepare("INSERT OR IGNORE INTO erased (hash, erased_on) VALUES (?1, ?2)")
            .map_err(sql("note an erased id"))?;
        for stream in erasure.streams {
            if stream == erasure.record_stream {
                return Err(Error::Unavailable(format!(
                    "stream {stream} holds retention's records and is never erased"
                )));
            }
            add.execute([stream])
                .map_err(sql("list the streams to erase"))?;
            note.execute((
                keyed_hash(&key, b"stream", stream.as_bytes()).as_slice(),
                erasure.erased_on,
            ))
            .map_err(sql("note an erased stream"))?;
        }
        let mut ids = tx
            .prepare("SELECT event_id FROM events WHERE stream IN (SELECT stream FROM doomed)")
            .map_err(sql("read the ids to erase"))?;
        let found: Vec<Vec<u8>> = ids
            .query_map([], |row| row.get(0))
            .map_err(sql("read the ids to erase"))?
            .collect::<Result<_, _>>()
            .map_err(sql("read the ids to erase"))?;
        for id in found {
            note.execute((
                keyed_hash(&key, b"event", &id).as_slice(),
                erasure.erased_on,
            ))
            .map_err(sql("note an erased event"))?;
        }
    }
    let taken: bool = tx
        .query_row(
            "SELECT count(*) > 0 FROM events WHERE event_id = ?1",
            [erasure.record.event_id.as_bytes().as_slice()],
            |row| row.get(0),
        )
        .map_err(sql("look up the record's id"))?;
    if taken {
        return Err(Error::EventIdReused {
            event_id: erasure.record.event_id,
            stream: erasure.record_stream.to_owned(),
        });
    }
    // The record goes after the head as it stands before the erasure (the erased events may
    // be the last ones): positions once handed out are never handed out again.
    let head: i64 = tx
        .query_row("SELECT coalesce(max(position), 0) FROM events", [], |r| {
            r.get(0)
        })
        .map_err(sql("read the head"))?;
    if head as u64 != erasure.expected_head {
        return Err(Error::Unavailable(format!(
            "the store's head moved from {} to {head} while retention read it; nothing was erased, run it again",
            erasure.expected_head
        )));
    }
    let events = tx
        .execute(
            "DELETE FROM events WHERE stream IN (SELECT stream FROM doomed)",
            [],
        )
        .map_err(sql("erase the streams"))? as u64;
    let streams: i64 = tx
        .query_row("SELECT count(*) FROM doomed", [], |r| r.get(0))
        .map_err(sql("count the erased streams"))?;
    let version: i64 = tx
        .query_row(
            "SELECT count(*) FROM events WHERE stream = ?1",
            [erasure.record_stream],
            |r| r.get(0),
        )
        .map_err(sql("read the record stream's version"))?;
    let position = head + 1;
    tx.execute(
        INSERT,
        (
            position,
            erasure.record_stream,
            version + 1,
            erasure.record.event_id.as_bytes().as_slice(),
            erasure.record.payload.as_slice(),
            erasure.record.metadata.as_slice(),
        ),
    )
    .map_err(sql("record the erasure"))?;
    let total = erased_events(&tx)? + events;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('erased_events', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [total.to_string()],
    )
    .map_err(sql("count the erased events"))?;
    tx.execute_batch("DROP TABLE temp.doomed")
        .map_err(sql("drop the list of erased streams"))?;
    tx.commit().map_err(sql("commit the erasure"))?;
    // The freed pages are zeroed (secure_delete); VACUUM rewrites the file without them, and
    // the truncating checkpoint copies the rewrite into the database and empties the log.
    conn.execute_batch("VACUUM").map_err(sql("vacuum"))?;
    let (busy, _, _): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(sql("checkpoint the write-ahead log"))?;
    if busy != 0 {
        return Err(Error::Unavailable(
            "the write-ahead log could not be emptied after the erasure: a reader held it; run gryning retain again with no server on the data directory".into(),
        ));
    }
    drop(conn);
    let file_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    Ok(Erased {
        streams: streams as u64,
        events,
        position: position as u64,
        file_bytes,
    })
}
