//! Evaluation endpoints: list, read, allocations of an evaluation.

use super::{index_of, tables};
use engine::api::ReadView;
use engine::Cluster;
use serde_json::Value;

use super::{index_token, job_type_of, Ctx};
use crate::http::encode;
use crate::http::reply::{HttpError, HttpResponse};

/// `GET /v1/evaluations` (`prefix`, `status`, `job`, `filter`, pagination).
pub(crate) async fn list<C: Cluster>(ctx: &mut Ctx<'_, C>) -> Result<HttpResponse, HttpError> {
    let status = ctx.query.get("status").unwrap_or("").to_string();
    let job = ctx.query.get("job").unwrap_or("").to_string();
    if !ctx.query.filter.is_empty() && (!status.is_empty() || !job.is_empty()) {
        return Err(HttpError::bad_request(
            "Filter expression cannot be used with other filter parameters",
        ));
    }
    let view = ctx.view(tables::EVALS).await;
    let items = view
        .evals()
        .into_iter()
        .filter(|e| ctx.query.namespace_matches(&e.namespace))
        .filter(|e| e.id.starts_with(&ctx.query.prefix))
        .filter(|e| status.is_empty() || e.status.as_str() == status)
        .filter(|e| job.is_empty() || e.job_id == job)
        .map(|e| {
            (
                index_token(&ctx.query, e.create_index, &e.id),
                encode::evaluation(e),
            )
        })
        .collect();
    ctx.list_reply(items, index_of(&*view, tables::EVALS))
}

/// `GET /v1/evaluation/:id`
pub(crate) async fn get<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
    id: &str,
) -> Result<HttpResponse, HttpError> {
    let view = ctx.view(tables::EVALS).await;
    let eval = view
        .eval(id)
        .ok_or_else(|| HttpError::not_found("eval not found"))?;
    Ok(ctx.read_reply(&encode::evaluation(eval), index_of(&*view, tables::EVALS)))
}

/// `GET /v1/evaluation/:id/allocations`
pub(crate) async fn allocations<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
    id: &str,
) -> Result<HttpResponse, HttpError> {
    let view = ctx.view(tables::ALLOCS).await;
    let stubs: Vec<Value> = view
        .allocs_by_eval(id)
        .into_iter()
        .map(|a| encode::alloc_list_stub(a, job_type_of(&*view, &a.namespace, &a.job_id)))
        .collect();
    Ok(ctx.read_reply(&Value::Array(stubs), index_of(&*view, tables::ALLOCS)))
}
