//! Plans: what a scheduler proposes, and what the plan applier accepted.

use std::collections::BTreeMap;

use rkyv::{Archive, Deserialize, Serialize};

use super::{AllocMetric, Allocation, Evaluation};

/// Counts of what a plan would do to one task group, shown by `job plan`.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredUpdates {
    pub ignore: u64,
    pub place: u64,
    pub migrate: u64,
    pub stop: u64,
    pub in_place_update: u64,
    pub destructive_update: u64,
    pub canary: u64,
    pub preemptions: u64,
}

/// A scheduler's proposal for one evaluation.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Plan {
    pub eval_id: String,
    pub priority: u16,
    pub namespace: String,
    pub job_id: String,
    /// Allocations to stop or mark lost, by node id. Each carries its new desired/client status.
    pub node_update: BTreeMap<String, Vec<Allocation>>,
    /// Allocations to place (new or updated in place), by node id.
    pub node_allocation: BTreeMap<String, Vec<Allocation>>,
    /// Lower-priority allocations to evict so that placements fit, by node id.
    pub node_preemptions: BTreeMap<String, Vec<Allocation>>,
    /// Commit all or nothing (the job's `all_at_once`).
    pub all_at_once: bool,
    /// The state index the scheduler planned against.
    pub snapshot_index: u64,
    /// Per task group counts, for `job plan`.
    pub annotations: BTreeMap<String, DesiredUpdates>,
}

impl Plan {
    /// Reports whether the plan changes nothing.
    pub fn is_no_op(&self) -> bool {
        self.node_update.values().all(Vec::is_empty)
            && self.node_allocation.values().all(Vec::is_empty)
    }

    /// Returns the number of placements in the plan.
    pub fn placement_count(&self) -> usize {
        self.node_allocation.values().map(Vec::len).sum()
    }
}

/// What the plan applier committed of a plan.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct PlanResult {
    /// Stops, evictions and other updates of existing allocations committed.
    pub updates_committed: usize,
    /// Placements committed.
    pub placements_committed: usize,
    /// Nodes whose part of the plan did not fit the latest state.
    pub rejected_nodes: Vec<String>,
    /// When non-zero, the scheduler must refresh its view to at least this index and retry.
    pub refresh_index: u64,
    /// The Raft index the accepted part was committed at.
    pub alloc_index: u64,
}

impl PlanResult {
    /// Reports whether everything a plan of `placements_planned` placements proposed was
    /// committed.
    pub fn fully_committed(&self, placements_planned: usize) -> bool {
        self.rejected_nodes.is_empty() && self.placements_committed == placements_planned
    }
}

/// Everything one scheduler run produces: the plan, and how the evaluation ends.
#[derive(Clone, Debug, Default)]
pub struct SchedOutcome {
    pub plan: Plan,
    /// Placements that found no node, per task group, with their metrics.
    pub failed_tg_allocs: BTreeMap<String, AllocMetric>,
    /// Allocations still to be placed, per task group.
    pub queued_allocations: BTreeMap<String, u64>,
    /// A blocked evaluation to create when some placements failed for lack of capacity.
    pub blocked_eval: Option<Evaluation>,
    /// Follow-up evaluations to create (delayed reschedules and the like).
    pub followup_evals: Vec<Evaluation>,
}
