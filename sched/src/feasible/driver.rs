//! Drivers: every task's driver must be present on the node (when the node lists drivers).

use crate::structs::{Node, TaskGroup};

/// Accepts nodes that offer every driver the task group's tasks use.
pub struct DriverChecker {
    drivers: Vec<String>,
}

impl DriverChecker {
    pub const REASON: &'static str = "missing drivers";

    pub fn new(tg: &TaskGroup) -> Self {
        let mut drivers: Vec<String> = tg.tasks.iter().map(|t| t.driver.clone()).collect();
        drivers.retain(|d| !d.is_empty());
        drivers.sort();
        drivers.dedup();
        DriverChecker { drivers }
    }

    pub fn feasible(&self, node: &Node) -> bool {
        // A node that reports no drivers at all predates driver fingerprinting; accept it.
        node.drivers.is_empty() || self.drivers.iter().all(|d| node.drivers.contains(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{group, node};

    #[test]
    fn drivers() {
        let mut n = node("n1", 1000, 1000);
        let tg = group("web", 1, 100, 100);
        n.drivers = vec!["docker".into()];
        assert!(DriverChecker::new(&tg).feasible(&n));
        n.drivers = vec!["exec".into()];
        assert!(!DriverChecker::new(&tg).feasible(&n));
        n.drivers.clear();
        assert!(DriverChecker::new(&tg).feasible(&n));
    }
}
