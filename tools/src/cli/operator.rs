//! `drover operator raft list-peers|remove-peer`, `operator scheduler get-config|set-config`
//! and `operator autopilot get-config|set-config|health`.

use std::time::Duration;

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::client::{ApiClient, ClientError};
use super::format::{bool_field, int_field, key_values, pretty_json, str_field, table};
use super::ApiArgs;

#[path = "recover.rs"]
pub mod recover;

/// `drover operator ...`
#[derive(Args, Debug)]
pub struct OperatorCommand {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub sub: OperatorSub,
}

/// Operator subcommands.
#[derive(Subcommand, Debug)]
pub enum OperatorSub {
    /// Raft tools.
    Raft(RaftCommand),
    /// Scheduler configuration tools.
    Scheduler(SchedulerCommand),
    /// Autopilot configuration and server health.
    Autopilot(AutopilotCommand),
}

/// `drover operator scheduler ...`
#[derive(Args, Debug)]
pub struct SchedulerCommand {
    #[command(subcommand)]
    pub sub: SchedulerSub,
}

/// Scheduler configuration subcommands.
#[derive(Subcommand, Debug)]
pub enum SchedulerSub {
    /// Prints the scheduler configuration.
    GetConfig(GetConfigArgs),
    /// Changes the scheduler configuration; unset flags keep their current values.
    SetConfig(SetConfigArgs),
}

