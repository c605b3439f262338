//! `StorageError`: every failure the storage crate reports.

use std::path::PathBuf;

/// A failure of the Raft log store or the snapshot store.
///
/// `Overloaded` is the only variant a caller can act on by retrying later; every other variant
/// means the node's storage is unusable or its data is damaged, and the node must stop.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A file-system operation failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The embedded database reported an error while doing `op`.
    #[error("database error during {op}: {reason}")]
    Db { op: &'static str, reason: String },
    /// Stored bytes failed a checksum or structural check. `index` is the log index of the
    /// record, or the last included index of the snapshot.
    #[error("corrupt {what} at index {index}")]
    Corrupt { what: &'static str, index: u64 },
    /// A bounded queue or a per-transaction limit is full; the request was not performed.
    #[error("storage overloaded: {what} exceeds its limit of {limit}")]
    Overloaded { what: &'static str, limit: u64 },
    /// The store was closed; no further requests are accepted.
    #[error("storage is closed")]
    Closed,
    /// Bytes are not in a format this version understands, or a request is malformed.
    #[error("format error: {reason}")]
    Format { reason: String },
}

impl StorageError {
    /// Returns a `Db` error for `op` from any displayable database error.
    pub(crate) fn db(op: &'static str, e: impl std::fmt::Display) -> StorageError {
        StorageError::Db {
            op,
            reason: e.to_string(),
        }
    }

    /// Returns an `Io` error for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StorageError {
        let path = path.into();
        move |source| StorageError::Io { path, source }
    }
}
