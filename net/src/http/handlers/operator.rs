//! `/v1/operator/...`: the scheduler and autopilot configurations, autopilot's health report
//! and Raft peer removal.

use std::time::Duration;

use engine::api::{AutopilotHealth, AutopilotState, ReadView, ServerHealth};
use engine::config::AutopilotConfig;
use engine::Cluster;
use hyper::StatusCode;
use sched::{SchedulerAlgorithm, SchedulerConfig};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::agent::empty_ok;
use super::Ctx;
use crate::http::body::decode_json;
use crate::http::encode::rfc3339_nano;
use crate::http::query::parse_go_duration;
use crate::http::reply::{json_response, write_response, HttpError, HttpResponse};

/// Nomad's `PreemptionConfig`, as submitted.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct PreemptionBody {
    system_scheduler_enabled: Option<bool>,
    sys_batch_scheduler_enabled: Option<bool>,
    batch_scheduler_enabled: Option<bool>,
    service_scheduler_enabled: Option<bool>,
}

/// Nomad's `SchedulerConfiguration`, as submitted. Absent fields keep Nomad's defaults.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct SchedulerBody {
    scheduler_algorithm: Option<String>,
    preemption_config: Option<PreemptionBody>,
    memory_oversubscription_enabled: bool,
    reject_job_registration: bool,
    pause_eval_broker: bool,
}

fn encode(config: &SchedulerConfig, create_index: u64, modify_index: u64) -> Value {
    json!({
        "SchedulerAlgorithm": match config.algorithm {
            SchedulerAlgorithm::Binpack => "binpack",
            SchedulerAlgorithm::Spread => "spread",
        },
        "PreemptionConfig": {
            "SystemSchedulerEnabled": config.preempt_system,
            "SysBatchSchedulerEnabled": config.preempt_sysbatch,
            "BatchSchedulerEnabled": config.preempt_batch,
            "ServiceSchedulerEnabled": config.preempt_service,
        },
        "MemoryOversubscriptionEnabled": config.memory_oversubscription_enabled,
        "RejectJobRegistration": config.reject_job_registration,
        "PauseEvalBroker": config.pause_eval_broker,
        "CreateIndex": create_index,
        "ModifyIndex": modify_index,
    })
}

/// `GET /v1/operator/scheduler/configuration`
pub(crate) fn get_scheduler<C: Cluster>(ctx: &Ctx<'_, C>) -> Result<HttpResponse, HttpError> {
    let view = ctx.cluster.view();
    let index = view.scheduler_config_index();
    let value = json!({ "SchedulerConfig": encode(view.scheduler_config(), index, index) });
    let mut value = value;
    ctx.meta(index).embed(&mut value);
    Ok(ctx.read_reply(&value, index))
}

/// Parses the optional `?cas=N` check-and-set index.
fn cas_param<C: Cluster>(ctx: &Ctx<'_, C>) -> Result<Option<u64>, HttpError> {
    match ctx.query.get("cas") {
        None | Some("") => Ok(None),
        Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
            HttpError::bad_request(format!("Error parsing cas value: {v:?} is not a number"))
        }),
    }
}

/// `PUT|POST /v1/operator/scheduler/configuration[?cas=N]`
pub(crate) async fn set_scheduler<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
) -> Result<HttpResponse, HttpError> {
    let cas = cas_param(ctx)?;
    let body = ctx.body(ctx.limits.body_bytes_max).await?;
    let body: SchedulerBody = decode_json(&body)?;
    let algorithm = match body.scheduler_algorithm.as_deref() {
        None | Some("") | Some("binpack") => SchedulerAlgorithm::Binpack,
        Some("spread") => SchedulerAlgorithm::Spread,
        Some(other) => {
            return Err(HttpError::bad_request(format!(
                "invalid scheduler algorithm: {other:?}; SchedulerAlgorithm must be \"binpack\" or \"spread\""
            )))
        }
    };
    let defaults = SchedulerConfig::default();
    let p = body.preemption_config.unwrap_or_default();
    let config = SchedulerConfig {
        algorithm,
        memory_oversubscription_enabled: body.memory_oversubscription_enabled,
        reject_job_registration: body.reject_job_registration,
        pause_eval_broker: body.pause_eval_broker,
        preempt_system: p
            .system_scheduler_enabled
            .unwrap_or(defaults.preempt_system),
        preempt_sysbatch: p
            .sys_batch_scheduler_enabled
            .unwrap_or(defaults.preempt_sysbatch),
        preempt_batch: p.batch_scheduler_enabled.unwrap_or(defaults.preempt_batch),
        preempt_service: p
            .service_scheduler_enabled
            .unwrap_or(defaults.preempt_service),
    };
    let (updated, index) = ctx.cluster.set_scheduler_config(config, cas).await?;
    let value = json!({ "Updated": updated, "Index": index });
    Ok(write_response(&value, ctx.query.pretty, index))
}