/// Flags of `operator scheduler get-config`.
#[derive(Args, Debug)]
pub struct GetConfigArgs {
    /// Prints the raw JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `operator scheduler set-config`.
#[derive(Args, Debug)]
pub struct SetConfigArgs {
    /// Placement algorithm: binpack or spread.
    #[arg(long = "scheduler-algorithm", value_parser = ["binpack", "spread"])]
    pub scheduler_algorithm: Option<String>,
    /// Lets tasks use memory up to their memory_max.
    #[arg(long = "memory-oversubscription", value_name = "BOOL")]
    pub memory_oversubscription: Option<bool>,
    /// Refuses job registration, dispatch and scaling.
    #[arg(long = "reject-job-registration", value_name = "BOOL")]
    pub reject_job_registration: Option<bool>,
    /// Stops the evaluation broker from handing out work.
    #[arg(long = "pause-eval-broker", value_name = "BOOL")]
    pub pause_eval_broker: Option<bool>,
    /// Enables preemption for service jobs.
    #[arg(long = "preempt-service-scheduler", value_name = "BOOL")]
    pub preempt_service: Option<bool>,
    /// Enables preemption for batch jobs.
    #[arg(long = "preempt-batch-scheduler", value_name = "BOOL")]
    pub preempt_batch: Option<bool>,
    /// Enables preemption for system jobs.
    #[arg(long = "preempt-system-scheduler", value_name = "BOOL")]
    pub preempt_system: Option<bool>,
    /// Enables preemption for sysbatch jobs.
    #[arg(long = "preempt-sysbatch-scheduler", value_name = "BOOL")]
    pub preempt_sysbatch: Option<bool>,
    /// Applies only if the configuration's modify index still equals the one read.
    #[arg(long = "check-index")]
    pub check_index: bool,
}

/// `drover operator raft ...`
#[derive(Args, Debug)]
pub struct RaftCommand {
    #[command(subcommand)]
    pub sub: RaftSub,
}

/// Raft subcommands.
#[derive(Subcommand, Debug)]
pub enum RaftSub {
    /// Lists the Raft peers with their state and voting status.
    ListPeers(ListPeersArgs),
    /// Removes a server from the Raft configuration by its Raft id or address.
    RemovePeer(RemovePeerArgs),
    /// Prints the peers.json for stopped servers read from their data dirs (-write installs it).
    Recover(recover::RecoverArgs),
}

/// Flags of `operator raft remove-peer`: exactly one of the two.
#[derive(Args, Debug)]
pub struct RemovePeerArgs {
    /// Raft id of the server to remove (from list-peers).
    #[arg(long = "peer-id", value_name = "ID")]
    pub peer_id: Option<String>,
    /// Raft address (ip:port) of the server to remove.
    #[arg(long = "peer-address", value_name = "ADDR")]
    pub peer_address: Option<String>,
}

/// Flags of `operator raft list-peers`.
#[derive(Args, Debug)]
pub struct ListPeersArgs {
    /// Lets any server answer from its local state instead of asking the leader.
    #[arg(long)]
    pub stale: bool,
    /// Prints the raw JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs an `operator` subcommand and returns the exit code.
pub fn run(cmd: OperatorCommand) -> Result<i32> {
    let client = cmd.api.client();
    match cmd.sub {
        OperatorSub::Raft(raft) => match raft.sub {
            RaftSub::ListPeers(args) => list_peers(&client, &args),
            RaftSub::RemovePeer(args) => remove_peer(&client, &args),
            RaftSub::Recover(args) => recover::run(&args),
        },
        OperatorSub::Scheduler(scheduler) => match scheduler.sub {
            SchedulerSub::GetConfig(args) => get_config(&client, &args),
            SchedulerSub::SetConfig(args) => set_config(&client, &args),
        },
        OperatorSub::Autopilot(autopilot) => match autopilot.sub {
            AutopilotSub::GetConfig(args) => autopilot_get_config(&client, &args),
            AutopilotSub::SetConfig(args) => autopilot_set_config(&client, &args),
            AutopilotSub::Health(args) => autopilot_health(&client, &args),
        },
    }
}

/// Returns the query parameter (`id` or `address`) and value that name the peer to remove.
pub fn peer_to_remove(args: &RemovePeerArgs) -> Result<(&'static str, &str)> {
    let id = args.peer_id.as_deref().filter(|v| !v.is_empty());
    let address = args.peer_address.as_deref().filter(|v| !v.is_empty());
    match (id, address) {
        (Some(id), None) => Ok(("id", id)),
        (None, Some(address)) => Ok(("address", address)),
        (Some(_), Some(_)) => Err(anyhow!(
            "Error removing peer: give either -peer-id or -peer-address, not both"
        )),
        (None, None) => Err(anyhow!(
            "Error removing peer: one of -peer-id or -peer-address is required"
        )),
    }
}

fn remove_peer(client: &ApiClient, args: &RemovePeerArgs) -> Result<i32> {
    let (key, value) = peer_to_remove(args)?;
    client
        .delete("/v1/operator/raft/peer", &[(key, value)])
        .map_err(|e| anyhow!("Error removing peer: {e}"))?;
    println!("Removed peer with {key} \"{value}\"");
    Ok(0)
}

const SCHEDULER_CONFIG_PATH: &str = "/v1/operator/scheduler/configuration";

fn get_config(client: &ApiClient, args: &GetConfigArgs) -> Result<i32> {
    let response = client
        .get(SCHEDULER_CONFIG_PATH, &[])
        .map_err(|e| anyhow!("Error querying scheduler configuration: {e}"))?;
    let config = response
        .get("SchedulerConfig")
        .cloned()
        .unwrap_or(Value::Null);
    if args.json {
        println!("{}", pretty_json(&config));
    } else {
        print!("{}", render_scheduler_config(&config));
    }
    Ok(0)
}

/// Renders the scheduler configuration as `key = value` lines.
pub fn render_scheduler_config(config: &Value) -> String {
    let preemption = config
        .get("PreemptionConfig")
        .cloned()
        .unwrap_or(Value::Null);
    let flag = |v: &Value, key: &str| bool_field(v, key).to_string();
    key_values(&[
        (
            "Scheduler Algorithm",
            str_field(config, "SchedulerAlgorithm").to_string(),
        ),
        (
            "Memory Oversubscription",
            flag(config, "MemoryOversubscriptionEnabled"),
        ),
        (
            "Reject Job Registration",
            flag(config, "RejectJobRegistration"),
        ),
        ("Pause Eval Broker", flag(config, "PauseEvalBroker")),
        (
            "Preemption System Scheduler",
            flag(&preemption, "SystemSchedulerEnabled"),
        ),
        (
            "Preemption Service Scheduler",
            flag(&preemption, "ServiceSchedulerEnabled"),
        ),
        (
            "Preemption Batch Scheduler",
            flag(&preemption, "BatchSchedulerEnabled"),
        ),
        (
            "Preemption SysBatch Scheduler",
            flag(&preemption, "SysBatchSchedulerEnabled"),
        ),
        ("Modify Index", int_field(config, "ModifyIndex").to_string()),
    ])
}

/// Applies the flags that were given on top of the current configuration.
pub fn apply_set_config(config: &mut Value, args: &SetConfigArgs) {
    if let Some(algorithm) = &args.scheduler_algorithm {
        config["SchedulerAlgorithm"] = json!(algorithm);
    }
    let top = [
        (
            "MemoryOversubscriptionEnabled",
            args.memory_oversubscription,
        ),
        ("RejectJobRegistration", args.reject_job_registration),
        ("PauseEvalBroker", args.pause_eval_broker),
    ];
    for (key, value) in top {
        if let Some(value) = value {
            config[key] = json!(value);
        }
    }
    let preemption = [
        ("ServiceSchedulerEnabled", args.preempt_service),
        ("BatchSchedulerEnabled", args.preempt_batch),
        ("SystemSchedulerEnabled", args.preempt_system),
        ("SysBatchSchedulerEnabled", args.preempt_sysbatch),
    ];
    for (key, value) in preemption {
        if let Some(value) = value {
            if !config["PreemptionConfig"].is_object() {
                config["PreemptionConfig"] = json!({});
            }
            config["PreemptionConfig"][key] = json!(value);
        }
    }
}

fn set_config(client: &ApiClient, args: &SetConfigArgs) -> Result<i32> {
    let response = client
        .get(SCHEDULER_CONFIG_PATH, &[])
        .map_err(|e| anyhow!("Error querying scheduler configuration: {e}"))?;
    let mut config = response
        .get("SchedulerConfig")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if !config.is_object() {
        config = json!({});
    }
    apply_set_config(&mut config, args);
    let cas = int_field(&config, "ModifyIndex").to_string();
    let query: Vec<(&str, &str)> = if args.check_index {
        vec![("cas", cas.as_str())]
    } else {
        vec![]
    };
    let result = client
        .put(SCHEDULER_CONFIG_PATH, &query, &config)
        .map_err(|e| anyhow!("Error setting scheduler configuration: {e}"))?;
    if args.check_index && result.get("Updated").and_then(Value::as_bool) == Some(false) {
        println!("Scheduler configuration could not be atomically updated, please try again");
        return Ok(1);
    }
    println!("Scheduler configuration updated!");
    Ok(0)
}

fn list_peers(client: &ApiClient, args: &ListPeersArgs) -> Result<i32> {
    let query: &[(&str, &str)] = if args.stale {
        &[("stale", "true")]
    } else {
        &[]
    };
    let config = client
        .get("/v1/operator/raft/configuration", query)
        .map_err(|e| anyhow!("Error getting peers: {e}"))?;
    if args.json {
        println!("{}", pretty_json(&config));
    } else {
        print!("{}", render_peers(&config));
    }
    Ok(0)
}

/// Renders the Raft configuration as Nomad's peers table.
pub fn render_peers(config: &Value) -> String {
    let header = ["Node", "ID", "Address", "State", "Voter", "RaftProtocol"];
    let mut rows = vec![header.map(String::from).to_vec()];
    for server in config
        .get("Servers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let state = if bool_field(server, "Leader") {
            "leader"
        } else {
            "follower"
        };
        let protocol = match server.get("RaftProtocol") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => "unknown".to_string(),
        };
        rows.push(vec![
            str_field(server, "Node").to_string(),
            str_field(server, "ID").to_string(),
            str_field(server, "Address").to_string(),
            state.to_string(),
            bool_field(server, "Voter").to_string(),
            protocol,
        ]);
    }
    table(&rows)
}

