//! The node drainer: on the leader, decides which allocations of draining nodes move next and
//! marks them (`desired_transition.migrate`) for the schedulers to replace.
//!
//! Follows Nomad's drainer. Before a node's deadline, a service group moves at most
//! `migrate { max_parallel }` allocations at a time, the next batch once replacements run;
//! batch allocations are left to finish; system allocations go last, once nothing else runs on
//! the node. At the deadline (or with a forced drain) everything left is marked at once.
//! `drain_round` is the pure decision; `drain_loop` is the shell that runs it and proposes.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sched::structs::{
    triggers, Allocation, ClientStatus, DesiredStatus, DesiredTransition, DrainStrategy, Job,
    JobType,
};

use super::proposer::now_unix_ns;
use super::shard::{new_eval, ShardCore};
use crate::state::{ClusterState, Command, JobKey};

/// The shard whose core runs the drainer.
pub const DRAINER_HOME_SHARD: usize = 0;
/// How often the drainer looks again when no state change wakes it (deadlines pass by time).
pub const DRAIN_TICK: Duration = Duration::from_secs(1);
/// Shortest pause between two rounds, so a busy log does not run one round per entry.
pub const DRAIN_ROUND_INTERVAL_MIN: Duration = Duration::from_millis(100);
/// Allocations marked in one round at most; the rest are marked in the next rounds.
pub const DRAIN_MARKS_PER_ROUND_MAX: usize = 4096;
/// How long the drainer waits for its own marks to show in the published view.
const DRAIN_APPLY_WAIT: Duration = Duration::from_secs(5);

/// What one drainer round decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DrainRound {
    /// Allocations to mark for migration, in the order they were chosen.
    pub migrate: Vec<String>,
    /// Jobs with newly marked allocations; each gets one evaluation.
    pub jobs: BTreeSet<JobKey>,
}

impl DrainRound {
    /// Reports whether the round marks nothing.
    pub fn is_empty(&self) -> bool {
        self.migrate.is_empty()
    }

    fn mark(&mut self, alloc: &Allocation) {
        if self.migrate.len() >= DRAIN_MARKS_PER_ROUND_MAX {
            return;
        }
        debug_assert!(
            !alloc.desired_transition.migrate,
            "alloc {} re-marked",
            alloc.id
        );
        debug_assert!(!alloc.is_terminal(), "terminal alloc {} marked", alloc.id);
        self.migrate.push(alloc.id.to_string());
        self.jobs
            .insert((alloc.namespace.to_string(), alloc.job_id.to_string()));
    }
}

/// Reports whether a drain has reached its deadline at `now_unix_ns`: a negative deadline
/// forces the drain at once, zero means no deadline.
pub fn deadline_reached(drain: &DrainStrategy, now_unix_ns: i64) -> bool {
    drain.deadline_ns < 0
        || (drain.force_deadline_unix_ns > 0 && now_unix_ns >= drain.force_deadline_unix_ns)
}

fn is_system(job_type: JobType) -> bool {
    matches!(job_type, JobType::System | JobType::SysBatch)
}

/// Decides which allocations of draining nodes to mark for migration at `now_unix_ns`.
/// Allocations already marked are never chosen again.
pub fn drain_round(state: &ClusterState, now_unix_ns: i64) -> DrainRound {
    let mut round = DrainRound::default();
    // Service allocations on draining nodes that wait for their group's turn.
    let mut waiting: BTreeMap<(JobKey, String), Vec<&Allocation>> = BTreeMap::new();
    for node in state.nodes.values() {
        let Some(drain) = &node.drain else {
            continue;
        };

        let forced = deadline_reached(drain, now_unix_ns);
        let mut others_live = false;
        let mut system = Vec::new();
        for a in state.node_allocs(&node.id).filter(|a| !a.is_terminal()) {
            let job = state
                .jobs
                .get(&(a.namespace.to_string(), a.job_id.to_string()));
            if job.is_some_and(|j| is_system(j.job_type)) {
                if !drain.ignore_system_jobs && !a.desired_transition.migrate {
                    system.push(&**a);
                }
                continue;
            }
            others_live = true;
            if a.desired_transition.migrate {
                continue;
            }
            if forced {
                round.mark(a);
                continue;
            }
            // A batch allocation is left to finish; it moves only at the deadline. One whose
            // job is gone is stopped by that job's own evaluation.
            if job.is_some_and(|j| j.job_type == JobType::Service) {
                waiting
                    .entry((
                        (a.namespace.to_string(), a.job_id.to_string()),
                        a.task_group.to_string(),
                    ))
                    .or_default()
                    .push(a);
            }
        }
        // System allocations serve the others on the node, so they leave last.
        if forced || !others_live {
            for a in system {
                round.mark(a);
            }
        }
    }
    for ((job_key, tg_name), mut candidates) in waiting {
        let Some(job) = state.jobs.get(&job_key) else {
            continue;
        };
        let allowed = group_migrations_allowed(state, job, &job_key, &tg_name);
        candidates.sort_by(|a, b| (a.index(), &a.id).cmp(&(b.index(), &b.id)));
        for a in candidates.into_iter().take(allowed) {
            round.mark(a);
        }
    }
    round
}

