//! High availability under harder faults: two of five servers lost, operator removal of
//! servers, autopilot cleanup, elections under node heartbeats, a paused and a cut-off
//! leader, repeated crashes, join failures at start, and catch-up through a snapshot.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ha_harness::{register_hcl, tiny_job, Server, Servers};
use crate::harness::{bin, free_port};

/// The job IDs server `s` lists (`stale` lets a follower answer from its own state).
fn job_ids(s: &Server, stale: bool) -> Option<BTreeSet<String>> {
    let path = if stale {
        "/v1/jobs?stale=true"
    } else {
        "/v1/jobs"
    };
    let jobs = s.get(path).ok()?;
    Some(
        jobs.as_array()?
            .iter()
            .filter_map(|j| j["ID"].as_str().map(str::to_string))
            .collect(),
    )
}

/// Indices of the running servers other than `leader`.
fn followers(c: &Servers, leader: usize) -> Vec<usize> {
    (0..c.servers.len())
        .filter(|i| *i != leader && c.servers[*i].child.is_some())
        .collect()
}

/// The raft configuration's server addresses as `s` reports them.
fn raft_addrs(s: &Server) -> Option<Vec<String>> {
    let raft = s.get("/v1/operator/raft/configuration").ok()?;
    Some(
        raft["Servers"]
            .as_array()?
            .iter()
            .filter_map(|v| v["Address"].as_str().map(str::to_string))
            .collect(),
    )
}

/// The gossip status ("alive", "failed", "left") of member `name` as `s` reports it.
fn member_status(s: &Server, name: &str) -> Option<String> {
    let m = s.get("/v1/agent/members").ok()?;
    m["Members"]
        .as_array()?
        .iter()
        .find(|m| {
            let n = m["Name"].as_str().unwrap_or("");
            n == name || n.split('.').next() == Some(name)
        })
        .and_then(|m| m["Status"].as_str().map(str::to_string))
}

