//! `Handle`: the engine's implementation of `Cluster`, one per shard.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sched::structs::{triggers, EvalStatus, Evaluation, Job};
use sched::{SchedEnv, StateView};
use tokio::sync::oneshot;

use super::messages::{ShardMsg, Shared, SHARD_INBOX_MAX};
use super::proposer::now_unix_ns;
use super::shard::{new_eval, ShardCore};
use crate::api::{Cluster, ClusterStatus, EvalReply, PlanReply, RegisterJob, RegisterJobReply};
use crate::client_proto::{ClientRequest, ClientResponse};
use crate::error::EngineError;
use crate::state::{ClusterState, Command, CommandResult};

/// The face a shard shows to the transports running on it.
#[derive(Clone)]
pub struct Handle {
    core: Rc<ShardCore>,
}

impl Handle {
    /// Wraps a shard core.
    pub fn new(core: Rc<ShardCore>) -> Handle {
        Handle { core }
    }

    /// Returns the shared, read-only parts of the server.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.core.shared
    }

    /// Returns the shard this handle belongs to.
    pub fn shard_id(&self) -> usize {
        self.core.id
    }

    /// Returns a new pending evaluation of an existing job (NotFound otherwise); writes need a
    /// leader.
    fn job_eval(
        &self,
        namespace: &str,
        job_id: &str,
        trigger: &str,
    ) -> Result<Evaluation, EngineError> {
        self.leader_required()?;
        let state = self.core.state();
        let Some(job) = state.job(namespace, job_id) else {
            return Err(EngineError::NotFound {
                kind: "job",
                id: job_id.to_string(),
            });
        };
        Ok(new_eval(
            namespace,
            job_id,
            job.job_type,
            job.priority,
            trigger,
        ))
    }

    fn leader_required(&self) -> Result<(), EngineError> {
        // Writes that reach the engine of a follower were not forwarded because the leader
        // changed meanwhile; refusing them is right, the caller retries.
        if self.core.shared.is_leader() {
            Ok(())
        } else {
            Err(EngineError::NoLeader)
        }
    }
}

/// Runs a call that may block (the gossip pool waits for answers) on its own thread, so the
/// shard keeps serving meanwhile.
async fn off_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.await.expect("the blocking call's thread always answers")
}

fn to_view(state: Arc<ClusterState>) -> Rc<ClusterState> {
    // A clone of the persistent maps is O(1): it shares every node with the published view.
    Rc::new((*state).clone())
}

impl Cluster for Handle {
    type View = ClusterState;

    fn view(&self) -> Rc<ClusterState> {
        to_view(self.core.state())
    }

    async fn wait_for_index(&self, min_index: u64, timeout: Duration) -> Rc<ClusterState> {
        let deadline = Instant::now() + timeout;
        let state = self
            .core
            .shared
            .wait_for_state(|s| s.index > min_index, deadline)
            .await;
        to_view(state)
    }