/// `PUT /v1/operator/raft/write-test`: commits the body (at most the body limit) as one Raft
/// write that changes no state and answers its index. Needs `enable_debug` on the agent; the
/// `raft` scenario of the load generator drives it to measure the raw replicated commit rate.
pub(crate) async fn raft_write_test<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
) -> Result<HttpResponse, HttpError> {
    let body = ctx.body(ctx.limits.body_bytes_max).await?;
    let index = ctx.cluster.raft_write_test(body.to_vec()).await?;
    let value = json!({ "Index": index });
    Ok(write_response(&value, ctx.query.pretty, index))
}

/// `DELETE /v1/operator/raft/peer?id=X` or `?address=ip:port` (exactly one).
pub(crate) async fn remove_raft_peer<C: Cluster>(
    ctx: &Ctx<'_, C>,
) -> Result<HttpResponse, HttpError> {
    let id = ctx.query.get("id").filter(|v| !v.is_empty());
    let address = ctx.query.get("address").filter(|v| !v.is_empty());
    match (id, address) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(HttpError::bad_request(
                "Must specify either ?id with the server's ID or ?address with IP:port of peer to remove",
            ))
        }
        (None, Some(addr)) if !is_host_port(addr) => {
            return Err(HttpError::bad_request(format!(
                "address: {addr:?} is not of the form ip:port"
            )))
        }
        _ => {}
    }
    ctx.cluster.remove_raft_peer(id, address).await?;
    Ok(empty_ok())
}

/// Reports whether `addr` is `host:port` with a non-empty host and a non-zero decimal port.
fn is_host_port(addr: &str) -> bool {
    addr.rsplit_once(':').is_some_and(|(host, port)| {
        !host.trim_matches(['[', ']']).is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
    })
}

const AUTOPILOT_PATH_PREFIX: &str = "autopilot.";

/// Formats a duration as Go's `time.Duration.String()` does (`200ms`, `10s`, `1m30s`).
pub(crate) fn go_duration_string(d: Duration) -> String {
    const MICRO: u128 = 1_000;
    const MILLI: u128 = 1_000_000;
    const SECOND: u128 = 1_000_000_000;
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_string();
    }
    if ns < MICRO {
        return format!("{ns}ns");
    }
    if ns < MILLI {
        return format!("{}\u{b5}s", decimal(ns, MICRO));
    }
    if ns < SECOND {
        return format!("{}ms", decimal(ns, MILLI));
    }
    let total_secs = ns / SECOND;
    let hours = total_secs / 3600;
    let minutes = (total_secs / 60) % 60;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&decimal(ns % (60 * SECOND), SECOND));
    out.push('s');
    out
}

