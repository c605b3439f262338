//! Raft wiring: openraft's type configuration, its glommio runtime, log storage and state machine.

pub mod runtime;
