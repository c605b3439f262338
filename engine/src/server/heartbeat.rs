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
///
/// PERF-CRITICAL: `reset` runs for every heartbeat. A node known to the table is moved by
/// slot number, so a heartbeat allocates no string; only a node's first heartbeat stores its id.
#[derive(Default)]
pub struct HeartbeatTable {
    /// Per node id: its slot and current deadline.
    deadlines: HashMap<String, (u32, Instant)>,
    /// Node id per slot; slots of nodes no longer watched are reused.
    slots: Vec<String>,
    free_slots: Vec<u32>,
    /// Ordered by deadline for a cheap scan of what expired.
    by_deadline: BTreeSet<(Instant, u32)>,
}

impl HeartbeatTable {
    /// Sets (or moves) a node's deadline.
    pub fn reset(&mut self, node_id: &str, deadline: Instant) {
        if let Some((slot, current)) = self.deadlines.get_mut(node_id) {
            let removed = self.by_deadline.remove(&(*current, *slot));
            debug_assert!(removed, "a watched node has its deadline indexed");
            *current = deadline;
            self.by_deadline.insert((deadline, *slot));
            return;
        }
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.slots[slot as usize] = node_id.to_string();
                slot
            }
            None => {
                self.slots.push(node_id.to_string());
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 nodes per shard")
            }
        };
        self.deadlines.insert(node_id.to_string(), (slot, deadline));
        self.by_deadline.insert((deadline, slot));
    }

    /// Stops watching a node.
    pub fn remove(&mut self, node_id: &str) {
        if let Some((slot, deadline)) = self.deadlines.remove(node_id) {
            self.by_deadline.remove(&(deadline, slot));
            self.slots[slot as usize].clear();
            self.free_slots.push(slot);
        }
    }

    /// Removes and returns every node whose deadline is at or before `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let mut expired = Vec::new();
        while let Some((deadline, _)) = self.by_deadline.first() {
            if *deadline > now {
                break;
            }
            let (_, slot) = self.by_deadline.pop_first().expect("checked non-empty");
            let node_id = std::mem::take(&mut self.slots[slot as usize]);
            self.deadlines.remove(&node_id);
            self.free_slots.push(slot);
            expired.push(node_id);
        }
        expired
    }

    /// Forgets every node (this server lost leadership).
    pub fn clear(&mut self) {
        self.deadlines.clear();
        self.slots.clear();
        self.free_slots.clear();
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

    #[test]
    fn slots_are_reused_after_expiry_and_removal() {
        let mut table = HeartbeatTable::default();
        let now = Instant::now();
        for i in 0..100 {
            table.reset(&format!("n{i}"), now + Duration::from_millis(i));
        }
        let expired = table.expire(now + Duration::from_millis(49));
        assert_eq!(expired.len(), 50);
        assert_eq!(expired[0], "n0");
        table.remove("n99");
        for i in 0..51 {
            table.reset(&format!("m{i}"), now + Duration::from_secs(60));
        }
        assert_eq!(table.slots.len(), 100, "freed slots were taken again");
        assert_eq!(table.len(), 100);
        table.reset("n50", now + Duration::from_secs(120));
        let later = table.expire(now + Duration::from_secs(61));
        assert_eq!(later.len(), 48 + 51, "n51..n98 and every m, not n50");
        assert!(table.contains("n50") && !table.contains("n99"));
        assert_eq!(
            table.expire(now + Duration::from_secs(200)),
            vec!["n50".to_string()]
        );
        assert!(table.is_empty());
    }
}
