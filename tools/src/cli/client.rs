//! Blocking HTTP client for the `/v1` API: address, token, region and namespace on every call.
//!
//! Errors keep the HTTP status and the server's plain-text body so commands can print the
//! server's own message, the way Nomad's CLI does.

use std::time::Duration;

use serde_json::Value;

/// Address used when neither a flag nor an environment variable names one.
pub const DEFAULT_ADDRESS: &str = "http://127.0.0.1:4646";

/// Time allowed for opening a connection to the server.
const CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Time allowed for a whole request, including reading the body.
const REQUEST_TIMEOUT_MS: u64 = 60_000;

/// What went wrong while talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a status other than 200.
    #[error("Unexpected response code: {status} ({body})")]
    Status { status: u16, body: String },
    /// The request never got an HTTP answer (refused, timed out, bad address).
    #[error("{reason}")]
    Transport { url: String, reason: String },
    /// The server answered 200 but the body was not the JSON we expected.
    #[error("failed to decode response from {url}: {reason}")]
    Decode { url: String, reason: String },
}

impl ClientError {
    /// Returns the HTTP status when the server answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            ClientError::Transport { .. } | ClientError::Decode { .. } => None,
        }
    }
}

/// Connection settings shared by every command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientConfig {
    /// Base URL such as `http://127.0.0.1:4646` (a bare `host:port` gets `http://`).
    pub address: String,
    /// ACL secret sent as `X-Nomad-Token`.
    pub token: Option<String>,
    /// Target region, sent as `?region=`.
    pub region: Option<String>,
    /// Target namespace, sent as `?namespace=`.
    pub namespace: Option<String>,
}

/// HTTP client bound to one server address.
pub struct ApiClient {
    base: String,
    config: ClientConfig,
    agent: ureq::Agent,
}

impl ApiClient {
    /// Builds a client; the address is normalised (scheme added, trailing `/` removed).
    pub fn new(config: ClientConfig) -> ApiClient {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_millis(CONNECT_TIMEOUT_MS))
            .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
            .redirects(0)
            .build();
        ApiClient {
            base: normalize_address(&config.address),
            config,
            agent,
        }
    }

    /// Returns the base URL requests go to.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends `GET path?query` and decodes the JSON body.
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, ClientError> {
        self.send("GET", path, query, None)
    }

    /// Sends `PUT path?query` with a JSON body and decodes the JSON answer (empty body = null).
    pub fn put(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: &Value,
    ) -> Result<Value, ClientError> {
        self.send("PUT", path, query, Some(body))
    }

    /// Sends `DELETE path?query` and decodes the JSON answer (empty body = null).
    pub fn delete(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, ClientError> {
        self.send("DELETE", path, query, None)
    }

    /// Returns the full URL for `path` with the query plus region and namespace parameters.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut params: Vec<(&str, &str)> = query.to_vec();
        if let Some(region) = self.config.region.as_deref().filter(|r| !r.is_empty()) {
            params.push(("region", region));
        }
        if let Some(ns) = self.config.namespace.as_deref().filter(|n| !n.is_empty()) {
            params.push(("namespace", ns));
        }
        let mut url = format!("{}{}", self.base, path);
        for (i, (key, value)) in params.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&escape_component(key));
            url.push('=');
            url.push_str(&escape_component(value));
        }
        url
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let url = self.url(path, query);
        let mut request = self.agent.request(method, &url);
        if let Some(token) = self.config.token.as_deref().filter(|t| !t.is_empty()) {
            request = request.set("X-Nomad-Token", token);
        }
        let result = match body {
            Some(body) => request
                .set("Content-Type", "application/json")
                .send_string(&body.to_string()),
            None => request.call(),
        };
        let response = match result {
            Ok(response) => response,
            Err(ureq::Error::Status(status, response)) => {
                let body = response.into_string().unwrap_or_default();
                return Err(ClientError::Status {
                    status,
                    body: body.trim().to_string(),
                });
            }
            Err(ureq::Error::Transport(t)) => {
                return Err(ClientError::Transport {
                    url,
                    reason: t.to_string(),
                })
            }
        };
        let text = response.into_string().map_err(|e| ClientError::Decode {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| ClientError::Decode {
            url,
            reason: e.to_string(),
        })
    }
}

/// Adds `http://` to a bare `host:port` and strips trailing slashes.
pub fn normalize_address(address: &str) -> String {
    let trimmed = address.trim().trim_end_matches('/');
    let trimmed = if trimmed.is_empty() {
        DEFAULT_ADDRESS
    } else {
        trimmed
    };
    if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("http://{trimmed}")
    }
}

/// Percent-encodes everything except RFC 3986 unreserved characters.
///
/// Used for query values and for ids placed in paths: job ids may contain `/` (dispatched and
/// periodic children) and must arrive as one segment.
pub fn escape_component(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_gets_scheme_and_loses_trailing_slash() {
        assert_eq!(normalize_address("10.0.0.1:4646/"), "http://10.0.0.1:4646");
        assert_eq!(normalize_address("https://a:1"), "https://a:1");
        assert_eq!(normalize_address(""), DEFAULT_ADDRESS);
    }

    #[test]
    fn url_carries_region_namespace_and_escapes() {
        let client = ApiClient::new(ClientConfig {
            address: "127.0.0.1:4646".into(),
            token: None,
            region: Some("eu".into()),
            namespace: Some("team a".into()),
        });
        let url = client.url(
            &format!("/v1/job/{}", escape_component("p/dispatch-1")),
            &[("purge", "true")],
        );
        assert_eq!(
            url,
            "http://127.0.0.1:4646/v1/job/p%2Fdispatch-1?purge=true&region=eu&namespace=team%20a"
        );
    }
}
