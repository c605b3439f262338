//! Simulated client nodes: register, heartbeat, watch allocations and report them running.
//!
//! Used by the dev agent (`-dev-nodes`) and the load generator. Every node is a few local
//! tasks on the calling executor; nodes share `conns` multiplexed connections. Node ids derive
//! from a seed and the node's index, so a restarted simulator re-registers the same nodes.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use engine::client_proto::{AllocUpdate, ClientRequest, ClientResponse};
use hdrhistogram::Histogram;
use sched::structs::{
    Allocation, ClientStatus, DesiredStatus, Node, NodeStatus, Resources, TaskState,
};

use super::ClientConn;
use crate::rpc::StopSignal;

/// How often each connection sends the allocation updates its nodes queued.
pub const UPDATE_BATCH_INTERVAL: Duration = Duration::from_millis(50);
/// Updates carried by one `UpdateAllocs` request; more are split over several.
pub const UPDATE_BATCH_ALLOCS_MAX: usize = 1024;
/// How long one blocking `GetAllocs` asks the server to wait.
pub const GET_ALLOCS_WAIT_MS: u64 = 60_000;
/// Node tasks started between yields, so starting a large fleet does not stall the executor.
const SPAWN_YIELD_EVERY: usize = 256;
/// Longest pause between retries of a failed call.
const RETRY_DELAY_MAX: Duration = Duration::from_secs(2);
/// Heartbeat interval used until the server names one.
const HEARTBEAT_TTL_DEFAULT_MS: u64 = 10_000;

/// What the simulated nodes look like.
#[derive(Clone, Debug)]
pub struct SimNodeSpec {
    pub count: usize,
    pub datacenter: String,
    pub node_class: String,
    pub node_pool: String,
    pub cpu_mhz: u64,
    pub memory_mb: u64,
    pub disk_mb: u64,
    /// Nodes are named `<name_prefix>-<index>`.
    pub name_prefix: String,
    pub drivers: Vec<String>,
    /// Extra attributes; they override the generated ones of the same name.
    pub attributes: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    /// Seed of the node ids and of the heartbeat jitter.
    pub seed: u64,
}

impl Default for SimNodeSpec {
    fn default() -> Self {
        SimNodeSpec {
            count: 3,
            datacenter: "dc1".to_string(),
            node_class: String::new(),
            node_pool: "default".to_string(),
            cpu_mhz: 4000,
            memory_mb: 8192,
            disk_mb: 100 * 1024,
            name_prefix: "sim".to_string(),
            drivers: vec![
                "raw_exec".to_string(),
                "exec".to_string(),
                "docker".to_string(),
            ],
            attributes: BTreeMap::new(),
            meta: BTreeMap::new(),
            seed: 1,
        }
    }
}

impl SimNodeSpec {
    /// Returns node `index` as it registers: status ready, eligible, no drain.
    pub fn node(&self, index: usize) -> Node {
        let name = format!("{}-{index}", self.name_prefix);
        let mut attributes = BTreeMap::new();
        let mut set = |key: &str, value: String| {
            attributes.insert(key.to_string(), value);
        };
        set("kernel.name", "linux".into());
        set("cpu.arch", "amd64".into());
        set("os.name", "ubuntu".into());
        set("nomad.version", "1.9.0".into());
        set("unique.hostname", name.clone());
        set("cpu.totalcompute", self.cpu_mhz.to_string());
        set(
            "memory.totalbytes",
            (self.memory_mb * 1024 * 1024).to_string(),
        );
        for driver in &self.drivers {
            set(&format!("driver.{driver}"), "1".into());
        }
        attributes.extend(self.attributes.iter().map(|(k, v)| (k.clone(), v.clone())));
        Node {
            id: node_id_for(self.seed, index),
            secret_id: uuid_from(splitmix64(self.seed ^ 0x5ec2_e700), index as u64),
            name,
            datacenter: self.datacenter.clone(),
            node_class: self.node_class.clone(),
            node_pool: self.node_pool.clone(),
            http_addr: "127.0.0.1:0".to_string(),
            attributes,
            meta: self.meta.clone(),
            resources: Resources {
                cpu_mhz: self.cpu_mhz,
                memory_mb: self.memory_mb,
                memory_max_mb: 0,
                disk_mb: self.disk_mb,
            },
            reserved: Resources::default(),
            status: NodeStatus::Ready,
            status_description: String::new(),
            eligible: true,
            drain: None,
            drivers: self.drivers.clone(),
            events: Vec::new(),
            status_updated_at_unix_s: unix_now_s(),
            create_index: 0,
            modify_index: 0,
        }
    }
}

