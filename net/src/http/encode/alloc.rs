//! Nomad's `Allocation` (omitempty) and `AllocListStub`.

use sched::structs::{Allocation, Job, TaskState};
use serde_json::{json, Map, Value};

use super::{alloc_metric, omit_empty, time_value};

fn task_state(s: &TaskState) -> Value {
    json!({
        "State": s.state,
        "Failed": s.failed,
        "Restarts": s.restarts,
        "LastRestart": null,
        "StartedAt": time_value(s.started_at_unix_ns),
        "FinishedAt": time_value(s.finished_at_unix_ns),
        "Events": [],
        "Paused": false,
    })
}

fn task_states(a: &Allocation) -> Value {
    if a.task_states.is_empty() {
        return Value::Null;
    }
    Value::Object(
        a.task_states
            .iter()
            .map(|(t, s)| (t.to_string(), task_state(s)))
            .collect(),
    )
}

/// Renders Nomad's `DesiredTransition`, whose fields are pointers: unset is null.
fn desired_transition(a: &Allocation) -> Value {
    let t = &a.desired_transition;
    json!({
        "Migrate": t.migrate.then_some(true),
        "Reschedule": null,
        "ForceReschedule": t.force_reschedule.then_some(true),
        "NoShutdownDelay": null,
        "MigrateDisablePlacement": null,
    })
}

/// Renders `PreemptedAllocations`: the ids this allocation evicted, or null (Go's nil slice).
fn preempted_allocations(a: &Allocation) -> Value {
    if a.preempted_allocations.is_empty() {
        return Value::Null;
    }
    json!(a.preempted_allocations.as_slice())
}

/// Builds `AllocatedResources`: per-task asks come from the job's group when it is known.
pub fn allocated_resources(a: &Allocation, job: Option<&Job>) -> Value {
    let group = job.and_then(|j| j.group(&a.task_group));
    let tasks: Map<String, Value> = group
        .map(|tg| {
            tg.tasks
                .iter()
                .map(|t| {
                    let r = json!({
                        "Cpu": {"CpuShares": t.resources.cpu_mhz, "ReservedCores": null},
                        "Memory": {
                            "MemoryMB": t.resources.memory_mb,
                            "MemoryMaxMB": t.resources.memory_max_mb,
                        },
                        "Networks": null,
                        "Devices": null,
                    });
                    (t.name.clone(), r)
                })
                .collect()
        })
        .unwrap_or_default();
    let ports: Vec<Value> = a
        .ports
        .iter()
        .map(|(label, value)| {
            let to = group
                .into_iter()
                .flat_map(|tg| tg.networks.iter())
                .flat_map(|n| n.ports.iter())
                .find(|p| &p.label == label)
                .map_or(0, |p| p.to);
            // AllocatedPortMapping is an omitempty struct too.
            omit_empty(json!({"Label": label, "Value": value, "To": to, "HostIP": ""}))
        })
        .collect();
    json!({
        "Tasks": tasks,
        "TaskLifecycles": null,
        "Shared": {
            "Networks": null,
            "DiskMB": a.resources.disk_mb,
            "Ports": if ports.is_empty() { Value::Null } else { Value::Array(ports) },
        },
    })
}

/// Renders a full `Allocation`, embedding `job_json` (the job version it runs) when given.
pub fn allocation(a: &Allocation, job: Option<&Job>, job_json: Option<Value>) -> Value {
    omit_empty(json!({
        "ID": a.id,
        "Namespace": a.namespace,
        "EvalID": a.eval_id,
        "Name": a.name,
        "NodeID": a.node_id,
        "NodeName": a.node_name,
        "JobID": a.job_id,
        "Job": job_json,
        "TaskGroup": a.task_group,
        "Resources": {
            "CPU": a.resources.cpu_mhz,
            "Cores": 0,
            "MemoryMB": a.resources.memory_mb,
            "MemoryMaxMB": a.resources.memory_max_mb,
            "DiskMB": a.resources.disk_mb,
            "IOPS": 0,
            "Networks": null,
            "Devices": null,
        },
        "AllocatedResources": allocated_resources(a, job),
        "Metrics": alloc_metric(&a.metrics, Some(&a.node_id)),
        "DesiredStatus": a.desired_status.as_str(),
        "DesiredDescription": a.desired_description,
        "ClientStatus": a.client_status.as_str(),
        "ClientDescription": a.client_description,
        "DesiredTransition": desired_transition(a),
        "TaskStates": task_states(a),
        "PreviousAllocation": a.previous_allocation,
        "NextAllocation": a.next_allocation,
        "FollowupEvalID": a.followup_eval_id,
        "RescheduleTracker": reschedule_tracker(a),
        "PreemptedAllocations": preempted_allocations(a),
        "PreemptedByAllocation": a.preempted_by_allocation,
        "CreateIndex": a.create_index,
        "ModifyIndex": a.modify_index,
        "AllocModifyIndex": a.alloc_modify_index,
        "CreateTime": a.create_time_ns,
        "ModifyTime": a.modify_time_ns,
    }))
}

/// Renders Nomad's `RescheduleTracker`: the reschedules that led to this allocation, or null.
fn reschedule_tracker(a: &Allocation) -> Value {
    if a.reschedule_events.is_empty() {
        return Value::Null;
    }
    let events: Vec<Value> = a
        .reschedule_events
        .iter()
        .map(|e| {
            json!({
                "RescheduleTime": e.reschedule_time_unix_ns,
                "PrevAllocID": e.prev_alloc_id,
                "PrevNodeID": e.prev_node_id,
                "Delay": e.delay_ns,
            })
        })
        .collect();
    json!({"Events": events, "LastReschedule": ""})
}

/// Renders an `AllocListStub`; `job_type` is the type of the allocation's job ("" if gone).
pub fn alloc_list_stub(a: &Allocation, job_type: &str) -> Value {
    json!({
        "ID": a.id,
        "EvalID": a.eval_id,
        "Name": a.name,
        "Namespace": a.namespace,
        "NodeID": a.node_id,
        "NodeName": a.node_name,
        "JobID": a.job_id,
        "JobType": job_type,
        "JobVersion": a.job_version,
        "TaskGroup": a.task_group,
        "DesiredStatus": a.desired_status.as_str(),
        "DesiredDescription": a.desired_description,
        "ClientStatus": a.client_status.as_str(),
        "ClientDescription": a.client_description,
        "DesiredTransition": desired_transition(a),
        "TaskStates": task_states(a),
        "DeploymentStatus": null,
        "FollowupEvalID": a.followup_eval_id,
        "NextAllocation": a.next_allocation,
        "RescheduleTracker": reschedule_tracker(a),
        "PreemptedAllocations": preempted_allocations(a),
        "PreemptedByAllocation": a.preempted_by_allocation,
        "CreateIndex": a.create_index,
        "ModifyIndex": a.modify_index,
        "CreateTime": a.create_time_ns,
        "ModifyTime": a.modify_time_ns,
    })
}
