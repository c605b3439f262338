//! Periodic and parameterized jobs through a real dev agent: periodic templates launch
//! `<id>/periodic-<unix>` children and never run themselves, `prohibit_overlap` holds a launch
//! back while a child runs, `periodic/force` launches at once, and dispatch creates
//! `<id>/dispatch-...` children carrying their meta and payload. Launches survive a restart
//! and a leader change without repeats.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{bin, Agent};

/// Runs the drover CLI against the agent; returns the exit code and stdout + stderr.
fn cli(agent: &Agent, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(bin("drover"))
        .args(args)
        .arg("-address")
        .arg(agent.url(""))
        .env_remove("NOMAD_ADDR")
        .env_remove("DROVER_ADDR")
        .output()
        .expect("running the drover CLI");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A batch job with `block` (a `periodic` or `parameterized` block) and one small task.
fn template_job(name: &str, block: &str) -> String {
    format!(
        r#"job "{name}" {{
  datacenters = ["dc1"]
  type = "batch"
  {block}
  group "g" {{
    task "t" {{
      driver = "raw_exec"
      config {{
        command = "/bin/sleep"
        args    = ["3600"]
      }}
      resources {{
        cpu    = 10
        memory = 10
      }}
    }}
  }}
}}
"#
    )
}

/// Returns the list stubs of the children of `parent` (jobs whose ParentID is `parent`).
fn children(agent: &Agent, parent: &str) -> Vec<Value> {
    agent
        .get("/v1/jobs")
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|j| j["ParentID"] == parent)
        .collect()
}

fn job_stub(agent: &Agent, id: &str) -> Option<Value> {
    agent
        .get("/v1/jobs")
        .ok()?
        .as_array()?
        .iter()
        .find(|j| j["ID"] == id)
        .cloned()
}

/// Waits until the job is running with at least one running allocation.
fn wait_child_running(agent: &Agent, id: &str) {
    agent.wait_for(&format!("{id} to run"), Duration::from_secs(30), |a| {
        let allocs = a.job_allocs(id);
        allocs
            .iter()
            .any(|al| al["ClientStatus"] == "running")
            .then_some(())
    });
}

