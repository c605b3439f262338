//! Node pools: a job runs in its pool only; "all" spans every pool.

use crate::structs::{Node, DEFAULT_NODE_POOL};

/// Accepts nodes in the job's node pool.
pub struct PoolChecker<'a> {
    pool: &'a str,
}

impl<'a> PoolChecker<'a> {
    pub const REASON: &'static str = "node pool mismatch";

    pub fn new(job_pool: &'a str) -> Self {
        let pool = if job_pool.is_empty() {
            DEFAULT_NODE_POOL
        } else {
            job_pool
        };
        PoolChecker { pool }
    }

    pub fn feasible(&self, node: &Node) -> bool {
        self.accepts(&node.node_pool)
    }

    /// Reports whether a node in `node_pool` (empty: the default pool) is in the job's pool.
    pub fn accepts(&self, node_pool: &str) -> bool {
        let node_pool = if node_pool.is_empty() {
            DEFAULT_NODE_POOL
        } else {
            node_pool
        };
        self.pool == "all" || self.pool == node_pool
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::node;

    #[test]
    fn pools() {
        let mut n = node("n1", 1000, 1000);
        assert!(PoolChecker::new("").feasible(&n));
        assert!(PoolChecker::new("default").feasible(&n));
        assert!(!PoolChecker::new("gpu").feasible(&n));
        n.node_pool = "gpu".into();
        assert!(PoolChecker::new("gpu").feasible(&n));
        assert!(PoolChecker::new("all").feasible(&n));
        assert!(!PoolChecker::new("").feasible(&n));
    }
}
