//! The storage thread of `LogStore`: owns the redb `Database`, gathers queued requests into
//! one write transaction per batch, commits (one fsync), then answers every request.
//!
//! Only this thread touches the database after open, so no locking is needed around it, and a
//! slow fsync never blocks an executor: callers only wait on their reply.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crossbeam::channel::Receiver;
use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition, WriteTransaction};

use super::{
    Counters, LogBounds, Msg, Op, Outcome, Reply, Request, LOG_FORMAT_VERSION, TXN_BYTES_MAX,
};
use crate::log_record::{decode_record, encode_record, LogRecord};
use crate::StorageError;

pub(super) const LOG_TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
pub(super) const META_TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");
/// The store's own bookkeeping, kept apart so engine metadata keys can never collide with it.
pub(super) const STORE_TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("storage_meta");
pub(super) const KEY_FORMAT_VERSION: &str = "format_version";
const KEY_LAST_PURGED: &str = "last_purged";

/// Creates the tables, checks the format version and reads the bounds of the log.
pub(super) fn init_db(db: &Database) -> Result<LogBounds, StorageError> {
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

struct StopGuard {
    counters: Arc<Counters>,
    receiver: Receiver<Msg>,
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.counters.stopped.store(true, Ordering::SeqCst);
        super::discard_queued(&self.receiver);
    }
}

/// The storage thread's state. Lives only on that thread.
pub(super) struct Writer {
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
    pub(super) fn new(db: Database, bounds: LogBounds, counters: Arc<Counters>) -> Writer {
        Writer {
            db,
            bounds,
            counters,
        }
    }

    pub(super) fn run(mut self, receiver: Receiver<Msg>) {
        // Runs on every exit, including a failed assertion: marks the store stopped and drops
        // whatever is still queued so that no caller waits for a reply that cannot come.
        let _stop = StopGuard {
            counters: Arc::clone(&self.counters),
            receiver: receiver.clone(),
        };
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
    // openraft hands appends in order without gaps; its storage conformance suite still
    // appends around purge points and with gaps, so the store records what it is given and
    // leaves ordering to the caller. A batch itself must be ascending.
    let _ = (first, last);
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

/// Returns the term of the last stored record at or below `index`, else the last purged term.
fn known_term_upto(
    log: &Table<'_, u64, &'static [u8]>,
    bounds: &LogBounds,
    index: u64,
) -> Result<u64, StorageError> {
    let below = log
        .range(..=index)
        .map_err(|e| StorageError::db("purge", e))?
        .next_back();
    match below {
        Some(item) => {
            let (k, v) = item.map_err(|e| StorageError::db("purge", e))?;
            Ok(decode_record(k.value(), v.value())?.term)
        }
        None => Ok(bounds.last_purged.map_or(0, |(_, term)| term)),
    }
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
                // Not stored: Raft terms never decrease along the log, so the last term known
                // at or below `index` is a lower bound. Only the index matters for this store.
                None => known_term_upto(&tables.log, bounds, index)?,
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
