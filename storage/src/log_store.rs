//! `LogStore`: the Raft log and Raft metadata in one redb file, owned by one storage thread.
//!
//! Every request travels over a bounded channel to the "drover-storage" thread, which owns the
//! `Database`. The thread drains whatever is queued and runs it in ONE write transaction (group
//! commit), so many appends and metadata writes share a single fsync; replies are sent only after
//! that commit returns, so a resolved append is durable. Requests run in the order they were
//! queued, so a read queued after a write sees it.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam::channel::{self, Receiver, Sender, TrySendError};
use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition, WriteTransaction};
use tokio::sync::oneshot;

use crate::log_record::{
    decode_record, encode_record, LogRecord, RECORD_BYTES_MAX, RECORD_HEADER_BYTES,
};
use crate::StorageError;

/// Requests that may wait in the channel to the storage thread; more returns `Overloaded`.
pub const REQUEST_QUEUE_MAX: usize = 4096;
/// Payload bytes one group-commit transaction gathers before it commits. A single append larger
/// than this is refused with `Overloaded`.
pub const TXN_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Version of the layout of `raft.redb`; a file with another version is refused at open.
pub const LOG_FORMAT_VERSION: u32 = 1;
/// Name of the database file inside the data directory.
pub const LOG_FILE_NAME: &str = "raft.redb";

const _: () = assert!(RECORD_BYTES_MAX as u64 <= TXN_BYTES_MAX);

const LOG_TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const META_TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");
/// The store's own bookkeeping, kept apart so engine metadata keys can never collide with it.
const STORE_TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("storage_meta");
const KEY_FORMAT_VERSION: &str = "format_version";
const KEY_LAST_PURGED: &str = "last_purged";

/// The extent of the log: what is stored and what was purged before it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogBounds {
    /// Index of the first stored record.
    pub first_index: Option<u64>,
    /// (index, term) of the last stored record.
    pub last_stored: Option<(u64, u64)>,
    /// (index, term) of the last record removed by `purge_upto`.
    pub last_purged: Option<(u64, u64)>,
}

impl LogBounds {
    /// Returns the last log id: the last stored record, or the last purged one if the log is
    /// empty, which is what Raft needs after a snapshot removed every entry.
    pub fn last(&self) -> Option<(u64, u64)> {
        self.last_stored.or(self.last_purged)
    }
}

/// Counters of the storage thread since open, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStoreStats {
    /// Write transactions committed (each one fsync).
    pub commits: u64,
    /// Write requests (append, truncate, purge, put_meta) those commits carried.
    pub write_requests: u64,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    write_requests: AtomicU64,
}

/// A handle to the Raft log store. Clones share one storage thread.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

struct Inner {
    sender: Sender<Msg>,
    counters: Arc<Counters>,
    thread: Mutex<Option<JoinHandle<()>>>,
    path: PathBuf,
}

enum Msg {
    Request(Request),
    Close,
}

struct Request {
    op: Op,
    reply: Reply,
}

enum Op {
    Append(Vec<LogRecord>),
    TruncateFrom(u64),
    PurgeUpto {
        index: u64,
        term: Option<u64>,
    },
    PutMeta {
        key: &'static str,
        value: Vec<u8>,
    },
    ReadRange {
        start: u64,
        end_exclusive: u64,
    },
    GetMeta(String),
    Bounds,
    /// Blocks the storage thread until the sender is dropped, so a test can queue requests
    /// and observe them committed as one batch.
    #[cfg(test)]
    Hold(Receiver<()>),
}

impl Op {
    fn is_write(&self) -> bool {
        matches!(
            self,
            Op::Append(_) | Op::TruncateFrom(_) | Op::PurgeUpto { .. } | Op::PutMeta { .. }
        )
    }

    /// Returns the bytes this request adds to a write transaction.
    fn txn_bytes(&self) -> u64 {
        match self {
            Op::Append(records) => append_bytes(records),
            Op::PutMeta { key, value } => (key.len() + value.len()) as u64,
            _ => 0,
        }
    }
}

type Reply = Box<dyn FnOnce(Result<Outcome, StorageError>) + Send>;

enum Outcome {
    Unit,
    Records(Vec<LogRecord>),
    Meta(Option<Vec<u8>>),
    Bounds(LogBounds),
}

