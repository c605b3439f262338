//! Job endpoints: list, register, parse, read, versions, summary, plan, evaluate, deregister.

use super::{index_of, tables};
use engine::api::{ReadView, RegisterJob};
use engine::{Cluster, EngineError};
use sched::structs::Job;
use sched::StateView;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{job_type_of, Ctx};
use crate::http::body::decode_json;
use crate::http::encode;
use crate::http::reply::{write_response, HttpError, HttpResponse};
use crate::jobspec;

/// `JobRegisterRequest`/`JobPlanRequest` envelope. Go decodes field names case-insensitively;
/// the aliases cover the spellings clients use.
#[derive(Deserialize, Debug, Default)]
struct JobRequestBody {
    #[serde(rename = "Job", alias = "job")]
    job: Option<Value>,
    #[serde(
        rename = "EnforceIndex",
        alias = "enforceIndex",
        alias = "enforce_index"
    )]
    enforce_index: Option<bool>,
    #[serde(
        rename = "JobModifyIndex",
        alias = "jobModifyIndex",
        alias = "job_modify_index"
    )]
    job_modify_index: Option<u64>,
    #[serde(
        rename = "EvalPriority",
        alias = "evalPriority",
        alias = "eval_priority"
    )]
    eval_priority: Option<i64>,
    #[serde(rename = "Namespace", alias = "namespace")]
    namespace: Option<String>,
    #[serde(rename = "Region", alias = "region")]
    region: Option<String>,
    /// Plan only: whether to compute the job diff.
    #[serde(rename = "Diff", alias = "diff")]
    diff: Option<bool>,
}

#[derive(Deserialize, Debug)]
struct ParseRequestBody {
    #[serde(rename = "JobHCL", alias = "jobHCL", alias = "job_hcl")]
    job_hcl: Option<String>,
    #[serde(rename = "Canonicalize", alias = "canonicalize")]
    canonicalize: Option<bool>,
}

/// `GET /v1/jobs`
pub(crate) async fn list<C: Cluster>(ctx: &mut Ctx<'_, C>) -> Result<HttpResponse, HttpError> {
    let with_meta = ctx.query.bool_param("meta")?;
    let view = ctx.view(tables::JOBS).await;
    let jobs: Vec<_> = view.job_summaries(&|j| {
        ctx.query.namespace_matches(&j.namespace) && j.id.starts_with(&ctx.query.prefix)
    });
    let items = jobs
        .iter()
        .map(|(j, summary)| {
            let mut token = String::with_capacity(j.namespace.len() + 1 + j.id.len());
            token.push_str(&j.namespace);
            token.push('.');
            token.push_str(&j.id);
            (
                token,
                encode::job_list_stub_typed(j, Some(summary), with_meta),
            )
        })
        .collect();
    ctx.list_reply_typed(items, index_of(&*view, tables::JOBS))
}

/// `PUT|POST /v1/jobs` and `PUT|POST /v1/job/:id`.
pub(crate) async fn register<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
    path_id: Option<&str>,
) -> Result<HttpResponse, HttpError> {
    // Registrations are further bounded by the server's job source size.
    let body = ctx.body(ctx.cluster.job_max_source_size()).await?;
    let request: JobRequestBody = decode_json(&body)?;
    let eval_priority = match request.eval_priority.unwrap_or(0) {
        0 => None,
        p @ 1..=100 => Some(p as u16),
        _ => {
            return Err(HttpError::bad_request(
                "Eval priority must be between 1 and 100 inclusively",
            ))
        }
    };
    let enforce_index = request
        .enforce_index
        .unwrap_or(false)
        .then(|| request.job_modify_index.unwrap_or(0));
    let job = api_job_to_internal(ctx, &request, path_id)?;
    let reply = ctx
        .cluster
        .register_job(RegisterJob {
            job,
            enforce_index,
            eval_priority,
        })
        .await?;
    let mut value = json!({
        "EvalID": reply.eval_id,
        "EvalCreateIndex": reply.eval_create_index,
        "JobModifyIndex": reply.job_modify_index,
        "Warnings": reply.warnings,
    });
    ctx.meta(reply.index).embed(&mut value);
    Ok(write_response(&value, ctx.query.pretty, reply.index))
}

