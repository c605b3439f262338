//! `drover server members|join|force-leave`: the servers as the queried agent sees them.

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::client::ApiClient;
use super::format::{int_field, pretty_json, str_field, table};
use super::ApiArgs;

/// `drover server ...`
#[derive(Args, Debug)]
pub struct ServerCommand {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub sub: ServerSub,
}

/// Server subcommands.
#[derive(Subcommand, Debug)]
pub enum ServerSub {
    /// Lists the known servers and which one leads.
    Members(MembersArgs),
    /// Asks the agent to join other servers by address.
    Join(JoinArgs),
    /// Forces a failed server into the "left" state.
    ForceLeave(ForceLeaveArgs),
}

/// Flags of `server join`.
#[derive(Args, Debug)]
pub struct JoinArgs {
    /// Addresses (host or host:port) of servers to join.
    #[arg(required = true)]
    pub addresses: Vec<String>,
}

/// Flags of `server force-leave`.
#[derive(Args, Debug)]
pub struct ForceLeaveArgs {
    /// Member name of the server to remove.
    pub node: String,
    /// Also removes the server from the member list entirely.
    #[arg(long)]
    pub prune: bool,
}

/// Flags of `server members`.
#[derive(Args, Debug)]
pub struct MembersArgs {
    /// Prints the raw JSON.
    #[arg(long)]
    pub json: bool,
    /// Also prints each member's tags.
    #[arg(long)]
    pub verbose: bool,
}

/// Runs a `server` subcommand and returns the exit code.
pub fn run(cmd: ServerCommand) -> Result<i32> {
    let client = cmd.api.client();
    match cmd.sub {
        ServerSub::Members(args) => members(&client, &args),
        ServerSub::Join(args) => join(&client, &args),
        ServerSub::ForceLeave(args) => force_leave(&client, &args),
    }
}

fn join(client: &ApiClient, args: &JoinArgs) -> Result<i32> {
    let query: Vec<(&str, &str)> = args
        .addresses
        .iter()
        .map(|a| ("address", a.as_str()))
        .collect();
    let response = client
        .put("/v1/agent/join", &query, &Value::Null)
        .map_err(|e| anyhow!("Error joining: {e}"))?;
    let error = str_field(&response, "error");
    if !error.is_empty() {
        return Err(anyhow!("Error joining: {error}"));
    }
    println!(
        "Joined {} servers successfully",
        int_field(&response, "num_joined")
    );
    Ok(0)
}

fn force_leave(client: &ApiClient, args: &ForceLeaveArgs) -> Result<i32> {
    let mut query = vec![("node", args.node.as_str())];
    if args.prune {
        query.push(("prune", "true"));
    }
    client
        .put("/v1/agent/force-leave", &query, &Value::Null)
        .map_err(|e| anyhow!("Error force-leaving server {}: {e}", args.node))?;
    Ok(0)
}

fn members(client: &ApiClient, args: &MembersArgs) -> Result<i32> {
    let response = client
        .get("/v1/agent/members", &[])
        .map_err(|e| anyhow!("Error querying servers: {e}"))?;
    if args.json {
        println!("{}", pretty_json(&response));
        return Ok(0);
    }
    let members = response
        .get("Members")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    // Each region answers for its own leader, so ask once per region the members name.
    let mut leaders = std::collections::BTreeMap::new();
    for member in &members {
        let region = tag(member, "region").to_string();
        if leaders.contains_key(&region) {
            continue;
        }
        let query: Vec<(&str, &str)> = if region.is_empty() {
            vec![]
        } else {
            vec![("region", region.as_str())]
        };
        let leader = match client.get("/v1/status/leader", &query) {
            Ok(Value::String(addr)) => addr,
            Ok(_) => String::new(),
            Err(e) => return Err(anyhow!("Error determining leaders: {e}")),
        };
        leaders.insert(region, leader);
    }
    print!("{}", render_members(&members, &leaders, args.verbose));
    Ok(0)
}

fn tag<'a>(member: &'a Value, key: &str) -> &'a str {
    member.get("Tags").map(|t| str_field(t, key)).unwrap_or("")
}

/// Renders the members table; `leaders` maps region to the leader's `ip:rpc-port`.
pub fn render_members(
    members: &[Value],
    leaders: &std::collections::BTreeMap<String, String>,
    verbose: bool,
) -> String {
    let mut header = vec![
        "Name",
        "Address",
        "Port",
        "Status",
        "Leader",
        "Raft Version",
        "Build",
        "Datacenter",
        "Region",
    ];
    if verbose {
        header.push("Tags");
    }
    let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
    let mut sorted: Vec<&Value> = members.iter().collect();
    sorted.sort_by(|a, b| str_field(a, "Name").cmp(str_field(b, "Name")));
    for member in sorted {
        let addr = str_field(member, "Addr");
        let rpc = format!("{addr}:{}", tag(member, "port"));
        let leader = leaders
            .get(tag(member, "region"))
            .is_some_and(|l| !l.is_empty() && *l == rpc);
        let mut row = vec![
            str_field(member, "Name").to_string(),
            addr.to_string(),
            int_field(member, "Port").to_string(),
            str_field(member, "Status").to_string(),
            leader.to_string(),
            tag(member, "raft_vsn").to_string(),
            tag(member, "build").to_string(),
            tag(member, "dc").to_string(),
            tag(member, "region").to_string(),
        ];
        if verbose {
            let tags = member.get("Tags").and_then(Value::as_object);
            let pairs: Vec<String> = tags
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            row.push(pairs.join(","));
        }
        rows.push(row);
    }
    table(&rows)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn leader_is_the_member_whose_rpc_address_matches() {
        let member = |name: &str, addr: &str| {
            json!({"Name": name, "Addr": addr, "Port": 4648, "Status": "alive",
                "Tags": {"port": "4647", "region": "global", "dc": "dc1", "build": "0.1.0",
                "raft_vsn": "3"}})
        };
        let members = vec![
            member("s2.global", "10.0.0.2"),
            member("s1.global", "10.0.0.1"),
        ];
        let leaders = [("global".to_string(), "10.0.0.2:4647".to_string())]
            .into_iter()
            .collect();
        let out = render_members(&members, &leaders, false);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "Name       Address   Port  Status  Leader  Raft Version  Build  Datacenter  Region"
        );
        assert_eq!(
            lines[1],
            "s1.global  10.0.0.1  4648  alive   false   3             0.1.0  dc1         global"
        );
        assert!(lines[2].contains("  true  "), "{out}");
    }
}