/// Converts an `Outcome` back into the type a caller waits for.
trait FromOutcome: Sized + Send + 'static {
    fn from_outcome(outcome: Outcome) -> Self;
}

impl FromOutcome for () {
    fn from_outcome(outcome: Outcome) -> Self {
        assert!(
            matches!(outcome, Outcome::Unit),
            "reply kind mismatch: expected unit"
        );
    }
}

impl FromOutcome for Vec<LogRecord> {
    fn from_outcome(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Records(records) => records,
            _ => panic!("reply kind mismatch: expected records"),
        }
    }
}

impl FromOutcome for Option<Vec<u8>> {
    fn from_outcome(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Meta(value) => value,
            _ => panic!("reply kind mismatch: expected meta value"),
        }
    }
}

impl FromOutcome for LogBounds {
    fn from_outcome(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Bounds(bounds) => bounds,
            _ => panic!("reply kind mismatch: expected bounds"),
        }
    }
}

type Pending<T> = Result<oneshot::Receiver<Result<T, StorageError>>, StorageError>;

async fn wait<T>(pending: Pending<T>) -> Result<T, StorageError> {
    // A dropped reply sender means the storage thread stopped (closed or crashed).
    pending?.await.unwrap_or(Err(StorageError::Closed))
}

fn wait_sync<T>(pending: Pending<T>) -> Result<T, StorageError> {
    pending?
        .blocking_recv()
        .unwrap_or(Err(StorageError::Closed))
}

