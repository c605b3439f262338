//! `drover-loadgen`: drives a server with a simulated fleet and reports one JSON line.
//!
//! Scenarios: `place` (register nodes, submit jobs over HTTP, time until every allocation is
//! placed and running as the simulated nodes see it), `c1m` (`place` at the C1M shape), `heartbeats` (hold a fleet on the
//! heartbeat path and measure rate, latency and false node-downs), `api` (register many jobs,
//! time `GET /v1/jobs`), `failover` (three servers of its own, leader killed per trial) and
//! `restart` (one server of its own, filled, restarted, timed until it serves again) and
//! `raft` (three servers of its own, raw replicated writes; optionally a local etcd too).
//! Start at `run`.

mod failover;
mod http;
mod raft;
mod restart;
mod scenario;
pub mod series;

use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{anyhow, Context};
use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

/// How long the reachability checks wait for the server.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(5);

/// What to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Register nodes, submit jobs, wait until every allocation is placed and running.
    Place,
    /// `place` with the C1M shape: 5,000 nodes of 16,000 MHz / 32 GiB, 1,000 service jobs of
    /// count 1,000 asking 50 MHz / 32 MiB; `-nodes`, `-jobs`, `-count` and the sizes are fixed.
    C1m,
    /// Keep nodes heartbeating for a while; report rate, latency and false node-downs.
    Heartbeats,
    /// Register `-jobs` jobs, then time `-queries` reads of `GET /v1/jobs`.
    Api,
    /// Start a server of its own, fill it with `-jobs` × `-count` allocations (as `place`),
    /// restart it, and time until it serves the whole state again; reports its memory per
    /// allocation before and after.
    Restart,
    /// Start 3 servers with `enable_debug` and time raw Raft writes (`-payloads` sizes,
    /// `-submitters` concurrent writers, `-duration-secs` each); `-etcd` measures a local
    /// three-member etcd the same way.
    Raft,
    /// Start 3 servers, kill the leader repeatedly under load; time to a new leader and to
    /// the first placement after it (`-nodes` is per server, `-trials` the repetitions).
    Failover,
}

impl Scenario {
    fn as_str(&self) -> &'static str {
        match self {
            Scenario::Place => "place",
            Scenario::C1m => "c1m",
            Scenario::Heartbeats => "heartbeats",
            Scenario::Failover => "failover",
            Scenario::Restart => "restart",
            Scenario::Raft => "raft",
            Scenario::Api => "api",
        }
    }
}

