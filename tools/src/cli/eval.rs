//! `drover eval status`, evaluation monitoring (used by `job run` and `job stop`) and the
//! wording of placement failures.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use serde_json::{Map, Value};

use super::client::{escape_component, ApiClient};
use super::format::{
    int_field, key_values, maybe_short, now_nanos, or_none, pretty_json, str_field, table, time_ago,
};
use super::job::render_alloc_table;
use super::resolve::{resolve_id, IdKind};
use super::ApiArgs;

/// Exit code when an evaluation failed or could not place every allocation.
pub const EXIT_PLACEMENT_FAILED: i32 = 2;
/// Pause between polls of an evaluation that is still being processed.
const MONITOR_POLL_INTERVAL_MS: u64 = 250;
/// Longest chain of follow-up evaluations the monitor walks before stopping.
const MONITOR_NEXT_EVALS_MAX: usize = 16;

/// `drover eval ...`
#[derive(Args, Debug)]
pub struct EvalCommand {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub sub: EvalSub,
}

/// Eval subcommands.
#[derive(Subcommand, Debug)]
pub enum EvalSub {
    /// Shows one evaluation (id or prefix).
    Status(EvalStatusArgs),
    /// Lists evaluations, optionally for one job or status.
    List(EvalListArgs),
}

/// Flags of `eval list`.
#[derive(Args, Debug)]
pub struct EvalListArgs {
    /// Only evaluations of this job.
    #[arg(long)]
    pub job: Option<String>,
    /// Only evaluations in this status (pending, blocked, complete, failed, canceled).
    #[arg(long)]
    pub status: Option<String>,
    /// Prints the raw JSON.
    #[arg(long)]
    pub json: bool,
    /// Prints full ids.
    #[arg(long)]
    pub verbose: bool,
}

/// Flags of `eval status`.
#[derive(Args, Debug)]
pub struct EvalStatusArgs {
    /// Evaluation id or prefix.
    pub eval_id: String,
    /// Prints the raw JSON.
    #[arg(long)]
    pub json: bool,
    /// Prints full ids.
    #[arg(long)]
    pub verbose: bool,
    /// Keeps polling until the evaluation finishes, printing its progress.
    #[arg(long)]
    pub monitor: bool,
}

/// Runs an `eval` subcommand and returns the exit code.
pub fn run(cmd: EvalCommand) -> Result<i32> {
    let client = cmd.api.client();
    match cmd.sub {
        EvalSub::Status(args) => status(&client, &args),
        EvalSub::List(args) => list(&client, &args),
    }
}

fn list(client: &ApiClient, args: &EvalListArgs) -> Result<i32> {
    let mut query: Vec<(&str, &str)> = Vec::new();
    if let Some(job) = args.job.as_deref() {
        query.push(("job", job));
    }
    if let Some(status) = args.status.as_deref() {
        query.push(("status", status));
    }
    let evals = client
        .get("/v1/evaluations", &query)
        .map_err(|e| anyhow!("Error querying evaluations: {e}"))?;
    if args.json {
        println!("{}", pretty_json(&evals));
    } else {
        print!("{}", render_eval_list(&evals, args.verbose));
    }
    Ok(0)
}

/// Renders the evaluations table (or "No evals found"), newest first.
pub fn render_eval_list(evals: &Value, verbose: bool) -> String {
    let mut items: Vec<&Value> = evals
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    if items.is_empty() {
        return "No evals found\n".to_string();
    }
    items.sort_by_key(|e| std::cmp::Reverse(int_field(e, "CreateIndex")));
    let header = [
        "ID",
        "Priority",
        "Triggered By",
        "Job ID",
        "Namespace",
        "Node ID",
        "Status",
        "Placement Failures",
    ];
    let mut rows = vec![header.map(String::from).to_vec()];
    for eval in items {
        rows.push(vec![
            maybe_short(str_field(eval, "ID"), verbose).to_string(),
            int_field(eval, "Priority").to_string(),
            str_field(eval, "TriggeredBy").to_string(),
            str_field(eval, "JobID").to_string(),
            str_field(eval, "Namespace").to_string(),
            or_none(maybe_short(str_field(eval, "NodeID"), verbose)),
            str_field(eval, "Status").to_string(),
            failed_groups(eval).is_some().to_string(),
        ]);
    }
    table(&rows)
}