impl LogStore {
    /// Opens or creates `<dir>/raft.redb` and starts the storage thread that owns it.
    pub fn open(dir: &Path) -> Result<LogStore, StorageError> {
        std::fs::create_dir_all(dir).map_err(StorageError::io(dir))?;
        let path = dir.join(LOG_FILE_NAME);
        let db = Database::create(&path).map_err(|e| StorageError::db("open", e))?;
        let bounds = init_db(&db)?;
        tracing::info!(path = %path.display(), ?bounds, "opened raft log");
        let (sender, receiver) = channel::bounded(REQUEST_QUEUE_MAX);
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            db,
            bounds,
            counters: Arc::clone(&counters),
        };
        let thread = std::thread::Builder::new()
            .name("drover-storage".to_string())
            .spawn(move || writer.run(receiver))
            .map_err(StorageError::io(&path))?;
        Ok(LogStore {
            inner: Arc::new(Inner {
                sender,
                counters,
                thread: Mutex::new(Some(thread)),
                path,
            }),
        })
    }

    /// Returns the path of the database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Returns the storage thread's counters.
    pub fn stats(&self) -> LogStoreStats {
        LogStoreStats {
            commits: self.inner.counters.commits.load(Ordering::Relaxed),
            write_requests: self.inner.counters.write_requests.load(Ordering::Relaxed),
        }
    }

    fn submit<T: FromOutcome>(&self, op: Op) -> Pending<T> {
        if let Op::Append(records) = &op {
            check_append_size(records)?;
        }
        let (tx, rx) = oneshot::channel::<Result<T, StorageError>>();
        let reply: Reply = Box::new(move |result| {
            // The caller may have dropped its future; nobody is left to tell.
            let _ = tx.send(result.map(T::from_outcome));
        });
        match self
            .inner
            .sender
            .try_send(Msg::Request(Request { op, reply }))
        {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(StorageError::Overloaded {
                what: "storage request queue",
                limit: REQUEST_QUEUE_MAX as u64,
            }),
            Err(TrySendError::Disconnected(_)) => Err(StorageError::Closed),
        }
    }

    /// Appends `records`, which must continue the log without a gap. Resolves once they are
    /// committed and fsynced. The request is queued when this is called, not when polled.
    pub fn append(
        &self,
        records: Vec<LogRecord>,
    ) -> impl Future<Output = Result<(), StorageError>> + Send + 'static {
        wait(self.submit(Op::Append(records)))
    }

    /// Blocking form of [`LogStore::append`].
    pub fn append_sync(&self, records: Vec<LogRecord>) -> Result<(), StorageError> {
        wait_sync(self.submit(Op::Append(records)))
    }

    /// Deletes every record with index >= `index`.
    pub fn truncate_from(
        &self,
        index: u64,
    ) -> impl Future<Output = Result<(), StorageError>> + Send + 'static {
        wait(self.submit(Op::TruncateFrom(index)))
    }

    /// Blocking form of [`LogStore::truncate_from`].
    pub fn truncate_from_sync(&self, index: u64) -> Result<(), StorageError> {
        wait_sync(self.submit(Op::TruncateFrom(index)))
    }

    /// Deletes every record with index <= `index` and remembers (index, term) as the last
    /// purged id. The term is read from the stored record at `index`; when that record is not
    /// stored (a snapshot past the end of the log), use [`LogStore::purge_upto_log_id`].
    pub fn purge_upto(
        &self,
        index: u64,
    ) -> impl Future<Output = Result<(), StorageError>> + Send + 'static {
        wait(self.submit(Op::PurgeUpto { index, term: None }))
    }

    /// Blocking form of [`LogStore::purge_upto`].
    pub fn purge_upto_sync(&self, index: u64) -> Result<(), StorageError> {
        wait_sync(self.submit(Op::PurgeUpto { index, term: None }))
    }

    /// Like [`LogStore::purge_upto`] with the term given, so `index` need not be stored.
    pub fn purge_upto_log_id(
        &self,
        index: u64,
        term: u64,
    ) -> impl Future<Output = Result<(), StorageError>> + Send + 'static {
        wait(self.submit(Op::PurgeUpto {
            index,
            term: Some(term),
        }))
    }

    /// Blocking form of [`LogStore::purge_upto_log_id`].
    pub fn purge_upto_log_id_sync(&self, index: u64, term: u64) -> Result<(), StorageError> {
        wait_sync(self.submit(Op::PurgeUpto {
            index,
            term: Some(term),
        }))
    }

    /// Returns the stored records with `start <= index < end_exclusive`, checksums verified.
    pub fn read_range(
        &self,
        start: u64,
        end_exclusive: u64,
    ) -> impl Future<Output = Result<Vec<LogRecord>, StorageError>> + Send + 'static {
        wait(self.submit(Op::ReadRange {
            start,
            end_exclusive,
        }))
    }

    /// Blocking form of [`LogStore::read_range`].
    pub fn read_range_sync(
        &self,
        start: u64,
        end_exclusive: u64,
    ) -> Result<Vec<LogRecord>, StorageError> {
        wait_sync(self.submit(Op::ReadRange {
            start,
            end_exclusive,
        }))
    }

    /// Returns first, last and last purged ids in one consistent reading.
    pub fn bounds(&self) -> impl Future<Output = Result<LogBounds, StorageError>> + Send + 'static {
        wait(self.submit(Op::Bounds))
    }

    /// Blocking form of [`LogStore::bounds`].
    pub fn bounds_sync(&self) -> Result<LogBounds, StorageError> {
        wait_sync(self.submit(Op::Bounds))
    }

    /// Returns (index, term) of the last record, or of the last purged one if none is stored.
    pub async fn last(&self) -> Result<Option<(u64, u64)>, StorageError> {
        Ok(self.bounds().await?.last())
    }

    /// Blocking form of [`LogStore::last`].
    pub fn last_sync(&self) -> Result<Option<(u64, u64)>, StorageError> {
        Ok(self.bounds_sync()?.last())
    }

    /// Returns the index of the first stored record.
    pub async fn first_index(&self) -> Result<Option<u64>, StorageError> {
        Ok(self.bounds().await?.first_index)
    }

    /// Blocking form of [`LogStore::first_index`].
    pub fn first_index_sync(&self) -> Result<Option<u64>, StorageError> {
        Ok(self.bounds_sync()?.first_index)
    }

    /// Returns (index, term) of the last purged record.
    pub async fn last_purged(&self) -> Result<Option<(u64, u64)>, StorageError> {
        Ok(self.bounds().await?.last_purged)
    }

    /// Blocking form of [`LogStore::last_purged`].
    pub fn last_purged_sync(&self) -> Result<Option<(u64, u64)>, StorageError> {
        Ok(self.bounds_sync()?.last_purged)
    }

    /// Stores `value` under `key` durably (Raft vote, committed index, membership, ...).
    pub fn put_meta(
        &self,
        key: &'static str,
        value: Vec<u8>,
    ) -> impl Future<Output = Result<(), StorageError>> + Send + 'static {
        wait(self.submit(Op::PutMeta { key, value }))
    }

    /// Blocking form of [`LogStore::put_meta`].
    pub fn put_meta_sync(&self, key: &'static str, value: Vec<u8>) -> Result<(), StorageError> {
        wait_sync(self.submit(Op::PutMeta { key, value }))
    }

    /// Returns the value stored under `key`.
    pub fn get_meta(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StorageError>> + Send + 'static {
        wait(self.submit(Op::GetMeta(key.to_string())))
    }

    /// Blocking form of [`LogStore::get_meta`].
    pub fn get_meta_sync(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        wait_sync(self.submit(Op::GetMeta(key.to_string())))
    }

    /// Stops the storage thread after it has finished every request queued before this call,
    /// and closes the database. Later requests on any clone return `Closed`.
    pub fn close(&self) -> Result<(), StorageError> {
        self.inner.stop()
    }
}