/// Renders `value / unit` with the fraction's trailing zeros trimmed (`unit` a power of ten).
fn decimal(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let rest = value % unit;
    if rest == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let fraction = format!("{rest:0width$}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

fn encode_autopilot(state: &AutopilotState) -> Value {
    let c = &state.config;
    json!({
        "CleanupDeadServers": c.cleanup_dead_servers,
        "LastContactThreshold": go_duration_string(c.last_contact_threshold),
        "MaxTrailingLogs": c.max_trailing_logs,
        "MinQuorum": c.min_quorum,
        "ServerStabilizationTime": go_duration_string(c.server_stabilization_time),
        "EnableRedundancyZones": c.enable_redundancy_zones,
        "DisableUpgradeMigration": c.disable_upgrade_migration,
        "EnableCustomUpgrades": c.enable_custom_upgrades,
        "CreateIndex": state.create_index,
        "ModifyIndex": state.modify_index,
    })
}

/// `GET /v1/operator/autopilot/configuration`
pub(crate) fn get_autopilot<C: Cluster>(ctx: &Ctx<'_, C>) -> Result<HttpResponse, HttpError> {
    let state = ctx.cluster.autopilot_config();
    Ok(ctx.read_reply(&encode_autopilot(&state), state.modify_index))
}

/// The fields of Nomad's `AutopilotConfiguration`. The indexes are accepted (clients send
/// back what they read) and ignored; `?cas=` is the check-and-set.
const AUTOPILOT_FIELDS: &[&str] = &[
    "CleanupDeadServers",
    "LastContactThreshold",
    "MaxTrailingLogs",
    "MinQuorum",
    "ServerStabilizationTime",
    "EnableRedundancyZones",
    "DisableUpgradeMigration",
    "EnableCustomUpgrades",
    "CreateIndex",
    "ModifyIndex",
];

/// Decodes a submitted autopilot configuration. Absent or null fields keep the defaults;
/// field names match case-insensitively, as Go's JSON decoder does.
pub(crate) fn decode_autopilot(body: &Map<String, Value>) -> Result<AutopilotConfig, HttpError> {
    let mut unknown = Vec::new();
    let mut fields: Vec<(&'static str, &Value)> = Vec::new();
    for (key, value) in body {
        match AUTOPILOT_FIELDS
            .iter()
            .find(|f| f.eq_ignore_ascii_case(key))
        {
            Some(field) if !value.is_null() => fields.push((field, value)),
            Some(_) => {}
            None => unknown.push(format!("{key:?}")),
        }
    }
    if !unknown.is_empty() {
        return Err(HttpError::bad_request(format!(
            "Failed to decode request body: unknown fields {}",
            unknown.join(", ")
        )));
    }
    let mut config = AutopilotConfig::default();
    let mut problems = Vec::new();
    for (field, value) in fields {
        let result = match field {
            "CleanupDeadServers" => json_bool(value).map(|v| config.cleanup_dead_servers = v),
            "EnableRedundancyZones" => json_bool(value).map(|v| config.enable_redundancy_zones = v),
            "DisableUpgradeMigration" => {
                json_bool(value).map(|v| config.disable_upgrade_migration = v)
            }
            "EnableCustomUpgrades" => json_bool(value).map(|v| config.enable_custom_upgrades = v),
            "LastContactThreshold" => {
                json_duration(value).map(|v| config.last_contact_threshold = v)
            }
            "ServerStabilizationTime" => {
                json_duration(value).map(|v| config.server_stabilization_time = v)
            }
            "MaxTrailingLogs" => json_u64(value).map(|v| config.max_trailing_logs = v),
            "MinQuorum" => json_u64(value).and_then(|v| {
                u32::try_from(v)
                    .map(|v| config.min_quorum = v)
                    .map_err(|_| format!("{v} is out of range (at most {})", u32::MAX))
            }),
            _ => json_u64(value).map(|_| ()),
        };
        if let Err(reason) = result {
            problems.push(format!("{field}: {reason}"));
        }
    }
    if problems.is_empty() {
        // The engine's range rules, reported under the JSON field names.
        problems = config
            .validate()
            .into_iter()
            .map(|(path, reason)| format!("{}: {reason}", pascal_field(&path)))
            .collect();
    }
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(HttpError::bad_request(format!(
            "Invalid autopilot configuration: {}",
            problems.join("; ")
        )))
    }
}

/// Maps a config path such as `autopilot.last_contact_threshold` to `LastContactThreshold`.
fn pascal_field(path: &str) -> String {
    let name = path.strip_prefix(AUTOPILOT_PATH_PREFIX).unwrap_or(path);
    name.split('_')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn json_bool(value: &Value) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| format!("expected a boolean, got {value}"))
}

fn json_u64(value: &Value) -> Result<u64, String> {
    value
        .as_u64()
        .ok_or_else(|| format!("expected a non-negative integer, got {value}"))
}

/// A duration as a Go string (`"500ms"`) or an integer number of nanoseconds.
fn json_duration(value: &Value) -> Result<Duration, String> {
    match value {
        Value::String(text) => parse_go_duration(text),
        Value::Number(n) => {
            if let Some(ns) = n.as_u64() {
                return Ok(Duration::from_nanos(ns));
            }
            // Go clients may send whole floats (`2e8`); fractions of a nanosecond are not.
            match n.as_f64() {
                Some(f) if f >= 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64 => {
                    Ok(Duration::from_nanos(f as u64))
                }
                _ => Err(format!(
                    "expected a duration string or non-negative nanoseconds, got {n}"
                )),
            }
        }
        other => Err(format!(
            "expected a duration string or non-negative nanoseconds, got {other}"
        )),
    }
}

/// `PUT|POST /v1/operator/autopilot/configuration[?cas=N]`: answers `true` or `false`.
pub(crate) async fn set_autopilot<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
) -> Result<HttpResponse, HttpError> {
    let cas = cas_param(ctx)?;
    let body = ctx.body(ctx.limits.body_bytes_max).await?;
    let body: Value = decode_json(&body)?;
    let Value::Object(map) = body else {
        return Err(HttpError::bad_request(
            "Failed to decode request body: expected a JSON object",
        ));
    };
    let config = decode_autopilot(&map)?;
    let updated = ctx.cluster.set_autopilot_config(config, cas).await?;
    Ok(json_response(&Value::Bool(updated), ctx.query.pretty, None))
}

