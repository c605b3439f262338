//! The `failover` scenario: three real servers on loopback under a steady write load; the
//! leader is killed with SIGKILL, the time to a new leader and to the first placement after
//! it are measured, the server is restarted, and the trial repeats.
//!
//! Each server runs its own simulated client nodes (`-dev-nodes`); nodes of the killed server
//! are expected to go down, a node of a surviving server that goes down is a false node-down.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use super::{http, progress, LoadgenArgs, Report};

/// How long a trial may wait for each of its steps.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

pub(super) struct Server {
    name: String,
    dir: PathBuf,
    http: u16,
    rpc: u16,
    child: Option<Child>,
}

impl Server {
    pub(super) fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    fn rpc_addr(&self) -> String {
        format!("127.0.0.1:{}", self.rpc)
    }

    fn spawn(&mut self, drover: &PathBuf, dev_nodes: usize) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("agent.log"))?;
        let child = Command::new(drover)
            .arg("agent")
            .arg("-server")
            .arg("-config")
            .arg(self.dir.join("agent.hcl"))
            .arg("-dev-nodes")
            .arg(dev_nodes.to_string())
            .arg("-shards")
            .arg("1")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", drover.display()))?;
        self.child = Some(child);
        Ok(())
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn leader(&self) -> String {
        get(&self.base(), "/v1/status/leader")
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub(super) fn get(base: &str, path: &str) -> anyhow::Result<Value> {
    Ok(http::agent(Duration::from_secs(5))
        .get(&format!("{base}{path}"))
        .call()?
        .into_json()?)
}

pub(super) fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The `drover` binary next to this one.
pub(super) fn drover_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .ok_or_else(|| anyhow!("no directory for {}", exe.display()))?
        .join("drover");
    if !path.exists() {
        bail!(
            "{} is missing: build it with `cargo build --release --bins`",
            path.display()
        );
    }
    Ok(path)
}

pub(super) fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn job_body(id: &str) -> Value {
    json!({"Job": {
        "ID": id, "Name": id, "Type": "service", "Datacenters": ["dc1"],
        "TaskGroups": [{"Name": "g", "Count": 1, "Tasks": [{
            "Name": "t", "Driver": "raw_exec", "Config": {"command": "/bin/true"},
            "Resources": {"CPU": 10, "MemoryMB": 10}}]}]}})
}

fn register(base: &str, id: &str) -> bool {
    let r = http::agent(Duration::from_secs(5))
        .put(&format!("{base}/v1/jobs"))
        .send_json(job_body(id));
    r.is_ok()
}

/// Nodes reported down, by name.
fn down_nodes(base: &str) -> BTreeSet<String> {
    get(base, "/v1/nodes?stale=true")
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter(|n| n["Status"] == "down")
        .filter_map(|n| n["Name"].as_str().map(str::to_string))
        .collect()
}

fn summary(values: &[f64]) -> Value {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return json!(null);
    }
    json!({"min": v[0], "median": v[v.len() / 2], "max": v[v.len() - 1]})
}

/// Runs the scenario; `args.nodes` is the number of simulated nodes per server.
/// Starts three servers under `root` (one directory each, loopback ports, `extra_hcl` added
/// to every configuration), each with `dev_nodes` simulated nodes, and waits until they agree
/// on a leader; returns them and the leader's position.
pub(super) fn start_three(
    root: &std::path::Path,
    drover: &PathBuf,
    dev_nodes: usize,
    extra_hcl: &str,
) -> anyhow::Result<(Vec<Server>, usize)> {
    let mut servers = Vec::new();
    for i in 0..3 {
        let dir = root.join(format!("s{i}"));
        std::fs::create_dir_all(&dir)?;
        servers.push((dir, free_port()?, free_port()?, free_port()?));
    }
    let serfs: Vec<String> = servers
        .iter()
        .map(|(_, _, _, serf)| format!("\"127.0.0.1:{serf}\""))
        .collect();
    let mut running = Vec::new();
    for (i, (dir, http_port, rpc, serf)) in servers.into_iter().enumerate() {
        let config = format!(
            "name = \"s{i}\"\nbind_addr = \"127.0.0.1\"\ndata_dir = \"{}\"\nports {{\n  http = {http_port}\n  rpc = {rpc}\n  serf = {serf}\n}}\nserver {{\n  enabled = true\n  bootstrap_expect = 3\n  server_join {{\n    retry_join = [{}]\n    retry_interval = \"1s\"\n  }}\n}}\n{extra_hcl}\n",
            dir.join("data").display(),
            serfs.join(", ")
        );
        std::fs::File::create(dir.join("agent.hcl"))?.write_all(config.as_bytes())?;
        let mut s = Server {
            name: format!("s{i}"),
            dir,
            http: http_port,
            rpc,
            child: None,
        };
        s.spawn(drover, dev_nodes)?;
        running.push(s);
    }
    let leader = wait_until("the cluster to form", || agreed(&running))?;
    Ok((running, leader))
}

