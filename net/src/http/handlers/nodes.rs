//! Node endpoints: list, read, allocations.

use super::{index_of, tables};
use engine::api::ReadView;
use engine::Cluster;
use sched::StateView;
use serde_json::Value;

use super::Ctx;
use crate::http::encode;
use crate::http::reply::{HttpError, HttpResponse};
use crate::jobspec;

/// `GET /v1/nodes`
pub(crate) async fn list<C: Cluster>(ctx: &mut Ctx<'_, C>) -> Result<HttpResponse, HttpError> {
    let resources = ctx.query.bool_param("resources")?;
    let os = ctx.query.bool_param("os")?;
    let view = ctx.view(tables::NODES).await;
    let items = view
        .nodes()
        .into_iter()
        .filter(|n| n.id.starts_with(&ctx.query.prefix))
        .map(|n| (n.id.clone(), encode::node_list_stub(n, resources, os)))
        .collect();
    ctx.list_reply(items, index_of(&*view, tables::NODES))
}

/// `GET /v1/node/:id` (full ID only, like Nomad).
pub(crate) async fn get<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
    id: &str,
) -> Result<HttpResponse, HttpError> {
    let view = ctx.view(tables::NODES).await;
    let node = view
        .node(id)
        .ok_or_else(|| HttpError::not_found("node not found"))?;
    Ok(ctx.read_reply(&encode::node(node), index_of(&*view, tables::NODES)))
}

/// `GET /v1/node/:id/allocations`: full allocations, each with its job.
pub(crate) async fn allocations<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
    id: &str,
) -> Result<HttpResponse, HttpError> {
    let view = ctx.view(tables::ALLOCS).await;
    let allocs: Vec<Value> = view
        .allocs_by_node(id)
        .into_iter()
        .map(|a| full_alloc(&*view, a))
        .collect();
    Ok(ctx.read_reply(&Value::Array(allocs), index_of(&*view, tables::ALLOCS)))
}

/// Encodes an allocation with the job version it runs (the current job when that version is
/// no longer stored).
pub(crate) fn full_alloc<V: ReadView>(view: &V, a: &sched::structs::Allocation) -> Value {
    let job = alloc_job(view, a);
    encode::allocation(a, job, job.map(jobspec::job_to_api))
}

/// The job version an allocation runs, or the current version when that one is gone.
pub(crate) fn alloc_job<'v, V: ReadView>(
    view: &'v V,
    a: &sched::structs::Allocation,
) -> Option<&'v sched::structs::Job> {
    let versions = view.job_versions(&a.namespace, &a.job_id);
    versions
        .iter()
        .copied()
        .find(|j| j.version == a.job_version)
        .or_else(|| view.job(&a.namespace, &a.job_id))
}

#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct EligibilityBody {
    eligibility: String,
}

/// `POST|PUT /v1/node/:id/eligibility` with `{"Eligibility": "eligible"|"ineligible"}`.
pub(crate) async fn eligibility<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
    id: &str,
) -> Result<HttpResponse, HttpError> {
    let body = ctx.body(ctx.limits.body_bytes_max).await?;
    let body: EligibilityBody = crate::http::body::decode_json(&body)?;
    let eligible = match body.eligibility.as_str() {
        "eligible" => true,
        "ineligible" => false,
        other => {
            return Err(HttpError::bad_request(format!(
                "invalid scheduling eligibility {other:?}: Eligibility must be \"eligible\" or \"ineligible\""
            )))
        }
    };
    let index = ctx.cluster.update_node_eligibility(id, eligible).await?;
    let value = serde_json::json!({
        "EvalIDs": [], "EvalCreateIndex": 0, "NodeModifyIndex": index, "Index": index,
    });
    Ok(crate::http::reply::write_response(
        &value,
        ctx.query.pretty,
        index,
    ))
}

#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct DrainSpecBody {
    deadline: i64,
    ignore_system_jobs: bool,
}

#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct DrainBody {
    drain_spec: Option<DrainSpecBody>,
    mark_eligible: bool,
}

/// `POST|PUT /v1/node/:id/drain` with `{"DrainSpec": {"Deadline", "IgnoreSystemJobs"} | null,
/// "MarkEligible"}`. A null spec cancels the drain.
pub(crate) async fn drain<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
    id: &str,
) -> Result<HttpResponse, HttpError> {
    let body = ctx.body(ctx.limits.body_bytes_max).await?;
    let body: DrainBody = crate::http::body::decode_json(&body)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    let drain = body.drain_spec.map(|spec| sched::structs::DrainStrategy {
        deadline_ns: spec.deadline,
        ignore_system_jobs: spec.ignore_system_jobs,
        // A negative deadline means "force now"; zero means no deadline.
        force_deadline_unix_ns: if spec.deadline > 0 {
            now + spec.deadline
        } else {
            0
        },
        started_at_unix_ns: now,
    });
    let (eval_ids, index) = ctx
        .cluster
        .update_node_drain(id, drain, body.mark_eligible)
        .await?;
    let create_index = if eval_ids.is_empty() { 0 } else { index };
    let value = serde_json::json!({
        "EvalIDs": eval_ids, "EvalCreateIndex": create_index, "NodeModifyIndex": index, "Index": index,
    });
    Ok(crate::http::reply::write_response(
        &value,
        ctx.query.pretty,
        index,
    ))
}
