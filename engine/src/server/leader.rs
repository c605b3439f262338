//! Leadership on the Raft core: routes what each apply changed to the shards that own it,
//! follows openraft's metrics to tell the shards when this server leads, keeps the status
//! every core reads, and triggers snapshots on `raft_snapshot_interval`.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::ServerState;
use tokio::sync::{mpsc, watch};

use super::cluster::LeaderContact;
use super::messages::{ShardMsg, Shared};
use crate::api::Member;
use crate::raft::state_machine::ApplyListener;
use crate::raft::Raft;
use crate::state::{ApplyEffects, ClusterState};

/// Publishes views and routes apply effects to shards. Lives on the Raft core.
pub struct Router {
    pub view_tx: watch::Sender<Arc<ClusterState>>,
    pub shard_txs: Vec<mpsc::Sender<ShardMsg>>,
    pub is_leader: Rc<Cell<bool>>,
    pub shards: usize,
}

impl Router {
    fn send(&self, shard: usize, msg: ShardMsg) {
        let tx = &self.shard_txs[shard];
        if let Err(mpsc::error::TrySendError::Full(msg)) = tx.try_send(msg) {
            // Effects are derived from committed entries and must not be lost: wait for room.
            let tx = tx.clone();
            glommio::spawn_local(async move {
                let _ = tx.send(msg).await;
            })
            .detach();
        }
    }

    fn job_shard(&self, namespace: &str, job_id: &str) -> usize {
        super::messages::job_owner(self.shards, namespace, job_id)
    }
}

impl ApplyListener for Router {
    fn applied(&self, state: &Arc<ClusterState>, effects: ApplyEffects) {
        self.view_tx.send_replace(state.clone());
        if !self.is_leader.get() {
            return;
        }
        let mut enqueue: BTreeMap<usize, Vec<_>> = BTreeMap::new();
        for eval in effects.pending_evals {
            enqueue
                .entry(self.job_shard(&eval.namespace, &eval.job_id))
                .or_default()
                .push(eval);
        }
        for (shard, evals) in enqueue {
            self.send(shard, ShardMsg::Enqueue(evals));
        }
        let mut block: BTreeMap<usize, Vec<_>> = BTreeMap::new();
        for eval in effects.blocked_evals {
            block
                .entry(self.job_shard(&eval.namespace, &eval.job_id))
                .or_default()
                .push(eval);
        }
        for (shard, evals) in block {
            self.send(shard, ShardMsg::Block(evals));
        }
        for (node_id, status) in effects.node_changes {
            let shard = super::messages::node_owner(self.shards, &node_id);
            self.send(shard, ShardMsg::NodeChanged { node_id, status });
        }
        if effects.capacity_freed {
            for shard in 0..self.shards {
                self.send(shard, ShardMsg::CapacityFreed);
            }
        }
    }
}

/// What `watch_leadership` needs besides the Raft handle.
pub struct LeadershipInputs {
    pub shared: Arc<Shared>,
    pub is_leader: Rc<Cell<bool>>,
    pub server_id: u64,
    /// When a quorum last confirmed this server's leadership (see `cluster::lease_loop`).
    pub lease_ok_at: Rc<Cell<Option<Instant>>>,
    /// When a leader last reached this server.
    pub contact: LeaderContact,
    /// How long a leadership confirmation stays valid, and how long a follower trusts a
    /// leader it has not heard from.
    pub lease: Duration,
}

/// How often leadership and status are re-evaluated when nothing else changes.
const STATUS_REFRESH: Duration = Duration::from_millis(100);

