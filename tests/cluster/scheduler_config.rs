//! The scheduler configuration: bootstrap default, check-and-set, pausing the broker.

use std::time::Duration;

use serde_json::json;

use crate::harness::{count_running, service_job, Agent};

#[test]
fn scheduler_configuration_bootstraps_from_config_and_changes_with_check_and_set() {
    let extra =
        "server {\n  default_scheduler_config {\n    scheduler_algorithm = \"spread\"\n  }\n}\n";
    let agent = Agent::start(2, extra);
    let config = agent.wait_for(
        "default_scheduler_config applied",
        Duration::from_secs(20),
        |a| {
            let c = a.get("/v1/operator/scheduler/configuration").ok()?;
            (c["SchedulerConfig"]["SchedulerAlgorithm"] == "spread").then_some(c)
        },
    );
    let index = config["SchedulerConfig"]["ModifyIndex"].as_u64().unwrap();
    assert!(index > 0);

    let body = json!({ "SchedulerAlgorithm": "binpack", "PauseEvalBroker": true }).to_string();
    let (code, reply) = agent.send(
        "PUT",
        &format!("/v1/operator/scheduler/configuration?cas={}", index + 1000),
        &body,
    );
    assert_eq!(code, 200, "{reply}");
    assert!(
        reply.contains("\"Updated\":false"),
        "a stale cas must not update: {reply}"
    );

    let (code, reply) = agent.send(
        "PUT",
        &format!("/v1/operator/scheduler/configuration?cas={index}"),
        &body,
    );
    assert_eq!(code, 200, "{reply}");
    assert!(reply.contains("\"Updated\":true"), "{reply}");

    let (code, reply) = agent.send(
        "PUT",
        "/v1/operator/scheduler/configuration",
        r#"{"SchedulerAlgorithm": "random"}"#,
    );
    assert_eq!(code, 400, "{reply}");
    assert!(reply.contains("SchedulerAlgorithm"), "{reply}");

    // With the broker paused the evaluation stays pending and nothing is placed.
    let reply = agent.run_hcl(&service_job("paused", 1, 10, 10));
    let eval_path = format!("/v1/evaluation/{}", reply["EvalID"].as_str().unwrap());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(agent.get(&eval_path).unwrap()["Status"], "pending");
    assert!(agent.job_allocs("paused").is_empty());

    let body = json!({ "SchedulerAlgorithm": "binpack", "PauseEvalBroker": false }).to_string();
    let (code, _) = agent.send("PUT", "/v1/operator/scheduler/configuration", &body);
    assert_eq!(code, 200);
    agent.wait_for("placement after resuming", Duration::from_secs(20), |a| {
        (count_running(&a.job_allocs("paused")) == 1).then_some(())
    });
}
