//! `StateImage`: the persisted form of the whole replicated state machine.

use rkyv::{Archive, Deserialize, Serialize};
use sched::env::SchedulerConfig;
use sched::structs::{Allocation, Evaluation, Job, Node};

/// Version of the `StateImage` layout. Bump it when a field is added, removed or changes type
/// (here or in the `sched` types it holds): an archive of another version is refused.
pub const STATE_IMAGE_FORMAT_VERSION: u32 = 3;

/// Everything the state machine holds at `last_applied_index`.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StateImage {
    /// `STATE_IMAGE_FORMAT_VERSION` of the writer.
    pub format_version: u32,
    pub last_applied_index: u64,
    /// The current version of every job.
    pub jobs: Vec<Job>,
    /// Older versions kept for `job versions` and reverts.
    pub job_versions: Vec<Job>,
    pub nodes: Vec<Node>,
    pub allocs: Vec<Allocation>,
    pub evals: Vec<Evaluation>,
    pub scheduler_config: SchedulerConfig,
    pub scheduler_config_index: u64,
    /// State owned by engine parts that this crate does not model, by name, as opaque bytes.
    pub extra: Vec<(String, Vec<u8>)>,
}

impl Default for StateImage {
    fn default() -> Self {
        StateImage {
            format_version: STATE_IMAGE_FORMAT_VERSION,
            last_applied_index: 0,
            jobs: Vec::new(),
            job_versions: Vec::new(),
            nodes: Vec::new(),
            allocs: Vec::new(),
            evals: Vec::new(),
            scheduler_config: SchedulerConfig::default(),
            scheduler_config_index: 0,
            extra: Vec::new(),
        }
    }
}
