//! `drover job run|status|stop|plan|validate|inspect` and the top-level `drover status`.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::client::{escape_component, ApiClient};
use super::eval::{format_failed_tg_allocs, monitor};
use super::format::{
    bool_field, format_unix_nanos, int_field, join_strings, key_values, maybe_short, now_nanos,
    pretty_json, str_field, table, time_ago,
};
use super::resolve::{resolve_id, IdKind};
use super::ApiArgs;

/// Exit code of `job plan` when nothing would change.
pub const PLAN_EXIT_NO_CHANGE: i32 = 0;
/// Exit code of `job plan` when allocations would be created, destroyed or updated.
pub const PLAN_EXIT_CHANGES: i32 = 1;
/// Exit code of `job plan` when the plan could not be computed.
pub const PLAN_EXIT_ERROR: i32 = 255;

/// `drover job ...`
#[derive(Args, Debug)]
pub struct JobCommand {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub sub: JobSub,
}

/// Job subcommands.
#[derive(Subcommand, Debug)]
pub enum JobSub {
    /// Submits a job file (HCL or JSON) and monitors its evaluation.
    Run(RunArgs),
    /// Lists jobs, or shows one job with its summary and allocations.
    Status(StatusArgs),
    /// Stops a running job.
    Stop(StopArgs),
    /// Dry-runs a job file and shows what the scheduler would do.
    Plan(PlanArgs),
    /// Checks a job file for errors without submitting it.
    Validate(ValidateArgs),
    /// Prints a registered job as JSON.
    Inspect(InspectArgs),
    /// Lists the stored versions of a job.
    History(super::job_version::HistoryArgs),
    /// Reverts a job to an earlier version.
    Revert(super::job_version::RevertArgs),
    /// Acts on periodic jobs (`periodic force`).
    Periodic(super::job_template::PeriodicCommand),
    /// Creates a child of a parameterized job with a payload and meta.
    Dispatch(super::job_template::DispatchArgs),
}

/// Flags of `job run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Job file (HCL or JSON); `-` reads standard input.
    pub file: String,
    /// Returns after submitting instead of monitoring the evaluation.
    #[arg(long)]
    pub detach: bool,
    /// Registers only if the job's modify index equals this value (0 = job must not exist).
    #[arg(long = "check-index", value_name = "N")]
    pub check_index: Option<u64>,
    /// Treats the job file as JSON even without a .json extension.
    #[arg(long)]
    pub json: bool,
    /// Prints full ids.
    #[arg(long)]
    pub verbose: bool,
}

/// Flags of `job status` and `status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Job id or prefix; lists all jobs when absent.
    pub job_id: Option<String>,
    /// Prints the raw JSON.
    #[arg(long)]
    pub json: bool,
    /// Prints full ids.
    #[arg(long)]
    pub verbose: bool,
    /// Shows only the job's basic information.
    #[arg(long)]
    pub short: bool,
    /// Includes allocations of older job versions.
    #[arg(long = "all-allocs")]
    pub all_allocs: bool,
}

/// `drover status`: the connection flags plus the `job status` flags.
#[derive(Args, Debug)]
pub struct StatusCommand {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub args: StatusArgs,
}

/// Flags of `job stop`.
#[derive(Args, Debug)]
pub struct StopArgs {
    /// Job id or prefix.
    pub job_id: String,
    /// Removes the job from the state entirely instead of marking it stopped.
    #[arg(long)]
    pub purge: bool,
    /// Returns after deregistering instead of monitoring the evaluation.
    #[arg(long)]
    pub detach: bool,
    /// Prints full ids.
    #[arg(long)]
    pub verbose: bool,
    /// Accepted for compatibility; stop never prompts.
    #[arg(long)]
    pub yes: bool,
}

/// Flags of `job plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// Job file (HCL or JSON); `-` reads standard input.
    pub file: String,
    /// Prints the raw plan response as JSON.
    #[arg(long)]
    pub json: bool,
    /// Prints full ids and unchanged fields.
    #[arg(long)]
    pub verbose: bool,
}

/// Flags of `job validate`.
#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Job file (HCL or JSON); `-` reads standard input.
    pub file: String,
    /// Treats the job file as JSON even without a .json extension.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `job inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Job id or prefix.
    pub job_id: String,
    /// Accepted for compatibility: the output is always JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `job` subcommand and returns the exit code.
