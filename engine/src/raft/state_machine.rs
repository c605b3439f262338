//! openraft's state machine: applies committed entries to `ClusterState`, publishes read
//! views, and builds and installs rkyv snapshots through `storage::SnapshotStore`.

use std::cell::RefCell;
use std::io::Cursor;
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, EntryPayload, ErrorSubject, ErrorVerb, LogId, RaftSnapshotBuilder, Snapshot,
    SnapshotMeta, StorageIOError, StoredMembership,
};
use storage::{SnapshotStore, StateImage};

use super::types::{ApplyResponse, StorageError, TypeConfig};
use crate::state::{ApplyEffects, ClusterState, CommandEnvelope};

/// Receives what each applied batch changed; the leader services implement it.
pub trait ApplyListener {
    /// Called after a batch of entries is applied and the new view is published.
    fn applied(&self, state: &Arc<ClusterState>, effects: ApplyEffects);
}

fn sm_err(verb: ErrorVerb, e: impl ToString) -> StorageError {
    StorageError::IO {
        source: StorageIOError::new(
            ErrorSubject::StateMachine,
            verb,
            openraft::AnyError::error(e.to_string()),
        ),
    }
}

fn snap_err(verb: ErrorVerb, e: impl ToString) -> StorageError {
    StorageError::IO {
        source: StorageIOError::new(
            ErrorSubject::Snapshot(None),
            verb,
            openraft::AnyError::error(e.to_string()),
        ),
    }
}

/// The FSM as openraft sees it. Lives on the Raft core only.
pub struct StateMachine {
    state: ClusterState,
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
    snapshots: Arc<SnapshotStore>,
    listener: Rc<dyn ApplyListener>,
    /// Published after every applied batch; shards read it.
    view: Rc<RefCell<Arc<ClusterState>>>,
    /// The snapshot header read at open, answered without the payload to the first
    /// `get_current_snapshot`: openraft (0.9) makes that call from `Raft::new`, before any
    /// replication can start, and keeps only the meta of its answer, so copying hundreds of
    /// megabytes of payload for it would only delay the start.
    opened_meta: Option<SnapshotMeta<u64, BasicNode>>,
}

/// The snapshot header the engine stores inside `storage::SnapshotMeta::membership`.
#[derive(serde::Serialize, serde::Deserialize)]
struct SnapshotHeader {
    meta: SnapshotMeta<u64, BasicNode>,
}

impl StateMachine {
    /// Opens the state machine from the newest snapshot on disk, if any.
    pub fn open(
        snapshots: Arc<SnapshotStore>,
        job_tracked_versions: usize,
        listener: Rc<dyn ApplyListener>,
    ) -> Result<StateMachine, String> {
        let mut sm = StateMachine {
            state: ClusterState::new(job_tracked_versions),
            last_applied: None,
            membership: StoredMembership::default(),
            snapshots,
            listener,
            view: Rc::new(RefCell::new(Arc::new(ClusterState::new(
                job_tracked_versions,
            )))),
            opened_meta: None,
        };
        if let Some((meta, image)) = sm.snapshots.latest().map_err(|e| e.to_string())? {
            let header: SnapshotHeader = serde_json::from_slice(&meta.membership)
                .map_err(|e| format!("snapshot header: {e}"))?;
            let started = std::time::Instant::now();
            let allocs = image.allocs.len();
            sm.opened_meta = Some(header.meta.clone());
            sm.install_image(header.meta, image);
            tracing::info!(
                allocs,
                build_ms = started.elapsed().as_millis() as u64,
                "state built from the snapshot"
            );
        }
        Ok(sm)
    }

    /// Returns the cell the newest view is published in.
    pub fn view_cell(&self) -> Rc<RefCell<Arc<ClusterState>>> {
        self.view.clone()
    }

    fn install_image(&mut self, meta: SnapshotMeta<u64, BasicNode>, image: StateImage) {
        self.state = state_from_image(image, self.state.job_tracked_versions);
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership;
        self.publish(ApplyEffects::default());
    }

    fn publish(&self, effects: ApplyEffects) {
        let view = Arc::new(self.state.clone());
        *self.view.borrow_mut() = view.clone();
        self.listener.applied(&view, effects);
    }
}

/// Name of the autopilot configuration among a snapshot's extra sections.
const AUTOPILOT_EXTRA: &str = "autopilot";

/// Name of the periodic launch records among a snapshot's extra sections.
const PERIODIC_LAUNCHES_EXTRA: &str = "periodic_launches";