/// Returns the stable id of simulated node `index` under `seed` (UUID-shaped).
pub fn node_id_for(seed: u64, index: usize) -> String {
    uuid_from(seed, index as u64)
}

fn uuid_from(seed: u64, index: u64) -> String {
    let high = splitmix64(seed.wrapping_mul(0x9e37_79b9).wrapping_add(index));
    let low = splitmix64(high ^ index.rotate_left(17));
    uuid::Uuid::from_u64_pair(high, low).to_string()
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn unix_now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn unix_now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Counters of a simulated fleet. Lives on the fleet's executor; read it there.
pub struct SimStats {
    pub nodes_registered: Cell<u64>,
    /// Heartbeats the server acknowledged.
    pub heartbeats_sent: Cell<u64>,
    /// Heartbeat round trips in microseconds.
    pub heartbeat_latency_us: RefCell<Histogram<u64>>,
    /// Distinct allocations seen with desired status run.
    pub allocs_placed_seen: Cell<u64>,
    /// Distinct allocations a `GetAllocs` answer showed as running. A server following Nomad
    /// does not wake `GetAllocs` for client-side status changes, so this lags; count
    /// `allocs_running_reported` to know what the server committed.
    pub allocs_running_seen: Cell<u64>,
    /// Running / complete updates the server accepted (answered `Updated`).
    pub allocs_running_reported: Cell<u64>,
    pub allocs_complete_reported: Cell<u64>,
    /// Nodes registered again because the server no longer knew them.
    pub reregistrations: Cell<u64>,
    /// Failed calls of any kind (transport errors and error answers).
    pub errors: Cell<u64>,
}

impl Default for SimStats {
    fn default() -> Self {
        SimStats::new()
    }
}

/// A plain copy of `SimStats` counters, for reporting from another thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStatsSnapshot {
    pub nodes_registered: u64,
    pub heartbeats_sent: u64,
    pub heartbeat_p50_us: u64,
    pub heartbeat_p99_us: u64,
    pub allocs_placed_seen: u64,
    pub allocs_running_seen: u64,
    pub allocs_running_reported: u64,
    pub allocs_complete_reported: u64,
    pub reregistrations: u64,
    pub errors: u64,
}

impl SimStats {
    /// Returns zeroed counters.
    pub fn new() -> SimStats {
        // Three significant digits over 1 µs .. 1 hour; auto-resize covers anything longer.
        let mut histogram =
            Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds");
        histogram.auto(true);
        SimStats {
            nodes_registered: Cell::new(0),
            heartbeats_sent: Cell::new(0),
            heartbeat_latency_us: RefCell::new(histogram),
            allocs_placed_seen: Cell::new(0),
            allocs_running_seen: Cell::new(0),
            allocs_running_reported: Cell::new(0),
            allocs_complete_reported: Cell::new(0),
            reregistrations: Cell::new(0),
            errors: Cell::new(0),
        }
    }

    /// Returns the current counters and heartbeat latency percentiles.
    pub fn snapshot(&self) -> SimStatsSnapshot {
        let histogram = self.heartbeat_latency_us.borrow();
        SimStatsSnapshot {
            nodes_registered: self.nodes_registered.get(),
            heartbeats_sent: self.heartbeats_sent.get(),
            heartbeat_p50_us: histogram.value_at_quantile(0.50),
            heartbeat_p99_us: histogram.value_at_quantile(0.99),
            allocs_placed_seen: self.allocs_placed_seen.get(),
            allocs_running_seen: self.allocs_running_seen.get(),
            allocs_running_reported: self.allocs_running_reported.get(),
            allocs_complete_reported: self.allocs_complete_reported.get(),
            reregistrations: self.reregistrations.get(),
            errors: self.errors.get(),
        }
    }

