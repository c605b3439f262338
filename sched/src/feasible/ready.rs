//! Readiness: only ready, eligible, non-draining nodes take new allocations.

use crate::structs::Node;

/// Rejects nodes that are not ready for placement.
pub struct ReadyChecker;

impl ReadyChecker {
    pub const REASON: &'static str = "node not ready";

    pub fn feasible(&self, node: &Node) -> bool {
        node.ready_for_placement()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::NodeStatus;
    use crate::testing::node;

    #[test]
    fn rejects_down_ineligible_and_draining() {
        let mut n = node("n1", 1000, 1000);
        assert!(ReadyChecker.feasible(&n));
        n.eligible = false;
        assert!(!ReadyChecker.feasible(&n));
        n.eligible = true;
        n.status = NodeStatus::Down;
        assert!(!ReadyChecker.feasible(&n));
    }
}
