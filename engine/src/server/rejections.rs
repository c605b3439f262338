//! The plan rejection tracker (`plan_rejection_tracker`): counts, per node, the plans the
//! leader rejected for it within `node_window`; a node that reaches `node_threshold` is
//! marked ineligible, because plans that keep failing there point at a node whose state the
//! schedulers cannot see (Nomad's safeguard against a node that keeps drawing bad plans).
//! Lives on the Raft core, next to plan verification.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::config::PlanRejectionTracker;

/// Rejection times per node, and the nodes already marked.
#[derive(Debug)]
pub struct RejectionTracker {
    config: PlanRejectionTracker,
    per_node: HashMap<String, VecDeque<Instant>>,
}

impl RejectionTracker {
    /// Returns a tracker with the agent's settings.
    pub fn new(config: PlanRejectionTracker) -> RejectionTracker {
        RejectionTracker {
            config,
            per_node: HashMap::new(),
        }
    }

    /// Records that a plan for `node_id` was rejected at `now`. Returns true when the node
    /// just reached the threshold and must be made ineligible (once per window).
    pub fn record(&mut self, node_id: &str, now: Instant) -> bool {
        if !self.config.enabled || self.config.node_threshold == 0 {
            return false;
        }
        let window = self.config.node_window;
        let times = self.per_node.entry(node_id.to_string()).or_default();
        while times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > window)
        {
            times.pop_front();
        }
        times.push_back(now);
        if times.len() >= self.config.node_threshold as usize {
            // Start counting afresh, so the node is marked again only after another
            // `node_threshold` rejections.
            times.clear();
            return true;
        }
        // Bound the memory a flood of rejections for one node can take.
        let cap = self.config.node_threshold as usize;
        while times.len() > cap {
            times.pop_front();
        }
        false
    }

    /// Forgets nodes without a rejection in the window (called now and then).
    pub fn prune(&mut self, now: Instant) {
        let window: Duration = self.config.node_window;
        self.per_node.retain(|_, times| {
            times
                .back()
                .is_some_and(|t| now.saturating_duration_since(*t) <= window)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(enabled: bool, threshold: u32, window_s: u64) -> RejectionTracker {
        RejectionTracker::new(PlanRejectionTracker {
            enabled,
            node_threshold: threshold,
            node_window: Duration::from_secs(window_s),
        })
    }

    #[test]
    fn a_node_is_marked_when_rejections_reach_the_threshold_within_the_window() {
        let mut t = tracker(true, 3, 60);
        let t0 = Instant::now();
        assert!(!t.record("n1", t0));
        assert!(!t.record("n1", t0 + Duration::from_secs(1)));
        assert!(!t.record("n2", t0 + Duration::from_secs(1)));
        assert!(t.record("n1", t0 + Duration::from_secs(2)));
        // Counting starts again after a mark.
        assert!(!t.record("n1", t0 + Duration::from_secs(3)));
    }

    #[test]
    fn rejections_older_than_the_window_do_not_count() {
        let mut t = tracker(true, 3, 10);
        let t0 = Instant::now();
        assert!(!t.record("n1", t0));
        assert!(!t.record("n1", t0 + Duration::from_secs(1)));
        assert!(!t.record("n1", t0 + Duration::from_secs(20)));
        assert!(!t.record("n1", t0 + Duration::from_secs(21)));
        assert!(t.record("n1", t0 + Duration::from_secs(22)));
        t.prune(t0 + Duration::from_secs(100));
        assert!(t.per_node.is_empty());
    }

    #[test]
    fn a_disabled_tracker_never_marks() {
        let mut t = tracker(false, 1, 60);
        assert!(!t.record("n1", Instant::now()));
    }
}
