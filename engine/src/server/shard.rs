//! One shard: the state a shard core owns and the loops that run on it.
//!
//! A shard owns the heartbeat timers of the nodes that hash to it and the broker of the jobs
//! that hash to it. `ShardCore` is built inside the shard's executor and holds `Rc`/`RefCell`,
//! so it cannot leave its core; other cores reach it only through `ShardMsg`.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sched::structs::{triggers, EvalStatus, Evaluation, JobType, NodeStatus};
use tokio::sync::{mpsc, oneshot};

use super::alloc_watch::AllocWatchers;
use super::broker::EvalBroker;
use super::heartbeat::{HeartbeatConfig, HeartbeatTable};
use super::messages::{RaftRequest, ShardMsg, Shared};
use crate::client_proto::AllocUpdate;
use crate::error::EngineError;
use crate::raft::ApplyResponse;
use crate::state::{ClusterState, Command, NodeStatusUpdate};

/// How often a shard checks heartbeat deadlines and flushes its batches.
pub const SHARD_TICK: Duration = Duration::from_millis(50);
/// Client allocation updates buffered per shard before a flush is forced.
pub const ALLOC_UPDATES_BATCH_MAX: usize = 16_384;

/// Client allocation updates waiting for the next flush, with their waiters.
#[derive(Default)]
pub struct AllocUpdateBatch {
    pub updates: Vec<AllocUpdate>,
    pub waiters: Vec<oneshot::Sender<Result<u64, EngineError>>>,
}

/// The state one shard owns.
pub struct ShardCore {
    pub id: usize,
    pub shared: Arc<Shared>,
    pub broker: EvalBroker,
    pub heartbeats: RefCell<HeartbeatTable>,
    pub heartbeat_config: HeartbeatConfig,
    pub is_leader: Cell<bool>,
    pub alloc_updates: RefCell<AllocUpdateBatch>,
    /// Nodes seen alive again while marked down: their status goes back to ready.
    pub nodes_back: RefCell<BTreeSet<String>>,
    pub capacity_freed: Cell<bool>,
    pub stopped: Cell<bool>,
    /// The blocking `GetAllocs` calls parked on this shard.
    pub alloc_watchers: AllocWatchers,
}

impl ShardCore {
    /// Builds the core of shard `id`. Call on the shard's own executor.
    pub fn new(id: usize, shared: Arc<Shared>) -> Rc<ShardCore> {
        let s = &shared.config.server;
        let heartbeat_config = HeartbeatConfig {
            min_heartbeat_ttl: s.min_heartbeat_ttl,
            max_heartbeats_per_second: s.max_heartbeats_per_second,
            heartbeat_grace: s.heartbeat_grace,
            failover_heartbeat_ttl: s.failover_heartbeat_ttl,
        };
        Rc::new(ShardCore {
            id,
            shared,
            broker: EvalBroker::default(),
            heartbeats: RefCell::new(HeartbeatTable::default()),
            heartbeat_config,
            is_leader: Cell::new(false),
            alloc_updates: RefCell::new(AllocUpdateBatch::default()),
            nodes_back: RefCell::new(BTreeSet::new()),
            capacity_freed: Cell::new(false),
            stopped: Cell::new(false),
            alloc_watchers: AllocWatchers::default(),
        })
    }

    /// Returns the latest published state.
    pub fn state(&self) -> Arc<ClusterState> {
        self.shared.state()
    }

    /// Commits commands through the Raft core.
    pub async fn propose(&self, commands: Vec<Command>) -> Result<ApplyResponse, EngineError> {
        let (reply, rx) = oneshot::channel();
        self.shared
            .raft_tx
            .try_send(RaftRequest::Write { commands, reply })
            .map_err(|_| EngineError::Overloaded {
                what: "raft inbox",
                limit: super::messages::RAFT_INBOX_MAX,
            })?;
        rx.await.map_err(|_| EngineError::ShuttingDown)?
    }

    /// Reports whether this shard owns a job.
    pub fn owns_job(&self, namespace: &str, job_id: &str) -> bool {
        self.shared.job_shard(namespace, job_id) == self.id
    }

    /// Reports whether this shard owns a node.
    pub fn owns_node(&self, node_id: &str) -> bool {
        self.shared.node_shard(node_id) == self.id
    }