/// Follows openraft's metrics: tells shards about leadership and refreshes the status.
///
/// This server counts as leading only when openraft says so, it has applied every entry up to
/// the first one of its term (so brokers and heartbeat timers are restored from a current
/// state), and a quorum confirmed its leadership within the lease. A leader cut off from the
/// others therefore stops scheduling and marking nodes down within one lease.
pub async fn watch_leadership(raft: Raft, inputs: LeadershipInputs) {
    let LeadershipInputs {
        shared,
        is_leader,
        server_id,
        lease_ok_at,
        contact,
        lease,
    } = inputs;
    let mut metrics = raft.metrics();
    // The last log index when this server became leader: its own first entry of the term.
    let mut barrier: Option<(u64, u64)> = None;
    loop {
        let m = metrics.borrow_and_update().clone();
        let raft_leader = m.state == ServerState::Leader && m.current_leader == Some(server_id);
        if raft_leader {
            if barrier.map(|(term, _)| term) != Some(m.current_term) {
                barrier = Some((m.current_term, m.last_log_index.unwrap_or(0)));
            }
        } else {
            barrier = None;
        }
        let applied = m.last_applied.map_or(0, |l| l.index);
        let caught_up = barrier.is_some_and(|(_, idx)| applied >= idx);
        let lease_valid = lease_ok_at.get().is_some_and(|t| t.elapsed() <= lease);
        let leading = raft_leader && caught_up && lease_valid;
        let since_contact = contact.elapsed();
        let follower_knows = m.current_leader.is_some()
            && !raft_leader
            && since_contact.is_some_and(|d| d <= lease * 2);
        let known_leader = leading || follower_knows;
        let membership = m.membership_config.membership();
        let raft_servers: Vec<Member> = membership
            .nodes()
            .map(|(id, node)| {
                let (addr, port) = split_addr(&node.addr);
                Member {
                    redundancy_zone: String::new(),
                    upgrade_version: String::new(),
                    name: String::new(),
                    addr,
                    serf_port: shared.config.ports.serf,
                    rpc_port: port,
                    region: shared.config.region.clone(),
                    datacenter: String::new(),
                    status: "alive".into(),
                    id: id.to_string(),
                    bootstrap_expect: 0,
                    leader: m.current_leader == Some(*id) && known_leader,
                    voter: membership.get_joint_config().iter().any(|c| c.contains(id)),
                }
            })
            .collect();
        let gossip = shared.membership.members();
        let raft_servers: Vec<Member> = raft_servers
            .into_iter()
            .map(|mut r| {
                if let Some(g) = gossip.iter().find(|g| g.raft_id.to_string() == r.id) {
                    r.name = format!("{}.{}", g.name, g.region);
                    r.datacenter = g.datacenter.clone();
                    r.status = g.status.as_str().to_string();
                    r.bootstrap_expect = g.bootstrap_expect;
                    r.redundancy_zone = g.redundancy_zone.clone();
                    r.upgrade_version = g.upgrade_version.clone();
                } else if r.id == server_id.to_string() {
                    r.name = format!("{}.{}", shared.config.name, shared.config.region);
                    r.datacenter = shared.config.datacenter.clone();
                    r.redundancy_zone = shared.config.server.redundancy_zone.clone();
                    r.upgrade_version = shared.config.server.upgrade_version.clone();
                } else {
                    r.name = format!("server-{}.{}", r.id, shared.config.region);
                }
                r
            })
            .collect();
        let members: Vec<Member> = gossip
            .iter()
            .map(|g| {
                let (addr, _) = split_addr(&g.serf_addr);
                let (_, rpc_port) = split_addr(&g.rpc_addr);
                let (_, serf_port) = split_addr(&g.serf_addr);
                let raft = raft_servers.iter().find(|r| r.id == g.raft_id.to_string());
                Member {
                    redundancy_zone: g.redundancy_zone.clone(),
                    upgrade_version: g.upgrade_version.clone(),
                    name: format!("{}.{}", g.name, g.region),
                    addr,
                    serf_port,
                    rpc_port,
                    region: g.region.clone(),
                    datacenter: g.datacenter.clone(),
                    status: g.status.as_str().to_string(),
                    id: g.raft_id.to_string(),
                    bootstrap_expect: g.bootstrap_expect,
                    leader: raft.is_some_and(|r| r.leader),
                    voter: raft.is_some_and(|r| r.voter),
                }
            })
            .collect();
        let leader_addr = m
            .current_leader
            .filter(|_| known_leader)
            .and_then(|l| membership.get_node(&l).map(|n| n.addr.clone()))
            .unwrap_or_default();
        if let Ok(mut status) = shared.status.write() {
            status.known_leader = known_leader;
            status.is_leader = leading;
            status.leader_rpc_addr = leader_addr;
            status.last_contact_ms = if leading {
                0
            } else {
                since_contact.map_or(u64::MAX, |d| d.as_millis() as u64)
            };
            status.peers = raft_servers
                .iter()
                .filter(|mb| mb.voter)
                .map(|mb| format!("{}:{}", mb.addr, mb.rpc_port))
                .collect();
            status.members = members;
            status.raft_servers = raft_servers;
            status.peer_match_index = m
                .replication
                .as_ref()
                .map(|r| {
                    r.iter()
                        .map(|(id, l)| (id.to_string(), l.map_or(0, |l| l.index)))
                        .collect()
                })
                .unwrap_or_default();
            status.raft_term = m.current_term;
            status.raft_applied_index = applied;
            status.raft_commit_index = m.last_log_index.unwrap_or(0);
        }
        shared
            .leading
            .store(leading, std::sync::atomic::Ordering::Release);
        if is_leader.replace(leading) != leading {
            tracing::info!(leading, term = m.current_term, "leadership changed");
            for tx in &shared.shard_txs {
                let _ = tx.send(ShardMsg::Leadership { is_leader: leading }).await;
            }
        }
        let changed = futures_lite::future::or(async { metrics.changed().await.is_ok() }, async {
            glommio::timer::sleep(STATUS_REFRESH).await;
            true
        })
        .await;
        if !changed {
            return;
        }
    }
}