impl Inner {
    fn stop(&self) -> Result<(), StorageError> {
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(handle) = handle else {
            return Ok(());
        };
        // A blocking send: close must not fail because the queue is momentarily full. If the
        // thread is already gone the send fails and the join below reports why.
        let _ = self.sender.send(Msg::Close);
        handle.join().map_err(|_| StorageError::Db {
            op: "close",
            reason: "storage thread panicked".to_string(),
        })
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Joining here means the file lock is released when the last handle is gone, so the
        // same directory can be reopened right away.
        if let Err(e) = self.stop() {
            tracing::error!(error = %e, path = %self.path.display(), "raft log closed badly");
        }
    }
}

fn append_bytes(records: &[LogRecord]) -> u64 {
    records
        .iter()
        .map(|r| (r.bytes.len() + RECORD_HEADER_BYTES) as u64)
        .sum()
}

fn check_append_size(records: &[LogRecord]) -> Result<(), StorageError> {
    if records.iter().any(|r| r.bytes.len() > RECORD_BYTES_MAX) {
        return Err(StorageError::Overloaded {
            what: "log record bytes",
            limit: RECORD_BYTES_MAX as u64,
        });
    }
    if append_bytes(records) > TXN_BYTES_MAX {
        return Err(StorageError::Overloaded {
            what: "append bytes per transaction",
            limit: TXN_BYTES_MAX,
        });
    }
    Ok(())
}

/// Creates the tables, checks the format version and reads the bounds of the log.
fn init_db(db: &Database) -> Result<LogBounds, StorageError> {
    let txn = db.begin_write().map_err(|e| StorageError::db("open", e))?;
    let bounds = {
        let log = txn
            .open_table(LOG_TABLE)
            .map_err(|e| StorageError::db("open", e))?;
        txn.open_table(META_TABLE)
            .map_err(|e| StorageError::db("open", e))?;
        let mut store = txn
            .open_table(STORE_TABLE)
            .map_err(|e| StorageError::db("open", e))?;
        let version = store
            .get(KEY_FORMAT_VERSION)
            .map_err(|e| StorageError::db("open", e))?;
        match version.map(|v| v.value().to_vec()) {
            None => {
                store
                    .insert(
                        KEY_FORMAT_VERSION,
                        LOG_FORMAT_VERSION.to_le_bytes().as_slice(),
                    )
                    .map_err(|e| StorageError::db("open", e))?;
            }
            Some(v) if v == LOG_FORMAT_VERSION.to_le_bytes() => {}
            Some(v) => {
                return Err(StorageError::Format {
                    reason: format!(
                        "raft log format version {v:?} is not {LOG_FORMAT_VERSION} (u32 le)"
                    ),
                })
            }
        }
        let last_purged = read_last_purged(&store)?;
        let (first_index, last_stored) = stored_extent(&log)?;
        LogBounds {
            first_index,
            last_stored,
            last_purged,
        }
    };
    txn.commit().map_err(|e| StorageError::db("open", e))?;
    Ok(bounds)
}

