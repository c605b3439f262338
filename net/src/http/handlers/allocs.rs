//! Allocation endpoints: list and read.

use super::{index_of, tables};
use engine::api::ReadView;
use engine::Cluster;
use serde_json::Value;

use super::nodes::{alloc_job, full_alloc};
use super::{index_token, job_type_of, Ctx};
use crate::http::encode;
use crate::http::reply::{HttpError, HttpResponse};

/// `GET /v1/allocations`
pub(crate) async fn list<C: Cluster>(ctx: &mut Ctx<'_, C>) -> Result<HttpResponse, HttpError> {
    let with_resources = ctx.query.bool_param("resources")?;
    // Task states are included unless `task_states` is given and false.
    let with_task_states =
        ctx.query.get("task_states").is_none() || ctx.query.bool_param("task_states")?;
    let view = ctx.view(tables::ALLOCS).await;
    let items = view
        .allocs()
        .into_iter()
        .filter(|a| ctx.query.namespace_matches(&a.namespace))
        .filter(|a| a.id.starts_with(&ctx.query.prefix))
        .map(|a| {
            let job_type = job_type_of(&*view, &a.namespace, &a.job_id);
            let mut stub = encode::alloc_list_stub(a, job_type);
            if with_resources {
                stub["AllocatedResources"] = encode::allocated_resources(a, alloc_job(&*view, a));
            }
            if !with_task_states {
                stub["TaskStates"] = Value::Null;
            }
            (index_token(&ctx.query, a.create_index, &a.id), stub)
        })
        .collect();
    ctx.list_reply(items, index_of(&*view, tables::ALLOCS))
}

/// `GET /v1/allocation/:id`
pub(crate) async fn get<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
    id: &str,
) -> Result<HttpResponse, HttpError> {
    let view = ctx.view(tables::ALLOCS).await;
    let alloc = view
        .alloc(id)
        .ok_or_else(|| HttpError::not_found("alloc not found"))?;
    Ok(ctx.read_reply(&full_alloc(&*view, alloc), index_of(&*view, tables::ALLOCS)))
}
