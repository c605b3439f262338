//! The engine's face to the transports: what HTTP handlers and the client protocol may ask.
//!
//! `net` is generic over `Cluster`, so its handlers can be tested against a fake; the engine's
//! `Handle` is the real implementation. Reads go through `ReadView` (an immutable snapshot);
//! writes are async and resolve once committed through Raft.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use sched::structs::{Allocation, Evaluation, Job, Plan, SchedOutcome};
use sched::{SchedulerConfig, StateView};

use crate::client_proto::{ClientRequest, ClientResponse};
use crate::error::EngineError;

/// Per task group allocation counts (Nomad's JobSummary `Summary` entry).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskGroupSummary {
    pub queued: u64,
    pub complete: u64,
    pub failed: u64,
    pub running: u64,
    pub starting: u64,
    pub lost: u64,
    pub unknown: u64,
}

/// A job's allocation counts by task group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobSummary {
    pub job_id: String,
    pub namespace: String,
    pub summary: BTreeMap<String, TaskGroupSummary>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// The tables a blocking query can watch (Nomad's per-table indexes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Jobs,
    Nodes,
    Allocs,
    Evals,
}

/// Everything the API reads, at one Raft index.
pub trait ReadView: StateView {
    /// Returns the Raft index of the newest change to `table`. Views that do not track
    /// tables answer with the view's index.
    fn table_index(&self, table: Table) -> u64 {
        let _ = table;
        self.index()
    }
    /// Returns every job (current versions), ordered by (namespace, id).
    fn jobs(&self) -> Vec<&Job>;
    /// Returns the stored versions of a job, newest first.
    fn job_versions(&self, namespace: &str, job_id: &str) -> Vec<&Job>;
    /// Returns the allocation counts of a job.
    fn job_summary(&self, namespace: &str, job_id: &str) -> Option<JobSummary>;
    /// Returns the jobs (current versions) that `keep` accepts, each with its summary,
    /// ordered by (namespace, id).
    fn job_summaries(&self, keep: &dyn Fn(&Job) -> bool) -> Vec<(&Job, JobSummary)> {
        self.jobs()
            .into_iter()
            .filter(|j| keep(j))
            .filter_map(|j| Some((j, self.job_summary(&j.namespace, &j.id)?)))
            .collect()
    }
    /// Returns every allocation, ordered by id.
    fn allocs(&self) -> Vec<&Allocation>;
    fn alloc(&self, alloc_id: &str) -> Option<&Allocation>;
    fn allocs_by_eval(&self, eval_id: &str) -> Vec<&Allocation>;
    /// Returns every evaluation, ordered by id.
    fn evals(&self) -> Vec<&Evaluation>;
    fn eval(&self, eval_id: &str) -> Option<&Evaluation>;
    fn evals_by_job(&self, namespace: &str, job_id: &str) -> Vec<&Evaluation>;
    fn scheduler_config(&self) -> &SchedulerConfig;
    /// Returns the Raft index of the last scheduler configuration change (0: never set).
    fn scheduler_config_index(&self) -> u64 {
        0
    }
}

/// A job registration (`PUT /v1/jobs`).
#[derive(Clone, Debug)]
pub struct RegisterJob {
    /// The canonicalised, validated job.
    pub job: Job,
    /// Check-and-set: when set, the stored job's `job_modify_index` must equal this.
    pub enforce_index: Option<u64>,
    /// Priority of the created evaluation; `None` uses the job's.
    pub eval_priority: Option<u16>,
}

/// What a registration returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegisterJobReply {
    pub eval_id: String,
    pub eval_create_index: u64,
    pub job_modify_index: u64,
    pub index: u64,
    pub warnings: String,
}

/// What a write that creates an evaluation returns (deregister, evaluate).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EvalReply {
    pub eval_id: String,
    pub eval_create_index: u64,
    pub index: u64,
}

/// The dry-run result of `job plan`.
#[derive(Clone, Debug, Default)]
pub struct PlanReply {
    pub job_modify_index: u64,
    pub plan: Plan,
    pub outcome: SchedOutcome,
    /// Whether the submitted job differs from the stored one ("Added", "Edited", "None").
    pub diff_type: String,
    pub index: u64,
}

/// One server as gossip and Raft see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// `<name>.<region>`.
    pub name: String,
    pub addr: String,
    pub serf_port: u16,
    pub rpc_port: u16,
    pub region: String,
    pub datacenter: String,
    /// "alive", "leaving", "left" or "failed".
    pub status: String,
    pub id: String,
    pub bootstrap_expect: u32,
    pub leader: bool,
    pub voter: bool,
    /// `redundancy_zone` of the server (empty when unset).
    pub redundancy_zone: String,
    /// `upgrade_version` of the server (empty when unset).
    pub upgrade_version: String,
}