/// Flags of `drover-loadgen` (Nomad style: `-nodes 100` and `--nodes 100` both work).
#[derive(Parser, Debug, Clone)]
#[command(name = "drover-loadgen", about = "Load generator for a drover server")]
pub struct LoadgenArgs {
    /// HTTP address of the server.
    #[arg(long = "http", default_value = "http://127.0.0.1:4646")]
    pub http: String,
    /// RPC address (host:port) of the server, for the simulated nodes.
    #[arg(long = "rpc", default_value = "127.0.0.1:4647")]
    pub rpc: String,
    /// Simulated client nodes.
    #[arg(long = "nodes", default_value_t = 100)]
    pub nodes: usize,
    /// Service jobs to submit (place).
    #[arg(long = "jobs", default_value_t = 10)]
    pub jobs: usize,
    /// Task group count of every job (place).
    #[arg(long = "count", default_value_t = 10)]
    pub count: u64,
    /// CPU (MHz) asked by each task.
    #[arg(long = "cpu", default_value_t = 50)]
    pub cpu: u64,
    /// Memory (MB) asked by each task.
    #[arg(long = "memory", default_value_t = 32)]
    pub memory: u64,
    /// CPU (MHz) of each simulated node.
    #[arg(long = "node-cpu", default_value_t = 16000)]
    pub node_cpu: u64,
    /// Memory (MB) of each simulated node.
    #[arg(long = "node-memory", default_value_t = 32768)]
    pub node_memory: u64,
    /// Parallel HTTP submitters (threads).
    #[arg(long = "submitters", default_value_t = 4)]
    pub submitters: usize,
    /// Seed of the node ids; the same seed re-registers the same nodes.
    #[arg(long = "seed", default_value_t = 1)]
    pub seed: u64,
    /// Client-protocol connections shared by the simulated nodes.
    #[arg(long = "conns", default_value_t = 4)]
    pub conns: usize,
    /// How long the heartbeats scenario measures.
    #[arg(long = "duration-secs", default_value_t = 30)]
    pub duration_secs: u64,
    /// How long the heartbeats scenario lets the fleet beat after the last registration
    /// before it measures: the registration burst is its own load, not the steady state.
    #[arg(long = "settle-secs", default_value_t = 3)]
    pub settle_secs: u64,
    /// Gives up waiting (registration, placement) after this long.
    #[arg(long = "timeout-secs", default_value_t = 600)]
    pub timeout_secs: u64,
    /// Datacenter of the simulated nodes and of the submitted jobs.
    #[arg(long = "datacenter", default_value = "dc1")]
    pub datacenter: String,
    /// Reads of `GET /v1/jobs` in the api scenario.
    #[arg(long = "queries", default_value_t = 200)]
    pub queries: usize,
    /// Leader kills in the failover scenario.
    #[arg(long = "trials", default_value_t = 10)]
    pub trials: usize,
    /// Servers of the place and c1m scenarios: 1 drives the server at `-http` and `-rpc`;
    /// 3 starts a three-server cluster of the load generator's own (loopback ports,
    /// temporary data dirs) and drives its leader.
    #[arg(long = "servers", default_value_t = 1)]
    pub servers: usize,
    /// Payload sizes in bytes of the raft scenario, comma-separated.
    #[arg(long = "payloads", default_value = "256,4096")]
    pub payloads: String,
    /// The raft scenario also measures a local three-member etcd (Debian's etcd-server).
    #[arg(long = "etcd")]
    pub etcd: bool,
    /// Writes the per-second series (`series.json`) and a chart (`chart.svg`) into this
    /// directory (place, c1m, heartbeats, api).
    #[arg(long = "out")]
    pub out: Option<std::path::PathBuf>,
    /// Scenario to run.
    #[arg(value_enum)]
    pub scenario: Scenario,
}

/// Rewrites Nomad-style single-dash long flags (`-nodes`) into clap's `--nodes`.
pub fn nomad_style_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .enumerate()
        .map(|(position, arg)| {
            let bytes = arg.as_bytes();
            let single_dash_word = position > 0
                && bytes.len() > 2
                && bytes[0] == b'-'
                && bytes[1].is_ascii_alphabetic();
            if single_dash_word {
                format!("-{arg}")
            } else {
                arg
            }
        })
        .collect()
}

/// The outcome of a run: the final JSON line, and whether the scenario reached its goal.
pub struct Report {
    pub json: Value,
    pub completed: bool,
}

/// The C1M shape (Nomad's million-container challenge): nodes, jobs, count per job.
pub const C1M_NODES: usize = 5_000;
pub const C1M_JOBS: usize = 1_000;
pub const C1M_COUNT: u64 = 1_000;

/// Applies a scenario's fixed shape to the arguments.
fn with_shape(mut args: LoadgenArgs) -> LoadgenArgs {
    if args.scenario == Scenario::C1m {
        args.nodes = C1M_NODES;
        args.jobs = C1M_JOBS;
        args.count = C1M_COUNT;
        args.cpu = 50;
        args.memory = 32;
        args.node_cpu = 16_000;
        args.node_memory = 32_768;
    }
    args
}

