//! Endpoints of job templates: `periodic/force` launches a periodic job now, `dispatch`
//! instantiates a parameterized job.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use engine::api::{ReadView, RegisterJob};
use engine::Cluster;
use sched::StateView;
use serde_json::{json, Value};

use super::Ctx;
use crate::http::body::decode_json;
use crate::http::reply::{write_response, HttpError, HttpResponse};
use crate::jobspec::{self, DispatchRequest};

/// `PUT|POST /v1/job/:id/periodic/force`
pub(crate) async fn periodic_force<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
    id: &str,
) -> Result<HttpResponse, HttpError> {
    let body = ctx.body(ctx.limits.body_bytes_max).await?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        decode_json::<Value>(&body)?;
    }
    let ns = ctx.query.namespace_or_default().to_string();
    let reply = ctx.cluster.periodic_force(&ns, id).await?;
    let mut value = json!({
        "EvalID": reply.eval_id,
        "EvalCreateIndex": reply.eval_create_index,
    });
    ctx.meta(reply.index).embed(&mut value);
    Ok(write_response(&value, ctx.query.pretty, reply.index))
}

/// Reads Nomad's `JobDispatchRequest` (`Payload` base64, `Meta`, `IdempotencyToken`).
fn dispatch_request(body: &[u8]) -> Result<DispatchRequest, HttpError> {
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        decode_json(body)?
    };
    let Value::Object(map) = value else {
        return Err(HttpError::bad_request("dispatch request must be an object"));
    };
    let get = |key: &str| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    };
    let payload = match get("Payload") {
        None => Vec::new(),
        Some(Value::String(s)) => jobspec::decode_payload(s)
            .map_err(|e| HttpError::bad_request(format!("Payload: {e}")))?,
        Some(_) => return Err(HttpError::bad_request("Payload: expected base64 text")),
    };
    let mut meta = BTreeMap::new();
    match get("Meta") {
        None => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let Value::String(v) = v else {
                    return Err(HttpError::bad_request(format!(
                        "Meta.{k}: expected a string"
                    )));
                };
                meta.insert(k.clone(), v.clone());
            }
        }
        Some(_) => return Err(HttpError::bad_request("Meta: expected a map of strings")),
    }
    let idempotency_token = match get("IdempotencyToken") {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    Ok(DispatchRequest {
        payload,
        meta,
        idempotency_token,
    })
}

/// `PUT|POST /v1/job/:id/dispatch`
pub(crate) async fn dispatch<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
    id: &str,
) -> Result<HttpResponse, HttpError> {
    let body = ctx.body(ctx.cluster.job_max_source_size()).await?;
    let request = dispatch_request(&body)?;
    let ns = ctx.query.namespace_or_default().to_string();
    let view = ctx.cluster.view();
    let parent = view
        .job(&ns, id)
        .ok_or_else(|| HttpError::not_found("job not found"))?
        .clone();
    if let Some(existing) =
        jobspec::dispatched_with_token(view.jobs(), &parent, &request.idempotency_token)
    {
        let mut value = json!({
            "DispatchedJobID": existing.id,
            "EvalID": "",
            "EvalCreateIndex": 0,
            "JobCreateIndex": existing.create_index,
        });
        let index = view.index();
        ctx.meta(index).embed(&mut value);
        return Ok(write_response(&value, ctx.query.pretty, index));
    }
    let now_unix_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let child = jobspec::dispatch_child(&parent, &request, now_unix_ns, &suffix).map_err(|e| {
        // Nomad answers with the bare message; each one names the offending key.
        let message = e
            .errors
            .first()
            .map_or(e.to_string(), |f| f.message.clone());
        HttpError::bad_request(message)
    })?;
    let child_id = child.id.clone();
    let reply = ctx
        .cluster
        .register_job(RegisterJob {
            job: child,
            enforce_index: Some(0),
            eval_priority: None,
        })
        .await?;
    let mut value = json!({
        "DispatchedJobID": child_id,
        "EvalID": reply.eval_id,
        "EvalCreateIndex": reply.eval_create_index,
        "JobCreateIndex": reply.job_modify_index,
    });
    ctx.meta(reply.index).embed(&mut value);
    Ok(write_response(&value, ctx.query.pretty, reply.index))
}