    /// Reacts to a message from another core.
    pub fn handle(self: &Rc<Self>, msg: ShardMsg) {
        match msg {
            ShardMsg::Client { req, reply } => {
                let core = self.clone();
                glommio::spawn_local(async move {
                    let resp = super::client::handle_owned(&core, req).await;
                    let _ = reply.send(resp);
                })
                .detach();
            }
            ShardMsg::Enqueue(evals) => {
                for eval in evals {
                    if self.scheduler_enabled(eval.job_type) {
                        self.broker.enqueue(eval);
                    }
                }
            }
            ShardMsg::Block(evals) => {
                for eval in evals {
                    self.broker.block(eval);
                }
            }
            ShardMsg::CapacityFreed => self.capacity_freed.set(true),
            ShardMsg::NodeChanged { node_id, status } => {
                if !self.is_leader.get() {
                    return;
                }
                match status {
                    NodeStatus::Down | NodeStatus::Disconnected => {
                        self.heartbeats.borrow_mut().remove(&node_id)
                    }
                    _ => {
                        if !self.heartbeats.borrow().contains(&node_id) {
                            let ttl = self.heartbeat_config.min_heartbeat_ttl * 2
                                + self.heartbeat_config.heartbeat_grace;
                            self.heartbeats
                                .borrow_mut()
                                .reset(&node_id, Instant::now() + ttl);
                        }
                    }
                }
            }
            ShardMsg::Leadership { is_leader } => self.set_leader(is_leader),
            ShardMsg::Stop => {
                self.stopped.set(true);
                self.broker.set_enabled(false);
            }
        }
    }

    /// Reports whether this server runs the scheduler for a job type (`enabled_schedulers`).
    pub fn scheduler_enabled(&self, job_type: JobType) -> bool {
        let enabled = &self.shared.config.server.enabled_schedulers;
        enabled.is_empty() || enabled.iter().any(|s| s == job_type.as_str())
    }

    /// Takes or gives up leadership duties: the broker and the heartbeat timers.
    pub fn set_leader(self: &Rc<Self>, is_leader: bool) {
        if self.is_leader.replace(is_leader) == is_leader {
            return;
        }
        if !is_leader {
            self.broker.set_enabled(false);
            self.heartbeats.borrow_mut().clear();
            return;
        }
        let state = self.state();
        if self.id == 0 && state.scheduler_config_index == 0 {
            self.bootstrap_scheduler_config();
        }
        // Every node gets `failover_heartbeat_ttl` to find the new leader before anything is
        // marked down.
        let deadline = Instant::now() + self.heartbeat_config.failover_heartbeat_ttl;
        {
            let mut table = self.heartbeats.borrow_mut();
            table.clear();
            for node in state.nodes.values() {
                if self.owns_node(&node.id) && !node.is_down() {
                    table.reset(&node.id, deadline);
                }
            }
        }
        let mine = state.evals.values().filter(|e| {
            self.owns_job(&e.namespace, &e.job_id) && self.scheduler_enabled(e.job_type)
        });
        self.broker.restore(mine.map(|e| &**e));
        let (ready, _, blocked) = self.broker.stats();
        tracing::info!(
            shard = self.id,
            ready,
            blocked,
            nodes = self.heartbeats.borrow().len(),
            "leadership duties restored"
        );
    }

    /// Writes `default_scheduler_config` once, when the cluster has never had one set.
    /// Later changes go through the API; the config file no longer applies.
    fn bootstrap_scheduler_config(self: &Rc<Self>) -> bool {
        let Some(config) = self.shared.config.server.default_scheduler_config.clone() else {
            return false;
        };
        let core = self.clone();
        glommio::spawn_local(async move {
            let cmd = Command::SetSchedulerConfig {
                config,
                cas: Some(0),
            };
            match core.propose(vec![cmd]).await {
                Ok(_) => tracing::info!("default_scheduler_config applied"),
                Err(e) => tracing::error!(error = %e, "could not apply default_scheduler_config"),
            }
        })
        .detach();
        true
    }

    /// Runs the periodic duties: heartbeat expiry, batched client updates, unblocking.
    pub async fn tick_loop(self: Rc<Self>) {
        while !self.stopped.get() {
            glommio::timer::sleep(SHARD_TICK).await;
            if !self.is_leader.get() {
                continue;
            }
            self.expire_heartbeats();
            self.broker.promote_due(super::proposer::now_unix_ns());
            self.flush_nodes_back();
            self.flush_alloc_updates();
            if self.capacity_freed.replace(false) {
                let n = self.broker.unblock_all();
                if n > 0 {
                    tracing::debug!(
                        shard = self.id,
                        unblocked = n,
                        "capacity freed; blocked evaluations released"
                    );
                }
            }
        }
    }

    fn expire_heartbeats(self: &Rc<Self>) {
        let expired = self.heartbeats.borrow_mut().expire(Instant::now());
        if expired.is_empty() {
            return;
        }
        let state = self.state();
        let mut updates = Vec::new();
        let mut evals = Vec::new();
        for node_id in expired {
            let Some(node) = state.node_by_id(&node_id) else {
                continue;
            };
            if node.is_down() {
                continue;
            }
            tracing::warn!(node_id = %node_id, node = %node.name, "node missed its heartbeat; marking it down");
            updates.push(NodeStatusUpdate {
                node_id: node_id.clone(),
                status: NodeStatus::Down,
                description: "node heartbeat missed".into(),
            });
            evals.extend(node_evals(&state, &node_id, triggers::NODE_UPDATE, false));
        }
        if updates.is_empty() {
            return;
        }
        let core = self.clone();
        glommio::spawn_local(async move {
            if let Err(e) = core
                .propose(vec![Command::UpdateNodeStatus { updates, evals }])
                .await
            {
                tracing::error!(error = %e, "could not mark nodes down");
            }
        })
        .detach();
    }

