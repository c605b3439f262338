//! Preemption scoring: among nodes that need evictions, prefer evicting less important work.

/// Net priority at which the score is one half.
const NET_PRIORITY_MIDPOINT: f64 = 2048.0;
/// Steepness of the logistic curve around the midpoint.
const NET_PRIORITY_RATE: f64 = 0.0048;

/// Scores a placement that evicts allocations of jobs with the given priorities, in 0..1:
/// close to 1 for a few low-priority evictions, falling towards 0 as the net priority grows.
///
/// The net priority is Nomad's heuristic: the highest evicted priority plus the sum of all
/// evicted priorities divided by that highest one, so many evictions cost more than a few.
/// Returns `None` when nothing is evicted: the scorer has nothing to say about such a node.
pub fn preemption_score(priorities: impl IntoIterator<Item = u16>) -> Option<f64> {
    let mut max = 0u64;
    let mut sum = 0u64;
    let mut count = 0u32;
    for p in priorities {
        max = max.max(u64::from(p));
        sum += u64::from(p);
        count += 1;
    }
    if count == 0 {
        return None;
    }
    // A priority-0 job cannot be registered; guard the division anyway.
    let net = max as f64 + sum as f64 / (max.max(1)) as f64;
    Some(1.0 / (1.0 + (NET_PRIORITY_RATE * (net - NET_PRIORITY_MIDPOINT)).exp()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fewer_and_lower_evictions_score_higher() {
        assert_eq!(preemption_score([]), None);
        let one_low = preemption_score([10]).unwrap();
        let one_high = preemption_score([60]).unwrap();
        let many_low = preemption_score([10; 40]).unwrap();
        assert!(one_low > one_high, "{one_low} {one_high}");
        assert!(one_low > many_low, "{one_low} {many_low}");
        assert!((0.0..1.0).contains(&many_low));
    }
}
