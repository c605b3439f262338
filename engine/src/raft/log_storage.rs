//! openraft's log storage over `storage::LogStore` (redb on its own thread).
//!
//! Appends are handed to the storage thread and acknowledged to openraft through the
//! `LogFlushed` callback once fsynced, so the Raft core never waits on the disk. The storage
//! thread serves requests in order, so a read or truncate issued after an append sees it.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    Entry, ErrorSubject, ErrorVerb, LogId, LogState, RaftLogReader, StorageIOError, Vote,
};
use storage::{LogRecord, LogStore};

use super::types::{decode_entry, encode_entry, StorageError, TypeConfig};

const META_VOTE: &str = "raft.vote";
const META_COMMITTED: &str = "raft.committed";
const META_LAST_PURGED: &str = "raft.last_purged";

/// The Raft log, backed by redb.
#[derive(Clone)]
pub struct LogStorage {
    store: LogStore,
}

fn io_err(subject: ErrorSubject<u64>, verb: ErrorVerb, e: impl ToString) -> StorageError {
    StorageError::IO {
        source: StorageIOError::new(subject, verb, openraft::AnyError::error(e.to_string())),
    }
}

fn read_err(e: impl ToString) -> StorageError {
    io_err(ErrorSubject::Logs, ErrorVerb::Read, e)
}

fn write_err(e: impl ToString) -> StorageError {
    io_err(ErrorSubject::Logs, ErrorVerb::Write, e)
}

impl LogStorage {
    /// Wraps an open log store.
    pub fn new(store: LogStore) -> LogStorage {
        LogStorage { store }
    }

    async fn meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, StorageError> {
        match self.store.get_meta(key).await.map_err(read_err)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(read_err),
        }
    }

    async fn put_meta<T: serde::Serialize>(
        &self,
        key: &'static str,
        value: &T,
    ) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(value).map_err(write_err)?;
        self.store.put_meta(key, bytes).await.map_err(write_err)
    }
}

impl RaftLogReader<TypeConfig> for LogStorage {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(e) => e.saturating_add(1),
            Bound::Excluded(e) => *e,
            Bound::Unbounded => u64::MAX,
        };
        if start >= end {
            return Ok(Vec::new());
        }
        let records = self.store.read_range(start, end).await.map_err(read_err)?;
        records
            .iter()
            .map(|r| decode_entry(r.index, &r.bytes).map_err(read_err))
            .collect()
    }
}

impl RaftLogStorage<TypeConfig> for LogStorage {
    type LogReader = LogStorage;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId<u64>> = self.meta(META_LAST_PURGED).await?;
        let last = match self.store.last().await.map_err(read_err)? {
            Some((index, _term)) => {
                let records = self
                    .store
                    .read_range(index, index + 1)
                    .await
                    .map_err(read_err)?;
                let record = records
                    .first()
                    .ok_or_else(|| read_err(format!("last entry {index} vanished")))?;
                Some(
                    decode_entry(record.index, &record.bytes)
                        .map_err(read_err)?
                        .log_id,
                )
            }
            None => last_purged,
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError> {
        self.put_meta(META_VOTE, vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError> {
        self.meta(META_VOTE).await
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> Result<(), StorageError> {
        self.put_meta(META_COMMITTED, &committed).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError> {
        Ok(self
            .meta::<Option<LogId<u64>>>(META_COMMITTED)
            .await?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>>,
    {
        let records: Vec<LogRecord> = entries
            .into_iter()
            .map(|e| LogRecord {
                index: e.log_id.index,
                term: e.log_id.leader_id.term,
                bytes: encode_entry(&e),
            })
            .collect();
        // The storage thread serves requests in order, so later reads see this append even
        // before it is durable; openraft counts it only once the callback reports the fsync,
        // which the storage thread calls itself: no task, no executor needed.
        self.store
            .append_with(records, move |result| {
                callback.log_io_completed(result.map_err(|e| std::io::Error::other(e.to_string())));
            })
            .map_err(write_err)?;
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError> {
        self.store
            .truncate_from(log_id.index)
            .await
            .map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError> {
        self.put_meta(META_LAST_PURGED, &Some(log_id)).await?;
        self.store.purge_upto(log_id.index).await.map_err(write_err)
    }
}
