//! Durable storage for a drover server: the Raft log and Raft metadata, and state snapshots.
//!
//! Owns the on-disk formats and their versions: `raft.redb` (log records with crc32, metadata)
//! and `snapshots/<index>-<term>.snap` (a header plus the rkyv archive of a `StateImage`).
//! This is the only crate that names redb types. It must not depend on openraft or glommio:
//! the engine adapts `LogStore` and `SnapshotStore` to openraft's storage traits.
//! Start at `log_store.rs` (the handle and its requests), then `log_store/writer.rs` (the
//! storage thread and group commit), then `snapshot_store.rs`.

mod error;
mod log_record;
mod log_store;
mod snapshot_store;
mod state_image;

pub use error::StorageError;
pub use log_record::{LogRecord, RECORD_BYTES_MAX};
pub use log_store::{
    LogBounds, LogStore, LogStoreStats, LOG_FILE_NAME, LOG_FORMAT_VERSION, REQUEST_QUEUE_MAX,
    TXN_BYTES_MAX,
};
pub use snapshot_store::{
    SnapshotInfo, SnapshotMeta, SnapshotStore, SNAPSHOTS_KEPT_MAX, SNAPSHOT_DIR_NAME,
    SNAPSHOT_FORMAT_VERSION, SNAPSHOT_HEADER_BYTES_MAX,
};
pub use state_image::{ArchivedStateImage, StateImage, STATE_IMAGE_FORMAT_VERSION};
