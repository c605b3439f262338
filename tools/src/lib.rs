//! The binaries' shared code: the CLI command tree, the agent runtime and the load generator.
//!
//! Owns process concerns only (argument parsing, logging set-up, signals, exit codes); the
//! server itself lives in `engine` and `net`. Start at `agent.rs` for the server process.

pub mod agent;
pub mod allocator;
pub mod cli;
pub mod loadgen;
