//! The FSM apply: turns one committed `CommandEnvelope` into state changes.
//!
//! Pure and deterministic: the same entry applied to the same state gives the same result on
//! every server. The wall clock comes from the envelope (stamped by the leader), never from here.

use sched::structs::{
    ClientStatus, DesiredStatus, DesiredTransition, EvalStatus, Evaluation, JobStatus, NodeEvent,
    NodeStatus,
};
use sched::StateView;
use serde::{Deserialize, Serialize};

use super::cluster_state::ClusterState;
use super::command::{Command, CommandEnvelope, PlanApply};
use super::IdKey;

/// The outcome of one command in an entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResult {
    Applied,
    JobRegistered {
        job_modify_index: u64,
        version: u64,
    },
    /// The command was valid to log but refused by the state (e.g. check-and-set failed).
    Refused {
        message: String,
    },
}

/// What an apply changed that the leader's services must react to.
#[derive(Default, Debug)]
pub struct ApplyEffects {
    /// Evaluations now pending: the broker must run them.
    pub pending_evals: Vec<Evaluation>,
    /// Evaluations now blocked: the broker parks them until capacity appears.
    pub blocked_evals: Vec<Evaluation>,
    /// Capacity appeared (a node became ready or allocations stopped): blocked evals may fit.
    pub capacity_freed: bool,
    /// Nodes whose registration or status changed: (node id, new status).
    pub node_changes: Vec<(String, NodeStatus)>,
}

impl ClusterState {
    /// Applies one log entry at `index`, returning one result per command. The entry is
    /// consumed: placements and client reports move into the state instead of being copied.
    pub fn apply(
        &mut self,
        index: u64,
        envelope: CommandEnvelope,
        effects: &mut ApplyEffects,
    ) -> Vec<CommandResult> {
        assert!(
            index > self.index,
            "apply out of order: index={index} applied={}",
            self.index
        );
        let now = envelope.now_unix_ns;
        self.applying = index;
        let results = envelope
            .commands
            .into_iter()
            .map(|cmd| self.apply_owned(index, now, cmd, effects))
            .collect();
        self.index = index;
        #[cfg(debug_assertions)]
        self.check_invariants();
        results
    }

    /// Applies the commands that carry allocations from the entry itself; the others from
    /// a reference (`apply_command`).
    fn apply_owned(
        &mut self,
        index: u64,
        now: i64,
        cmd: Command,
        effects: &mut ApplyEffects,
    ) -> CommandResult {
        match cmd {
            Command::ApplyPlans { plans, evals } => {
                let mut nodes = std::collections::BTreeSet::new();
                for plan in plans {
                    nodes.extend(plan.updates.iter().map(|a| a.node_id.to_string()));
                    self.apply_plan(index, now, plan, effects);
                }
                self.complete_drains(index, now, nodes);
                for eval in evals {
                    self.upsert_eval(index, now, eval, effects);
                }
                CommandResult::Applied
            }
            Command::UpdateAllocsFromClient { updates, evals } => {
                let mut touched = std::collections::BTreeSet::new();
                let mut finished_on = std::collections::BTreeSet::new();
                for update in updates {
                    let Some(old) = self.alloc_by_id(&update.alloc_id) else {
                        continue;
                    };
                    if *old.node_id != *update.node_id {
                        continue;
                    }
                    let mut alloc = (**old).clone();
                    alloc.client_status = update.client_status;
                    alloc.client_description = update.client_description.into();
                    for (task, state) in update.task_states {
                        alloc.task_states.insert(&task, state);
                    }
                    alloc.modify_index = index;
                    alloc.modify_time_ns = now;
                    if alloc.client_status.is_terminal() && !old.client_status.is_terminal() {
                        effects.capacity_freed = true;
                        finished_on.insert(alloc.node_id.to_string());
                    }
                    touched.insert((alloc.namespace.clone(), alloc.job_id.clone()));
                    self.put_alloc(alloc);
                }
                for eval in evals {
                    self.upsert_eval(index, now, eval, effects);
                }
                for (ns, job_id) in touched {
                    self.refresh_job_status(&ns, &job_id, index);
                }
                // A batch allocation that finishes by itself may be the last a drain waited for.
                self.complete_drains(index, now, finished_on);
                CommandResult::Applied
            }
            other => self.apply_command(index, now, &other, effects),
        }
    }

