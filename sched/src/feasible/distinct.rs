//! `distinct_hosts` and `distinct_property`: constraints that depend on where the job's other
//! allocations are, so they are checked against the plan's running state, not cached.

use std::collections::HashMap;

use super::target::Target;
use crate::error::SchedError;
use crate::structs::Node;

/// Rejects nodes that already hold an allocation of the same job (job-level constraint) or of
/// the same task group (group- or task-level constraint).
pub struct DistinctHostsChecker {
    job_wide: bool,
}

impl DistinctHostsChecker {
    pub const REASON: &'static str = "distinct_hosts";

    pub fn new(job_wide: bool) -> Self {
        DistinctHostsChecker { job_wide }
    }

    /// `job_allocs` and `group_allocs` count the proposed allocations on the node.
    pub fn feasible(&self, job_allocs: u32, group_allocs: u32) -> bool {
        if self.job_wide {
            job_allocs == 0
        } else {
            group_allocs == 0
        }
    }
}

/// Limits how many allocations may share one value of a node property (`RTarget`, default 1).
pub struct DistinctPropertyChecker {
    target: Target,
    limit: u32,
    /// `None` for a job-level constraint, else the task group it applies to.
    group: Option<String>,
    reason: String,
    counts: HashMap<String, u32>,
}

impl DistinctPropertyChecker {
    pub fn new(
        l_target: &str,
        r_target: &str,
        group: Option<&str>,
        job_id: &str,
    ) -> Result<Self, SchedError> {
        let limit = if r_target.trim().is_empty() {
            1
        } else {
            r_target
                .trim()
                .parse::<u32>()
                .map_err(|_| SchedError::InvalidConstraint {
                    job_id: job_id.to_string(),
                    field: "constraint".to_string(),
                    value: format!("{l_target} distinct_property {r_target}"),
                    reason: "the limit must be a positive integer".to_string(),
                })?
        };
        Ok(DistinctPropertyChecker {
            target: Target::parse(l_target),
            limit,
            group: group.map(str::to_string),
            reason: format!("distinct_property: {l_target}"),
            counts: HashMap::new(),
        })
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Counts an allocation of task group `tg` on `node` in (+1) or out (-1) of the plan.
    pub fn observe(&mut self, node: &Node, tg: &str, added: bool) {
        if self.group.as_deref().is_some_and(|g| g != tg) {
            return;
        }
        let Some(value) = self.target.resolve(node) else {
            return;
        };
        let count = self.counts.entry(value.to_string()).or_insert(0);
        *count = if added {
            *count + 1
        } else {
            count.saturating_sub(1)
        };
    }

    /// Nodes without the property are rejected: the constraint cannot be honoured there.
    pub fn feasible(&self, node: &Node) -> bool {
        match self.target.resolve(node) {
            Some(value) => self.counts.get(value).copied().unwrap_or(0) < self.limit,
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::node;

    #[test]
    fn distinct_hosts_scope() {
        assert!(DistinctHostsChecker::new(true).feasible(0, 0));
        assert!(!DistinctHostsChecker::new(true).feasible(1, 0));
        assert!(DistinctHostsChecker::new(false).feasible(1, 0));
        assert!(!DistinctHostsChecker::new(false).feasible(1, 1));
    }

    #[test]
    fn distinct_property_limit() {
        let mut a = node("a", 1000, 1000);
        a.meta.insert("rack".into(), "r1".into());
        let mut b = node("b", 1000, 1000);
        b.meta.insert("rack".into(), "r1".into());
        let bare = node("c", 1000, 1000);
        let mut c = DistinctPropertyChecker::new("${meta.rack}", "2", Some("web"), "j").unwrap();
        assert!(c.feasible(&a));
        assert!(!c.feasible(&bare));
        c.observe(&a, "web", true);
        c.observe(&a, "db", true);
        assert!(c.feasible(&b));
        c.observe(&b, "web", true);
        assert!(!c.feasible(&a));
        c.observe(&b, "web", false);
        assert!(c.feasible(&a));
        assert!(DistinctPropertyChecker::new("${meta.rack}", "x", None, "j").is_err());
    }
}
