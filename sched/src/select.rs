//! Selection: walk a once-shuffled node order cyclically, score up to `limit` feasible nodes,
//! keep the best. Like Nomad's limit iterator over a static iterator with an offset, the walk
//! resumes where the previous placement stopped, so a large group costs O(limit) per placement.

use rand::Rng;

use crate::structs::JobType;

/// Nodes scored per placement when the group has spreads or affinities: those scores vary a
/// lot between nodes, so a wider look pays off.
pub const WIDE_LIMIT: usize = 100;

/// Returns how many feasible nodes to score per placement.
pub fn limit_for(job_type: JobType, num_nodes: usize, wide: bool) -> usize {
    if wide {
        return WIDE_LIMIT;
    }
    match job_type {
        JobType::Batch => 2,
        _ => {
            let log2 = usize::BITS - num_nodes.max(1).saturating_sub(1).leading_zeros();
            (log2 as usize).max(2)
        }
    }
}

/// A shuffled, cyclic walk over candidate positions.
#[derive(Default)]
pub struct Selector {
    order: Vec<u32>,
    cursor: usize,
    limit: usize,
}

impl Selector {
    /// Shuffles `0..num_nodes` once with the run's seeded randomness.
    pub fn new(num_nodes: usize, limit: usize, rng: &mut impl Rng) -> Selector {
        assert!(num_nodes <= u32::MAX as usize, "node positions are u32");
        let mut order: Vec<u32> = (0..num_nodes as u32).collect();
        // Fisher-Yates; written out so the sequence only depends on `rng`.
        for i in (1..order.len()).rev() {
            let j = rng.gen_range(0..=i);
            order.swap(i, j);
        }
        Selector {
            order,
            cursor: 0,
            limit: limit.max(1),
        }
    }

    /// Walks at most every node once, calling `score` on each; `score` returns `None` for
    /// nodes it rejects. Stops after `limit` scored nodes and returns the best
    /// `(position, score)` (the first seen wins ties) and the number of nodes walked.
    pub fn select(
        &mut self,
        mut score: impl FnMut(u32) -> Option<f64>,
    ) -> (Option<(u32, f64)>, u64) {
        let n = self.order.len();
        let mut best: Option<(u32, f64)> = None;
        let mut scored = 0;
        let mut walked = 0;
        while walked < n && scored < self.limit {
            let pos = self.order[self.cursor];
            self.cursor = (self.cursor + 1) % n;
            walked += 1;
            if let Some(s) = score(pos) {
                scored += 1;
                if best.is_none() || best.is_some_and(|(_, b)| s > b) {
                    best = Some((pos, s));
                }
            }
        }
        (best, walked as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn limits() {
        assert_eq!(limit_for(JobType::Batch, 5000, false), 2);
        assert_eq!(limit_for(JobType::Service, 1, false), 2);
        assert_eq!(limit_for(JobType::Service, 5000, false), 13);
        assert_eq!(limit_for(JobType::Service, 1024, false), 10);
        assert_eq!(limit_for(JobType::Service, 5000, true), WIDE_LIMIT);
    }

    #[test]
    fn picks_max_within_limit_and_resumes() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut sel = Selector::new(10, 3, &mut rng);
        let mut seen = Vec::new();
        let (best, walked) = sel.select(|p| {
            seen.push(p);
            Some(f64::from(p))
        });
        assert_eq!(walked, 3);
        assert_eq!(best.unwrap().0, *seen.iter().max().unwrap());
        let mut next = Vec::new();
        sel.select(|p| {
            next.push(p);
            Some(0.0)
        });
        assert!(
            next.iter().all(|p| !seen.contains(p)),
            "walk resumes after the last node"
        );
        let (best, walked) = sel.select(|_| None);
        assert_eq!((best, walked), (None, 10));
    }
}
