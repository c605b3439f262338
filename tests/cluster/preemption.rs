//! Preemption end to end: a high-priority service job evicts a low-priority one from full
//! nodes once service preemption is enabled through the scheduler configuration.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{count_running, Agent};

/// A service job of `count` allocations of 100 MHz and `memory` MB at `priority`.
fn job_with_priority(name: &str, priority: u32, count: u32, memory: u32) -> String {
    format!(
        r#"job "{name}" {{
  datacenters = ["dc1"]
  type = "service"
  priority = {priority}
  group "g" {{
    count = {count}
    task "t" {{
      driver = "raw_exec"
      config {{
        command = "/bin/sleep"
        args = ["3600"]
      }}
      resources {{
        cpu = 100
        memory = {memory}
      }}
    }}
  }}
}}
"#
    )
}

#[test]
fn high_priority_service_job_preempts_low_priority_allocations() {
    phase("two dev nodes of 8192 MB, filled by eight 2000 MB allocations of priority 20");
    let agent = Agent::start(2, "");
    agent.wait_for("two dev nodes", Duration::from_secs(20), |a| {
        (a.get("/v1/nodes").ok()?.as_array()?.len() == 2).then_some(())
    });
    agent.run_hcl(&job_with_priority("low", 20, 8, 2000));
    agent.wait_for(
        "eight low allocations running",
        Duration::from_secs(30),
        |a| (count_running(&a.job_allocs("low")) == 8).then_some(()),
    );

    phase("with preemption off, a plan of the priority-80 job places nothing and evicts nothing");
    let high_hcl = job_with_priority("high", 80, 2, 2000);
    let (code, reply) = agent.send("GET", "/v1/operator/scheduler/configuration", "");
    assert_eq!(code, 200, "{reply}");
    let config: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(
        config["SchedulerConfig"]["PreemptionConfig"]["ServiceSchedulerEnabled"],
        false
    );
    let plan = plan_hcl(&agent, &high_hcl);
    assert!(plan["FailedTGAllocs"]["g"].is_object(), "{plan}");
    assert!(plan["Annotations"]["PreemptedAllocs"].is_null(), "{plan}");

    phase("enable service preemption: the plan now lists two low allocations to evict");
    let (code, reply) = agent.send(
        "PUT",
        "/v1/operator/scheduler/configuration",
        &json!({ "PreemptionConfig": { "ServiceSchedulerEnabled": true } }).to_string(),
    );
    assert_eq!(code, 200, "{reply}");
    assert!(reply.contains("\"Updated\":true"), "{reply}");
    let plan = plan_hcl(&agent, &high_hcl);
    assert!(plan["FailedTGAllocs"].is_null(), "{plan}");
    let listed = plan["Annotations"]["PreemptedAllocs"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{plan}");
    assert!(listed.iter().all(|a| a["JobID"] == "low"), "{plan}");
    assert_eq!(
        plan["Annotations"]["DesiredTGUpdates"]["g"]["Preemptions"],
        2
    );

    phase("register the priority-80 job: it evicts two low allocations");
    agent.run_hcl(&high_hcl);
    let high = agent.wait_for(
        "two high allocations placed",
        Duration::from_secs(30),
        |a| {
            let allocs = a.job_allocs("high");
            let live = allocs
                .iter()
                .filter(|x| {
                    x["DesiredStatus"] == "run"
                        && matches!(x["ClientStatus"].as_str(), Some("pending" | "running"))
                })
                .count();
            (live == 2).then_some(allocs)
        },
    );
    let high_ids: BTreeSet<String> = high
        .iter()
        .map(|a| a["ID"].as_str().unwrap().to_string())
        .collect();

    let evicted = agent.wait_for("evicted low allocations", Duration::from_secs(30), |a| {
        let evicted: Vec<Value> = a
            .job_allocs("low")
            .into_iter()
            .filter(|x| x["DesiredStatus"] == "evict")
            .collect();
        (evicted.len() >= 2).then_some(evicted)
    });
    assert_eq!(evicted.len(), 2, "one 2000 MB eviction per placement");
    for stub in &evicted {
        let by = stub["PreemptedByAllocation"].as_str().unwrap_or_default();
        assert!(high_ids.contains(by), "{stub} names a high allocation");
        let id = stub["ID"].as_str().unwrap();
        let full = agent.get(&format!("/v1/allocation/{id}")).unwrap();
        assert_eq!(full["DesiredStatus"], "evict");
        assert_eq!(full["PreemptedByAllocation"], by);
        assert_eq!(
            full["DesiredDescription"],
            format!("Preempted by alloc ID {by}")
        );
        let placed = agent.get(&format!("/v1/allocation/{by}")).unwrap();
        let preempted = placed["PreemptedAllocations"].as_array().unwrap();
        assert!(preempted.iter().any(|p| p == id), "{placed}");
    }

    phase("the high allocations run; the remaining low ones keep running");
    agent.wait_for(
        "two high allocations running",
        Duration::from_secs(30),
        |a| (count_running(&a.job_allocs("high")) == 2).then_some(()),
    );
    assert_eq!(count_running(&agent.job_allocs("low")), 6);
}

/// Runs `job plan` for a job given as HCL and returns the plan response.
fn plan_hcl(agent: &Agent, hcl: &str) -> Value {
    let body = json!({ "JobHCL": hcl, "Canonicalize": true }).to_string();
    let (code, job) = agent.send("POST", "/v1/jobs/parse", &body);
    assert_eq!(code, 200, "parse failed: {job}");
    let job: Value = serde_json::from_str(&job).unwrap();
    let (code, reply) = agent.send(
        "PUT",
        "/v1/job/high/plan",
        &json!({ "Job": job, "Diff": true }).to_string(),
    );
    assert_eq!(code, 200, "plan failed: {reply}");
    serde_json::from_str(&reply).unwrap()
}

fn phase(what: &str) {
    eprintln!("== {what}");
}
