//! HTTP helpers shared by the API test binaries: one request, its status, the headers the
//! tests look at, and the body.
// Each test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::Value;

pub struct Reply {
    pub status: u16,
    pub body: String,
    pub index: Option<u64>,
    pub known_leader: Option<String>,
    pub content_type: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

pub fn send(method: &str, url: &str, body: Option<&str>) -> Reply {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .build();
    let req = agent.request(method, url);
    let result = match body {
        Some(b) => req.send_string(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = resp.status();
    let index = resp.header("X-Nomad-Index").and_then(|v| v.parse().ok());
    let known_leader = resp.header("X-Nomad-KnownLeader").map(str::to_string);
    let content_type = resp.header("Content-Type").unwrap_or("").to_string();
    let body = resp.into_string().expect("body");
    Reply {
        status,
        body,
        index,
        known_leader,
        content_type,
    }
}
