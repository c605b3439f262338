//! The server side of the client protocol, run on the shard that owns the node.

use std::rc::Rc;
use std::time::{Duration, Instant};

use sched::structs::{triggers, Node, NodeStatus};
use tokio::sync::oneshot;

use super::shard::{node_evals, ShardCore, ALLOC_UPDATES_BATCH_MAX};
use crate::client_proto::{ClientRequest, ClientResponse, CLIENT_PROTOCOL_VERSION};
use crate::error::EngineError;
use crate::state::{ClusterState, Command, IdKey};

/// Longest a `GetAllocs` may block.
pub const GET_ALLOCS_WAIT_MAX: Duration = Duration::from_secs(300);

fn error(code: &str, message: impl Into<String>) -> ClientResponse {
    ClientResponse::Error {
        code: code.to_string(),
        message: message.into(),
    }
}

fn engine_error(e: &EngineError) -> ClientResponse {
    let code = match e {
        EngineError::Invalid { .. } => "invalid",
        EngineError::NotFound { .. } => "not_found",
        EngineError::Conflict { .. } => "conflict",
        EngineError::NoLeader => "no_leader",
        EngineError::NotLeader { .. } => "not_leader",
        EngineError::Overloaded { .. } => "overloaded",
        EngineError::Timeout { .. } => "timeout",
        EngineError::PermissionDenied { .. } => "permission_denied",
        EngineError::ShuttingDown => "shutting_down",
        EngineError::Fatal { .. } => "fatal",
    };
    error(code, e.to_string())
}

/// Handles a request for a node owned by `core`.
pub async fn handle_owned(core: &Rc<ShardCore>, req: ClientRequest) -> ClientResponse {
    match req {
        ClientRequest::Hello { version } => {
            if version != CLIENT_PROTOCOL_VERSION {
                return error("version", format!("client protocol {version} is not supported; server speaks {CLIENT_PROTOCOL_VERSION}"));
            }
            ClientResponse::Hello {
                version: CLIENT_PROTOCOL_VERSION,
                region: core.shared.config.region.clone(),
            }
        }
        ClientRequest::Register { node } => register(core, node).await,
        ClientRequest::Heartbeat { node_id, secret_id } => heartbeat(core, &node_id, &secret_id),
        ClientRequest::GetAllocs {
            node_id,
            secret_id,
            min_index,
            max_wait_ms,
        } => get_allocs(core, &node_id, &secret_id, min_index, max_wait_ms).await,
        ClientRequest::UpdateAllocs {
            node_id,
            secret_id,
            updates,
        } => {
            let state = core.state();
            if let Err(resp) = authenticate(&state, &node_id, &secret_id) {
                return resp;
            }
            if !core.is_leader.get() {
                return engine_error(&EngineError::NoLeader);
            }
            if updates.iter().any(|u| u.node_id != node_id) {
                return error(
                    "invalid",
                    "updates.node_id: every update must name the reporting node",
                );
            }
            let (tx, rx) = oneshot::channel();
            let full = {
                let mut batch = core.alloc_updates.borrow_mut();
                batch.updates.extend(updates);
                batch.waiters.push(tx);
                batch.updates.len() >= ALLOC_UPDATES_BATCH_MAX
            };
            if full {
                core.flush_alloc_updates();
            }
            match rx.await {
                Ok(Ok(index)) => ClientResponse::Updated { index },
                Ok(Err(e)) => engine_error(&e),
                Err(_) => engine_error(&EngineError::ShuttingDown),
            }
        }
    }
}

fn authenticate(
    state: &ClusterState,
    node_id: &str,
    secret_id: &str,
) -> Result<(), ClientResponse> {
    match state.node_by_id(node_id) {
        None => Err(error(
            "node_not_found",
            format!("node {node_id} is not registered"),
        )),
        Some(node) if node.secret_id != secret_id => Err(error(
            "permission_denied",
            format!("node {node_id}: secret does not match"),
        )),
        Some(_) => Ok(()),
    }
}

fn validate(node: &Node) -> Result<(), ClientResponse> {
    let problem = if node.id.is_empty() {
        Some("node.id: missing node ID")
    } else if node.secret_id.is_empty() {
        Some("node.secret_id: missing node secret ID")
    } else if node.datacenter.is_empty() {
        Some("node.datacenter: missing datacenter")
    } else if node.name.is_empty() {
        Some("node.name: missing node name")
    } else {
        None
    };
    match problem {
        Some(p) => Err(error("invalid", p)),
        None => Ok(()),
    }
}

fn ttl(core: &ShardCore, state: &ClusterState) -> Duration {
    core.heartbeat_config
        .client_ttl(state.nodes.len().max(1), &mut rand::thread_rng())
}

fn leader_rpc(core: &ShardCore) -> String {
    core.shared
        .status
        .read()
        .map(|s| s.leader_rpc_addr.clone())
        .unwrap_or_default()
}