fn split_addr(addr: &str) -> (String, u16) {
    match addr.rsplit_once(':') {
        Some((host, port)) => (host.to_string(), port.parse().unwrap_or(0)),
        None => (addr.to_string(), 0),
    }
}

/// The snapshot settings a config reload may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotTuning {
    /// `raft_snapshot_interval`.
    pub interval: Duration,
    /// `raft_snapshot_threshold`.
    pub threshold: u64,
    /// `raft_trailing_logs`.
    pub trailing_logs: u64,
}

/// Log bytes appended since the last snapshot that make the next check take one, whatever
/// the entry count: drover's entries carry whole batches of plans, so a count threshold
/// alone lets the log grow to gigabytes, and a restart would replay all of it.
pub const SNAPSHOT_LOG_BYTES: u64 = 128 * 1024 * 1024;
/// How often the timer checks the byte trigger between `raft_snapshot_interval` rounds.
const SNAPSHOT_BYTES_CHECK: Duration = Duration::from_secs(5);

/// Decides whether a check takes a snapshot: something new was applied since the last one,
/// and either the byte trigger fired or this is an interval round with `threshold` entries.
fn snapshot_due(
    by_bytes: bool,
    round: bool,
    applied: u64,
    snapshotted: u64,
    threshold: u64,
) -> bool {
    let by_count = round && applied.saturating_sub(snapshotted) >= threshold;
    (by_bytes || by_count) && applied > snapshotted
}

