//! The engine's one error type.

use thiserror::Error;

/// Errors the engine returns to its callers (HTTP handlers, client protocol, CLI).
///
/// Variants above `Fatal` are recoverable: the caller can act (fix a field, retry, go to the
/// leader). `Fatal` means this server must stop; it never shares a variant with the others.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum EngineError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{kind} not found: {id}")]
    NotFound { kind: &'static str, id: String },
    #[error("{message}")]
    Conflict { message: String },
    #[error("No cluster leader")]
    NoLeader,
    #[error("not the leader; leader is {leader:?}")]
    NotLeader { leader: Option<String> },
    #[error("server overloaded: {what} is full ({limit})")]
    Overloaded { what: &'static str, limit: usize },
    #[error("request timed out after {after_ms} ms waiting for {what}")]
    Timeout { what: &'static str, after_ms: u64 },
    #[error("permission denied: {reason}")]
    PermissionDenied { reason: String },
    #[error("server is shutting down")]
    ShuttingDown,
    #[error("fatal: {reason}")]
    Fatal { reason: String },
}

impl EngineError {
    /// Returns an `Invalid` error for a field.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> EngineError {
        EngineError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