/// Runs the scenario; errors when the server is unreachable or the arguments are unusable.
pub fn run(args: LoadgenArgs) -> anyhow::Result<Report> {
    let args = with_shape(args);
    validate(&args)?;
    if args.scenario == Scenario::Failover {
        raise_memlock_limit();
        return failover::run(&args);
    }
    if args.scenario == Scenario::Restart {
        raise_memlock_limit();
        return restart::run(&args);
    }
    if args.scenario == Scenario::Raft {
        raise_memlock_limit();
        return raft::run(&args);
    }
    if args.servers == 3 {
        raise_memlock_limit();
        return failover::run_on_three(&args);
    }
    let rpc_addr = resolve_rpc(&args.rpc)?;
    let http_base = args.http.trim_end_matches('/').to_string();
    preflight(&http_base, rpc_addr)?;
    raise_memlock_limit();
    let scenario_args = args.clone();
    let base = http_base.clone();
    let handle = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(512 << 10)
        .name("loadgen")
        .spawn(move || async move { scenario::run(scenario_args, http_base, rpc_addr).await })
        .map_err(|error| anyhow!("cannot start the load generator executor: {error}"))?;
    let mut report = handle
        .join()
        .map_err(|error| anyhow!("load generator executor failed: {error}"))??;
    if args.scenario == Scenario::C1m && report.completed {
        add_server_memory(&mut report.json, &base);
    }
    Ok(report)
}

/// How long a filled server is left without work before its memory is read: past its idle
/// trim (2 s without an applied entry), so the figure is what it holds at rest.
const MEMORY_REST: std::time::Duration = std::time::Duration::from_secs(6);

/// Adds the server's resident memory at rest (`stats.runtime.rss_bytes` of
/// `/v1/agent/self`, read `MEMORY_REST` after the run) and its bytes per placed allocation
/// to a report; null when the server does not say.
fn add_server_memory(json: &mut serde_json::Value, http_base: &str) {
    std::thread::sleep(MEMORY_REST);
    let rss = failover::get(http_base, "/v1/agent/self")
        .ok()
        .and_then(|me| {
            me["stats"]["runtime"]["rss_bytes"]
                .as_str()
                .and_then(|s| s.parse::<u64>().ok())
        });
    let allocs = json["allocs_placed_seen"].as_u64().unwrap_or(0);
    json["server_rss_bytes"] = rss.into();
    json["server_rss_bytes_per_alloc"] = rss
        .filter(|_| allocs > 0)
        .map(|b| b as f64 / allocs as f64)
        .into();
}

fn validate(args: &LoadgenArgs) -> anyhow::Result<()> {
    if args.nodes == 0 {
        anyhow::bail!("-nodes: must be at least 1");
    }
    if args.scenario == Scenario::Api && (args.jobs == 0 || args.queries == 0) {
        anyhow::bail!("-jobs and -queries: must be at least 1 for the api scenario");
    }
    if args.servers != 1 && args.servers != 3 {
        anyhow::bail!("-servers: must be 1 (the server at -http) or 3 (a cluster of its own)");
    }
    if args.servers == 3 && !matches!(args.scenario, Scenario::Place | Scenario::C1m) {
        anyhow::bail!("-servers 3: only the place and c1m scenarios start a cluster of their own");
    }
    if args.scenario == Scenario::Place && (args.jobs == 0 || args.count == 0) {
        anyhow::bail!("-jobs and -count: must be at least 1 for the place scenario");
    }
    if matches!(
        args.scenario,
        Scenario::Failover | Scenario::Restart | Scenario::Raft
    ) && args.out.is_some()
    {
        anyhow::bail!("-out: the failover, restart and raft scenarios report no time series");
    }
    if args.scenario == Scenario::Raft {
        raft::payload_sizes(&args.payloads)?;
        if args.submitters == 0 || args.duration_secs == 0 {
            anyhow::bail!(
                "-submitters and -duration-secs: must be at least 1 for the raft scenario"
            );
        }
    }
    if args.etcd && args.scenario != Scenario::Raft {
        anyhow::bail!("-etcd: only the raft scenario measures etcd");
    }
    if args.scenario == Scenario::Restart && (args.jobs == 0 || args.count == 0) {
        anyhow::bail!("-jobs and -count: must be at least 1 for the restart scenario");
    }
    if args.scenario == Scenario::Failover && args.trials == 0 {
        anyhow::bail!("-trials: must be at least 1");
    }
    if args.scenario == Scenario::Heartbeats && args.duration_secs == 0 {
        anyhow::bail!("-duration-secs: must be at least 1");
    }
    Ok(())
}

