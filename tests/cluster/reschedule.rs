//! Rescheduling of failed allocations through a real agent: the test is the client node that
//! runs the job, reports its first allocation failed, and watches the servers wait out the
//! group's reschedule delay in a follow-up evaluation before placing the replacement.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::client_proto::{AllocUpdate, ClientRequest, ClientResponse};
use glommio::{LocalExecutorBuilder, Placement};
use net::client::sim::SimNodeSpec;
use net::client::ClientConn;
use sched::structs::{ClientStatus, DesiredStatus, TaskState};
use serde_json::Value;

use crate::harness::Agent;

const DELAY_SECS: i64 = 3;

fn flaky_job() -> String {
    format!(
        r#"job "flaky" {{
  datacenters = ["dc1"]
  type = "service"
  group "g" {{
    count = 1
    reschedule {{
      delay          = "{DELAY_SECS}s"
      delay_function = "constant"
      unlimited      = true
    }}
    task "t" {{
      driver = "raw_exec"
      config {{
        command = "/bin/false"
      }}
      resources {{
        cpu    = 100
        memory = 64
      }}
    }}
  }}
}}
"#
    )
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// One client node on its own executor thread: heartbeats, takes its allocations, reports
/// the first one it is given failed and every later one running.
fn spawn_client(addr: SocketAddr, stop: Arc<AtomicBool>, failed: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        LocalExecutorBuilder::new(Placement::Unbound)
            .io_memory(512 << 10)
            .name("reschedule-test-client")
            .spawn(move || async move {
                let conn = ClientConn::connect(addr).await.expect("connect");
                let mut node = SimNodeSpec::default().node(0);
                node.id = "5e1f0000-0000-4000-8000-00000000c11e".into();
                node.name = "reschedule-client".into();
                node.secret_id = "reschedule-client-secret".into();
                conn.call(ClientRequest::Register { node: node.clone() })
                    .await
                    .expect("register");
                let beat = {
                    let (conn, node, stop) = (conn.clone(), node.clone(), stop.clone());
                    glommio::spawn_local(async move {
                        while !stop.load(Ordering::Relaxed) {
                            let _ = conn
                                .call(ClientRequest::Heartbeat {
                                    node_id: node.id.clone(),
                                    secret_id: node.secret_id.clone(),
                                })
                                .await;
                            glommio::timer::sleep(Duration::from_millis(500)).await;
                        }
                    })
                };
                let mut seen: HashSet<String> = HashSet::new();
                let mut min_index = 0;
                while !stop.load(Ordering::Relaxed) {
                    let reply = conn
                        .call(ClientRequest::GetAllocs {
                            node_id: node.id.clone(),
                            secret_id: node.secret_id.clone(),
                            min_index,
                            max_wait_ms: 300,
                        })
                        .await;
                    let Ok(ClientResponse::Allocs { index, allocs }) = reply else {
                        glommio::timer::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    min_index = min_index.max(index);
                    let mut updates = Vec::new();
                    for a in allocs {
                        if a.desired_status != DesiredStatus::Run
                            || a.client_status != ClientStatus::Pending
                            || !seen.insert(a.id.to_string())
                        {
                            continue;
                        }
                        let fail = failed.lock().unwrap().is_empty();
                        let now = now_ns();
                        let state = TaskState {
                            state: if fail { "dead" } else { "running" }.into(),
                            failed: fail,
                            restarts: 0,
                            started_at_unix_ns: now,
                            finished_at_unix_ns: if fail { now } else { 0 },
                        };
                        if fail {
                            failed.lock().unwrap().push(a.id.to_string());
                        }
                        updates.push(AllocUpdate {
                            alloc_id: a.id.to_string(),
                            node_id: node.id.clone(),
                            client_status: if fail {
                                ClientStatus::Failed
                            } else {
                                ClientStatus::Running
                            },
                            client_description: String::new(),
                            task_states: vec![("t".into(), state)],
                        });
                    }
                    if !updates.is_empty() {
                        conn.call(ClientRequest::UpdateAllocs {
                            node_id: node.id.clone(),
                            secret_id: node.secret_id.clone(),
                            updates,
                        })
                        .await
                        .expect("update allocs");
                    }
                }
                beat.await;
            })
            .expect("spawn client executor")
            .join()
            .expect("client executor");
    });
}

