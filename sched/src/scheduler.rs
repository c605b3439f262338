//! `process()`: one evaluation in, one plan out. Reconcile first, then place what is missing
//! through each task group's stack.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::env::SchedEnv;
use crate::error::SchedError;
use crate::feasible::{DatacenterChecker, PoolChecker};
use crate::preempt::{preemption_enabled, Candidate};
use crate::reconcile::reschedule::{self, FOLLOWUP_BATCH_WINDOW_NS};
use crate::reconcile::{
    reconcile_groups, reconcile_system, stop_all, JobAllocs, Reconciled, Stop,
    ALLOC_NODE_INFEASIBLE,
};
use crate::stack::{GroupStack, NodeTable};
use crate::structs::{
    new_id, new_time_ordered_id, triggers, AllocMetric, Allocation, ClientStatus, DesiredStatus,
    EvalStatus, Evaluation, Job, JobType, Node, Plan, SchedOutcome,
};
use crate::view::{Candidates, StateView};

/// Schedules one evaluation against a view of the cluster.
///
/// Pure: the same view, evaluation and environment (seeded from the evaluation id) always
/// produce the same outcome. Capacity shortfalls are not errors; they are reported in
/// `failed_tg_allocs`, `queued_allocations` and a blocked evaluation.
pub fn process(
    view: &dyn StateView,
    eval: &Evaluation,
    env: &mut SchedEnv,
) -> Result<SchedOutcome, SchedError> {
    let mut out = SchedOutcome {
        plan: Plan {
            eval_id: eval.id.clone(),
            priority: eval.priority,
            namespace: eval.namespace.clone(),
            job_id: eval.job_id.clone(),
            snapshot_index: view.index(),
            ..Plan::default()
        },
        ..SchedOutcome::default()
    };
    let allocs = JobAllocs::new(view.allocs_by_job(&eval.namespace, &eval.job_id));
    let job = match view.job(&eval.namespace, &eval.job_id) {
        Some(job) if !job.stop => job,
        _ => {
            let stops = stop_all(&allocs);
            apply_reconciled(&mut out.plan, &stops, None, eval, env);
            return Ok(out);
        }
    };
    if job.job_type != eval.job_type {
        return Err(SchedError::JobTypeMismatch {
            eval_id: eval.id.clone(),
            job_type: job.job_type.as_str(),
            eval_type: eval.job_type.as_str(),
        });
    }
    // A periodic or parameterized template only describes the children launched from it:
    // there is nothing to place, and whatever an earlier version placed is left alone.
    if job.is_periodic_parent() || job.is_parameterized_parent() {
        return Ok(out);
    }
    out.plan.all_at_once = job.all_at_once;
    match job.job_type {
        JobType::Service | JobType::Batch => {
            place_by_count(view, job, &allocs, eval, env, &mut out)?
        }
        JobType::System | JobType::SysBatch => {
            place_per_node(view, job, &allocs, eval, env, &mut out)?
        }
    }
    preemption_followups(view, env, &mut out);
    if !out.failed_tg_allocs.is_empty()
        && !matches!(job.job_type, JobType::System | JobType::SysBatch)
    {
        out.blocked_eval = Some(blocked_eval(eval, job, &out, view.index(), env));
    }
    Ok(out)
}

/// Nodes new allocations may go to (ready, in the job's datacenters and pool), and the number
/// of nodes in the pool.
fn candidates<'a>(view: &'a dyn StateView, job: &Job) -> Candidates<'a> {
    view.candidate_nodes(&job.node_pool, &job.datacenters)
}