fn status(client: &ApiClient, args: &EvalStatusArgs) -> Result<i32> {
    let eval_id = resolve_id(client, IdKind::Eval, &args.eval_id)?;
    if args.monitor {
        return monitor(client, &eval_id, args.verbose);
    }
    let eval = get_eval(client, &eval_id)?;
    if args.json {
        println!("{}", pretty_json(&eval));
        return Ok(0);
    }
    let allocs = client
        .get(
            &format!("/v1/evaluation/{}/allocations", escape_component(&eval_id)),
            &[],
        )
        .map_err(|e| anyhow!("Error querying evaluation allocations: {e}"))?;
    print!("{}", render_eval(&eval, &allocs, now_nanos(), args.verbose));
    Ok(0)
}

fn get_eval(client: &ApiClient, eval_id: &str) -> Result<Value> {
    client
        .get(
            &format!("/v1/evaluation/{}", escape_component(eval_id)),
            &[],
        )
        .map_err(|e| anyhow!("Error querying evaluation: {e}"))
}

/// Renders one evaluation: detail block, placement failures and its allocations.
pub fn render_eval(eval: &Value, allocs: &Value, now: i64, verbose: bool) -> String {
    let failures = failed_groups(eval);
    let pairs = [
        (
            "ID",
            maybe_short(str_field(eval, "ID"), verbose).to_string(),
        ),
        ("Create Time", time_ago(int_field(eval, "CreateTime"), now)),
        ("Modify Time", time_ago(int_field(eval, "ModifyTime"), now)),
        ("Status", str_field(eval, "Status").to_string()),
        (
            "Status Description",
            or_none(str_field(eval, "StatusDescription")),
        ),
        ("Type", str_field(eval, "Type").to_string()),
        ("TriggeredBy", str_field(eval, "TriggeredBy").to_string()),
        ("Job ID", str_field(eval, "JobID").to_string()),
        ("Namespace", str_field(eval, "Namespace").to_string()),
        ("Priority", int_field(eval, "Priority").to_string()),
        ("Placement Failures", failures.is_some().to_string()),
    ];
    let mut out = key_values(&pairs);
    if let Some(failed) = failures {
        out.push_str("\nFailed Placements\n");
        out.push_str(&format_failed_tg_allocs(failed, 0));
        let blocked = str_field(eval, "BlockedEval");
        if !blocked.is_empty() {
            out.push_str(&format!(
                "\nEvaluation \"{}\" waiting for additional capacity to place remainder\n",
                maybe_short(blocked, verbose)
            ));
        }
    }
    if allocs.as_array().is_some_and(|a| !a.is_empty()) {
        out.push_str("\nPlaced Allocations\n");
        out.push_str(&render_alloc_table(allocs, now, verbose));
    }
    out
}

fn failed_groups(eval: &Value) -> Option<&Map<String, Value>> {
    eval.get("FailedTGAllocs")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
}

/// Renders every group's placement failure as Nomad does, indented by `indent` spaces.
pub fn format_failed_tg_allocs(failed: &Map<String, Value>, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::new();
    for (group, metric) in failed {
        let count = int_field(metric, "CoalescedFailures") + 1;
        let noun = if count == 1 {
            "allocation"
        } else {
            "allocations"
        };
        out.push_str(&format!(
            "{pad}Task Group \"{group}\" (failed to place {count} {noun}):\n"
        ));
        for line in alloc_metric_lines(metric) {
            out.push_str(&format!("{pad}  * {line}\n"));
        }
    }
    out
}

