//! Errors of the RPC transport (framing, connections, calls).

use thiserror::Error;

/// What can go wrong on a client-protocol connection.
///
/// Every variant is recoverable for the process: at worst one connection is dropped and the
/// caller reconnects or retries.
#[derive(Debug, Error)]
pub enum RpcError {
    #[error("frame length {len} exceeds the maximum of {max} bytes")]
    FrameTooLong { len: usize, max: usize },
    #[error("frame is not a valid client envelope: {reason}")]
    BadFrame { reason: String },
    #[error("cannot encode a client envelope: {reason}")]
    Encode { reason: String },
    #[error("unexpected {what} on the client protocol")]
    Protocol { what: &'static str },
    #[error("server speaks client protocol version {server}, this side speaks {local}")]
    VersionMismatch { server: u32, local: u32 },
    #[error("I/O error talking to {peer}: {source}")]
    Io {
        peer: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connection to {peer} closed")]
    Closed { peer: String },
    #[error("no response from {peer} within {after_ms} ms")]
    Timeout { peer: String, after_ms: u64 },
    #[error("too many requests in flight on one connection ({limit})")]
    Overloaded { limit: usize },
    #[error("stopped")]
    Stopped,
}
