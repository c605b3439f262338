//! Nomad's `AllocMetric`: what the scheduler saw while placing one allocation.

use sched::structs::AllocMetric;
use serde_json::{json, Value};

use super::{number_map, number_pairs};

/// Renders an `AllocMetric`.
pub fn alloc_metric(m: &AllocMetric) -> Value {
    json!({
        "NodesEvaluated": m.nodes_evaluated,
        "NodesFiltered": m.nodes_filtered,
        "NodesInPool": m.nodes_in_pool,
        "NodePool": "",
        "NodesAvailable": number_pairs(m.nodes_available.iter().map(|(k, v)| (k, v))),
        "ClassFiltered": number_map(&m.class_filtered),
        "ConstraintFiltered": number_map(&m.constraint_filtered),
        "NodesExhausted": m.nodes_exhausted,
        "ClassExhausted": number_map(&m.class_exhausted),
        "DimensionExhausted": number_map(&m.dimension_exhausted),
        "QuotaExhausted": null,
        "ResourcesExhausted": null,
        "Scores": number_pairs(m.scores.iter().map(|(k, v)| (k, v))),
        "ScoreMetaData": null,
        "AllocationTime": m.allocation_time_ns,
        "CoalescedFailures": m.coalesced_failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_fields() {
        let mut m = AllocMetric {
            nodes_evaluated: 3,
            coalesced_failures: 2,
            ..Default::default()
        };
        m.dimension_exhausted.insert("memory".into(), 2);
        let v = alloc_metric(&m);
        assert_eq!(v["NodesEvaluated"], 3);
        assert_eq!(v["CoalescedFailures"], 2);
        assert_eq!(v["DimensionExhausted"]["memory"], 2);
        assert_eq!(v["ClassFiltered"], Value::Null);
        assert_eq!(v["Scores"], Value::Null);
        m.nodes_available = vec![("dc1".into(), 4), ("dc2".into(), 1)];
        m.scores = vec![("node-a".into(), 0.75)];
        let v = alloc_metric(&m);
        assert_eq!(v["NodesAvailable"], json!({"dc1": 4, "dc2": 1}));
        assert_eq!(v["Scores"], json!({"node-a": 0.75}));
    }
}