    fn status(&self) -> ClusterStatus {
        self.core
            .shared
            .status
            .read()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    async fn register_job(&self, req: RegisterJob) -> Result<RegisterJobReply, EngineError> {
        self.leader_required()?;
        let state = self.core.state();
        if state.scheduler_config.reject_job_registration {
            return Err(EngineError::PermissionDenied {
                reason: "job registration, dispatch, and scale are disabled by the scheduler configuration".into(),
            });
        }
        let mut job = req.job;
        resolve_defaults(&mut job);
        let (_, max_priority) = self.job_priority_bounds();
        if job.priority == 0 || job.priority > max_priority {
            return Err(EngineError::invalid(
                "job.priority",
                format!("job priority must be between [1, {max_priority}]"),
            ));
        }
        if let Some(p) = req.eval_priority {
            if p == 0 || p > max_priority {
                return Err(EngineError::invalid(
                    "EvalPriority",
                    format!("eval priority must be between [1, {max_priority}]"),
                ));
            }
        }
        let eval = new_eval(
            &job.namespace,
            &job.id,
            job.job_type,
            req.eval_priority.unwrap_or(job.priority),
            triggers::JOB_REGISTER,
        );
        let eval_id = eval.id.clone();
        let resp = self
            .core
            .propose(vec![Command::RegisterJob {
                job,
                eval: Some(eval),
                enforce_index: req.enforce_index,
            }])
            .await?;
        match resp.results.first() {
            Some(CommandResult::JobRegistered {
                job_modify_index, ..
            }) => Ok(RegisterJobReply {
                eval_id,
                eval_create_index: resp.index,
                job_modify_index: *job_modify_index,
                index: resp.index,
                warnings: String::new(),
            }),
            Some(CommandResult::Refused { message }) => Err(EngineError::Conflict {
                message: message.clone(),
            }),
            other => Err(EngineError::Fatal {
                reason: format!("unexpected register result {other:?}"),
            }),
        }
    }

    async fn periodic_force(
        &self,
        namespace: &str,
        job_id: &str,
    ) -> Result<EvalReply, EngineError> {
        self.leader_required()?;
        super::periodic::force_launch(&self.core, namespace, job_id).await
    }

    async fn deregister_job(
        &self,
        namespace: &str,
        job_id: &str,
        purge: bool,
    ) -> Result<EvalReply, EngineError> {
        let eval = self.job_eval(namespace, job_id, triggers::JOB_DEREGISTER)?;
        let eval_id = eval.id.clone();
        let resp = self
            .core
            .propose(vec![Command::DeregisterJob {
                namespace: namespace.into(),
                job_id: job_id.into(),
                purge,
                eval,
            }])
            .await?;
        Ok(EvalReply {
            eval_id,
            eval_create_index: resp.index,
            index: resp.index,
        })
    }

    async fn evaluate_job(&self, namespace: &str, job_id: &str) -> Result<EvalReply, EngineError> {
        let eval = self.job_eval(namespace, job_id, triggers::JOB_REGISTER)?;
        let eval_id = eval.id.clone();
        let resp = self
            .core
            .propose(vec![Command::UpsertEvals { evals: vec![eval] }])
            .await?;
        Ok(EvalReply {
            eval_id,
            eval_create_index: resp.index,
            index: resp.index,
        })
    }

    async fn raft_write_test(&self, payload: Vec<u8>) -> Result<u64, EngineError> {
        if !self.core.shared.config.enable_debug {
            return Err(EngineError::PermissionDenied {
                reason: "the Raft write test needs enable_debug = true in the agent configuration"
                    .to_string(),
            });
        }
        self.leader_required()?;
        let resp = self
            .core
            .propose(vec![Command::WriteTest { payload }])
            .await?;
        Ok(resp.index)
    }

    async fn set_scheduler_config(
        &self,
        config: sched::SchedulerConfig,
        cas: Option<u64>,
    ) -> Result<(bool, u64), EngineError> {
        self.leader_required()?;
        let resp = self
            .core
            .propose(vec![Command::SetSchedulerConfig { config, cas }])
            .await?;
        match resp.results.first() {
            Some(CommandResult::Applied) => Ok((true, resp.index)),
            Some(CommandResult::Refused { .. }) => Ok((false, resp.index)),
            other => Err(EngineError::Fatal {
                reason: format!("unexpected scheduler configuration result {other:?}"),
            }),
        }
    }

    fn is_leader(&self) -> bool {
        self.core.shared.is_leader()
    }

    async fn raft_rpc(
        &self,
        rpc: crate::raft::network::RaftRpc,
    ) -> Result<crate::raft::network::RaftRpcReply, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.core
            .shared
            .raft_rpc_tx
            .try_send((rpc, tx))
            .map_err(|_| EngineError::Overloaded {
                what: "raft inbox",
                limit: super::messages::RAFT_INBOX_MAX,
            })?;
        rx.await.map_err(|_| EngineError::Fatal {
            reason: "the raft core stopped".into(),
        })
    }

