//! Placement: turns a read view of the cluster and an evaluation into a `Plan`.
//!
//! Owns the domain types (`structs`), reconciliation, feasibility, ranking and selection.
//! Must not do I/O, read the clock, spawn tasks, or name glommio, redb, openraft or HTTP types:
//! the time and the random seed come in through `SchedEnv`, the state through `StateView`.
//! Start at `structs`, then `process()` in `scheduler.rs`.

pub mod structs;
pub mod env;
pub mod view;

pub use env::{SchedEnv, SchedulerAlgorithm, SchedulerConfig};
pub use view::StateView;
