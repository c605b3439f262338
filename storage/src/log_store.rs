//! `LogStore`: the Raft log and Raft metadata in one redb file, owned by one storage thread.
//!
//! Every request travels over a bounded channel to the "drover-storage" thread, which owns the
//! `Database`. The thread drains whatever is queued and runs it in ONE write transaction (group
//! commit), so many appends and metadata writes share a single fsync; replies are sent only after
//! that commit returns, so a resolved append is durable. Requests run in the order they were
//! queued, so a read queued after a write sees it.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam::channel::{self, Receiver, Sender, TrySendError};
use redb::Database;

use tokio::sync::oneshot;
use writer::{init_db, Writer};

use crate::log_record::{LogRecord, RECORD_BYTES_MAX, RECORD_HEADER_BYTES};
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
/// redb's page cache for the log (its default is 1 GiB). The log is written once and read
/// back mostly while it is still recent (apply, replication), and the engine keeps the
/// newest entries in memory itself, so a large cache only keeps old entries resident: at a
/// million allocations the default held about a kilobyte of memory per allocation, and
/// 128 MiB another 130 bytes, with no fill faster for it (bench/RESULTS.md, "Memory per
/// allocation").
/// redb gives a tenth of it to dirty pages; larger transactions spill to the file.
pub const LOG_CACHE_BYTES: usize = 32 * 1024 * 1024;

const _: () = assert!(RECORD_BYTES_MAX as u64 <= TXN_BYTES_MAX);

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
    pub fn last_log_id(&self) -> Option<(u64, u64)> {
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
    /// Payload bytes handed to `append` since the store was opened (what the log grew by,
    /// before purges): the snapshot timer snapshots when too many are not yet in a snapshot.
    pub appended_bytes: u64,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    write_requests: AtomicU64,
    appended_bytes: AtomicU64,
    /// Set by the storage thread when it stops, normally or by a failed assertion.
    stopped: AtomicBool,
}

/// A handle to the Raft log store. Clones share one storage thread.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

struct Inner {
    sender: Sender<Msg>,
    /// A second receiver, used only to discard requests that reach the queue after the storage
    /// thread stopped. A bounded crossbeam channel keeps queued messages until both sides are
    /// gone, so without this their reply senders would never drop and callers would wait forever.
    receiver: Receiver<Msg>,
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
        let db = Database::builder()
            .set_cache_size(LOG_CACHE_BYTES)
            .create(&path)
            .map_err(|e| StorageError::db("open", e))?;
        let bounds = init_db(&db)?;
        tracing::info!(path = %path.display(), ?bounds, "opened raft log");
        let (sender, receiver) = channel::bounded(REQUEST_QUEUE_MAX);
        let counters = Arc::new(Counters::default());
        let writer = Writer::new(db, bounds, Arc::clone(&counters));
        let thread = std::thread::Builder::new()
            .name("drover-storage".to_string())
            .spawn({
                let receiver = receiver.clone();
                move || writer.run(receiver)
            })
            .map_err(StorageError::io(&path))?;
        Ok(LogStore {
            inner: Arc::new(Inner {
                sender,
                receiver,
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
            appended_bytes: self.inner.counters.appended_bytes.load(Ordering::Relaxed),
        }
    }

    /// Checks an append's record sizes and counts its bytes (every append path comes here).
    fn admit_append(&self, records: &[LogRecord]) -> Result<(), StorageError> {
        check_append_size(records)?;
        self.inner
            .counters
            .appended_bytes
            .fetch_add(append_bytes(records), Ordering::Relaxed);
        Ok(())
    }

    fn submit<T: FromOutcome>(&self, op: Op) -> Pending<T> {
        if let Op::Append(records) = &op {
            self.admit_append(records)?;
        }
        if self.inner.counters.stopped.load(Ordering::SeqCst) {
            return Err(StorageError::Closed);
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
            Ok(()) => {
                // The thread sets `stopped` before its final drain. If it was already set, that
                // drain may have missed this request, so discard it here: its reply sender drops
                // and the caller sees `Closed`.
                if self.inner.counters.stopped.load(Ordering::SeqCst) {
                    discard_queued(&self.inner.receiver);
                }
                Ok(rx)
            }
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

    /// Appends `records` and calls `done` on the storage thread once they are committed and
    /// fsynced (or failed). Lets a caller acknowledge durability without a task of its own;
    /// `done` must be quick, it runs between commits. Errors in queueing return at once.
    pub fn append_with(
        &self,
        records: Vec<LogRecord>,
        done: impl FnOnce(Result<(), StorageError>) + Send + 'static,
    ) -> Result<(), StorageError> {
        self.admit_append(&records)?;
        if self.inner.counters.stopped.load(Ordering::SeqCst) {
            return Err(StorageError::Closed);
        }
        let reply: Reply = Box::new(move |result| done(result.map(|_| ())));
        match self.inner.sender.try_send(Msg::Request(Request {
            op: Op::Append(records),
            reply,
        })) {
            Ok(()) => {
                if self.inner.counters.stopped.load(Ordering::SeqCst) {
                    discard_queued(&self.inner.receiver);
                }
                Ok(())
            }
            Err(TrySendError::Full(_)) => Err(StorageError::Overloaded {
                what: "storage request queue",
                limit: REQUEST_QUEUE_MAX as u64,
            }),
            Err(TrySendError::Disconnected(_)) => Err(StorageError::Closed),
        }
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
    /// stored (a snapshot past the end of the log), the recorded term is only a lower bound
    /// (the last term known at or below `index`); use [`LogStore::purge_upto_log_id`] to record
    /// the exact term.
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

    /// Returns (index, term) of the last stored record. After a purge of everything this is
    /// `None`; [`LogBounds::last_log_id`] then falls back to the last purged id.
    pub async fn last(&self) -> Result<Option<(u64, u64)>, StorageError> {
        Ok(self.bounds().await?.last_stored)
    }

    /// Blocking form of [`LogStore::last`].
    pub fn last_sync(&self) -> Result<Option<(u64, u64)>, StorageError> {
        Ok(self.bounds_sync()?.last_stored)
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
        // Close must not fail because the queue is momentarily full, but must not wait on a
        // full queue that a stopped thread will never drain either.
        loop {
            match self.sender.try_send(Msg::Close) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => break,
                Err(TrySendError::Full(_)) if self.counters.stopped.load(Ordering::SeqCst) => break,
                Err(TrySendError::Full(_)) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        let joined = handle.join();
        discard_queued(&self.receiver);
        joined.map_err(|_| StorageError::Db {
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

/// Drops every queued message; each dropped reply makes its caller see `Closed`.
fn discard_queued(receiver: &Receiver<Msg>) {
    while receiver.try_recv().is_ok() {}
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

mod writer;

#[cfg(test)]
mod log_store_test;
