//! Count-based reconciliation for service and batch jobs: one slot per allocation index.

use std::collections::HashSet;

use super::reschedule::{self, Decision};
use super::{
    needs_destructive, node_condition, JobAllocs, NodeCondition, Placement, Reconciled,
    RescheduleLater, Stop, ALLOC_LOST, ALLOC_MIGRATING, ALLOC_NOT_NEEDED, ALLOC_UPDATING,
};
use crate::structs::{Allocation, ClientStatus, DesiredStatus, Job, JobType};
use crate::view::StateView;

/// What happens to one index of a task group.
enum Slot<'a> {
    /// Running and current: leave it.
    Keep(&'a Allocation),
    /// Running an older version whose group did not change: update in place.
    InPlace(&'a Allocation),
    /// Replace `old` (already stopped, lost, failed or being moved) with a new allocation.
    Replace {
        old: &'a Allocation,
        kind: ReplaceKind,
    },
    /// Finished for good (a completed batch allocation, or a failure out of reschedules).
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ReplaceKind {
    Lost,
    Migrate,
    Destructive,
    Reschedule { delay_ns: i64 },
}

/// Reconciles every task group of a live job against its allocations, in the evaluation
/// `eval_id` running at `now_unix_ns` (reschedule delays are measured against it).
pub fn reconcile_groups<'a>(
    view: &dyn StateView,
    job: &'a Job,
    allocs: &JobAllocs<'a>,
    eval_id: &str,
    now_unix_ns: i64,
) -> Reconciled<'a> {
    let mut out = Reconciled::default();
    for a in allocs.live() {
        if job.group(&a.task_group).is_none() {
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
    }
    for (tg_idx, tg) in job.task_groups.iter().enumerate() {
        let mut slots: Vec<(u32, Slot<'a>)> = Vec::new();
        for a in allocs.all.iter().copied() {
            if a.task_group != tg.name || a.desired_status != DesiredStatus::Run {
                continue;
            }
            // An unparsable name sorts last, so it is the first to go when over count.
            let idx = a.index().unwrap_or(u32::MAX);
            let slot = match a.client_status {
                ClientStatus::Complete if job.job_type == JobType::Batch => Slot::Done,
                ClientStatus::Complete => continue,
                ClientStatus::Failed | ClientStatus::Lost if allocs.is_replaced(a) => continue,
                ClientStatus::Failed => {
                    match reschedule::decide(job.job_type, tg, a, eval_id, now_unix_ns) {
                        Decision::Now { delay_ns } => Slot::Replace {
                            old: a,
                            kind: ReplaceKind::Reschedule { delay_ns },
                        },
                        Decision::Later { at_unix_ns, .. } => {
                            out.reschedule_later.push(RescheduleLater {
                                alloc: a,
                                at_unix_ns,
                            });
                            Slot::Keep(a)
                        }
                        // It keeps its index until its follow-up evaluation replaces it.
                        Decision::Waiting => Slot::Keep(a),
                        Decision::Never => Slot::Done,
                    }
                }
                ClientStatus::Lost => Slot::Replace {
                    old: a,
                    kind: ReplaceKind::Lost,
                },
                ClientStatus::Pending | ClientStatus::Running | ClientStatus::Unknown => {
                    match node_condition(view, &a.node_id, job.job_type) {
                        NodeCondition::Lost => {
                            out.stops.push(Stop {
                                alloc: a,
                                description: ALLOC_LOST,
                                lost: true,
                            });
                            Slot::Replace {
                                old: a,
                                kind: ReplaceKind::Lost,
                            }
                        }
                        // Not marked by the drainer yet: it waits where it is for its turn.
                        NodeCondition::Draining if !super::migrate_now(a) => Slot::Keep(a),
                        NodeCondition::Draining => {
                            out.stops.push(Stop {
                                alloc: a,
                                description: ALLOC_MIGRATING,
                                lost: false,
                            });
                            Slot::Replace {
                                old: a,
                                kind: ReplaceKind::Migrate,
                            }
                        }
                        NodeCondition::Healthy if a.job_version != job.version => {
                            if needs_destructive(view, job, tg, a) {
                                out.stops.push(Stop {
                                    alloc: a,
                                    description: ALLOC_UPDATING,
                                    lost: false,
                                });
                                Slot::Replace {
                                    old: a,
                                    kind: ReplaceKind::Destructive,
                                }
                            } else {
                                Slot::InPlace(a)
                            }
                        }
                        NodeCondition::Healthy => Slot::Keep(a),
                    }
                }
            };
            slots.push((idx, slot));
        }

        // Over count: drop the highest indexes first. Finished slots cost nothing and stay.
        // At equal index a running allocation sorts before a replacement, so duplicates lose
        // their replacement first.
        slots.sort_by_key(|(idx, slot)| {
            let rank = match slot {
                Slot::Done => 0,
                Slot::Keep(_) => 1,
                Slot::InPlace(_) => 2,
                Slot::Replace { .. } => 3,
            };
            (*idx, rank)
        });
        let count = tg.count as usize;
        let updates = out.updates.entry(tg.name.clone()).or_default();
        let mut i = slots.len();
        let mut excess = slots.len().saturating_sub(count);
        while excess > 0 && i > 0 {
            i -= 1;
            match slots[i].1 {
                Slot::Done => continue,
                Slot::Keep(a) | Slot::InPlace(a) => {
                    out.stops.push(Stop {
                        alloc: a,
                        description: ALLOC_NOT_NEEDED,
                        lost: false,
                    });
                    updates.stop += 1;
                }
                // Its old allocation is already stopped or finished; just do not replace it.
                Slot::Replace { kind, .. } => {
                    if matches!(
                        kind,
                        ReplaceKind::Lost | ReplaceKind::Migrate | ReplaceKind::Destructive
                    ) {
                        updates.stop += 1;
                    }
                }
            }
            slots.remove(i);
            excess -= 1;
        }

        let used: HashSet<u32> = slots.iter().map(|(idx, _)| *idx).collect();
        for (idx, slot) in &slots {
            match slot {
                Slot::Keep(_) => updates.ignore += 1,
                Slot::Done => {}
                Slot::InPlace(a) => {
                    updates.in_place_update += 1;
                    out.inplace.push(a);
                }
                Slot::Replace { old, kind } => {
                    match kind {
                        ReplaceKind::Destructive => updates.destructive_update += 1,
                        ReplaceKind::Migrate => updates.migrate += 1,
                        ReplaceKind::Lost | ReplaceKind::Reschedule { .. } => updates.place += 1,
                    }
                    let reschedule_delay_ns = match kind {
                        ReplaceKind::Reschedule { delay_ns } => Some(*delay_ns),
                        _ => None,
                    };
                    let penalty_node = reschedule_delay_ns.map(|_| old.node_id.as_ref());
                    let index = if *idx == u32::MAX { 0 } else { *idx };
                    out.places.push(Placement {
                        tg_idx,
                        index,
                        previous: Some(old),
                        penalty_node,
                        reschedule_delay_ns,
                    });
                }
            }
        }
        let mut missing = count.saturating_sub(slots.len());
        let mut idx = 0u32;
        while missing > 0 {
            if !used.contains(&idx) {
                out.places.push(Placement {
                    tg_idx,
                    index: idx,
                    previous: None,
                    penalty_node: None,
                    reschedule_delay_ns: None,
                });
                updates.place += 1;
                missing -= 1;
            }
            idx += 1;
        }
    }
    // A failed allocation stopped for being over count is not replaced later either.
    let stopped: std::collections::HashSet<&str> =
        out.stops.iter().map(|s| s.alloc.id.as_str()).collect();
    out.reschedule_later
        .retain(|l| !stopped.contains(l.alloc.id.as_str()));
    out
}
