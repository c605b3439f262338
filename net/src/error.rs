//! The `net` crate's one error type.

use thiserror::Error;

/// Errors the transports return to their callers (the agent binary, tests).
///
/// Request-level problems never surface here: they become HTTP responses. This type covers
/// what stops a listener or a connection.
#[derive(Debug, Error)]
pub enum NetError {
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("http connection: {0}")]
    Http(#[from] hyper::Error),
    /// A transport's configuration cannot work (a bad key length, inconsistent timings).
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}
