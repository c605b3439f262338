//! The replicated state machine: its data (`ClusterState`), its commands, and its apply.

mod apply;
mod cluster_state;
mod command;
mod id_key;
mod sorted_keys;

pub use apply::{ApplyEffects, CommandResult, NODE_EVENTS_MAX};
pub use cluster_state::{changed_after, changed_at, ClusterState, JobKey, NodeAllocKey};
pub use command::{
    Command, CommandEnvelope, NodeStatusUpdate, PeriodicLaunch, PlanApply, COMMAND_FORMAT_VERSION,
};
pub use id_key::IdKey;
pub use sorted_keys::SortedKeys;