/// Leadership and membership as this server sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterStatus {
    pub region: String,
    pub datacenter: String,
    pub server_name: String,
    pub server_id: String,
    /// RPC address (`ip:port`) of the leader, empty when unknown.
    pub leader_rpc_addr: String,
    pub known_leader: bool,
    /// Milliseconds since this server last heard from the leader (0 on the leader).
    pub last_contact_ms: u64,
    /// RPC addresses of the voting servers.
    pub peers: Vec<String>,
    pub members: Vec<Member>,
    pub raft_term: u64,
    pub raft_applied_index: u64,
    pub raft_commit_index: u64,
    pub shards: usize,
    pub http_addr: String,
    pub rpc_addr: String,
    /// On the leader: the highest log index each peer is known to hold, by Raft id.
    pub peer_match_index: Vec<(String, u64)>,
    /// The servers in the Raft configuration (voters and non-voters), as this server sees it.
    pub raft_servers: Vec<Member>,
    /// Whether this server is the leader (and has applied everything committed before its
    /// term began, so its state is current).
    pub is_leader: bool,
}

/// A server's gossip status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemberStatus {
    Alive,
    /// Announced that it is leaving; becomes `Left` once that spread.
    Leaving,
    Left,
    /// Stopped answering probes.
    Failed,
}

impl MemberStatus {
    /// Nomad's lower-case name of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Alive => "alive",
            MemberStatus::Leaving => "leaving",
            MemberStatus::Left => "left",
            MemberStatus::Failed => "failed",
        }
    }
}

/// One server as the gossip pool knows it: what the engine needs to bootstrap Raft and keep
/// its membership in step with the servers that exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerInfo {
    /// The agent's `name` (without the region suffix).
    pub name: String,
    pub region: String,
    pub datacenter: String,
    /// The server's Raft id.
    pub raft_id: u64,
    /// Advertised RPC address, `ip:port`.
    pub rpc_addr: String,
    /// Advertised HTTP address, `ip:port`.
    pub http_addr: String,
    /// Gossip address, `ip:port`.
    pub serf_addr: String,
    pub status: MemberStatus,
    pub bootstrap_expect: u32,
    pub non_voter: bool,
    pub redundancy_zone: String,
    pub upgrade_version: String,
    pub build: String,
}

/// The server gossip pool. Implemented by `net`'s gossip; the engine reads it to bootstrap
/// Raft (`bootstrap_expect`) and to add, remove and clean up Raft peers.
///
/// Calls may block for a bounded time (network round trips); call them off the shard cores.
pub trait Membership: Send + Sync + 'static {
    /// Every server the pool knows of, this one included.
    fn members(&self) -> Vec<ServerInfo>;
    /// Contacts the servers at `addrs` (`host` or `host:port`, the serf port by default) and
    /// joins their pool. Returns how many answered; fails only when none did.
    fn join(&self, addrs: &[String]) -> Result<usize, String>;
    /// Marks a failed server as left so it is no longer counted; with `prune` it is forgotten
    /// at once. Unknown names are an error.
    fn force_leave(&self, name: &str, prune: bool) -> Result<(), String>;
    /// Announces that this server leaves and waits (bounded) for the news to spread.
    fn leave(&self) -> Result<(), String>;
}

/// The membership of a server that gossips with nobody: it knows only itself.
pub struct SoloMembership(pub ServerInfo);

impl Membership for SoloMembership {
    fn members(&self) -> Vec<ServerInfo> {
        vec![self.0.clone()]
    }
    fn join(&self, addrs: &[String]) -> Result<usize, String> {
        Err(format!(
            "gossip is not running on this server; cannot join {}",
            addrs.join(", ")
        ))
    }
    fn force_leave(&self, name: &str, _prune: bool) -> Result<(), String> {
        Err(format!("unknown server {name:?}"))
    }
    fn leave(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Autopilot settings as stored in the replicated state, with their Raft indexes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AutopilotState {
    pub config: crate::config::AutopilotConfig,
    pub create_index: u64,
    pub modify_index: u64,
}

/// One server's health as autopilot judges it (`/v1/operator/autopilot/health`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ServerHealth {
    pub id: String,
    pub name: String,
    pub address: String,
    /// Gossip status ("alive", "failed", ...).
    pub serf_status: String,
    pub version: String,
    pub leader: bool,
    pub voter: bool,
    pub last_contact_ms: u64,
    pub last_term: u64,
    pub last_index: u64,
    pub healthy: bool,
    /// Unix seconds since the server has been healthy (0 when it is not).
    pub stable_since_unix: u64,
}

/// The cluster's health as autopilot judges it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AutopilotHealth {
    pub healthy: bool,
    /// How many voters may fail before quorum is lost.
    pub failure_tolerance: u32,
    pub servers: Vec<ServerHealth>,
}

