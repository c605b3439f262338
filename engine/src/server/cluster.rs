//! The multi-server side of the Raft core: serving Raft messages from peers, bootstrapping
//! once `bootstrap_expect` servers are known, and (on the leader) keeping the Raft
//! configuration in step with the gossip pool, autopilot's dead-server cleanup included.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::{BasicNode, ChangeMembers, ServerState};
use tokio::sync::{mpsc, oneshot};

use super::messages::Shared;
use crate::api::{MemberStatus, Membership, ServerInfo};
use crate::error::EngineError;
use crate::raft::network::{PeerTransport, RaftRpc, RaftRpcReply};
use crate::raft::Raft;

/// A Raft message from a peer and where its answer goes.
pub type RaftRpcMsg = (RaftRpc, oneshot::Sender<RaftRpcReply>);

/// How often the bootstrap check and the leader's reconciliation run.
const RECONCILE_INTERVAL: Duration = Duration::from_millis(500);

/// When this server last heard from a leader (an accepted AppendEntries).
#[derive(Clone)]
pub struct LeaderContact(Rc<Cell<Option<Instant>>>);

impl LeaderContact {
    pub fn new() -> LeaderContact {
        LeaderContact(Rc::new(Cell::new(None)))
    }

    fn touch(&self) {
        self.0.set(Some(Instant::now()));
    }

    /// Time since the last contact; `None` if there never was one.
    pub fn elapsed(&self) -> Option<Duration> {
        self.0.get().map(|t| t.elapsed())
    }
}

impl Default for LeaderContact {
    fn default() -> Self {
        LeaderContact::new()
    }
}

/// Answers Raft messages from peers, one local task each so that a slow snapshot install does
/// not hold up heartbeats.
pub async fn serve_raft_rpcs(
    raft: Raft,
    mut rx: mpsc::Receiver<RaftRpcMsg>,
    contact: LeaderContact,
) {
    while let Some((rpc, reply)) = rx.recv().await {
        let raft = raft.clone();
        let contact = contact.clone();
        glommio::spawn_local(async move {
            let answer = match rpc {
                RaftRpc::AppendEntries(req) => {
                    let r = raft.append_entries(req).await;
                    if r.is_ok() {
                        contact.touch();
                    }
                    RaftRpcReply::AppendEntries(r)
                }
                RaftRpc::Vote(req) => RaftRpcReply::Vote(raft.vote(req).await),
                RaftRpc::InstallSnapshot(req) => {
                    let r = raft.install_snapshot(req).await;
                    if r.is_ok() {
                        contact.touch();
                    }
                    RaftRpcReply::InstallSnapshot(r)
                }
            };
            let _ = reply.send(answer);
        })
        .detach();
    }
}

fn same_region<'a>(
    members: &'a [ServerInfo],
    region: &'a str,
) -> impl Iterator<Item = &'a ServerInfo> + 'a {
    members.iter().filter(move |m| m.region == region)
}

/// Waits until `bootstrap_expect` voting servers of this region are alive in the pool, then
/// lets the one with the lowest Raft id write the first configuration with all of them.
/// Returns once this server's Raft is initialized (by itself or by a peer).
pub async fn bootstrap_when_expected<T: PeerTransport>(
    raft: Raft,
    shared: Arc<Shared>,
    membership: Arc<dyn Membership>,
    own_id: u64,
    transport: T,
) {
    let expect = shared.config.server.bootstrap_expect as usize;
    let mut logged_wait = false;
    loop {
        if raft.is_initialized().await.unwrap_or(false) {
            return;
        }
        let members = membership.members();
        let voters: Vec<&ServerInfo> = same_region(&members, &shared.config.region)
            .filter(|m| m.status == MemberStatus::Alive && !m.non_voter)
            .collect();
        let conflicting: Vec<&str> = voters
            .iter()
            .filter(|m| m.bootstrap_expect != 0 && m.bootstrap_expect as usize != expect)
            .map(|m| m.name.as_str())
            .collect();
        if !conflicting.is_empty() {
            tracing::error!(
                expect,
                servers = ?conflicting,
                "servers disagree on bootstrap_expect; not bootstrapping"
            );
        } else if voters.len() >= expect {
            let lowest = voters.iter().map(|m| m.raft_id).min().unwrap_or(own_id);
            // Never bootstrap next to an existing cluster (a server joining later with the same
            // bootstrap_expect): ask every other voter first; one that is already in a cluster,
            // or cannot be asked, means waiting to be added instead.
            let mut clear = true;
            if lowest == own_id {
                for m in voters.iter().filter(|m| m.raft_id != own_id) {
                    match transport.is_initialized(&m.rpc_addr).await {
                        Ok(false) => {}
                        Ok(true) => {
                            tracing::info!(server = %m.name, "a cluster exists already; waiting to be added to it instead of bootstrapping");
                            clear = false;
                            break;
                        }
                        Err(e) => {
                            tracing::debug!(server = %m.name, error = %e, "cannot ask a server before bootstrapping");
                            clear = false;
                            break;
                        }
                    }
                }
            }
            if lowest == own_id && clear {
                let nodes: BTreeMap<u64, BasicNode> = voters
                    .iter()
                    .map(|m| {
                        (
                            m.raft_id,
                            BasicNode {
                                addr: m.rpc_addr.clone(),
                            },
                        )
                    })
                    .collect();
                match raft.initialize(nodes.clone()).await {
                    Ok(()) => {
                        tracing::info!(servers = ?nodes.keys().collect::<Vec<_>>(), "bootstrapped the cluster");
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "bootstrap failed; retrying"),
                }
            }
        } else if !logged_wait {
            logged_wait = true;
            tracing::info!(
                expect,
                known = voters.len(),
                "waiting for bootstrap_expect servers to join"
            );
        }
        glommio::timer::sleep(RECONCILE_INTERVAL).await;
    }
}

