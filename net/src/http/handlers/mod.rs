//! Endpoint handlers and the per-request context they share.

pub(crate) mod agent;
pub(crate) mod allocs;
pub(crate) mod evals;
pub(crate) mod jobs;
pub(crate) mod nodes;
pub(crate) mod operator;
pub(crate) mod templates;

use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use engine::api::{ReadView, Table};
use engine::Cluster;
use hyper::body::Incoming;
use hyper::{Method, Request};
use serde_json::Value;

use super::body::read_body;
use super::filter::Filter;
use super::paginate::paginate;
use super::query::Query;
use super::reply::{json_response, json_response_with, HttpError, HttpResponse, QueryMeta};
use super::HttpLimits;

/// One request as the handlers see it.
pub(crate) struct Ctx<'a, C: Cluster> {
    pub cluster: &'a C,
    pub limits: &'a HttpLimits,
    pub method: Method,
    pub query: Query,
    body: BodySource,
}

/// Where a request's body comes from.
pub(crate) enum BodySource {
    /// Still on the socket.
    Incoming(Box<Request<Incoming>>),
    /// Already read (a request forwarded by another server).
    Buffered(Bytes),
    /// Already handed out.
    Taken,
}

/// Bytes set aside per item when a list answer is encoded (a job stub is ~640 bytes); a
/// larger answer still grows as it must.
const LIST_ITEM_BYTES_HINT: usize = 512;

