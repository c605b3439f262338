//! Building responses: JSON bodies, query-meta headers, and plain-text errors with Nomad's codes.

use bytes::Bytes;
use engine::api::ClusterStatus;
use engine::EngineError;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::Value;

/// The response type every handler produces.
pub(crate) type HttpResponse = Response<Full<Bytes>>;

/// A request that ends in an error status with a plain-text body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HttpError {
    pub status: StatusCode,
    pub message: String,
}

impl HttpError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::NOT_FOUND, message)
    }

    pub(crate) fn method_not_allowed() -> HttpError {
        HttpError::new(StatusCode::METHOD_NOT_ALLOWED, "Invalid method")
    }

    pub(crate) fn too_large() -> HttpError {
        HttpError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
    }

    /// Renders the error as Nomad does: the bare message as `text/plain`.
    pub(crate) fn into_response(self) -> HttpResponse {
        let mut response = Response::new(Full::new(Bytes::from(self.message)));
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

impl From<EngineError> for HttpError {
    fn from(e: EngineError) -> HttpError {
        // Exhaustive on purpose: a new engine error must choose its status here.
        let status = match &e {
            EngineError::Invalid { .. } => StatusCode::BAD_REQUEST,
            EngineError::NotFound { .. } => StatusCode::NOT_FOUND,
            // Nomad reports check-and-set failures as plain errors, hence 500.
            EngineError::Conflict { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            EngineError::NoLeader => StatusCode::INTERNAL_SERVER_ERROR,
            EngineError::NotLeader { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            EngineError::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
            EngineError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            EngineError::PermissionDenied { .. } => StatusCode::FORBIDDEN,
            EngineError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            EngineError::Fatal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &e {
            EngineError::NotFound { kind, .. } => format!("{kind} not found"),
            // Nomad's wording first (clients match on it), then what to change.
            EngineError::PermissionDenied { reason } => format!("Permission denied: {reason}"),
            _ => e.to_string(),
        };
        HttpError::new(status, message)
    }
}

/// Nomad's query meta: where a read stands relative to Raft and the leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct QueryMeta {
    pub index: u64,
    pub known_leader: bool,
    pub last_contact_ms: u64,
}

impl QueryMeta {
    pub(crate) fn new(index: u64, status: &ClusterStatus) -> QueryMeta {
        QueryMeta {
            index,
            known_leader: status.known_leader,
            last_contact_ms: status.last_contact_ms,
        }
    }

    /// Adds the meta fields at the top level of a response object, as Go's embedded structs do.
    pub(crate) fn embed(&self, object: &mut Value) {
        if let Some(map) = object.as_object_mut() {
            map.insert("Index".into(), self.index.into());
            map.insert("LastContact".into(), self.last_contact_ms.into());
            map.insert("KnownLeader".into(), self.known_leader.into());
            map.insert("NextToken".into(), "".into());
        }
    }
}

/// Renders a 200 JSON response, with query-meta headers when `meta` is given.
pub(crate) fn json_response(value: &Value, pretty: bool, meta: Option<&QueryMeta>) -> HttpResponse {
    json_response_with(value, pretty, meta, None, 0)
}

/// Like `json_response`, also setting `X-Nomad-NextToken` when another page exists.
pub(crate) fn json_response_with<T: serde::Serialize + ?Sized>(
    value: &T,
    pretty: bool,
    meta: Option<&QueryMeta>,
    next_token: Option<&str>,
    size_hint: usize,
) -> HttpResponse {
    let mut body = if pretty {
        let mut text = serde_json::to_vec_pretty(value).unwrap_or_default();
        text.push(b'\n');
        text
    } else {
        let mut out = Vec::with_capacity(size_hint);
        match serde_json::to_writer(&mut out, value) {
            Ok(()) => out,
            Err(_) => Vec::new(),
        }
    };
    if body.is_empty() {
        body = b"null".to_vec();
    }
    let mut response = Response::new(Full::new(Bytes::from(body)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(meta) = meta {
        headers.insert("X-Nomad-Index", HeaderValue::from(meta.index));
        headers.insert(
            "X-Nomad-KnownLeader",
            HeaderValue::from_static(if meta.known_leader { "true" } else { "false" }),
        );
        headers.insert(
            "X-Nomad-LastContact",
            HeaderValue::from(meta.last_contact_ms),
        );
    }
    if let Some(token) = next_token {
        if let Ok(v) = HeaderValue::from_str(token) {
            headers.insert("X-Nomad-NextToken", v);
        }
    }
    response
}

/// Renders a write's 200 JSON response with `X-Nomad-Index`.
pub(crate) fn write_response(value: &Value, pretty: bool, index: u64) -> HttpResponse {
    let mut response = json_response(value, pretty, None);
    response
        .headers_mut()
        .insert("X-Nomad-Index", HeaderValue::from(index));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_nomad_statuses() {
        let cases = [
            (EngineError::invalid("Job.ID", "missing"), 400),
            (
                EngineError::NotFound {
                    kind: "job",
                    id: "x".into(),
                },
                404,
            ),
            (
                EngineError::Conflict {
                    message: "Enforcing job modify index 3: x".into(),
                },
                500,
            ),
            (EngineError::NoLeader, 500),
            (EngineError::NotLeader { leader: None }, 500),
            (
                EngineError::Overloaded {
                    what: "plan queue",
                    limit: 3,
                },
                429,
            ),
            (
                EngineError::Timeout {
                    what: "raft",
                    after_ms: 5,
                },
                504,
            ),
            (EngineError::PermissionDenied { reason: "r".into() }, 403),
            (EngineError::ShuttingDown, 503),
            (
                EngineError::Fatal {
                    reason: "disk".into(),
                },
                500,
            ),
        ];
        for (e, code) in cases {
            assert_eq!(HttpError::from(e.clone()).status.as_u16(), code, "{e:?}");
        }
        let e = HttpError::from(EngineError::NotFound {
            kind: "job",
            id: "x".into(),
        });
        assert_eq!(e.message, "job not found");
        let e = HttpError::from(EngineError::NoLeader);
        assert_eq!(e.message, "No cluster leader");
        let e = HttpError::from(EngineError::Conflict {
            message: "Enforcing job modify index 3".into(),
        });
        assert_eq!(e.message, "Enforcing job modify index 3");
    }
}