    fn flush_nodes_back(self: &Rc<Self>) {
        let back: Vec<String> = std::mem::take(&mut *self.nodes_back.borrow_mut())
            .into_iter()
            .collect();
        if back.is_empty() {
            return;
        }
        let state = self.state();
        let mut evals = Vec::new();
        let updates: Vec<NodeStatusUpdate> = back
            .into_iter()
            .map(|node_id| {
                evals.extend(node_evals(&state, &node_id, triggers::NODE_UPDATE, true));
                NodeStatusUpdate {
                    node_id,
                    status: NodeStatus::Ready,
                    description: "node heartbeat resumed".into(),
                }
            })
            .collect();
        let core = self.clone();
        glommio::spawn_local(async move {
            if let Err(e) = core
                .propose(vec![Command::UpdateNodeStatus { updates, evals }])
                .await
            {
                tracing::error!(error = %e, "could not mark nodes ready");
            }
        })
        .detach();
    }

    /// Flushes buffered client allocation updates as one command.
    pub fn flush_alloc_updates(self: &Rc<Self>) {
        let batch = std::mem::take(&mut *self.alloc_updates.borrow_mut());
        if batch.updates.is_empty() {
            return;
        }
        let state = self.state();
        let evals = failure_evals(&state, &batch.updates);
        let core = self.clone();
        glommio::spawn_local(async move {
            let result = core
                .propose(vec![Command::UpdateAllocsFromClient {
                    updates: batch.updates,
                    evals,
                }])
                .await
                .map(|r| r.index);
            for waiter in batch.waiters {
                let _ = waiter.send(result.clone());
            }
        })
        .detach();
    }
}

/// Returns a fresh pending evaluation.
pub fn new_eval(
    namespace: &str,
    job_id: &str,
    job_type: JobType,
    priority: u16,
    triggered_by: &str,
) -> Evaluation {
    Evaluation::new(
        sched::structs::new_id(&mut rand::thread_rng()),
        namespace,
        job_id,
        job_type,
        priority,
        triggered_by,
        EvalStatus::Pending,
        0,
    )
}

/// Returns the evaluations a node status change triggers: one per job with live allocations
/// on the node, and (when the node becomes usable) one per system job.
pub fn node_evals(
    state: &ClusterState,
    node_id: &str,
    trigger: &str,
    usable: bool,
) -> Vec<Evaluation> {
    let mut jobs: BTreeSet<(String, String)> = BTreeSet::new();
    for a in state.node_allocs(node_id) {
        if !a.is_terminal() {
            jobs.insert((a.namespace.to_string(), a.job_id.to_string()));
        }
    }
    if usable {
        for job in state.jobs.values() {
            if matches!(job.job_type, JobType::System | JobType::SysBatch) && !job.stop {
                jobs.insert((job.namespace.clone(), job.id.clone()));
            }
        }
    }
    jobs.into_iter()
        .filter_map(|(ns, id)| {
            let job = state.jobs.get(&(ns.clone(), id.clone()))?;
            let mut eval = new_eval(&ns, &id, job.job_type, job.priority, trigger);
            eval.node_id = node_id.to_string();
            Some(eval)
        })
        .collect()
}

/// Returns one `alloc-failure` evaluation per job with a newly failed allocation.
fn failure_evals(state: &ClusterState, updates: &[AllocUpdate]) -> Vec<Evaluation> {
    let mut jobs: BTreeSet<(String, String)> = BTreeSet::new();
    for u in updates {
        if u.client_status != sched::structs::ClientStatus::Failed {
            continue;
        }
        if let Some(a) = state.alloc_by_id(&u.alloc_id) {
            if a.client_status != sched::structs::ClientStatus::Failed {
                jobs.insert((a.namespace.to_string(), a.job_id.to_string()));
            }
        }
    }
    jobs.into_iter()
        .filter_map(|(ns, id)| {
            let job = state.jobs.get(&(ns.clone(), id.clone()))?;
            Some(new_eval(
                &ns,
                &id,
                job.job_type,
                job.priority,
                triggers::ALLOC_FAILURE,
            ))
        })
        .collect()
}

/// Serves a shard's inbox until `Stop`.
pub async fn inbox_loop(core: Rc<ShardCore>, mut inbox: mpsc::Receiver<ShardMsg>) {
    while let Some(msg) = inbox.recv().await {
        let stop = matches!(msg, ShardMsg::Stop);
        core.handle(msg);
        if stop {
            break;
        }
    }
}
