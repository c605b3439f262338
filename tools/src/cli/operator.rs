//! `drover operator raft list-peers`: the Raft configuration as the leader reports it.

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::client::ApiClient;
use super::format::{bool_field, pretty_json, str_field, table};
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
        },
    }
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