/// `drover operator autopilot ...`
#[derive(Args, Debug)]
pub struct AutopilotCommand {
    #[command(subcommand)]
    pub sub: AutopilotSub,
}

/// Autopilot subcommands.
#[derive(Subcommand, Debug)]
pub enum AutopilotSub {
    /// Prints the autopilot configuration.
    GetConfig(GetConfigArgs),
    /// Changes the autopilot configuration; unset flags keep their current values.
    SetConfig(AutopilotSetArgs),
    /// Prints autopilot's view of every server's health.
    Health(AutopilotHealthArgs),
}

/// Flags of `operator autopilot set-config`. Boolean flags accept `-flag`, `-flag=true` and
/// `-flag=false`, as Go's flag package does.
#[derive(Args, Debug, Default)]
pub struct AutopilotSetArgs {
    /// Removes dead servers automatically when a new server joins.
    #[arg(long = "cleanup-dead-servers", value_name = "BOOL", num_args = 0..=1,
        require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub cleanup_dead_servers: Option<bool>,
    /// Longest a server may go without contact with the leader and still count as healthy.
    #[arg(long = "last-contact-threshold", value_name = "DURATION",
        value_parser = humantime::parse_duration)]
    pub last_contact_threshold: Option<Duration>,
    /// Most log entries a server may trail the leader by and still count as healthy.
    #[arg(long = "max-trailing-logs", value_name = "N")]
    pub max_trailing_logs: Option<u64>,
    /// Fewest servers autopilot keeps when removing dead ones.
    #[arg(long = "min-quorum", value_name = "N")]
    pub min_quorum: Option<u32>,
    /// How long a new server must be healthy before it becomes a voter.
    #[arg(long = "server-stabilization-time", value_name = "DURATION",
        value_parser = humantime::parse_duration)]
    pub server_stabilization_time: Option<Duration>,
    /// Keeps one voter per redundancy zone.
    #[arg(long = "enable-redundancy-zones", value_name = "BOOL", num_args = 0..=1,
        require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub enable_redundancy_zones: Option<bool>,
    /// Turns off upgrade migrations.
    #[arg(long = "disable-upgrade-migration", value_name = "BOOL", num_args = 0..=1,
        require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub disable_upgrade_migration: Option<bool>,
    /// Uses the servers' upgrade_version tags to decide upgrades.
    #[arg(long = "enable-custom-upgrades", value_name = "BOOL", num_args = 0..=1,
        require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub enable_custom_upgrades: Option<bool>,
}

