//! Plan verification on the Raft core: re-checks a scheduler's plan against the latest
//! committed state plus the plans already accepted into entries still in flight.
//!
//! Schedulers plan optimistically against a view that may be stale; this is where two plans
//! that both wanted the last free memory on a node are told apart. A node whose part of a
//! plan no longer fits is rejected as a whole; the scheduler retries with a fresher view.
//!
//! Allocations a plan evicts (preemptions) free their resources and ports on their node
//! like stops do, and are committed as updates with their `Evict` status. Evictions of
//! allocations that are already terminal or gone are dropped: nothing is left to free, and
//! the node's placements are verified by capacity as usual.

// PERF-CRITICAL: every placement passes through here on the leader's Raft core.

use std::collections::{HashMap, HashSet};

use sched::structs::{Allocation, Plan, Resources};
use sched::StateView;

use crate::state::{ClusterState, PlanApply};

/// Usage added by accepted plans whose entries are not applied yet, per node.
#[derive(Default, Clone, Debug)]
pub struct PendingUsage {
    pub resources: HashMap<String, Resources>,
    pub ports: HashMap<String, HashSet<u16>>,
}

impl PendingUsage {
    /// Adds another pending set to this one.
    pub fn merge(&mut self, other: &PendingUsage) {
        for (node, r) in &other.resources {
            let e = self.resources.entry(node.clone()).or_default();
            *e = e.add(r);
        }
        for (node, ports) in &other.ports {
            self.ports
                .entry(node.clone())
                .or_default()
                .extend(ports.iter().copied());
        }
    }
}

/// What verification decided for one plan.
#[derive(Debug, Default)]
pub struct Verdict {
    pub accepted: PlanApply,
    pub rejected_nodes: Vec<String>,
    /// Usage the accepted part adds (to count against later plans in flight).
    pub added: PendingUsage,
}

/// Verifies `plan` against `state` plus `pending`. The accepted part moves into the
/// verdict: a placement is not copied on its way into the log.
pub fn verify_plan(state: &ClusterState, mut plan: Plan, pending: &PendingUsage) -> Verdict {
    let mut verdict = Verdict {
        accepted: PlanApply {
            eval_id: plan.eval_id.clone(),
            ..PlanApply::default()
        },
        ..Verdict::default()
    };
    let mut nodes: Vec<String> = plan
        .node_update
        .keys()
        .chain(plan.node_allocation.keys())
        .chain(plan.node_preemptions.keys())
        .cloned()
        .collect();
    nodes.sort();
    nodes.dedup();
    verdict.accepted.placements.reserve(plan.placement_count());
    // An all-at-once plan that loses one node is refused on every node it places on.
    let placing: Vec<String> = if plan.all_at_once {
        plan.node_allocation.keys().cloned().collect()
    } else {
        Vec::new()
    };
    for node_id in nodes {
        let updates = plan.node_update.remove(&node_id).unwrap_or_default();
        let placements = plan.node_allocation.remove(&node_id).unwrap_or_default();
        let mut preemptions = plan.node_preemptions.remove(&node_id).unwrap_or_default();
        preemptions.retain(|p| live_on(state, &node_id, p));
        let evicting: Vec<&Allocation> = preemptions.iter().collect();
        match verify_node(state, &node_id, &updates, &evicting, &placements, pending) {
            Some(added) => {
                verdict.accepted.updates.extend(updates);
                verdict.accepted.updates.extend(preemptions);
                verdict.accepted.placements.extend(placements);
                if added.0 != Resources::default() {
                    verdict.added.resources.insert(node_id.clone(), added.0);
                }
                if !added.1.is_empty() {
                    verdict.added.ports.insert(node_id, added.1);
                }
            }
            None => verdict.rejected_nodes.push(node_id),
        }
    }
    if plan.all_at_once && !verdict.rejected_nodes.is_empty() {
        let mut all = placing;
        all.sort();
        return Verdict {
            accepted: PlanApply {
                eval_id: plan.eval_id.clone(),
                ..PlanApply::default()
            },
            rejected_nodes: all,
            added: PendingUsage::default(),
        };
    }
    verdict
}

