//! Nomad's `Node` and `NodeListStub`.

use sched::structs::Node;
use serde_json::{json, Map, Value};

use super::{string_map, time_value};

/// Nomad's default dynamic port range, which drover nodes use.
const MIN_DYNAMIC_PORT: u16 = 20000;
const MAX_DYNAMIC_PORT: u16 = 32000;

fn node_resources(n: &Node) -> Value {
    json!({
        "Cpu": {"CpuShares": n.resources.cpu_mhz, "TotalCpuCores": 0, "ReservableCpuCores": null},
        "Processors": null,
        "Memory": {"MemoryMB": n.resources.memory_mb},
        "Disk": {"DiskMB": n.resources.disk_mb},
        "Devices": null,
        "NodeNetworks": null,
        "Networks": null,
        "MinDynamicPort": MIN_DYNAMIC_PORT,
        "MaxDynamicPort": MAX_DYNAMIC_PORT,
    })
}

fn reserved_resources(n: &Node) -> Value {
    json!({
        "Cpu": {"CpuShares": n.reserved.cpu_mhz, "ReservedCpuCores": null},
        "Memory": {"MemoryMB": n.reserved.memory_mb},
        "Disk": {"DiskMB": n.reserved.disk_mb},
        "Networks": {"ReservedHostPorts": ""},
    })
}

fn drivers(n: &Node) -> Value {
    let map: Map<String, Value> = n
        .drivers
        .iter()
        .map(|d| {
            let info = json!({
                "Attributes": null,
                "Detected": true,
                "Healthy": true,
                "HealthDescription": "Healthy",
                "UpdateTime": null,
            });
            (d.clone(), info)
        })
        .collect();
    Value::Object(map)
}

fn eligibility(n: &Node) -> &'static str {
    if n.eligible {
        "eligible"
    } else {
        "ineligible"
    }
}

/// Renders a full `Node` (`GET /v1/node/:id`); the secret is never shown.
pub fn node(n: &Node) -> Value {
    let drain = n.drain.as_ref().map(|d| {
        json!({
            "Deadline": d.deadline_ns,
            "IgnoreSystemJobs": d.ignore_system_jobs,
            "ForceDeadline": time_value(d.force_deadline_unix_ns),
            "StartedAt": time_value(d.started_at_unix_ns),
        })
    });
    let events: Vec<Value> = n
        .events
        .iter()
        .map(|e| {
            json!({
                "Message": e.message,
                "Subsystem": e.subsystem,
                "Details": null,
                "Timestamp": time_value(e.timestamp_unix_ns),
                "CreateIndex": e.create_index,
            })
        })
        .collect();
    json!({
        "ID": n.id,
        "SecretID": "",
        "Datacenter": n.datacenter,
        "Name": n.name,
        "CgroupParent": "",
        "HTTPAddr": n.http_addr,
        "TLSEnabled": false,
        "Attributes": string_map(&n.attributes),
        "NodeResources": node_resources(n),
        "ReservedResources": reserved_resources(n),
        "Links": null,
        "Meta": string_map(&n.meta),
        "NodeClass": n.node_class,
        "NodePool": n.node_pool,
        "ComputedClass": "",
        "DrainStrategy": drain,
        "Drain": n.drain.is_some(),
        "SchedulingEligibility": eligibility(n),
        "Status": n.status.as_str(),
        "StatusDescription": n.status_description,
        "IdentitySigningKeyID": "",
        "StatusUpdatedAt": n.status_updated_at_unix_s,
        "Events": events,
        "Drivers": drivers(n),
        "CSIControllerPlugins": null,
        "CSINodePlugins": null,
        "HostVolumes": null,
        "GCVolumesOnNodeGC": false,
        "HostNetworks": null,
        "LastDrain": null,
        "NodeMaxAllocs": 0,
        "LastMissedHeartbeatIndex": 0,
        "LastAllocUpdateIndex": 0,
        "CreateIndex": n.create_index,
        "ModifyIndex": n.modify_index,
    })
}

/// Renders a `NodeListStub`; `resources` and `os` add the fields Nomad adds for those flags.
pub fn node_list_stub(n: &Node, resources: bool, os: bool) -> Value {
    let address = n
        .http_addr
        .rsplit_once(':')
        .map_or(n.http_addr.as_str(), |(host, _)| host);
    let mut stub = json!({
        "Address": address,
        "ID": n.id,
        "Datacenter": n.datacenter,
        "Name": n.name,
        "NodePool": n.node_pool,
        "NodeClass": n.node_class,
        "Version": n.attributes.get("nomad.version").cloned().unwrap_or_default(),
        "Drain": n.drain.is_some(),
        "SchedulingEligibility": eligibility(n),
        "Status": n.status.as_str(),
        "StatusDescription": n.status_description,
        "Drivers": drivers(n),
        "HostVolumes": null,
        "LastDrain": null,
        "CreateIndex": n.create_index,
        "ModifyIndex": n.modify_index,
    });
    if let Some(map) = stub.as_object_mut() {
        if os {
            let os_name = n.attributes.get("os.name").cloned().unwrap_or_default();
            map.insert("Attributes".into(), json!({"os.name": os_name}));
        }
        if resources {
            map.insert("NodeResources".into(), node_resources(n));
            map.insert("ReservedResources".into(), reserved_resources(n));
        }
    }
    stub
}
