//! The cores: shard executors, Raft wiring, the FSM, the evaluation broker, the plan applier
//! and the heartbeat timers.
//!
//! Owns every piece of live server state and the threads that touch it. Must not parse HTTP
//! or JSON, name redb types, or know Nomad's field names: transports come in from `net`
//! through `Cluster` (the face it offers) and the transport traits it is generic over.
//! Start at `api.rs` (what callers may ask), then `server.rs` (how the cores start).

pub mod api;
pub mod client_proto;
pub mod config;
pub mod error;
pub mod raft;
pub mod server;
pub mod server_proto;
pub mod state;

pub use api::Cluster;
pub use error::EngineError;