/// What the leader's reconciliation remembers between rounds.
#[derive(Default)]
struct ReconcileMemory {
    /// When each Raft member was first seen failed or missing from the pool.
    dead_since: HashMap<u64, Instant>,
    /// Learners being caught up before promotion.
    promoting: BTreeSet<u64>,
}

/// Keeps the Raft configuration in step with the gossip pool while this server leads:
/// adds new servers (as learners, promoted to voters once caught up unless they are
/// non-voting), removes servers that left, and lets autopilot remove dead ones after
/// `server_stabilization_time` when `cleanup_dead_servers` is on and quorum allows it.
pub async fn reconcile_loop(
    raft: Raft,
    shared: Arc<Shared>,
    membership: Arc<dyn Membership>,
    own_id: u64,
    gossiping: bool,
) {
    let memory = Rc::new(RefCell::new(ReconcileMemory::default()));
    loop {
        glommio::timer::sleep(RECONCILE_INTERVAL).await;
        let m = raft.metrics().borrow().clone();
        if m.state != ServerState::Leader || !shared.is_leader() {
            memory.borrow_mut().dead_since.clear();
            continue;
        }
        let members = membership.members();
        if let Err(e) = reconcile_once(&raft, &shared, &members, own_id, gossiping, &memory).await {
            tracing::warn!(error = %e, "reconciling raft membership");
        }
    }
}

