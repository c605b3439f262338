//! Node eligibility and drain through the HTTP API.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{service_job, Agent};

fn running_on(allocs: &[Value], node: &str) -> usize {
    allocs
        .iter()
        .filter(|a| {
            a["NodeID"] == node && a["DesiredStatus"] == "run" && a["ClientStatus"] == "running"
        })
        .count()
}

#[test]
fn drain_moves_allocations_off_a_node_and_leaves_it_ineligible() {
    let agent = Agent::start(2, "");
    let nodes = agent.wait_for("2 nodes", Duration::from_secs(20), |a| {
        let nodes = a.get("/v1/nodes").ok()?;
        let ids: Vec<String> = nodes
            .as_array()?
            .iter()
            .map(|n| n["ID"].as_str().unwrap().to_string())
            .collect();
        (ids.len() == 2).then_some(ids)
    });
    let (drained, other) = (&nodes[0], &nodes[1]);

    // Ineligible nodes take nothing new.
    let (code, body) = agent.send(
        "POST",
        &format!("/v1/node/{other}/eligibility"),
        r#"{"Eligibility": "ineligible"}"#,
    );
    assert_eq!(code, 200, "{body}");
    agent.run_hcl(&service_job("movable", 2, 100, 100));
    let allocs = agent.wait_for(
        "2 running on the eligible node",
        Duration::from_secs(20),
        |a| {
            let allocs = a.job_allocs("movable");
            (running_on(&allocs, drained) == 2).then_some(allocs)
        },
    );
    assert_eq!(running_on(&allocs, other), 0);
    let (code, body) = agent.send(
        "POST",
        &format!("/v1/node/{other}/eligibility"),
        r#"{"Eligibility": "eligible"}"#,
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = agent.send(
        "POST",
        &format!("/v1/node/{other}/eligibility"),
        r#"{"Eligibility": "maybe"}"#,
    );
    assert_eq!(code, 400, "{body}");

    // Draining moves both allocations to the other node, then the drain completes.
    let (code, body) = agent.send(
        "POST",
        &format!("/v1/node/{drained}/drain"),
        r#"{"DrainSpec": {"Deadline": 60000000000, "IgnoreSystemJobs": false}}"#,
    );
    assert_eq!(code, 200, "{body}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["EvalIDs"].as_array().unwrap().len(), 1, "{reply}");
    agent.wait_for("allocations moved", Duration::from_secs(30), |a| {
        let allocs = a.job_allocs("movable");
        (running_on(&allocs, other) == 2 && running_on(&allocs, drained) == 0).then_some(())
    });
    let node = agent.wait_for("drain complete", Duration::from_secs(20), |a| {
        let node = a.get(&format!("/v1/node/{drained}")).ok()?;
        (node["Drain"] == false).then_some(node)
    });
    assert_eq!(
        node["SchedulingEligibility"], "ineligible",
        "a drained node stays ineligible"
    );
    let (code, _) = agent.send(
        "POST",
        "/v1/node/no-such-node/drain",
        r#"{"DrainSpec": null}"#,
    );
    assert_eq!(code, 404);
}
