//! `drover deployment list|status|promote|fail|pause|resume|unblock`.

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::client::{escape_component, ApiClient};
use super::eval::monitor;
use super::format::{
    bool_field, format_unix_nanos, int_field, key_values, maybe_short, pretty_json, str_field,
    table,
};
use super::resolve::{resolve_id, IdKind};
use super::ApiArgs;

/// `drover deployment ...`
#[derive(Args, Debug)]
pub struct DeploymentCommand {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub sub: DeploymentSub,
}

/// Deployment subcommands.
#[derive(Subcommand, Debug)]
pub enum DeploymentSub {
    /// Lists deployments.
    List(ListArgs),
    /// Shows one deployment (id or prefix).
    Status(TargetArgs),
    /// Promotes the canaries of a deployment (all groups, or those named with -group).
    Promote(PromoteArgs),
    /// Marks a deployment failed (rolling back when auto-revert is set).
    Fail(TargetArgs),
    /// Pauses a deployment.
    Pause(TargetArgs),
    /// Resumes a paused deployment.
    Resume(TargetArgs),
    /// Unblocks a multi-region deployment waiting on peer regions.
    Unblock(TargetArgs),
}

/// Flags of `deployment list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Prints the raw JSON.
    #[arg(long)]
    pub json: bool,
    /// Prints full ids.
    #[arg(long)]
    pub verbose: bool,
}

/// Flags of commands that act on one deployment.
#[derive(Args, Debug)]
pub struct TargetArgs {
    /// Deployment id or prefix.
    pub deployment_id: String,
    /// Prints the raw JSON (status only).
    #[arg(long)]
    pub json: bool,
    /// Prints full ids.
    #[arg(long)]
    pub verbose: bool,
    /// Returns without monitoring the resulting evaluation.
    #[arg(long)]
    pub detach: bool,
}

/// Flags of `deployment promote`.
#[derive(Args, Debug)]
pub struct PromoteArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Task group to promote (repeatable); all groups when absent.
    #[arg(long = "group", value_name = "NAME")]
    pub groups: Vec<String>,
}

/// Runs a `deployment` subcommand and returns the exit code.
pub fn run(cmd: DeploymentCommand) -> Result<i32> {
    let client = cmd.api.client();
    match cmd.sub {
        DeploymentSub::List(args) => list(&client, &args),
        DeploymentSub::Status(args) => status(&client, &args),
        DeploymentSub::Promote(args) => {
            let body = if args.groups.is_empty() {
                json!({"All": true})
            } else {
                json!({"All": false, "Groups": args.groups})
            };
            update(&client, &args.target, "promote", body, "promoting")
        }
        DeploymentSub::Fail(args) => update(&client, &args, "fail", json!({}), "failing"),
        DeploymentSub::Pause(args) => {
            update(&client, &args, "pause", json!({"Pause": true}), "pausing")
        }
        DeploymentSub::Resume(args) => {
            update(&client, &args, "pause", json!({"Pause": false}), "resuming")
        }
        DeploymentSub::Unblock(args) => update(&client, &args, "unblock", json!({}), "unblocking"),
    }
}

fn list(client: &ApiClient, args: &ListArgs) -> Result<i32> {
    let deployments = client
        .get("/v1/deployments", &[])
        .map_err(|e| anyhow!("Error retrieving deployments: {e}"))?;
    if args.json {
        println!("{}", pretty_json(&deployments));
    } else {
        print!("{}", render_list(&deployments, args.verbose));
    }
    Ok(0)
}

/// Renders the deployments table (or "No deployments found"), newest first.
pub fn render_list(deployments: &Value, verbose: bool) -> String {
    let mut items: Vec<&Value> = deployments
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    if items.is_empty() {
        return "No deployments found\n".to_string();
    }
    items.sort_by_key(|d| std::cmp::Reverse(int_field(d, "CreateIndex")));
    let header = ["ID", "Job ID", "Job Version", "Status", "Description"];
    let mut rows = vec![header.map(String::from).to_vec()];
    for d in items {
        rows.push(vec![
            maybe_short(str_field(d, "ID"), verbose).to_string(),
            str_field(d, "JobID").to_string(),
            int_field(d, "JobVersion").to_string(),
            str_field(d, "Status").to_string(),
            str_field(d, "StatusDescription").to_string(),
        ]);
    }
    table(&rows)
}

