//! Status, region, agent and operator endpoints: reads answered from `Cluster::status()`,
//! plus the server-pool writes (`agent/join`, `agent/force-leave`).

use bytes::Bytes;
use engine::api::{ClusterStatus, Member};
use engine::Cluster;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::Ctx;
use crate::http::encode;
use crate::http::reply::{json_response, HttpError, HttpResponse};

/// `GET /v1/status/leader`: the leader's RPC address as a JSON string ("" when unknown).
pub(crate) fn leader<C: Cluster>(ctx: &Ctx<'_, C>) -> Result<HttpResponse, HttpError> {
    let status = ctx.cluster.status();
    Ok(json_response(
        &Value::String(status.leader_rpc_addr),
        ctx.query.pretty,
        None,
    ))
}

/// `GET /v1/status/peers`
pub(crate) fn peers<C: Cluster>(ctx: &Ctx<'_, C>) -> Result<HttpResponse, HttpError> {
    let status = ctx.cluster.status();
    Ok(json_response(&json!(status.peers), ctx.query.pretty, None))
}

/// `GET /v1/regions`
pub(crate) fn regions<C: Cluster>(ctx: &Ctx<'_, C>) -> Result<HttpResponse, HttpError> {
    let status = ctx.cluster.status();
    Ok(json_response(
        &json!([status.region]),
        ctx.query.pretty,
        None,
    ))
}

/// Returns this server's own member entry, or one built from the status when gossip has
/// not listed it yet.
fn self_member(status: &ClusterStatus) -> Member {
    let own_name = format!("{}.{}", status.server_name, status.region);
    status
        .members
        .iter()
        .find(|m| (!status.server_id.is_empty() && m.id == status.server_id) || m.name == own_name)
        .cloned()
        .unwrap_or_else(|| {
            let (addr, rpc_port) = split_host_port(&status.rpc_addr);
            Member {
                redundancy_zone: String::new(),
                upgrade_version: String::new(),
                name: own_name,
                addr,
                serf_port: 4648,
                rpc_port,
                region: status.region.clone(),
                datacenter: status.datacenter.clone(),
                status: "alive".into(),
                id: status.server_id.clone(),
                bootstrap_expect: 0,
                leader: status.known_leader && status.last_contact_ms == 0,
                voter: true,
            }
        })
}

fn split_host_port(addr: &str) -> (String, u16) {
    match addr.rsplit_once(':') {
        Some((host, port)) => (
            host.trim_matches(['[', ']']).to_string(),
            port.parse().unwrap_or(0),
        ),
        None => (addr.to_string(), 0),
    }
}

/// The process's resident memory in bytes (`VmRSS` of `/proc/self/status`), if known.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `GET /v1/agent/self`
pub(crate) fn agent_self<C: Cluster>(ctx: &Ctx<'_, C>) -> Result<HttpResponse, HttpError> {
    let status = ctx.cluster.status();
    let member = self_member(&status);
    let is_leader = !status.leader_rpc_addr.is_empty() && status.leader_rpc_addr == status.rpc_addr;
    let (http_host, http_port) = split_host_port(&status.http_addr);
    let (_, rpc_port) = split_host_port(&status.rpc_addr);
    let value = json!({
        "config": {
            "Region": status.region,
            "Datacenter": status.datacenter,
            "NodeName": status.server_name,
            "Version": {"Version": env!("CARGO_PKG_VERSION"), "VersionPrerelease": "", "Revision": ""},
            "Server": {"Enabled": true, "BootstrapExpect": member.bootstrap_expect},
            "Client": {"Enabled": false},
            "Addresses": {"HTTP": http_host},
            "Ports": {"HTTP": http_port, "RPC": rpc_port, "Serf": member.serf_port},
            "ACL": {"Enabled": false},
        },
        "member": encode::agent_member(&member),
        "stats": {
            "nomad": {
                "server": "true",
                "leader": is_leader.to_string(),
                "leader_addr": status.leader_rpc_addr,
                "bootstrap": "false",
                "known_regions": "1",
            },
            "raft": {
                "applied_index": status.raft_applied_index.to_string(),
                "commit_index": status.raft_commit_index.to_string(),
                "term": status.raft_term.to_string(),
                "state": if is_leader { "Leader" } else { "Follower" },
                "num_peers": status.peers.len().saturating_sub(1).to_string(),
            },
            "serf": {"members": status.members.len().to_string()},
            "runtime": {
                "arch": std::env::consts::ARCH,
                "os": std::env::consts::OS,
                "cpu_count": status.shards.to_string(),
                // drover's own: the process's resident memory, for capacity checks and the
                // load generator's bytes per allocation; empty where the system has no
                // `/proc`.
                "rss_bytes": resident_bytes().map(|b| b.to_string()).unwrap_or_default(),
            },
        },
    });
    Ok(json_response(&value, ctx.query.pretty, None))
}