async fn reconcile_once(
    raft: &Raft,
    shared: &Arc<Shared>,
    members: &[ServerInfo],
    own_id: u64,
    gossiping: bool,
    memory: &Rc<RefCell<ReconcileMemory>>,
) -> Result<(), EngineError> {
    let m = raft.metrics().borrow().clone();
    let config = m.membership_config.membership().clone();
    let voters: BTreeSet<u64> = config.voter_ids().collect();
    let nodes: BTreeMap<u64, BasicNode> = config.nodes().map(|(i, n)| (*i, n.clone())).collect();
    let by_id: HashMap<u64, &ServerInfo> = same_region(members, &shared.config.region)
        .map(|s| (s.raft_id, s))
        .collect();

    // New servers and servers whose address changed.
    for info in by_id.values() {
        if info.status != MemberStatus::Alive || info.raft_id == own_id {
            continue;
        }
        match nodes.get(&info.raft_id) {
            None => {
                let id = info.raft_id;
                let node = BasicNode {
                    addr: info.rpc_addr.clone(),
                };
                tracing::info!(server = %info.name, id, addr = %node.addr, "adding server to raft");
                raft.add_learner(id, node, false)
                    .await
                    .map_err(|e| raft_err("adding a learner", e))?;
            }
            Some(node) if node.addr != info.rpc_addr => {
                tracing::info!(server = %info.name, addr = %info.rpc_addr, "server address changed");
                let change = BTreeMap::from([(
                    info.raft_id,
                    BasicNode {
                        addr: info.rpc_addr.clone(),
                    },
                )]);
                raft.change_membership(ChangeMembers::SetNodes(change), true)
                    .await
                    .map_err(|e| raft_err("updating an address", e))?;
            }
            Some(_) => {}
        }
    }

    // Learners that should vote: promote once their log caught up with the leader's.
    let last = m.last_log_index.unwrap_or(0);
    let matched: BTreeMap<u64, u64> = m
        .replication
        .as_ref()
        .map(|r| {
            r.iter()
                .map(|(id, l)| (*id, l.map_or(0, |l| l.index)))
                .collect()
        })
        .unwrap_or_default();
    let trailing = shared.autopilot().config.max_trailing_logs;
    let promote: BTreeSet<u64> = nodes
        .keys()
        .filter(|id| !voters.contains(id))
        .filter(|id| {
            by_id
                .get(id)
                .is_some_and(|s| s.status == MemberStatus::Alive && !s.non_voter)
        })
        .filter(|id| last.saturating_sub(matched.get(id).copied().unwrap_or(0)) <= trailing)
        .copied()
        .collect();
    if !promote.is_empty() {
        memory
            .borrow_mut()
            .promoting
            .extend(promote.iter().copied());
        tracing::info!(servers = ?promote, "promoting caught-up servers to voters");
        raft.change_membership(ChangeMembers::AddVoterIds(promote), true)
            .await
            .map_err(|e| raft_err("promoting voters", e))?;
    }

    // Servers that left, or (autopilot) stayed dead long enough.
    let autopilot = shared.autopilot().config;
    let now = Instant::now();
    let mut left = BTreeSet::new();
    let mut dead = BTreeSet::new();
    {
        let mut mem = memory.borrow_mut();
        for id in nodes.keys().filter(|id| **id != own_id) {
            let status = by_id.get(id).map(|s| s.status);
            match status {
                Some(MemberStatus::Left) => {
                    left.insert(*id);
                }
                Some(MemberStatus::Failed) | None if gossiping => {
                    let since = *mem.dead_since.entry(*id).or_insert(now);
                    if now.duration_since(since) >= autopilot.server_stabilization_time {
                        dead.insert(*id);
                    }
                }
                _ => {
                    mem.dead_since.remove(id);
                }
            }
        }
        mem.dead_since.retain(|id, _| nodes.contains_key(id));
    }
    if autopilot.cleanup_dead_servers && !dead.is_empty() {
        let dead_voters = dead.iter().filter(|id| voters.contains(id)).count();
        let remaining = voters.len() - dead_voters;
        // Never remove so many that the rest could not have formed a quorum of the old set,
        // and never go below min_quorum.
        if dead_voters * 2 >= voters.len() || (remaining as u32) < autopilot.min_quorum {
            tracing::warn!(
                dead = ?dead,
                voters = voters.len(),
                min_quorum = autopilot.min_quorum,
                "autopilot: not removing dead servers; too many would go at once"
            );
        } else {
            left.extend(dead);
        }
    }
    if !left.is_empty() {
        remove_servers(raft, &left, &voters).await?;
    }
    Ok(())
}

/// Removes servers from the Raft configuration: voters first, then their node entries.
pub async fn remove_servers(
    raft: &Raft,
    ids: &BTreeSet<u64>,
    voters: &BTreeSet<u64>,
) -> Result<(), EngineError> {
    tracing::info!(servers = ?ids, "removing servers from raft");
    let voting: BTreeSet<u64> = ids.intersection(voters).copied().collect();
    if !voting.is_empty() {
        raft.change_membership(ChangeMembers::RemoveVoters(voting), false)
            .await
            .map_err(|e| raft_err("removing voters", e))?;
    }
    let m = raft.metrics().borrow().clone();
    let still: BTreeSet<u64> = m
        .membership_config
        .membership()
        .nodes()
        .map(|(i, _)| *i)
        .filter(|i| ids.contains(i))
        .collect();
    if !still.is_empty() {
        raft.change_membership(ChangeMembers::RemoveNodes(still), false)
            .await
            .map_err(|e| raft_err("removing learners", e))?;
    }
    Ok(())
}

fn raft_err(what: &str, e: impl std::fmt::Display) -> EngineError {
    let text = e.to_string();
    if text.contains("ForwardToLeader") || text.contains("forward request to") {
        return EngineError::NoLeader;
    }
    EngineError::Fatal {
        reason: format!("{what}: {text}"),
    }
}

