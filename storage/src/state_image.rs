//! `StateImage`: the persisted form of the whole replicated state machine.

use std::sync::Arc;

use rkyv::with::{Map, Unshare};
use rkyv::{Archive, Deserialize, Serialize};
use sched::env::SchedulerConfig;
use sched::structs::{Allocation, ArchivedAllocation, Evaluation, Job, Node, SharedTexts};

/// Version of the `StateImage` layout. Bump it when a field is added, removed or changes type
/// (here or in the `sched` types it holds): an archive of another version is refused.
pub const STATE_IMAGE_FORMAT_VERSION: u32 = 9;

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

/// Most threads a decode spreads the allocations over.
const DECODE_THREADS_MAX: usize = 4;
/// Fewer allocations than this are decoded on the calling thread alone.
const DECODE_PARALLEL_MIN: usize = 20_000;

type Strategy = rkyv::api::high::HighDeserializer<rkyv::rancor::Error>;

fn records<T, A>(list: &[A]) -> Result<Vec<Arc<T>>, rkyv::rancor::Error>
where
    A: rkyv::Deserialize<T, Strategy>,
{
    list.iter()
        .map(|a| rkyv::deserialize::<T, rkyv::rancor::Error>(a).map(Arc::new))
        .collect()
}

/// Decodes allocation records, each pointed at one copy per text that they repeat (node
/// ids and names, evaluation and job ids) as soon as it is decoded: its own copies are then
/// freed before the next record is decoded, and the next record's reuse their blocks
/// instead of leaving a million small holes among the records that live on.
fn alloc_records(list: &[ArchivedAllocation]) -> Result<Vec<Arc<Allocation>>, rkyv::rancor::Error> {
    let mut texts = SharedTexts::default();
    list.iter()
        .map(|a| {
            let mut record = rkyv::deserialize::<Allocation, rkyv::rancor::Error>(a)?;
            record.share_texts(&mut texts);
            Ok(Arc::new(record))
        })
        .collect()
}

/// Deserializes a validated archive into a `StateImage`. The allocations, which are most of a
/// large state, are decoded in chunks on up to `DECODE_THREADS_MAX` threads (one per core)
/// while the calling thread decodes the rest; the result is the same as a one-thread decode.
pub fn deserialize_image(a: &ArchivedStateImage) -> Result<StateImage, rkyv::rancor::Error> {
    let allocs = a.allocs.as_slice();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, DECODE_THREADS_MAX);
    let threads = if allocs.len() < DECODE_PARALLEL_MIN {
        1
    } else {
        threads
    };
    let chunk = allocs.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        // Every chunk but the first goes to its own thread; the first is decoded here after
        // the small tables.
        let mut chunks = allocs.chunks(chunk);
        let first = chunks.next().unwrap_or(&[]);
        let spawned: Vec<_> = chunks
            .map(|part| {
                std::thread::Builder::new()
                    .name("drover-decode".into())
                    .spawn_scoped(scope, move || alloc_records(part))
                    .expect("spawning a decode thread")
            })
            .collect();
        let mut image = StateImage {
            format_version: a.format_version.to_native(),
            last_applied_index: a.last_applied_index.to_native(),
            jobs: records(a.jobs.as_slice())?,
            job_versions: records(a.job_versions.as_slice())?,
            nodes: records(a.nodes.as_slice())?,
            allocs: Vec::with_capacity(allocs.len()),
            evals: records(a.evals.as_slice())?,
            scheduler_config: rkyv::deserialize::<SchedulerConfig, rkyv::rancor::Error>(
                &a.scheduler_config,
            )?,
            scheduler_config_index: a.scheduler_config_index.to_native(),
            extra: rkyv::deserialize::<Vec<(String, Vec<u8>)>, rkyv::rancor::Error>(&a.extra)?,
        };
        image.allocs.extend(alloc_records(first)?);
        for handle in spawned {
            let part = handle.join().expect("a decode thread panicked")?;
            image.allocs.extend(part);
        }
        Ok(image)
    })
}
