//! End-to-end tests of job registration, parsing and planning through the HTTP API.

use std::time::Duration;

use net::http::testing::{sample_state, FakeCluster, TestServer};
use net::http::HttpLimits;
use serde_json::{json, Value};

fn server() -> TestServer {
    TestServer::start(|| FakeCluster::new(sample_state()), HttpLimits::default())
}

fn send(method: &str, url: &str, body: Option<&str>) -> (u16, String, Option<u64>) {
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
    (status, resp.into_string().expect("body"), index)
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn minimal_job(id: &str) -> Value {
    json!({"ID": id, "Datacenters": ["dc1"], "TaskGroups": [{"Name": "cache", "Tasks": [
        {"Name": "redis", "Driver": "docker", "Config": {"image": "redis:7"}}]}]})
}

#[test]
fn register_then_read_back() {
    let s = server();
    let body = json!({"Job": minimal_job("example")}).to_string();
    let (status, text, index) = send("PUT", &s.url("/v1/jobs"), Some(&body));
    assert_eq!(status, 200, "{text}");
    let reply = json_of(&text);
    for field in [
        "EvalID",
        "EvalCreateIndex",
        "JobModifyIndex",
        "Warnings",
        "Index",
        "KnownLeader",
    ] {
        assert!(reply.get(field).is_some(), "missing {field}: {reply}");
    }
    assert_eq!(index, Some(11));
    assert_eq!(reply["JobModifyIndex"], 11);

    let (status, text, _) = send("GET", &s.url("/v1/job/example"), None);
    assert_eq!(status, 200, "{text}");
    let job = json_of(&text);
    assert_eq!(job["ID"], "example");
    assert_eq!(job["Namespace"], "default");
    assert_eq!(job["Region"], "global");

    let (_, text, _) = send("GET", &s.url("/v1/jobs"), None);
    let ids: Vec<Value> = json_of(&text)
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["ID"].clone())
        .collect();
    assert!(ids.contains(&json!("example")), "{ids:?}");

    // The same job through /v1/job/:id, with python-nomad's POST.
    let (status, text, _) = send("POST", &s.url("/v1/job/example"), Some(&body));
    assert_eq!(status, 200, "{text}");
}

#[test]
fn check_and_set_failures_are_500_with_nomads_wording() {
    let s = server();
    let body = json!({"Job": minimal_job("example"), "EnforceIndex": true, "JobModifyIndex": 99});
    let (status, text, _) = send("PUT", &s.url("/v1/jobs"), Some(&body.to_string()));
    assert_eq!(status, 500);
    assert!(text.starts_with("Enforcing job modify index 99"), "{text}");
    let body = json!({"Job": minimal_job("example"), "EnforceIndex": true, "JobModifyIndex": 0});
    let (status, text, _) = send("PUT", &s.url("/v1/jobs"), Some(&body.to_string()));
    assert_eq!(status, 200, "{text}");
}

#[test]
fn namespace_query_parameter_wins() {
    let s = server();
    let body = json!({"Job": minimal_job("example"), "Namespace": "body-ns"}).to_string();
    let (status, text, _) = send("PUT", &s.url("/v1/jobs?namespace=query-ns"), Some(&body));
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        send("GET", &s.url("/v1/job/example?namespace=query-ns"), None).0,
        200
    );
    assert_eq!(send("GET", &s.url("/v1/job/example"), None).0, 404);
}

#[test]
fn parse_returns_the_job_object() {
    let s = server();
    let hcl = r#"
job "example" {
  datacenters = ["dc1"]
  group "cache" {
    task "redis" {
      driver = "docker"
      config {
        image = "redis:7"
      }
    }
  }
}
"#;
    let body = json!({"JobHCL": hcl, "Canonicalize": true}).to_string();
    let (status, text, _) = send("POST", &s.url("/v1/jobs/parse"), Some(&body));
    assert_eq!(status, 200, "{text}");
    let job = json_of(&text);
    assert_eq!(job["ID"], "example");
    assert_eq!(job["TaskGroups"][0]["Name"], "cache");

    let body = json!({"JobHCL": "job \"x\" {"}).to_string();
    let (status, text, _) = send("POST", &s.url("/v1/jobs/parse"), Some(&body));
    assert_eq!(status, 400);
    assert!(text.starts_with("Failed to parse job: "), "{text}");
}

#[test]
fn plan_is_a_dry_run() {
    let s = server();
    let body = json!({"Job": minimal_job("example"), "Diff": true}).to_string();
    let (status, text, _) = send("POST", &s.url("/v1/job/example/plan"), Some(&body));
    assert_eq!(status, 200, "{text}");
    let plan = json_of(&text);
    assert!(plan.get("Index").is_some());
    assert_eq!(plan["Annotations"]["DesiredTGUpdates"]["cache"]["Place"], 1);
    assert_eq!(plan["Diff"]["Type"], "Added");
    assert_eq!(plan["NextPeriodicLaunch"], "0001-01-01T00:00:00Z");
    assert_eq!(plan["CreatedEvals"], json!([]));
    // Nothing was registered.
    assert_eq!(send("GET", &s.url("/v1/job/example"), None).0, 404);
    let (status, _, _) = send("POST", &s.url("/v1/job/other/plan"), Some(&body));
    assert_eq!(status, 400);
}