/// The leader's periodic lease check: confirms with a quorum that it still leads. A leader
/// cut off from the others stops acting as one (no scheduling, no node-downs, default reads
/// refused) once its lease ran out, instead of serving stale state.
pub async fn lease_loop(raft: Raft, lease_ok_at: Rc<Cell<Option<Instant>>>, interval: Duration) {
    loop {
        let leading = raft.metrics().borrow().state == ServerState::Leader;
        if leading {
            // Only the quorum round, not the wait for the apply to catch up: a busy state
            // machine must not cost the leadership. The lease counts from when the round
            // started, since the quorum's answers are at least that recent.
            let started = Instant::now();
            let confirmed =
                futures_lite::future::or(async { raft.get_read_log_id().await.is_ok() }, async {
                    glommio::timer::sleep(interval * 4).await;
                    false
                })
                .await;
            if confirmed {
                lease_ok_at.set(Some(started));
            }
        } else {
            lease_ok_at.set(None);
        }
        glommio::timer::sleep(interval).await;
    }
}

/// Carries out operator requests on the Raft core.
pub async fn serve_admin(raft: Raft, mut rx: mpsc::Receiver<super::messages::AdminMsg>) {
    while let Some(msg) = rx.recv().await {
        match msg {
            super::messages::AdminMsg::RemovePeer { id, address, reply } => {
                let raft = raft.clone();
                glommio::spawn_local(async move {
                    let _ = reply.send(remove_peer(&raft, id, address).await);
                })
                .detach();
            }
        }
    }
}

async fn remove_peer(
    raft: &Raft,
    id: Option<String>,
    address: Option<String>,
) -> Result<(), EngineError> {
    let m = raft.metrics().borrow().clone();
    if m.state != ServerState::Leader {
        return Err(EngineError::NoLeader);
    }
    let config = m.membership_config.membership().clone();
    let found = config.nodes().find(|(i, n)| match (&id, &address) {
        (Some(want), _) => i.to_string() == *want,
        (None, Some(addr)) => n.addr == *addr,
        (None, None) => false,
    });
    let Some((&target, _)) = found else {
        let (field, value) = match (&id, &address) {
            (Some(i), _) => ("id", i.clone()),
            (None, Some(a)) => ("address", a.clone()),
            (None, None) => ("id", String::new()),
        };
        return Err(EngineError::invalid(
            field,
            format!("{value:?} is not a server in the raft configuration"),
        ));
    };
    if target == m.id {
        return Err(EngineError::invalid(
            "id",
            "cannot remove the leader itself; stop it or transfer leadership first",
        ));
    }
    let voters: BTreeSet<u64> = config.voter_ids().collect();
    remove_servers(raft, &BTreeSet::from([target]), &voters).await
}

/// Judges every Raft server's health the way autopilot does: alive in the pool and, unless it
/// leads, no more than `max_trailing_logs` behind the leader's log.
pub fn autopilot_health(shared: &Shared) -> crate::api::AutopilotHealth {
    let status = shared.status.read().map(|s| s.clone()).unwrap_or_default();
    let autopilot = shared.autopilot().config;
    let last = status.raft_commit_index;
    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let servers: Vec<crate::api::ServerHealth> = status
        .raft_servers
        .iter()
        .map(|r| {
            let matched = if r.id == status.server_id {
                status.raft_applied_index.max(last)
            } else {
                status
                    .peer_match_index
                    .iter()
                    .find(|(id, _)| *id == r.id)
                    .map_or(0, |(_, i)| *i)
            };
            let alive = r.status == "alive";
            let healthy =
                alive && (r.leader || last.saturating_sub(matched) <= autopilot.max_trailing_logs);
            crate::api::ServerHealth {
                id: r.id.clone(),
                name: r.name.clone(),
                address: format!("{}:{}", r.addr, r.rpc_port),
                serf_status: r.status.clone(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                leader: r.leader,
                voter: r.voter,
                last_contact_ms: if r.leader {
                    0
                } else {
                    status.last_contact_ms.min(u64::MAX / 2)
                },
                last_term: status.raft_term,
                last_index: matched,
                healthy,
                stable_since_unix: if healthy { now_unix } else { 0 },
            }
        })
        .collect();
    let voters = servers.iter().filter(|s| s.voter).count();
    let healthy_voters = servers.iter().filter(|s| s.voter && s.healthy).count();
    let quorum = voters / 2 + 1;
    crate::api::AutopilotHealth {
        healthy: servers.iter().all(|s| s.healthy),
        failure_tolerance: healthy_voters.saturating_sub(quorum) as u32,
        servers,
    }
}
