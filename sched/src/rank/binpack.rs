//! Fit scoring: binpack (fill nodes) or spread (empty nodes first), Nomad's formula.

use crate::env::SchedulerAlgorithm;
use crate::structs::Resources;

/// Highest raw score the formula can produce (both dimensions fully used): 20 - (1 + 1).
const MAX_FIT_SCORE: f64 = 18.0;

/// Scores a node by the cpu and memory it would have free after the placement, normalised to
/// 0..=1. `capacity` is the node's schedulable total; `used_after` includes the new ask.
///
/// Binpack computes `20 - (10^freeCpu + 10^freeMem)` so fuller nodes score higher; spread
/// inverts it. Free fractions are clamped so an over-full node cannot score beyond the range.
pub fn fit_score(
    algorithm: SchedulerAlgorithm,
    capacity: &Resources,
    used_after: &Resources,
) -> f64 {
    let free_fraction = |used: u64, total: u64| {
        if total == 0 {
            0.0
        } else {
            (1.0 - used as f64 / total as f64).clamp(0.0, 1.0)
        }
    };
    let free_cpu = free_fraction(used_after.cpu_mhz, capacity.cpu_mhz);
    let free_mem = free_fraction(used_after.memory_mb, capacity.memory_mb);
    let total = 10f64.powf(free_cpu) + 10f64.powf(free_mem);
    let raw = match algorithm {
        SchedulerAlgorithm::Binpack => 20.0 - total,
        SchedulerAlgorithm::Spread => total - 2.0,
    };
    raw.clamp(0.0, MAX_FIT_SCORE) / MAX_FIT_SCORE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(cpu: u64, mem: u64) -> Resources {
        Resources {
            cpu_mhz: cpu,
            memory_mb: mem,
            ..Resources::default()
        }
    }

    #[test]
    fn binpack_prefers_fuller_nodes() {
        let cap = res(1000, 1000);
        let full = fit_score(SchedulerAlgorithm::Binpack, &cap, &res(1000, 1000));
        let half = fit_score(SchedulerAlgorithm::Binpack, &cap, &res(500, 500));
        let empty = fit_score(SchedulerAlgorithm::Binpack, &cap, &res(0, 0));
        assert!((full - 1.0).abs() < 1e-9);
        assert!(empty.abs() < 1e-9);
        assert!(full > half && half > empty);
    }

    #[test]
    fn spread_prefers_emptier_nodes() {
        let cap = res(1000, 1000);
        let busy = fit_score(SchedulerAlgorithm::Spread, &cap, &res(900, 900));
        let idle = fit_score(SchedulerAlgorithm::Spread, &cap, &res(100, 100));
        assert!(idle > busy);
        assert!((0.0..=1.0).contains(&idle));
    }
}