/// Service and batch: place each missing index on the best node of a limited walk.
fn place_by_count<'a>(
    view: &'a dyn StateView,
    job: &'a Job,
    allocs: &JobAllocs<'a>,
    eval: &Evaluation,
    env: &mut SchedEnv,
    out: &mut SchedOutcome,
) -> Result<(), SchedError> {
    let rec = reconcile_groups(view, job, allocs, &eval.id, env.now_unix_ns);
    apply_reconciled(&mut out.plan, &rec, Some(job), eval, env);
    reschedule_later(&rec, job, eval, env, out);
    let stopped: Vec<&Allocation> = rec.stops.iter().map(|s| s.alloc).collect();
    let mut table = NodeTable::new(candidates(view, job), &stopped, job.task_groups.len());
    let live: Vec<(&Node, &str)> = allocs
        .live()
        .filter(|a| !table.is_stopped(&a.id))
        .filter_map(|a| view.node(&a.node_id).map(|n| (n, a.task_group.as_str())))
        .collect();
    let mut placed: Vec<(&Node, &str)> = Vec::new();
    for (tg_idx, tg) in job.task_groups.iter().enumerate() {
        out.queued_allocations.insert(tg.name.clone(), 0);
        let mut places = rec.places.iter().filter(|p| p.tg_idx == tg_idx).peekable();
        if places.peek().is_none() {
            continue;
        }
        let mut stack = GroupStack::new(
            job,
            tg_idx,
            &table,
            &live,
            env.config.algorithm,
            &mut env.rng,
        )?;
        stack.set_preemption(preemption_enabled(&env.config, job.job_type));
        for (node, tg_name) in &placed {
            stack.observe_other(node, tg_name);
        }
        let mut failed: Option<AllocMetric> = None;
        for p in places {
            if let Some(metric) = &mut failed {
                // Nomad stops trying once a group fails: the rest would fail the same way.
                metric.coalesced_failures += 1;
                continue;
            }
            let mut counters = stack.counters();
            match stack.select(&mut table, view, job, p.penalty_node, &mut counters) {
                Some((pos, score)) => {
                    let committed = stack.commit(pos, &mut table, view, job, &mut env.rng);
                    let node = table.nodes[pos as usize];
                    let mut metric = stack.metric(&counters, &table);
                    metric.score = Some(score);
                    let mut alloc = new_alloc(
                        env,
                        eval,
                        job,
                        &stack,
                        p.index,
                        node,
                        committed.ports,
                        metric,
                        p.previous,
                    );
                    record_preemptions(&mut out.plan, &mut alloc, &committed.preempted, env);
                    if let (Some(prev), Some(delay_ns)) = (p.previous, p.reschedule_delay_ns) {
                        alloc.reschedule_events = reschedule::replacement_events(
                            tg.reschedule.as_ref(),
                            prev,
                            env.now_unix_ns,
                            delay_ns,
                        )
                        .into();
                    }
                    out.plan
                        .node_allocation
                        .entry(node.id.clone())
                        .or_default()
                        .push(alloc);
                    placed.push((node, tg.name.as_str()));
                }
                None => failed = Some(stack.metric(&counters, &table)),
            }
        }
        if let Some(metric) = failed {
            out.queued_allocations
                .insert(tg.name.clone(), metric.coalesced_failures + 1);
            out.failed_tg_allocs.insert(tg.name.clone(), metric);
        }
    }
    Ok(())
}

