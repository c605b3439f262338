//! `drover job periodic force` and `drover job dispatch`: launching children of periodic and
//! parameterized jobs.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{anyhow, Result};
use base64::Engine as _;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::client::ApiClient;
use super::eval::monitor;
use super::format::{key_values, maybe_short};
use super::job::job_path;
use super::resolve::{resolve_id, IdKind};

/// `job periodic ...`
#[derive(Args, Debug)]
pub struct PeriodicCommand {
    #[command(subcommand)]
    pub sub: PeriodicSub,
}

/// Periodic subcommands.
#[derive(Subcommand, Debug)]
pub enum PeriodicSub {
    /// Launches a child of a periodic job now, ignoring its schedule.
    Force(ForceArgs),
}

/// Flags of `job periodic force`.
#[derive(Args, Debug)]
pub struct ForceArgs {
    /// Job id or prefix.
    pub job_id: String,
    /// Returns after launching instead of monitoring the evaluation.
    #[arg(long)]
    pub detach: bool,
    /// Prints full ids.
    #[arg(long)]
    pub verbose: bool,
}

/// Flags of `job dispatch`.
#[derive(Args, Debug)]
pub struct DispatchArgs {
    /// Job id or prefix of the parameterized job.
    pub job_id: String,
    /// Payload file; `-` reads standard input.
    pub input: Option<String>,
    /// Meta `key=value` for the dispatched job; repeatable.
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// Token that makes repeated dispatches return the same child.
    #[arg(long = "idempotency-token", default_value = "")]
    pub idempotency_token: String,
    /// Returns after dispatching instead of monitoring the evaluation.
    #[arg(long)]
    pub detach: bool,
    /// Prints full ids.
    #[arg(long)]
    pub verbose: bool,
}

/// Runs `job periodic force`.
pub fn periodic(client: &ApiClient, cmd: &PeriodicCommand) -> Result<i32> {
    match &cmd.sub {
        PeriodicSub::Force(args) => force(client, args),
    }
}

fn force(client: &ApiClient, args: &ForceArgs) -> Result<i32> {
    let job_id = resolve_id(client, IdKind::Job, &args.job_id)?;
    let response = client
        .put(
            &format!("{}/periodic/force", job_path(&job_id)),
            &[],
            &json!({}),
        )
        .map_err(|e| anyhow!("Error forcing periodic job {job_id:?}: {e}"))?;
    let eval_id = response.get("EvalID").and_then(Value::as_str).unwrap_or("");
    if args.detach || eval_id.is_empty() {
        println!("Job successfully forced");
        if !eval_id.is_empty() {
            println!("Evaluation ID: {eval_id}");
        }
        return Ok(0);
    }
    monitor(client, eval_id, args.verbose)
}

/// Parses `-meta key=value` flags.
pub fn parse_meta(pairs: &[String]) -> Result<BTreeMap<String, String>> {
    let mut meta = BTreeMap::new();
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(anyhow!(
                "Error parsing meta value: {pair:?} is not key=value"
            ));
        };
        if k.is_empty() {
            return Err(anyhow!(
                "Error parsing meta value: {pair:?} has an empty key"
            ));
        }
        meta.insert(k.to_string(), v.to_string());
    }
    Ok(meta)
}

fn read_input(input: Option<&str>) -> Result<Vec<u8>> {
    match input {
        None => Ok(Vec::new()),
        Some("-") => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| anyhow!("Error reading from stdin: {e}"))?;
            Ok(bytes)
        }
        Some(path) => std::fs::read(path).map_err(|e| anyhow!("Error reading input data: {e}")),
    }
}

/// Builds the body of `POST /v1/job/:id/dispatch`.
pub fn dispatch_body(
    job_id: &str,
    payload: &[u8],
    meta: &BTreeMap<String, String>,
    idempotency_token: &str,
) -> Value {
    let mut body = json!({
        "JobID": job_id,
        "Payload": base64::engine::general_purpose::STANDARD.encode(payload),
        "Meta": meta,
    });
    if !idempotency_token.is_empty() {
        body["IdempotencyToken"] = json!(idempotency_token);
    }
    body
}

/// Runs `job dispatch`: prints Nomad's `Dispatched Job ID` and `Evaluation ID` lines, then
/// monitors the evaluation unless detached.
pub fn dispatch(client: &ApiClient, args: &DispatchArgs) -> Result<i32> {
    let meta = parse_meta(&args.meta)?;
    let payload = read_input(args.input.as_deref())?;
    let job_id = resolve_id(client, IdKind::Job, &args.job_id)?;
    let body = dispatch_body(&job_id, &payload, &meta, &args.idempotency_token);
    let response = client
        .put(&format!("{}/dispatch", job_path(&job_id)), &[], &body)
        .map_err(|e| anyhow!("Failed to dispatch job: {e}"))?;
    let dispatched = response
        .get("DispatchedJobID")
        .and_then(Value::as_str)
        .unwrap_or("");
    let eval_id = response.get("EvalID").and_then(Value::as_str).unwrap_or("");
    let mut lines = vec![("Dispatched Job ID", dispatched.to_string())];
    if !eval_id.is_empty() {
        lines.push((
            "Evaluation ID",
            maybe_short(eval_id, args.verbose).to_string(),
        ));
    }
    print!("{}", key_values(&lines));
    if args.detach || eval_id.is_empty() {
        return Ok(0);
    }
    println!();
    monitor(client, eval_id, args.verbose)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_flags_parse_and_reject_missing_equals() {
        let meta = parse_meta(&["owner=ops".into(), "note=a=b".into()]).unwrap();
        assert_eq!(meta["owner"], "ops");
        assert_eq!(meta["note"], "a=b");
        assert!(parse_meta(&["owner".into()]).is_err());
        assert!(parse_meta(&["=x".into()]).is_err());
    }

    #[test]
    fn dispatch_body_encodes_the_payload_as_base64() {
        let meta = parse_meta(&["owner=ops".into()]).unwrap();
        let body = dispatch_body("render", b"hello", &meta, "tok");
        assert_eq!(body["Payload"], "aGVsbG8=");
        assert_eq!(body["Meta"]["owner"], "ops");
        assert_eq!(body["IdempotencyToken"], "tok");
        assert!(dispatch_body("render", b"", &meta, "")
            .get("IdempotencyToken")
            .is_none());
    }
}