/// Validates the envelope's job, applies request namespace and region, canonicalises and
/// converts it. `path_id` is the `:id` of `/v1/job/:id` routes, which must match.
fn api_job_to_internal<C: Cluster>(
    ctx: &Ctx<'_, C>,
    request: &JobRequestBody,
    path_id: Option<&str>,
) -> Result<Job, HttpError> {
    let mut job = match &request.job {
        Some(Value::Object(map)) => Value::Object(map.clone()),
        _ => return Err(HttpError::bad_request("Job must be specified")),
    };
    let id = job
        .get("ID")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if id.is_empty() {
        return Err(HttpError::bad_request("Job ID hasn't been provided"));
    }
    if let Some(path_id) = path_id {
        if path_id != id {
            return Err(HttpError::bad_request("Job ID does not match name"));
        }
    }
    let status = ctx.cluster.status();
    // Namespace: query parameter, then body, then the job's own, then the default.
    let job_ns = job
        .get("Namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let namespace = [
        ctx.query
            .get("namespace")
            .filter(|ns| *ns != "*")
            .unwrap_or(""),
        request.namespace.as_deref().unwrap_or(""),
        job_ns.as_str(),
    ]
    .into_iter()
    .find(|ns| !ns.is_empty())
    .unwrap_or(sched::structs::DEFAULT_NAMESPACE)
    .to_string();
    // Region: body, then query parameter, then the job's, then this server's; "global" is
    // Nomad's name for "the local region".
    let job_region = job
        .get("Region")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let region = [
        request.region.as_deref().unwrap_or(""),
        ctx.query.region.as_str(),
        &job_region,
    ]
    .into_iter()
    .find(|r| !r.is_empty())
    .filter(|r| *r != "global")
    .unwrap_or(status.region.as_str())
    .to_string();
    job["Namespace"] = Value::String(namespace);
    job["Region"] = Value::String(region);
    let bounds = ctx.cluster.job_priority_bounds();
    jobspec::canonicalize(&mut job, bounds.0);
    jobspec::job_from_api(&job, bounds).map_err(|e| HttpError::bad_request(e.to_string()))
}

/// `PUT|POST /v1/jobs/parse`
pub(crate) async fn parse<C: Cluster>(ctx: &mut Ctx<'_, C>) -> Result<HttpResponse, HttpError> {
    let body = ctx.body(ctx.cluster.job_max_source_size()).await?;
    let request: ParseRequestBody = decode_json(&body)?;
    let hcl = request.job_hcl.unwrap_or_default();
    if hcl.trim().is_empty() {
        return Err(HttpError::bad_request("Job spec is empty"));
    }
    let mut job = jobspec::parse_hcl(&hcl)
        .map_err(|e| HttpError::bad_request(format!("Failed to parse job: {e}")))?;
    if request.canonicalize.unwrap_or(false) {
        jobspec::canonicalize(&mut job, ctx.cluster.job_priority_bounds().0);
    }
    Ok(crate::http::reply::json_response(
        &job,
        ctx.query.pretty,
        None,
    ))
}

/// `GET /v1/job/:id`
pub(crate) async fn get<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
    id: &str,
) -> Result<HttpResponse, HttpError> {
    let view = ctx.view(tables::JOBS).await;
    let job = view
        .job(ctx.query.namespace_or_default(), id)
        .ok_or_else(|| HttpError::not_found("job not found"))?;
    Ok(ctx.read_reply(&jobspec::job_to_api(job), index_of(&*view, tables::JOBS)))
}

/// `GET /v1/job/:id/versions`
pub(crate) async fn versions<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
    id: &str,
) -> Result<HttpResponse, HttpError> {
    let view = ctx.view(tables::JOBS).await;
    let versions = view.job_versions(ctx.query.namespace_or_default(), id);
    if versions.is_empty() {
        return Err(HttpError::not_found("job versions not found"));
    }
    let mut value = json!({
        "Versions": versions.into_iter().map(jobspec::job_to_api).collect::<Vec<_>>(),
        "Diffs": null,
    });
    let meta = ctx.meta(index_of(&*view, tables::JOBS));
    meta.embed(&mut value);
    Ok(crate::http::reply::json_response(
        &value,
        ctx.query.pretty,
        Some(&meta),
    ))
}

