//! Blocking queries follow per-table indexes, like Nomad's.

use std::time::Duration;

use crate::harness::{service_job, Agent};

fn index_of(agent: &Agent, path: &str) -> u64 {
    let resp = ureq::get(&agent.url(path))
        .timeout(Duration::from_secs(30))
        .call()
        .unwrap();
    resp.header("X-Nomad-Index").unwrap().parse().unwrap()
}

#[test]
fn blocking_reads_wake_only_for_their_own_table() {
    let agent = Agent::start(1, "");
    agent.wait_for("the dev node", Duration::from_secs(20), |a| {
        (a.get("/v1/nodes").ok()?.as_array()?.len() == 1).then_some(())
    });
    agent.run_hcl(&service_job("first", 1, 10, 10));
    let nodes_index = index_of(&agent, "/v1/nodes");
    let jobs_index = index_of(&agent, "/v1/jobs");
    assert!(nodes_index > 0 && jobs_index > 0);

    // A job registration changes the jobs table, not the nodes table.
    let url = agent.url("");
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let hcl = service_job("second", 1, 10, 10);
        let body = serde_json::json!({ "JobHCL": hcl, "Canonicalize": true }).to_string();
        let job: serde_json::Value = ureq::post(&format!("{url}/v1/jobs/parse"))
            .send_string(&body)
            .unwrap()
            .into_json()
            .unwrap();
        ureq::put(&format!("{url}/v1/jobs"))
            .send_string(&serde_json::json!({ "Job": job }).to_string())
            .unwrap();
    });
    let jobs_after = index_of(&agent, &format!("/v1/jobs?index={jobs_index}&wait=20s"));
    assert!(
        jobs_after > jobs_index,
        "the jobs table changed: {jobs_after} > {jobs_index}"
    );
    writer.join().unwrap();

    let nodes_after = index_of(&agent, &format!("/v1/nodes?index={nodes_index}&wait=1s"));
    assert_eq!(
        nodes_after, nodes_index,
        "no node changed, so the nodes index stays"
    );
}