/// Go's zero `time.Time`, which Nomad prints for a server that has never been stable.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn encode_server_health(server: &ServerHealth) -> Value {
    let stable_since = if server.stable_since_unix == 0 {
        GO_ZERO_TIME.to_string()
    } else {
        let secs = i64::try_from(server.stable_since_unix).unwrap_or(i64::MAX / 1_000_000_000);
        rfc3339_nano(secs.saturating_mul(1_000_000_000))
    };
    json!({
        "ID": server.id,
        "Name": server.name,
        "Address": server.address,
        "SerfStatus": server.serf_status,
        "Version": server.version,
        "Leader": server.leader,
        "LastContact": go_duration_string(Duration::from_millis(server.last_contact_ms)),
        "LastTerm": server.last_term,
        "LastIndex": server.last_index,
        "Healthy": server.healthy,
        "Voter": server.voter,
        "StableSince": stable_since,
    })
}

pub(crate) fn encode_autopilot_health(health: &AutopilotHealth) -> Value {
    let leader = health
        .servers
        .iter()
        .find(|s| s.leader)
        .map_or("", |s| s.id.as_str());
    let voters: Vec<&str> = health
        .servers
        .iter()
        .filter(|s| s.voter)
        .map(|s| s.id.as_str())
        .collect();
    let servers: Vec<Value> = health.servers.iter().map(encode_server_health).collect();
    json!({
        "Healthy": health.healthy,
        "FailureTolerance": health.failure_tolerance,
        "Servers": servers,
        "Leader": leader,
        "Voters": voters,
    })
}