impl<'a, C: Cluster> Ctx<'a, C> {
    pub(crate) fn new(
        cluster: &'a C,
        limits: &'a HttpLimits,
        request: Request<Incoming>,
        query: Query,
    ) -> Ctx<'a, C> {
        Ctx {
            cluster,
            limits,
            method: request.method().clone(),
            query,
            body: BodySource::Incoming(Box::new(request)),
        }
    }

    /// A context for a request whose body was already read.
    pub(crate) fn buffered(
        cluster: &'a C,
        limits: &'a HttpLimits,
        method: Method,
        body: Bytes,
        query: Query,
    ) -> Ctx<'a, C> {
        Ctx {
            cluster,
            limits,
            method,
            query,
            body: BodySource::Buffered(body),
        }
    }

    /// Reads the request body, at most `max_bytes` (and never more than the server limit).
    pub(crate) async fn body(&mut self, max_bytes: usize) -> Result<Bytes, HttpError> {
        let request = match std::mem::replace(&mut self.body, BodySource::Taken) {
            BodySource::Incoming(request) => request,
            BodySource::Buffered(bytes) => {
                let max = max_bytes.min(self.limits.body_bytes_max);
                if bytes.len() > max {
                    return Err(HttpError::new(
                        hyper::StatusCode::PAYLOAD_TOO_LARGE,
                        format!("request body exceeds {max} bytes"),
                    ));
                }
                return Ok(bytes);
            }
            BodySource::Taken => return Ok(Bytes::new()),
        };
        read_body(
            *request,
            max_bytes.min(self.limits.body_bytes_max),
            self.limits.request_timeout,
        )
        .await
    }

    /// Returns the view a read should answer from. With `index`, blocks until one of `tables`
    /// changed past it (Nomad's per-table indexes) or the wait ends.
    pub(crate) async fn view(&self, tables: &[Table]) -> Rc<C::View> {
        if self.query.index == 0 {
            return self.cluster.view();
        }
        let max = self.cluster.max_query_time();
        let wait = match self.query.wait {
            Some(w) if !w.is_zero() => w.min(max),
            _ => max,
        };
        let deadline = std::time::Instant::now() + wait + jitter(wait / 16);
        let mut seen = self.query.index;
        loop {
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            let view = self.cluster.wait_for_index(seen, remaining).await;
            if index_of(&*view, tables) > self.query.index || remaining.is_zero() {
                return view;
            }
            // Something else changed: wait past it for the tables asked about.
            seen = seen.max(sched::StateView::index(&*view));
        }
    }

    /// Returns the query meta for data at `index`.
    pub(crate) fn meta(&self, index: u64) -> QueryMeta {
        QueryMeta::new(index, &self.cluster.status())
    }

    /// Answers a single read object with query-meta headers.
    pub(crate) fn read_reply(&self, value: &Value, index: u64) -> HttpResponse {
        json_response(value, self.query.pretty, Some(&self.meta(index)))
    }

    /// Like `list_reply`, for items that encode themselves: without a `filter` they are
    /// paginated and encoded directly, never becoming `Value` trees.
    pub(crate) fn list_reply_typed<T: serde::Serialize>(
        &self,
        mut items: Vec<(String, T)>,
        index: u64,
    ) -> Result<HttpResponse, HttpError> {
        if !self.query.filter.is_empty() {
            let values = items
                .into_iter()
                .map(|(token, item)| {
                    serde_json::to_value(&item)
                        .map(|v| (token, v))
                        .map_err(|e| {
                            HttpError::new(hyper::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            return self.list_reply(values, index);
        }
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let (page, next) = paginate(
            items,
            self.query.per_page,
            &self.query.next_token,
            self.query.reverse,
        );
        let meta = self.meta(index);
        // Sized for the list up front: growing a multi-megabyte answer by doubling copies it
        // again at every step.
        let size_hint = page.len().saturating_mul(LIST_ITEM_BYTES_HINT);
        Ok(json_response_with(
            &page,
            self.query.pretty,
            Some(&meta),
            next.as_deref(),
            size_hint,
        ))
    }

    /// Answers a list read: applies `filter`, then pagination, then adds query-meta headers.
    /// `items` are (pagination token, encoded object), in token order.
    pub(crate) fn list_reply(
        &self,
        items: Vec<(String, Value)>,
        index: u64,
    ) -> Result<HttpResponse, HttpError> {
        let mut items = if self.query.filter.is_empty() {
            items
        } else {
            let filter = Filter::parse(&self.query.filter)?;
            items
                .into_iter()
                .filter(|(_, v)| filter.matches(v))
                .collect()
        };
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let (page, next) = paginate(
            items,
            self.query.per_page,
            &self.query.next_token,
            self.query.reverse,
        );
        let meta = self.meta(index);
        let size_hint = page.len().saturating_mul(LIST_ITEM_BYTES_HINT);
        Ok(json_response_with(
            &Value::Array(page),
            self.query.pretty,
            Some(&meta),
            next.as_deref(),
            size_hint,
        ))
    }
}

/// Spreads wake-ups of many blocking queries with the same deadline, as Nomad does.
fn jitter(max: Duration) -> Duration {
    let max_ns = max.as_nanos() as u64;
    if max_ns == 0 {
        return Duration::ZERO;
    }
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_nanos(u64::from(seed) % max_ns)
}

/// Returns the job type name of an allocation's job, or "" when the job is gone.
pub(crate) fn job_type_of<V: ReadView>(view: &V, namespace: &str, job_id: &str) -> &'static str {
    view.job(namespace, job_id)
        .map_or("", |j| j.job_type.as_str())
}

/// Token for lists keyed by create index and ID (allocations, evaluations), or by ID alone
/// when a prefix is given, as Nomad's paginator does.
pub(crate) fn index_token(query: &Query, create_index: u64, id: &str) -> String {
    if query.prefix.is_empty() {
        format!("{create_index:020}.{id}")
    } else {
        id.to_string()
    }
}

/// The table sets the read endpoints watch.
pub(crate) mod tables {
    use engine::api::Table;

    pub(crate) const JOBS: &[Table] = &[Table::Jobs];
    pub(crate) const NODES: &[Table] = &[Table::Nodes];
    pub(crate) const ALLOCS: &[Table] = &[Table::Allocs];
    pub(crate) const EVALS: &[Table] = &[Table::Evals];
    pub(crate) const JOBS_ALLOCS: &[Table] = &[Table::Jobs, Table::Allocs];
}

/// Returns the newest change to any of `tables`: the `X-Nomad-Index` of a read.
pub(crate) fn index_of<V: ReadView + ?Sized>(view: &V, tables: &[Table]) -> u64 {
    tables
        .iter()
        .map(|t| view.table_index(*t))
        .max()
        .unwrap_or(0)
}
