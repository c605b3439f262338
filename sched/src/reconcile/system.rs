//! Node-based reconciliation for system and sysbatch jobs: one allocation per eligible node.

use std::collections::{HashMap, HashSet};

use super::{
    migrate_now, needs_destructive, node_condition, JobAllocs, NodeCondition, Reconciled, Stop,
    ALLOC_LOST, ALLOC_MIGRATING, ALLOC_NOT_NEEDED, ALLOC_UPDATING,
};
use crate::structs::{Allocation, ClientStatus, DesiredStatus, Job, JobType};
use crate::view::StateView;

/// Per task group: which nodes already hold an allocation and which must not get another.
#[derive(Default, Debug)]
pub struct SystemGroup<'a> {
    /// Kept (or updated in place) allocations by node id; the node needs no placement, but the
    /// allocation is stopped if the node is no longer feasible.
    pub kept: HashMap<&'a str, &'a Allocation>,
    /// Nodes where a sysbatch allocation already finished: nothing more to run there.
    pub finished: HashSet<&'a str>,
    /// Destructively updated allocations by node id; their replacement goes on the same node.
    pub replacing: HashMap<&'a str, &'a Allocation>,
}

/// Sorts a system job's allocations: lost ones stop, duplicates stop, old versions update.
pub fn reconcile_system<'a>(
    view: &dyn StateView,
    job: &'a Job,
    allocs: &JobAllocs<'a>,
) -> (Reconciled<'a>, Vec<SystemGroup<'a>>) {
    let mut out = Reconciled::default();
    let mut groups: Vec<SystemGroup<'a>> = job
        .task_groups
        .iter()
        .map(|_| SystemGroup::default())
        .collect();
    for a in allocs.all.iter().copied() {
        let Some(tg_idx) = job
            .task_groups
            .iter()
            .position(|tg| tg.name == a.task_group)
        else {
            if !a.is_terminal() {
                out.updates
                    .entry(a.task_group.to_string())
                    .or_default()
                    .stop += 1;
                out.stops.push(Stop {
                    alloc: a,
                    description: ALLOC_NOT_NEEDED,
                    lost: false,
                });
            }
            continue;
        };
        let tg = &job.task_groups[tg_idx];
        let group = &mut groups[tg_idx];
        let updates = out.updates.entry(tg.name.clone()).or_default();
        if a.desired_status != DesiredStatus::Run {
            continue;
        }
        if a.client_status.is_terminal() {
            // A sysbatch run that finished (or failed) is not repeated on that node; a system
            // allocation is restarted wherever it ended.
            if job.job_type == JobType::SysBatch && a.client_status != ClientStatus::Lost {
                group.finished.insert(a.node_id.as_ref());
            }
            continue;
        }
        // An allocation on a draining node that the drainer has not marked yet is treated as
        // on a healthy node: system allocations go last, once the rest of the node is empty.
        let condition = match node_condition(view, &a.node_id, job.job_type) {
            NodeCondition::Draining if !migrate_now(a) => NodeCondition::Healthy,
            condition => condition,
        };
        match condition {
            NodeCondition::Lost => {
                updates.stop += 1;
                out.stops.push(Stop {
                    alloc: a,
                    description: ALLOC_LOST,
                    lost: true,
                });
            }
            NodeCondition::Draining => {
                updates.migrate += 1;
                out.stops.push(Stop {
                    alloc: a,
                    description: ALLOC_MIGRATING,
                    lost: false,
                });
            }
            NodeCondition::Healthy => {
                let node = a.node_id.as_ref();
                if group.kept.contains_key(node) || group.replacing.contains_key(node) {
                    updates.stop += 1;
                    out.stops.push(Stop {
                        alloc: a,
                        description: ALLOC_NOT_NEEDED,
                        lost: false,
                    });
                } else if a.job_version == job.version {
                    updates.ignore += 1;
                    group.kept.insert(node, a);
                } else if needs_destructive(view, job, tg, a) {
                    updates.destructive_update += 1;
                    out.stops.push(Stop {
                        alloc: a,
                        description: ALLOC_UPDATING,
                        lost: false,
                    });
                    group.replacing.insert(node, a);
                } else {
                    updates.in_place_update += 1;
                    out.inplace.push(a);
                    group.kept.insert(node, a);
                }
            }
        }
    }
    (out, groups)
}