    fn apply_command(
        &mut self,
        index: u64,
        now: i64,
        cmd: &Command,
        effects: &mut ApplyEffects,
    ) -> CommandResult {
        match cmd {
            Command::RegisterJob {
                job,
                eval,
                enforce_index,
            } => self.apply_register_job(index, now, job, eval.as_ref(), *enforce_index, effects),
            Command::DeregisterJob {
                namespace,
                job_id,
                purge,
                eval,
            } => {
                if let Some(job) = self.job(namespace, job_id).cloned() {
                    if *purge {
                        let k = (namespace.clone(), job_id.clone());
                        self.jobs.remove(&k);
                        self.job_versions.remove(&k);
                        self.periodic_launches.remove(&k);
                        self.touch(crate::api::Table::Jobs);
                    } else if !job.stop {
                        let mut stopped = job;
                        stopped.stop = true;
                        stopped.status = JobStatus::Dead;
                        stopped.modify_index = index;
                        stopped.job_modify_index = index;
                        stopped.version += 1;
                        stopped.submit_time_ns = now;
                        self.put_job(stopped);
                    }
                }
                self.upsert_eval(index, now, eval.clone(), effects);
                CommandResult::Applied
            }
            Command::UpsertEvals { evals } => {
                for eval in evals {
                    self.upsert_eval(index, now, eval.clone(), effects);
                }
                CommandResult::Applied
            }
            Command::UpsertNode { node, evals } => {
                let mut node = node.clone();
                match self.node_by_id(&node.id) {
                    Some(old) => {
                        node.create_index = old.create_index;
                        if node.events.is_empty() {
                            node.events = old.events.clone();
                        }
                    }
                    None => {
                        node.create_index = index;
                        node.events = vec![NodeEvent {
                            message: "Node registered".into(),
                            subsystem: "Cluster".into(),
                            timestamp_unix_ns: now,
                            create_index: index,
                        }];
                    }
                }
                node.modify_index = index;
                node.status_updated_at_unix_s = now / 1_000_000_000;
                if node.status == NodeStatus::Ready {
                    effects.capacity_freed = true;
                }
                effects.node_changes.push((node.id.clone(), node.status));
                self.put_node(node);
                for eval in evals {
                    self.upsert_eval(index, now, eval.clone(), effects);
                }
                CommandResult::Applied
            }
            Command::UpdateNodeStatus { updates, evals } => {
                for update in updates {
                    let Some(old) = self.node_by_id(&update.node_id) else {
                        continue;
                    };
                    if old.status == update.status {
                        continue;
                    }
                    let mut node = (**old).clone();
                    node.status = update.status;
                    node.status_description = update.description.clone();
                    node.modify_index = index;
                    node.status_updated_at_unix_s = now / 1_000_000_000;
                    node.events.push(NodeEvent {
                        message: format!("Node status changed to {}", update.status.as_str()),
                        subsystem: "Cluster".into(),
                        timestamp_unix_ns: now,
                        create_index: index,
                    });
                    if node.events.len() > NODE_EVENTS_MAX {
                        node.events.remove(0);
                    }
                    if update.status == NodeStatus::Ready {
                        effects.capacity_freed = true;
                    }
                    effects.node_changes.push((node.id.clone(), node.status));
                    self.put_node(node);
                }
                for eval in evals {
                    self.upsert_eval(index, now, eval.clone(), effects);
                }
                CommandResult::Applied
            }
            Command::ApplyPlans { .. } | Command::UpdateAllocsFromClient { .. } => {
                unreachable!("applied by apply_owned")
            }
            Command::UpdateNodeEligibility { node_id, eligible } => {
                let Some(old) = self.node_by_id(node_id).cloned() else {
                    return CommandResult::Refused {
                        message: format!("node not found: {node_id}"),
                    };
                };
                let mut node = (*old).clone();
                node.eligible = *eligible;
                node.modify_index = index;
                push_event(
                    &mut node,
                    index,
                    now,
                    if *eligible {
                        "Node marked as eligible for scheduling"
                    } else {
                        "Node marked as ineligible for scheduling"
                    },
                );
                if *eligible && !old.eligible {
                    effects.capacity_freed = true;
                }
                self.put_node(node);
                CommandResult::Applied
            }
            Command::UpdateNodeDrain {
                node_id,
                drain,
                mark_eligible,
                evals,
            } => {
                let Some(old) = self.node_by_id(node_id).cloned() else {
                    return CommandResult::Refused {
                        message: format!("node not found: {node_id}"),
                    };
                };
                let mut node = (*old).clone();
                node.drain = drain.clone();
                node.modify_index = index;
                if drain.is_some() {
                    node.eligible = false;
                    push_event(&mut node, index, now, "Node drain strategy set");
                } else {
                    if *mark_eligible {
                        node.eligible = true;
                        effects.capacity_freed = true;
                    }
                    push_event(&mut node, index, now, "Node drain strategy removed");
                }
                self.put_node(node);
                for eval in evals {
                    self.upsert_eval(index, now, eval.clone(), effects);
                }
                self.complete_drains(index, now, std::iter::once(node_id.clone()).collect());
                CommandResult::Applied
            }
            Command::SetSchedulerConfig { config, cas } => {
                if let Some(want) = cas {
                    if *want != self.scheduler_config_index {
                        return CommandResult::Refused {
                            message: format!(
                                "scheduler configuration was modified at index {}, not {want}",
                                self.scheduler_config_index
                            ),
                        };
                    }
                }
                if self.scheduler_config.pause_eval_broker && !config.pause_eval_broker {
                    // Evaluations left pending while paused become runnable again.
                    effects.pending_evals.extend(
                        self.evals
                            .values()
                            .filter(|e| e.status == EvalStatus::Pending)
                            .map(|e| (**e).clone()),
                    );
                }
                self.scheduler_config = config.clone();
                self.scheduler_config_index = index;
                CommandResult::Applied
            }
            Command::SetAutopilotConfig { config, cas } => {
                let (create, modify) = self.autopilot.as_ref().map_or((0, 0), |a| (a.1, a.2));
                if let Some(want) = cas {
                    if *want != modify {
                        return CommandResult::Refused {
                            message: format!(
                                "autopilot configuration was modified at index {modify}, not {want}"
                            ),
                        };
                    }
                }
                let create = if create == 0 { index } else { create };
                self.autopilot = Some((config.clone(), create, index));
                CommandResult::Applied
            }
            Command::UpdateAllocDesiredTransition { transitions, evals } => {
                self.apply_desired_transitions(index, now, transitions);
                for eval in evals {
                    self.upsert_eval(index, now, eval.clone(), effects);
                }
                CommandResult::Applied
            }
            Command::UpsertPeriodicLaunch {
                namespace,
                job_id,
                launch_unix_ns,
            } => self.apply_periodic_launch(index, namespace, job_id, *launch_unix_ns),
            Command::WriteTest { .. } => CommandResult::Applied,
        }
    }

