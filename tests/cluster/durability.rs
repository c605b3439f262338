//! kill -9 at any moment loses nothing that was acknowledged.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{count_running, service_job, Agent};

fn ids(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x["ID"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn restart_after_kill9_restores_jobs_allocations_and_evaluations() {
    let mut agent = Agent::start(2, "");
    let mut acknowledged = Vec::new();
    for i in 0..5 {
        let reply = agent.run_hcl(&service_job(&format!("durable{i}"), 2, 50, 32));
        acknowledged.push(reply["EvalID"].as_str().unwrap().to_string());
    }
    agent.wait_for("10 running", Duration::from_secs(30), |a| {
        let allocs = a.get("/v1/allocations").ok()?;
        (count_running(allocs.as_array()?) == 10).then_some(())
    });
    let jobs = ids(&agent.get("/v1/jobs").unwrap());
    let allocs = ids(&agent.get("/v1/allocations").unwrap());
    let evals = ids(&agent.get("/v1/evaluations").unwrap());
    let nodes = ids(&agent.get("/v1/nodes").unwrap());

    agent.kill9();
    agent.spawn();
    agent.wait_ready();

    assert_eq!(ids(&agent.get("/v1/jobs").unwrap()), jobs);
    assert_eq!(ids(&agent.get("/v1/allocations").unwrap()), allocs);
    let evals_after = ids(&agent.get("/v1/evaluations").unwrap());
    assert!(
        evals.is_subset(&evals_after),
        "evaluations lost across restart"
    );
    for eval in &acknowledged {
        assert!(
            evals_after.contains(eval),
            "acknowledged evaluation {eval} lost"
        );
    }
    assert_eq!(ids(&agent.get("/v1/nodes").unwrap()), nodes);
    // The restarted nodes re-register; nothing is rescheduled.
    std::thread::sleep(Duration::from_secs(2));
    let after = agent.get("/v1/allocations").unwrap();
    assert_eq!(
        ids(&after),
        allocs,
        "no allocation may be replaced after a clean restart"
    );
}

#[test]
fn state_survives_a_snapshot_and_log_truncation() {
    // A tiny threshold and interval force snapshots, so the restart reads one.
    let extra = "server {\n  raft_snapshot_threshold = 5\n  raft_snapshot_interval = \"1s\"\n  raft_trailing_logs = 2\n}\n";
    let mut agent = Agent::start(1, extra);
    for i in 0..8 {
        agent.run_hcl(&service_job(&format!("snap{i}"), 1, 10, 10));
    }
    agent.wait_for("8 running", Duration::from_secs(30), |a| {
        let allocs = a.get("/v1/allocations").ok()?;
        (count_running(allocs.as_array()?) == 8).then_some(())
    });
    agent.wait_for("a snapshot on disk", Duration::from_secs(20), |a| {
        let dir = a.dir.path().join("data/server/raft/snapshots");
        std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "snap"))
            .then_some(())
    });
    let jobs = ids(&agent.get("/v1/jobs").unwrap());
    let allocs = ids(&agent.get("/v1/allocations").unwrap());
    agent.kill9();
    agent.spawn();
    agent.wait_ready();
    assert_eq!(ids(&agent.get("/v1/jobs").unwrap()), jobs);
    assert_eq!(ids(&agent.get("/v1/allocations").unwrap()), allocs);
}
