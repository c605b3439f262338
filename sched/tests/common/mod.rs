//! Shared fixture and expectation types: every scenario runs through `check`.

#![allow(dead_code)]

use std::collections::BTreeMap;

use sched::structs::{
    Allocation, ClientStatus, DesiredStatus, Job, MetricCount, Node, SchedOutcome,
};
use sched::testing::{eval_for, MemView};
use sched::{process, SchedEnv, SchedulerAlgorithm, SchedulerConfig, StateView};

/// The state a scenario starts from.
pub struct Fixture {
    pub nodes: Vec<Node>,
    /// Older versions first; the last one is current.
    pub jobs: Vec<Job>,
    pub allocs: Vec<Allocation>,
    pub algorithm: SchedulerAlgorithm,
}

impl Fixture {
    pub fn new(nodes: Vec<Node>, job: Job) -> Fixture {
        Fixture {
            nodes,
            jobs: vec![job],
            allocs: Vec::new(),
            algorithm: SchedulerAlgorithm::Binpack,
        }
    }

    pub fn view(&self) -> MemView {
        let mut view = MemView::new(self.nodes.clone(), Vec::new(), self.allocs.clone());
        for j in &self.jobs {
            view.upsert_job(j.clone());
        }
        view
    }
}

/// What a scenario must produce. `None` fields are not checked.
#[derive(Default)]
pub struct Expect {
    /// New placements (excluding in-place updates).
    pub placed: Option<usize>,
    /// Placements per node id.
    pub placed_on: Option<Vec<(&'static str, usize)>>,
    /// Node ids placements may land on.
    pub only_on: Option<Vec<&'static str>>,
    /// Allocations stopped, with their desired description.
    pub stopped: Option<Vec<(&'static str, &'static str)>>,
    /// Allocations marked lost.
    pub lost: Option<Vec<&'static str>>,
    /// Allocations updated in place.
    pub in_place: Option<Vec<&'static str>>,
    /// Names of placed allocations.
    pub names: Option<Vec<&'static str>>,
    /// `(task group, queued)`; a blocked eval is expected exactly when some count is non-zero
    /// for service and batch.
    pub queued: Option<Vec<(&'static str, u64)>>,
    pub blocked: Option<bool>,
    /// `(task group, reason, count)` in the group's `MetricCount::ConstraintFiltered` counts.
    pub failed_filtered: Vec<(&'static str, &'static str, u64)>,
    /// `(task group, dimension)` present in the group's `MetricCount::DimensionExhausted` counts.
    pub failed_exhausted: Vec<(&'static str, &'static str)>,
    /// `(previous alloc id)` expected as the `previous_allocation` of some placement.
    pub replaces: Vec<&'static str>,
}

pub fn run(fixture: &Fixture, eval_id: &str) -> (MemView, SchedOutcome) {
    let view = fixture.view();
    let job = fixture.jobs.last().expect("a fixture has a job");
    let eval = eval_for(job, eval_id);
    let config = SchedulerConfig {
        algorithm: fixture.algorithm,
        ..SchedulerConfig::default()
    };
    let mut env = SchedEnv::for_eval(&eval.id, 1_000, config);
    let out = process(&view, &eval, &mut env).expect("process succeeds");
    (view, out)
}

/// Runs the fixture's job through `process` and asserts the expectation.
pub fn check(fixture: &Fixture, expect: &Expect) -> SchedOutcome {
    let (view, out) = run(fixture, "eval-1");
    let plan = &out.plan;
    assert_eq!(plan.eval_id, "eval-1");
    assert_eq!(plan.snapshot_index, view.index());
    let existing: Vec<&str> = fixture.allocs.iter().map(|a| a.id.as_str()).collect();
    let (updated, new): (Vec<&Allocation>, Vec<&Allocation>) = plan
        .node_allocation
        .values()
        .flatten()
        .partition(|a| existing.contains(&a.id.as_str()));
    for a in &new {
        assert_eq!(a.desired_status, DesiredStatus::Run);
        assert_eq!(a.client_status, ClientStatus::Pending);
        assert_eq!(a.create_time_ns, 1_000);
        assert!(
            a.metrics.nodes_evaluated > 0,
            "metrics recorded for {}",
            a.name
        );
        assert!(a.metrics.score.is_some(), "chosen node scored");
        let node = view.node(&a.node_id).expect("placed on a known node");
        assert!(node.ready_for_placement(), "placed on a ready node");
        assert_eq!(*a.node_name, *node.name);
    }
    if let Some(n) = expect.placed {
        assert_eq!(new.len(), n, "placements: {:?}", names(&new));
    }
    if let Some(per_node) = &expect.placed_on {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for a in &new {
            *counts.entry(a.node_id.as_ref()).or_default() += 1;
        }
        let want: BTreeMap<&str, usize> = per_node.iter().copied().collect();
        assert_eq!(counts, want);
    }
    if let Some(only) = &expect.only_on {
        for a in &new {
            assert!(
                only.contains(&a.node_id.as_ref()),
                "{} placed on {}",
                a.name,
                a.node_id
            );
        }
    }
    if let Some(want) = &expect.names {
        let mut got = names(&new);
        got.sort();
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, want);
    }
    let updates: Vec<&Allocation> = plan.node_update.values().flatten().collect();
    for a in &updates {
        assert_eq!(a.desired_status, DesiredStatus::Stop);
    }
    if let Some(want) = &expect.stopped {
        let mut got: Vec<(String, String)> = updates
            .iter()
            .map(|a| (a.id.to_string(), a.desired_description.to_string()))
            .collect();
        got.sort();
        let mut want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        want.sort();
        assert_eq!(got, want);
    }
    if let Some(want) = &expect.lost {
        let mut got: Vec<&str> = updates
            .iter()
            .filter(|a| a.client_status == ClientStatus::Lost)
            .map(|a| a.id.as_str())
            .collect();
        got.sort();
        assert_eq!(&got, want);
    }
    if let Some(want) = &expect.in_place {
        let job = fixture.jobs.last().unwrap();
        let mut got: Vec<&str> = updated.iter().map(|a| a.id.as_str()).collect();
        got.sort();
        assert_eq!(&got, want);
        assert!(updated.iter().all(|a| a.job_version == job.version));
    }
    if let Some(want) = &expect.queued {
        for (tg, n) in want {
            assert_eq!(out.queued_allocations.get(*tg), Some(n), "queued for {tg}");
        }
    }
    if let Some(blocked) = expect.blocked {
        assert_eq!(out.blocked_eval.is_some(), blocked);
        if let Some(b) = &out.blocked_eval {
            assert_eq!(b.previous_eval, "eval-1");
            assert_eq!(b.triggered_by, "queued-allocs");
            assert_eq!(b.status, sched::structs::EvalStatus::Blocked);
            assert_eq!(b.job_id, plan.job_id);
            assert_ne!(b.id, "eval-1");
        }
    }
    for (tg, reason, n) in &expect.failed_filtered {
        let metric = out.failed_tg_allocs.get(*tg).expect("group failed");
        assert_eq!(
            metric.count(MetricCount::ConstraintFiltered, reason),
            Some(*n),
            "{:?}",
            metric
        );
    }
    for (tg, dim) in &expect.failed_exhausted {
        let metric = out.failed_tg_allocs.get(*tg).expect("group failed");
        assert!(
            metric.count(MetricCount::DimensionExhausted, dim).is_some(),
            "{:?}",
            metric
        );
        assert!(metric.nodes_exhausted > 0);
    }
    for prev in &expect.replaces {
        assert!(
            new.iter().any(|a| a.previous_allocation == *prev),
            "a replacement of {prev} was placed"
        );
    }
    out
}

fn names(allocs: &[&Allocation]) -> Vec<String> {
    allocs.iter().map(|a| a.name.to_string()).collect()
}
