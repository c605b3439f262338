//! A node that stops heartbeating goes down; its allocations are lost and replaced.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use glommio::{LocalExecutorBuilder, Placement};
use net::client::sim::{run_sim_nodes, SimNodeSpec, SimStats};

use crate::harness::{service_job, Agent};

/// Simulated nodes in their own executor thread; dropping the fleet stops their heartbeats.
struct Fleet {
    stop: Arc<AtomicBool>,
    thread: Option<glommio::ExecutorJoinHandle<()>>,
}

impl Fleet {
    fn start(rpc: u16, spec: SimNodeSpec) -> Fleet {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let addr: SocketAddr = ([127, 0, 0, 1], rpc).into();
        let thread = LocalExecutorBuilder::new(Placement::Unbound)
            .io_memory(512 << 10)
            .spawn(move || async move {
                let stopped = async move {
                    while !flag.load(Ordering::Relaxed) {
                        glommio::timer::sleep(Duration::from_millis(50)).await;
                    }
                };
                let _keep = Rc::new(Cell::new(0));
                run_sim_nodes(addr, spec, 1, Rc::new(SimStats::new()), stopped).await;
            })
            .unwrap();
        Fleet {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn missed_heartbeats_mark_node_down_and_replace_its_allocations() {
    let agent = Agent::start(
        0,
        "server {\n  min_heartbeat_ttl = \"1s\"\n  heartbeat_grace = \"1s\"\n}\n",
    );
    tracing_free_phase("phase 1: two small nodes take both allocations");
    let doomed = Fleet::start(
        agent.rpc,
        SimNodeSpec {
            count: 2,
            memory_mb: 1200,
            name_prefix: "doomed".into(),
            seed: 7,
            ..SimNodeSpec::default()
        },
    );
    agent.wait_for("2 nodes", Duration::from_secs(20), |a| {
        (a.get("/v1/nodes").ok()?.as_array()?.len() == 2).then_some(())
    });
    agent.run_hcl(&service_job("survivor", 2, 100, 1000));
    let first = agent.wait_for("2 running", Duration::from_secs(20), |a| {
        let allocs = a.job_allocs("survivor");
        (crate::harness::count_running(&allocs) == 2).then_some(allocs)
    });

    tracing_free_phase("phase 2: healthy nodes join, the first ones stop heartbeating");
    let _healthy = Fleet::start(
        agent.rpc,
        SimNodeSpec {
            count: 2,
            memory_mb: 4096,
            name_prefix: "healthy".into(),
            seed: 8,
            ..SimNodeSpec::default()
        },
    );
    agent.wait_for("4 nodes", Duration::from_secs(20), |a| {
        (a.get("/v1/nodes").ok()?.as_array()?.len() == 4).then_some(())
    });
    let doomed_nodes: Vec<String> = first
        .iter()
        .map(|a| a["NodeID"].as_str().unwrap().to_string())
        .collect();
    drop(doomed);

    tracing_free_phase("phase 3: nodes down, allocations lost, replacements running elsewhere");
    agent.wait_for("doomed nodes down", Duration::from_secs(30), |a| {
        let nodes = a.get("/v1/nodes").ok()?;
        let down = nodes
            .as_array()?
            .iter()
            .filter(|n| n["Status"] == "down")
            .count();
        (down == 2).then_some(())
    });
    agent.wait_for(
        "replacements running on healthy nodes",
        Duration::from_secs(30),
        |a| {
            let allocs = a.job_allocs("survivor");
            let lost = allocs
                .iter()
                .filter(|x| x["ClientStatus"] == "lost")
                .count();
            let running: Vec<&serde_json::Value> = allocs
                .iter()
                .filter(|x| x["ClientStatus"] == "running" && x["DesiredStatus"] == "run")
                .collect();
            let elsewhere = running
                .iter()
                .all(|x| !doomed_nodes.contains(&x["NodeID"].as_str().unwrap().to_string()));
            (lost == 2 && running.len() == 2 && elsewhere).then_some(())
        },
    );
}

fn tracing_free_phase(what: &str) {
    eprintln!("== {what}");
}
