//! `drover job history` and `drover job revert`: a job's stored versions.

use anyhow::{anyhow, Result};
use clap::Args;
use serde_json::{json, Value};

use super::client::ApiClient;
use super::eval::monitor;
use super::format::{bool_field, format_unix_nanos, int_field, key_values, pretty_json};
use super::job::job_path;
use super::resolve::{resolve_id, IdKind};

/// Flags of `job history`.
#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Job id or prefix.
    pub job_id: String,
    /// Shows only this version.
    #[arg(long = "version", value_name = "N")]
    pub version: Option<u64>,
    /// Prints the raw JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `job revert`.
#[derive(Args, Debug)]
pub struct RevertArgs {
    /// Job id or prefix.
    pub job_id: String,
    /// Version to go back to.
    pub version: u64,
    /// Returns after submitting instead of monitoring the evaluation.
    #[arg(long)]
    pub detach: bool,
    /// Prints full ids.
    #[arg(long)]
    pub verbose: bool,
}

/// Prints the versions of a job, newest first.
pub fn history(client: &ApiClient, args: &HistoryArgs) -> Result<i32> {
    let job_id = resolve_id(client, IdKind::Job, &args.job_id)?;
    let response = client
        .get(&format!("{}/versions", job_path(&job_id)), &[])
        .map_err(|e| anyhow!("Error retrieving job versions: {e}"))?;
    let versions: Vec<Value> = response
        .get("Versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| {
            args.version
                .is_none_or(|want| int_field(v, "Version") as u64 == want)
        })
        .cloned()
        .collect();
    if args.version.is_some() && versions.is_empty() {
        return Err(anyhow!(
            "Error: job \"{job_id}\" has no version {}",
            args.version.unwrap_or(0)
        ));
    }
    if args.json {
        println!("{}", pretty_json(&Value::Array(versions)));
    } else {
        print!("{}", render_history(&versions));
    }
    Ok(0)
}

/// Renders one `key = value` block per version, separated by blank lines.
pub fn render_history(versions: &[Value]) -> String {
    let mut sorted: Vec<&Value> = versions.iter().collect();
    sorted.sort_by_key(|v| std::cmp::Reverse(int_field(v, "Version")));
    let blocks: Vec<String> = sorted
        .into_iter()
        .map(|v| {
            key_values(&[
                ("Version", int_field(v, "Version").to_string()),
                ("Stable", bool_field(v, "Stable").to_string()),
                ("Submit Date", format_unix_nanos(int_field(v, "SubmitTime"))),
            ])
        })
        .collect();
    blocks.join("\n")
}

/// Reverts a job to an earlier version and monitors the resulting evaluation.
pub fn revert(client: &ApiClient, args: &RevertArgs) -> Result<i32> {
    let job_id = resolve_id(client, IdKind::Job, &args.job_id)?;
    let body = json!({"JobID": job_id, "JobVersion": args.version});
    let response = client
        .put(&format!("{}/revert", job_path(&job_id)), &[], &body)
        .map_err(|e| anyhow!("Error retrieving job version: {e}"))?;
    let eval_id = response.get("EvalID").and_then(Value::as_str).unwrap_or("");
    if eval_id.is_empty() {
        return Ok(0);
    }
    if args.detach {
        println!("Evaluation ID: {eval_id}");
        return Ok(0);
    }
    monitor(client, eval_id, args.verbose)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_lists_newest_version_first() {
        let versions = vec![
            json!({"Version": 0, "Stable": true, "SubmitTime": 0}),
            json!({"Version": 1, "Stable": false, "SubmitTime": 1_000_000_000i64}),
        ];
        assert_eq!(
            render_history(&versions),
            "Version     = 1\nStable      = false\nSubmit Date = 1970-01-01T00:00:01Z\n\n\
             Version     = 0\nStable      = true\nSubmit Date = 1970-01-01T00:00:00Z\n"
        );
    }
}