/// Builds the in-memory state from a snapshot image.
pub fn state_from_image(image: StateImage, job_tracked_versions: usize) -> ClusterState {
    let mut state = ClusterState::new(job_tracked_versions);
    state.applying = image.last_applied_index;
    for job in image.job_versions {
        state.put_job(Arc::unwrap_or_clone(job));
    }
    for job in image.jobs {
        state.put_job(Arc::unwrap_or_clone(job));
    }
    for node in image.nodes {
        state.put_node(Arc::unwrap_or_clone(node));
    }
    state.load_allocs(image.allocs);
    for eval in image.evals {
        state.put_eval(Arc::unwrap_or_clone(eval));
    }
    state.scheduler_config = image.scheduler_config;
    state.scheduler_config_index = image.scheduler_config_index;
    for (name, bytes) in &image.extra {
        if name == AUTOPILOT_EXTRA {
            match serde_json::from_slice(bytes) {
                Ok(record) => state.autopilot = Some(record),
                Err(e) => {
                    tracing::error!(error = %e, "snapshot: undecodable autopilot configuration")
                }
            }
        }
        if name == PERIODIC_LAUNCHES_EXTRA {
            match serde_json::from_slice::<Vec<crate::state::PeriodicLaunch>>(bytes) {
                Ok(launches) => {
                    for l in launches {
                        state
                            .periodic_launches
                            .insert((l.namespace.clone(), l.job_id.clone()), l);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "snapshot: undecodable periodic launches")
                }
            }
        }
    }
    state.index = image.last_applied_index;
    state.table_indexes = [image.last_applied_index; 4];
    state
}

/// Copies the state into its persisted form.
pub fn image_from_state(state: &ClusterState) -> StateImage {
    let mut job_versions = Vec::new();
    for versions in state.job_versions.values() {
        let n = versions.len();
        job_versions.extend(versions.iter().take(n.saturating_sub(1)).cloned());
    }
    StateImage {
        format_version: storage::STATE_IMAGE_FORMAT_VERSION,
        last_applied_index: state.index,
        jobs: state.jobs.values().cloned().collect(),
        job_versions,
        nodes: state.nodes.values().cloned().collect(),
        allocs: state.allocs.values().cloned().collect(),
        evals: state.evals.values().cloned().collect(),
        scheduler_config: state.scheduler_config.clone(),
        scheduler_config_index: state.scheduler_config_index,
        extra: state
            .autopilot
            .iter()
            .map(|a| {
                (
                    AUTOPILOT_EXTRA.to_string(),
                    serde_json::to_vec(a).expect("autopilot record encodes"),
                )
            })
            .chain((!state.periodic_launches.is_empty()).then(|| {
                let launches: Vec<_> = state.periodic_launches.values().collect();
                (
                    PERIODIC_LAUNCHES_EXTRA.to_string(),
                    serde_json::to_vec(&launches).expect("periodic launches encode"),
                )
            }))
            .collect(),
    }
}

/// Runs a blocking job on a fresh OS thread and awaits its result without blocking the core.
/// Snapshot threads still running, so that a graceful stop can let a snapshot being written
/// finish: abandoning it would leave the next start to replay up to two snapshot intervals of
/// log instead of one.
static SNAPSHOT_THREADS: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// Counts one snapshot thread for as long as it lives, panics included.
struct SnapshotThread;

impl SnapshotThread {
    fn start() -> SnapshotThread {
        *SNAPSHOT_THREADS.0.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        SnapshotThread
    }
}

impl Drop for SnapshotThread {
    fn drop(&mut self) {
        let mut running = SNAPSHOT_THREADS.0.lock().unwrap_or_else(|e| e.into_inner());
        *running = running.saturating_sub(1);
        SNAPSHOT_THREADS.1.notify_all();
    }
}

/// Waits, up to `limit`, for snapshot threads of this process to finish; returns whether
/// none is left.
pub fn wait_for_snapshot_threads(limit: Duration) -> bool {
    let running = SNAPSHOT_THREADS.0.lock().unwrap_or_else(|e| e.into_inner());
    if *running > 0 {
        tracing::info!(
            running = *running,
            "waiting for the snapshot being written to finish"
        );
    }
    let (running, _) = SNAPSHOT_THREADS
        .1
        .wait_timeout_while(running, limit, |n| *n > 0)
        .unwrap_or_else(|e| e.into_inner());
    *running == 0
}

async fn off_core<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let counted = SnapshotThread::start();
    std::thread::Builder::new()
        .name("drover-snapshot".into())
        .spawn(move || {
            let _counted = counted;
            let _ = tx.send(f());
        })
        .expect("spawning the snapshot thread");
    rx.await.expect("snapshot thread ended without answering")
}

