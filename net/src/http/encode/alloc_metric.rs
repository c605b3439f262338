//! Nomad's `AllocMetric`: what the scheduler saw while placing one allocation.

use sched::structs::{AllocMetric, MetricCount};
use serde_json::{json, Map, Value};

/// One kind of count as a JSON object, or null when there is none.
fn counts(m: &AllocMetric, kind: MetricCount) -> Value {
    let map: Map<String, Value> = m
        .counts_of(kind)
        .map(|(key, n)| (key.to_string(), n.into()))
        .collect();
    if map.is_empty() {
        Value::Null
    } else {
        Value::Object(map)
    }
}

/// Renders an `AllocMetric`; `scored_node` is the node of the allocation it belongs to,
/// which its `Scores` are keyed by (none for a group that failed to place).
pub fn alloc_metric(m: &AllocMetric, scored_node: Option<&str>) -> Value {
    json!({
        "NodesEvaluated": m.nodes_evaluated,
        "NodesFiltered": m.nodes_filtered,
        "NodesInPool": m.nodes_in_pool,
        "NodePool": "",
        "NodesAvailable": counts(m, MetricCount::NodesAvailable),
        "ClassFiltered": counts(m, MetricCount::ClassFiltered),
        "ConstraintFiltered": counts(m, MetricCount::ConstraintFiltered),
        "NodesExhausted": m.nodes_exhausted,
        "ClassExhausted": counts(m, MetricCount::ClassExhausted),
        "DimensionExhausted": counts(m, MetricCount::DimensionExhausted),
        "QuotaExhausted": null,
        "ResourcesExhausted": null,
        "Scores": match (m.score, scored_node) {
            (Some(score), Some(node)) => json!({ node: score }),
            _ => Value::Null,
        },
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
        m.set_count(MetricCount::DimensionExhausted, "memory", 2);
        let v = alloc_metric(&m, None);
        assert_eq!(v["NodesEvaluated"], 3);
        assert_eq!(v["CoalescedFailures"], 2);
        assert_eq!(v["DimensionExhausted"]["memory"], 2);
        assert_eq!(v["ClassFiltered"], Value::Null);
        assert_eq!(v["Scores"], Value::Null);
        m.set_count(MetricCount::NodesAvailable, "dc1", 4);
        m.set_count(MetricCount::NodesAvailable, "dc2", 1);
        m.score = Some(0.75);
        assert_eq!(alloc_metric(&m, None)["Scores"], Value::Null);
        let v = alloc_metric(&m, Some("node-a"));
        assert_eq!(v["NodesAvailable"], json!({"dc1": 4, "dc2": 1}));
        assert_eq!(v["Scores"], json!({"node-a": 0.75}));
    }
}
