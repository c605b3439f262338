//! `drover node status`: the node list, or one node with its allocations.

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::client::{escape_component, ApiClient};
use super::format::{
    bool_field, int_field, key_values, maybe_short, now_nanos, or_none, pretty_json, str_field,
    table,
};
use super::job::render_alloc_table;
use super::resolve::{resolve_id, IdKind};
use super::ApiArgs;

/// `drover node ...`
#[derive(Args, Debug)]
pub struct NodeCommand {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub sub: NodeSub,
}

/// Node subcommands.
#[derive(Subcommand, Debug)]
pub enum NodeSub {
    /// Lists nodes, or shows one node (id or prefix).
    Status(NodeStatusArgs),
    /// Marks a node eligible or ineligible for new placements.
    Eligibility(EligibilityArgs),
    /// Starts or cancels draining a node's allocations.
    Drain(DrainArgs),
}

/// Flags of `node eligibility`.
#[derive(Args, Debug)]
pub struct EligibilityArgs {
    /// Node id or prefix.
    pub node_id: String,
    /// Makes the node eligible for scheduling.
    #[arg(long, conflicts_with = "disable", required_unless_present = "disable")]
    pub enable: bool,
    /// Makes the node ineligible for scheduling.
    #[arg(long)]
    pub disable: bool,
}

/// Flags of `node drain`.
#[derive(Args, Debug)]
pub struct DrainArgs {
    /// Node id or prefix.
    pub node_id: String,
    /// Starts draining the node.
    #[arg(long, conflicts_with = "disable", required_unless_present = "disable")]
    pub enable: bool,
    /// Cancels the drain and marks the node eligible again (unless -keep-ineligible).
    #[arg(long)]
    pub disable: bool,
    /// Time allowed before remaining allocations are force-stopped (e.g. 1h, 30m).
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub deadline: String,
    /// Stops remaining allocations immediately.
    #[arg(long)]
    pub force: bool,
    /// Waits for allocations to migrate with no deadline.
    #[arg(long = "no-deadline")]
    pub no_deadline: bool,
    /// Leaves system job allocations running.
    #[arg(long = "ignore-system")]
    pub ignore_system: bool,
    /// Keeps the node ineligible after the drain is cancelled.
    #[arg(long = "keep-ineligible")]
    pub keep_ineligible: bool,
    /// Accepted for compatibility: drain never prompts and never monitors.
    #[arg(long)]
    pub detach: bool,
    /// Accepted for compatibility: drain never prompts.
    #[arg(long)]
    pub yes: bool,
}

/// Flags of `node status`.
#[derive(Args, Debug)]
pub struct NodeStatusArgs {
    /// Node id or prefix; lists all nodes when absent.
    pub node_id: Option<String>,
    /// Prints the raw JSON.
    #[arg(long)]
    pub json: bool,
    /// Prints full ids.
    #[arg(long)]
    pub verbose: bool,
}

/// Runs a `node` subcommand and returns the exit code.
pub fn run(cmd: NodeCommand) -> Result<i32> {
    let client = cmd.api.client();
    match cmd.sub {
        NodeSub::Status(args) => status(&client, &args),
        NodeSub::Eligibility(args) => eligibility(&client, &args),
        NodeSub::Drain(args) => drain(&client, &args),
    }
}

fn eligibility(client: &ApiClient, args: &EligibilityArgs) -> Result<i32> {
    let node_id = resolve_id(client, IdKind::Node, &args.node_id)?;
    let value = if args.enable {
        "eligible"
    } else {
        "ineligible"
    };
    let body = json!({"NodeID": node_id, "Eligibility": value});
    client
        .put(
            &format!("/v1/node/{}/eligibility", escape_component(&node_id)),
            &[],
            &body,
        )
        .map_err(|e| anyhow!("Error updating scheduling eligibility: {e}"))?;
    let what = if args.enable {
        "eligible"
    } else {
        "ineligible"
    };
    println!("Node \"{node_id}\" scheduling eligibility set: {what} for scheduling");
    Ok(0)
}