pub fn run(cmd: JobCommand) -> Result<i32> {
    let client = cmd.api.client();
    match cmd.sub {
        JobSub::Run(args) => run_job(&client, &args),
        JobSub::Status(args) => status_with(&client, &args),
        JobSub::Stop(args) => stop(&client, &args),
        JobSub::Plan(args) => Ok(plan(&client, &args)),
        JobSub::Validate(args) => validate(&client, &args),
        JobSub::Inspect(args) => inspect(&client, &args),
        JobSub::History(args) => super::job_version::history(&client, &args),
        JobSub::Revert(args) => super::job_version::revert(&client, &args),
        JobSub::Periodic(cmd) => super::job_template::periodic(&client, &cmd),
        JobSub::Dispatch(args) => super::job_template::dispatch(&client, &args),
    }
}

/// Runs the top-level `drover status`.
pub fn status(cmd: &StatusCommand) -> Result<i32> {
    status_with(&cmd.api.client(), &cmd.args)
}

/// Returns the job file's text; `-` reads standard input.
fn read_job_file(path: &str) -> Result<String> {
    if path == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| anyhow!("Error reading job from stdin: {e}"))?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|e| anyhow!("Error reading job file \"{path}\": {e}"))
}

/// Returns true when the file should be decoded as JSON rather than sent to the HCL parser.
pub fn looks_like_json(path: &str, text: &str, force_json: bool) -> bool {
    force_json
        || Path::new(path)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text.trim_start().starts_with('{')
}

/// Decodes a JSON job file: either `{"Job": {...}}` or the bare job object.
pub fn job_from_json(text: &str) -> Result<Value> {
    let value: Value = serde_json::from_str(text).map_err(|e| anyhow!("invalid JSON: {e}"))?;
    let job = match value.get("Job") {
        Some(job) => job.clone(),
        None => value,
    };
    if !job.is_object() {
        return Err(anyhow!("field \"Job\": expected a JSON object"));
    }
    Ok(job)
}

/// Loads a job file: JSON is decoded locally, HCL goes through `/v1/jobs/parse`.
pub fn load_job(client: &ApiClient, path: &str, force_json: bool) -> Result<Value> {
    let text = read_job_file(path)?;
    let job = if looks_like_json(path, &text, force_json) {
        job_from_json(&text)
    } else {
        let body = json!({"JobHCL": text, "Canonicalize": true});
        client
            .put("/v1/jobs/parse", &[], &body)
            .map_err(|e| anyhow!("{e}"))
    };
    job.map_err(|e| anyhow!("Error parsing job file from {path}:\n{e}"))
}

fn run_job(client: &ApiClient, args: &RunArgs) -> Result<i32> {
    let job = load_job(client, &args.file, args.json)?;
    let mut body = json!({"Job": job});
    if let Some(index) = args.check_index {
        body["EnforceIndex"] = json!(true);
        body["JobModifyIndex"] = json!(index);
    }
    let response = client.put("/v1/jobs", &[], &body).map_err(|e| {
        let text = e.to_string();
        if text.contains("Enforcing job modify index") {
            anyhow!("Error submitting job: {text}\nThe job was not registered: its modify index did not match -check-index")
        } else {
            anyhow!("Error submitting job: {text}")
        }
    })?;
    let warnings = str_field(&response, "Warnings");
    if !warnings.is_empty() {
        println!("Job Warnings:\n{warnings}\n");
    }
    let eval_id = str_field(&response, "EvalID");
    let periodic = !job_field_is_null(&body["Job"], "Periodic");
    let parameterized = !job_field_is_null(&body["Job"], "ParameterizedJob");
    if args.detach || eval_id.is_empty() || periodic || parameterized {
        println!("Job registration successful");
        if !eval_id.is_empty() {
            println!("Evaluation ID: {eval_id}");
        }
        return Ok(0);
    }
    monitor(client, eval_id, args.verbose)
}

fn job_field_is_null(job: &Value, key: &str) -> bool {
    job.get(key).is_none_or(Value::is_null)
}

