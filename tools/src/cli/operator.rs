//! `drover operator raft list-peers|remove-peer` and `operator scheduler get-config|set-config`.

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::client::ApiClient;
use super::format::{bool_field, int_field, key_values, pretty_json, str_field, table};
use super::ApiArgs;

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
    /// Removes a server from the Raft configuration by its Raft id.
    RemovePeer(RemovePeerArgs),
}

/// Flags of `operator raft remove-peer`.
#[derive(Args, Debug)]
pub struct RemovePeerArgs {
    /// Raft id of the server to remove (from list-peers).
    #[arg(long = "peer-id", value_name = "ID")]
    pub peer_id: String,
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
        },
        OperatorSub::Scheduler(scheduler) => match scheduler.sub {
            SchedulerSub::GetConfig(args) => get_config(&client, &args),
            SchedulerSub::SetConfig(args) => set_config(&client, &args),
        },
    }
}

fn remove_peer(client: &ApiClient, args: &RemovePeerArgs) -> Result<i32> {
    client
        .delete("/v1/operator/raft/peer", &[("id", args.peer_id.as_str())])
        .map_err(|e| anyhow!("Error removing peer: {e}"))?;
    println!("Removed peer with id \"{}\"", args.peer_id);
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
