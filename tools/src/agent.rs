//! `drover agent`: starts a server (and, in dev mode, simulated client nodes).

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use engine::api::Membership;
use engine::config::AgentConfig;
use engine::server::{
    load_server_id, own_server_info, start_clustered, AppliedIndex, Handle, RaftInit, ShardInit,
};
use glommio::{LocalExecutorBuilder, Placement};
use net::client::sim::{run_sim_nodes, SimNodeSpec, SimStats};
use net::gossip::{Gossip, GossipConfig, GossipTiming};
use net::http::{serve_http, HttpLimits};
use net::peer::RaftPeers;
use net::rpc::serve_rpc;

/// Flags of `drover agent`, shaped like Nomad's.
#[derive(Args, Debug, Clone, Default)]
pub struct AgentArgs {
    /// Runs a single server with in-process simulated client nodes and local data.
    #[arg(long)]
    pub dev: bool,
    /// Agent config files or directories (HCL or JSON), merged in order.
    #[arg(long = "config", value_name = "PATH")]
    pub config: Vec<PathBuf>,
    /// Directory for state (default ./drover-data in dev mode).
    #[arg(long = "data-dir", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Number of simulated client nodes in dev mode (0 for none).
    #[arg(long = "dev-nodes", value_name = "N")]
    pub dev_nodes: Option<usize>,
    /// Address to bind HTTP, RPC and serf listeners to.
    #[arg(long = "bind", value_name = "ADDR")]
    pub bind: Option<String>,
    /// Number of shard executors (default: number of cores).
    #[arg(long = "shards", value_name = "N")]
    pub shards: Option<usize>,
    /// Region of this server.
    #[arg(long = "region")]
    pub region: Option<String>,
    /// Datacenter of this server.
    #[arg(long = "dc")]
    pub dc: Option<String>,
    /// Node name of this server.
    #[arg(long = "node")]
    pub node: Option<String>,
    /// Enables server mode.
    #[arg(long = "server")]
    pub server: bool,
    /// Number of servers to wait for before bootstrapping.
    #[arg(long = "bootstrap-expect", value_name = "N")]
    pub bootstrap_expect: Option<u32>,
    /// Address of a server to join at start; the agent stops if it cannot (repeatable).
    #[arg(long = "join", value_name = "ADDR")]
    pub join: Vec<String>,
    /// Address of a server to keep trying to join until it works (repeatable).
    #[arg(long = "retry-join", value_name = "ADDR")]
    pub retry_join: Vec<String>,
    /// Time between join attempts (Go duration).
    #[arg(long = "retry-interval", value_name = "DURATION")]
    pub retry_interval: Option<String>,
    /// Join attempts before giving up (0: forever).
    #[arg(long = "retry-max", value_name = "N")]
    pub retry_max: Option<u32>,
    /// Base64 gossip encryption key.
    #[arg(long = "encrypt", value_name = "KEY")]
    pub encrypt: Option<String>,
    /// Log level (TRACE, DEBUG, INFO, WARN, ERROR).
    #[arg(long = "log-level")]
    pub log_level: Option<String>,
    /// Logs as JSON lines.
    #[arg(long = "log-json")]
    pub log_json: bool,
}

/// How long start-up waits for a port a previous process still holds.
const PORT_WAIT_MAX: Duration = Duration::from_secs(10);

/// Simulated client nodes a dev agent starts when `-dev-nodes` is not given.
pub const DEV_NODES_DEFAULT: usize = 3;

/// How long the server applies nothing before the agent gives freed memory back to the
/// system (`allocator::trim`).
const IDLE_TRIM_AFTER: Duration = Duration::from_secs(2);
/// How often the agent and each shard look at the applied index for `IdleTrim`.
const IDLE_TRIM_TICK: Duration = Duration::from_millis(250);

/// Starts, on the current glommio executor, the idle trim of its thread: every
/// `IDLE_TRIM_TICK` it reads the applied index and trims once it stood still long enough.
fn spawn_idle_trim(applied: impl Fn() -> u64 + 'static) {
    glommio::spawn_local(async move {
        let mut idle = IdleTrim::new(IDLE_TRIM_AFTER, std::time::Instant::now());
        loop {
            glommio::timer::sleep(IDLE_TRIM_TICK).await;
            idle.tick(applied(), std::time::Instant::now(), crate::allocator::trim);
        }
    })
    .detach();
}

/// Calls a trim once the applied Raft index has stood still for `after`, and again only
/// after it moved: a busy server keeps its freed memory for reuse, an idle one returns it.
pub struct IdleTrim {
    after: Duration,
    last_index: u64,
    changed_at: std::time::Instant,
    trimmed: bool,
}

