//! Scheduler workers: take an evaluation from the shard's broker, run the pure scheduler on
//! the newest read view, submit the plan to the Raft core, retry on partial rejection.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use sched::structs::{triggers, EvalStatus, Evaluation, Plan, PlanResult, SchedOutcome};
use sched::{SchedEnv, StateView};
use tokio::sync::oneshot;

use super::broker::NackOutcome;
use super::messages::{RaftRequest, RAFT_INBOX_MAX};
use super::proposer::now_unix_ns;
use super::shard::{new_eval, ShardCore};
use crate::error::EngineError;
use crate::raft::runtime::GlommioRuntime;
use crate::state::{ClusterState, Command};
use openraft::AsyncRuntime;

/// Plan submissions per evaluation before it is failed (Nomad's limit).
pub const PLAN_ATTEMPTS_MAX: usize = 5;
/// An evaluation not finished within this time is nacked (Nomad's nack timeout).
pub const EVAL_NACK_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a paused worker looks whether the broker was resumed.
const PAUSED_POLL: Duration = Duration::from_millis(200);
/// Longest a worker waits for the view to catch up after a partial commit.
const REFRESH_WAIT_MAX: Duration = Duration::from_secs(5);

/// Runs one worker until the shard stops.
pub async fn worker_loop(core: Rc<ShardCore>) {
    while !core.stopped.get() {
        core.broker.wait_enabled().await;
        if core.state().scheduler_config.pause_eval_broker {
            // `pause_eval_broker`: evaluations stay pending until the operator resumes.
            glommio::timer::sleep(PAUSED_POLL).await;
            continue;
        }
        let Some(eval) = core.broker.dequeue().await else {
            continue;
        };
        if core.state().scheduler_config.pause_eval_broker {
            core.broker.nack_undelivered(&eval.id);
            continue;
        }
        let outcome = GlommioRuntime::timeout(EVAL_NACK_TIMEOUT, process_eval(&core, &eval)).await;
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!(
                "evaluation not finished within {EVAL_NACK_TIMEOUT:?}"
            )),
        };
        match failure {
            None => core.broker.ack(&eval.id),
            Some(reason) => {
                tracing::warn!(eval_id = %eval.id, job_id = %eval.job_id, %reason, "evaluation nacked");
                if core.broker.nack(&eval.id) == NackOutcome::DeliveryLimitReached {
                    let mut failed = eval.clone();
                    failed.status = EvalStatus::Failed;
                    failed.status_description =
                        format!("evaluation reached delivery limit ({reason})");
                    let _ = core
                        .propose(vec![Command::UpsertEvals {
                            evals: vec![failed],
                        }])
                        .await;
                    core.broker.ack(&eval.id);
                }
            }
        }
    }
}

async fn submit_plan(
    core: &ShardCore,
    plan: Plan,
    evals: Vec<Evaluation>,
) -> Result<PlanResult, EngineError> {
    let (reply, rx) = oneshot::channel();
    core.shared
        .raft_tx
        .try_send(RaftRequest::Plan { plan, evals, reply })
        .map_err(|_| EngineError::Overloaded {
            what: "raft inbox",
            limit: RAFT_INBOX_MAX,
        })?;
    rx.await.map_err(|_| EngineError::ShuttingDown)?
}

async fn wait_for_view(core: &ShardCore, index: u64) -> Arc<ClusterState> {
    let deadline = std::time::Instant::now() + REFRESH_WAIT_MAX;
    core.shared
        .wait_for_state(|s| s.index >= index, deadline)
        .await
}

/// Processes one evaluation to completion (or returns an error to nack it).
async fn process_eval(core: &Rc<ShardCore>, eval: &Evaluation) -> Result<(), EngineError> {
    let mut state = core.state();
    if let Some(current) = state.eval_by_id(&eval.id) {
        if current.status.is_terminal() {
            return Ok(());
        }
    }
    for attempt in 1..=PLAN_ATTEMPTS_MAX {
        let mut env = SchedEnv::for_run(
            &eval.id,
            state.index(),
            now_unix_ns(),
            state.scheduler_config.clone(),
        );
        let outcome = sched::process(&*state, eval, &mut env)
            .map_err(|e| EngineError::invalid(format!("evaluation {}", eval.id), e.to_string()))?;
        let evals = finish_evals(&state, eval, &outcome);
        if outcome.plan.is_no_op() {
            core.propose(vec![Command::UpsertEvals { evals }]).await?;
            return Ok(());
        }
        let placements = outcome.plan.placement_count();
        let result = submit_plan(core, outcome.plan, evals).await?;
        if result.fully_committed(placements) {
            return Ok(());
        }
        tracing::debug!(eval_id = %eval.id, attempt, rejected = result.rejected_nodes.len(), "plan partly rejected; retrying on a fresher view");
        state = wait_for_view(core, result.refresh_index.max(result.alloc_index)).await;
    }
    let mut failed = eval.clone();
    failed.status = EvalStatus::Failed;
    failed.status_description = format!("maximum attempts reached ({PLAN_ATTEMPTS_MAX})");
    let mut followup = new_eval(
        &eval.namespace,
        &eval.job_id,
        eval.job_type,
        eval.priority,
        triggers::MAX_PLAN_ATTEMPTS,
    );
    followup.previous_eval = eval.id.clone();
    failed.next_eval = followup.id.clone();
    core.propose(vec![Command::UpsertEvals {
        evals: vec![failed, followup],
    }])
    .await?;
    Ok(())
}

/// Returns the evaluation updates that record a scheduler run: the evaluation itself
/// (complete, or blocked again), a new blocked evaluation for what did not fit, follow-ups,
/// and the cancellation of blocked evaluations this run made obsolete.
fn finish_evals(
    state: &ClusterState,
    eval: &Evaluation,
    outcome: &SchedOutcome,
) -> Vec<Evaluation> {
    let mut updated = eval.clone();
    updated.status = EvalStatus::Complete;
    updated.status_description = String::new();
    updated.failed_tg_allocs = outcome.failed_tg_allocs.clone();
    updated.queued_allocations = outcome.queued_allocations.clone();
    updated.snapshot_index = state.index();
    let mut out = Vec::new();
    let mut keep_blocked: Option<String> = None;
    if let Some(blocked) = &outcome.blocked_eval {
        if eval.status == EvalStatus::Blocked {
            // An unblocked evaluation that still does not fit goes back to waiting.
            updated.status = EvalStatus::Blocked;
            keep_blocked = Some(eval.id.clone());
        } else {
            updated.blocked_eval = blocked.id.clone();
            keep_blocked = Some(blocked.id.clone());
            out.push(blocked.clone());
        }
    }
    for other in state
        .evals_by_job
        .get(&(eval.namespace.clone(), eval.job_id.clone()))
        .into_iter()
        .flatten()
    {
        let other_id = other.to_string();
        if Some(&other_id) == keep_blocked.as_ref() || other_id == eval.id {
            continue;
        }
        if let Some(e) = state.evals.get(other) {
            if e.status == EvalStatus::Blocked {
                let mut cancelled = (**e).clone();
                cancelled.status = EvalStatus::Canceled;
                cancelled.status_description = format!("evaluation {} superseded it", eval.id);
                out.push(cancelled);
            }
        }
    }
    out.extend(outcome.followup_evals.iter().cloned());
    out.insert(0, updated);
    out
}