    fn apply_register_job(
        &mut self,
        index: u64,
        now: i64,
        job: &sched::structs::Job,
        eval: Option<&Evaluation>,
        enforce_index: Option<u64>,
        effects: &mut ApplyEffects,
    ) -> CommandResult {
        let existing = self.job(&job.namespace, &job.id).cloned();
        if let Some(want) = enforce_index {
            let refused = match (&existing, want) {
                (Some(_), 0) => Some(format!(
                    "Enforcing job modify index {want}: job already exists"
                )),
                (Some(cur), w) if cur.job_modify_index != w => Some(format!(
                    "Enforcing job modify index {w}: job exists with conflicting job modify index: {}",
                    cur.job_modify_index
                )),
                (None, w) if w != 0 => {
                    Some(format!("Enforcing job modify index {w}: job does not exist"))
                }
                _ => None,
            };
            if let Some(message) = refused {
                return CommandResult::Refused { message };
            }
        }
        let (job_modify_index, version) = match &existing {
            Some(cur) if !cur.spec_changed(job) => (cur.job_modify_index, cur.version),
            _ => {
                let mut stored = job.clone();
                stored.version = existing.as_ref().map_or(0, |cur| cur.version + 1);
                stored.create_index = existing.as_ref().map_or(index, |cur| cur.create_index);
                stored.modify_index = index;
                stored.job_modify_index = index;
                stored.submit_time_ns = now;
                stored.status = JobStatus::Pending;
                stored.stable = false;
                let version = stored.version;
                self.put_job(stored);
                (index, version)
            }
        };
        if let Some(eval) = eval {
            let mut eval = eval.clone();
            eval.job_modify_index = job_modify_index;
            self.upsert_eval(index, now, eval, effects);
        }
        self.refresh_job_status(&job.namespace, &job.id, index);
        CommandResult::JobRegistered {
            job_modify_index,
            version,
        }
    }

