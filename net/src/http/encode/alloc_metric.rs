//! Nomad's `AllocMetric`: what the scheduler saw while placing one allocation.

use sched::structs::AllocMetric;
use serde_json::{json, Value};

use super::number_map;

/// Renders an `AllocMetric`.
pub fn alloc_metric(m: &AllocMetric) -> Value {
    json!({
        "NodesEvaluated": m.nodes_evaluated,
        "NodesFiltered": m.nodes_filtered,
        "NodesInPool": m.nodes_in_pool,
        "NodePool": "",
        "NodesAvailable": number_map(&m.nodes_available),
        "ClassFiltered": number_map(&m.class_filtered),
        "ConstraintFiltered": number_map(&m.constraint_filtered),
        "NodesExhausted": m.nodes_exhausted,
        "ClassExhausted": number_map(&m.class_exhausted),
        "DimensionExhausted": number_map(&m.dimension_exhausted),
        "QuotaExhausted": null,
        "ResourcesExhausted": null,
        "Scores": number_map(&m.scores),
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
    }
}