fn status_with(client: &ApiClient, args: &StatusArgs) -> Result<i32> {
    let Some(prefix) = args.job_id.as_deref() else {
        let jobs = client
            .get("/v1/jobs", &[])
            .map_err(|e| anyhow!("Error querying jobs: {e}"))?;
        if args.json {
            println!("{}", pretty_json(&jobs));
        } else {
            print!("{}", render_job_list(&jobs));
        }
        return Ok(0);
    };
    let job_id = resolve_id(client, IdKind::Job, prefix)?;
    let path = job_path(&job_id);
    let job = client
        .get(&path, &[])
        .map_err(|e| anyhow!("Error querying job: {e}"))?;
    if args.json {
        println!("{}", pretty_json(&job));
        return Ok(0);
    }
    if args.short {
        print!("{}", render_job_info(&job));
        return Ok(0);
    }
    let summary = client
        .get(&format!("{path}/summary"), &[])
        .map_err(|e| anyhow!("Error querying job summary: {e}"))?;
    let all = if args.all_allocs { "true" } else { "false" };
    let allocs = client
        .get(&format!("{path}/allocations"), &[("all", all)])
        .map_err(|e| anyhow!("Error querying job allocations: {e}"))?;
    print!(
        "{}",
        render_job_status(&job, &summary, &allocs, now_nanos(), args.verbose)
    );
    Ok(0)
}

/// Returns `/v1/job/<escaped id>`.
pub fn job_path(job_id: &str) -> String {
    format!("/v1/job/{}", escape_component(job_id))
}

/// Renders the jobs list table (or Nomad's "No running jobs").
pub fn render_job_list(jobs: &Value) -> String {
    let items = jobs.as_array().map(Vec::as_slice).unwrap_or_default();
    if items.is_empty() {
        return "No running jobs\n".to_string();
    }
    let mut rows = vec![vec![
        "ID".to_string(),
        "Type".to_string(),
        "Priority".to_string(),
        "Status".to_string(),
        "Submit Date".to_string(),
    ]];
    for job in items {
        rows.push(vec![
            str_field(job, "ID").to_string(),
            job_type_label(job),
            int_field(job, "Priority").to_string(),
            job_status_label(job),
            format_unix_nanos(int_field(job, "SubmitTime")),
        ]);
    }
    table(&rows)
}

/// Returns the job type with Nomad's `/periodic` and `/parameterized` suffixes.
fn job_type_label(job: &Value) -> String {
    let mut label = str_field(job, "Type").to_string();
    if job
        .get("Periodic")
        .is_some_and(|p| p.as_bool().unwrap_or(!p.is_null()))
    {
        label.push_str("/periodic");
    }
    if job
        .get("ParameterizedJob")
        .is_some_and(|p| p.as_bool().unwrap_or(!p.is_null()))
    {
        label.push_str("/parameterized");
    }
    label
}

/// Returns the job status, shown as `dead (stopped)` when the job was stopped.
fn job_status_label(job: &Value) -> String {
    let status = str_field(job, "Status");
    if bool_field(job, "Stop") {
        format!("{status} (stopped)")
    } else {
        status.to_string()
    }
}

/// Renders the `key = value` block of one job.
pub fn render_job_info(job: &Value) -> String {
    let pairs = [
        ("ID", str_field(job, "ID").to_string()),
        ("Name", str_field(job, "Name").to_string()),
        (
            "Submit Date",
            format_unix_nanos(int_field(job, "SubmitTime")),
        ),
        ("Type", str_field(job, "Type").to_string()),
        ("Priority", int_field(job, "Priority").to_string()),
        ("Datacenters", join_strings(job.get("Datacenters"))),
        ("Namespace", str_field(job, "Namespace").to_string()),
        ("Node Pool", node_pool_label(str_field(job, "NodePool"))),
        ("Status", job_status_label(job)),
        (
            "Periodic",
            (!job_field_is_null(job, "Periodic")).to_string(),
        ),
        (
            "Parameterized",
            (!job_field_is_null(job, "ParameterizedJob")).to_string(),
        ),
    ];
    key_values(&pairs)
}

/// Returns the node pool a job runs in; an unset pool means the server's `default` pool.
fn node_pool_label(pool: &str) -> String {
    if pool.is_empty() {
        "default".to_string()
    } else {
        pool.to_string()
    }
}

