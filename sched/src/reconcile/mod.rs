//! Reconciliation: compares a job's allocations with what the job asks for and sorts them into
//! buckets: keep (ignore), place, stop, lost, migrate, in-place and destructive updates.
//! It decides *what* must happen; the stack decides *where*.

mod group;
pub mod reschedule;
mod system;

use std::collections::{BTreeMap, HashSet};

pub use group::reconcile_groups;
pub use system::{reconcile_system, SystemGroup};

use crate::structs::{Allocation, DesiredUpdates, Job, JobType, TaskGroup};
use crate::view::StateView;

pub const ALLOC_NOT_NEEDED: &str = "alloc not needed due to job update";
pub const ALLOC_JOB_STOPPED: &str = "alloc not needed since job is stopped";
pub const ALLOC_LOST: &str = "alloc is lost since its node is down";
pub const ALLOC_MIGRATING: &str = "alloc is being migrated";
pub const ALLOC_UPDATING: &str = "alloc is being updated due to job update";
pub const ALLOC_NODE_INFEASIBLE: &str = "alloc not needed as node is no longer feasible";

/// An allocation the plan stops.
#[derive(Clone, Copy, Debug)]
pub struct Stop<'a> {
    pub alloc: &'a Allocation,
    pub description: &'static str,
    /// Also mark the client status lost (its node is gone).
    pub lost: bool,
}

/// A new allocation to place.
#[derive(Clone, Copy, Debug)]
pub struct Placement<'a> {
    pub tg_idx: usize,
    pub index: u32,
    /// The allocation this one replaces.
    pub previous: Option<&'a Allocation>,
    /// A node to avoid (the one a failed allocation ran on).
    pub penalty_node: Option<&'a str>,
    /// Set when this replaces a failed allocation: the delay its policy imposed.
    pub reschedule_delay_ns: Option<i64>,
}

/// A failed allocation whose replacement waits for its reschedule delay.
#[derive(Clone, Copy, Debug)]
pub struct RescheduleLater<'a> {
    pub alloc: &'a Allocation,
    pub at_unix_ns: i64,
}

/// The result of reconciling a job.
#[derive(Default, Debug)]
pub struct Reconciled<'a> {
    pub stops: Vec<Stop<'a>>,
    pub places: Vec<Placement<'a>>,
    pub inplace: Vec<&'a Allocation>,
    /// Failed allocations to replace later, through follow-up evaluations.
    pub reschedule_later: Vec<RescheduleLater<'a>>,
    pub updates: BTreeMap<String, DesiredUpdates>,
}

/// A job's allocations, indexed for the questions reconciliation asks.
pub struct JobAllocs<'a> {
    pub all: Vec<&'a Allocation>,
    /// Ids named as `previous_allocation` by some allocation: already replaced.
    replaced: HashSet<&'a str>,
}

impl<'a> JobAllocs<'a> {
    pub fn new(all: Vec<&'a Allocation>) -> JobAllocs<'a> {
        let replaced = all
            .iter()
            .filter(|a| !a.previous_allocation.is_empty())
            .map(|a| a.previous_allocation.as_str())
            .collect();
        JobAllocs { all, replaced }
    }

    pub fn is_replaced(&self, alloc: &Allocation) -> bool {
        self.replaced.contains(alloc.id.as_str())
    }

    /// Allocations that still hold resources (desired run, client not finished).
    pub fn live(&self) -> impl Iterator<Item = &'a Allocation> + '_ {
        self.all.iter().copied().filter(|a| !a.is_terminal())
    }
}

/// Stops every live allocation of a stopped or deleted job.
pub fn stop_all<'a>(allocs: &JobAllocs<'a>) -> Reconciled<'a> {
    let mut out = Reconciled::default();
    for a in allocs.live() {
        out.updates
            .entry(a.task_group.to_string())
            .or_default()
            .stop += 1;
        out.stops.push(Stop {
            alloc: a,
            description: ALLOC_JOB_STOPPED,
            lost: false,
        });
    }
    out
}

/// Where an allocation's node stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeCondition {
    Healthy,
    /// Down, disconnected or deregistered: the allocation is lost.
    Lost,
    /// Draining. Only allocations the drainer marked (`desired_transition.migrate`) move;
    /// the others stay where they are until their turn, as Nomad's reconciler does.
    Draining,
}

/// Returns where an allocation of a `job_type` job stands because of its node. A drain that
/// ignores system jobs leaves their allocations `Healthy`.
pub fn node_condition(view: &dyn StateView, node_id: &str, job_type: JobType) -> NodeCondition {
    match view.node(node_id) {
        None => NodeCondition::Lost,
        Some(n) if n.is_down() => NodeCondition::Lost,
        Some(n) => match &n.drain {
            Some(d) if !(d.ignore_system_jobs && is_system(job_type)) => NodeCondition::Draining,
            _ => NodeCondition::Healthy,
        },
    }
}

pub fn is_system(job_type: JobType) -> bool {
    matches!(job_type, JobType::System | JobType::SysBatch)
}

/// Reports whether a task group changed in a way the running allocation cannot absorb:
/// tasks (drivers, config, resources, env...), networks, constraints, disk or metadata.
pub fn group_changed(old: &TaskGroup, new: &TaskGroup) -> bool {
    old.tasks != new.tasks
        || old.networks != new.networks
        || old.constraints != new.constraints
        || old.ephemeral_disk_mb != new.ephemeral_disk_mb
        || old.meta != new.meta
}

/// Reports whether the reconciler moves an allocation off its draining node now: only once the
/// drainer has marked it for migration.
pub fn migrate_now(alloc: &Allocation) -> bool {
    alloc.desired_transition.migrate
}

/// Reports whether an allocation of an older job version must be replaced rather than updated
/// in place. Without the old version at hand, a change in resources is the evidence used.
pub fn needs_destructive(
    view: &dyn StateView,
    job: &Job,
    tg: &TaskGroup,
    alloc: &Allocation,
) -> bool {
    match view.job_version(&job.namespace, &job.id, alloc.job_version) {
        Some(old) => {
            old.constraints != job.constraints
                || old.meta != job.meta
                || old.group(&tg.name).is_none()
                || old
                    .group(&tg.name)
                    .is_some_and(|old_tg| group_changed(old_tg, tg))
        }
        None => alloc.resources != tg.total_resources(),
    }
}