/// Runs the place or c1m scenario against a three-server cluster of its own: the servers
/// start with no simulated nodes of their own, the load generator's fleet and submitters
/// talk to the leader, and the servers stop when the run ends, whatever its outcome.
pub(super) fn run_on_three(args: &LoadgenArgs) -> anyhow::Result<Report> {
    let drover = drover_binary()?;
    let root = tempfile::tempdir()?;
    let (servers, leader) = start_three(root.path(), &drover, 0, "")?;
    let mut report = super::run(LoadgenArgs {
        http: servers[leader].base(),
        rpc: servers[leader].rpc_addr(),
        servers: 1,
        ..args.clone()
    })?;
    report.json["params"]["servers"] = json!(3);
    drop(servers);
    Ok(report)
}

/// The position of the leader all servers name, if they agree.
fn agreed(servers: &[Server]) -> Option<usize> {
    let leaders: Vec<String> = servers.iter().map(Server::leader).collect();
    if leaders.iter().any(String::is_empty) || leaders.iter().any(|l| *l != leaders[0]) {
        return None;
    }
    servers.iter().position(|s| s.rpc_addr() == leaders[0])
}

pub(super) fn run(args: &LoadgenArgs) -> anyhow::Result<Report> {
    let drover = drover_binary()?;
    let root = tempfile::tempdir()?;
    let (mut servers, _) = start_three(root.path(), &drover, args.nodes, "")?;
    let expected_nodes = args.nodes * 3;
    wait_until("every simulated node to register", || {
        let nodes = get(&servers[0].base(), "/v1/nodes?stale=true").ok()?;
        let ready = nodes
            .as_array()?
            .iter()
            .filter(|n| n["Status"] == "ready")
            .count();
        (ready >= expected_nodes).then_some(())
    })?;

    // Steady load: one writer registering jobs through every server in turn.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let bases: Vec<String> = servers.iter().map(Server::base).collect();
    let writer = {
        let stop = stop.clone();
        let written = written.clone();
        let refused = refused.clone();
        std::thread::spawn(move || {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let base = &bases[n % bases.len()];
                if register(base, &format!("steady-{n}")) {
                    written.fetch_add(1, Ordering::Relaxed);
                } else {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let bar = progress(args.trials as u64, "trials");
    let mut to_leader = Vec::new();
    let mut to_placement = Vec::new();
    let mut false_downs = 0usize;
    for trial in 0..args.trials {
        let old = wait_until("an agreed leader", || agreed(&servers))?;
        let old_addr = servers[old].rpc_addr();
        let survivors: Vec<usize> = (0..3).filter(|i| *i != old).collect();
        let killed_name = servers[old].name.clone();
        servers[old].kill9();
        let killed_at = Instant::now();
        let new_leader = wait_until("a new leader", || {
            survivors.iter().find_map(|i| {
                let l = servers[*i].leader();
                (!l.is_empty() && l != old_addr).then_some(l)
            })
        })?;
        to_leader.push(killed_at.elapsed().as_secs_f64());
        let probe = format!("probe-{trial}");
        let via = servers
            .iter()
            .find(|s| s.rpc_addr() == new_leader)
            .map(Server::base)
            .unwrap_or_else(|| servers[survivors[0]].base());
        wait_until("the probe job to be accepted", || {
            register(&via, &probe).then_some(())
        })?;
        wait_until("the probe job's first placement", || {
            let allocs = get(&via, &format!("/v1/job/{probe}/allocations")).ok()?;
            (!allocs.as_array()?.is_empty()).then_some(())
        })?;
        to_placement.push(killed_at.elapsed().as_secs_f64());
        false_downs += down_nodes(&via)
            .iter()
            .filter(|n| !n.starts_with(&format!("{killed_name}-")))
            .count();
        servers[old].spawn(&drover, args.nodes)?;
        // The next trial starts from a healthy cluster: the restarted server follows the
        // leader and autopilot counts every server healthy (caught up within
        // max_trailing_logs). Killing the leader earlier measures a lagging server's vote.
        wait_until("the restarted server to rejoin and catch up", || {
            let leader = agreed(&servers)?;
            let health = get(&servers[leader].base(), "/v1/operator/autopilot/health").ok()?;
            let servers_ok = health["Servers"]
                .as_array()?
                .iter()
                .filter(|s| s["Healthy"] == true)
                .count();
            let index = |s: &Server| {
                get(&s.base(), "/v1/operator/raft/configuration")
                    .ok()
                    .and_then(|v| v["Index"].as_u64())
            };
            let leader_index = index(&servers[leader])?;
            let restarted_index = index(&servers[old])?;
            (servers_ok == 3 && restarted_index + 2 >= leader_index).then_some(())
        })?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    stop.store(true, Ordering::Relaxed);
    let _ = writer.join();
    let json = json!({
        "scenario": "failover",
        "params": {"servers": 3, "nodes_per_server": args.nodes, "trials": args.trials},
        "seconds_to_new_leader": summary(&to_leader),
        "seconds_to_new_leader_each": to_leader,
        "seconds_to_first_placement": summary(&to_placement),
        "false_node_downs": false_downs,
        "steady_writes_acknowledged": written.load(Ordering::Relaxed),
        "steady_writes_failed": refused.load(Ordering::Relaxed),
    });
    Ok(Report {
        json,
        completed: true,
    })
}
