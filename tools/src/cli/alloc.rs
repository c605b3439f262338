//! `drover alloc status`: one allocation (id or prefix) with its task states and events.

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::client::{escape_component, ApiClient};
use super::eval::format_failed_tg_allocs;
use super::format::{
    format_unix_nanos, int_field, key_values, maybe_short, now_nanos, or_none, pretty_json,
    str_field, table, time_ago,
};
use super::job::alloc_job_version;
use super::resolve::{resolve_id, IdKind};
use super::ApiArgs;

/// Most task events shown per task, newest first (Nomad shows ten as well).
const TASK_EVENTS_SHOWN_MAX: usize = 10;

/// `drover alloc ...`
#[derive(Args, Debug)]
pub struct AllocCommand {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub sub: AllocSub,
}

/// Alloc subcommands.
#[derive(Subcommand, Debug)]
pub enum AllocSub {
    /// Shows one allocation (id or prefix).
    Status(AllocStatusArgs),
}

/// Flags of `alloc status`.
#[derive(Args, Debug)]
pub struct AllocStatusArgs {
    /// Allocation id or prefix.
    pub alloc_id: String,
    /// Prints the raw JSON.
    #[arg(long)]
    pub json: bool,
    /// Prints full ids and absolute times.
    #[arg(long)]
    pub verbose: bool,
}

/// Runs an `alloc` subcommand and returns the exit code.
pub fn run(cmd: AllocCommand) -> Result<i32> {
    let client = cmd.api.client();
    match cmd.sub {
        AllocSub::Status(args) => status(&client, &args),
    }
}

fn status(client: &ApiClient, args: &AllocStatusArgs) -> Result<i32> {
    let alloc_id = resolve_id(client, IdKind::Alloc, &args.alloc_id)?;
    let alloc = client
        .get(
            &format!("/v1/allocation/{}", escape_component(&alloc_id)),
            &[],
        )
        .map_err(|e| anyhow!("Error querying allocation: {e}"))?;
    if args.json {
        println!("{}", pretty_json(&alloc));
    } else {
        print!("{}", render_alloc(&alloc, now_nanos(), args.verbose));
    }
    Ok(0)
}

/// Renders one allocation the way `nomad alloc status` does.
pub fn render_alloc(alloc: &Value, now: i64, verbose: bool) -> String {
    let when = |key: &str| {
        let nanos = int_field(alloc, key);
        if verbose {
            format_unix_nanos(nanos)
        } else {
            time_ago(nanos, now)
        }
    };
    let pairs = [
        (
            "ID",
            maybe_short(str_field(alloc, "ID"), verbose).to_string(),
        ),
        (
            "Eval ID",
            maybe_short(str_field(alloc, "EvalID"), verbose).to_string(),
        ),
        ("Name", str_field(alloc, "Name").to_string()),
        (
            "Node ID",
            maybe_short(str_field(alloc, "NodeID"), verbose).to_string(),
        ),
        ("Node Name", str_field(alloc, "NodeName").to_string()),
        ("Job ID", str_field(alloc, "JobID").to_string()),
        ("Job Version", alloc_job_version(alloc).to_string()),
        (
            "Client Status",
            str_field(alloc, "ClientStatus").to_string(),
        ),
        (
            "Client Description",
            or_none(str_field(alloc, "ClientDescription")),
        ),
        (
            "Desired Status",
            str_field(alloc, "DesiredStatus").to_string(),
        ),
        (
            "Desired Description",
            or_none(str_field(alloc, "DesiredDescription")),
        ),
        ("Created", when("CreateTime")),
        ("Modified", when("ModifyTime")),
    ];
    let mut out = key_values(&pairs);
    if let Some(tasks) = alloc.get("TaskStates").and_then(Value::as_object) {
        for (name, state) in tasks {
            out.push_str(&format!(
                "\nTask \"{name}\" is \"{}\"\n",
                str_field(state, "State")
            ));
            out.push_str(&render_task_events(state, now, verbose));
        }
    }
    if let Some(failed) = alloc
        .pointer("/Metrics")
        .filter(|m| int_field(m, "NodesExhausted") > 0 || int_field(m, "NodesFiltered") > 0)
    {
        if verbose {
            let group = str_field(alloc, "TaskGroup").to_string();
            let mut map = serde_json::Map::new();
            map.insert(group, failed.clone());
            out.push_str("\nPlacement Metrics\n");
            out.push_str(&format_failed_tg_allocs(&map, 0));
        }
    }
    out
}

fn render_task_events(state: &Value, now: i64, verbose: bool) -> String {
    let mut events: Vec<&Value> = state
        .get("Events")
        .and_then(Value::as_array)
        .map(|e| e.iter().collect())
        .unwrap_or_default();
    if events.is_empty() {
        return String::new();
    }
    events.sort_by_key(|e| std::cmp::Reverse(int_field(e, "Time")));
    let mut rows = vec![vec![
        "Time".to_string(),
        "Type".to_string(),
        "Description".to_string(),
    ]];
    for event in events.into_iter().take(TASK_EVENTS_SHOWN_MAX) {
        let time = int_field(event, "Time");
        let description = match str_field(event, "DisplayMessage") {
            "" => str_field(event, "Message"),
            shown => shown,
        };
        rows.push(vec![
            if verbose {
                format_unix_nanos(time)
            } else {
                time_ago(time, now)
            },
            str_field(event, "Type").to_string(),
            description.to_string(),
        ]);
    }
    format!("Recent Events:\n{}", table(&rows))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn alloc_detail_shows_short_ids_and_recent_events() {
        let s = 1_000_000_000i64;
        let alloc = json!({"ID": "8ba85cef-1111", "EvalID": "5ad6d5bf-2222", "Name": "web.web[0]",
            "NodeID": "171a583b-3333", "NodeName": "n1", "JobID": "web", "Job": {"Version": 2},
            "ClientStatus": "running", "DesiredStatus": "run", "CreateTime": 10 * s,
            "ModifyTime": 70 * s,
            "TaskStates": {"server": {"State": "running", "Events": [
                {"Type": "Received", "Time": 10 * s, "DisplayMessage": "Task received by client"},
                {"Type": "Started", "Time": 20 * s, "DisplayMessage": "Task started by client"}]}}});
        let out = render_alloc(&alloc, 130 * s, false);
        assert!(
            out.starts_with("ID                  = 8ba85cef\nEval ID             = 5ad6d5bf\n"),
            "{out}"
        );
        assert!(out.contains("Job Version         = 2\n"), "{out}");
        assert!(out.contains("Client Description  = <none>\n"), "{out}");
        assert!(out.contains("Created             = 2m ago\n"), "{out}");
        assert!(
            out.contains("Task \"server\" is \"running\"\nRecent Events:\n"),
            "{out}"
        );
        let started = out.find("Task started by client").unwrap();
        let received = out.find("Task received by client").unwrap();
        assert!(started < received, "newest event first: {out}");
    }
}
