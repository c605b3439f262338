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

/// Follows openraft's metrics: tells shards about leadership and refreshes the status.
pub async fn watch_leadership(
    raft: Raft,
    shared: Arc<Shared>,
    is_leader: Rc<Cell<bool>>,
    server_id: u64,
) {
    let mut metrics = raft.metrics();
    let mut last_leader_contact = Instant::now();
    loop {
        let m = metrics.borrow_and_update().clone();
        let leading = m.state == ServerState::Leader && m.current_leader == Some(server_id);
        if m.current_leader.is_some() {
            last_leader_contact = Instant::now();
        }
        let members: Vec<Member> = m
            .membership_config
            .membership()
            .nodes()
            .map(|(id, node)| {
                let (addr, port) = split_addr(&node.addr);
                Member {
                    name: if *id == server_id {
                        format!("{}.{}", shared.config.name, shared.config.region)
                    } else {
                        format!("server-{id}.{}", shared.config.region)
                    },
                    addr,
                    serf_port: shared.config.ports.serf,
                    rpc_port: port,
                    region: shared.config.region.clone(),
                    datacenter: shared.config.datacenter.clone(),
                    status: "alive".into(),
                    id: id.to_string(),
                    bootstrap_expect: shared.config.server.bootstrap_expect,
                    leader: m.current_leader == Some(*id),
                    voter: m
                        .membership_config
                        .membership()
                        .get_joint_config()
                        .iter()
                        .any(|c| c.contains(id)),
                }
            })
            .collect();
        let leader_addr = m
            .current_leader
            .and_then(|l| {
                m.membership_config
                    .membership()
                    .get_node(&l)
                    .map(|n| n.addr.clone())
            })
            .unwrap_or_default();
        if let Ok(mut status) = shared.status.write() {
            status.known_leader = m.current_leader.is_some();
            status.leader_rpc_addr = leader_addr;
            status.last_contact_ms = if leading {
                0
            } else {
                last_leader_contact.elapsed().as_millis() as u64
            };
            status.peers = members
                .iter()
                .filter(|mb| mb.voter)
                .map(|mb| format!("{}:{}", mb.addr, mb.rpc_port))
                .collect();
            status.members = members;
            status.raft_term = m.current_term;
            status.raft_applied_index = m.last_applied.map_or(0, |l| l.index);
            status.raft_commit_index = m.last_log_index.unwrap_or(0);
        }
        if is_leader.replace(leading) != leading {
            tracing::info!(leading, term = m.current_term, "leadership changed");
            for tx in &shared.shard_txs {
                let _ = tx.send(ShardMsg::Leadership { is_leader: leading }).await;
            }
        }
        if metrics.changed().await.is_err() {
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

/// Takes a snapshot every `interval` when at least `threshold` entries were applied since the
/// last one (Nomad's `raft_snapshot_interval` and `raft_snapshot_threshold`).
pub async fn snapshot_timer(raft: Raft, interval: Duration, threshold: u64) {
    loop {
        // Jitter keeps the servers of a cluster from snapshotting at the same moment.
        let jitter = interval.mul_f64(rand::random::<f64>() * 0.1);
        glommio::timer::sleep(interval + jitter).await;
        let m = raft.metrics().borrow().clone();
        let applied = m.last_applied.map_or(0, |l| l.index);
        let snapshotted = m.snapshot.map_or(0, |l| l.index);
        if applied.saturating_sub(snapshotted) >= threshold {
            if let Err(e) = raft.trigger().snapshot().await {
                tracing::error!(error = %e, "snapshot trigger failed");
            }
        }
    }
}
