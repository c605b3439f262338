//! The Raft core's proposer: batches writes and verified plans into few large log entries.
//!
//! Requests from every shard arrive on one inbox. The proposer takes what is queued, verifies
//! each plan against the newest applied state plus the plans accepted into entries still in
//! flight, and proposes one entry for the lot. Up to `RAFT_ENTRIES_IN_FLIGHT_MAX` entries
//! replicate and fsync at once while the next batch is being verified (pipelining).

// PERF-CRITICAL: every write and placement of the cluster passes through this loop.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;

use openraft::error::{ClientWriteError, RaftError};
use sched::structs::{Evaluation, PlanResult};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::messages::RaftRequest;
use super::plan_apply::{verify_plan, PendingUsage};
use super::rejections::RejectionTracker;
use crate::error::EngineError;
use crate::raft::{ApplyResponse, Raft, RaftPayload};
use crate::state::{ClusterState, Command, CommandEnvelope, PlanApply};

/// Requests folded into one entry at most.
pub const RAFT_BATCH_REQUESTS_MAX: usize = 4096;
/// Entries proposed but not yet applied, at most.
pub const RAFT_ENTRIES_IN_FLIGHT_MAX: usize = 4;

enum Pending {
    Write {
        range: std::ops::Range<usize>,
        reply: oneshot::Sender<Result<ApplyResponse, EngineError>>,
    },
    Plan {
        result: PlanResult,
        reply: oneshot::Sender<Result<PlanResult, EngineError>>,
    },
}

/// Maps openraft's write error to the engine's.
pub fn write_error(e: RaftError<u64, ClientWriteError<u64, openraft::BasicNode>>) -> EngineError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => match f.leader_node {
            Some(node) => EngineError::NotLeader {
                leader: Some(node.addr),
            },
            None => EngineError::NoLeader,
        },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => EngineError::Conflict {
            message: c.to_string(),
        },
        RaftError::Fatal(f) => EngineError::Fatal {
            reason: f.to_string(),
        },
    }
}

/// Owns the plan queue of the leader.
pub struct Proposer {
    raft: Raft,
    view: Rc<RefCell<Arc<ClusterState>>>,
    in_flight: Rc<RefCell<BTreeMap<u64, PendingUsage>>>,
    seq: Cell<u64>,
    permits: Arc<Semaphore>,
    rejections: RefCell<RejectionTracker>,
}

impl Proposer {
    /// Returns a proposer writing through `raft` and verifying against `view`.
    pub fn new(
        raft: Raft,
        view: Rc<RefCell<Arc<ClusterState>>>,
        rejections: RejectionTracker,
    ) -> Proposer {
        Proposer {
            raft,
            view,
            in_flight: Rc::default(),
            seq: Cell::new(0),
            permits: Arc::new(Semaphore::new(RAFT_ENTRIES_IN_FLIGHT_MAX)),
            rejections: RefCell::new(rejections),
        }
    }

