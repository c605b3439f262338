//! `StateImage`: the persisted form of the whole replicated state machine.

use std::sync::Arc;

use rkyv::with::{Map, Unshare};
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
    // The records are held by `Arc`, as the live state holds them, so building an image
    // shares them instead of copying the state (a million allocations would double the
    // server's memory for as long as a snapshot is written). `Unshare` archives each as the
    // record itself: the archive is the same as for a plain `Vec` of records.
    /// The current version of every job.
    #[rkyv(with = Map<Unshare>)]
    pub jobs: Vec<Arc<Job>>,
    /// Older versions kept for `job versions` and reverts.
    #[rkyv(with = Map<Unshare>)]
    pub job_versions: Vec<Arc<Job>>,
    #[rkyv(with = Map<Unshare>)]
    pub nodes: Vec<Arc<Node>>,
    #[rkyv(with = Map<Unshare>)]
    pub allocs: Vec<Arc<Allocation>>,
    #[rkyv(with = Map<Unshare>)]
    pub evals: Vec<Arc<Evaluation>>,
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