fn read_last_purged(
    store: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Option<(u64, u64)>, StorageError> {
    let Some(value) = store
        .get(KEY_LAST_PURGED)
        .map_err(|e| StorageError::db("open", e))?
    else {
        return Ok(None);
    };
    let bytes: [u8; 16] = value
        .value()
        .try_into()
        .map_err(|_| StorageError::Corrupt {
            what: "last purged log id",
            index: 0,
        })?;
    let index = u64::from_le_bytes(bytes[..8].try_into().expect("slice of 8"));
    let term = u64::from_le_bytes(bytes[8..].try_into().expect("slice of 8"));
    Ok(Some((index, term)))
}

/// The first stored index and the last stored (index, term).
type StoredExtent = (Option<u64>, Option<(u64, u64)>);

/// Returns the first index and the last (index, term) stored in the log table.
fn stored_extent(
    log: &impl ReadableTable<u64, &'static [u8]>,
) -> Result<StoredExtent, StorageError> {
    let first = log
        .first()
        .map_err(|e| StorageError::db("read bounds", e))?;
    let first_index = first.map(|(k, _)| k.value());
    let last = log.last().map_err(|e| StorageError::db("read bounds", e))?;
    let last_stored = match last {
        None => None,
        Some((k, v)) => {
            let record = decode_record(k.value(), v.value())?;
            Some((record.index, record.term))
        }
    };
    Ok((first_index, last_stored))
}

fn read_range(
    log: &impl ReadableTable<u64, &'static [u8]>,
    start: u64,
    end_exclusive: u64,
) -> Result<Vec<LogRecord>, StorageError> {
    if start >= end_exclusive {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for item in log
        .range(start..end_exclusive)
        .map_err(|e| StorageError::db("read range", e))?
    {
        let (k, v) = item.map_err(|e| StorageError::db("read range", e))?;
        out.push(decode_record(k.value(), v.value())?);
    }
    Ok(out)
}

fn get_meta(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<Vec<u8>>, StorageError> {
    let value = meta.get(key).map_err(|e| StorageError::db("get meta", e))?;
    Ok(value.map(|v| v.value().to_vec()))
}

/// Recreates an error for every reply of a failed batch (io errors are not `Clone`).
fn repeat_error(e: &StorageError) -> StorageError {
    match e {
        StorageError::Db { op, reason } => StorageError::Db {
            op,
            reason: reason.clone(),
        },
        StorageError::Corrupt { what, index } => StorageError::Corrupt {
            what,
            index: *index,
        },
        StorageError::Overloaded { what, limit } => StorageError::Overloaded {
            what,
            limit: *limit,
        },
        StorageError::Closed => StorageError::Closed,
        StorageError::Format { reason } => StorageError::Format {
            reason: reason.clone(),
        },
        StorageError::Io { path, source } => StorageError::Db {
            op: "batch",
            reason: format!("{}: {source}", path.display()),
        },
    }
}

/// What a request in a write batch did: answered on its own, or broke the transaction.
enum Step {
    Done(Result<Outcome, StorageError>),
    Abort(StorageError),
}

/// The storage thread's state. Lives only on that thread.
struct Writer {
    db: Database,
    bounds: LogBounds,
    counters: Arc<Counters>,
}

struct WriteTables<'txn> {
    log: Table<'txn, u64, &'static [u8]>,
    meta: Table<'txn, &'static str, &'static [u8]>,
    store: Table<'txn, &'static str, &'static [u8]>,
}

impl Writer {
    fn run(mut self, receiver: Receiver<Msg>) {
        let mut carried: Option<Request> = None;
        loop {
            let first = match carried.take() {
                Some(request) => request,
                None => match receiver.recv() {
                    Ok(Msg::Request(request)) => request,
                    // Close, or every handle dropped: everything queued before has been run.
                    Ok(Msg::Close) | Err(_) => break,
                },
            };
            #[cfg(test)]
            if let Op::Hold(release) = &first.op {
                // Held alone, so that everything queued meanwhile forms the next batch.
                let _ = release.recv();
                (first.reply)(Ok(Outcome::Unit));
                continue;
            }
            let mut bytes = first.op.txn_bytes();
            let mut batch = vec![first];
            let mut closing = false;
            while bytes < TXN_BYTES_MAX {
                match receiver.try_recv() {
                    Ok(Msg::Request(request)) => {
                        let more = request.op.txn_bytes();
                        if bytes + more > TXN_BYTES_MAX {
                            carried = Some(request);
                            break;
                        }
                        bytes += more;
                        batch.push(request);
                    }
                    Ok(Msg::Close) => {
                        closing = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.run_batch(batch);
            if closing {
                assert!(carried.is_none(), "a request was carried past a close");
                break;
            }
        }
        tracing::info!(bounds = ?self.bounds, "raft log storage thread stopped");
    }

    fn run_batch(&mut self, batch: Vec<Request>) {
        if batch.iter().any(|r| r.op.is_write()) {
            self.run_write_batch(batch);
        } else {
            self.run_read_batch(batch);
        }
    }

    fn run_read_batch(&mut self, batch: Vec<Request>) {
        let tables = self
            .db
            .begin_read()
            .map_err(|e| StorageError::db("begin read", e))
            .and_then(|txn| {
                let log = txn
                    .open_table(LOG_TABLE)
                    .map_err(|e| StorageError::db("read", e))?;
                let meta = txn
                    .open_table(META_TABLE)
                    .map_err(|e| StorageError::db("read", e))?;
                Ok((log, meta))
            });
        for Request { op, reply } in batch {
            let result = match &tables {
                Err(e) => Err(repeat_error(e)),
                Ok((log, meta)) => match op {
                    Op::ReadRange {
                        start,
                        end_exclusive,
                    } => read_range(log, start, end_exclusive).map(Outcome::Records),
                    Op::GetMeta(key) => get_meta(meta, &key).map(Outcome::Meta),
                    Op::Bounds => Ok(Outcome::Bounds(self.bounds)),
                    #[cfg(test)]
                    Op::Hold(release) => {
                        let _ = release.recv();
                        Ok(Outcome::Unit)
                    }
                    _ => unreachable!("write request in a read batch"),
                },
            };
            reply(result);
        }
    }

    fn run_write_batch(&mut self, batch: Vec<Request>) {
        let writes = batch.iter().filter(|r| r.op.is_write()).count() as u64;
        let txn = match self.db.begin_write() {
            Ok(txn) => txn,
            Err(e) => return fail_all(batch, &StorageError::db("begin write", e)),
        };
        let mut bounds = self.bounds;
        let mut answered: Vec<(Reply, Result<Outcome, StorageError>)> = Vec::new();
        let mut abort: Option<StorageError> = None;
        match open_write_tables(&txn) {
            Err(e) => abort = Some(e),
            Ok(mut tables) => {
                let mut requests = batch.into_iter();
                for Request { op, reply } in requests.by_ref() {
                    match apply(&mut tables, &mut bounds, op) {
                        Step::Done(result) => answered.push((reply, result)),
                        Step::Abort(e) => {
                            answered.push((reply, Err(repeat_error(&e))));
                            abort = Some(e);
                            break;
                        }
                    }
                }
                // Requests after an abort were not run; they fail with the same error below.
                let rest: Vec<Request> = requests.collect();
                if let Some(e) = &abort {
                    fail_all(rest, e);
                }
            }
        }
        let committed = match abort {
            Some(e) => {
                drop(txn);
                Err(e)
            }
            None => txn.commit().map_err(|e| StorageError::db("commit", e)),
        };
        match committed {
            Ok(()) => {
                self.bounds = bounds;
                self.counters.commits.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .write_requests
                    .fetch_add(writes, Ordering::Relaxed);
                for (reply, result) in answered {
                    reply(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "raft log write batch failed");
                for (reply, _) in answered {
                    reply(Err(repeat_error(&e)));
                }
            }
        }
    }
}

fn fail_all(batch: Vec<Request>, e: &StorageError) {
    for request in batch {
        (request.reply)(Err(repeat_error(e)));
    }
}

fn open_write_tables(txn: &WriteTransaction) -> Result<WriteTables<'_>, StorageError> {
    let open = |e| StorageError::db("open tables", e);
    Ok(WriteTables {
        log: txn.open_table(LOG_TABLE).map_err(open)?,
        meta: txn.open_table(META_TABLE).map_err(open)?,
        store: txn.open_table(STORE_TABLE).map_err(open)?,
    })
}

/// Runs one request inside the batch's write transaction, updating `bounds` as it goes.
fn apply(tables: &mut WriteTables<'_>, bounds: &mut LogBounds, op: Op) -> Step {
    // A database error leaves the transaction in an unknown state, so it aborts the batch;
    // a checksum or argument error only fails its own request.
    let step = |r: Result<Outcome, StorageError>| match r {
        Err(e @ StorageError::Db { .. }) => Step::Abort(e),
        other => Step::Done(other),
    };
    match op {
        Op::Append(records) => step(append(tables, bounds, records).map(|()| Outcome::Unit)),
        Op::TruncateFrom(index) => {
            step(truncate_from(tables, bounds, index).map(|()| Outcome::Unit))
        }
        Op::PurgeUpto { index, term } => {
            step(purge_upto(tables, bounds, index, term).map(|()| Outcome::Unit))
        }
        Op::PutMeta { key, value } => step(
            tables
                .meta
                .insert(key, value.as_slice())
                .map(|_| Outcome::Unit)
                .map_err(|e| StorageError::db("put meta", e)),
        ),
        Op::ReadRange {
            start,
            end_exclusive,
        } => step(read_range(&tables.log, start, end_exclusive).map(Outcome::Records)),
        Op::GetMeta(key) => step(get_meta(&tables.meta, &key).map(Outcome::Meta)),
        Op::Bounds => Step::Done(Ok(Outcome::Bounds(*bounds))),
        #[cfg(test)]
        Op::Hold(release) => {
            let _ = release.recv();
            Step::Done(Ok(Outcome::Unit))
        }
    }
}

fn append(
    tables: &mut WriteTables<'_>,
    bounds: &mut LogBounds,
    records: Vec<LogRecord>,
) -> Result<(), StorageError> {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Ok(());
    };
    // A gap or overlap in the Raft log would silently break replication and recovery; the
    // engine never sends one, so it is a bug and the storage thread stops on it.
    if let Some((prev_index, _)) = bounds.last() {
        assert_eq!(
            first.index,
            prev_index + 1,
            "log append not contiguous: first new index={} last stored={:?} last purged={:?}",
            first.index,
            bounds.last_stored,
            bounds.last_purged
        );
    }
    for pair in records.windows(2) {
        assert_eq!(
            pair[1].index,
            pair[0].index + 1,
            "log append batch has a gap: index {} follows {}",
            pair[1].index,
            pair[0].index
        );
    }
    for record in &records {
        let value = encode_record(record);
        tables
            .log
            .insert(record.index, value.as_slice())
            .map_err(|e| StorageError::db("append", e))?;
    }
    bounds.first_index = bounds.first_index.or(Some(first.index));
    bounds.last_stored = Some((last.index, last.term));
    Ok(())
}

fn truncate_from(
    tables: &mut WriteTables<'_>,
    bounds: &mut LogBounds,
    index: u64,
) -> Result<(), StorageError> {
    // Purged entries are covered by a snapshot and thus committed; Raft never truncates those.
    if let Some((purged, _)) = bounds.last_purged {
        assert!(
            index > purged,
            "truncate_from({index}) reaches purged index {purged}"
        );
    }
    tables
        .log
        .retain_in(index.., |_, _| false)
        .map_err(|e| StorageError::db("truncate", e))?;
    let (first_index, last_stored) = stored_extent(&tables.log)?;
    bounds.first_index = first_index;
    bounds.last_stored = last_stored;
    Ok(())
}

fn purge_upto(
    tables: &mut WriteTables<'_>,
    bounds: &mut LogBounds,
    index: u64,
    term: Option<u64>,
) -> Result<(), StorageError> {
    if let Some((purged, _)) = bounds.last_purged {
        if index <= purged {
            return Ok(());
        }
    }
    let term = match term {
        Some(term) => term,
        None => {
            let value = tables
                .log
                .get(index)
                .map_err(|e| StorageError::db("purge", e))?;
            match value {
                Some(v) => decode_record(index, v.value())?.term,
                None => {
                    return Err(StorageError::Format {
                        reason: format!(
                            "purge_upto({index}): index is not stored and no term was given"
                        ),
                    })
                }
            }
        }
    };
    tables
        .log
        .retain_in(..=index, |_, _| false)
        .map_err(|e| StorageError::db("purge", e))?;
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&index.to_le_bytes());
    id[8..].copy_from_slice(&term.to_le_bytes());
    tables
        .store
        .insert(KEY_LAST_PURGED, id.as_slice())
        .map_err(|e| StorageError::db("purge", e))?;
    let (first_index, last_stored) = stored_extent(&tables.log)?;
    bounds.first_index = first_index;
    bounds.last_stored = last_stored;
    bounds.last_purged = Some((index, term));
    Ok(())
}

#[cfg(test)]
mod log_store_test;