#[test]
fn periodic_jobs_launch_children_and_respect_prohibit_overlap() {
    let agent = Agent::start(1, "");

    eprintln!("a periodic job due every second launches children and runs nothing itself");
    // Seven fields: seconds first and a year last, as in Nomad's cron syntax.
    agent.run_hcl(&template_job(
        "tick",
        r#"periodic {
    crons = ["* * * * * * *"]
  }"#,
    ));
    let launched = agent.wait_for("two periodic children", Duration::from_secs(30), |a| {
        let c = children(a, "tick");
        (c.len() >= 2).then_some(c)
    });
    for child in &launched {
        let id = child["ID"].as_str().unwrap();
        let launch = id
            .strip_prefix("tick/periodic-")
            .unwrap_or_else(|| panic!("child {id} not named after its launch"));
        assert!(launch.parse::<i64>().is_ok(), "{id}");
        assert_eq!(child["Periodic"], false, "a child is not periodic itself");
    }
    wait_child_running(&agent, launched[0]["ID"].as_str().unwrap());
    let parent = job_stub(&agent, "tick").expect("parent listed");
    assert_eq!(parent["Periodic"], true);
    assert_eq!(parent["Status"], "running");
    assert!(
        agent.job_allocs("tick").is_empty(),
        "the periodic parent must not be placed"
    );
    let full = agent.get("/v1/job/tick").unwrap();
    assert_eq!(full["Periodic"]["Specs"], json!(["* * * * * * *"]));
    // Stopping the parent stops the launches.
    let (code, reply) = agent.send("DELETE", "/v1/job/tick", "");
    assert_eq!(code, 200, "{reply}");

    eprintln!("with prohibit_overlap a running child holds every later launch back");
    agent.run_hcl(&template_job(
        "solo",
        r#"periodic {
    crons            = ["* * * * * * *"]
    prohibit_overlap = true
  }"#,
    ));
    let first = agent.wait_for("the first solo child", Duration::from_secs(30), |a| {
        children(a, "solo").first().cloned()
    });
    let first_id = first["ID"].as_str().unwrap().to_string();
    wait_child_running(&agent, &first_id);
    // Several launch times pass while the first child runs.
    std::thread::sleep(Duration::from_secs(3));
    let now = children(&agent, "solo");
    assert_eq!(now.len(), 1, "launched over a running child: {now:?}");
    eprintln!("once the child is stopped the next launch happens");
    let (code, reply) = agent.send("DELETE", &format!("/v1/job/{first_id}"), "");
    assert_eq!(code, 200, "{reply}");
    agent.wait_for("a second solo child", Duration::from_secs(30), |a| {
        (children(a, "solo").len() >= 2).then_some(())
    });
    let (code, reply) = agent.send("DELETE", "/v1/job/solo", "");
    assert_eq!(code, 200, "{reply}");

    eprintln!("periodic/force launches a child at once");
    agent.run_hcl(&template_job(
        "yearly",
        r#"periodic {
    cron = "0 0 1 1 *"
  }"#,
    ));
    let (code, reply) = agent.send("POST", "/v1/job/yearly/periodic/force", "");
    assert_eq!(code, 200, "{reply}");
    let reply: Value = serde_json::from_str(&reply).unwrap();
    assert!(!reply["EvalID"].as_str().unwrap().is_empty(), "{reply}");
    assert!(reply["EvalCreateIndex"].as_u64().unwrap() > 0, "{reply}");
    assert!(reply["Index"].as_u64().unwrap() > 0, "{reply}");
    let forced = children(&agent, "yearly");
    assert_eq!(forced.len(), 1, "{forced:?}");
    let forced_id = forced[0]["ID"].as_str().unwrap();
    assert!(forced_id.starts_with("yearly/periodic-"), "{forced_id}");
    wait_child_running(&agent, forced_id);
    let eval = agent
        .get(&format!(
            "/v1/evaluation/{}",
            reply["EvalID"].as_str().unwrap()
        ))
        .unwrap();
    assert_eq!(eval["JobID"], forced_id);
    assert_eq!(eval["TriggeredBy"], "periodic-job");

    eprintln!("the CLI forces a launch too");
    let (code, out) = cli(&agent, &["job", "periodic", "force", "-detach", "yearly"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Evaluation ID"), "{out}");
    assert_eq!(children(&agent, "yearly").len(), 2);

    eprintln!("forcing a job that is not periodic is refused");
    agent.run_hcl(&template_job("plain", ""));
    let (code, reply) = agent.send("POST", "/v1/job/plain/periodic/force", "");
    assert_eq!(code, 400, "{reply}");
    assert!(reply.contains("non-periodic"), "{reply}");
}

#[test]
fn parameterized_jobs_dispatch_children_with_meta_and_payload() {
    let agent = Agent::start(1, "");

    eprintln!("a parameterized job is a template: running, with nothing placed");
    agent.run_hcl(&template_job(
        "render",
        r#"parameterized {
    payload       = "optional"
    meta_required = ["owner"]
    meta_optional = ["note"]
  }"#,
    ));
    agent.wait_for(
        "the template to show as running",
        Duration::from_secs(20),
        |a| {
            let stub = job_stub(a, "render")?;
            (stub["Status"] == "running").then_some(())
        },
    );
    let stub = job_stub(&agent, "render").unwrap();
    assert_eq!(stub["ParameterizedJob"], true);
    assert!(agent.job_allocs("render").is_empty());

    eprintln!("two dispatches give two children with their own meta");
    let mut dispatched = Vec::new();
    for (owner, payload) in [("alice", "aGVsbG8="), ("bob", "")] {
        let body = json!({ "Meta": { "owner": owner }, "Payload": payload }).to_string();
        let (code, reply) = agent.send("POST", "/v1/job/render/dispatch", &body);
        assert_eq!(code, 200, "{reply}");
        let reply: Value = serde_json::from_str(&reply).unwrap();
        let id = reply["DispatchedJobID"].as_str().unwrap().to_string();
        assert!(id.starts_with("render/dispatch-"), "{id}");
        assert!(!reply["EvalID"].as_str().unwrap().is_empty(), "{reply}");
        assert!(reply["JobCreateIndex"].as_u64().unwrap() > 0, "{reply}");
        assert!(reply["Index"].as_u64().unwrap() > 0, "{reply}");
        dispatched.push((id, owner, payload));
    }
    assert_ne!(dispatched[0].0, dispatched[1].0);
    for (id, owner, payload) in &dispatched {
        let job = agent.get(&format!("/v1/job/{id}")).unwrap();
        assert_eq!(job["ParentID"], "render");
        assert_eq!(job["Dispatched"], true);
        assert_eq!(job["Meta"]["owner"], *owner);
        if payload.is_empty() {
            assert_eq!(job["Payload"], Value::Null);
        } else {
            assert_eq!(job["Payload"], *payload);
        }
        wait_child_running(&agent, id);
    }
    assert!(agent.job_allocs("render").is_empty());

    eprintln!("a dispatch without a required meta key is refused, naming the key");
    let (code, reply) = agent.send(
        "POST",
        "/v1/job/render/dispatch",
        &json!({ "Meta": { "note": "x" } }).to_string(),
    );
    assert_eq!(code, 400, "{reply}");
    assert!(reply.contains("owner"), "{reply}");
    let (code, reply) = agent.send(
        "POST",
        "/v1/job/render/dispatch",
        &json!({ "Meta": { "owner": "a", "colour": "red" } }).to_string(),
    );
    assert_eq!(code, 400, "{reply}");
    assert!(reply.contains("colour"), "{reply}");
    assert_eq!(children(&agent, "render").len(), 2);

    eprintln!("a repeated dispatch with the same idempotency token gives the same child");
    let body = json!({ "Meta": { "owner": "dave" }, "IdempotencyToken": "once" }).to_string();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (code, reply) = agent.send("POST", "/v1/job/render/dispatch", &body);
        assert_eq!(code, 200, "{reply}");
        let reply: Value = serde_json::from_str(&reply).unwrap();
        ids.push(reply["DispatchedJobID"].as_str().unwrap().to_string());
    }
    assert_eq!(ids[0], ids[1]);
    assert_eq!(children(&agent, "render").len(), 3);

    eprintln!("the CLI dispatches with -meta and an input file");
    let input = agent.dir.path().join("input.txt");
    std::fs::write(&input, "hi").unwrap();
    let (code, out) = cli(
        &agent,
        &[
            "job",
            "dispatch",
            "-detach",
            "-meta",
            "owner=carol",
            "render",
            input.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("Dispatched Job ID = "))
        .unwrap_or_else(|| panic!("no dispatched job id in {out}"))
        .trim()
        .to_string();
    assert!(out.contains("Evaluation ID"), "{out}");
    let job = agent.get(&format!("/v1/job/{id}")).unwrap();
    assert_eq!(job["Meta"]["owner"], "carol");
    assert_eq!(job["Payload"], "aGk=");
    let (code, out) = cli(&agent, &["job", "dispatch", "-detach", "render"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("owner"), "{out}");

    eprintln!("only parameterized jobs can be dispatched");
    agent.run_hcl(&template_job("plain", ""));
    let (code, reply) = agent.send("POST", "/v1/job/plain/dispatch", "{}");
    assert_eq!(code, 400, "{reply}");
    assert!(
        reply.contains("Specified job \"plain\" is not a parameterized job"),
        "{reply}"
    );
}

fn unix_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The launch second a periodic child is named after.
fn launch_second(child_id: &str, parent: &str) -> i64 {
    child_id
        .strip_prefix(&format!("{parent}/periodic-"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{child_id} is not a periodic child of {parent}"))
}

#[test]
fn periodic_launches_after_a_restart_neither_repeat_nor_replay_missed_times() {
    let mut agent = Agent::start(1, "");

    eprintln!("a job due every second launches while the server runs");
    agent.run_hcl(&template_job(
        "beat",
        r#"periodic {
    crons = ["* * * * * * *"]
  }"#,
    ));
    agent.wait_for("two beat children", Duration::from_secs(30), |a| {
        (children(a, "beat").len() >= 2).then_some(())
    });

    eprintln!("the server is down while several launch times pass");
    agent.kill9();
    let down_from = unix_seconds();
    std::thread::sleep(Duration::from_secs(4));
    let down_until = unix_seconds();
    agent.spawn();
    agent.wait_ready();
    agent.wait_for("launches after the restart", Duration::from_secs(30), |a| {
        let after = children(a, "beat")
            .iter()
            .filter(|c| launch_second(c["ID"].as_str().unwrap(), "beat") >= down_until)
            .count();
        (after >= 2).then_some(())
    });

    eprintln!("missed times are not replayed one by one, and no launch is repeated");
    let all = children(&agent, "beat");
    let replayed: Vec<&str> = all
        .iter()
        .map(|c| c["ID"].as_str().unwrap())
        .filter(|id| {
            let s = launch_second(id, "beat");
            s > down_from && s < down_until
        })
        .collect();
    assert!(
        replayed.is_empty(),
        "times missed while down were launched: {replayed:?}"
    );
    for child in &all {
        let id = child["ID"].as_str().unwrap();
        let evals = agent.get(&format!("/v1/job/{id}/evaluations")).unwrap();
        let launches = evals
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["TriggeredBy"] == "periodic-job")
            .count();
        assert_eq!(launches, 1, "{id} launched {launches} times");
    }
}

#[test]
fn a_new_leader_continues_periodic_launches_without_repeating_any() {
    use crate::ha_harness::{register_hcl, Servers};
    let mut c = Servers::start(3, "", "");
    let leader = c.wait_for_leader(Duration::from_secs(60));

    eprintln!("the first leader launches children of a job due every second");
    let (code, body) = register_hcl(
        &c.servers[leader],
        &template_job(
            "relay",
            r#"periodic {
    crons = ["* * * * * * *"]
  }"#,
        ),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let list = |c: &Servers, i: usize| -> Vec<String> {
        c.servers[i]
            .get("/v1/jobs")
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter(|j| j["ParentID"] == "relay")
            .map(|j| j["ID"].as_str().unwrap().to_string())
            .collect()
    };
    c.wait_for(
        "launches by the first leader",
        Duration::from_secs(30),
        |c| (list(c, leader).len() >= 2).then_some(()),
    );

    eprintln!("the leader dies; the next one carries on from the replicated launch record");
    c.servers[leader].kill9();
    let killed_s = unix_seconds();
    let new = c.wait_for_leader(Duration::from_secs(60));
    assert_ne!(new, leader);
    c.wait_for("launches by the new leader", Duration::from_secs(30), |c| {
        let later = list(c, new)
            .iter()
            .filter(|id| launch_second(id, "relay") > killed_s + 1)
            .count();
        (later >= 2).then_some(())
    });

    eprintln!("every launch happened exactly once");
    for id in list(&c, new) {
        let evals = c.servers[new]
            .get(&format!("/v1/job/{id}/evaluations"))
            .unwrap();
        let launches = evals
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["TriggeredBy"] == "periodic-job")
            .count();
        assert_eq!(launches, 1, "{id} launched {launches} times");
    }
}