async fn register(core: &Rc<ShardCore>, mut node: Node) -> ClientResponse {
    if let Err(resp) = validate(&node) {
        return resp;
    }
    if !core.is_leader.get() {
        return engine_error(&EngineError::NoLeader);
    }
    let state = core.state();
    if let Some(existing) = state.node_by_id(&node.id) {
        if existing.secret_id != node.secret_id {
            return error(
                "permission_denied",
                format!("node {}: secret does not match", node.id),
            );
        }
        // Keep what the servers own: eligibility and drain are set through the API.
        node.eligible = existing.eligible;
        node.drain = existing.drain.clone();
    }
    if node.node_pool.is_empty() {
        node.node_pool = sched::structs::DEFAULT_NODE_POOL.to_string();
    }
    if node.status != NodeStatus::Initializing {
        node.status = NodeStatus::Ready;
    }
    let unchanged = state.node_by_id(&node.id).is_some_and(|e| {
        let mut a = (**e).clone();
        a.create_index = 0;
        a.modify_index = 0;
        a.events.clear();
        a.status_updated_at_unix_s = 0;
        let mut b = node.clone();
        b.create_index = 0;
        b.modify_index = 0;
        b.events.clear();
        b.status_updated_at_unix_s = 0;
        a == b
    });
    let mut index = state.index;
    if !unchanged {
        let was_usable = state
            .node_by_id(&node.id)
            .is_some_and(|e| e.status == NodeStatus::Ready);
        let evals = if node.status == NodeStatus::Ready && !was_usable {
            node_evals(&state, &node.id, triggers::NODE_UPDATE, true)
        } else {
            Vec::new()
        };
        let node_id = node.id.clone();
        match core
            .propose(vec![Command::UpsertNode { node, evals }])
            .await
        {
            Ok(resp) => index = resp.index,
            Err(e) => return engine_error(&e),
        }
        tracing::debug!(node_id = %node_id, index, "node registered");
        return finish_register(core, &node_id, index);
    }
    finish_register(core, &node.id, index)
}

fn finish_register(core: &Rc<ShardCore>, node_id: &str, index: u64) -> ClientResponse {
    let state = core.state();
    let ttl = ttl(core, &state);
    core.heartbeats.borrow_mut().reset(
        node_id,
        Instant::now() + ttl + core.heartbeat_config.heartbeat_grace,
    );
    ClientResponse::Registered {
        heartbeat_ttl_ms: ttl.as_millis() as u64,
        index,
        leader_rpc_addr: leader_rpc(core),
    }
}

// PERF-CRITICAL: every heartbeat of every node lands here. No Raft, no allocation beyond the
// timer entry, no lock.
fn heartbeat(core: &Rc<ShardCore>, node_id: &str, secret_id: &str) -> ClientResponse {
    let state = core.state();
    if let Err(resp) = authenticate(&state, node_id, secret_id) {
        return resp;
    }
    if !core.is_leader.get() {
        return engine_error(&EngineError::NoLeader);
    }
    let node = state
        .node_by_id(node_id)
        .expect("authenticated node exists");
    if node.status != NodeStatus::Ready {
        core.nodes_back.borrow_mut().insert(node_id.to_string());
    }
    let ttl = ttl(core, &state);
    core.heartbeats.borrow_mut().reset(
        node_id,
        Instant::now() + ttl + core.heartbeat_config.heartbeat_grace,
    );
    ClientResponse::HeartbeatAck {
        heartbeat_ttl_ms: ttl.as_millis() as u64,
        leader_rpc_addr: leader_rpc(core),
    }
}

/// Returns the newest index at which the servers changed any allocation of the node.
fn node_alloc_index(state: &ClusterState, node_id: &str) -> u64 {
    state
        .node_alloc_index
        .get(&IdKey::new(node_id))
        .copied()
        .unwrap_or(0)
}

async fn get_allocs(
    core: &Rc<ShardCore>,
    node_id: &str,
    secret_id: &str,
    min_index: u64,
    max_wait_ms: u64,
) -> ClientResponse {
    let deadline = Instant::now() + Duration::from_millis(max_wait_ms).min(GET_ALLOCS_WAIT_MAX);
    let key = IdKey::new(node_id);
    // One timer for the whole call, however often it is woken.
    let mut timeout = std::pin::pin!(glommio::timer::sleep(
        deadline.saturating_duration_since(Instant::now())
    ));
    let state = loop {
        let state = core.state();
        if let Err(resp) = authenticate(&state, node_id, secret_id) {
            return resp;
        }
        if node_alloc_index(&state, node_id) > min_index || Instant::now() >= deadline {
            break state;
        }
        // A parked call must not hold the state it saw: thousands of calls parked at
        // different indexes would keep thousands of old versions of the state alive.
        drop(state);
        // Parked with no await since the state was read: the shard's watch task wakes this
        // call for any later state that changes the node's allocations or its record.
        let mut parked = core.alloc_watchers.park(key.clone());
        let woken = futures_lite::future::or(
            async {
                // A dropped sender (server stopping) also ends the wait.
                let _ = (&mut parked.woken).await;
                true
            },
            async {
                (&mut timeout).await;
                false
            },
        )
        .await;
        if !woken {
            core.alloc_watchers.cancel(&parked);
            let state = core.state();
            if let Err(resp) = authenticate(&state, node_id, secret_id) {
                return resp;
            }
            break state;
        }
    };
    let index = node_alloc_index(&state, node_id);
    // Only what changed since the client's index (everything on its first call): a node's
    // allocations are ordered by that index, so unchanged ones are not read.
    let allocs = state
        .node_allocs_changed_after(node_id, min_index)
        .filter(|a| !a.client_status.is_terminal())
        .map(|a| (**a).clone())
        .collect();
    ClientResponse::Allocs {
        index: index.max(min_index),
        allocs,
    }
}