    /// Clears the heartbeat counters (e.g. after a warm-up phase).
    pub fn reset_heartbeats(&self) {
        self.heartbeats_sent.set(0);
        self.heartbeat_latency_us.borrow_mut().reset();
    }

    fn bump(counter: &Cell<u64>, by: u64) {
        counter.set(counter.get() + by);
    }
}

/// Runs `spec.count` simulated nodes against the server at `server_rpc` until `stop` resolves.
///
/// Nodes share `conns` connections (at least one), node `i` using connection `i % conns`.
pub async fn run_sim_nodes(
    server_rpc: SocketAddr,
    spec: SimNodeSpec,
    conns: usize,
    stats: Rc<SimStats>,
    stop: impl Future<Output = ()> + 'static,
) {
    let stopping = StopSignal::new();
    stopping.fire_on(stop);
    let spec = Rc::new(spec);
    let links: Vec<Rc<Link>> = (0..conns.max(1))
        .map(|_| {
            Rc::new(Link {
                conn: ClientConn::new(server_rpc),
                queued: RefCell::new(BTreeMap::new()),
            })
        })
        .collect();
    let mut tasks = Vec::with_capacity(spec.count + links.len());
    for link in &links {
        tasks.push(glommio::spawn_local(flush_updates(
            link.clone(),
            stats.clone(),
        )));
    }
    for index in 0..spec.count {
        let node = SimNode {
            node: spec.node(index),
            link: links[index % links.len()].clone(),
            stats: stats.clone(),
            jitter: Jitter(splitmix64(
                spec.seed ^ (index as u64).wrapping_mul(0x2545_f491),
            )),
        };
        tasks.push(glommio::spawn_local(node.run()));
        if index % SPAWN_YIELD_EVERY == SPAWN_YIELD_EVERY - 1 {
            glommio::yield_if_needed().await;
        }
    }
    stopping.wait().await;
    // Dropping the tasks cancels them; then the connections close.
    drop(tasks);
    for link in &links {
        link.conn.close();
    }
}

/// One connection and the allocation updates its nodes queued for the next batch.
struct Link {
    conn: ClientConn,
    /// node id → (secret id, updates).
    queued: RefCell<BTreeMap<String, (String, Vec<AllocUpdate>)>>,
}

impl Link {
    fn queue(&self, node: &Node, update: AllocUpdate) {
        let mut queued = self.queued.borrow_mut();
        let entry = queued
            .entry(node.id.clone())
            .or_insert_with(|| (node.secret_id.clone(), Vec::new()));
        entry.1.push(update);
    }
}

/// Sends each connection's queued updates every `UPDATE_BATCH_INTERVAL`, one request per node
/// (a request authenticates one node), all of a tick's requests concurrently.
async fn flush_updates(link: Rc<Link>, stats: Rc<SimStats>) {
    loop {
        glommio::timer::sleep(UPDATE_BATCH_INTERVAL).await;
        let batch = std::mem::take(&mut *link.queued.borrow_mut());
        if batch.is_empty() {
            continue;
        }
        let mut calls = Vec::new();
        for (node_id, (secret_id, updates)) in batch {
            for chunk in updates.chunks(UPDATE_BATCH_ALLOCS_MAX) {
                let chunk = chunk.to_vec();
                calls.push(send_updates(
                    &link,
                    &stats,
                    node_id.clone(),
                    secret_id.clone(),
                    chunk,
                ));
            }
        }
        futures::future::join_all(calls).await;
    }
}