impl IdleTrim {
    pub fn new(after: Duration, now: std::time::Instant) -> IdleTrim {
        IdleTrim {
            after,
            last_index: 0,
            changed_at: now,
            trimmed: false,
        }
    }

    /// Takes the applied index at `now`; calls `trim` when it has not moved for `after` and
    /// no trim ran since it last moved. Returns whether it trimmed.
    pub fn tick(&mut self, index: u64, now: std::time::Instant, trim: impl FnOnce()) -> bool {
        if index != self.last_index {
            self.last_index = index;
            self.changed_at = now;
            self.trimmed = false;
            return false;
        }
        if self.trimmed || now.duration_since(self.changed_at) < self.after {
            return false;
        }
        trim();
        self.trimmed = true;
        true
    }
}

/// Builds the agent configuration from defaults, config files and flags, in that order.
pub fn resolve_config(args: &AgentArgs) -> anyhow::Result<AgentConfig> {
    let base = if args.dev {
        AgentConfig::dev()
    } else {
        AgentConfig::default()
    };
    let mut config = if args.config.is_empty() {
        base
    } else {
        net::config::load_agent_config(&args.config, base)
            .map_err(|errors| anyhow::anyhow!("invalid agent configuration:\n{errors}"))?
    };
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(bind) = &args.bind {
        config.bind_addr = bind.clone();
    }
    if let Some(shards) = args.shards {
        config.shards = Some(shards);
    }
    if let Some(region) = &args.region {
        config.region = region.clone();
    }
    if let Some(dc) = &args.dc {
        config.datacenter = dc.clone();
    }
    if let Some(node) = &args.node {
        config.name = node.clone();
    }
    if args.server {
        config.server.enabled = true;
    }
    if let Some(n) = args.bootstrap_expect {
        config.server.bootstrap_expect = n;
    }
    if !args.join.is_empty() {
        config.server.server_join.start_join = args.join.clone();
    }
    if !args.retry_join.is_empty() {
        config.server.server_join.retry_join = args.retry_join.clone();
    }
    if let Some(text) = &args.retry_interval {
        config.server.server_join.retry_interval = net::http::parse_go_duration(text)
            .map_err(|e| anyhow::anyhow!("-retry-interval: {e}"))?;
    }
    if let Some(n) = args.retry_max {
        config.server.server_join.retry_max = n;
    }
    if let Some(key) = &args.encrypt {
        config.server.encrypt = key.clone();
    }
    if let Some(level) = &args.log_level {
        config.log_level = level.clone();
    }
    if args.log_json {
        config.log_json = true;
    }
    if config.name.is_empty() {
        config.name = hostname();
    }
    let problems = config.validate();
    if !problems.is_empty() {
        let lines: Vec<String> = problems
            .iter()
            .map(|(path, msg)| format!("{path}: {msg}"))
            .collect();
        bail!("invalid agent configuration:\n{}", lines.join("\n"));
    }
    if !config.server.enabled {
        bail!("this agent runs servers only: set `server {{ enabled = true }}` or pass -server or -dev");
    }
    Ok(config)
}

fn init_logging(config: &AgentConfig) -> anyhow::Result<()> {
    let level = config.log_level.to_ascii_lowercase();
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{level},openraft=warn"))
        .with_context(|| format!("log_level: {} is not a level", config.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only on a terminal: a log file or a collector gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = if config.log_json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // A second agent in the same process (tests) keeps the first subscriber.
    let _ = result;
    Ok(())
}

/// Returns the address a listener binds, failing clearly when another process holds it.
/// glommio listeners set SO_REUSEPORT, which would silently share a port with another
/// drover; a plain bind first makes that a start-up error instead.
fn check_free(bind: &str, port: u16, what: &str) -> anyhow::Result<SocketAddr> {
    let addr: SocketAddr = format!("{bind}:{port}")
        .parse()
        .with_context(|| format!("bind_addr: {bind:?} is not an IP address"))?;
    // SO_REUSEADDR lets a restart bind over connections still in TIME-WAIT; without
    // SO_REUSEPORT the bind fails while another process listens there.
    let probe = || -> std::io::Result<StdListener> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )?;
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1)?;
        Ok(socket.into())
    };
    // A killed process's listener can outlive it for a moment: the kernel tears its io_uring
    // down asynchronously. A restart therefore retries for a short while.
    let deadline = std::time::Instant::now() + PORT_WAIT_MAX;
    loop {
        match probe() {
            Ok(_) => return Ok(addr),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                // Connections of a previous run in TIME-WAIT block a plain bind when that
                // run's listener had SO_REUSEPORT; only a live listener is a real conflict.
                let target = if addr.ip().is_unspecified() {
                    SocketAddr::from(([127, 0, 0, 1], addr.port()))
                } else {
                    addr
                };
                if std::net::TcpStream::connect_timeout(&target, Duration::from_millis(500))
                    .is_err()
                {
                    return Ok(addr);
                }
                if std::time::Instant::now() >= deadline {
                    bail!("ports.{what}: {addr} is in use by another process");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => {
                return Err(e).with_context(|| format!("ports.{what}: cannot listen on {addr}"))
            }
        }
    }
}