    fn apply_plan(&mut self, index: u64, now: i64, plan: PlanApply, effects: &mut ApplyEffects) {
        let mut touched = std::collections::BTreeSet::new();
        for update in &plan.updates {
            let Some(old) = self.alloc_by_id(&update.id).cloned() else {
                continue;
            };
            let mut alloc = (*old).clone();
            alloc.desired_status = update.desired_status;
            alloc.desired_description = update.desired_description.clone();
            if update.client_status == ClientStatus::Lost {
                alloc.client_status = ClientStatus::Lost;
                alloc.client_description = update.client_description.clone();
            }
            if !update.next_allocation.is_empty() {
                alloc.next_allocation = update.next_allocation.clone();
            }
            // A failed allocation whose replacement waits for its reschedule delay points at
            // the evaluation that will place it.
            if !update.followup_eval_id.is_empty() {
                alloc.followup_eval_id = update.followup_eval_id.clone();
            }
            if !update.preempted_by_allocation.is_empty() {
                alloc.preempted_by_allocation = update.preempted_by_allocation.clone();
            }
            alloc.modify_index = index;
            alloc.alloc_modify_index = index;
            alloc.modify_time_ns = now;
            if !old.is_terminal() && alloc.is_terminal() {
                effects.capacity_freed = true;
            }
            touched.insert((alloc.namespace.clone(), alloc.job_id.clone()));
            self.put_alloc(alloc);
        }
        for mut alloc in plan.placements {
            match self.alloc_by_id(&alloc.id) {
                Some(old) => alloc.create_index = old.create_index,
                None => alloc.create_index = index,
            }
            assert_eq!(
                alloc.desired_status,
                DesiredStatus::Run,
                "placement {} not run",
                alloc.id
            );
            alloc.modify_index = index;
            alloc.alloc_modify_index = index;
            if alloc.create_time_ns == 0 {
                alloc.create_time_ns = now;
            }
            alloc.modify_time_ns = now;
            if !alloc.previous_allocation.is_empty() {
                if let Some(prev) = self.alloc_by_id(&alloc.previous_allocation).cloned() {
                    let mut prev = (*prev).clone();
                    prev.next_allocation = alloc.id.as_str().into();
                    prev.modify_index = index;
                    self.put_alloc(prev);
                }
            }
            touched.insert((alloc.namespace.clone(), alloc.job_id.clone()));
            self.put_alloc(alloc);
        }
        for (ns, job_id) in touched {
            self.refresh_job_status(&ns, &job_id, index);
        }
    }

    fn upsert_eval(
        &mut self,
        index: u64,
        now: i64,
        mut eval: Evaluation,
        effects: &mut ApplyEffects,
    ) {
        match self.eval_by_id(&eval.id) {
            Some(old) => {
                eval.create_index = old.create_index;
                eval.create_time_ns = old.create_time_ns;
            }
            None => {
                eval.create_index = index;
                eval.create_time_ns = now;
            }
        }
        eval.modify_index = index;
        eval.modify_time_ns = now;
        match eval.status {
            EvalStatus::Pending => effects.pending_evals.push(eval.clone()),
            EvalStatus::Blocked => effects.blocked_evals.push(eval.clone()),
            _ => {}
        }
        let (ns, job_id) = (eval.namespace.clone(), eval.job_id.clone());
        self.put_eval(eval);
        self.refresh_job_status(&ns, &job_id, index);
    }
}

