//! List and plan options that client libraries (python-nomad among them) send: `meta` on the
//! job list, `resources` and `task_states` on the allocation list, and `Diff` on plans.

use std::time::Duration;

use net::http::testing::{sample_state, FakeCluster, TestServer};
use net::http::HttpLimits;
use serde_json::{json, Value};

fn server() -> TestServer {
    TestServer::start(
        || {
            let mut state = sample_state();
            state.jobs[0].meta.insert("owner".into(), "ops".into());
            FakeCluster::new(state)
        },
        HttpLimits::default(),
    )
}

fn send(method: &str, url: &str, body: Option<&str>) -> (u16, Value) {
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
    let text = resp.into_string().expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

fn get(url: &str) -> (u16, Value) {
    send("GET", url, None)
}

#[test]
fn job_list_carries_meta_only_when_asked() {
    let s = server();
    let (status, jobs) = get(&s.url("/v1/jobs"));
    assert_eq!(status, 200);
    assert!(jobs[0].get("Meta").is_none(), "{jobs}");
    // python-nomad serialises booleans as `True`.
    for flag in ["true", "True", "1"] {
        let (status, jobs) = get(&s.url(&format!("/v1/jobs?meta={flag}")));
        assert_eq!(status, 200);
        assert_eq!(
            jobs[0]["Meta"],
            json!({"owner": "ops"}),
            "meta={flag}: {jobs}"
        );
    }
    let (status, body) = get(&s.url("/v1/jobs?meta=maybe"));
    assert_eq!(status, 400, "{body}");
}

#[test]
fn alloc_list_adds_resources_and_drops_task_states_on_request() {
    let s = server();
    let (_, plain) = get(&s.url("/v1/allocations"));
    assert!(plain[0].get("AllocatedResources").is_none(), "{plain}");
    let (status, allocs) = get(&s.url("/v1/allocations?resources=True"));
    assert_eq!(status, 200);
    let tasks = &allocs[0]["AllocatedResources"]["Tasks"];
    assert_eq!(tasks["server"]["Cpu"]["CpuShares"], 100, "{allocs}");
    assert_eq!(tasks["server"]["Memory"]["MemoryMB"], 300, "{allocs}");

    let (status, allocs) = get(&s.url("/v1/allocations?task_states=False"));
    assert_eq!(status, 200);
    assert!(allocs[0]["TaskStates"].is_null(), "{allocs}");
}

#[test]
fn plan_diff_is_null_unless_requested() {
    let s = server();
    let (_, job) = get(&s.url("/v1/job/web"));
    let mut changed = job.clone();
    changed["TaskGroups"][0]["Count"] = json!(3);

    let body = json!({"Job": changed, "Diff": true}).to_string();
    let (status, plan) = send("POST", &s.url("/v1/job/web/plan"), Some(&body));
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["Diff"]["Type"], "Edited", "{plan}");
    assert_eq!(plan["Diff"]["ID"], "web", "{plan}");

    for body in [
        json!({"Job": changed, "Diff": false}),
        json!({"Job": changed}),
    ] {
        let (status, plan) = send("POST", &s.url("/v1/job/web/plan"), Some(&body.to_string()));
        assert_eq!(status, 200, "{plan}");
        assert!(plan["Diff"].is_null(), "{plan}");
        assert!(plan.get("Annotations").is_some(), "{plan}");
    }
}
