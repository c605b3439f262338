//! Nomad's `JobPlanResponse` for the dry run of `job plan`.

use engine::api::PlanReply;
use sched::structs::Allocation;
use serde_json::{json, Map, Value};

use super::alloc_metric;

/// Renders a `JobPlanResponse` for the job `job_id`.
pub fn plan_response(job_id: &str, reply: &PlanReply) -> Value {
    let updates: Map<String, Value> = reply
        .plan
        .annotations
        .iter()
        .map(|(tg, u)| {
            let counts = json!({
                "Ignore": u.ignore,
                "Place": u.place,
                "Migrate": u.migrate,
                "Stop": u.stop,
                "InPlaceUpdate": u.in_place_update,
                "DestructiveUpdate": u.destructive_update,
                "Canary": u.canary,
                "Preemptions": u.preemptions,
                "Disconnect": 0,
                "Reconnect": 0,
                "RescheduleNow": 0,
                "RescheduleLater": 0,
            });
            (tg.clone(), counts)
        })
        .collect();
    let failed: Map<String, Value> = reply
        .outcome
        .failed_tg_allocs
        .iter()
        .map(|(tg, m)| (tg.clone(), alloc_metric(m, None)))
        .collect();
    let preempted: Vec<Value> = reply
        .plan
        .node_preemptions
        .values()
        .flatten()
        .map(preempted_stub)
        .collect();
    let preempted = if preempted.is_empty() {
        Value::Null
    } else {
        Value::Array(preempted)
    };
    json!({
        "Annotations": {"DesiredTGUpdates": updates, "PreemptedAllocs": preempted},
        "FailedTGAllocs": if failed.is_empty() { Value::Null } else { Value::Object(failed) },
        "JobModifyIndex": reply.job_modify_index,
        "CreatedEvals": [],
        "Diff": {
            "Type": reply.diff_type,
            "ID": job_id,
            "Fields": null,
            "Objects": null,
            "TaskGroups": null,
        },
        "NextPeriodicLaunch": "0001-01-01T00:00:00Z",
        "Warnings": "",
        "Index": reply.index,
    })
}

/// Renders an allocation the plan would evict, as the part of Nomad's `AllocListStub` that
/// `job plan` shows. `JobType` is left out: the plan does not carry the evicted job's type.
fn preempted_stub(a: &Allocation) -> Value {
    json!({
        "ID": a.id,
        "EvalID": a.eval_id,
        "Name": a.name,
        "Namespace": a.namespace,
        "NodeID": a.node_id,
        "NodeName": a.node_name,
        "JobID": a.job_id,
        "JobVersion": a.job_version,
        "TaskGroup": a.task_group,
        "DesiredStatus": a.desired_status.as_str(),
        "DesiredDescription": a.desired_description,
        "ClientStatus": a.client_status.as_str(),
        "PreemptedByAllocation": a.preempted_by_allocation,
        "CreateIndex": a.create_index,
        "ModifyIndex": a.modify_index,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sched::structs::{Plan, SchedOutcome};

    fn reply(plan: Plan) -> PlanReply {
        PlanReply {
            job_modify_index: 1,
            plan,
            outcome: SchedOutcome::default(),
            diff_type: "None".to_string(),
            index: 1,
        }
    }

    #[test]
    fn preempted_allocations_are_listed_as_stubs_or_null() {
        let none = plan_response("high", &reply(Plan::default()));
        assert!(none["Annotations"]["PreemptedAllocs"].is_null(), "{none}");

        let low = crate::http::testing::sample_job("low", 1);
        let mut evicted = crate::http::testing::sample_alloc("low-1", &low, "n1", "e1");
        evicted.desired_status = sched::structs::DesiredStatus::Evict;
        let mut plan = Plan::default();
        plan.node_preemptions
            .insert(evicted.node_id.to_string(), vec![evicted]);
        let out = plan_response("high", &reply(plan));
        let list = out["Annotations"]["PreemptedAllocs"].as_array().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["ID"], "low-1");
        assert_eq!(list[0]["JobID"], "low");
        assert_eq!(list[0]["TaskGroup"], "web");
        assert_eq!(list[0]["NodeID"], "n1");
        assert_eq!(list[0]["DesiredStatus"], "evict");
    }
}