/// Builds a snapshot from a frozen copy of the state.
pub struct SnapshotBuilder {
    state: ClusterState,
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
    snapshots: Arc<SnapshotStore>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let last = self.last_applied;
        let snapshot_id = match last {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, now_ms()),
            None => format!("0-0-{}", now_ms()),
        };
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: self.membership.clone(),
            snapshot_id: snapshot_id.clone(),
        };
        let header = serde_json::to_vec(&SnapshotHeader { meta: meta.clone() })
            .map_err(|e| snap_err(ErrorVerb::Write, e))?;
        let store_meta = storage::SnapshotMeta {
            last_index: last.map_or(0, |l| l.index),
            last_term: last.map_or(0, |l| l.leader_id.term),
            snapshot_id,
            membership: header,
        };
        let state = self.state.clone();
        let snapshots = self.snapshots.clone();
        let started = std::time::Instant::now();
        let info = off_core(move || -> Result<storage::SnapshotInfo, String> {
            let image = image_from_state(&state);
            snapshots
                .write(&store_meta, &image)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| snap_err(ErrorVerb::Write, e))?;
        tracing::info!(
            index = meta.last_log_id.map_or(0, |l| l.index),
            bytes = info.payload_bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "snapshot written"
        );
        // openraft keeps only the meta of a snapshot it asked for (0.9: the state machine
        // worker answers `BuildSnapshot` with `snap.meta`); a follower is sent the file,
        // read back by `get_current_snapshot`. So no copy of the archive is held here.
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(Vec::new())),
        })
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyResponse>, StorageError>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>>,
    {
        let mut effects = ApplyEffects::default();
        let mut responses = Vec::new();
        for entry in entries {
            let index = entry.log_id.index;
            self.last_applied = Some(entry.log_id);
            let results = match entry.payload {
                EntryPayload::Blank => Vec::new(),
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                    Vec::new()
                }
                EntryPayload::Normal(payload) => {
                    let envelope = match payload.decoded.take() {
                        Some(envelope) => envelope,
                        None => CommandEnvelope::decode(&payload.bytes)
                            .map_err(|e| sm_err(ErrorVerb::Read, format!("entry {index}: {e}")))?,
                    };
                    self.state.apply(index, envelope, &mut effects)
                }
            };
            if self.state.index < index {
                // Blank and membership entries advance the applied index too.
                self.state.index = index;
            }
            responses.push(ApplyResponse { index, results });
        }
        self.publish(effects);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // A newer snapshot is coming: the header read at open is no longer the latest.
        self.opened_meta = None;
        SnapshotBuilder {
            state: self.state.clone(),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        self.opened_meta = None;
        let bytes = snapshot.into_inner();
        let header = serde_json::to_vec(&SnapshotHeader { meta: meta.clone() })
            .map_err(|e| snap_err(ErrorVerb::Write, e))?;
        let store_meta = storage::SnapshotMeta {
            last_index: meta.last_log_id.map_or(0, |l| l.index),
            last_term: meta.last_log_id.map_or(0, |l| l.leader_id.term),
            snapshot_id: meta.snapshot_id.clone(),
            membership: header,
        };
        let snapshots = self.snapshots.clone();
        let image = off_core(move || -> Result<StateImage, String> {
            let image = SnapshotStore::decode(&bytes).map_err(|e| e.to_string())?;
            snapshots
                .write_bytes(&store_meta, &bytes)
                .map_err(|e| e.to_string())?;
            Ok(image)
        })
        .await
        .map_err(|e| snap_err(ErrorVerb::Write, e))?;
        self.install_image(meta.clone(), image);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        if let Some(meta) = self.opened_meta.take() {
            return Ok(Some(Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(Vec::new())),
            }));
        }
        let snapshots = self.snapshots.clone();
        let latest = off_core(move || snapshots.latest_bytes().map_err(|e| e.to_string()))
            .await
            .map_err(|e| snap_err(ErrorVerb::Read, e))?;
        let Some((store_meta, bytes)) = latest else {
            return Ok(None);
        };
        let header: SnapshotHeader = serde_json::from_slice(&store_meta.membership)
            .map_err(|e| snap_err(ErrorVerb::Read, e))?;
        Ok(Some(Snapshot {
            meta: header.meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}

#[cfg(test)]
mod snapshot_thread_tests {
    use std::time::Duration;

    use super::{wait_for_snapshot_threads, SnapshotThread};

    #[test]
    fn a_stop_waits_for_a_running_snapshot_thread_and_no_longer_than_its_limit() {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (finish_tx, finish_rx) = std::sync::mpsc::channel::<()>();
        let writer = std::thread::spawn(move || {
            let _counted = SnapshotThread::start();
            started_tx.send(()).unwrap();
            let _ = finish_rx.recv();
            std::thread::sleep(Duration::from_millis(50));
        });
        started_rx.recv().unwrap();
        assert!(
            !wait_for_snapshot_threads(Duration::from_millis(20)),
            "a running snapshot thread is waited for, up to the limit"
        );
        finish_tx.send(()).unwrap();
        assert!(
            wait_for_snapshot_threads(Duration::from_secs(30)),
            "the wait ends when the thread does"
        );
        writer.join().unwrap();
    }
}