/// `GET /v1/job/:id/allocations`
pub(crate) async fn allocations<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
    id: &str,
) -> Result<HttpResponse, HttpError> {
    let view = ctx.view(tables::ALLOCS).await;
    let ns = ctx.query.namespace_or_default();
    let job_type = job_type_of(&*view, ns, id);
    let stubs: Vec<Value> = view
        .allocs_by_job(ns, id)
        .into_iter()
        .map(|a| encode::alloc_list_stub(a, job_type))
        .collect();
    Ok(ctx.read_reply(&Value::Array(stubs), index_of(&*view, tables::ALLOCS)))
}

/// `GET /v1/job/:id/evaluations`
pub(crate) async fn evaluations<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
    id: &str,
) -> Result<HttpResponse, HttpError> {
    let view = ctx.view(tables::EVALS).await;
    let evals: Vec<Value> = view
        .evals_by_job(ctx.query.namespace_or_default(), id)
        .into_iter()
        .map(encode::evaluation)
        .collect();
    Ok(ctx.read_reply(&Value::Array(evals), index_of(&*view, tables::EVALS)))
}

/// `GET /v1/job/:id/summary`
pub(crate) async fn summary<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
    id: &str,
) -> Result<HttpResponse, HttpError> {
    let view = ctx.view(tables::JOBS_ALLOCS).await;
    let summary = view
        .job_summary(ctx.query.namespace_or_default(), id)
        .ok_or_else(|| HttpError::not_found("job not found"))?;
    Ok(ctx.read_reply(
        &encode::job_summary(&summary),
        index_of(&*view, tables::JOBS_ALLOCS),
    ))
}

/// `PUT|POST /v1/job/:id/plan`
pub(crate) async fn plan<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
    id: &str,
) -> Result<HttpResponse, HttpError> {
    let body = ctx.body(ctx.cluster.job_max_source_size()).await?;
    let request: JobRequestBody = decode_json(&body)?;
    let job = api_job_to_internal(ctx, &request, Some(id))?;
    let reply = ctx.cluster.plan_job(job).await?;
    let mut value = encode::plan_response(id, &reply);
    // Nomad computes the diff only when asked; otherwise `Diff` is null.
    if request.diff != Some(true) {
        value["Diff"] = Value::Null;
    }
    Ok(write_response(&value, ctx.query.pretty, reply.index))
}

/// `PUT|POST /v1/job/:id/evaluate`; the optional body (`EvalOptions`) is read and ignored.
pub(crate) async fn evaluate<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
    id: &str,
) -> Result<HttpResponse, HttpError> {
    let body = ctx.body(ctx.limits.body_bytes_max).await?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        decode_json::<Value>(&body)?;
    }
    let ns = ctx.query.namespace_or_default().to_string();
    let reply = ctx.cluster.evaluate_job(&ns, id).await?;
    let job_modify_index = ctx
        .cluster
        .view()
        .job(&ns, id)
        .map_or(0, |j| j.job_modify_index);
    let mut value = json!({
        "EvalID": reply.eval_id,
        "EvalCreateIndex": reply.eval_create_index,
        "JobModifyIndex": job_modify_index,
        "Warnings": "",
    });
    ctx.meta(reply.index).embed(&mut value);
    Ok(write_response(&value, ctx.query.pretty, reply.index))
}

/// `DELETE /v1/job/:id` (`purge=true` removes the job).
pub(crate) async fn deregister<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
    id: &str,
) -> Result<HttpResponse, HttpError> {
    let purge = ctx.query.bool_param("purge")?;
    let ns = ctx.query.namespace_or_default().to_string();
    let reply = match ctx.cluster.deregister_job(&ns, id, purge).await {
        Ok(reply) => reply,
        // Nomad answers a deregistration of an unknown job with an empty success.
        Err(EngineError::NotFound { .. }) => Default::default(),
        Err(e) => return Err(e.into()),
    };
    let mut value = json!({
        "EvalID": reply.eval_id,
        "EvalCreateIndex": reply.eval_create_index,
        "JobModifyIndex": reply.index,
        "VolumeEvalID": "",
        "VolumeEvalIndex": 0,
    });
    ctx.meta(reply.index).embed(&mut value);
    Ok(write_response(&value, ctx.query.pretty, reply.index))
}