async fn send_updates(
    link: &Link,
    stats: &SimStats,
    node_id: String,
    secret_id: String,
    updates: Vec<AllocUpdate>,
) {
    let request = ClientRequest::UpdateAllocs {
        node_id: node_id.clone(),
        secret_id: secret_id.clone(),
        updates: updates.clone(),
    };
    match link.conn.call(request).await {
        Ok(ClientResponse::Updated { .. }) => {
            for update in &updates {
                match update.client_status {
                    ClientStatus::Running => SimStats::bump(&stats.allocs_running_reported, 1),
                    _ => SimStats::bump(&stats.allocs_complete_reported, 1),
                }
            }
        }
        Ok(ClientResponse::Error { code, message }) if code != "overloaded" => {
            // The server looked at the updates and refused them; sending them again would get
            // the same answer. The allocation shows up again in GetAllocs if it still matters.
            SimStats::bump(&stats.errors, 1);
            tracing::debug!(%node_id, %code, %message, "alloc update refused");
        }
        outcome => {
            SimStats::bump(&stats.errors, 1);
            tracing::debug!(%node_id, ?outcome, "alloc update failed; retrying next batch");
            let mut queued = link.queued.borrow_mut();
            let entry = queued
                .entry(node_id)
                .or_insert_with(|| (secret_id, Vec::new()));
            entry.1.extend(updates);
        }
    }
}

/// A cheap deterministic jitter source (splitmix64 stream).
struct Jitter(u64);

impl Jitter {
    /// Returns `base` scaled by a factor in [1 - spread, 1 + spread].
    fn spread(&mut self, base: Duration, spread: f64) -> Duration {
        self.0 = splitmix64(self.0);
        let unit = (self.0 >> 11) as f64 / (1u64 << 53) as f64;
        base.mul_f64(1.0 - spread + 2.0 * spread * unit)
    }
}

/// What a simulated node remembers about one of its allocations.
#[derive(Default)]
struct KnownAlloc {
    running_seen: bool,
    reported: Option<ClientStatus>,
}

struct SimNode {
    node: Node,
    link: Rc<Link>,
    stats: Rc<SimStats>,
    jitter: Jitter,
}

impl SimNode {
    /// Registers, then heartbeats forever while a second task watches allocations.
    async fn run(mut self) {
        let mut ttl = self.register().await;
        SimStats::bump(&self.stats.nodes_registered, 1);
        // Held for as long as this future lives: dropping the node cancels its watcher too.
        let _watcher = glommio::spawn_local(watch_allocs(
            self.node.clone(),
            self.link.clone(),
            self.stats.clone(),
        ));
        // First beat lands anywhere in the first half-TTL so a fleet registered at once
        // does not heartbeat in lockstep.
        let mut wait = self.jitter.spread(ttl / 4, 0.9);
        loop {
            glommio::timer::sleep(wait).await;
            let started = Instant::now();
            let request = ClientRequest::Heartbeat {
                node_id: self.node.id.clone(),
                secret_id: self.node.secret_id.clone(),
            };
            match self.link.conn.call(request).await {
                Ok(ClientResponse::HeartbeatAck {
                    heartbeat_ttl_ms, ..
                }) => {
                    let micros = started.elapsed().as_micros() as u64;
                    let _ = self
                        .stats
                        .heartbeat_latency_us
                        .borrow_mut()
                        .record(micros.max(1));
                    SimStats::bump(&self.stats.heartbeats_sent, 1);
                    ttl = ttl_from_ms(heartbeat_ttl_ms);
                    wait = self.jitter.spread(ttl / 2, 0.1);
                }
                Ok(ClientResponse::Error { code, .. }) if code == "node_not_found" => {
                    SimStats::bump(&self.stats.reregistrations, 1);
                    ttl = self.register().await;
                    wait = self.jitter.spread(ttl / 2, 0.1);
                }
                outcome => {
                    SimStats::bump(&self.stats.errors, 1);
                    tracing::debug!(node_id = %self.node.id, ?outcome, "heartbeat failed");
                    // Retry well inside the TTL so one lost beat does not mark the node down.
                    wait = (ttl / 8).min(RETRY_DELAY_MAX);
                }
            }
        }
    }

    /// Registers until the server accepts; returns the heartbeat TTL it names.
    async fn register(&mut self) -> Duration {
        let mut delay = Duration::from_millis(100);
        loop {
            self.node.status_updated_at_unix_s = unix_now_s();
            let request = ClientRequest::Register {
                node: self.node.clone(),
            };
            match self.link.conn.call(request).await {
                Ok(ClientResponse::Registered {
                    heartbeat_ttl_ms, ..
                }) => return ttl_from_ms(heartbeat_ttl_ms),
                outcome => {
                    SimStats::bump(&self.stats.errors, 1);
                    tracing::debug!(node_id = %self.node.id, ?outcome, "register failed");
                }
            }
            glommio::timer::sleep(self.jitter.spread(delay, 0.5)).await;
            delay = (delay * 2).min(RETRY_DELAY_MAX);
        }
    }
}