/// Renders one job: info block, per-group summary and the allocations table.
pub fn render_job_status(
    job: &Value,
    summary: &Value,
    allocs: &Value,
    now: i64,
    verbose: bool,
) -> String {
    let mut out = render_job_info(job);
    out.push_str("\nSummary\n");
    let mut rows = vec![[
        "Task Group",
        "Queued",
        "Starting",
        "Running",
        "Failed",
        "Complete",
        "Lost",
        "Unknown",
    ]
    .map(String::from)
    .to_vec()];
    if let Some(groups) = summary.get("Summary").and_then(Value::as_object) {
        for (name, counts) in groups {
            let mut row = vec![name.clone()];
            for key in [
                "Queued", "Starting", "Running", "Failed", "Complete", "Lost", "Unknown",
            ] {
                row.push(int_field(counts, key).to_string());
            }
            rows.push(row);
        }
    }
    out.push_str(&table(&rows));
    out.push_str("\nAllocations\n");
    out.push_str(&render_alloc_table(allocs, now, verbose));
    out
}

/// Renders an allocation stub list as Nomad's allocations table, newest first.
pub fn render_alloc_table(allocs: &Value, now: i64, verbose: bool) -> String {
    let mut items: Vec<&Value> = allocs
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    if items.is_empty() {
        return "No allocations placed\n".to_string();
    }
    items.sort_by_key(|a| std::cmp::Reverse(int_field(a, "CreateIndex")));
    let mut rows = vec![[
        "ID",
        "Node ID",
        "Task Group",
        "Version",
        "Desired",
        "Status",
        "Created",
        "Modified",
    ]
    .map(String::from)
    .to_vec()];
    for alloc in items {
        rows.push(vec![
            maybe_short(str_field(alloc, "ID"), verbose).to_string(),
            maybe_short(str_field(alloc, "NodeID"), verbose).to_string(),
            str_field(alloc, "TaskGroup").to_string(),
            alloc_job_version(alloc).to_string(),
            str_field(alloc, "DesiredStatus").to_string(),
            str_field(alloc, "ClientStatus").to_string(),
            time_ago(int_field(alloc, "CreateTime"), now),
            time_ago(int_field(alloc, "ModifyTime"), now),
        ]);
    }
    table(&rows)
}

/// Returns the job version an allocation runs: the stub's `JobVersion`, or the embedded job's
/// `Version` for full allocation objects (which have no `JobVersion` field).
pub fn alloc_job_version(alloc: &Value) -> i64 {
    match alloc.get("JobVersion") {
        Some(version) => version.as_i64().unwrap_or(0),
        None => alloc
            .get("Job")
            .map(|job| int_field(job, "Version"))
            .unwrap_or(0),
    }
}

fn stop(client: &ApiClient, args: &StopArgs) -> Result<i32> {
    let job_id = resolve_id(client, IdKind::Job, &args.job_id)?;
    let query: &[(&str, &str)] = if args.purge {
        &[("purge", "true")]
    } else {
        &[]
    };
    let response = client
        .delete(&job_path(&job_id), query)
        .map_err(|e| anyhow!("Error deregistering job: {e}"))?;
    let eval_id = str_field(&response, "EvalID");
    if eval_id.is_empty() {
        return Ok(0);
    }
    if args.detach {
        println!("{eval_id}");
        return Ok(0);
    }
    monitor(client, eval_id, args.verbose)
}

fn inspect(client: &ApiClient, args: &InspectArgs) -> Result<i32> {
    let job_id = resolve_id(client, IdKind::Job, &args.job_id)?;
    let job = client
        .get(&job_path(&job_id), &[])
        .map_err(|e| anyhow!("Error inspecting job: {e}"))?;
    println!("{}", pretty_json(&json!({"Job": job})));
    Ok(0)
}

/// Runs `job plan`; every failure is printed here because plan errors exit 255, not 1.
fn plan(client: &ApiClient, args: &PlanArgs) -> i32 {
    match plan_inner(client, args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e:#}");
            PLAN_EXIT_ERROR
        }
    }
}

fn plan_inner(client: &ApiClient, args: &PlanArgs) -> Result<i32> {
    let job = load_job(client, &args.file, false)?;
    let job_id = str_field(&job, "ID").to_string();
    if job_id.is_empty() {
        return Err(anyhow!("Error during plan: job.ID: missing job ID"));
    }
    let body = json!({"Job": job, "Diff": true});
    let response = client
        .put(&format!("{}/plan", job_path(&job_id)), &[], &body)
        .map_err(|e| anyhow!("Error during plan: {e}"))?;
    let code = plan_exit_code(&response);
    if args.json {
        println!("{}", pretty_json(&response));
    } else {
        print!(
            "{}",
            render_plan(&response, &job_id, &args.file, args.verbose)
        );
    }
    Ok(code)
}

