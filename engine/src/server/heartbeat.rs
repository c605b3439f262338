//! Heartbeat timers of the nodes one shard owns, and the TTL formula.
//!
//! Heartbeats never touch Raft: they move a deadline in this table. Only a missed deadline
//! (node down) becomes a log entry, batched by the shard's tick.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use rand::Rng;

/// Heartbeat settings from the `server {}` block.
#[derive(Clone, Debug)]
pub struct HeartbeatConfig {
    pub min_heartbeat_ttl: Duration,
    pub max_heartbeats_per_second: f64,
    pub heartbeat_grace: Duration,
    pub failover_heartbeat_ttl: Duration,
}

impl HeartbeatConfig {
    /// Returns the TTL to hand a client, following Nomad's formula: the base is
    /// `max(min_heartbeat_ttl, nodes / max_heartbeats_per_second)`, plus a random stagger of up
    /// to the base again, so the TTL lies in `[base, 2 * base)`.
    pub fn client_ttl(&self, node_count: usize, rng: &mut impl Rng) -> Duration {
        let rate = self.max_heartbeats_per_second.max(f64::MIN_POSITIVE);
        let by_rate = Duration::from_secs_f64(node_count as f64 / rate);
        let base = by_rate.max(self.min_heartbeat_ttl);
        let stagger = base.mul_f64(rng.gen::<f64>());
        base + stagger
    }
}

/// Deadlines of the nodes one shard watches.
#[derive(Default)]
pub struct HeartbeatTable {
    deadlines: HashMap<String, Instant>,
    /// Ordered by deadline for a cheap scan of what expired.
    by_deadline: BTreeSet<(Instant, String)>,
}

impl HeartbeatTable {
    /// Sets (or moves) a node's deadline.
    pub fn reset(&mut self, node_id: &str, deadline: Instant) {
        if let Some(old) = self.deadlines.insert(node_id.to_string(), deadline) {
            self.by_deadline.remove(&(old, node_id.to_string()));
        }
        self.by_deadline.insert((deadline, node_id.to_string()));
    }

    /// Stops watching a node.
    pub fn remove(&mut self, node_id: &str) {
        if let Some(old) = self.deadlines.remove(node_id) {
            self.by_deadline.remove(&(old, node_id.to_string()));
        }
    }

    /// Removes and returns every node whose deadline is at or before `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let mut expired = Vec::new();
        while let Some((deadline, _)) = self.by_deadline.first() {
            if *deadline > now {
                break;
            }
            let (_, node_id) = self.by_deadline.pop_first().expect("checked non-empty");
            self.deadlines.remove(&node_id);
            expired.push(node_id);
        }
        expired
    }

    /// Forgets every node (this server lost leadership).
    pub fn clear(&mut self) {
        self.deadlines.clear();
        self.by_deadline.clear();
    }

    /// Returns the number of nodes watched.
    pub fn len(&self) -> usize {
        self.deadlines.len()
    }

    /// Reports whether no node is watched.
    pub fn is_empty(&self) -> bool {
        self.deadlines.is_empty()
    }

    /// Reports whether a node is watched.
    pub fn contains(&self, node_id: &str) -> bool {
        self.deadlines.contains_key(node_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn config() -> HeartbeatConfig {
        HeartbeatConfig {
            min_heartbeat_ttl: Duration::from_secs(10),
            max_heartbeats_per_second: 50.0,
            heartbeat_grace: Duration::from_secs(10),
            failover_heartbeat_ttl: Duration::from_secs(300),
        }
    }

    #[test]
    fn ttl_follows_the_documented_table() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for (nodes, lo, hi) in [
            (10, 10, 20),
            (1000, 20, 40),
            (5000, 100, 200),
            (10000, 200, 400),
        ] {
            for _ in 0..100 {
                let ttl = config().client_ttl(nodes, &mut rng);
                assert!(
                    ttl >= Duration::from_secs(lo),
                    "{nodes} nodes: {ttl:?} below {lo}s"
                );
                assert!(
                    ttl < Duration::from_secs(hi),
                    "{nodes} nodes: {ttl:?} not below {hi}s"
                );
            }
        }
    }

    #[test]
    fn expire_returns_only_due_nodes_and_reset_moves_deadlines() {
        let now = Instant::now();
        let mut table = HeartbeatTable::default();
        table.reset("a", now + Duration::from_secs(1));
        table.reset("b", now + Duration::from_secs(5));
        table.reset("a", now + Duration::from_secs(10));
        assert!(table.expire(now + Duration::from_secs(2)).is_empty());
        assert_eq!(
            table.expire(now + Duration::from_secs(6)),
            vec!["b".to_string()]
        );
        assert_eq!(table.len(), 1);
        table.remove("a");
        assert!(table.is_empty());
    }
}