/// System and sysbatch: one allocation on every feasible candidate node.
fn place_per_node<'a>(
    view: &'a dyn StateView,
    job: &'a Job,
    allocs: &JobAllocs<'a>,
    eval: &Evaluation,
    env: &mut SchedEnv,
    out: &mut SchedOutcome,
) -> Result<(), SchedError> {
    let (mut rec, mut groups) = reconcile_system(view, job, allocs);
    let stopped: Vec<&Allocation> = rec.stops.iter().map(|s| s.alloc).collect();
    let mut table = NodeTable::new(candidates(view, job), &stopped, job.task_groups.len());
    let live: Vec<(&Node, &str)> = allocs
        .live()
        .filter(|a| !table.is_stopped(&a.id))
        .filter_map(|a| view.node(&a.node_id).map(|n| (n, a.task_group.as_str())))
        .collect();
    let pools = PoolChecker::new(&job.node_pool);
    let dcs = DatacenterChecker::new(&job.datacenters);
    for (tg_idx, tg) in job.task_groups.iter().enumerate() {
        out.queued_allocations.insert(tg.name.clone(), 0);
        let group = &mut groups[tg_idx];
        let mut stack = GroupStack::new(
            job,
            tg_idx,
            &table,
            &live,
            env.config.algorithm,
            &mut env.rng,
        )?;
        stack.set_preemption(preemption_enabled(&env.config, job.job_type));
        let mut failed: Option<AllocMetric> = None;
        for pos in 0..table.nodes.len() as u32 {
            let node = table.nodes[pos as usize];
            let kept = group.kept.remove(node.id.as_str());
            if stack.static_check(pos, node).is_err() {
                if let Some(a) = kept {
                    stop_infeasible(&mut rec, &mut out.plan, a, tg, env);
                }
                continue;
            }
            if kept.is_some() || group.finished.contains(node.id.as_str()) {
                continue;
            }
            let previous = group.replacing.get(node.id.as_str()).copied();
            let mut counters = stack.counters();
            match stack.evaluate(pos, &mut table, view, job, None, &mut counters) {
                Some(score) => {
                    let committed = stack.commit(pos, &mut table, view, job, &mut env.rng);
                    let mut metric = stack.metric(&counters, &table);
                    metric.score = Some(score);
                    let mut alloc = new_alloc(
                        env,
                        eval,
                        job,
                        &stack,
                        0,
                        node,
                        committed.ports,
                        metric,
                        previous,
                    );
                    record_preemptions(&mut out.plan, &mut alloc, &committed.preempted, env);
                    out.plan
                        .node_allocation
                        .entry(node.id.clone())
                        .or_default()
                        .push(alloc);
                    if previous.is_none() {
                        rec.updates.entry(tg.name.clone()).or_default().place += 1;
                    }
                }
                None => match &mut failed {
                    Some(metric) => metric.coalesced_failures += 1,
                    None => failed = Some(stack.metric(&counters, &table)),
                },
            }
        }
        // Allocations on nodes that are no longer candidates: stop them if the job no longer
        // wants the node; keep them if the node is merely not taking new work.
        let mut rest: Vec<&Allocation> = group.kept.drain().map(|(_, a)| a).collect();
        rest.sort_by(|a, b| a.id.cmp(&b.id));
        for a in rest {
            if view
                .node(&a.node_id)
                .is_some_and(|n| !pools.feasible(n) || !dcs.feasible(n))
            {
                stop_infeasible(&mut rec, &mut out.plan, a, tg, env);
            }
        }
        if let Some(metric) = failed {
            out.queued_allocations
                .insert(tg.name.clone(), metric.coalesced_failures + 1);
            out.failed_tg_allocs.insert(tg.name.clone(), metric);
        }
    }
    apply_reconciled(&mut out.plan, &rec, Some(job), eval, env);
    Ok(())
}

/// Creates the follow-up evaluations that replace failed allocations once their reschedule
/// delay has passed, and points each allocation at its evaluation. Allocations due within
/// `FOLLOWUP_BATCH_WINDOW_NS` of the first of a batch share its evaluation.
fn reschedule_later(
    rec: &Reconciled<'_>,
    job: &Job,
    eval: &Evaluation,
    env: &mut SchedEnv,
    out: &mut SchedOutcome,
) {
    let mut later = rec.reschedule_later.clone();
    later.sort_by(|a, b| {
        (a.at_unix_ns, a.alloc.id.as_str()).cmp(&(b.at_unix_ns, b.alloc.id.as_str()))
    });
    let mut batch_start = i64::MIN;
    for l in later {
        if out.followup_evals.is_empty() || l.at_unix_ns - batch_start >= FOLLOWUP_BATCH_WINDOW_NS {
            batch_start = l.at_unix_ns;
            let mut followup = Evaluation::new(
                new_id(&mut env.rng),
                &eval.namespace,
                &eval.job_id,
                eval.job_type,
                eval.priority,
                triggers::ALLOC_FAILURE,
                EvalStatus::Pending,
                env.now_unix_ns,
            );
            followup.job_modify_index = job.job_modify_index;
            followup.status_description = "created for delayed rescheduling".to_string();
            followup.wait_until_unix_ns = l.at_unix_ns;
            followup.previous_eval = eval.id.clone();
            out.followup_evals.push(followup);
        }
        let followup = out.followup_evals.last().expect("pushed above");
        let mut a = l.alloc.clone();
        a.followup_eval_id = followup.id.clone().into();
        a.modify_time_ns = env.now_unix_ns;
        assert_eq!(
            a.desired_status,
            DesiredStatus::Run,
            "only a live failure waits"
        );
        out.plan
            .node_update
            .entry(a.node_id.to_string())
            .or_default()
            .push(a);
    }
}