/// Explains why an allocation could not be placed, one reason per line.
pub fn alloc_metric_lines(metric: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    if int_field(metric, "NodesEvaluated") == 0 {
        lines.push("No nodes were eligible for evaluation".to_string());
    }
    for (dc, available) in counts(metric, "NodesAvailable") {
        if available == 0 {
            lines.push(format!("No nodes are available in datacenter \"{dc}\""));
        }
    }
    for (class, n) in counts(metric, "ClassFiltered") {
        lines.push(format!("Class \"{class}\" filtered {n} nodes"));
    }
    for (constraint, n) in counts(metric, "ConstraintFiltered") {
        lines.push(format!("Constraint \"{constraint}\" filtered {n} nodes"));
    }
    let exhausted = int_field(metric, "NodesExhausted");
    if exhausted > 0 {
        lines.push(format!("Resources exhausted on {exhausted} nodes"));
    }
    for (class, n) in counts(metric, "ClassExhausted") {
        lines.push(format!("Class \"{class}\" exhausted on {n} nodes"));
    }
    for (dimension, n) in counts(metric, "DimensionExhausted") {
        lines.push(format!("Dimension \"{dimension}\" exhausted on {n} nodes"));
    }
    for quota in metric
        .get("QuotaExhausted")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        lines.push(format!(
            "Quota limit hit \"{}\"",
            quota.as_str().unwrap_or("")
        ));
    }
    lines
}

fn counts<'a>(metric: &'a Value, key: &str) -> impl Iterator<Item = (&'a String, i64)> {
    metric
        .get(key)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k, v.as_i64().unwrap_or(0)))
}

/// Returns true once the evaluation will not change any more.
fn is_terminal(status: &str) -> bool {
    matches!(
        status,
        "complete" | "failed" | "canceled" | "cancelled" | "blocked"
    )
}

/// Follows an evaluation until it finishes, printing Nomad's monitor lines.
///
/// Returns 0 on success and 2 when the evaluation failed or left allocations unplaced.
/// Polling has no overall deadline, like Nomad's monitor: the user interrupts it if the
/// server never finishes.
pub fn monitor(client: &ApiClient, eval_id: &str, verbose: bool) -> Result<i32> {
    let mut current = eval_id.to_string();
    println!(
        "==> Monitoring evaluation \"{}\"",
        maybe_short(&current, verbose)
    );
    let mut seen_allocs = BTreeSet::new();
    for _ in 0..MONITOR_NEXT_EVALS_MAX {
        let eval = wait_for_eval(client, &current, &mut seen_allocs, verbose)?;
        let next = str_field(&eval, "NextEval");
        let status = str_field(&eval, "Status");
        if status == "complete" && !next.is_empty() {
            println!(
                "==> Monitoring next evaluation \"{}\"",
                maybe_short(next, verbose)
            );
            current = next.to_string();
            continue;
        }
        return Ok(finish(&eval, verbose));
    }
    Err(anyhow!(
        "Error monitoring evaluation: more than {MONITOR_NEXT_EVALS_MAX} follow-up evaluations"
    ))
}

/// Polls one evaluation until it reaches a terminal status.
///
/// Prints, in Nomad's order, the trigger, the allocations the evaluation placed and then
/// the status change.
fn wait_for_eval(
    client: &ApiClient,
    eval_id: &str,
    seen_allocs: &mut BTreeSet<String>,
    verbose: bool,
) -> Result<Value> {
    let mut last_status = String::new();
    let mut announced = false;
    loop {
        let eval = get_eval(client, eval_id)?;
        if !announced {
            announced = true;
            print_trigger(&eval, verbose);
        }
        let status = str_field(&eval, "Status").to_string();
        let terminal = is_terminal(&status);
        if terminal {
            print_new_allocs(client, &eval, seen_allocs, verbose)?;
        }
        if status != last_status {
            if !last_status.is_empty() {
                println!("    Evaluation status changed: \"{last_status}\" -> \"{status}\"");
            }
            last_status = status;
        }
        if terminal {
            let deployment = str_field(&eval, "DeploymentID");
            if !deployment.is_empty() {
                println!(
                    "    Evaluation within deployment: \"{}\"",
                    maybe_short(deployment, verbose)
                );
            }
            return Ok(eval);
        }
        std::thread::sleep(Duration::from_millis(MONITOR_POLL_INTERVAL_MS));
    }
}

