//! `PUT /v1/operator/raft/write-test`: the raw Raft write behind the load generator's `raft`
//! scenario. It commits, survives a restart, changes no state, and is refused without
//! `enable_debug`.

use serde_json::Value;

use crate::harness::Agent;

fn index_of(body: &str) -> u64 {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["Index"]
        .as_u64()
        .unwrap_or_else(|| panic!("no Index: {body}"))
}

#[test]
fn write_test_commits_in_order_changes_nothing_and_survives_a_restart() {
    let mut agent = Agent::start(0, "");
    let payload = "x".repeat(256);
    let mut last = 0;
    for _ in 0..20 {
        let (code, body) = agent.send("PUT", "/v1/operator/raft/write-test", &payload);
        assert_eq!(code, 200, "{body}");
        let index = index_of(&body);
        assert!(index > last, "index {index} after {last}");
        last = index;
    }
    assert_eq!(agent.get("/v1/jobs").unwrap(), Value::Array(Vec::new()));
    let (code, _) = agent.send("GET", "/v1/operator/raft/write-test", "");
    assert_eq!(code, 405);

    // The entries replay on start; the next write lands after them.
    agent.kill9();
    agent.spawn();
    agent.wait_ready();
    let (code, body) = agent.send("PUT", "/v1/operator/raft/write-test", "after");
    assert_eq!(code, 200, "{body}");
    assert!(index_of(&body) > last);
}

#[test]
fn write_test_needs_enable_debug() {
    let agent = Agent::start(0, "enable_debug = false");
    let (code, body) = agent.send("PUT", "/v1/operator/raft/write-test", "payload");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("enable_debug"), "{body}");
}
