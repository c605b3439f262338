//! Typed messages between cores, and the state every core shares read-only.

use std::sync::{Arc, RwLock};

use sched::structs::{Evaluation, NodeStatus, Plan, PlanResult};
use tokio::sync::{mpsc, oneshot, watch};

use crate::api::ClusterStatus;
use crate::client_proto::{ClientRequest, ClientResponse};
use crate::config::AgentConfig;
use crate::error::EngineError;
use crate::raft::ApplyResponse;
use crate::state::{ClusterState, Command};

/// Requests the Raft core accepts.
pub enum RaftRequest {
    /// Commit these commands (batched with others into one entry).
    Write {
        commands: Vec<Command>,
        reply: oneshot::Sender<Result<ApplyResponse, EngineError>>,
    },
    /// Verify and commit a plan; `evals` commit with it only if every placement fits.
    Plan {
        plan: Plan,
        evals: Vec<Evaluation>,
        reply: oneshot::Sender<Result<PlanResult, EngineError>>,
    },
}

/// Messages a shard accepts.
#[allow(clippy::large_enum_variant)]
pub enum ShardMsg {
    /// A client request for a node this shard owns.
    Client {
        req: ClientRequest,
        reply: oneshot::Sender<ClientResponse>,
    },
    /// Pending evaluations of jobs this shard owns.
    Enqueue(Vec<Evaluation>),
    /// Blocked evaluations of jobs this shard owns.
    Block(Vec<Evaluation>),
    /// Capacity appeared somewhere: blocked evaluations may now fit.
    CapacityFreed,
    /// A node this shard owns changed status.
    NodeChanged { node_id: String, status: NodeStatus },
    /// This server gained or lost leadership.
    Leadership { is_leader: bool },
    /// Stop serving.
    Stop,
}

/// Depth of each shard's inbox.
pub const SHARD_INBOX_MAX: usize = 65_536;
/// Depth of the Raft core's inbox.
pub const RAFT_INBOX_MAX: usize = 65_536;

/// What every core may read: configuration, the published view, leadership, and the
/// senders of every inbox.
pub struct Shared {
    pub config: Arc<AgentConfig>,
    pub shards: usize,
    pub view: watch::Receiver<Arc<ClusterState>>,
    pub raft_tx: mpsc::Sender<RaftRequest>,
    pub shard_txs: Vec<mpsc::Sender<ShardMsg>>,
    pub status: RwLock<ClusterStatus>,
    /// `status.is_leader`, readable without the lock on hot paths.
    pub leading: std::sync::atomic::AtomicBool,
    pub http_addr: String,
    pub rpc_addr: String,
    /// Raft messages from peers, answered on the Raft core.
    pub raft_rpc_tx: mpsc::Sender<super::cluster::RaftRpcMsg>,
    /// Membership changes asked for by operators, carried out on the Raft core.
    pub admin_tx: mpsc::Sender<AdminMsg>,
    /// The server gossip pool.
    pub membership: Arc<dyn crate::api::Membership>,
}

/// Operator requests that the Raft core carries out.
pub enum AdminMsg {
    /// Removes a server from the Raft configuration, by id or by address.
    RemovePeer {
        id: Option<String>,
        address: Option<String>,
        reply: oneshot::Sender<Result<(), EngineError>>,
    },
}

impl Shared {
    /// Returns the shard that owns a node.
    pub fn node_shard(&self, node_id: &str) -> usize {
        node_owner(self.shards, node_id)
    }

    /// Returns the shard that owns a job and its evaluations.
    pub fn job_shard(&self, namespace: &str, job_id: &str) -> usize {
        job_owner(self.shards, namespace, job_id)
    }

    /// Reports whether this server leads with a current state and a valid lease.
    pub fn is_leader(&self) -> bool {
        self.leading.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Returns the autopilot configuration in force: the replicated one once an operator set
    /// it, else the agent's `autopilot {}` block.
    pub fn autopilot(&self) -> crate::api::AutopilotState {
        match &self.state().autopilot {
            Some((record, create, modify)) => crate::api::AutopilotState {
                config: record.into(),
                create_index: *create,
                modify_index: *modify,
            },
            None => crate::api::AutopilotState {
                config: self.config.autopilot.clone(),
                create_index: 0,
                modify_index: 0,
            },
        }
    }

    /// Returns the latest published state.
    pub fn state(&self) -> Arc<ClusterState> {
        self.view.borrow().clone()
    }

    /// Waits until a published state satisfies `ready` or `deadline` passes, and returns the
    /// newest state. Blocking queries, `GetAllocs` and plan retries all wait this way.
    pub async fn wait_for_state(
        &self,
        ready: impl Fn(&ClusterState) -> bool,
        deadline: std::time::Instant,
    ) -> Arc<ClusterState> {
        let mut view = self.view.clone();
        loop {
            let state = view.borrow_and_update().clone();
            let now = std::time::Instant::now();
            if ready(&state) || now >= deadline {
                return state;
            }
            let changed = view.changed();
            futures_lite::future::or(
                async {
                    changed.await.ok();
                },
                glommio::timer::sleep(deadline - now),
            )
            .await;
        }
    }
}

/// Returns which of `shards` owns a node.
pub fn node_owner(shards: usize, node_id: &str) -> usize {
    (fnv(node_id.as_bytes()) % shards as u64) as usize
}

/// Returns which of `shards` owns a job and its evaluations.
pub fn job_owner(shards: usize, namespace: &str, job_id: &str) -> usize {
    let mut h = fnv(namespace.as_bytes());
    // Hash the separator and the id on top, without building a joined string.
    for b in std::iter::once(&0u8).chain(job_id.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % shards as u64) as usize
}

/// FNV-1a: a stable hash, so ownership does not change between releases or restarts.
pub fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
