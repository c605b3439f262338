//! Forwarding to the leader: a follower hands writes and default-consistency reads to the
//! leader over the server protocol and relays the answer; `stale` reads and the agent's own
//! endpoints are answered where they arrive.

use std::time::Duration;

use bytes::Bytes;
use engine::server_proto::{ForwardedHttp, ForwardedHttpReply, ServerRequest, ServerResponse};
use engine::Cluster;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH, HOST};
use hyper::{Method, Request, Response, StatusCode};

use super::body::read_body;
use super::query::Query;
use super::reply::{HttpError, HttpResponse};
use super::HttpLimits;

/// Time a forwarded request may take beyond its own blocking wait.
const FORWARD_SLACK: Duration = Duration::from_secs(30);

/// Endpoints every server answers itself: about the agent, or about Raft as it sees it.
fn answered_locally(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/v1/") else {
        return true;
    };
    rest.starts_with("agent/")
        || matches!(
            rest,
            "status/leader"
                | "status/peers"
                | "regions"
                | "jobs/parse"
                | "operator/raft/configuration"
        )
}

/// Reports whether this request must be served by the leader rather than here.
pub(crate) fn must_forward<C: Cluster>(
    cluster: &C,
    method: &Method,
    path: &str,
    query: &Query,
) -> bool {
    if answered_locally(path) || cluster.is_leader() {
        return false;
    }
    !(query.stale && *method == Method::GET)
}

/// Sends the request to the leader and relays its answer; 500 "No cluster leader" when there
/// is none, as Nomad answers.
pub(crate) async fn to_leader<C: Cluster>(
    cluster: &C,
    limits: &HttpLimits,
    query: &Query,
    req: Request<Incoming>,
) -> HttpResponse {
    let status = cluster.status();
    if !status.known_leader || status.leader_rpc_addr.is_empty() {
        return HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "No cluster leader")
            .into_response();
    }
    let method = req.method().to_string();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string());
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter(|(name, _)| **name != HOST && **name != CONTENT_LENGTH)
        .filter_map(|(name, value)| {
            value
                .to_str()
                .ok()
                .map(|v| (name.as_str().to_string(), v.to_string()))
        })
        .collect();
    let body = match read_body(req, limits.body_bytes_max, limits.request_timeout).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    let wait = if query.index > 0 {
        query
            .wait
            .unwrap_or(cluster.max_query_time())
            .min(cluster.max_query_time())
    } else {
        Duration::ZERO
    };
    let request = ServerRequest::Http(ForwardedHttp {
        method,
        path_and_query,
        headers,
        body: body.to_vec(),
    });
    let answer = crate::peer::local_pool()
        .call(&status.leader_rpc_addr, &request, wait + FORWARD_SLACK)
        .await;
    match answer {
        Ok(ServerResponse::Http(reply)) => reply_to_response(reply),
        Ok(ServerResponse::Error(e)) => {
            HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, e).into_response()
        }
        Ok(other) => HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("leader answered with {other:?}"),
        )
        .into_response(),
        Err(e) => HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("forwarding to the leader failed: {e}"),
        )
        .into_response(),
    }
}

fn reply_to_response(reply: ForwardedHttpReply) -> HttpResponse {
    let mut response = Response::new(http_body_util::Full::new(Bytes::from(reply.body)));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in reply.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(n, v);
        }
    }
    response
}

/// Serves a request another server forwarded here, never forwarding it again.
pub async fn serve_forwarded<C: Cluster>(
    cluster: &C,
    limits: &HttpLimits,
    req: ForwardedHttp,
) -> ForwardedHttpReply {
    let method = Method::from_bytes(req.method.as_bytes()).unwrap_or(Method::GET);
    let response =
        super::router::handle_buffered(cluster, limits, method, &req.path_and_query, req.body)
            .await;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter(|(name, _)| **name != CONTENT_LENGTH)
        .filter_map(|(n, v)| {
            v.to_str()
                .ok()
                .map(|v| (n.as_str().to_string(), v.to_string()))
        })
        .collect();
    let body = match response.into_body().collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(never) => match never {},
    };
    ForwardedHttpReply {
        status,
        headers,
        body,
    }
}