/// Flags of `operator autopilot health`.
#[derive(Args, Debug)]
pub struct AutopilotHealthArgs {
    /// Prints the raw JSON.
    #[arg(long)]
    pub json: bool,
}

/// Parses a boolean the way Go's `strconv.ParseBool` does.
fn go_bool(text: &str) -> Result<bool, String> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("{text:?} is not a boolean (true or false)")),
    }
}

const AUTOPILOT_CONFIG_PATH: &str = "/v1/operator/autopilot/configuration";

fn autopilot_get_config(client: &ApiClient, args: &GetConfigArgs) -> Result<i32> {
    let config = client
        .get(AUTOPILOT_CONFIG_PATH, &[])
        .map_err(|e| anyhow!("Error querying Autopilot configuration: {e}"))?;
    if args.json {
        println!("{}", pretty_json(&config));
    } else {
        print!("{}", render_autopilot_config(&config));
    }
    Ok(0)
}

/// Renders the autopilot configuration as Nomad does: one `Name = value` line per field.
pub fn render_autopilot_config(config: &Value) -> String {
    let text = |key: &str| match config.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let keys = [
        "CleanupDeadServers",
        "LastContactThreshold",
        "MaxTrailingLogs",
        "MinQuorum",
        "ServerStabilizationTime",
        "EnableRedundancyZones",
        "DisableUpgradeMigration",
        "EnableCustomUpgrades",
    ];
    keys.iter()
        .map(|key| format!("{key} = {}\n", text(key)))
        .collect()
}

/// Applies the flags that were given on top of the current configuration. Durations are
/// sent as integer nanoseconds, which the server accepts besides Go duration strings.
pub fn apply_autopilot_flags(config: &mut Value, args: &AutopilotSetArgs) {
    let flags = [
        (
            "CleanupDeadServers",
            args.cleanup_dead_servers.map(Value::from),
        ),
        (
            "LastContactThreshold",
            args.last_contact_threshold.map(duration_nanos),
        ),
        ("MaxTrailingLogs", args.max_trailing_logs.map(Value::from)),
        ("MinQuorum", args.min_quorum.map(Value::from)),
        (
            "ServerStabilizationTime",
            args.server_stabilization_time.map(duration_nanos),
        ),
        (
            "EnableRedundancyZones",
            args.enable_redundancy_zones.map(Value::from),
        ),
        (
            "DisableUpgradeMigration",
            args.disable_upgrade_migration.map(Value::from),
        ),
        (
            "EnableCustomUpgrades",
            args.enable_custom_upgrades.map(Value::from),
        ),
    ];
    for (key, value) in flags {
        if let Some(value) = value {
            config[key] = value;
        }
    }
}

