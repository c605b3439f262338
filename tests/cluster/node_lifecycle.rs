//! Node eligibility and drain through the HTTP API: the drainer moves service allocations
//! `max_parallel` at a time, batch allocations at the deadline, and leaves system allocations
//! alone when the drain ignores system jobs.

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

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Starts a dev agent with two nodes and returns it with their ids.
fn two_nodes() -> (Agent, String, String) {
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
    (agent, nodes[0].clone(), nodes[1].clone())
}

fn set_eligibility(agent: &Agent, node: &str, eligibility: &str) {
    let (code, body) = agent.send(
        "POST",
        &format!("/v1/node/{node}/eligibility"),
        &format!(r#"{{"Eligibility": "{eligibility}"}}"#),
    );
    assert_eq!(code, 200, "{body}");
}

/// Runs `hcl` while `other` is ineligible, so its `count` allocations all land on `drained`.
fn run_on(agent: &Agent, hcl: &str, job: &str, count: usize, drained: &str, other: &str) {
    set_eligibility(agent, other, "ineligible");
    agent.run_hcl(hcl);
    agent.wait_for(
        "allocations running on the node to drain",
        Duration::from_secs(20),
        |a| (running_on(&a.job_allocs(job), drained) == count).then_some(()),
    );
    set_eligibility(agent, other, "eligible");
}

fn start_drain(agent: &Agent, node: &str, spec: &str) -> Value {
    let (code, body) = agent.send(
        "POST",
        &format!("/v1/node/{node}/drain"),
        &format!(r#"{{"DrainSpec": {spec}}}"#),
    );
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn wait_drain_complete(agent: &Agent, node: &str) -> Value {
    agent.wait_for("drain complete", Duration::from_secs(30), |a| {
        let node = a.get(&format!("/v1/node/{node}")).ok()?;
        (node["Drain"] == false).then_some(node)
    })
}

fn marked(a: &Value) -> bool {
    a["DesiredTransition"]["Migrate"] == true
}

#[test]
fn drain_moves_allocations_off_a_node_and_leaves_it_ineligible() {
    let (agent, drained, other) = two_nodes();

    phase("ineligible nodes take nothing new; bad eligibility values are refused");
    run_on(
        &agent,
        &service_job("movable", 2, 100, 100),
        "movable",
        2,
        &drained,
        &other,
    );
    assert_eq!(running_on(&agent.job_allocs("movable"), &other), 0);
    let (code, body) = agent.send(
        "POST",
        &format!("/v1/node/{other}/eligibility"),
        r#"{"Eligibility": "maybe"}"#,
    );
    assert_eq!(code, 400, "{body}");

    phase("draining moves both allocations to the other node, then the drain completes");
    let reply = start_drain(
        &agent,
        &drained,
        r#"{"Deadline": 60000000000, "IgnoreSystemJobs": false}"#,
    );
    assert_eq!(
        reply["EvalIDs"].as_array().unwrap().len(),
        0,
        "the drainer, not the drain request, evaluates jobs: {reply}"
    );
    let node = agent.get(&format!("/v1/node/{drained}")).unwrap();
    if node["Drain"] == true {
        let strategy = &node["DrainStrategy"];
        assert_eq!(strategy["Deadline"], 60_000_000_000i64, "{node}");
        assert_eq!(strategy["IgnoreSystemJobs"], false, "{node}");
        assert!(strategy["ForceDeadline"].is_string(), "{node}");
        assert!(strategy["StartedAt"].is_string(), "{node}");
    }
    agent.wait_for("allocations moved", Duration::from_secs(30), |a| {
        let allocs = a.job_allocs("movable");
        (running_on(&allocs, &other) == 2 && running_on(&allocs, &drained) == 0).then_some(())
    });
    let node = wait_drain_complete(&agent, &drained);
    assert_eq!(
        node["SchedulingEligibility"], "ineligible",
        "a drained node stays ineligible"
    );
    assert!(node["DrainStrategy"].is_null(), "{node}");
    let (code, _) = agent.send(
        "POST",
        "/v1/node/no-such-node/drain",
        r#"{"DrainSpec": null}"#,
    );
    assert_eq!(code, 404);
}

fn migrating_job(count: u32, max_parallel: u32) -> String {
    format!(
        r#"job "paced" {{
  datacenters = ["dc1"]
  type = "service"
  group "g" {{
    count = {count}
    migrate {{
      max_parallel = {max_parallel}
    }}
    task "t" {{
      driver = "raw_exec"
      config {{
        command = "/bin/sleep"
        args = ["3600"]
      }}
      resources {{
        cpu = 100
        memory = 64
      }}
    }}
  }}
}}
"#
    )
}

/// Counts allocations on `node` that are on their way out (marked for migration or already
/// stopped) whose replacement is not running yet.
fn moving_unreplaced(allocs: &[Value], node: &str) -> usize {
    let running = |id: &str| {
        allocs
            .iter()
            .any(|a| a["ID"] == id && a["ClientStatus"] == "running" && a["DesiredStatus"] == "run")
    };
    allocs
        .iter()
        .filter(|a| a["NodeID"] == node && (marked(a) || a["DesiredStatus"] != "run"))
        .filter(|a| !running(a["NextAllocation"].as_str().unwrap_or_default()))
        .count()
}

#[test]
fn drain_moves_one_allocation_at_a_time_with_max_parallel_one() {
    let (agent, drained, other) = two_nodes();
    run_on(&agent, &migrating_job(4, 1), "paced", 4, &drained, &other);
    let originals: Vec<String> = agent
        .job_allocs("paced")
        .iter()
        .map(|a| a["ID"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(originals.len(), 4);

    phase("at every observation at most one allocation is moving without a running replacement");
    start_drain(&agent, &drained, r#"{"Deadline": 300000000000}"#);
    let mut observations = 0;
    agent.wait_for(
        "all 4 running on the other node",
        Duration::from_secs(60),
        |a| {
            let allocs = a.job_allocs("paced");
            let moving = moving_unreplaced(&allocs, &drained);
            assert!(moving <= 1, "{moving} moving at once: {allocs:#?}");
            observations += 1;
            (running_on(&allocs, &other) == 4 && running_on(&allocs, &drained) == 0).then_some(())
        },
    );
    assert!(observations > 0);

    phase("every original allocation was marked by the drainer; the drain completes");
    let allocs = agent.job_allocs("paced");
    for id in &originals {
        let a = allocs.iter().find(|a| a["ID"] == id.as_str()).unwrap();
        assert!(marked(a), "{id} moved without a mark: {a}");
        assert_eq!(a["DesiredStatus"], "stop", "{a}");
    }

    phase("each replacement was placed only after the one before it was running");
    let mut replacements: Vec<&Value> = allocs
        .iter()
        .filter(|a| a["NodeID"] == other.as_str())
        .collect();
    replacements.sort_by_key(|a| a["CreateIndex"].as_u64());
    assert_eq!(replacements.len(), 4, "{allocs:#?}");
    for pair in replacements.windows(2) {
        // A running replacement was last changed by its client's running report.
        assert!(
            pair[0]["ModifyIndex"].as_u64() < pair[1]["CreateIndex"].as_u64(),
            "placed before the previous replacement ran: {:#?}",
            pair
        );
    }
    wait_drain_complete(&agent, &drained);
}

#[test]
fn drain_moves_a_batch_allocation_only_at_the_deadline() {
    let (agent, drained, other) = two_nodes();
    let batch = r#"job "crunch" {
  datacenters = ["dc1"]
  type = "batch"
  group "g" {
    count = 1
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args = ["3600"]
      }
      resources {
        cpu = 100
        memory = 64
      }
    }
  }
}
"#;
    run_on(&agent, batch, "crunch", 1, &drained, &other);
    let original = agent.job_allocs("crunch")[0]["ID"]
        .as_str()
        .unwrap()
        .to_string();

    phase("a drain with a 1 s deadline leaves the batch allocation until the deadline");
    let before_drain_ns = now_ns();
    start_drain(&agent, &drained, r#"{"Deadline": 1000000000}"#);
    let replacement = agent.wait_for("batch allocation moved", Duration::from_secs(30), |a| {
        let allocs = a.job_allocs("crunch");
        allocs
            .iter()
            .find(|a| a["NodeID"] == other.as_str() && a["ClientStatus"] == "running")
            .cloned()
    });
    let created_ns = replacement["CreateTime"].as_i64().unwrap();
    assert!(
        created_ns >= before_drain_ns + 1_000_000_000,
        "replacement created at {created_ns}, before the deadline (drain started after {before_drain_ns})"
    );
    let old = agent.get(&format!("/v1/allocation/{original}")).unwrap();
    assert_eq!(old["DesiredTransition"]["Migrate"], true, "{old}");
    assert_eq!(old["DesiredStatus"], "stop", "{old}");
    wait_drain_complete(&agent, &drained);
}

#[test]
fn drain_ignoring_system_jobs_keeps_their_allocations() {
    let (agent, drained, other) = two_nodes();
    let system = r#"job "everywhere" {
  datacenters = ["dc1"]
  type = "system"
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args = ["3600"]
      }
      resources {
        cpu = 100
        memory = 64
      }
    }
  }
}
"#;
    agent.run_hcl(system);
    agent.wait_for("system job on both nodes", Duration::from_secs(20), |a| {
        let allocs = a.job_allocs("everywhere");
        (running_on(&allocs, &drained) == 1 && running_on(&allocs, &other) == 1).then_some(())
    });
    run_on(
        &agent,
        &service_job("movable", 1, 100, 100),
        "movable",
        1,
        &drained,
        &other,
    );

    phase("the service allocation moves and the drain completes around the system one");
    start_drain(
        &agent,
        &drained,
        r#"{"Deadline": 60000000000, "IgnoreSystemJobs": true}"#,
    );
    agent.wait_for("service allocation moved", Duration::from_secs(30), |a| {
        let allocs = a.job_allocs("movable");
        (running_on(&allocs, &other) == 1 && running_on(&allocs, &drained) == 0).then_some(())
    });
    wait_drain_complete(&agent, &drained);
    let allocs = agent.job_allocs("everywhere");
    assert_eq!(running_on(&allocs, &drained), 1, "{allocs:#?}");
    assert!(
        allocs.iter().all(|a| !marked(a)),
        "a system allocation was marked: {allocs:#?}"
    );
}

/// Marks a phase of a test in its output.
fn phase(why: &str) {
    eprintln!("--- {why}");
}