fn resolve_rpc(rpc: &str) -> anyhow::Result<SocketAddr> {
    rpc.to_socket_addrs()
        .with_context(|| format!("-rpc: cannot resolve {rpc:?} (expected host:port)"))?
        .next()
        .ok_or_else(|| anyhow!("-rpc: {rpc:?} resolves to no address"))
}

/// Fails with a clear message when either port of the server does not answer.
fn preflight(http_base: &str, rpc_addr: SocketAddr) -> anyhow::Result<()> {
    std::net::TcpStream::connect_timeout(&rpc_addr, PREFLIGHT_TIMEOUT).with_context(|| {
        format!("server unreachable: cannot connect to the RPC port {rpc_addr}")
    })?;
    http::agent(PREFLIGHT_TIMEOUT)
        .get(&format!("{http_base}/v1/status/leader"))
        .call()
        .map_err(|error| {
            anyhow!("server unreachable: GET {http_base}/v1/status/leader: {error}")
        })?;
    Ok(())
}

/// Raises the locked-memory soft limit to the hard limit: glommio executors lock their I/O
/// memory, and the default soft limit can be too small for it.
fn raise_memlock_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit);
        }
    }
}

/// Returns a progress bar on a terminal, a hidden one otherwise.
fn progress(total: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>12} [{elapsed_precise}] {wide_bar} {pos}/{len}")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> LoadgenArgs {
        let words = line.split_whitespace().map(String::from);
        LoadgenArgs::try_parse_from(nomad_style_args(words)).expect("parse")
    }

    #[test]
    fn single_dash_long_flags_parse_like_double_dash() {
        let args = parse("drover-loadgen -nodes 7 --jobs 3 -node-cpu 900 -rpc 10.0.0.1:4647 place");
        assert_eq!(args.nodes, 7);
        assert_eq!(args.jobs, 3);
        assert_eq!(args.node_cpu, 900);
        assert_eq!(args.rpc, "10.0.0.1:4647");
        assert_eq!(args.scenario, Scenario::Place);
        assert_eq!(parse("x heartbeats").scenario, Scenario::Heartbeats);
        let c1m = with_shape(parse("x -nodes 3 -count 2 c1m"));
        assert_eq!(
            (c1m.nodes, c1m.jobs, c1m.count, c1m.node_memory),
            (C1M_NODES, C1M_JOBS, C1M_COUNT, 32_768),
            "c1m fixes its shape"
        );
    }

    #[test]
    fn server_counts_other_than_one_or_three_are_refused() {
        let error = validate(&parse("x -servers 2 c1m")).expect_err("two servers");
        assert!(error.to_string().contains("-servers"), "{error}");
        let error = validate(&parse("x -servers 3 heartbeats")).expect_err("heartbeats");
        assert!(error.to_string().contains("-servers 3"), "{error}");
        validate(&parse("x -servers 3 c1m")).expect("c1m on three servers");
        assert_eq!(parse("x place").servers, 1);
    }

    #[test]
    fn negative_numbers_and_short_flags_are_left_alone() {
        let rewritten = nomad_style_args(["x", "-h", "-5", "-nodes"].map(String::from));
        assert_eq!(rewritten, vec!["x", "-h", "-5", "--nodes"]);
    }

    #[test]
    fn zero_nodes_is_refused_naming_the_flag() {
        let error = validate(&parse("x -nodes 0 place")).expect_err("zero nodes");
        assert!(error.to_string().contains("-nodes"));
    }

    #[test]
    fn unreachable_server_is_a_clear_error() {
        // Port 1 on loopback is closed on any sane test machine.
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let error = preflight("http://127.0.0.1:1", addr).expect_err("unreachable");
        assert!(error.to_string().contains("server unreachable"), "{error}");
    }
}

#[cfg(test)]
mod loadgen_test;