/// Returns the drain deadline in nanoseconds: -1s forces, 0 waits forever.
pub fn drain_deadline_nanos(args: &DrainArgs) -> Result<i64> {
    if args.force {
        return Ok(-1_000_000_000);
    }
    if args.no_deadline {
        return Ok(0);
    }
    let parsed = humantime::parse_duration(&args.deadline)
        .map_err(|e| anyhow!("Error: -deadline \"{}\": {e}", args.deadline))?;
    i64::try_from(parsed.as_nanos()).map_err(|_| anyhow!("Error: -deadline is too large"))
}

fn drain(client: &ApiClient, args: &DrainArgs) -> Result<i32> {
    let node_id = resolve_id(client, IdKind::Node, &args.node_id)?;
    let body = if args.enable {
        let deadline = drain_deadline_nanos(args)?;
        json!({"NodeID": node_id,
            "DrainSpec": {"Deadline": deadline, "IgnoreSystemJobs": args.ignore_system},
            "MarkEligible": false})
    } else {
        json!({"NodeID": node_id, "DrainSpec": null, "MarkEligible": !args.keep_ineligible})
    };
    client
        .put(
            &format!("/v1/node/{}/drain", escape_component(&node_id)),
            &[],
            &body,
        )
        .map_err(|e| anyhow!("Error updating drain specification: {e}"))?;
    if args.enable {
        println!("Node \"{node_id}\" drain strategy set");
    } else {
        println!("Node \"{node_id}\" drain strategy unset");
    }
    Ok(0)
}

fn status(client: &ApiClient, args: &NodeStatusArgs) -> Result<i32> {
    let Some(prefix) = args.node_id.as_deref() else {
        let nodes = client
            .get("/v1/nodes", &[])
            .map_err(|e| anyhow!("Error querying node status: {e}"))?;
        if args.json {
            println!("{}", pretty_json(&nodes));
        } else {
            print!("{}", render_node_list(&nodes, args.verbose));
        }
        return Ok(0);
    };
    let node_id = resolve_id(client, IdKind::Node, prefix)?;
    let path = format!("/v1/node/{}", escape_component(&node_id));
    let node = client
        .get(&path, &[])
        .map_err(|e| anyhow!("Error querying node info: {e}"))?;
    if args.json {
        println!("{}", pretty_json(&node));
        return Ok(0);
    }
    let allocs = client
        .get(&format!("{path}/allocations"), &[])
        .map_err(|e| anyhow!("Error querying node allocations: {e}"))?;
    print!("{}", render_node(&node, &allocs, now_nanos(), args.verbose));
    Ok(0)
}

/// Renders the node list table (or "No nodes registered").
pub fn render_node_list(nodes: &Value, verbose: bool) -> String {
    let items = nodes.as_array().map(Vec::as_slice).unwrap_or_default();
    if items.is_empty() {
        return "No nodes registered\n".to_string();
    }
    let header = [
        "ID",
        "Node Pool",
        "DC",
        "Name",
        "Class",
        "Drain",
        "Eligibility",
        "Status",
    ];
    let mut rows = vec![header.map(String::from).to_vec()];
    for node in items {
        rows.push(vec![
            maybe_short(str_field(node, "ID"), verbose).to_string(),
            or_none(str_field(node, "NodePool")),
            str_field(node, "Datacenter").to_string(),
            str_field(node, "Name").to_string(),
            or_none(str_field(node, "NodeClass")),
            bool_field(node, "Drain").to_string(),
            str_field(node, "SchedulingEligibility").to_string(),
            str_field(node, "Status").to_string(),
        ]);
    }
    table(&rows)
}

