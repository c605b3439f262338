//! The running server: its cores, their services, and how they start and stop.
//!
//! Start order: storage thread → Raft core (state machine, openraft, proposer, leadership
//! watcher) → shard cores (inbox, tick, workers, then the transports `tools` plugs in).
//! Stop order is the reverse: shards stop serving, then the Raft core shuts openraft down,
//! then the storage thread finishes its queue and closes the database.

pub mod alloc_watch;
pub mod broker;
pub mod client;
pub mod cluster;
pub mod drainer;
pub mod handle;
pub mod heartbeat;
pub mod leader;
pub mod messages;
pub mod periodic;
pub mod plan_apply;
pub mod proposer;
pub mod rejections;
pub mod shard;
pub mod worker;

mod start;

pub use handle::Handle;
pub use start::{
    load_server_id, own_server_info, raft_dir, start, start_clustered, AppliedIndex, RaftInit,
    RunningServer, ShardInit,
};