    /// Serves the inbox until every sender is gone.
    pub async fn run(self, mut inbox: mpsc::Receiver<RaftRequest>) {
        while let Some(first) = inbox.recv().await {
            // Waiting for a permit first lets the batch grow while earlier entries replicate.
            let permit = self
                .permits
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore never closes");
            let mut batch = vec![first];
            while batch.len() < RAFT_BATCH_REQUESTS_MAX {
                match inbox.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.propose(batch, permit);
        }
    }

    fn propose(&self, batch: Vec<RaftRequest>, permit: tokio::sync::OwnedSemaphorePermit) {
        let state = self.view.borrow().clone();
        let mut pending_total = PendingUsage::default();
        for usage in self.in_flight.borrow().values() {
            pending_total.merge(usage);
        }
        let mut commands: Vec<Command> = Vec::new();
        let mut plans: Vec<PlanApply> = Vec::new();
        let mut plan_evals: Vec<Evaluation> = Vec::new();
        let mut pendings: Vec<Pending> = Vec::new();
        let mut batch_added = PendingUsage::default();
        for request in batch {
            match request {
                RaftRequest::Write {
                    commands: cmds,
                    reply,
                } => {
                    let start = commands.len();
                    commands.extend(cmds);
                    pendings.push(Pending::Write {
                        range: start..commands.len(),
                        reply,
                    });
                }
                RaftRequest::Plan { plan, evals, reply } => {
                    let verdict = verify_plan(&state, plan, &pending_total);
                    pending_total.merge(&verdict.added);
                    batch_added.merge(&verdict.added);
                    let now = std::time::Instant::now();
                    for node_id in &verdict.rejected_nodes {
                        let eligible = state.node_by_id(node_id).is_some_and(|n| n.eligible);
                        if self.rejections.borrow_mut().record(node_id, now) && eligible {
                            tracing::warn!(
                                node_id = %node_id,
                                "plan rejection tracker: marking node ineligible after repeated plan rejections"
                            );
                            commands.push(Command::UpdateNodeEligibility {
                                node_id: node_id.clone(),
                                eligible: false,
                            });
                            let start = commands.len() - 1;
                            let (tx, _rx) = oneshot::channel();
                            pendings.push(Pending::Write {
                                range: start..commands.len(),
                                reply: tx,
                            });
                        }
                    }
                    let full = verdict.rejected_nodes.is_empty();
                    if full {
                        plan_evals.extend(evals);
                    }
                    let result = plan_result(
                        &verdict.accepted,
                        verdict.rejected_nodes,
                        &state,
                        !self.in_flight.borrow().is_empty(),
                    );
                    if !verdict.accepted.updates.is_empty()
                        || !verdict.accepted.placements.is_empty()
                    {
                        plans.push(verdict.accepted);
                    }
                    pendings.push(Pending::Plan { result, reply });
                }
            }
        }
        if !plans.is_empty() || !plan_evals.is_empty() {
            commands.push(Command::ApplyPlans {
                plans,
                evals: plan_evals,
            });
        }
        if commands.is_empty() {
            for p in pendings {
                if let Pending::Plan { result, reply } = p {
                    let _ = reply.send(Ok(result));
                }
            }
            return;
        }
        let seq = self.seq.get() + 1;
        self.seq.set(seq);
        self.in_flight.borrow_mut().insert(seq, batch_added);
        let envelope = CommandEnvelope {
            now_unix_ns: now_unix_ns(),
            commands,
        };
        let payload = RaftPayload::proposed(envelope.encode(), envelope);
        let raft = self.raft.clone();
        let in_flight = self.in_flight.clone();
        glommio::spawn_local(async move {
            let outcome = raft.client_write(payload).await;
            in_flight.borrow_mut().remove(&seq);
            drop(permit);
            match outcome {
                Ok(resp) => dispatch(resp.data, pendings),
                Err(e) => {
                    let err = write_error(e);
                    for p in pendings {
                        match p {
                            Pending::Write { reply, .. } => {
                                let _ = reply.send(Err(err.clone()));
                            }
                            Pending::Plan { reply, .. } => {
                                let _ = reply.send(Err(err.clone()));
                            }
                        }
                    }
                }
            }
        })
        .detach();
    }
}

fn dispatch(resp: ApplyResponse, pendings: Vec<Pending>) {
    for p in pendings {
        match p {
            Pending::Write { range, reply } => {
                let results = resp
                    .results
                    .get(range)
                    .map(<[_]>::to_vec)
                    .unwrap_or_default();
                let _ = reply.send(Ok(ApplyResponse {
                    index: resp.index,
                    results,
                }));
            }
            Pending::Plan { mut result, reply } => {
                result.alloc_index = resp.index;
                if !result.rejected_nodes.is_empty() {
                    result.refresh_index = result.refresh_index.max(resp.index);
                }
                let _ = reply.send(Ok(result));
            }
        }
    }
}

fn plan_result(
    accepted: &PlanApply,
    rejected: Vec<String>,
    state: &ClusterState,
    entries_in_flight: bool,
) -> PlanResult {
    let rejected_set: BTreeSet<String> = rejected.iter().cloned().collect();
    debug_assert!(accepted
        .placements
        .iter()
        .all(|a| !rejected_set.contains(&*a.node_id)));
    // With entries in flight, the conflict may be in one of them: refresh past them.
    let refresh_index = if rejected.is_empty() {
        0
    } else {
        state.index + u64::from(entries_in_flight)
    };
    PlanResult {
        updates_committed: accepted.updates.len(),
        placements_committed: accepted.placements.len(),
        rejected_nodes: rejected,
        refresh_index,
        alloc_index: 0,
    }
}

/// Returns the wall clock in Unix nanoseconds.
pub fn now_unix_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
