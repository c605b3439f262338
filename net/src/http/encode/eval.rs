//! Nomad's `Evaluation` (an omitempty struct: zero fields are left out).

use sched::structs::Evaluation;
use serde_json::{json, Map, Value};

use super::{alloc_metric, number_map, omit_empty, time_value};

/// Renders an `Evaluation`.
pub fn evaluation(e: &Evaluation) -> Value {
    let failed: Map<String, Value> = e
        .failed_tg_allocs
        .iter()
        .map(|(tg, m)| (tg.clone(), alloc_metric(m, None)))
        .collect();
    let eligibility: Map<String, Value> = e
        .class_eligibility
        .iter()
        .map(|(c, ok)| (c.clone(), Value::Bool(*ok)))
        .collect();
    omit_empty(json!({
        "ID": e.id,
        "Namespace": e.namespace,
        "Priority": e.priority,
        "Type": e.job_type.as_str(),
        "TriggeredBy": e.triggered_by,
        "JobID": e.job_id,
        "JobModifyIndex": e.job_modify_index,
        "NodeID": e.node_id,
        "NodeModifyIndex": e.node_modify_index,
        "Status": e.status.as_str(),
        "StatusDescription": e.status_description,
        "WaitUntil": time_value(e.wait_until_unix_ns),
        "NextEval": e.next_eval,
        "PreviousEval": e.previous_eval,
        "BlockedEval": e.blocked_eval,
        "FailedTGAllocs": failed,
        "ClassEligibility": eligibility,
        "EscapedComputedClass": e.escaped_computed_class,
        "QueuedAllocations": number_map(&e.queued_allocations),
        "SnapshotIndex": e.snapshot_index,
        "CreateIndex": e.create_index,
        "ModifyIndex": e.modify_index,
        "CreateTime": e.create_time_ns,
        "ModifyTime": e.modify_time_ns,
    }))
}