fn find<'a>(allocs: &'a [Value], id: &str) -> Option<&'a Value> {
    allocs.iter().find(|a| a["ID"] == id)
}

#[test]
fn a_failed_allocation_is_replaced_after_its_reschedule_delay() {
    let agent = Agent::start(0, "");
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let addr: SocketAddr = format!("127.0.0.1:{}", agent.rpc).parse().unwrap();
    spawn_client(addr, stop.clone(), failed.clone());
    agent.wait_for("the client node", Duration::from_secs(20), |a| {
        let nodes = a.get("/v1/nodes").ok()?;
        (nodes.as_array()?.iter().any(|n| n["Status"] == "ready")).then_some(())
    });
    agent.run_hcl(&flaky_job());

    // The first allocation fails; the servers answer with a follow-up evaluation that waits
    // for the delay, and point the failed allocation at it.
    let (first, followup_id) = agent.wait_for(
        "the failed allocation to name its follow-up evaluation",
        Duration::from_secs(30),
        |a| {
            let id = failed.lock().unwrap().first().cloned()?;
            let alloc = a.get(&format!("/v1/allocation/{id}")).ok()?;
            let followup = alloc["FollowupEvalID"].as_str()?.to_string();
            (alloc["ClientStatus"] == "failed" && !followup.is_empty()).then_some((alloc, followup))
        },
    );
    let eval = agent
        .get(&format!("/v1/evaluation/{followup_id}"))
        .expect("follow-up evaluation");
    assert_eq!(eval["TriggeredBy"], "alloc-failure", "{eval}");
    let wait_until = eval["WaitUntil"]
        .as_str()
        .expect("WaitUntil set")
        .to_string();
    let finished = first["TaskStates"]["t"]["FinishedAt"]
        .as_str()
        .unwrap()
        .to_string();
    // Whole seconds (`YYYY-MM-DDTHH:MM:SS`): the delay is several seconds long.
    assert!(
        wait_until[..19] > finished[..19],
        "due after the failure: {wait_until} vs {finished}"
    );

    // When the evaluation has run, the replacement names the failed allocation and carries
    // one reschedule event with the group's delay.
    let replacement = agent.wait_for("the replacement to run", Duration::from_secs(30), |a| {
        let old = a
            .get(&format!("/v1/allocation/{}", first["ID"].as_str()?))
            .ok()?;
        let next = old["NextAllocation"].as_str()?;
        let r = a.get(&format!("/v1/allocation/{next}")).ok()?;
        (r["ClientStatus"] == "running").then_some(r)
    });
    let full = replacement;
    assert_eq!(full["PreviousAllocation"], first["ID"]);
    let events = full["RescheduleTracker"]["Events"]
        .as_array()
        .expect("events");
    assert_eq!(events.len(), 1, "{full}");
    assert_eq!(events[0]["PrevAllocID"], first["ID"]);
    assert_eq!(events[0]["Delay"], DELAY_SECS * 1_000_000_000);
    assert!(
        events[0]["RescheduleTime"].as_i64().unwrap()
            >= first["ModifyTime"].as_i64().unwrap() - 1_000_000_000,
        "rescheduled no earlier than the failure: {full}"
    );
    let allocs = agent.job_allocs("flaky");
    assert_eq!(allocs.len(), 2, "one failure, one replacement: {allocs:?}");
    assert!(find(&allocs, first["ID"].as_str().unwrap()).is_some());
    let evals = agent.get("/v1/job/flaky/evaluations").unwrap();
    let done = evals
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ID"] == followup_id.as_str())
        .expect("follow-up listed");
    assert_eq!(done["Status"], "complete", "{done}");
    stop.store(true, Ordering::Relaxed);
}