    async fn join_servers(&self, addrs: Vec<String>) -> Result<usize, EngineError> {
        let membership = self.core.shared.membership.clone();
        off_thread(move || membership.join(&addrs))
            .await
            .map_err(|reason| EngineError::invalid("address", reason))
    }

    async fn force_leave(&self, name: &str, prune: bool) -> Result<(), EngineError> {
        let membership = self.core.shared.membership.clone();
        // Nomad names servers `<name>.<region>`; accept both forms.
        let region = format!(".{}", self.core.shared.config.region);
        let name = name
            .strip_suffix(region.as_str())
            .unwrap_or(name)
            .to_string();
        off_thread(move || membership.force_leave(&name, prune))
            .await
            .map_err(|reason| EngineError::invalid("node", reason))
    }

    async fn remove_raft_peer(
        &self,
        id: Option<&str>,
        address: Option<&str>,
    ) -> Result<(), EngineError> {
        if id.is_some() == address.is_some() {
            return Err(EngineError::invalid(
                "id",
                "give exactly one of a peer id or a peer address",
            ));
        }
        let (tx, rx) = oneshot::channel();
        let msg = super::messages::AdminMsg::RemovePeer {
            id: id.map(str::to_string),
            address: address.map(str::to_string),
            reply: tx,
        };
        self.core
            .shared
            .admin_tx
            .send(msg)
            .await
            .map_err(|_| EngineError::Fatal {
                reason: "the raft core stopped".into(),
            })?;
        rx.await.map_err(|_| EngineError::Fatal {
            reason: "the raft core stopped".into(),
        })?
    }

    fn autopilot_config(&self) -> crate::api::AutopilotState {
        self.core.shared.autopilot()
    }

    async fn set_autopilot_config(
        &self,
        config: crate::config::AutopilotConfig,
        cas: Option<u64>,
    ) -> Result<bool, EngineError> {
        self.leader_required()?;
        if let Some((field, reason)) = config.validate().into_iter().next() {
            return Err(EngineError::invalid(field, reason));
        }
        let resp = self
            .core
            .propose(vec![Command::SetAutopilotConfig {
                config: (&config).into(),
                cas,
            }])
            .await?;
        match resp.results.first() {
            Some(CommandResult::Applied) => Ok(true),
            Some(CommandResult::Refused { .. }) => Ok(false),
            other => Err(EngineError::Fatal {
                reason: format!("unexpected autopilot configuration result {other:?}"),
            }),
        }
    }

    fn autopilot_health(&self) -> crate::api::AutopilotHealth {
        super::cluster::autopilot_health(&self.core.shared)
    }

    async fn update_node_eligibility(
        &self,
        node_id: &str,
        eligible: bool,
    ) -> Result<u64, EngineError> {
        self.leader_required()?;
        let state = self.core.state();
        let Some(node) = state.node_by_id(node_id) else {
            return Err(EngineError::NotFound {
                kind: "node",
                id: node_id.to_string(),
            });
        };
        if eligible && node.drain.is_some() {
            return Err(EngineError::invalid(
                "Eligibility",
                "can not set node's scheduling eligibility to eligible while it is draining",
            ));
        }
        let resp = self
            .core
            .propose(vec![Command::UpdateNodeEligibility {
                node_id: node_id.to_string(),
                eligible,
            }])
            .await?;
        Ok(resp.index)
    }