fn duration_nanos(d: Duration) -> Value {
    Value::from(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn autopilot_set_config(client: &ApiClient, args: &AutopilotSetArgs) -> Result<i32> {
    let mut config = client
        .get(AUTOPILOT_CONFIG_PATH, &[])
        .map_err(|e| anyhow!("Error querying Autopilot configuration: {e}"))?;
    if !config.is_object() {
        return Err(anyhow!(
            "Error querying Autopilot configuration: the server answered {config}"
        ));
    }
    apply_autopilot_flags(&mut config, args);
    // Always check-and-set against the index read, so a concurrent change is not lost.
    let cas = int_field(&config, "ModifyIndex").to_string();
    let updated = client
        .put(AUTOPILOT_CONFIG_PATH, &[("cas", cas.as_str())], &config)
        .map_err(|e| anyhow!("Error setting Autopilot configuration: {e}"))?;
    if updated.as_bool() == Some(true) {
        println!("Configuration updated!");
        Ok(0)
    } else {
        println!("Configuration could not be atomically updated, please try again");
        Ok(1)
    }
}

fn autopilot_health(client: &ApiClient, args: &AutopilotHealthArgs) -> Result<i32> {
    let health = match client.get("/v1/operator/autopilot/health", &[]) {
        Ok(health) => health,
        // The server answers 429 with the full report when the cluster is unhealthy.
        Err(ClientError::Status { status: 429, body }) => serde_json::from_str(&body)
            .map_err(|e| anyhow!("Error getting Autopilot health: {e}: {body}"))?,
        Err(e) => return Err(anyhow!("Error getting Autopilot health: {e}")),
    };
    if args.json {
        println!("{}", pretty_json(&health));
    } else {
        print!("{}", render_autopilot_health(&health));
    }
    Ok(0)
}

/// Renders autopilot's health report: a summary block, then one row per server.
pub fn render_autopilot_health(health: &Value) -> String {
    let mut out = key_values(&[
        ("Healthy", bool_field(health, "Healthy").to_string()),
        (
            "Failure Tolerance",
            int_field(health, "FailureTolerance").to_string(),
        ),
        ("Leader", str_field(health, "Leader").to_string()),
    ]);
    out.push_str("\nServers\n");
    let header = [
        "ID",
        "Name",
        "Address",
        "Serf Status",
        "Version",
        "Leader",
        "Voter",
        "Healthy",
        "Last Contact",
        "Last Term",
        "Last Index",
        "Stable Since",
    ];
    let mut rows = vec![header.map(String::from).to_vec()];
    for server in health
        .get("Servers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        rows.push(vec![
            str_field(server, "ID").to_string(),
            str_field(server, "Name").to_string(),
            str_field(server, "Address").to_string(),
            str_field(server, "SerfStatus").to_string(),
            str_field(server, "Version").to_string(),
            bool_field(server, "Leader").to_string(),
            bool_field(server, "Voter").to_string(),
            bool_field(server, "Healthy").to_string(),
            str_field(server, "LastContact").to_string(),
            int_field(server, "LastTerm").to_string(),
            int_field(server, "LastIndex").to_string(),
            str_field(server, "StableSince").to_string(),
        ]);
    }
    out.push_str(&table(&rows));
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(args: &[&str]) -> Result<OperatorSub, clap::Error> {
        use clap::{CommandFactory, Parser};
        let known = crate::cli::long_flag_names(&crate::cli::Cli::command());
        let argv = std::iter::once("drover")
            .chain(std::iter::once("operator"))
            .chain(args.iter().copied())
            .map(std::ffi::OsString::from)
            .collect();
        let argv = crate::cli::normalize_args(argv, &known);
        match crate::cli::Cli::try_parse_from(argv)?.command {
            crate::cli::Command::Operator(cmd) => Ok(cmd.sub),
            other => panic!("parsed as {other:?}"),
        }
    }

    fn autopilot_set(args: &[&str]) -> Result<AutopilotSetArgs, clap::Error> {
        let mut argv = vec!["autopilot", "set-config"];
        argv.extend_from_slice(args);
        match parse(&argv)? {
            OperatorSub::Autopilot(AutopilotCommand {
                sub: AutopilotSub::SetConfig(args),
            }) => Ok(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn autopilot_set_config_flags_parse_like_go() {
        let args = autopilot_set(&[
            "-cleanup-dead-servers=false",
            "-last-contact-threshold=500ms",
            "-max-trailing-logs=100",
            "-min-quorum",
            "3",
            "-server-stabilization-time=5s",
            "-enable-redundancy-zones",
        ])
        .unwrap();
        assert_eq!(args.cleanup_dead_servers, Some(false));
        assert_eq!(
            args.last_contact_threshold,
            Some(Duration::from_millis(500))
        );
        assert_eq!(args.max_trailing_logs, Some(100));
        assert_eq!(args.min_quorum, Some(3));
        assert_eq!(args.server_stabilization_time, Some(Duration::from_secs(5)));
        assert_eq!(args.enable_redundancy_zones, Some(true));
        assert_eq!(args.disable_upgrade_migration, None);
        assert_eq!(
            autopilot_set(&["-cleanup-dead-servers=f"])
                .unwrap()
                .cleanup_dead_servers,
            Some(false)
        );

        assert!(autopilot_set(&["-cleanup-dead-servers=maybe"]).is_err());
        assert!(autopilot_set(&["-last-contact-threshold=soon"]).is_err());
        assert!(autopilot_set(&["-min-quorum=-1"]).is_err());
        assert!(autopilot_set(&["-cleanup-dead-servers", "false"]).is_err());
    }

    #[test]
    fn autopilot_flags_change_only_given_fields() {
        let mut config = json!({"CleanupDeadServers": true, "LastContactThreshold": "200ms",
            "MaxTrailingLogs": 250, "MinQuorum": 0, "ServerStabilizationTime": "10s",
            "ModifyIndex": 7});
        let args = AutopilotSetArgs {
            cleanup_dead_servers: Some(false),
            server_stabilization_time: Some(Duration::from_secs(5)),
            min_quorum: Some(3),
            ..AutopilotSetArgs::default()
        };
        apply_autopilot_flags(&mut config, &args);
        assert_eq!(
            config,
            json!({"CleanupDeadServers": false, "LastContactThreshold": "200ms",
                "MaxTrailingLogs": 250, "MinQuorum": 3,
                "ServerStabilizationTime": 5_000_000_000u64, "ModifyIndex": 7})
        );
    }

    #[test]
    fn remove_peer_needs_exactly_one_of_id_and_address() {
        let remove = |args: &[&str]| {
            let mut argv = vec!["raft", "remove-peer"];
            argv.extend_from_slice(args);
            match parse(&argv).unwrap() {
                OperatorSub::Raft(RaftCommand {
                    sub: RaftSub::RemovePeer(args),
                }) => args,
                other => panic!("parsed as {other:?}"),
            }
        };
        let by_id = remove(&["-peer-id", "abc"]);
        assert_eq!(peer_to_remove(&by_id).unwrap(), ("id", "abc"));
        let by_address = remove(&["-peer-address=10.0.0.1:4647"]);
        assert_eq!(
            peer_to_remove(&by_address).unwrap(),
            ("address", "10.0.0.1:4647")
        );
        let both = remove(&["-peer-id=a", "-peer-address=10.0.0.1:4647"]);
        assert_eq!(
            peer_to_remove(&both).unwrap_err().to_string(),
            "Error removing peer: give either -peer-id or -peer-address, not both"
        );
        let neither = remove(&[]);
        assert_eq!(
            peer_to_remove(&neither).unwrap_err().to_string(),
            "Error removing peer: one of -peer-id or -peer-address is required"
        );
    }

    #[test]
    fn autopilot_config_and_health_render() {
        let config = json!({"CleanupDeadServers": true, "LastContactThreshold": "200ms",
            "MaxTrailingLogs": 250, "MinQuorum": 0, "ServerStabilizationTime": "10s",
            "EnableRedundancyZones": false, "DisableUpgradeMigration": false,
            "EnableCustomUpgrades": false, "CreateIndex": 4, "ModifyIndex": 4});
        assert_eq!(
            render_autopilot_config(&config),
            "CleanupDeadServers = true\n\
             LastContactThreshold = 200ms\n\
             MaxTrailingLogs = 250\n\
             MinQuorum = 0\n\
             ServerStabilizationTime = 10s\n\
             EnableRedundancyZones = false\n\
             DisableUpgradeMigration = false\n\
             EnableCustomUpgrades = false\n"
        );
        let health = json!({"Healthy": false, "FailureTolerance": 0, "Leader": "a1",
            "Servers": [{"ID": "a1", "Name": "s1.global", "Address": "10.0.0.1:4647",
                "SerfStatus": "alive", "Version": "0.1.0", "Leader": true, "Voter": true,
                "Healthy": true, "LastContact": "0s", "LastTerm": 2, "LastIndex": 10,
                "StableSince": "2023-11-14T22:13:20Z"}]});
        let out = render_autopilot_health(&health);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "Healthy           = false");
        assert_eq!(lines[1], "Failure Tolerance = 0");
        assert_eq!(lines[2], "Leader            = a1");
        assert_eq!(lines[4], "Servers");
        assert!(
            lines[5].starts_with("ID  Name       Address        Serf Status"),
            "{out}"
        );
        assert!(
            lines[6].starts_with("a1  s1.global  10.0.0.1:4647  alive"),
            "{out}"
        );
        assert_eq!(
            lines[6].split_whitespace().collect::<Vec<_>>(),
            [
                "a1",
                "s1.global",
                "10.0.0.1:4647",
                "alive",
                "0.1.0",
                "true",
                "true",
                "true",
                "0s",
                "2",
                "10",
                "2023-11-14T22:13:20Z"
            ]
        );
    }

    #[test]
    fn set_config_changes_only_given_flags() {
        let mut config = json!({"SchedulerAlgorithm": "binpack", "PauseEvalBroker": false,
            "PreemptionConfig": {"SystemSchedulerEnabled": true}, "ModifyIndex": 4});
        let args = SetConfigArgs {
            scheduler_algorithm: Some("spread".into()),
            memory_oversubscription: None,
            reject_job_registration: None,
            pause_eval_broker: Some(true),
            preempt_service: Some(true),
            preempt_batch: None,
            preempt_system: None,
            preempt_sysbatch: None,
            check_index: false,
        };
        apply_set_config(&mut config, &args);
        assert_eq!(config["SchedulerAlgorithm"], "spread");
        assert_eq!(config["PauseEvalBroker"], true);
        assert_eq!(config["PreemptionConfig"]["SystemSchedulerEnabled"], true);
        assert_eq!(config["PreemptionConfig"]["ServiceSchedulerEnabled"], true);
        assert!(config.get("MemoryOversubscriptionEnabled").is_none());
        let out = render_scheduler_config(&config);
        assert!(
            out.starts_with("Scheduler Algorithm           = spread\n"),
            "{out}"
        );
        assert!(
            out.contains("Preemption Service Scheduler  = true\n"),
            "{out}"
        );
    }

    #[test]
    fn peers_table_marks_leader_and_voters() {
        let config = json!({"Servers": [
            {"Node": "s1.global", "ID": "a1", "Address": "10.0.0.1:4647", "Leader": true,
                "Voter": true, "RaftProtocol": "3"},
            {"Node": "s2.global", "ID": "b2", "Address": "10.0.0.2:4647", "Leader": false,
                "Voter": false, "RaftProtocol": 3}]});
        assert_eq!(
            render_peers(&config),
            "Node       ID  Address        State     Voter  RaftProtocol\n\
             s1.global  a1  10.0.0.1:4647  leader    true   3\n\
             s2.global  b2  10.0.0.2:4647  follower  false  3\n"
        );
    }
}
