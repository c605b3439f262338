//! Nomad's `JobPlanResponse` for the dry run of `job plan`.

use engine::api::PlanReply;
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
        .map(|(tg, m)| (tg.clone(), alloc_metric(m)))
        .collect();
    json!({
        "Annotations": {"DesiredTGUpdates": updates, "PreemptedAllocs": null},
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