/// Returns how many more allocations of a service group may start migrating (Nomad's
/// `healthy - (count - max_parallel)`): healthy ones are running, wanted, and not already
/// moving, wherever they are.
fn group_migrations_allowed(
    state: &ClusterState,
    job: &Job,
    job_key: &JobKey,
    tg_name: &str,
) -> usize {
    let Some(tg) = job.group(tg_name) else {
        // The group left the job: its allocations are stopped by the job's evaluation.
        return 0;
    };
    // Nomad's default migrate block moves one allocation at a time.
    let max_parallel = tg.migrate.as_ref().map_or(1, |m| m.max_parallel.max(0));
    let healthy = state
        .job_allocs(&job_key.0, &job_key.1)
        .filter(|a| {
            a.task_group == tg_name
                && a.desired_status == DesiredStatus::Run
                && a.client_status == ClientStatus::Running
                && !a.desired_transition.migrate
        })
        .count();
    let threshold = i64::from(tg.count) - max_parallel;
    usize::try_from(healthy as i64 - threshold).unwrap_or(0)
}

/// Builds the command for a round: the marks plus one pending `node-drain` evaluation per job.
pub fn round_command(state: &ClusterState, round: &DrainRound) -> Command {
    let transitions = round
        .migrate
        .iter()
        .map(|id| {
            let current = state
                .alloc_by_id(id)
                .map(|a| a.desired_transition)
                .unwrap_or_default();
            (
                id.clone(),
                DesiredTransition {
                    migrate: true,
                    ..current
                },
            )
        })
        .collect();
    let evals = round
        .jobs
        .iter()
        .filter_map(|(ns, job_id)| {
            let job = state.jobs.get(&(ns.clone(), job_id.clone()))?;
            Some(new_eval(
                ns,
                job_id,
                job.job_type,
                job.priority,
                triggers::NODE_DRAIN,
            ))
        })
        .collect();
    Command::UpdateAllocDesiredTransition { transitions, evals }
}

/// Runs the drainer on its home shard until the shard stops. It wakes on every published
/// view and on `DRAIN_TICK`, and acts only while this server leads, so it starts and stops
/// with leadership. Rounds run one at a time, and a round waits until its own marks are
/// visible: otherwise the next round would see the same allocations unmarked and mark them
/// again, moving more than `max_parallel` at once.
pub async fn drain_loop(core: Rc<ShardCore>) {
    assert_eq!(
        core.id, DRAINER_HOME_SHARD,
        "drainer started off its home shard"
    );
    let mut view = core.shared.view.clone();
    while !core.stopped.get() {
        futures_lite::future::or(
            async {
                let _ = view.changed().await;
            },
            glommio::timer::sleep(DRAIN_TICK),
        )
        .await;
        if !core.is_leader.get() {
            continue;
        }
        let state: Arc<ClusterState> = view.borrow_and_update().clone();
        let round = drain_round(&state, now_unix_ns());
        if !round.is_empty() {
            propose_round(&core, &state, &round).await;
        }
        glommio::timer::sleep(DRAIN_ROUND_INTERVAL_MIN).await;
    }
}

async fn propose_round(core: &Rc<ShardCore>, state: &ClusterState, round: &DrainRound) {
    tracing::info!(
        allocs = round.migrate.len(),
        jobs = round.jobs.len(),
        "drain: marking allocations for migration"
    );
    match core.propose(vec![round_command(state, round)]).await {
        Ok(resp) => {
            let deadline = Instant::now() + DRAIN_APPLY_WAIT;
            core.shared
                .wait_for_state(|s| s.index >= resp.index, deadline)
                .await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "drain: could not mark allocations; retrying");
            glommio::timer::sleep(DRAIN_TICK).await;
        }
    }
}

#[cfg(test)]
#[path = "drainer_test.rs"]
mod tests;