/// `GET /v1/operator/autopilot/health`: 200 when healthy, else 429 with the same JSON, as
/// Nomad does so that load balancers can probe it.
pub(crate) fn autopilot_health<C: Cluster>(ctx: &Ctx<'_, C>) -> Result<HttpResponse, HttpError> {
    let health = ctx.cluster.autopilot_health();
    let mut response = json_response(&encode_autopilot_health(&health), ctx.query.pretty, None);
    if !health.healthy {
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(15), "15ns"),
            (Duration::from_nanos(1_500), "1.5\u{b5}s"),
            (Duration::from_millis(200), "200ms"),
            (Duration::from_micros(12_345), "12.345ms"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_secs(300), "5m0s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_millis(5_430_500), "1h30m30.5s"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration_string(d), want, "{d:?}");
            assert_eq!(parse_go_duration(want).unwrap(), d, "{want}");
        }
    }

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn autopilot_body_keeps_defaults_and_accepts_both_duration_forms() {
        let c = decode_autopilot(&object(json!({
            "CleanupDeadServers": false,
            "LastContactThreshold": "500ms",
            "serverstabilizationtime": 5_000_000_000u64,
            "MinQuorum": 3,
            "ModifyIndex": 9,
            "MaxTrailingLogs": null,
        })))
        .unwrap();
        assert!(!c.cleanup_dead_servers);
        assert_eq!(c.last_contact_threshold, Duration::from_millis(500));
        assert_eq!(c.server_stabilization_time, Duration::from_secs(5));
        assert_eq!(c.min_quorum, 3);
        assert_eq!(
            c.max_trailing_logs,
            AutopilotConfig::default().max_trailing_logs
        );
        assert_eq!(
            decode_autopilot(&Map::new()).unwrap(),
            AutopilotConfig::default()
        );
    }

    #[test]
    fn autopilot_body_errors_name_fields() {
        let e =
            decode_autopilot(&object(json!({"Colour": 1, "MinQuorum": 1, "x": 2}))).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert_eq!(
            e.message,
            "Failed to decode request body: unknown fields \"Colour\", \"x\""
        );
        let e = decode_autopilot(&object(json!({
            "LastContactThreshold": "fast",
            "MinQuorum": -1,
            "CleanupDeadServers": "yes",
        })))
        .unwrap_err();
        assert!(
            e.message.contains("LastContactThreshold: invalid duration"),
            "{}",
            e.message
        );
        assert!(
            e.message
                .contains("MinQuorum: expected a non-negative integer"),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("CleanupDeadServers: expected a boolean"),
            "{}",
            e.message
        );
        let e = decode_autopilot(&object(json!({"MinQuorum": 5_000_000_000u64}))).unwrap_err();
        assert!(
            e.message.contains("MinQuorum: 5000000000 is out of range"),
            "{}",
            e.message
        );
        let e = decode_autopilot(&object(
            json!({"LastContactThreshold": 0, "MaxTrailingLogs": 0}),
        ))
        .unwrap_err();
        assert_eq!(
            e.message,
            "Invalid autopilot configuration: LastContactThreshold: must be greater than zero; \
             MaxTrailingLogs: must be at least 1"
        );
        let e = decode_autopilot(&object(json!({"LastContactThreshold": 1.5}))).unwrap_err();
        assert!(
            e.message
                .contains("LastContactThreshold: expected a duration"),
            "{}",
            e.message
        );
    }

    #[test]
    fn peer_addresses_need_a_port() {
        assert!(is_host_port("10.0.0.1:4647"));
        assert!(is_host_port("[::1]:4647"));
        assert!(!is_host_port("10.0.0.1"));
        assert!(!is_host_port(":4647"));
        assert!(!is_host_port("10.0.0.1:http"));
        assert!(!is_host_port("10.0.0.1:0"));
    }

    #[test]
    fn health_names_leader_and_voters() {
        let server = |id: &str, leader: bool, voter: bool| ServerHealth {
            id: id.into(),
            leader,
            voter,
            healthy: true,
            last_contact_ms: 12,
            stable_since_unix: if leader { 1_700_000_000 } else { 0 },
            ..ServerHealth::default()
        };
        let health = AutopilotHealth {
            healthy: true,
            failure_tolerance: 0,
            servers: vec![server("a", true, true), server("b", false, false)],
        };
        let v = encode_autopilot_health(&health);
        assert_eq!(v["Leader"], "a");
        assert_eq!(v["Voters"], json!(["a"]));
        assert_eq!(v["Servers"][0]["LastContact"], "12ms");
        assert_eq!(v["Servers"][0]["StableSince"], "2023-11-14T22:13:20Z");
        assert_eq!(v["Servers"][1]["StableSince"], GO_ZERO_TIME);
    }
}