/// Stops a kept system allocation whose node no longer suits the job.
fn stop_infeasible<'a>(
    rec: &mut Reconciled<'a>,
    plan: &mut Plan,
    alloc: &'a Allocation,
    tg: &crate::structs::TaskGroup,
    env: &SchedEnv,
) {
    let updates = rec.updates.entry(tg.name.clone()).or_default();
    // The reconciler counted it as ignored or updated in place; it is a stop now.
    if let Some(i) = rec.inplace.iter().position(|a| a.id == alloc.id) {
        rec.inplace.remove(i);
        updates.in_place_update = updates.in_place_update.saturating_sub(1);
    } else {
        updates.ignore = updates.ignore.saturating_sub(1);
    }
    updates.stop += 1;
    let stop = Stop {
        alloc,
        description: ALLOC_NODE_INFEASIBLE,
        lost: false,
    };
    push_stop(plan, &stop, env.now_unix_ns);
}

fn push_stop(plan: &mut Plan, stop: &Stop<'_>, now_unix_ns: i64) {
    let mut a = stop.alloc.clone();
    a.desired_status = DesiredStatus::Stop;
    a.desired_description = stop.description.to_string().into();
    if stop.lost {
        a.client_status = ClientStatus::Lost;
    }
    a.modify_time_ns = now_unix_ns;
    plan.node_update
        .entry(a.node_id.to_string())
        .or_default()
        .push(a);
}

/// Writes the reconciler's stops, in-place updates and annotations into the plan.
fn apply_reconciled(
    plan: &mut Plan,
    rec: &Reconciled<'_>,
    job: Option<&Job>,
    eval: &Evaluation,
    env: &SchedEnv,
) {
    for stop in &rec.stops {
        push_stop(plan, stop, env.now_unix_ns);
    }
    if let Some(job) = job {
        for old in &rec.inplace {
            let mut a = (*old).clone();
            a.job_version = job.version;
            a.eval_id = Arc::from(eval.id.as_str());
            a.modify_time_ns = env.now_unix_ns;
            plan.node_allocation
                .entry(a.node_id.to_string())
                .or_default()
                .push(a);
        }
    }
    for (tg, updates) in &rec.updates {
        plan.annotations.insert(tg.clone(), updates.clone());
    }
}