/// Renders one node: detail block, capacity and its allocations.
pub fn render_node(node: &Value, allocs: &Value, now: i64, verbose: bool) -> String {
    let drain =
        bool_field(node, "Drain") || node.get("DrainStrategy").is_some_and(|d| !d.is_null());
    let pairs = [
        (
            "ID",
            maybe_short(str_field(node, "ID"), verbose).to_string(),
        ),
        ("Name", str_field(node, "Name").to_string()),
        ("Node Pool", or_none(str_field(node, "NodePool"))),
        ("Class", or_none(str_field(node, "NodeClass"))),
        ("DC", str_field(node, "Datacenter").to_string()),
        ("Drain", drain.to_string()),
        (
            "Eligibility",
            str_field(node, "SchedulingEligibility").to_string(),
        ),
        ("Status", str_field(node, "Status").to_string()),
        ("Address", or_none(str_field(node, "HTTPAddr"))),
    ];
    let mut out = key_values(&pairs);
    if let Some(resources) = node.get("NodeResources").filter(|r| r.is_object()) {
        let cpu = resources
            .get("Cpu")
            .map(|c| int_field(c, "CpuShares"))
            .unwrap_or(0);
        let memory = resources
            .get("Memory")
            .map(|m| int_field(m, "MemoryMB"))
            .unwrap_or(0);
        let disk = resources
            .get("Disk")
            .map(|d| int_field(d, "DiskMB"))
            .unwrap_or(0);
        out.push_str("\nNode Resources\n");
        out.push_str(&table(&[
            vec!["CPU".to_string(), "Memory".to_string(), "Disk".to_string()],
            vec![
                format!("{cpu} MHz"),
                format!("{memory} MiB"),
                format!("{disk} MiB"),
            ],
        ]));
    }
    out.push_str("\nAllocations\n");
    out.push_str(&render_alloc_table(allocs, now, verbose));
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn node_list_uses_short_ids_and_none_placeholders() {
        let nodes = json!([{"ID": "171a583b-1111-2222", "NodePool": "default", "Datacenter": "dc1",
            "Name": "n1", "NodeClass": "", "Drain": false, "SchedulingEligibility": "eligible",
            "Status": "ready"}]);
        let out = render_node_list(&nodes, false);
        assert_eq!(
            out.lines().nth(1).unwrap(),
            "171a583b  default    dc1  n1    <none>  false  eligible     ready"
        );
        assert_eq!(render_node_list(&json!([]), false), "No nodes registered\n");
    }

    fn drain_args(deadline: &str, force: bool, no_deadline: bool) -> DrainArgs {
        DrainArgs {
            node_id: "n".into(),
            enable: true,
            disable: false,
            deadline: deadline.into(),
            force,
            no_deadline,
            ignore_system: false,
            keep_ineligible: false,
            detach: false,
            yes: false,
        }
    }

    #[test]
    fn drain_deadline_parses_durations_and_special_cases() {
        assert_eq!(
            drain_deadline_nanos(&drain_args("30m", false, false)).unwrap(),
            1_800_000_000_000
        );
        assert_eq!(
            drain_deadline_nanos(&drain_args("1h", true, false)).unwrap(),
            -1_000_000_000
        );
        assert_eq!(
            drain_deadline_nanos(&drain_args("1h", false, true)).unwrap(),
            0
        );
        let err = drain_deadline_nanos(&drain_args("soon", false, false)).unwrap_err();
        assert!(err.to_string().contains("-deadline \"soon\""), "{err}");
    }

    #[test]
    fn node_detail_shows_resources_and_drain() {
        let node = json!({"ID": "171a583b-1111", "Name": "n1", "Status": "ready",
            "DrainStrategy": {"Deadline": 0},
            "NodeResources": {"Cpu": {"CpuShares": 4000}, "Memory": {"MemoryMB": 8192},
                "Disk": {"DiskMB": 100}}});
        let out = render_node(&node, &json!([]), 0, false);
        assert!(out.contains("Drain       = true\n"), "{out}");
        assert!(out.contains("4000 MHz  8192 MiB  100 MiB\n"), "{out}");
        assert!(
            out.ends_with("Allocations\nNo allocations placed\n"),
            "{out}"
        );
    }
}
