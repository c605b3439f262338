//! Agent and operator objects: `AgentMember` and `RaftServer`.

use engine::api::Member;
use serde_json::{json, Value};

/// Renders an `AgentMember` (`/v1/agent/members`, `agent/self` `member`).
pub fn agent_member(m: &Member) -> Value {
    let mut tags = json!({
        "role": "nomad",
        "region": m.region,
        "dc": m.datacenter,
        "build": env!("CARGO_PKG_VERSION"),
        "vsn": "1",
        "raft_vsn": "3",
        "id": m.id,
        "rpc_addr": m.addr,
        "port": m.rpc_port.to_string(),
    });
    if m.bootstrap_expect > 0 {
        tags["expect"] = Value::String(m.bootstrap_expect.to_string());
    }
    if !m.redundancy_zone.is_empty() {
        tags["zone"] = Value::String(m.redundancy_zone.clone());
    }
    if !m.upgrade_version.is_empty() {
        tags["upgrade_version"] = Value::String(m.upgrade_version.clone());
    }
    if !m.voter {
        tags["nonvoter"] = Value::String("1".into());
    }
    json!({
        "Name": m.name,
        "Addr": m.addr,
        "Port": m.serf_port,
        "Tags": tags,
        "Status": m.status,
        "ProtocolMin": 1,
        "ProtocolMax": 5,
        "ProtocolCur": 2,
        "DelegateMin": 2,
        "DelegateMax": 5,
        "DelegateCur": 4,
    })
}

/// Renders a `RaftServer` (`/v1/operator/raft/configuration`).
pub fn raft_server(m: &Member) -> Value {
    json!({
        "ID": m.id,
        "Node": m.name,
        "Address": format!("{}:{}", m.addr, m.rpc_port),
        "Leader": m.leader,
        "Voter": m.voter,
        "RaftProtocol": "3",
        "RedundancyZone": m.redundancy_zone,
        "UpgradeVersion": m.upgrade_version,
    })
}