fn print_trigger(eval: &Value, verbose: bool) {
    match str_field(eval, "TriggeredBy") {
        "node-update" | "node-drain" => println!(
            "    Evaluation triggered by node \"{}\"",
            maybe_short(str_field(eval, "NodeID"), verbose)
        ),
        _ => println!(
            "    Evaluation triggered by job \"{}\"",
            str_field(eval, "JobID")
        ),
    }
}

fn print_new_allocs(
    client: &ApiClient,
    eval: &Value,
    seen: &mut BTreeSet<String>,
    verbose: bool,
) -> Result<()> {
    let allocs = client
        .get(
            &format!(
                "/v1/evaluation/{}/allocations",
                escape_component(str_field(eval, "ID"))
            ),
            &[],
        )
        .map_err(|e| anyhow!("Error reading allocations: {e}"))?;
    let mut items: Vec<&Value> = allocs
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    items.sort_by_key(|a| int_field(a, "CreateIndex"));
    for alloc in items {
        let id = str_field(alloc, "ID");
        if !seen.insert(id.to_string()) {
            continue;
        }
        let verb = if created_by(alloc, eval) {
            "created"
        } else {
            "modified"
        };
        println!(
            "    Allocation \"{}\" {verb}: node \"{}\", group \"{}\"",
            maybe_short(id, verbose),
            maybe_short(str_field(alloc, "NodeID"), verbose),
            str_field(alloc, "TaskGroup")
        );
    }
    Ok(())
}

/// Returns true when the evaluation placed the allocation rather than updating it in place.
///
/// The evaluation exists before its plan is applied, so allocations it placed were created at
/// a later Raft index; in-place updates keep their older create index.
pub fn created_by(alloc: &Value, eval: &Value) -> bool {
    let eval_index = int_field(eval, "CreateIndex");
    if eval_index > 0 {
        int_field(alloc, "CreateIndex") >= eval_index
    } else {
        str_field(alloc, "EvalID").is_empty() || str_field(alloc, "EvalID") == str_field(eval, "ID")
    }
}

/// Prints the monitor's closing lines and returns the exit code.
fn finish(eval: &Value, verbose: bool) -> i32 {
    print!("{}", render_finish(eval, verbose));
    let failed = str_field(eval, "Status") == "failed" || failed_groups(eval).is_some();
    if failed {
        EXIT_PLACEMENT_FAILED
    } else {
        0
    }
}