/// Puts the allocations a placement evicts into the plan, each pointing at the placement,
/// and links the placement to them.
fn record_preemptions(
    plan: &mut Plan,
    placed: &mut Allocation,
    preempted: &[Candidate<'_>],
    env: &SchedEnv,
) {
    for c in preempted {
        let mut a = c.alloc.clone();
        a.desired_status = DesiredStatus::Evict;
        a.desired_description = format!("Preempted by alloc ID {}", placed.id).into();
        a.preempted_by_allocation = placed.id.as_str().into();
        a.modify_time_ns = env.now_unix_ns;
        placed.preempted_allocations.push(a.id.to_string());
        plan.node_preemptions
            .entry(a.node_id.to_string())
            .or_default()
            .push(a);
    }
}

/// Counts evictions in the plan's annotations and asks for one evaluation per job that
/// loses allocations, so that job can place replacements elsewhere or wait for capacity.
fn preemption_followups(view: &dyn StateView, env: &mut SchedEnv, out: &mut SchedOutcome) {
    let mut per_group: BTreeMap<&str, u64> = BTreeMap::new();
    for a in out.plan.node_allocation.values().flatten() {
        if !a.preempted_allocations.is_empty() {
            *per_group.entry(a.task_group.as_str()).or_default() +=
                a.preempted_allocations.len() as u64;
        }
    }
    for (tg, n) in per_group {
        out.plan
            .annotations
            .entry(tg.to_string())
            .or_default()
            .preemptions += n;
    }
    let jobs: std::collections::BTreeSet<(&str, &str)> = out
        .plan
        .node_preemptions
        .values()
        .flatten()
        .map(|a| (a.namespace.as_str(), &*a.job_id))
        .collect();
    for (namespace, job_id) in jobs {
        let Some(job) = view.job(namespace, job_id) else {
            continue;
        };
        let mut eval = Evaluation::new(
            new_id(&mut env.rng),
            namespace,
            job_id,
            job.job_type,
            job.priority,
            triggers::PREEMPTION,
            EvalStatus::Pending,
            env.now_unix_ns,
        );
        eval.job_modify_index = job.job_modify_index;
        out.followup_evals.push(eval);
    }
}

#[allow(clippy::too_many_arguments)]
fn new_alloc(
    env: &mut SchedEnv,
    eval: &Evaluation,
    job: &Job,
    stack: &GroupStack<'_>,
    index: u32,
    node: &Node,
    ports: Vec<(String, u16)>,
    metrics: AllocMetric,
    previous: Option<&Allocation>,
) -> Allocation {
    Allocation {
        id: new_time_ordered_id(env.now_unix_ns, &mut env.rng).into(),
        namespace: job.namespace.as_str().into(),
        eval_id: Arc::from(eval.id.as_str()),
        name: compact_str::format_compact!("{}.{}[{}]", job.id, stack.tg.name, index),
        node_id: Arc::from(node.id.as_str()),
        node_name: Arc::from(node.name.as_str()),
        job_id: Arc::from(job.id.as_str()),
        job_version: job.version,
        task_group: stack.tg.name.as_str().into(),
        resources: stack.ask,
        ports: ports.into(),
        desired_status: DesiredStatus::Run,
        desired_description: Default::default(),
        client_status: ClientStatus::Pending,
        client_description: Default::default(),
        task_states: Default::default(),
        previous_allocation: previous.map(|a| a.id.as_str()).unwrap_or_default().into(),
        next_allocation: Default::default(),
        followup_eval_id: Default::default(),
        desired_transition: Default::default(),
        reschedule_events: Default::default(),
        preempted_allocations: Default::default(),
        preempted_by_allocation: Default::default(),
        metrics,
        create_index: 0,
        modify_index: 0,
        alloc_modify_index: 0,
        create_time_ns: env.now_unix_ns,
        modify_time_ns: env.now_unix_ns,
    }
}

/// The evaluation that waits for capacity to place what this run could not.
fn blocked_eval(
    eval: &Evaluation,
    job: &Job,
    out: &SchedOutcome,
    snapshot_index: u64,
    env: &mut SchedEnv,
) -> Evaluation {
    let mut blocked = Evaluation::new(
        new_id(&mut env.rng),
        &eval.namespace,
        &eval.job_id,
        eval.job_type,
        eval.priority,
        triggers::QUEUED_ALLOCS,
        EvalStatus::Blocked,
        env.now_unix_ns,
    );
    blocked.job_modify_index = job.job_modify_index;
    blocked.status_description = "created to place remaining allocations".to_string();
    blocked.previous_eval = eval.id.clone();
    blocked.failed_tg_allocs = out.failed_tg_allocs.clone();
    // drover does not compute node classes, so any node change may unblock it.
    blocked.escaped_computed_class = true;
    blocked.queued_allocations = out.queued_allocations.clone();
    blocked.snapshot_index = snapshot_index;
    blocked
}