/// `GET /v1/agent/members`
pub(crate) fn members<C: Cluster>(ctx: &Ctx<'_, C>) -> Result<HttpResponse, HttpError> {
    let status = ctx.cluster.status();
    let members: Vec<Value> = status.members.iter().map(encode::agent_member).collect();
    let value = json!({
        "ServerName": status.server_name,
        "ServerRegion": status.region,
        "ServerDC": status.datacenter,
        "Members": members,
    });
    Ok(json_response(&value, ctx.query.pretty, None))
}

/// `GET /v1/agent/health` (`type=server|client`, repeatable). This agent runs no client.
pub(crate) fn health<C: Cluster>(ctx: &Ctx<'_, C>) -> Result<HttpResponse, HttpError> {
    let status = ctx.cluster.status();
    let types: Vec<&str> = ctx
        .query
        .pairs
        .iter()
        .filter(|(k, _)| k == "type")
        .map(|(_, v)| v.as_str())
        .collect();
    let want_server = types.is_empty() || types.contains(&"server");
    let want_client = types.contains(&"client");
    let mut value = json!({});
    let mut healthy = true;
    if want_server {
        let ok = status.known_leader;
        healthy &= ok;
        value["server"] = json!({"ok": ok, "message": if ok { "ok" } else { "No cluster leader" }});
    }
    if want_client {
        healthy = false;
        value["client"] = json!({"ok": false, "message": "client not enabled"});
    }
    if healthy {
        return Ok(json_response(&value, ctx.query.pretty, None));
    }
    // Nomad reports an unhealthy agent with 500 and the same JSON as the body.
    Err(HttpError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        value.to_string(),
    ))
}

/// `GET /v1/operator/raft/configuration`: the Raft configuration, or the gossip members when
/// the cluster reports no Raft view (a server that has not joined a configuration yet).
pub(crate) fn raft_configuration<C: Cluster>(ctx: &Ctx<'_, C>) -> Result<HttpResponse, HttpError> {
    let status = ctx.cluster.status();
    let source = if status.raft_servers.is_empty() {
        &status.members
    } else {
        &status.raft_servers
    };
    let servers: Vec<Value> = source.iter().map(encode::raft_server).collect();
    let value = json!({"Servers": servers, "Index": status.raft_commit_index});
    Ok(json_response(&value, ctx.query.pretty, None))
}

/// A 200 answer with an empty body, as Nomad sends for writes that return nothing.
pub(crate) fn empty_ok() -> HttpResponse {
    Response::new(Full::new(Bytes::new()))
}

/// Returns every non-empty value of a repeatable query parameter, in order.
fn repeated<'q, C: Cluster>(ctx: &'q Ctx<'_, C>, key: &str) -> Vec<&'q str> {
    ctx.query
        .pairs
        .iter()
        .filter(|(k, v)| k == key && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .collect()
}

/// `PUT|POST /v1/agent/join?address=A&address=B`: joins the gossip pools of other servers.
pub(crate) async fn join<C: Cluster>(ctx: &Ctx<'_, C>) -> Result<HttpResponse, HttpError> {
    let addrs: Vec<String> = repeated(ctx, "address")
        .into_iter()
        .map(str::to_string)
        .collect();
    if addrs.is_empty() {
        return Err(HttpError::bad_request("missing address to join"));
    }
    match ctx.cluster.join_servers(addrs).await {
        Ok(joined) => Ok(json_response(
            &json!({"num_joined": joined, "error": ""}),
            ctx.query.pretty,
            None,
        )),
        // Whatever went wrong, no server was joined: the request failed as a whole.
        Err(e) => Err(HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            HttpError::from(e).message,
        )),
    }
}

/// `PUT|POST /v1/agent/force-leave?node=NAME[&prune=true]`: marks a failed server as left.
pub(crate) async fn force_leave<C: Cluster>(ctx: &Ctx<'_, C>) -> Result<HttpResponse, HttpError> {
    let node = ctx.query.get("node").unwrap_or("");
    if node.is_empty() {
        return Err(HttpError::bad_request("missing node to force leave"));
    }
    let prune = ctx.query.bool_param("prune")?;
    ctx.cluster.force_leave(node, prune).await?;
    Ok(empty_ok())
}