fn push_event(node: &mut sched::structs::Node, index: u64, now: i64, message: &str) {
    node.events.push(NodeEvent {
        message: message.to_string(),
        subsystem: "Drain".into(),
        timestamp_unix_ns: now,
        create_index: index,
    });
    if node.events.len() > NODE_EVENTS_MAX {
        node.events.remove(0);
    }
}

impl ClusterState {
    /// Ends the drain of every listed node that holds no allocation the drain must move.
    /// The node stays ineligible, as in Nomad.
    fn complete_drains(
        &mut self,
        index: u64,
        now: i64,
        node_ids: std::collections::BTreeSet<String>,
    ) {
        for node_id in node_ids {
            let Some(node) = self.node_by_id(&node_id).cloned() else {
                continue;
            };
            let Some(drain) = node.drain.clone() else {
                continue;
            };
            let jobs = &self.jobs;
            let remaining = self.node_allocs(&node_id).any(|a| {
                if a.is_terminal() {
                    return false;
                }
                let system = jobs
                    .get(&(a.namespace.to_string(), a.job_id.to_string()))
                    .is_some_and(|j| {
                        matches!(
                            j.job_type,
                            sched::structs::JobType::System | sched::structs::JobType::SysBatch
                        )
                    });
                !(drain.ignore_system_jobs && system)
            });
            if remaining {
                continue;
            }
            let mut node = (*node).clone();
            node.drain = None;
            node.modify_index = index;
            push_event(&mut node, index, now, "Node drain complete");
            self.put_node(node);
        }
    }
}

impl ClusterState {
    /// Sets the desired transition of each listed allocation. An id no longer known is
    /// skipped: the allocation was collected after the leader read it.
    fn apply_desired_transitions(
        &mut self,
        index: u64,
        now: i64,
        transitions: &[(String, DesiredTransition)],
    ) {
        for (alloc_id, transition) in transitions {
            let Some(old) = self.alloc_by_id(alloc_id).cloned() else {
                continue;
            };
            assert!(
                index > old.alloc_modify_index,
                "alloc {alloc_id} transition out of order: index={index} alloc_modify_index={}",
                old.alloc_modify_index
            );
            let usage_before = self.node_usage.get(&IdKey::new(&old.node_id)).copied();
            let mut alloc = (*old).clone();
            alloc.desired_transition = *transition;
            alloc.modify_index = index;
            alloc.alloc_modify_index = index;
            alloc.modify_time_ns = now;
            self.put_alloc(alloc);
            // A transition is a request to the scheduler; by itself it frees or takes nothing.
            assert_eq!(
                self.node_usage.get(&IdKey::new(&old.node_id)).copied(),
                usage_before,
                "alloc {alloc_id} transition changed the usage of node {}",
                old.node_id
            );
        }
    }
}

/// Node events kept per node; older ones are dropped.
pub const NODE_EVENTS_MAX: usize = 10;

impl ClusterState {
    /// Records a periodic launch. Launch times only move forward: a proposal that lost a race
    /// with a newer launch is ignored, so the stored time never goes back and no launch repeats.
    fn apply_periodic_launch(
        &mut self,
        index: u64,
        namespace: &str,
        job_id: &str,
        launch_unix_ns: i64,
    ) -> CommandResult {
        let k = (namespace.to_string(), job_id.to_string());
        let previous = self.periodic_launches.get(&k).cloned();
        if let Some(prev) = &previous {
            if prev.launch_unix_ns >= launch_unix_ns {
                return CommandResult::Refused {
                    message: format!(
                        "periodic job {job_id:?} already launched at {} (not after {launch_unix_ns})",
                        prev.launch_unix_ns
                    ),
                };
            }
        }
        let launch = super::command::PeriodicLaunch {
            namespace: namespace.to_string(),
            job_id: job_id.to_string(),
            launch_unix_ns,
            create_index: previous.as_ref().map_or(index, |p| p.create_index),
            modify_index: index,
        };
        assert!(
            launch.create_index <= launch.modify_index,
            "periodic launch of {job_id} recorded out of order: index={index} created={}",
            launch.create_index
        );
        self.periodic_launches.insert(k, launch);
        CommandResult::Applied
    }
}