/// Reports whether a planned eviction is of an allocation still live on `node_id`.
fn live_on(state: &ClusterState, node_id: &str, preemption: &Allocation) -> bool {
    state
        .alloc_by_id(&preemption.id)
        .is_some_and(|a| *a.node_id == *node_id && !a.is_terminal())
}

/// Checks one node's part of a plan. Returns the usage and ports it adds when it fits.
fn verify_node(
    state: &ClusterState,
    node_id: &str,
    updates: &[Allocation],
    preemptions: &[&Allocation],
    placements: &[Allocation],
    pending: &PendingUsage,
) -> Option<(Resources, HashSet<u16>)> {
    if placements.is_empty() {
        // Stopping or evicting allocations always fits.
        return Some((Resources::default(), HashSet::new()));
    }
    let node = state.node(node_id)?;
    let stopping: HashSet<&str> = updates
        .iter()
        .map(|a| a.id.as_str())
        .chain(preemptions.iter().map(|a| a.id.as_str()))
        .collect();
    let replaced: HashSet<&str> = placements.iter().map(|a| a.id.as_str()).collect();
    // Start from the usage table and take out what this plan stops or replaces, so the
    // common case costs O(plan) and not O(allocations on the node).
    let mut used = state.node_usage(node_id);
    for id in stopping.union(&replaced) {
        if let Some(a) = state.alloc_by_id(id) {
            if *a.node_id == *node_id && !a.is_terminal() {
                used = used.sub(&a.resources);
            }
        }
    }
    let mut ports: HashSet<u16> = pending.ports.get(node_id).cloned().unwrap_or_default();
    if placements.iter().any(|a| !a.ports.is_empty()) {
        for alloc in state.allocs_by_node(node_id) {
            if alloc.is_terminal()
                || stopping.contains(alloc.id.as_str())
                || replaced.contains(alloc.id.as_str())
            {
                continue;
            }
            ports.extend(alloc.ports.iter().map(|(_, p)| *p));
        }
    }
    if let Some(extra) = pending.resources.get(node_id) {
        used = used.add(extra);
    }
    let mut added = Resources::default();
    let mut added_ports = HashSet::new();
    for alloc in placements {
        let existing = state.alloc_by_id(&alloc.id);
        // An id names one allocation for good: a placement may move or update its own
        // allocation, never take over another's (that would drop the other from the state).
        if existing.is_some_and(|a| a.name != alloc.name || a.job_id != alloc.job_id) {
            tracing::warn!(alloc_id = %alloc.id, name = %alloc.name, "plan reuses the id of another allocation; rejecting the node's part");
            return None;
        }
        let is_new = existing.is_none_or(|a| a.node_id != alloc.node_id);
        if is_new && !node.ready_for_placement() {
            return None;
        }
        for (_, port) in &alloc.ports {
            if !ports.insert(*port) {
                return None;
            }
            added_ports.insert(*port);
        }
        added = added.add(&alloc.resources);
    }
    let capacity = node.schedulable();
    if used.add(&added).exceeds(&capacity).is_some() {
        return None;
    }
    Some((added, added_ports))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sched::structs::*;

    use std::sync::Arc;

    fn node(id: &str, cpu: u64, mem: u64) -> Node {
        let mut node = sched::testing::node(id, cpu, mem);
        node.secret_id = "s".into();
        node.resources.disk_mb = 10_000;
        node
    }

    fn alloc(id: &str, node: &str, cpu: u64, mem: u64) -> Allocation {
        Allocation {
            id: id.into(),
            namespace: "default".into(),
            eval_id: "e".into(),
            name: format!("j.g[{id}]").into(),
            node_id: node.into(),
            node_name: node.into(),
            job_id: "j".into(),
            job_version: 0,
            task_group: "g".into(),
            resources: Resources {
                cpu_mhz: cpu,
                memory_mb: mem,
                memory_max_mb: 0,
                disk_mb: 0,
            },
            ports: Default::default(),
            desired_status: DesiredStatus::Run,
            desired_description: Default::default(),
            client_status: ClientStatus::Pending,
            client_description: Default::default(),
            task_states: Default::default(),
            previous_allocation: Default::default(),
            next_allocation: Default::default(),
            followup_eval_id: Default::default(),
            desired_transition: Default::default(),
            reschedule_events: Default::default(),
            preempted_allocations: Default::default(),
            preempted_by_allocation: Default::default(),
            metrics: AllocMetric::default(),
            create_index: 0,
            modify_index: 0,
            alloc_modify_index: 0,
            create_time_ns: 0,
            modify_time_ns: 0,
        }
    }

    fn plan(placements: Vec<Allocation>) -> Plan {
        let mut p = Plan {
            eval_id: "e".into(),
            ..Plan::default()
        };
        for a in placements {
            p.node_allocation
                .entry(a.node_id.to_string())
                .or_default()
                .push(a);
        }
        p
    }

    fn state() -> ClusterState {
        let mut s = ClusterState::new(6);
        s.nodes
            .insert("n1".into(), Arc::new(node("n1", 1000, 1000)));
        s.nodes
            .insert("n2".into(), Arc::new(node("n2", 1000, 1000)));
        s
    }

    #[test]
    fn a_plan_that_fits_is_accepted_whole() {
        let s = state();
        let v = verify_plan(
            &s,
            plan(vec![alloc("a", "n1", 500, 500), alloc("b", "n2", 500, 500)]),
            &PendingUsage::default(),
        );
        assert!(v.rejected_nodes.is_empty());
        assert_eq!(v.accepted.placements.len(), 2);
    }

    #[test]
    fn a_placement_that_reuses_another_allocations_id_is_rejected() {
        let mut s = state();
        s.put_alloc(alloc("x", "n1", 100, 100));
        // Same id, another allocation (another name): accepting it would drop "x".
        let mut thief = alloc("x", "n2", 100, 100);
        thief.name = "j.g[7]".into();
        let v = verify_plan(
            &s,
            plan(vec![thief, alloc("b", "n1", 100, 100)]),
            &PendingUsage::default(),
        );
        assert_eq!(v.rejected_nodes, vec!["n2".to_string()]);
        assert_eq!(v.accepted.placements.len(), 1);
        // The same allocation moving to another node is an update of itself, and fits.
        let v = verify_plan(
            &s,
            plan(vec![alloc("x", "n2", 100, 100)]),
            &PendingUsage::default(),
        );
        assert!(v.rejected_nodes.is_empty());
    }

    #[test]
    fn a_node_that_filled_up_meanwhile_is_rejected() {
        let mut s = state();
        s.put_alloc(alloc("old", "n1", 800, 100));
        let v = verify_plan(
            &s,
            plan(vec![alloc("a", "n1", 500, 500), alloc("b", "n2", 500, 500)]),
            &PendingUsage::default(),
        );
        assert_eq!(v.rejected_nodes, vec!["n1".to_string()]);
        assert_eq!(v.accepted.placements.len(), 1);
        assert_eq!(v.accepted.placements[0].node_id, "n2".into());
    }

    #[test]
    fn pending_usage_of_plans_in_flight_counts() {
        let s = state();
        let first = verify_plan(
            &s,
            plan(vec![alloc("a", "n1", 600, 100)]),
            &PendingUsage::default(),
        );
        let second = verify_plan(&s, plan(vec![alloc("b", "n1", 600, 100)]), &first.added);
        assert_eq!(second.rejected_nodes, vec!["n1".to_string()]);
    }

    #[test]
    fn port_collisions_are_rejected() {
        let mut s = state();
        let mut old = alloc("old", "n1", 1, 1);
        old.ports = vec![("http".into(), 8080)].into();
        s.put_alloc(old);
        let mut new = alloc("a", "n1", 1, 1);
        new.ports = vec![("http".into(), 8080)].into();
        let v = verify_plan(&s, plan(vec![new]), &PendingUsage::default());
        assert_eq!(v.rejected_nodes, vec!["n1".to_string()]);
    }

    #[test]
    fn all_at_once_rejects_everything_on_any_failure() {
        let mut s = state();
        s.put_alloc(alloc("old", "n1", 800, 100));
        let mut p = plan(vec![alloc("a", "n1", 500, 500), alloc("b", "n2", 500, 500)]);
        p.all_at_once = true;
        let v = verify_plan(&s, p.clone(), &PendingUsage::default());
        assert!(v.accepted.placements.is_empty());
        assert_eq!(v.rejected_nodes.len(), 2);
    }

    /// Marks `victim` as evicted by `by`, the way the scheduler puts it into a plan.
    fn preempt(p: &mut Plan, victim: &Allocation, by: &str) {
        let mut a = victim.clone();
        a.desired_status = DesiredStatus::Evict;
        a.desired_description = format!("Preempted by alloc ID {by}").into();
        a.preempted_by_allocation = by.to_string().into();
        p.node_preemptions
            .entry(a.node_id.to_string())
            .or_default()
            .push(a);
    }

    #[test]
    fn preemptions_free_capacity_and_are_committed_as_evictions() {
        let mut s = state();
        let low = alloc("low", "n1", 800, 800);
        s.put_alloc(low.clone());
        let mut p = plan(vec![alloc("a", "n1", 500, 500)]);
        let without = verify_plan(&s, p.clone(), &PendingUsage::default());
        assert_eq!(without.rejected_nodes, vec!["n1".to_string()]);

        preempt(&mut p, &low, "a");
        let v = verify_plan(&s, p.clone(), &PendingUsage::default());
        assert!(v.rejected_nodes.is_empty(), "{:?}", v.rejected_nodes);
        assert_eq!(v.accepted.placements.len(), 1);
        assert_eq!(v.accepted.updates.len(), 1);
        let evicted = &v.accepted.updates[0];
        assert_eq!(evicted.id, "low");
        assert_eq!(evicted.desired_status, DesiredStatus::Evict);
        assert_eq!(evicted.preempted_by_allocation, "a");
    }

    #[test]
    fn preemptions_free_ports() {
        let mut s = state();
        let mut low = alloc("low", "n1", 1, 1);
        low.ports = vec![("http".into(), 8080)].into();
        s.put_alloc(low.clone());
        let mut new = alloc("a", "n1", 1, 1);
        new.ports = vec![("http".into(), 8080)].into();
        let mut p = plan(vec![new]);
        preempt(&mut p, &low, "a");
        let v = verify_plan(&s, p.clone(), &PendingUsage::default());
        assert!(v.rejected_nodes.is_empty(), "{:?}", v.rejected_nodes);
    }

    #[test]
    fn evictions_of_terminal_or_missing_allocations_are_dropped() {
        let mut s = state();
        let mut done = alloc("done", "n1", 800, 800);
        done.client_status = ClientStatus::Complete;
        s.put_alloc(done.clone());
        let gone = alloc("gone", "n1", 800, 800);
        let mut p = plan(vec![alloc("a", "n1", 500, 500)]);
        preempt(&mut p, &done, "a");
        preempt(&mut p, &gone, "a");
        let v = verify_plan(&s, p.clone(), &PendingUsage::default());
        assert!(v.rejected_nodes.is_empty(), "{:?}", v.rejected_nodes);
        assert!(v.accepted.updates.is_empty(), "{:?}", v.accepted.updates);
        assert_eq!(v.accepted.placements.len(), 1);

        // A vanished eviction frees nothing: a node full of other work still rejects.
        s.put_alloc(alloc("busy", "n1", 900, 900));
        let v = verify_plan(&s, p.clone(), &PendingUsage::default());
        assert_eq!(v.rejected_nodes, vec!["n1".to_string()]);
        assert!(v.accepted.updates.is_empty());
    }

    #[test]
    fn a_rejected_node_keeps_its_allocations_from_eviction() {
        let mut s = state();
        let low = alloc("low", "n1", 300, 300);
        s.put_alloc(low.clone());
        s.put_alloc(alloc("other", "n1", 600, 600));
        // Evicting 300 leaves 700 free: a 800 placement still does not fit.
        let mut p = plan(vec![alloc("a", "n1", 800, 800)]);
        preempt(&mut p, &low, "a");
        let v = verify_plan(&s, p.clone(), &PendingUsage::default());
        assert_eq!(v.rejected_nodes, vec!["n1".to_string()]);
        assert!(v.accepted.updates.is_empty());
    }

    #[test]
    fn down_nodes_take_no_new_allocations() {
        let mut s = state();
        let mut n = node("n1", 1000, 1000);
        n.status = NodeStatus::Down;
        s.put_node(n);
        let v = verify_plan(
            &s,
            plan(vec![alloc("a", "n1", 1, 1)]),
            &PendingUsage::default(),
        );
        assert_eq!(v.rejected_nodes, vec!["n1".to_string()]);
    }
}