/// Takes a snapshot every `interval` when at least `threshold` entries were applied since the
/// last one (Nomad's `raft_snapshot_interval` and `raft_snapshot_threshold`), or at the next
/// 5-second check once `SNAPSHOT_LOG_BYTES` were appended to the log since the last one; then
/// purges the log up to `trailing_logs` entries before the snapshot. The settings are re-read
/// from `tuning` every round, so a reload takes effect without a restart.
pub async fn snapshot_timer(
    raft: Raft,
    tuning: watch::Receiver<SnapshotTuning>,
    store: storage::LogStore,
    bytes_at_snapshot: Rc<Cell<u64>>,
) {
    let mut next_round = Instant::now();
    loop {
        let t = *tuning.borrow();
        if Instant::now() >= next_round {
            // Jitter keeps the servers of a cluster from snapshotting at the same moment.
            let jitter = t.interval.mul_f64(rand::random::<f64>() * 0.1);
            next_round = Instant::now() + t.interval + jitter;
        }
        glommio::timer::sleep(
            SNAPSHOT_BYTES_CHECK.min(next_round.saturating_duration_since(Instant::now())),
        )
        .await;
        let t = *tuning.borrow();
        let appended = store.stats().appended_bytes;
        let by_bytes = appended.saturating_sub(bytes_at_snapshot.get()) >= SNAPSHOT_LOG_BYTES;
        let round = Instant::now() >= next_round;
        if !by_bytes && !round {
            continue;
        }
        let m = raft.metrics().borrow().clone();
        let applied = m.last_applied.map_or(0, |l| l.index);
        let snapshotted = m.snapshot.map_or(0, |l| l.index);
        if snapshot_due(by_bytes, round, applied, snapshotted, t.threshold) {
            bytes_at_snapshot.set(appended);
            tracing::info!(
                applied,
                snapshotted,
                appended_mib = appended / (1024 * 1024),
                by_bytes,
                "taking a snapshot"
            );
            if let Err(e) = raft.trigger().snapshot().await {
                tracing::error!(error = %e, "snapshot trigger failed");
                continue;
            }
            // Wait (bounded) for the snapshot to be built before purging behind it.
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                let now = raft.metrics().borrow().snapshot.map_or(0, |l| l.index);
                if now > snapshotted {
                    break;
                }
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
        let m = raft.metrics().borrow().clone();
        let snap = m.snapshot.map_or(0, |l| l.index);
        let purged = m.purged.map_or(0, |l| l.index);
        let upto = snap.saturating_sub(t.trailing_logs);
        if upto > purged {
            if let Err(e) = raft.trigger().purge_log(upto).await {
                tracing::error!(error = %e, "log purge failed");
            }
        }
    }
}

/// Log bytes appended since the last snapshot below which a graceful stop never takes one.
const STOP_SNAPSHOT_BYTES: u64 = 4 * 1024 * 1024;

/// Decides whether a graceful stop takes a snapshot first: something was applied since the
/// last one, and the log after it is long enough that replaying it on the next start would
/// cost more than writing a snapshot now. Replaying a byte of log (decode, apply through
/// every index) costs about twice what writing a byte of snapshot does (measured at a
/// million allocations: ~30 ms per MiB replayed, ~14 ms per MB written), so the log must be
/// at least half the size of the last snapshot; a stop is part of a restart's downtime too.
fn stop_snapshot_due(
    applied: u64,
    snapshotted: u64,
    bytes_since: u64,
    snapshot_bytes: u64,
) -> bool {
    applied > snapshotted && bytes_since >= STOP_SNAPSHOT_BYTES.max(snapshot_bytes / 2)
}

/// On a graceful stop, once nothing more is proposed: writes a snapshot of everything applied
/// when the log since the last one would take longer to replay than the snapshot takes to
/// write, and waits for it (up to `wait`), so the next start restores the snapshot and
/// replays no log. A crash still replays the log after the last periodic snapshot. Returns
/// whether a snapshot covering everything applied exists.
pub async fn snapshot_before_stop(
    raft: &Raft,
    store: &storage::LogStore,
    snapshots: &storage::SnapshotStore,
    bytes_at_snapshot: &Cell<u64>,
    wait: Duration,
) -> bool {
    let m = raft.metrics().borrow().clone();
    let applied = m.last_applied.map_or(0, |l| l.index);
    let mut snapshotted = m.snapshot.map_or(0, |l| l.index);
    let bytes_since = store
        .stats()
        .appended_bytes
        .saturating_sub(bytes_at_snapshot.get());
    let snapshot_bytes = snapshots.latest_file_bytes().ok().flatten().unwrap_or(0);
    if !stop_snapshot_due(applied, snapshotted, bytes_since, snapshot_bytes) {
        if applied > snapshotted {
            tracing::info!(
                applied,
                snapshotted,
                log_mib = bytes_since / (1024 * 1024),
                snapshot_mib = snapshot_bytes / (1024 * 1024),
                "stopping without a snapshot: the log after the last one is short"
            );
        }
        return applied <= snapshotted;
    }
    let started = Instant::now();
    tracing::info!(
        applied,
        snapshotted,
        "stopping: writing a snapshot so the next start replays no log"
    );
    let deadline = started + wait;
    let mut trigger = true;
    while Instant::now() < deadline {
        if trigger {
            if let Err(e) = raft.trigger().snapshot().await {
                tracing::warn!(error = %e, "stopping: snapshot trigger failed");
                return false;
            }
            trigger = false;
        }
        glommio::timer::sleep(Duration::from_millis(20)).await;
        let now = raft.metrics().borrow().snapshot.map_or(0, |l| l.index);
        if now >= applied {
            tracing::info!(
                index = now,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "stopping: snapshot written"
            );
            return true;
        }
        // A snapshot that was already being built finished short of `applied`: ask again.
        if now > snapshotted {
            snapshotted = now;
            trigger = true;
        }
    }
    tracing::warn!(
        ?wait,
        "stopping without a snapshot of everything applied; the next start replays the log"
    );
    false
}

#[cfg(test)]
mod snapshot_due_test {
    use super::{snapshot_due, stop_snapshot_due, STOP_SNAPSHOT_BYTES};

    #[test]
    fn a_stop_snapshots_only_a_log_long_against_the_last_snapshot_with_something_new() {
        let mib = 1024 * 1024;
        // Nothing applied since the last snapshot: never.
        assert!(!stop_snapshot_due(10, 10, u64::MAX, 0));
        assert!(!stop_snapshot_due(10, 20, u64::MAX, 0));
        // No snapshot yet: the log must reach the floor.
        assert!(!stop_snapshot_due(100, 0, STOP_SNAPSHOT_BYTES - 1, 0));
        assert!(stop_snapshot_due(100, 0, STOP_SNAPSHOT_BYTES, 0));
        // A large snapshot: the log must reach half its size.
        assert!(!stop_snapshot_due(5, 4, 299 * mib, 600 * mib));
        assert!(stop_snapshot_due(5, 4, 300 * mib, 600 * mib));
    }

    #[test]
    fn bytes_trigger_between_rounds_count_only_on_rounds_and_never_without_news() {
        // Between rounds only the byte trigger counts.
        assert!(snapshot_due(true, false, 100, 50, 8192));
        assert!(!snapshot_due(false, false, 100_000, 0, 8192));
        // On a round the entry threshold counts too.
        assert!(snapshot_due(false, true, 9000, 0, 8192));
        assert!(!snapshot_due(false, true, 9000, 1000, 8192));
        // Nothing new since the last snapshot: never.
        assert!(!snapshot_due(true, true, 50, 50, 0));
    }
}