    async fn update_node_drain(
        &self,
        node_id: &str,
        drain: Option<sched::structs::DrainStrategy>,
        mark_eligible: bool,
    ) -> Result<(Vec<String>, u64), EngineError> {
        self.leader_required()?;
        let state = self.core.state();
        if state.node_by_id(node_id).is_none() {
            return Err(EngineError::NotFound {
                kind: "node",
                id: node_id.to_string(),
            });
        }
        // Starting a drain needs no evaluation: the drainer marks allocations in turn and
        // evaluates their jobs. A cancelled drain that makes the node eligible again evaluates
        // the jobs on it and every system job, which may place there again (as Nomad does).
        let evals = if drain.is_none() && mark_eligible {
            super::shard::node_evals(&state, node_id, sched::structs::triggers::NODE_UPDATE, true)
        } else {
            Vec::new()
        };
        let ids = evals.iter().map(|e| e.id.clone()).collect();
        let resp = self
            .core
            .propose(vec![Command::UpdateNodeDrain {
                node_id: node_id.to_string(),
                drain,
                mark_eligible,
                evals,
            }])
            .await?;
        Ok((ids, resp.index))
    }

    async fn plan_job(&self, mut job: Job) -> Result<PlanReply, EngineError> {
        resolve_defaults(&mut job);
        let state = self.core.state();
        let existing = state.job(&job.namespace, &job.id).cloned();
        let diff_type = match &existing {
            None => "Added",
            Some(cur) if cur.spec_changed(&job) => "Edited",
            Some(_) => "None",
        };
        let mut planned = (*state).clone();
        match &existing {
            Some(cur) if !cur.spec_changed(&job) => job = cur.clone(),
            Some(cur) => {
                job.version = cur.version + 1;
                job.create_index = cur.create_index;
                job.job_modify_index = cur.job_modify_index;
            }
            None => {}
        }
        planned.jobs.insert(
            (job.namespace.clone(), job.id.clone()),
            Arc::new(job.clone()),
        );
        let mut eval: Evaluation = new_eval(
            &job.namespace,
            &job.id,
            job.job_type,
            job.priority,
            triggers::JOB_REGISTER,
        );
        eval.status = EvalStatus::Pending;
        let mut env = SchedEnv::for_eval(&eval.id, now_unix_ns(), state.scheduler_config.clone());
        let outcome = sched::process(&planned, &eval, &mut env)
            .map_err(|e| EngineError::invalid("job", e.to_string()))?;
        Ok(PlanReply {
            job_modify_index: existing.map_or(0, |j| j.job_modify_index),
            plan: outcome.plan.clone(),
            outcome,
            diff_type: diff_type.to_string(),
            index: state.index,
        })
    }

    async fn client_request(&self, req: ClientRequest) -> ClientResponse {
        let owner = match &req {
            ClientRequest::Hello { .. } => self.core.id,
            ClientRequest::Register { node } => self.core.shared.node_shard(&node.id),
            ClientRequest::Heartbeat { node_id, .. }
            | ClientRequest::GetAllocs { node_id, .. }
            | ClientRequest::UpdateAllocs { node_id, .. } => self.core.shared.node_shard(node_id),
        };
        if owner == self.core.id {
            return super::client::handle_owned(&self.core, req).await;
        }
        let (reply, rx) = oneshot::channel();
        if self.core.shared.shard_txs[owner]
            .try_send(ShardMsg::Client { req, reply })
            .is_err()
        {
            return ClientResponse::Error {
                code: "overloaded".into(),
                message: format!("shard {owner} inbox is full ({SHARD_INBOX_MAX})"),
            };
        }
        rx.await.unwrap_or(ClientResponse::Error {
            code: "shutting_down".into(),
            message: "server is shutting down".into(),
        })
    }

    fn job_max_source_size(&self) -> usize {
        self.core.shared.config.server.job_max_source_size_bytes as usize
    }

    fn job_priority_bounds(&self) -> (u16, u16) {
        let s = &self.core.shared.config.server;
        (
            s.job_default_priority.min(u16::MAX as u32) as u16,
            s.job_max_priority.min(u16::MAX as u32) as u16,
        )
    }
}

/// Fills what the server decides for fields a submission left unset, so a registration and a
/// plan of the same file compare equal to the stored job.
fn resolve_defaults(job: &mut Job) {
    if job.node_pool.is_empty() {
        // Nomad resolves an unset pool to "default" on the server.
        job.node_pool = sched::structs::DEFAULT_NODE_POOL.to_string();
    }
}
