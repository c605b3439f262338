//! Plan verification: pure checks the plan applier runs to re-validate one node's part of a
//! plan against state newer than the scheduler's snapshot.

use std::collections::HashSet;
use std::fmt;

use crate::structs::{Allocation, Node, Resources};

/// Why a node's part of a plan was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// The node may not take new allocations (down, ineligible, draining or gone).
    NodeNotReady,
    /// The node would be over capacity in this dimension ("cpu", "memory", "disk").
    Exhausted(&'static str),
    /// Two allocations would hold the same host port.
    PortCollision(u16),
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::NodeNotReady => write!(f, "node is not ready for placements"),
            RejectReason::Exhausted(dimension) => write!(f, "resources exhausted: {dimension}"),
            RejectReason::PortCollision(port) => write!(f, "network: port collision on {port}"),
        }
    }
}

/// Decides whether `node` can take its part of a plan, given the latest state.
///
/// - `usage` and `used_ports`: what the node's non-terminal allocations hold in the latest
///   state (`StateView::node_usage` and their `Allocation::ports`).
/// - `removed`: allocations of the plan's `node_update` for this node (stops, evictions, lost)
///   that `usage` still counts; their resources and ports are released first. An in-place
///   update (an allocation in `added` that already exists) must be listed here too, with its
///   current resources, so it is not counted twice.
/// - `added`: the plan's `node_allocation` for this node.
///
/// Readiness is required only when something new is placed: stopping allocations and
/// updating them in place is always allowed, even on a down or draining node. Capacity is
/// checked in every dimension, and every port of an added allocation must be free.
pub fn node_accepts(
    node: &Node,
    usage: &Resources,
    removed: &[&Allocation],
    added: &[&Allocation],
    used_ports: &HashSet<u16>,
) -> Result<(), RejectReason> {
    if added.is_empty() {
        return Ok(());
    }
    let removed_ids: HashSet<&str> = removed.iter().map(|a| a.id.as_str()).collect();
    let places_new = added.iter().any(|a| !removed_ids.contains(a.id.as_str()));
    if places_new && !node.ready_for_placement() {
        return Err(RejectReason::NodeNotReady);
    }

    let released = removed
        .iter()
        .fold(Resources::default(), |sum, a| sum.add(&a.resources));
    let wanted = added
        .iter()
        .fold(Resources::default(), |sum, a| sum.add(&a.resources));
    let used_after = usage.sub(&released).add(&wanted);
    if let Some(dimension) = used_after.exceeds(&node.schedulable()) {
        return Err(RejectReason::Exhausted(dimension));
    }

    let freed: HashSet<u16> = removed
        .iter()
        .flat_map(|a| a.ports.iter().map(|(_, p)| *p))
        .collect();
    let mut taken: HashSet<u16> = used_ports.difference(&freed).copied().collect();
    for alloc in added {
        for (_, port) in &alloc.ports {
            if !taken.insert(*port) {
                return Err(RejectReason::PortCollision(*port));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::NodeStatus;
    use crate::testing::{alloc_on, node};

    #[test]
    fn accepts_what_fits_and_rejects_overflow() {
        let n = node("n1", 1000, 1000);
        let a = alloc_on("a", &n, 600, 600);
        let b = alloc_on("b", &n, 600, 100);
        let none = HashSet::new();
        assert_eq!(
            node_accepts(&n, &Resources::default(), &[], &[&a], &none),
            Ok(())
        );
        let usage = a.resources;
        assert_eq!(
            node_accepts(&n, &usage, &[], &[&b], &none),
            Err(RejectReason::Exhausted("cpu"))
        );
        // Stopping `a` in the same plan frees its room.
        assert_eq!(node_accepts(&n, &usage, &[&a], &[&b], &none), Ok(()));
    }

    #[test]
    fn readiness_only_matters_for_new_allocations() {
        let mut n = node("n1", 1000, 1000);
        n.status = NodeStatus::Down;
        let a = alloc_on("a", &n, 100, 100);
        let none = HashSet::new();
        assert_eq!(
            node_accepts(&n, &Resources::default(), &[], &[&a], &none),
            Err(RejectReason::NodeNotReady)
        );
        // In place: the allocation is both removed (old form) and added (new form).
        assert_eq!(node_accepts(&n, &a.resources, &[&a], &[&a], &none), Ok(()));
        assert_eq!(node_accepts(&n, &a.resources, &[&a], &[], &none), Ok(()));
    }

    #[test]
    fn port_collisions() {
        let n = node("n1", 1000, 1000);
        let mut a = alloc_on("a", &n, 10, 10);
        a.ports = vec![("http".into(), 8080)].into();
        let mut b = alloc_on("b", &n, 10, 10);
        b.ports = vec![("http".into(), 8080)].into();
        let used: HashSet<u16> = [8080].into_iter().collect();
        let usage = a.resources;
        assert_eq!(
            node_accepts(&n, &usage, &[], &[&b], &used),
            Err(RejectReason::PortCollision(8080))
        );
        assert_eq!(node_accepts(&n, &usage, &[&a], &[&b], &used), Ok(()));
        assert_eq!(
            node_accepts(&n, &Resources::default(), &[], &[&a, &b], &HashSet::new()),
            Err(RejectReason::PortCollision(8080))
        );
    }
}