fn status(client: &ApiClient, args: &TargetArgs) -> Result<i32> {
    let id = resolve_id(client, IdKind::Deployment, &args.deployment_id)?;
    let deployment = client
        .get(&format!("/v1/deployment/{}", escape_component(&id)), &[])
        .map_err(|e| anyhow!("Error retrieving deployment: {e}"))?;
    if args.json {
        println!("{}", pretty_json(&deployment));
    } else {
        print!("{}", render_status(&deployment, args.verbose));
    }
    Ok(0)
}

/// Renders one deployment with its per-group progress table.
pub fn render_status(d: &Value, verbose: bool) -> String {
    let mut out = key_values(&[
        ("ID", maybe_short(str_field(d, "ID"), verbose).to_string()),
        ("Job ID", str_field(d, "JobID").to_string()),
        ("Job Version", int_field(d, "JobVersion").to_string()),
        ("Status", str_field(d, "Status").to_string()),
        ("Description", str_field(d, "StatusDescription").to_string()),
    ]);
    let Some(groups) = d.get("TaskGroups").and_then(Value::as_object) else {
        return out;
    };
    let canaries = groups.values().any(|g| int_field(g, "DesiredCanaries") > 0);
    let mut header = vec!["Task Group"];
    if canaries {
        header.extend(["Promoted", "Desired", "Canaries"]);
    } else {
        header.push("Desired");
    }
    header.extend(["Placed", "Healthy", "Unhealthy", "Progress Deadline"]);
    let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
    for (name, g) in groups {
        let mut row = vec![name.clone()];
        if canaries {
            row.push(bool_field(g, "Promoted").to_string());
        }
        row.push(int_field(g, "DesiredTotal").to_string());
        if canaries {
            row.push(int_field(g, "DesiredCanaries").to_string());
        }
        row.push(int_field(g, "PlacedAllocs").to_string());
        row.push(int_field(g, "HealthyAllocs").to_string());
        row.push(int_field(g, "UnhealthyAllocs").to_string());
        row.push(progress_deadline(g));
        rows.push(row);
    }
    out.push_str("\nDeployed\n");
    out.push_str(&table(&rows));
    out
}

/// Returns the time by which the group must make progress, or `<none>` when not set.
fn progress_deadline(group: &Value) -> String {
    match group.get("RequireProgressBy") {
        Some(Value::String(time)) if !time.starts_with("0001-") => time.clone(),
        Some(Value::Number(n)) => format_unix_nanos(n.as_i64().unwrap_or(0)),
        _ => "<none>".to_string(),
    }
}

/// Sends one deployment write (`/v1/deployment/<action>/<id>`) and monitors its evaluation.
fn update(
    client: &ApiClient,
    args: &TargetArgs,
    action: &str,
    mut body: Value,
    doing: &str,
) -> Result<i32> {
    let id = resolve_id(client, IdKind::Deployment, &args.deployment_id)?;
    body["DeploymentID"] = json!(id);
    let response = client
        .put(
            &format!("/v1/deployment/{action}/{}", escape_component(&id)),
            &[],
            &body,
        )
        .map_err(|e| anyhow!("Error {doing} deployment: {e}"))?;
    let eval_id = str_field(&response, "EvalID");
    if eval_id.is_empty() || args.detach {
        println!("Deployment \"{id}\" updated");
        return Ok(0);
    }
    monitor(client, eval_id, args.verbose)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_shows_canary_columns_only_when_canaries_are_wanted() {
        let plain = json!({"ID": "d1234567-x", "JobID": "web", "Status": "running",
            "StatusDescription": "Deployment is running",
            "TaskGroups": {"web": {"DesiredTotal": 3, "PlacedAllocs": 3, "HealthyAllocs": 1,
                "RequireProgressBy": "2026-01-01T00:10:00Z"}}});
        let out = render_status(&plain, false);
        assert!(
            out.contains("Task Group  Desired  Placed  Healthy  Unhealthy  Progress Deadline\n")
        );
        assert!(
            out.contains("web         3        3       1        0          2026-01-01T00:10:00Z\n")
        );
        let canary = json!({"TaskGroups": {"web": {"DesiredTotal": 3, "DesiredCanaries": 1}}});
        assert!(render_status(&canary, false).contains("Task Group  Promoted  Desired  Canaries"));
    }

    #[test]
    fn list_is_newest_first() {
        let list = json!([{"ID": "aaaaaaaa-1", "CreateIndex": 1, "JobID": "a"},
            {"ID": "bbbbbbbb-2", "CreateIndex": 9, "JobID": "b"}]);
        let out = render_list(&list, false);
        assert!(
            out.lines().nth(1).unwrap().starts_with("bbbbbbbb  b"),
            "{out}"
        );
    }
}