/// What the transports may ask of the engine. Implemented by `engine::Handle`.
///
/// Futures are `!Send`: they run on the shard executor that accepted the request.
#[allow(async_fn_in_trait)]
pub trait Cluster: Clone + 'static {
    type View: ReadView;

    /// Returns the latest published read view.
    fn view(&self) -> Rc<Self::View>;
    /// Waits until the read view's index exceeds `min_index` or `timeout` passes, then
    /// returns the latest view (Nomad's blocking query).
    async fn wait_for_index(&self, min_index: u64, timeout: Duration) -> Rc<Self::View>;
    /// Returns leadership and membership.
    fn status(&self) -> ClusterStatus;
    /// Reports whether this server leads (cheap: for hot paths).
    fn is_leader(&self) -> bool {
        self.status().is_leader
    }

    async fn register_job(&self, req: RegisterJob) -> Result<RegisterJobReply, EngineError>;
    async fn deregister_job(
        &self,
        namespace: &str,
        job_id: &str,
        purge: bool,
    ) -> Result<EvalReply, EngineError>;
    async fn evaluate_job(&self, namespace: &str, job_id: &str) -> Result<EvalReply, EngineError>;
    /// Launches a child of a periodic job now (`periodic force`).
    async fn periodic_force(
        &self,
        namespace: &str,
        job_id: &str,
    ) -> Result<EvalReply, EngineError> {
        let _ = (namespace, job_id);
        Err(EngineError::invalid(
            "job",
            "periodic launches are not served here",
        ))
    }
    /// Commits `payload` as one Raft write that changes no state and returns its index: the
    /// raw write test (`PUT /v1/operator/raft/write-test`), served only with `enable_debug`.
    async fn raft_write_test(&self, payload: Vec<u8>) -> Result<u64, EngineError> {
        let _ = payload;
        Err(EngineError::PermissionDenied {
            reason: "the Raft write test is not served here".to_string(),
        })
    }
    /// Replaces the scheduler configuration. With `cas`, only when the stored configuration's
    /// modify index equals it. Returns whether it was updated and the write's index.
    async fn set_scheduler_config(
        &self,
        config: SchedulerConfig,
        cas: Option<u64>,
    ) -> Result<(bool, u64), EngineError>;
    /// Sets a node's scheduling eligibility. Returns the write's index.
    async fn update_node_eligibility(
        &self,
        node_id: &str,
        eligible: bool,
    ) -> Result<u64, EngineError> {
        let _ = (node_id, eligible);
        Err(EngineError::invalid(
            "node",
            "eligibility changes are not served here",
        ))
    }
    /// Starts or cancels a node drain. Returns the created evaluation ids and the index.
    async fn update_node_drain(
        &self,
        node_id: &str,
        drain: Option<sched::structs::DrainStrategy>,
        mark_eligible: bool,
    ) -> Result<(Vec<String>, u64), EngineError> {
        let _ = (node_id, drain, mark_eligible);
        Err(EngineError::invalid("node", "drains are not served here"))
    }
    /// Handles a Raft message from another server.
    async fn raft_rpc(
        &self,
        rpc: crate::raft::network::RaftRpc,
    ) -> Result<crate::raft::network::RaftRpcReply, EngineError> {
        let _ = rpc;
        Err(EngineError::invalid("rpc", "raft is not served here"))
    }
    /// Joins the gossip pools of the servers at `addrs`; returns how many answered.
    async fn join_servers(&self, addrs: Vec<String>) -> Result<usize, EngineError> {
        let _ = addrs;
        Err(EngineError::invalid(
            "address",
            "joining is not served here",
        ))
    }
    /// Forces a failed server out of the pool (`server force-leave`); with `prune` it is
    /// forgotten at once.
    async fn force_leave(&self, name: &str, prune: bool) -> Result<(), EngineError> {
        let _ = (name, prune);
        Err(EngineError::invalid(
            "node",
            "force-leave is not served here",
        ))
    }
    /// Removes a server from the Raft configuration by id or by address (exactly one set).
    async fn remove_raft_peer(
        &self,
        id: Option<&str>,
        address: Option<&str>,
    ) -> Result<(), EngineError> {
        let _ = (id, address);
        Err(EngineError::invalid(
            "id",
            "removing peers is not served here",
        ))
    }
    /// Returns the autopilot configuration.
    fn autopilot_config(&self) -> AutopilotState {
        AutopilotState::default()
    }
    /// Replaces the autopilot configuration; with `cas`, only when the stored modify index
    /// equals it. Returns whether it was updated.
    async fn set_autopilot_config(
        &self,
        config: crate::config::AutopilotConfig,
        cas: Option<u64>,
    ) -> Result<bool, EngineError> {
        let _ = (config, cas);
        Err(EngineError::invalid(
            "autopilot",
            "autopilot is not served here",
        ))
    }
    /// Returns autopilot's view of every server's health.
    fn autopilot_health(&self) -> AutopilotHealth {
        AutopilotHealth::default()
    }
    /// Runs the scheduler on the current view without committing anything.
    async fn plan_job(&self, job: Job) -> Result<PlanReply, EngineError>;

    /// Handles one client-protocol request for a node.
    async fn client_request(&self, req: ClientRequest) -> ClientResponse;
    /// The maximum time a blocking query may wait.
    fn max_query_time(&self) -> Duration {
        Duration::from_secs(300)
    }
    /// Limits job registration sizes (`job_max_source_size`) in bytes.
    fn job_max_source_size(&self) -> usize {
        1024 * 1024
    }
    /// `job_default_priority` and `job_max_priority`.
    fn job_priority_bounds(&self) -> (u16, u16) {
        (50, 100)
    }
}
