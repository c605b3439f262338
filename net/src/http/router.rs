//! Routing: maps a method and a `/v1/...` path to a handler, Nomad's way.
//!
//! Job routes match by suffix (`/allocations`, `/plan`, ...) with the rest as the job ID,
//! because job IDs may contain `/` (periodic and dispatched children). Paths are
//! percent-decoded before matching, so `%2F` in an ID works like `/`.

use engine::Cluster;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, LOCATION};
use hyper::{Method, Request, StatusCode};

use super::handlers::{agent, allocs, evals, jobs, nodes, operator, templates, Ctx};
use super::query::{percent_decode, Query};
use super::reply::{HttpError, HttpResponse};
use super::HttpLimits;

/// Answers one request. Never fails: every error becomes a response.
pub(crate) async fn handle<C: Cluster>(
    cluster: &C,
    limits: &HttpLimits,
    req: Request<Incoming>,
) -> HttpResponse {
    let path = percent_decode(req.uri().path());
    let query = match Query::parse(req.uri().query().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    // This server answers only for its own region; Nomad would forward, drover has no
    // federation, so a foreign region gets Nomad's error for an unreachable one.
    if !query.region.is_empty() && query.region != cluster.status().region {
        return HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "No path to region")
            .into_response();
    }
    if super::forward::must_forward(cluster, req.method(), &path, &query) {
        return super::forward::to_leader(cluster, limits, &query, req).await;
    }
    let mut ctx = Ctx::new(cluster, limits, req, query);
    match route(&mut ctx, &path).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// Answers a request whose body was already read (one forwarded by another server).
pub(crate) async fn handle_buffered<C: Cluster>(
    cluster: &C,
    limits: &HttpLimits,
    method: Method,
    path_and_query: &str,
    body: Vec<u8>,
) -> HttpResponse {
    let (raw_path, raw_query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let path = percent_decode(raw_path);
    let query = match Query::parse(raw_query) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    let mut ctx = Ctx::buffered(cluster, limits, method, body.into(), query);
    match route(&mut ctx, &path).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// Fails with 405 unless the request uses one of `allowed`.
fn allow(method: &Method, allowed: &[Method]) -> Result<(), HttpError> {
    if allowed.contains(method) {
        Ok(())
    } else {
        Err(HttpError::method_not_allowed())
    }
}

const READ: &[Method] = &[Method::GET];
const WRITE: &[Method] = &[Method::PUT, Method::POST];

async fn route<C: Cluster>(ctx: &mut Ctx<'_, C>, path: &str) -> Result<HttpResponse, HttpError> {
    let method = ctx.method.clone();
    if path == "/" {
        let mut response = HttpError::new(StatusCode::TEMPORARY_REDIRECT, "").into_response();
        response
            .headers_mut()
            .insert(LOCATION, HeaderValue::from_static("/ui/"));
        return Ok(response);
    }
    let Some(rest) = path.strip_prefix("/v1/") else {
        return Err(not_found());
    };
    match rest {
        "jobs" => match method {
            Method::GET => jobs::list(ctx).await,
            Method::PUT | Method::POST => jobs::register(ctx, None).await,
            _ => Err(HttpError::method_not_allowed()),
        },
        "jobs/parse" => {
            allow(&method, WRITE)?;
            jobs::parse(ctx).await
        }
        "nodes" => {
            allow(&method, READ)?;
            nodes::list(ctx).await
        }
        "allocations" => {
            allow(&method, READ)?;
            allocs::list(ctx).await
        }
        "evaluations" => {
            allow(&method, READ)?;
            evals::list(ctx).await
        }
        "status/leader" => {
            allow(&method, READ)?;
            agent::leader(ctx)
        }
        "status/peers" => {
            allow(&method, READ)?;
            agent::peers(ctx)
        }
        "regions" => {
            allow(&method, READ)?;
            agent::regions(ctx)
        }
        "agent/self" => {
            allow(&method, READ)?;
            agent::agent_self(ctx)
        }
        "agent/members" => {
            allow(&method, READ)?;
            agent::members(ctx)
        }
        "agent/health" => {
            allow(&method, READ)?;
            agent::health(ctx)
        }
        "operator/scheduler/configuration" => match method {
            Method::GET => operator::get_scheduler(ctx),
            Method::PUT | Method::POST => operator::set_scheduler(ctx).await,
            _ => Err(HttpError::method_not_allowed()),
        },
        "operator/raft/write-test" => {
            allow(&method, WRITE)?;
            operator::raft_write_test(ctx).await
        }
        "operator/raft/configuration" => {
            allow(&method, READ)?;
            agent::raft_configuration(ctx)
        }
        "agent/join" => {
            allow(&method, WRITE)?;
            agent::join(ctx).await
        }
        "agent/force-leave" => {
            allow(&method, WRITE)?;
            agent::force_leave(ctx).await
        }
        "operator/raft/peer" => {
            allow(&method, &[Method::DELETE])?;
            operator::remove_raft_peer(ctx).await
        }
        "operator/autopilot/configuration" => match method {
            Method::GET => operator::get_autopilot(ctx),
            Method::PUT | Method::POST => operator::set_autopilot(ctx).await,
            _ => Err(HttpError::method_not_allowed()),
        },
        "operator/autopilot/health" => {
            allow(&method, READ)?;
            operator::autopilot_health(ctx)
        }
        _ => {
            if let Some(job) = rest.strip_prefix("job/") {
                route_job(ctx, &method, job).await
            } else if let Some(node) = rest.strip_prefix("node/") {
                match node.split_once('/') {
                    None => {
                        allow(&method, READ)?;
                        nodes::get(ctx, node).await
                    }
                    Some((id, "allocations")) => {
                        allow(&method, READ)?;
                        nodes::allocations(ctx, id).await
                    }
                    Some((id, "eligibility")) => {
                        allow(&method, WRITE)?;
                        nodes::eligibility(ctx, id).await
                    }
                    Some((id, "drain")) => {
                        allow(&method, WRITE)?;
                        nodes::drain(ctx, id).await
                    }
                    Some(_) => Err(not_found()),
                }
            } else if let Some(id) = rest.strip_prefix("allocation/") {
                if id.contains('/') {
                    return Err(not_found());
                }
                allow(&method, READ)?;
                allocs::get(ctx, id).await
            } else if let Some(eval) = rest.strip_prefix("evaluation/") {
                match eval.split_once('/') {
                    None => {
                        allow(&method, READ)?;
                        evals::get(ctx, eval).await
                    }
                    Some((id, "allocations")) => {
                        allow(&method, READ)?;
                        evals::allocations(ctx, id).await
                    }
                    Some(_) => Err(not_found()),
                }
            } else {
                Err(not_found())
            }
        }
    }
}

async fn route_job<C: Cluster>(
    ctx: &mut Ctx<'_, C>,
    method: &Method,
    rest: &str,
) -> Result<HttpResponse, HttpError> {
    let suffixes = [
        "/allocations",
        "/evaluations",
        "/versions",
        "/summary",
        "/plan",
        "/evaluate",
        "/periodic/force",
        "/dispatch",
    ];
    for suffix in suffixes {
        let Some(id) = rest.strip_suffix(suffix) else {
            continue;
        };
        if id.is_empty() {
            return Err(not_found());
        }
        return match suffix {
            "/allocations" => {
                allow(method, READ)?;
                jobs::allocations(ctx, id).await
            }
            "/evaluations" => {
                allow(method, READ)?;
                jobs::evaluations(ctx, id).await
            }
            "/versions" => {
                allow(method, READ)?;
                jobs::versions(ctx, id).await
            }
            "/summary" => {
                allow(method, READ)?;
                jobs::summary(ctx, id).await
            }
            "/plan" => {
                allow(method, WRITE)?;
                jobs::plan(ctx, id).await
            }
            "/periodic/force" => {
                allow(method, WRITE)?;
                templates::periodic_force(ctx, id).await
            }
            "/dispatch" => {
                allow(method, WRITE)?;
                templates::dispatch(ctx, id).await
            }
            _ => {
                allow(method, WRITE)?;
                jobs::evaluate(ctx, id).await
            }
        };
    }
    if rest.is_empty() {
        return Err(not_found());
    }
    match *method {
        Method::GET => jobs::get(ctx, rest).await,
        Method::PUT | Method::POST => jobs::register(ctx, Some(rest)).await,
        Method::DELETE => jobs::deregister(ctx, rest).await,
        _ => Err(HttpError::method_not_allowed()),
    }
}

/// Nomad answers unknown paths with 404 and an empty body.
fn not_found() -> HttpError {
    HttpError::not_found("")
}
