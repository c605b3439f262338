//! Raft wiring: openraft's type configuration, its glommio runtime, log storage, state
//! machine and network.

pub mod log_storage;
pub mod network;
pub mod recovery;
pub mod runtime;
pub mod state_machine;
pub mod types;

pub use types::{ApplyResponse, Raft, RaftPayload, TypeConfig};