fn ttl_from_ms(heartbeat_ttl_ms: u64) -> Duration {
    if heartbeat_ttl_ms == 0 {
        Duration::from_millis(HEARTBEAT_TTL_DEFAULT_MS)
    } else {
        Duration::from_millis(heartbeat_ttl_ms)
    }
}

/// Blocks on `GetAllocs` in a loop and queues a status report for every allocation whose
/// desired status the node has not yet acted on.
async fn watch_allocs(node: Node, link: Rc<Link>, stats: Rc<SimStats>) {
    let mut known: HashMap<String, KnownAlloc> = HashMap::new();
    let mut min_index = 0u64;
    loop {
        let request = ClientRequest::GetAllocs {
            node_id: node.id.clone(),
            secret_id: node.secret_id.clone(),
            min_index,
            max_wait_ms: GET_ALLOCS_WAIT_MS,
        };
        let started = Instant::now();
        match link.conn.call(request).await {
            Ok(ClientResponse::Allocs { index, allocs }) => {
                observe_allocs(&node, &link, &stats, &mut known, &allocs);
                // A server that answers at once without progress would make this loop spin.
                if index <= min_index && started.elapsed() < Duration::from_millis(10) {
                    glommio::timer::sleep(UPDATE_BATCH_INTERVAL).await;
                }
                min_index = min_index.max(index);
            }
            outcome => {
                SimStats::bump(&stats.errors, 1);
                tracing::debug!(node_id = %node.id, ?outcome, "get allocs failed");
                glommio::timer::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

fn observe_allocs(
    node: &Node,
    link: &Link,
    stats: &SimStats,
    known: &mut HashMap<String, KnownAlloc>,
    allocs: &[Allocation],
) {
    // The server sends only allocations that changed since the last answer, so absence
    // means "unchanged", never "gone": entries are kept for the node's lifetime.
    for alloc in allocs {
        let is_new = !known.contains_key(alloc.id.as_str());
        let entry = known.entry(alloc.id.to_string()).or_default();
        if alloc.desired_status == DesiredStatus::Run {
            if is_new {
                SimStats::bump(&stats.allocs_placed_seen, 1);
            }
            if alloc.client_status == ClientStatus::Running && !entry.running_seen {
                entry.running_seen = true;
                SimStats::bump(&stats.allocs_running_seen, 1);
            }
            let startable = matches!(alloc.client_status, ClientStatus::Pending);
            if startable && entry.reported.is_none() {
                entry.reported = Some(ClientStatus::Running);
                link.queue(node, update_for(alloc, ClientStatus::Running));
            }
        } else if !alloc.client_status.is_terminal()
            && entry.reported != Some(ClientStatus::Complete)
        {
            entry.reported = Some(ClientStatus::Complete);
            link.queue(node, update_for(alloc, ClientStatus::Complete));
        }
    }
}

fn update_for(alloc: &Allocation, status: ClientStatus) -> AllocUpdate {
    let now = unix_now_ns();
    let (state, description) = match status {
        ClientStatus::Running => ("running", "Tasks are running"),
        _ => ("dead", "All tasks have completed"),
    };
    let task_states = alloc
        .task_states
        .keys()
        .map(|task| {
            let started = alloc
                .task_states
                .get(task)
                .map_or(0, |s| s.started_at_unix_ns);
            let task_state = TaskState {
                state: state.into(),
                failed: false,
                restarts: 0,
                started_at_unix_ns: if started == 0 { now } else { started },
                finished_at_unix_ns: if status == ClientStatus::Running {
                    0
                } else {
                    now
                },
            };
            (task.to_string(), task_state)
        })
        .collect();
    AllocUpdate {
        alloc_id: alloc.id.to_string(),
        node_id: alloc.node_id.to_string(),
        client_status: status,
        client_description: description.to_string(),
        task_states,
    }
}
