//! Job anti-affinity and rescheduling penalties: keep a group's allocations apart and keep a
//! failed allocation's replacement off the node it failed on.

/// Returns the penalty for a node already holding `collisions` allocations of the same task
/// group, or `None` (no score appended) when it holds none.
pub fn job_anti_affinity(collisions: u32, desired_count: u32) -> Option<f64> {
    if collisions == 0 {
        return None;
    }
    let desired = f64::from(desired_count.max(1));
    Some(-(f64::from(collisions) + 1.0) / desired)
}

/// Returns -1 for the node a rescheduled allocation previously ran on.
pub fn reschedule_penalty(node_id: &str, penalty_node: Option<&str>) -> Option<f64> {
    (penalty_node == Some(node_id)).then_some(-1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn penalties() {
        assert_eq!(job_anti_affinity(0, 3), None);
        assert_eq!(job_anti_affinity(1, 4), Some(-0.5));
        assert!(job_anti_affinity(3, 4).unwrap() < job_anti_affinity(1, 4).unwrap());
        assert_eq!(reschedule_penalty("a", Some("a")), Some(-1.0));
        assert_eq!(reschedule_penalty("a", Some("b")), None);
        assert_eq!(reschedule_penalty("a", None), None);
    }
}
