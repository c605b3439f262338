//! Placement: turns a read view of the cluster and an evaluation into a `Plan`.
//!
//! Owns the domain types (`structs`), reconciliation, feasibility, ranking and selection.
//! Must not do I/O, read the clock, spawn tasks, or name glommio, redb, openraft or HTTP types:
//! the time and the random seed come in through `SchedEnv`, the state through `StateView`.
//! Start at `structs`, then `process()` in `scheduler.rs`, then `stack.rs`; `README.md` draws
//! the pipeline.

pub mod env;
pub mod error;
pub mod feasible;
pub mod plan_verify;
pub mod preempt;
pub mod rank;
pub mod reconcile;
pub mod scheduler;
pub mod select;
pub mod stack;
pub mod structs;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod view;

pub use env::{SchedEnv, SchedulerAlgorithm, SchedulerConfig};
pub use error::SchedError;
pub use plan_verify::{node_accepts, RejectReason};
pub use scheduler::process;
pub use view::{Candidates, StateView};