fn advertised(bind: SocketAddr, advertise: &Option<String>) -> String {
    match advertise {
        Some(a) if a.contains(':') => a.clone(),
        Some(a) => format!("{a}:{}", bind.port()),
        None if bind.ip().is_unspecified() => format!("127.0.0.1:{}", bind.port()),
        None => bind.to_string(),
    }
}

/// Runs the agent until it is interrupted.
pub fn run(args: AgentArgs) -> anyhow::Result<()> {
    let config = resolve_config(&args)?;
    init_logging(&config)?;
    let http_bind = check_free(&config.bind_addr, config.ports.http, "http")?;
    let rpc_bind = check_free(&config.bind_addr, config.ports.rpc, "rpc")?;
    let http_addr = advertised(http_bind, &config.advertise.http);
    let rpc_addr = advertised(rpc_bind, &config.advertise.rpc);
    let limits = HttpLimits {
        body_bytes_max: HttpLimits::default()
            .body_bytes_max
            .max(config.server.job_max_source_size_bytes as usize * 2),
        ..HttpLimits::default()
    };
    let init: ShardInit = Arc::new(move |handle: Handle| {
        let shard = handle.shard_id();
        // Each shard returns the free pages its own thread holds when the server goes idle;
        // the main thread's trim (below) reaches only its own and the shared arenas.
        let shared = handle.shared().clone();
        spawn_idle_trim(move || shared.view.borrow().index);
        match glommio::net::TcpListener::bind(http_bind) {
            Ok(listener) => {
                let h = handle.clone();
                let limits = limits.clone();
                glommio::spawn_local(async move {
                    if let Err(e) = serve_http(listener, h, limits, std::future::pending()).await {
                        tracing::error!(shard, error = %e, "http listener stopped");
                    }
                })
                .detach();
            }
            Err(e) => {
                tracing::error!(shard, error = %e, addr = %http_bind, "cannot listen for http")
            }
        }
        match glommio::net::TcpListener::bind(rpc_bind) {
            Ok(listener) => {
                glommio::spawn_local(serve_rpc(listener, handle, std::future::pending())).detach();
            }
            Err(e) => tracing::error!(shard, error = %e, addr = %rpc_bind, "cannot listen for rpc"),
        }
    });
    let serf_bind: SocketAddr = format!("{}:{}", config.bind_addr, config.ports.serf)
        .parse()
        .with_context(|| format!("bind_addr: {:?} is not an IP address", config.bind_addr))?;
    let serf_addr: SocketAddr = advertised(serf_bind, &config.advertise.serf)
        .parse()
        .with_context(|| "advertise.serf: not an ip:port address".to_string())?;
    let raft_id = load_server_id(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut me = own_server_info(&config, raft_id, &rpc_addr, &http_addr);
    me.serf_addr = serf_addr.to_string();
    let gossip = Gossip::start(GossipConfig {
        bind: serf_bind,
        advertise: serf_addr,
        me,
        encrypt_key: config.server.encrypt_key(),
        timing: GossipTiming::default(),
    })
    .map_err(|e| anyhow::anyhow!("ports.serf: {e}"))?;
    let membership: Arc<dyn Membership> = Arc::new(gossip.clone());
    // The Raft core applies every entry and restores snapshots: the records it builds and
    // the buffers it frees are its own thread's, which no other thread's trim reaches.
    let raft_init: RaftInit = Arc::new(|applied: AppliedIndex| {
        spawn_idle_trim(move || applied.get());
    });
    let server = match start_clustered(
        config.clone(),
        rpc_addr.clone(),
        http_addr.clone(),
        init,
        raft_init,
        Some(membership.clone()),
        || RaftPeers,
    ) {
        Ok(server) => server,
        Err(e) => {
            gossip.stop();
            bail!("{e}");
        }
    };
    tracing::info!(
        region = %config.region,
        datacenter = %config.datacenter,
        data_dir = %config.data_dir.display(),
        shards = server.shared.shards,
        http = %http_addr,
        rpc = %rpc_addr,
        serf = %serf_addr,
        server_id = server.server_id,
        "drover agent started"
    );
    let known_peers = KnownPeers::new(&config);
    known_peers.rejoin(&config, membership.clone());
    known_peers.keep(membership.clone());
    let start_join = config.server.effective_start_join().to_vec();
    if !start_join.is_empty() {
        // A failed start_join stops the agent, as in Nomad.
        if let Err(e) = membership.join(&start_join) {
            server.stop();
            gossip.stop();
            bail!("start_join: could not join {}: {e}", start_join.join(", "));
        }
    }
    let exit_code = Arc::new(std::sync::atomic::AtomicI32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let retry_join = config.server.effective_retry_join().to_vec();
    if !retry_join.is_empty() {
        let membership = membership.clone();
        let interval = config.server.effective_retry_interval();
        let max = config.server.effective_retry_max();
        let stop = stop.clone();
        let exit_code = exit_code.clone();
        std::thread::Builder::new()
            .name("drover-retry-join".into())
            .spawn(move || {
                if !retry_join_loop(&*membership, &retry_join, interval, max, &stop) {
                    exit_code.store(1, Ordering::Relaxed);
                    stop.store(true, Ordering::Relaxed);
                }
            })?;
    }
    let dev_nodes = if args.dev {
        args.dev_nodes.unwrap_or(DEV_NODES_DEFAULT)
    } else {
        args.dev_nodes.unwrap_or(0)
    };
    let sim = if dev_nodes > 0 {
        Some(start_dev_nodes(dev_nodes, rpc_bind, &config, stop.clone())?)
    } else {
        None
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    let terminated = Arc::new(AtomicBool::new(false));
    let hangup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, interrupted.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, terminated.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hangup.clone())?;
    let mut idle_trim = IdleTrim::new(IDLE_TRIM_AFTER, std::time::Instant::now());
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if interrupted.load(Ordering::Relaxed) || terminated.load(Ordering::Relaxed) {
            let leave = (interrupted.load(Ordering::Relaxed) && config.leave_on_interrupt)
                || (terminated.load(Ordering::Relaxed) && config.leave_on_terminate);
            if leave {
                tracing::info!("leaving the server pool before stopping");
                if let Err(e) = membership.leave() {
                    tracing::warn!(error = %e, "graceful leave failed");
                }
                known_peers.mark_left();
            }
            break;
        }
        if hangup.swap(false, Ordering::Relaxed) {
            match resolve_config(&args) {
                Ok(fresh) => {
                    server.reload(&fresh);
                    tracing::info!("configuration reloaded");
                }
                Err(e) => {
                    tracing::error!(error = %e, "reload refused; keeping the running configuration")
                }
            }
        }
        let applied = server.shared.view.borrow().index;
        idle_trim.tick(applied, std::time::Instant::now(), || {
            crate::allocator::trim();
            tracing::debug!(applied, "idle: freed memory given back to the system");
        });
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    tracing::info!("stopping");
    if let Some(sim) = sim {
        let _ = sim.join();
    }
    server.stop();
    gossip.stop();
    tracing::info!("stopped");
    let code = exit_code.load(Ordering::Relaxed);
    if code != 0 {
        bail!("retry_join: max join retry exhausted, exiting");
    }
    Ok(())
}

/// The gossip addresses of the servers this one knew, kept in
/// `<data_dir>/server/serf/peers` so that a restarted server rejoins them, and a marker of a
/// graceful leave: after one, the server rejoins on its own only with `rejoin_after_leave`
/// (configured joins always run).
struct KnownPeers {
    dir: PathBuf,
}

impl KnownPeers {
    fn new(config: &AgentConfig) -> KnownPeers {
        let base = config
            .server
            .data_dir
            .clone()
            .unwrap_or_else(|| config.data_dir.join("server"));
        KnownPeers {
            dir: base.join("serf"),
        }
    }

    fn peers_file(&self) -> PathBuf {
        self.dir.join("peers")
    }

    fn left_file(&self) -> PathBuf {
        self.dir.join("left")
    }

    /// Joins the servers known from the last run, in the background, unless this server left
    /// gracefully and `rejoin_after_leave` is off.
    fn rejoin(&self, config: &AgentConfig, membership: Arc<dyn Membership>) {
        let left = self.left_file().exists();
        if left && !config.server.rejoin_after_leave {
            tracing::info!("this server left the pool before; not rejoining its old peers (rejoin_after_leave = false)");
            return;
        }
        let _ = std::fs::remove_file(self.left_file());
        let peers: Vec<String> = std::fs::read_to_string(self.peers_file())
            .unwrap_or_default()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        if peers.is_empty() {
            return;
        }
        let _ = std::thread::Builder::new()
            .name("drover-rejoin".into())
            .spawn(move || match membership.join(&peers) {
                Ok(n) => tracing::info!(joined = n, "rejoined servers known from the last run"),
                Err(e) => {
                    tracing::info!(error = %e, "could not rejoin servers known from the last run")
                }
            });
    }

    /// Rewrites the peers file when the alive servers change (checked every second).
    fn keep(&self, membership: Arc<dyn Membership>) {
        let dir = self.dir.clone();
        let file = self.peers_file();
        let _ = std::thread::Builder::new()
            .name("drover-peers-file".into())
            .spawn(move || {
                let mut written = Vec::new();
                loop {
                    let alive: Vec<String> = membership
                        .members()
                        .into_iter()
                        .filter(|m| {
                            m.status == engine::api::MemberStatus::Alive && !m.serf_addr.is_empty()
                        })
                        .map(|m| m.serf_addr)
                        .collect();
                    if alive.len() > 1 && alive != written {
                        let _ = std::fs::create_dir_all(&dir);
                        let tmp = file.with_extension("tmp");
                        if std::fs::write(&tmp, alive.join("\n")).is_ok()
                            && std::fs::rename(&tmp, &file).is_ok()
                        {
                            written = alive;
                        }
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
    }

    /// Records a graceful leave.
    fn mark_left(&self) {
        let _ = std::fs::create_dir_all(&self.dir);
        let _ = std::fs::write(self.left_file(), "left gracefully\n");
    }
}

/// Tries to join `addrs` every `interval` until one answers, `max` attempts (0: forever) or
/// the agent stops. Returns false when the attempts ran out.
fn retry_join_loop(
    membership: &dyn Membership,
    addrs: &[String],
    interval: Duration,
    max: u32,
    stop: &AtomicBool,
) -> bool {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match membership.join(addrs) {
            Ok(n) => {
                tracing::info!(joined = n, "retry_join: joined the server pool");
                return true;
            }
            Err(e) => tracing::warn!(attempt, error = %e, "retry_join: join failed"),
        }
        if max > 0 && attempt >= max {
            tracing::error!(attempts = attempt, "retry_join: max join retry exhausted");
            return false;
        }
        let until = std::time::Instant::now() + interval;
        while std::time::Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100).min(interval));
        }
    }
}

fn start_dev_nodes(
    count: usize,
    rpc: SocketAddr,
    config: &AgentConfig,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<glommio::ExecutorJoinHandle<()>> {
    let rpc = if rpc.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], rpc.port()))
    } else {
        rpc
    };
    let spec = SimNodeSpec {
        count,
        datacenter: config.datacenter.clone(),
        name_prefix: format!("{}-dev-node", config.name),
        // Servers of one cluster each run their own dev nodes: their ids must differ.
        seed: engine::server::messages::fnv(config.name.as_bytes()),
        ..SimNodeSpec::default()
    };
    LocalExecutorBuilder::new(Placement::Unbound)
        .name("drover-dev-nodes")
        .io_memory(512 << 10)
        .spawn(move || async move {
            let stats = Rc::new(SimStats::new());
            let stopped = async move {
                while !stop.load(Ordering::Relaxed) {
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                }
            };
            run_sim_nodes(rpc, spec, 1, stats, stopped).await;
        })
        .map_err(|e| anyhow::anyhow!("starting the simulated dev nodes: {e}"))
}

/// Returns this machine's host name, Nomad's default node name.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer outlives the call and its length is passed.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "drover".to_string();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod idle_trim_tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn trims_once_after_the_index_stands_still_and_again_only_after_it_moved() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut idle = IdleTrim::new(Duration::from_secs(2), t0);
        let trims = std::cell::Cell::new(0);
        let tick = |idle: &mut IdleTrim, index: u64, ms: u64| {
            idle.tick(index, at(ms), || trims.set(trims.get() + 1))
        };
        assert!(!tick(&mut idle, 5, 0), "the index moved: no trim");
        assert!(
            !tick(&mut idle, 5, 1_999),
            "still for less than two seconds"
        );
        assert!(tick(&mut idle, 5, 2_000), "still for two seconds: trim");
        assert!(!tick(&mut idle, 5, 9_000), "no second trim while still");
        assert!(!tick(&mut idle, 6, 9_100), "moved");
        assert!(!tick(&mut idle, 7, 10_000), "moved again");
        assert!(!tick(&mut idle, 7, 11_999));
        assert!(
            tick(&mut idle, 7, 12_000),
            "still for two seconds after moving: trim again"
        );
        assert_eq!(trims.get(), 2);
    }
}