/// The plan annotation counters, in the order and wording Nomad prints them.
const PLAN_UPDATE_LABELS: [(&str, &str); 11] = [
    ("Place", "create"),
    ("Stop", "destroy"),
    ("Migrate", "migrate"),
    ("InPlaceUpdate", "in-place update"),
    ("DestructiveUpdate", "create/destroy update"),
    ("Canary", "canary"),
    ("RescheduleNow", "reschedule now"),
    ("RescheduleLater", "reschedule later"),
    ("Disconnect", "disconnect"),
    ("Reconnect", "reconnect"),
    ("Ignore", "ignore"),
];

/// Returns 1 when the plan would create, destroy or update allocations, else 0.
pub fn plan_exit_code(response: &Value) -> i32 {
    let updates = response
        .pointer("/Annotations/DesiredTGUpdates")
        .and_then(Value::as_object);
    let changes = updates.into_iter().flat_map(|m| m.values()).any(|u| {
        [
            "Place",
            "Stop",
            "Migrate",
            "InPlaceUpdate",
            "DestructiveUpdate",
            "Canary",
        ]
        .iter()
        .any(|k| int_field(u, k) > 0)
    });
    if changes {
        PLAN_EXIT_CHANGES
    } else {
        PLAN_EXIT_NO_CHANGE
    }
}

