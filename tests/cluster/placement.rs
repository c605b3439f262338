//! Registration → placement → stop, and plan verification under contention.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{count_running, service_job, Agent};

#[test]
fn registered_job_is_placed_on_dev_nodes_and_stop_stops_it() {
    let agent = Agent::start(3, "");
    let reply = agent.run_hcl(&service_job("web", 3, 100, 64));
    assert!(
        reply["EvalID"].as_str().is_some_and(|s| s.len() == 36),
        "{reply}"
    );
    assert!(reply["JobModifyIndex"].as_u64().unwrap() > 0);

    let allocs = agent.wait_for("3 running allocations", Duration::from_secs(20), |a| {
        let allocs = a.job_allocs("web");
        (count_running(&allocs) == 3).then_some(allocs)
    });
    let nodes: std::collections::BTreeSet<&str> = allocs
        .iter()
        .map(|a| a["NodeID"].as_str().unwrap())
        .collect();
    assert!(!nodes.is_empty());
    let eval = agent
        .get(&format!(
            "/v1/evaluation/{}",
            reply["EvalID"].as_str().unwrap()
        ))
        .unwrap();
    assert_eq!(eval["Status"], "complete", "{eval}");
    let job = agent.get("/v1/job/web").unwrap();
    assert_eq!(job["Status"], "running");

    let (code, body) = agent.send("DELETE", "/v1/job/web", "");
    assert_eq!(code, 200, "{body}");
    agent.wait_for("allocations stopped", Duration::from_secs(20), |a| {
        let allocs = a.job_allocs("web");
        allocs
            .iter()
            .all(|x| x["DesiredStatus"] == "stop")
            .then_some(())
    });
    let job = agent.get("/v1/job/web").unwrap();
    assert_eq!(job["Stop"], true);
}

#[test]
fn count_change_places_and_stops_allocations() {
    let agent = Agent::start(2, "");
    agent.run_hcl(&service_job("scale", 4, 50, 32));
    agent.wait_for("4 running", Duration::from_secs(20), |a| {
        (count_running(&a.job_allocs("scale")) == 4).then_some(())
    });
    agent.run_hcl(&service_job("scale", 1, 50, 32));
    agent.wait_for("1 running", Duration::from_secs(20), |a| {
        let allocs = a.job_allocs("scale");
        let live = allocs
            .iter()
            .filter(|x| x["DesiredStatus"] == "run")
            .count();
        (live == 1 && count_running(&allocs) == 1).then_some(())
    });
    let versions = agent.get("/v1/job/scale/versions").unwrap();
    assert_eq!(
        versions["Versions"].as_array().unwrap().len(),
        2,
        "{versions}"
    );
}

/// Many single-allocation jobs race for one small node: the optimistic schedulers plan
/// against stale views, and the plan applier must reject what no longer fits. Whatever the
/// interleaving, the node never holds more than its capacity and the rest stays blocked.
#[test]
fn concurrent_plans_never_overfill_a_node() {
    // The dev node offers 4000 MHz / 8192 MB; each job asks 1500 MB, so 5 fit.
    let agent = Agent::start(1, "server {\n  num_schedulers = 4\n}\n");
    agent.wait_for("the dev node", Duration::from_secs(20), |a| {
        (a.get("/v1/nodes").ok()?.as_array()?.len() == 1).then_some(())
    });
    let threads: Vec<_> = (0..10)
        .map(|i| {
            let url = agent.url("");
            let hcl = service_job(&format!("race{i}"), 1, 100, 1500);
            std::thread::spawn(move || {
                let body = serde_json::json!({ "JobHCL": hcl, "Canonicalize": true }).to_string();
                let job: Value = ureq::post(&format!("{url}/v1/jobs/parse"))
                    .send_string(&body)
                    .unwrap()
                    .into_json()
                    .unwrap();
                ureq::put(&format!("{url}/v1/jobs"))
                    .send_string(&serde_json::json!({ "Job": job }).to_string())
                    .unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Polled until settled; at every poll the node must hold at most what fits.
    agent.wait_for(
        "five placed and five blocked",
        Duration::from_secs(30),
        |a| {
            let evals = a.get("/v1/evaluations").ok()?;
            let evals = evals.as_array()?;
            let pending = evals.iter().filter(|e| e["Status"] == "pending").count();
            let blocked = evals.iter().filter(|e| e["Status"] == "blocked").count();
            let allocs = a.get("/v1/allocations").ok()?;
            let placed = allocs
                .as_array()?
                .iter()
                .filter(|x| x["DesiredStatus"] == "run")
                .count();
            assert!(
                placed <= 5,
                "{placed} allocations of 1500 MB on a node with 8192 MB"
            );
            // Each job that did not fit leaves one blocked evaluation.
            (pending == 0 && placed == 5 && blocked == 5).then_some(())
        },
    );
}