/// Renders the final `==> Evaluation ... finished` block.
pub fn render_finish(eval: &Value, verbose: bool) -> String {
    let id = maybe_short(str_field(eval, "ID"), verbose);
    let status = str_field(eval, "Status");
    let Some(failed) = failed_groups(eval) else {
        let mut out = format!("==> Evaluation \"{id}\" finished with status \"{status}\"\n");
        let description = str_field(eval, "StatusDescription");
        if status == "failed" && !description.is_empty() {
            out.push_str(&format!("    {description}\n"));
        }
        return out;
    };
    let mut out = format!(
        "==> Evaluation \"{id}\" finished with status \"{status}\" but failed to place all allocations:\n"
    );
    out.push_str(&format_failed_tg_allocs(failed, 4));
    let blocked = str_field(eval, "BlockedEval");
    if !blocked.is_empty() {
        out.push_str(&format!(
            "    Evaluation \"{}\" waiting for additional capacity to place remainder\n",
            maybe_short(blocked, verbose)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn metric_lines_use_nomad_wording() {
        let metric = json!({
            "NodesEvaluated": 3,
            "NodesAvailable": {"dc1": 3, "dc2": 0},
            "ConstraintFiltered": {"${attr.kernel.name} = windows": 2},
            "ClassFiltered": {},
            "NodesExhausted": 1,
            "DimensionExhausted": {"memory": 1},
        });
        assert_eq!(
            alloc_metric_lines(&metric),
            vec![
                "No nodes are available in datacenter \"dc2\"",
                "Constraint \"${attr.kernel.name} = windows\" filtered 2 nodes",
                "Resources exhausted on 1 nodes",
                "Dimension \"memory\" exhausted on 1 nodes",
            ]
        );
        assert_eq!(
            alloc_metric_lines(&json!({})),
            vec!["No nodes were eligible for evaluation"]
        );
    }

    #[test]
    fn finish_reports_success_and_failed_placements() {
        let ok = json!({"ID": "5ad6d5bf-0000", "Status": "complete"});
        assert_eq!(
            render_finish(&ok, false),
            "==> Evaluation \"5ad6d5bf\" finished with status \"complete\"\n"
        );
        let failed = json!({"ID": "5ad6d5bf-0000", "Status": "complete",
            "BlockedEval": "9c1e2f3a-0000",
            "FailedTGAllocs": {"web": {"NodesEvaluated": 3, "CoalescedFailures": 2,
                "NodesExhausted": 3, "DimensionExhausted": {"memory": 3}}}});
        let out = render_finish(&failed, false);
        assert_eq!(
            out,
            "==> Evaluation \"5ad6d5bf\" finished with status \"complete\" but failed to place all allocations:\n\
             \x20   Task Group \"web\" (failed to place 3 allocations):\n\
             \x20     * Resources exhausted on 3 nodes\n\
             \x20     * Dimension \"memory\" exhausted on 3 nodes\n\
             \x20   Evaluation \"9c1e2f3a\" waiting for additional capacity to place remainder\n"
        );
    }

    #[test]
    fn allocations_older_than_the_eval_were_modified_not_created() {
        let eval = json!({"ID": "e1", "CreateIndex": 20});
        assert!(created_by(&json!({"CreateIndex": 21}), &eval));
        assert!(!created_by(
            &json!({"CreateIndex": 7, "EvalID": "e1"}),
            &eval
        ));
        assert!(created_by(&json!({"EvalID": "e1"}), &json!({"ID": "e1"})));
        assert!(!created_by(&json!({"EvalID": "e0"}), &json!({"ID": "e1"})));
    }

    #[test]
    fn eval_list_marks_placement_failures() {
        let evals = json!([
            {"ID": "aaaaaaaa-1", "Priority": 50, "TriggeredBy": "job-register", "JobID": "web",
                "Namespace": "default", "Status": "complete", "CreateIndex": 1},
            {"ID": "bbbbbbbb-2", "Priority": 50, "TriggeredBy": "node-update", "JobID": "web",
                "Namespace": "default", "NodeID": "cccccccc-3", "Status": "blocked",
                "CreateIndex": 2, "FailedTGAllocs": {"web": {}}}]);
        let out = render_eval_list(&evals, false);
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[1].starts_with("bbbbbbbb  50        node-update   web     default    cccccccc")
        );
        assert!(lines[1].ends_with("blocked   true"), "{out}");
        assert!(lines[2].contains("<none>"), "{out}");
        assert_eq!(render_eval_list(&json!([]), false), "No evals found\n");
    }

    #[test]
    fn eval_detail_shows_failures() {
        let eval = json!({"ID": "5ad6d5bf-0000", "Status": "complete", "Type": "service",
            "TriggeredBy": "job-register", "JobID": "web", "Namespace": "default",
            "Priority": 50, "FailedTGAllocs": {"web": {"NodesEvaluated": 0}}});
        let out = render_eval(&eval, &json!([]), 0, false);
        assert!(out.contains("Placement Failures = true\n"), "{out}");
        assert!(
            out.contains("Task Group \"web\" (failed to place 1 allocation):\n"),
            "{out}"
        );
        assert!(
            out.contains("  * No nodes were eligible for evaluation\n"),
            "{out}"
        );
    }
}
