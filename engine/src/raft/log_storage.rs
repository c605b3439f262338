//! openraft's log storage over `storage::LogStore` (redb on its own thread).
//!
//! Appends are handed to the storage thread and acknowledged to openraft through the
//! `LogFlushed` callback once fsynced, so the Raft core never waits on the disk. The storage
//! thread serves requests in order, so a read or truncate issued after an append sees it.
//!
//! The newest appended entries are also kept in memory (`Recent`, bounded by bytes), so
//! openraft's read of what it is about to apply or replicate is answered without a round
//! trip to the storage thread, and on the proposing server the entry still carries the
//! envelope it encodes (`RaftPayload::decoded`), which the state machine takes instead of
//! decoding the bytes.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, LogState, RaftLogReader, StorageIOError,
    Vote,
};
use storage::{LogRecord, LogStore};

use super::types::{decode_entry, encode_entry, StorageError, TypeConfig};

const META_VOTE: &str = "raft.vote";
const META_COMMITTED: &str = "raft.committed";
const META_LAST_PURGED: &str = "raft.last_purged";

/// Payload bytes the recent entries may hold at most; older entries go first. Entries are
/// applied and replicated right after they are appended, so this only has to cover the
/// entries in flight.
pub const RECENT_BYTES_MAX: usize = 32 << 20;

/// The Raft log, backed by redb.
#[derive(Clone)]
pub struct LogStorage {
    store: LogStore,
    recent: Arc<Mutex<Recent>>,
}

/// The newest appended entries, by index, the same as the log holds at those indexes.
#[derive(Default)]
pub struct Recent {
    entries: BTreeMap<u64, Entry<TypeConfig>>,
    bytes: usize,
    bytes_max: usize,
}

fn payload_len(entry: &Entry<TypeConfig>) -> usize {
    match &entry.payload {
        EntryPayload::Normal(p) => p.bytes.len(),
        _ => 0,
    }
}

impl Recent {
    /// Keeps at most `bytes_max` payload bytes.
    pub fn new(bytes_max: usize) -> Recent {
        Recent {
            bytes_max,
            ..Recent::default()
        }
    }

    /// Records an appended entry, dropping the oldest ones to stay within the bound; an
    /// entry larger than the bound is not kept.
    pub fn insert(&mut self, entry: Entry<TypeConfig>) {
        let index = entry.log_id.index;
        let len = payload_len(&entry);
        if let Some(old) = self.entries.remove(&index) {
            self.bytes -= payload_len(&old);
        }
        if len > self.bytes_max {
            return;
        }
        while self.bytes + len > self.bytes_max {
            let Some((_, oldest)) = self.entries.pop_first() else {
                break;
            };
            self.bytes -= payload_len(&oldest);
        }
        self.bytes += len;
        self.entries.insert(index, entry);
    }

    /// The entries `start..end` if every one of them is held.
    pub fn range(&self, start: u64, end: u64) -> Option<Vec<Entry<TypeConfig>>> {
        let count = end.checked_sub(start)?;
        if count == 0 || count > self.entries.len() as u64 {
            return None;
        }
        let found: Vec<Entry<TypeConfig>> = self
            .entries
            .range(start..end)
            .map(|(_, e)| e.clone())
            .collect();
        (found.len() as u64 == count).then_some(found)
    }

    /// Forgets the entries at `index` and after (the log was truncated there).
    pub fn truncate_from(&mut self, index: u64) {
        for (_, e) in self.entries.split_off(&index) {
            self.bytes -= payload_len(&e);
        }
    }

    /// Forgets the entries up to and including `index` (the log was purged up to there).
    pub fn purge_upto(&mut self, index: u64) {
        let kept = self.entries.split_off(&index.saturating_add(1));
        for e in std::mem::replace(&mut self.entries, kept).into_values() {
            self.bytes -= payload_len(&e);
        }
    }
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
        LogStorage {
            store,
            recent: Arc::new(Mutex::new(Recent::new(RECENT_BYTES_MAX))),
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
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
        if let Some(entries) = self.recent().range(start, end) {
            return Ok(entries);
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
        let mut records: Vec<LogRecord> = Vec::new();
        {
            let mut recent = self.recent();
            for e in entries {
                records.push(LogRecord {
                    index: e.log_id.index,
                    term: e.log_id.leader_id.term,
                    bytes: encode_entry(&e),
                });
                recent.insert(e);
            }
        }
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
        self.recent().truncate_from(log_id.index);
        self.store
            .truncate_from(log_id.index)
            .await
            .map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError> {
        self.recent().purge_upto(log_id.index);
        self.put_meta(META_LAST_PURGED, &Some(log_id)).await?;
        self.store.purge_upto(log_id.index).await.map_err(write_err)
    }
}

#[cfg(test)]
mod tests {
    use openraft::CommittedLeaderId;

    use super::*;
    use crate::raft::RaftPayload;

    fn entry(index: u64, len: usize) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(RaftPayload::new(vec![index as u8; len])),
        }
    }

    fn indexes(entries: &[Entry<TypeConfig>]) -> Vec<u64> {
        entries.iter().map(|e| e.log_id.index).collect()
    }

    #[test]
    fn recent_entries_answer_only_whole_ranges_and_stay_within_their_bound() {
        let mut recent = Recent::new(100);
        for i in 1..=4 {
            recent.insert(entry(i, 30));
        }
        // 120 bytes do not fit in 100: the oldest entry went.
        assert!(recent.range(1, 3).is_none());
        assert_eq!(indexes(&recent.range(2, 5).unwrap()), [2, 3, 4]);
        assert!(recent.range(2, 6).is_none(), "index 5 was never appended");
        assert!(recent.range(3, 3).is_none());
        // A replaced entry is counted once.
        recent.insert(entry(4, 10));
        assert_eq!(recent.bytes, 70);
        // An entry larger than the bound is not kept, and evicts nothing.
        recent.insert(entry(5, 101));
        assert!(recent.range(5, 6).is_none());
        assert_eq!(recent.bytes, 70);

        recent.truncate_from(3);
        assert!(recent.range(3, 4).is_none());
        assert_eq!(indexes(&recent.range(2, 3).unwrap()), [2]);
        recent.insert(entry(3, 30));
        recent.purge_upto(2);
        assert!(recent.range(2, 3).is_none());
        assert_eq!(indexes(&recent.range(3, 4).unwrap()), [3]);
        assert_eq!(recent.bytes, 30);
    }
}