/// Runs the CLI against server `s`; returns (exit code, stdout + stderr).
fn cli(s: &Server, args: &[&str]) -> (i32, String) {
    let out = Command::new(bin("drover"))
        .args(args)
        .arg("-address")
        .arg(format!("http://127.0.0.1:{}", s.http))
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

/// Allocation count of `job` as `s` reports it (a default read: answered by the leader).
fn alloc_count(s: &Server, job: &str) -> Option<usize> {
    let allocs = s.get(&format!("/v1/job/{job}/allocations")).ok()?;
    Some(allocs.as_array()?.len())
}

/// Node statuses (name, status) from `/v1/nodes` on `s`.
fn node_statuses(s: &Server) -> Option<Vec<(String, String)>> {
    let nodes = s.get("/v1/nodes").ok()?;
    Some(
        nodes
            .as_array()?
            .iter()
            .map(|n| {
                (
                    n["Name"].as_str().unwrap_or("").to_string(),
                    n["Status"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect(),
    )
}

#[test]
fn five_servers_survive_the_loss_of_two() {
    let mut c = Servers::start(5, "", "");
    let mut acked = BTreeSet::new();
    let leader = c.wait_for_leader(Duration::from_secs(30));
    for i in 0..10 {
        let name = format!("five-before-{i}");
        let (code, body) = register_hcl(&c.servers[i % 5], &tiny_job(&name, 1)).unwrap();
        assert_eq!(code, 200, "{body}");
        acked.insert(name);
    }
    let other = followers(&c, leader)[0];
    let old_addr = c.servers[leader].rpc_addr();
    c.servers[leader].kill9();
    c.servers[other].kill9();
    let new = c.wait_for_leader(Duration::from_secs(30));
    assert_ne!(c.servers[new].rpc_addr(), old_addr);
    assert!(c.servers[new].child.is_some());
    let alive: Vec<usize> = (0..5).filter(|i| c.servers[*i].child.is_some()).collect();
    assert_eq!(alive.len(), 3);
    for (k, i) in alive.iter().enumerate() {
        let name = format!("five-after-{k}");
        let (code, body) = register_hcl(&c.servers[*i], &tiny_job(&name, 1)).unwrap();
        assert_eq!(
            code, 200,
            "write through {} with 3 of 5: {body}",
            c.servers[*i].name
        );
        acked.insert(name);
    }
    let listed = job_ids(&c.servers[new], false).expect("jobs from the new leader");
    let lost: Vec<&String> = acked.difference(&listed).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    for i in alive {
        let s = &c.servers[i];
        c.wait_for(
            "every survivor to hold every write",
            Duration::from_secs(10),
            |_| acked.is_subset(&job_ids(s, true)?).then_some(()),
        );
    }
}

#[test]
fn remove_peer_and_force_leave_drop_a_dead_server() {
    // A long stabilization time keeps autopilot from removing the server before the operator.
    let mut c = Servers::start(
        3,
        "",
        "autopilot {\n  server_stabilization_time = \"10m\"\n}",
    );
    let leader = c.wait_for_leader(Duration::from_secs(30));
    let dead = followers(&c, leader)[0];
    let dead_addr = c.servers[dead].rpc_addr();
    let dead_name = c.servers[dead].name.clone();
    c.servers[dead].kill9();
    let l = &c.servers[leader];

    let (code, out) = cli(
        l,
        &[
            "operator",
            "raft",
            "remove-peer",
            "-peer-address",
            &dead_addr,
        ],
    );
    assert_eq!(code, 0, "remove-peer failed: {out}");
    c.wait_for(
        "the peer to leave the raft configuration",
        Duration::from_secs(10),
        |_| {
            let addrs = raft_addrs(l)?;
            (addrs.len() == 2 && !addrs.contains(&dead_addr)).then_some(())
        },
    );
    // The two that are left still have a quorum.
    let (code, body) = register_hcl(l, &tiny_job("after-remove", 1)).unwrap();
    assert_eq!(code, 200, "{body}");

    let (code, out) = cli(
        l,
        &[
            "operator",
            "raft",
            "remove-peer",
            "-peer-id",
            "no-such-peer-77",
        ],
    );
    assert_ne!(code, 0, "removing an unknown peer must fail: {out}");
    assert!(
        out.contains("no-such-peer-77"),
        "error names the peer: {out}"
    );
    let (code, out) = cli(
        l,
        &[
            "operator",
            "raft",
            "remove-peer",
            "-peer-address",
            &dead_addr,
        ],
    );
    assert_ne!(code, 0, "removing a removed peer must fail: {out}");
    assert!(out.contains(&dead_addr), "error names the address: {out}");

    // Every server first notices the failure, then force-leave marks it left (see
    // `force_leave_before_the_failure_is_noticed_still_marks_it_left` for the other order).
    for i in (0..3).filter(|i| c.servers[*i].child.is_some()) {
        let s = &c.servers[i];
        c.wait_for(
            "the killed server to be failed",
            Duration::from_secs(30),
            |_| (member_status(s, &dead_name)? == "failed").then_some(()),
        );
    }
    let (code, out) = cli(l, &["server", "force-leave", &dead_name]);
    assert_eq!(code, 0, "force-leave failed: {out}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let seen: Vec<(String, Option<String>)> = (0..3)
            .filter(|i| c.servers[*i].child.is_some())
            .map(|i| {
                let s = &c.servers[i];
                (s.name.clone(), member_status(s, &dead_name))
            })
            .collect();
        if seen.iter().all(|(_, st)| st.as_deref() == Some("left")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{dead_name} is not left everywhere after force-leave: {seen:?}\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, out) = cli(l, &["server", "force-leave", "no-such-server-77"]);
    assert_ne!(code, 0, "force-leave of an unknown server must fail: {out}");
    assert!(out.contains("no-such-server-77"), "{out}");
}

/// The statuses of member `name` on every running server.
fn statuses_everywhere(c: &Servers, name: &str) -> Vec<(String, Option<String>)> {
    c.servers
        .iter()
        .filter(|s| s.child.is_some())
        .map(|s| (s.name.clone(), member_status(s, name)))
        .collect()
}

#[test]
fn force_leave_before_the_failure_is_noticed_still_marks_it_left() {
    let mut c = Servers::start(
        3,
        "",
        "autopilot {\n  server_stabilization_time = \"10m\"\n}",
    );
    let leader = c.wait_for_leader(Duration::from_secs(30));
    let dead = followers(&c, leader)[0];
    let dead_name = c.servers[dead].name.clone();
    c.servers[dead].kill9();
    // At once, before the pool has declared it failed: Serf keeps such an intent and applies
    // it when the failure is detected, so the server still ends up left.
    let (code, out) = cli(&c.servers[leader], &["server", "force-leave", &dead_name]);
    assert_eq!(code, 0, "force-leave failed: {out}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = statuses_everywhere(&c, &dead_name);
        if seen.iter().all(|(_, st)| st.as_deref() == Some("left")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{dead_name} is not left everywhere 30 s after force-leave: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn autopilot_removes_a_dead_server_after_stabilization() {
    let mut c = Servers::start(
        3,
        "",
        "autopilot {\n  server_stabilization_time = \"2s\"\n}",
    );
    let leader = c.wait_for_leader(Duration::from_secs(30));
    let dead = followers(&c, leader)[0];
    let dead_addr = c.servers[dead].rpc_addr();
    c.servers[dead].kill9();
    let killed = Instant::now();
    let l = &c.servers[leader];
    c.wait_for(
        "autopilot to remove the dead server",
        Duration::from_secs(40),
        |_| {
            let addrs = raft_addrs(l)?;
            (addrs.len() == 2 && !addrs.contains(&dead_addr)).then_some(())
        },
    );
    eprintln!("autopilot removed {dead_addr} after {:?}", killed.elapsed());
    let (code, body) = register_hcl(l, &tiny_job("after-cleanup", 1)).unwrap();
    assert_eq!(code, 200, "{body}");
}

#[test]
fn autopilot_keeps_a_dead_server_when_cleanup_is_off() {
    let top =
        "autopilot {\n  server_stabilization_time = \"2s\"\n  cleanup_dead_servers = false\n}";
    let mut c = Servers::start(3, "", top);
    let leader = c.wait_for_leader(Duration::from_secs(30));
    let dead = followers(&c, leader)[0];
    let dead_addr = c.servers[dead].rpc_addr();
    let dead_name = c.servers[dead].name.clone();
    c.servers[dead].kill9();
    let l = &c.servers[leader];
    c.wait_for(
        "the killed server to be failed",
        Duration::from_secs(30),
        |_| (member_status(l, &dead_name)? == "failed").then_some(()),
    );
    // Well past the stabilization time the dead server is still a member of the configuration.
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        let addrs = raft_addrs(l).expect("raft configuration");
        assert!(
            addrs.contains(&dead_addr),
            "removed although cleanup is off: {addrs:?}"
        );
        assert_eq!(addrs.len(), 3, "{addrs:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn an_election_under_100_heartbeating_nodes_marks_none_down() {
    let mut c = Servers::start(3, "", "");
    // Move the nodes onto one follower: restart it with simulated nodes.
    let leader = c.wait_for_leader(Duration::from_secs(30));
    let with_nodes = followers(&c, leader)[0];
    c.servers[with_nodes].kill9();
    c.servers[with_nodes].args = vec!["-dev-nodes".into(), "100".into()];
    c.servers[with_nodes].spawn();
    let mut leader = c.wait_for_leader(Duration::from_secs(30));
    // The server with the nodes must not be the one killed: restarting it passes leadership on.
    let mut attempts = 0;
    while leader == with_nodes {
        attempts += 1;
        assert!(
            attempts < 4,
            "the server with the nodes keeps winning elections"
        );
        c.servers[with_nodes].kill9();
        c.servers[with_nodes].spawn();
        leader = c.wait_for_leader(Duration::from_secs(30));
    }
    let l = &c.servers[leader];
    c.wait_for("100 ready nodes", Duration::from_secs(60), |_| {
        let nodes = node_statuses(l)?;
        (nodes.iter().filter(|(_, s)| s == "ready").count() == 100).then_some(())
    });
    let old_addr = l.rpc_addr();
    c.servers[leader].kill9();
    let new = c.wait_for_leader(Duration::from_secs(30));
    assert_ne!(c.servers[new].rpc_addr(), old_addr);
    // Either survivor may win. When the one without the nodes does, their heartbeats are
    // forwarded to it across the election; otherwise they reach the new leader directly.
    eprintln!(
        "new leader {} (nodes on {})",
        c.servers[new].name, c.servers[with_nodes].name
    );
    let s = &c.servers[new];
    let until = Instant::now() + Duration::from_secs(15);
    let mut checks = 0;
    while Instant::now() < until {
        if let Some(nodes) = node_statuses(s) {
            let not_ready: Vec<&(String, String)> =
                nodes.iter().filter(|(_, st)| st != "ready").collect();
            assert!(not_ready.is_empty(), "after the election: {not_ready:?}");
            assert_eq!(nodes.len(), 100, "node count changed");
            checks += 1;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        checks > 20,
        "the new leader answered /v1/nodes only {checks} times"
    );
}

#[test]
fn a_paused_leader_steps_down_and_forwards_after_it_resumes() {
    let mut c = Servers::prepare(3, "", "");
    for s in &mut c.servers {
        s.args = vec!["-dev-nodes".into(), "2".into()];
    }
    c.spawn_all();
    let leader = c.wait_for_leader(Duration::from_secs(60));
    let (code, body) = register_hcl(&c.servers[leader], &tiny_job("before-pause", 3)).unwrap();
    assert_eq!(code, 200, "{body}");
    c.wait_for("3 allocations placed", Duration::from_secs(30), |c| {
        (alloc_count(&c.servers[leader], "before-pause")? == 3).then_some(())
    });

    let old_addr = c.servers[leader].rpc_addr();
    let others = followers(&c, leader);
    c.servers[leader].signal(libc::SIGSTOP);
    let paused = Instant::now();
    let new = c.wait_for(
        "a new leader among the others",
        Duration::from_secs(30),
        |c| c.leader_among(&others),
    );
    eprintln!("new leader after {:?}", paused.elapsed());
    assert_ne!(c.servers[new].rpc_addr(), old_addr);
    let (code, body) = register_hcl(&c.servers[new], &tiny_job("during-pause", 1)).unwrap();
    assert_eq!(code, 200, "{body}");
    if let Some(rest) = Duration::from_secs(5).checked_sub(paused.elapsed()) {
        std::thread::sleep(rest);
    }
    c.servers[leader].signal(libc::SIGCONT);
    let resumed = Instant::now();
    let new_addr = c.servers[new].rpc_addr();
    let old = &c.servers[leader];
    c.wait_for(
        "the resumed server to follow the new leader",
        Duration::from_secs(10),
        |_| (old.leader() == new_addr).then_some(()),
    );
    eprintln!("old leader follows after {:?}", resumed.elapsed());
    let (code, body) = register_hcl(old, &tiny_job("after-resume", 1)).unwrap();
    assert_eq!(code, 200, "write through the resumed server: {body}");
    let listed = job_ids(&c.servers[new], false).unwrap();
    for j in ["before-pause", "during-pause", "after-resume"] {
        assert!(listed.contains(j), "{j} missing: {listed:?}");
    }
    // No allocation was placed twice: the count stays 3 while things settle.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let n = alloc_count(&c.servers[new], "before-pause").expect("allocations");
        assert_eq!(n, 3, "allocations of before-pause after the pause");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn an_isolated_leader_stops_leading_and_catches_up_when_healed() {
    let c = Servers::start(3, "", "");
    let leader = c.wait_for_leader(Duration::from_secs(30));
    let (code, body) = register_hcl(&c.servers[leader], &tiny_job("before-cut", 1)).unwrap();
    assert_eq!(code, 200, "{body}");
    let others = followers(&c, leader);
    let old = &c.servers[leader];
    c.isolate(leader);
    let cut = Instant::now();
    let new = c.wait_for(
        "a new leader among the others",
        Duration::from_secs(30),
        |c| c.leader_among(&others),
    );
    eprintln!("new leader after {:?}", cut.elapsed());
    c.wait_for(
        "the cut-off leader to stop claiming",
        Duration::from_secs(10),
        |_| (old.leader() != old.rpc_addr()).then_some(()),
    );
    let stepped_down = cut.elapsed();
    eprintln!("cut-off leader stepped down after {stepped_down:?}");
    assert!(stepped_down < Duration::from_secs(6), "{stepped_down:?}");
    let (code, body) = register_hcl(old, &tiny_job("through-cut-off", 1)).unwrap();
    assert_eq!(code, 500, "a write through the cut-off server: {body}");

    let mut during = BTreeSet::new();
    for i in 0..5 {
        let name = format!("during-cut-{i}");
        let (code, body) = register_hcl(&c.servers[new], &tiny_job(&name, 1)).unwrap();
        assert_eq!(code, 200, "{body}");
        during.insert(name);
    }
    c.heal_all();
    let new_addr = c.servers[new].rpc_addr();
    c.wait_for(
        "the healed server to follow",
        Duration::from_secs(20),
        |_| (old.leader() == new_addr).then_some(()),
    );
    c.wait_for(
        "the healed server to hold the writes",
        Duration::from_secs(20),
        |_| during.is_subset(&job_ids(old, true)?).then_some(()),
    );
    let listed = job_ids(&c.servers[new], false).unwrap();
    assert!(
        !listed.contains("through-cut-off"),
        "a refused write appeared: {listed:?}"
    );
    assert!(listed.contains("before-cut"));
}

/// A small xorshift generator: reproducible choices from a seed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Registers `name` through the HTTP port `http`; true when the API acknowledged it.
fn register_at(http: u16, name: &str) -> bool {
    let base = format!("http://127.0.0.1:{http}");
    let body = serde_json::json!({ "JobHCL": tiny_job(name, 1), "Canonicalize": true });
    let timeout = Duration::from_secs(5);
    let Ok(resp) = ureq::post(&format!("{base}/v1/jobs/parse"))
        .timeout(timeout)
        .send_string(&body.to_string())
    else {
        return false;
    };
    let Ok(job) = resp.into_json::<Value>() else {
        return false;
    };
    let body = serde_json::json!({ "Job": job }).to_string();
    matches!(
        ureq::put(&format!("{base}/v1/jobs")).timeout(timeout).send_string(&body),
        Ok(resp) if resp.status() == 200
    )
}

#[test]
fn chaos_of_repeated_crashes_loses_no_acknowledged_write() {
    let rounds: usize = std::env::var("DROVER_CHAOS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("DROVER_CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_d20e);
    eprintln!("chaos: {rounds} rounds, seed {seed}");
    let started = Instant::now();
    let mut c = Servers::start(3, "", "");
    let ports: Vec<u16> = c.servers.iter().map(|s| s.http).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let writer = {
        let stop = stop.clone();
        let acked = acked.clone();
        std::thread::spawn(move || {
            let mut i = 0usize;
            let mut attempts = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("chaos-{i}");
                attempts += 1;
                if register_at(ports[i % ports.len()], &name) {
                    acked.lock().unwrap().insert(name);
                } else {
                    // The target is down or has no leader: give the cluster a moment.
                    std::thread::sleep(Duration::from_millis(50));
                }
                i += 1;
            }
            attempts
        })
    };
    let mut rng = XorShift(seed.max(1));
    for round in 0..rounds {
        let victim = rng.below(3) as usize;
        c.servers[victim].kill9();
        std::thread::sleep(Duration::from_millis(1000 + rng.below(1000)));
        c.servers[victim].spawn();
        let leader = c.wait_for_leader(Duration::from_secs(60));
        eprintln!(
            "round {round}: killed {}, leader {} at {:?}",
            c.servers[victim].name,
            c.servers[leader].name,
            started.elapsed()
        );
    }
    stop.store(true, Ordering::Relaxed);
    let attempts = writer.join().expect("writer thread");
    let acked = acked.lock().unwrap().clone();
    assert!(
        !acked.is_empty(),
        "no write was acknowledged in {attempts} attempts"
    );
    let agreed = c.wait_for(
        "every server to list the same jobs",
        Duration::from_secs(30),
        |c| {
            let sets: Vec<BTreeSet<String>> = c
                .servers
                .iter()
                .map(|s| job_ids(s, true))
                .collect::<Option<_>>()?;
            sets.windows(2)
                .all(|w| w[0] == w[1])
                .then(|| sets[0].clone())
        },
    );
    let lost: Vec<&String> = acked.difference(&agreed).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    eprintln!(
        "chaos: {rounds} rounds, {} of {attempts} writes acknowledged, {} jobs listed, {:?}",
        acked.len(),
        agreed.len(),
        started.elapsed()
    );
}

/// A lone server that expects a peer, joining addresses where nothing listens.
fn lone_server(join: &str) -> Server {
    let mut s = Server::new("lone");
    s.hcl = format!("server {{\n  enabled = true\n  bootstrap_expect = 2\n{join}\n}}\n");
    s
}

#[test]
fn exhausted_retry_join_and_failed_start_join_stop_the_agent() {
    let nowhere = format!("127.0.0.1:{}", free_port());
    let mut s = lone_server(&format!(
        "  server_join {{\n    retry_join = [\"{nowhere}\"]\n    retry_max = 2\n    retry_interval = \"1s\"\n  }}"
    ));
    s.spawn();
    let code = s.wait_exit(Duration::from_secs(30));
    assert_eq!(
        code,
        Some(1),
        "exit code after retry_max; log:\n{}",
        s.log()
    );
    assert!(s.log().contains("max join retry exhausted"), "{}", s.log());

    let nowhere = format!("127.0.0.1:{}", free_port());
    let mut s = lone_server(&format!(
        "  server_join {{\n    start_join = [\"{nowhere}\"]\n  }}"
    ));
    s.spawn();
    let code = s.wait_exit(Duration::from_secs(30));
    assert!(
        matches!(code, Some(c) if c != 0),
        "exit code {code:?}; log:\n{}",
        s.log()
    );
    assert!(
        s.log().contains(&nowhere),
        "the log names {nowhere}:\n{}",
        s.log()
    );
}

/// Every snapshot file under `dir`.
fn snapshot_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(snapshot_files(&p));
        } else if p.extension().is_some_and(|x| x == "snap") {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_far_behind_follower_catches_up_through_a_snapshot() {
    let extra = "  raft_snapshot_threshold = 10\n  raft_snapshot_interval = \"1s\"\n  raft_trailing_logs = 5";
    let mut c = Servers::start(3, extra, "");
    let leader = c.wait_for_leader(Duration::from_secs(30));
    let behind = followers(&c, leader)[0];
    c.servers[behind].kill9();
    let mut names = BTreeSet::new();
    for i in 0..100 {
        let name = format!("snap-{i}");
        let (code, body) = register_hcl(&c.servers[leader], &tiny_job(&name, 1)).unwrap();
        assert_eq!(code, 200, "{body}");
        names.insert(name);
    }
    let data = c.servers[leader].data_dir();
    c.wait_for("a snapshot on the leader", Duration::from_secs(15), |_| {
        (!snapshot_files(&data).is_empty()).then_some(())
    });
    // One more interval so the log behind the snapshot is purged too.
    std::thread::sleep(Duration::from_secs(2));
    c.servers[behind].spawn();
    let s = &c.servers[behind];
    c.wait_for(
        "the restarted follower to list all 100 jobs",
        Duration::from_secs(30),
        |_| names.is_subset(&job_ids(s, true)?).then_some(()),
    );
    // A snapshot the follower holds but did not write itself came from the leader.
    let by_leader = written_snapshot_indexes(&c.servers[leader].log());
    assert!(
        !by_leader.is_empty(),
        "the leader logs the snapshots it writes"
    );
    let written = written_snapshot_indexes(&s.log());
    let files: Vec<u64> = snapshot_files(&s.data_dir())
        .iter()
        .filter_map(|p| p.file_stem()?.to_str()?.split('-').next()?.parse().ok())
        .collect();
    eprintln!("follower snapshots at {files:?}, written locally at {written:?}");
    assert!(
        files.iter().any(|i| !written.contains(i)),
        "no installed snapshot: files at {files:?}, written locally at {written:?}"
    );
}

/// The indexes of the snapshots a server's log says it wrote itself.
fn written_snapshot_indexes(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|l| l.contains("snapshot written"))
        .filter_map(|l| {
            // Drop colour escapes so `index=N` reads plainly.
            let mut plain = String::new();
            let mut chars = l.chars();
            while let Some(ch) = chars.next() {
                if ch == '\u{1b}' {
                    for c in chars.by_ref() {
                        if c == 'm' {
                            break;
                        }
                    }
                } else {
                    plain.push(ch);
                }
            }
            let rest = &plain[plain.find("index=")? + "index=".len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}