/// Returns "(1 create, 2 ignore)" for a group's desired updates, or "" when all are zero.
pub fn group_update_summary(update: &Value) -> String {
    let parts: Vec<String> = PLAN_UPDATE_LABELS
        .iter()
        .filter_map(|(key, label)| {
            let n = int_field(update, key);
            (n > 0).then(|| format!("{n} {label}"))
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// Renders a plan response the way `nomad job plan` does.
pub fn render_plan(response: &Value, job_id: &str, file: &str, verbose: bool) -> String {
    let updates = response
        .pointer("/Annotations/DesiredTGUpdates")
        .cloned()
        .unwrap_or(Value::Null);
    let mut out = String::new();
    let diff = response.get("Diff").filter(|d| d.is_object()).cloned();
    let diff = diff.unwrap_or_else(|| json!({"Type": "None", "ID": job_id}));
    out.push_str(&render_job_diff(&diff, &updates, verbose));
    out.push_str("\nScheduler dry-run:\n");
    match response
        .get("FailedTGAllocs")
        .and_then(Value::as_object)
        .filter(|f| !f.is_empty())
    {
        None => out.push_str("- All tasks successfully allocated.\n"),
        Some(failed) => {
            out.push_str("- WARNING: Failed to place all allocations.\n");
            out.push_str(&format_failed_tg_allocs(failed, 2));
        }
    }
    out.push_str(&render_preemptions(response));
    let index = int_field(response, "JobModifyIndex");
    out.push_str(&format!(
        "\nJob Modify Index: {index}\nTo submit the job with version verification run:\n\n\
         drover job run -check-index {index} {file}\n\n\
         When running the job with the check-index flag, the job will only be run if the\n\
         job modify index given matches the server-side version. If the index has\n\
         changed, another user has modified the job and the plan's results are\n\
         potentially invalid.\n"
    ));
    out
}

/// Renders the allocations the plan would evict, or "" when there are none.
fn render_preemptions(response: &Value) -> String {
    let Some(preempted) = response
        .pointer("/Annotations/PreemptedAllocs")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
    else {
        return String::new();
    };
    let mut rows = vec![vec![
        "Alloc ID".to_string(),
        "Job ID".to_string(),
        "Task Group".to_string(),
    ]];
    for a in preempted {
        rows.push(vec![
            str_field(a, "ID").to_string(),
            str_field(a, "JobID").to_string(),
            str_field(a, "TaskGroup").to_string(),
        ]);
    }
    format!("\nPreemptions:\n\n{}", table(&rows))
}

/// Returns the marker Nomad prints before a diff line.
fn diff_marker(kind: &str) -> &'static str {
    match kind {
        "Added" => "+ ",
        "Deleted" => "- ",
        "Edited" => "+/- ",
        _ => "",
    }
}

fn render_job_diff(diff: &Value, updates: &Value, verbose: bool) -> String {
    let mut out = format!(
        "{}Job: \"{}\"\n",
        diff_marker(str_field(diff, "Type")),
        str_field(diff, "ID")
    );
    render_fields_and_objects(diff, 0, verbose, &mut out);
    for group in diff
        .get("TaskGroups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = str_field(group, "Name");
        let summary = updates
            .get(name)
            .map(group_update_summary)
            .unwrap_or_default();
        let marker = diff_marker(str_field(group, "Type"));
        out.push_str(&format!("{marker}Task Group: \"{name}\"{summary}\n"));
        render_fields_and_objects(group, 2, verbose, &mut out);
        for task in group
            .get("Tasks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let kind = str_field(task, "Type");
            if kind == "None" && !verbose {
                continue;
            }
            let notes = join_strings(task.get("Annotations"));
            let notes = if notes.is_empty() {
                notes
            } else {
                format!(" ({notes})")
            };
            let marker = diff_marker(kind);
            out.push_str(&format!(
                "  {marker}Task: \"{}\"{notes}\n",
                str_field(task, "Name")
            ));
            render_fields_and_objects(task, 4, verbose, &mut out);
        }
    }
    // Groups the diff leaves out (unchanged ones) still get their annotation line.
    let job_marker = diff_marker(str_field(diff, "Type"));
    for (name, update) in updates.as_object().into_iter().flatten() {
        let listed = diff
            .get("TaskGroups")
            .and_then(Value::as_array)
            .is_some_and(|groups| groups.iter().any(|g| str_field(g, "Name") == name));
        if !listed {
            let summary = group_update_summary(update);
            out.push_str(&format!("{job_marker}Task Group: \"{name}\"{summary}\n"));
        }
    }
    out
}

fn render_fields_and_objects(diff: &Value, depth: usize, verbose: bool, out: &mut String) {
    let pad = " ".repeat(depth);
    for field in diff
        .get("Fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = str_field(field, "Type");
        if kind == "None" && !verbose {
            continue;
        }
        let (old, new, name) = (
            str_field(field, "Old"),
            str_field(field, "New"),
            str_field(field, "Name"),
        );
        let line = match kind {
            "Added" => format!("{name}: \"{new}\""),
            "Deleted" => format!("{name}: \"{old}\""),
            "Edited" => format!("{name}: \"{old}\" => \"{new}\""),
            _ => format!("{name}: \"{new}\""),
        };
        out.push_str(&format!("{pad}{}{line}\n", diff_marker(kind)));
    }
    for object in diff
        .get("Objects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = str_field(object, "Type");
        if kind == "None" && !verbose {
            continue;
        }
        out.push_str(&format!(
            "{pad}{}{} {{\n",
            diff_marker(kind),
            str_field(object, "Name")
        ));
        render_fields_and_objects(object, depth + 2, verbose, out);
        out.push_str(&format!("{pad}}}\n"));
    }
}

fn validate(client: &ApiClient, args: &ValidateArgs) -> Result<i32> {
    let job = load_job(client, &args.file, args.json)?;
    let mut errors = local_check(&job);
    let mut warnings = String::new();
    match client.put("/v1/validate/job", &[], &json!({"Job": job})) {
        Ok(response) => {
            for err in response
                .get("ValidationErrors")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(text) = err.as_str() {
                    errors.push(text.to_string());
                }
            }
            warnings = str_field(&response, "Warnings").to_string();
        }
        // A server without the validate endpoint still gets the parse and local checks.
        Err(e) if e.status() == Some(404) || e.status() == Some(405) => {}
        Err(e) => return Err(anyhow!("Error validating job: {e}")),
    }
    if !warnings.is_empty() {
        println!("Job Warnings:\n{warnings}\n");
    }
    if errors.is_empty() {
        println!("Job validation successful");
        return Ok(0);
    }
    eprintln!("Job validation errors:");
    for err in &errors {
        eprintln!("* {err}");
    }
    Ok(1)
}

/// Checks the parts of a job every server rejects, naming each offending field by its path.
pub fn local_check(job: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    if str_field(job, "ID").is_empty() {
        errors.push("job.ID: missing job ID".to_string());
    }
    if let Some(priority) = job.get("Priority").and_then(Value::as_i64) {
        if !(1..=100).contains(&priority) {
            errors.push(format!("job.Priority: {priority} is not between 1 and 100"));
        }
    }
    let job_type = str_field(job, "Type");
    if !job_type.is_empty() && !["service", "batch", "system", "sysbatch"].contains(&job_type) {
        errors.push(format!("job.Type: invalid job type \"{job_type}\""));
    }
    let groups = job
        .get("TaskGroups")
        .and_then(Value::as_array)
        .map(Vec::as_slice);
    let groups = groups.unwrap_or_default();
    if groups.is_empty() {
        errors.push("job.TaskGroups: missing job task groups".to_string());
    }
    let mut seen = BTreeSet::new();
    for (i, group) in groups.iter().enumerate() {
        check_group(group, i, &mut seen, &mut errors);
    }
    errors
}

fn check_group(group: &Value, index: usize, seen: &mut BTreeSet<String>, errors: &mut Vec<String>) {
    let name = str_field(group, "Name");
    let path = if name.is_empty() {
        errors.push(format!("job.group[{index}].Name: missing task group name"));
        format!("job.group[{index}]")
    } else {
        if !seen.insert(name.to_string()) {
            errors.push(format!("job.group[{name}]: duplicate task group name"));
        }
        format!("job.group[{name}]")
    };
    if int_field(group, "Count") < 0 {
        errors.push(format!("{path}.Count: must be zero or more"));
    }
    let tasks = group
        .get("Tasks")
        .and_then(Value::as_array)
        .map(Vec::as_slice);
    let tasks = tasks.unwrap_or_default();
    if tasks.is_empty() {
        errors.push(format!("{path}.Tasks: missing tasks for task group"));
    }
    for (i, task) in tasks.iter().enumerate() {
        let task_name = str_field(task, "Name");
        let task_path = if task_name.is_empty() {
            errors.push(format!("{path}.task[{i}].Name: missing task name"));
            format!("{path}.task[{i}]")
        } else {
            format!("{path}.task[{task_name}]")
        };
        if str_field(task, "Driver").is_empty() {
            errors.push(format!("{task_path}.Driver: missing task driver"));
        }
        if let Some(resources) = task.get("Resources").filter(|r| r.is_object()) {
            for key in ["CPU", "MemoryMB"] {
                if int_field(resources, key) < 0 {
                    errors.push(format!("{task_path}.Resources.{key}: must be zero or more"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_job_files_accept_both_envelopes() {
        let wrapped = job_from_json(r#"{"Job":{"ID":"web"}}"#).unwrap();
        let bare = job_from_json(r#"{"ID":"web"}"#).unwrap();
        assert_eq!(wrapped, bare);
        assert!(job_from_json(r#"{"Job":3}"#)
            .unwrap_err()
            .to_string()
            .contains("\"Job\""));
        assert!(looks_like_json("a.nomad", "  {\"ID\":1}", false));
        assert!(!looks_like_json("a.nomad", "job \"x\" {}", false));
        assert!(looks_like_json("a.JSON", "", false));
    }

    #[test]
    fn job_list_renders_table_or_empty_message() {
        assert_eq!(render_job_list(&json!([])), "No running jobs\n");
        let jobs = json!([{"ID":"web","Type":"service","Priority":50,"Status":"running",
            "SubmitTime": 1_700_000_000_000_000_000i64, "Periodic": false},
            {"ID":"nightly","Type":"batch","Priority":70,"Status":"dead","Stop":true,
            "SubmitTime": 0, "Periodic": true}]);
        let out = render_job_list(&jobs);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "ID       Type            Priority  Status          Submit Date"
        );
        assert_eq!(
            lines[1],
            "web      service         50        running         2023-11-14T22:13:20Z"
        );
        assert_eq!(
            lines[2],
            "nightly  batch/periodic  70        dead (stopped)  1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn job_status_shows_summary_and_short_alloc_ids() {
        let job = json!({"ID":"web","Name":"web","Type":"service","Priority":50,
            "Datacenters":["dc1","dc2"],"Namespace":"default","Status":"running","Periodic":null});
        let summary = json!({"Summary":{"web":{"Running":3,"Queued":1}}});
        let s = 1_000_000_000i64;
        let allocs = json!([{"ID":"8ba85cef-aaaa","NodeID":"171a583b-bbbb","TaskGroup":"web",
            "JobVersion":0,"DesiredStatus":"run","ClientStatus":"running","CreateIndex":5,
            "CreateTime": 100 * s, "ModifyTime": 160 * s}]);
        let out = render_job_status(&job, &summary, &allocs, 400 * s, false);
        assert!(out.contains("Datacenters   = dc1,dc2\n"), "{out}");
        assert!(out.contains("Periodic      = false\n"), "{out}");
        assert!(
            out.contains("web         1       0         3        0"),
            "{out}"
        );
        assert!(
            out.contains(
                "8ba85cef  171a583b  web         0        run      running  5m ago   4m ago"
            ),
            "{out}"
        );
    }

    #[test]
    fn plan_exit_code_counts_only_changes() {
        let ignore = json!({"Annotations":{"DesiredTGUpdates":{"web":{"Ignore":3}}}});
        assert_eq!(plan_exit_code(&ignore), PLAN_EXIT_NO_CHANGE);
        let place = json!({"Annotations":{"DesiredTGUpdates":{"web":{"Place":1,"Ignore":2}}}});
        assert_eq!(plan_exit_code(&place), PLAN_EXIT_CHANGES);
        assert_eq!(plan_exit_code(&json!({})), PLAN_EXIT_NO_CHANGE);
        assert_eq!(
            group_update_summary(&place["Annotations"]["DesiredTGUpdates"]["web"]),
            " (1 create, 2 ignore)"
        );
    }

    #[test]
    fn plan_renders_diff_annotations_and_failures() {
        let response = json!({
            "Annotations": {"DesiredTGUpdates": {"web": {"Place": 1}}},
            "Diff": {"Type": "Added", "ID": "web", "Fields": [],
                "TaskGroups": [{"Type": "Added", "Name": "web", "Fields": [
                    {"Type": "Added", "Name": "Count", "Old": "", "New": "1"}],
                    "Tasks": [{"Type": "Added", "Name": "server", "Annotations": ["forces create"]}]}]},
            "FailedTGAllocs": {"web": {"NodesEvaluated": 3, "CoalescedFailures": 0,
                "DimensionExhausted": {"memory": 3}, "NodesExhausted": 3}},
            "JobModifyIndex": 0
        });
        let out = render_plan(&response, "web", "web.nomad", false);
        assert!(
            out.starts_with("+ Job: \"web\"\n+ Task Group: \"web\" (1 create)\n"),
            "{out}"
        );
        assert!(out.contains("  + Count: \"1\"\n"), "{out}");
        assert!(
            out.contains("  + Task: \"server\" (forces create)\n"),
            "{out}"
        );
        assert!(
            out.contains("- WARNING: Failed to place all allocations.\n"),
            "{out}"
        );
        assert!(
            out.contains("* Dimension \"memory\" exhausted on 3 nodes"),
            "{out}"
        );
        assert!(
            out.contains("drover job run -check-index 0 web.nomad\n"),
            "{out}"
        );
    }

    #[test]
    fn plan_lists_preemptions() {
        let mut response = json!({
            "Annotations": {"DesiredTGUpdates": {"web": {"Place": 1}}, "PreemptedAllocs": null},
            "JobModifyIndex": 0
        });
        let out = render_plan(&response, "high", "high.nomad", false);
        assert!(!out.contains("Preemptions:"), "{out}");
        response["Annotations"]["PreemptedAllocs"] = json!([
            {"ID": "0f6f3c5e-1111-2222-3333-444455556666", "JobID": "low", "TaskGroup": "web"}
        ]);
        let out = render_plan(&response, "high", "high.nomad", false);
        assert!(
            out.contains(
                "\nPreemptions:\n\nAlloc ID                              Job ID  Task Group\n\
                 0f6f3c5e-1111-2222-3333-444455556666  low     web\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn local_check_names_fields_by_path() {
        let job = json!({"ID":"web","Priority":0,"TaskGroups":[
            {"Name":"web","Count":1,"Tasks":[{"Name":"api","Driver":""}]},
            {"Name":"web","Tasks":[]}]});
        let errors = local_check(&job);
        assert_eq!(
            errors,
            vec![
                "job.Priority: 0 is not between 1 and 100".to_string(),
                "job.group[web].task[api].Driver: missing task driver".to_string(),
                "job.group[web]: duplicate task group name".to_string(),
                "job.group[web].Tasks: missing tasks for task group".to_string(),
            ]
        );
        let ok =
            json!({"ID":"w","TaskGroups":[{"Name":"g","Tasks":[{"Name":"t","Driver":"exec"}]}]});
        assert!(local_check(&ok).is_empty());
    }
}
