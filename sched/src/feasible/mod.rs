//! Feasibility: one checker per constraint kind. Each rejects a node for a named reason, which
//! ends up in `MetricCount::ConstraintFiltered` under Nomad's key format.

mod constraint;
mod datacenter;
mod distinct;
mod driver;
mod pool;
mod ready;
mod target;
mod version;

pub use constraint::{reason_key, ConstraintChecker, Operator};
pub use datacenter::{glob_match, DatacenterChecker};
pub use distinct::{DistinctHostsChecker, DistinctPropertyChecker};
pub use driver::DriverChecker;
pub use pool::PoolChecker;
pub use ready::ReadyChecker;
pub use target::Target;
pub use version::{Version, VersionReq};
