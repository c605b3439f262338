//! End-to-end runs of both scenarios against an in-process fake server (RPC and HTTP).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::api::{
    ClusterStatus, EvalReply, JobSummary, PlanReply, ReadView, RegisterJob, RegisterJobReply,
};
use engine::client_proto::{ClientRequest, ClientResponse, CLIENT_PROTOCOL_VERSION};
use engine::{Cluster, EngineError};
use sched::structs::{
    AllocMetric, Allocation, ClientStatus, DesiredStatus, Evaluation, Job, Node, Resources,
};
use sched::{SchedulerConfig, StateView};
use serde_json::{json, Value};

use super::{run, LoadgenArgs, Scenario};

const HEARTBEAT_TTL_MS: u64 = 300;

/// What both fake ports share: registered nodes, their allocations and a change index.
#[derive(Default)]
struct World {
    index: u64,
    nodes: Vec<String>,
    allocs: HashMap<String, Vec<Allocation>>,
    next_node: usize,
}

impl World {
    /// Places `count` allocations of `job_id` round-robin over the registered nodes.
    fn place(&mut self, job_id: &str, count: u64) {
        assert!(
            !self.nodes.is_empty(),
            "job {job_id} submitted before any node registered"
        );
        self.index += 1;
        for n in 0..count {
            let node_id = self.nodes[self.next_node % self.nodes.len()].clone();
            self.next_node += 1;
            let alloc = alloc(&node_id, &format!("{job_id}-{n}"), job_id, self.index);
            self.allocs.entry(node_id).or_default().push(alloc);
        }
    }
}

fn alloc(node_id: &str, id: &str, job_id: &str, index: u64) -> Allocation {
    Allocation {
        id: id.into(),
        namespace: "default".into(),
        eval_id: "eval".into(),
        name: format!("{job_id}.load[0]").into(),
        node_id: node_id.into(),
        node_name: Default::default(),
        job_id: job_id.into(),
        job_version: 0,
        task_group: "load".into(),
        resources: Resources::default(),
        ports: Default::default(),
        desired_status: DesiredStatus::Run,
        desired_description: Default::default(),
        client_status: ClientStatus::Pending,
        client_description: Default::default(),
        task_states: Default::default(),
        previous_allocation: Default::default(),
        next_allocation: Default::default(),
        followup_eval_id: Default::default(),
        desired_transition: Default::default(),
        reschedule_events: Default::default(),
        preempted_allocations: Default::default(),
        preempted_by_allocation: Default::default(),
        metrics: AllocMetric::default(),
        create_index: index,
        modify_index: index,
        alloc_modify_index: index,
        create_time_ns: 0,
        modify_time_ns: 0,
    }
}

struct NoView(SchedulerConfig);

impl StateView for NoView {
    fn index(&self) -> u64 {
        0
    }
    fn job(&self, _: &str, _: &str) -> Option<&Job> {
        None
    }
    fn node(&self, _: &str) -> Option<&Node> {
        None
    }
    fn nodes(&self) -> Vec<&Node> {
        Vec::new()
    }
    fn allocs_by_job(&self, _: &str, _: &str) -> Vec<&Allocation> {
        Vec::new()
    }
    fn allocs_by_node(&self, _: &str) -> Vec<&Allocation> {
        Vec::new()
    }
    fn node_usage(&self, _: &str) -> Resources {
        Resources::default()
    }
}

impl ReadView for NoView {
    fn jobs(&self) -> Vec<&Job> {
        Vec::new()
    }
    fn job_versions(&self, _: &str, _: &str) -> Vec<&Job> {
        Vec::new()
    }
    fn job_summary(&self, _: &str, _: &str) -> Option<JobSummary> {
        None
    }
    fn allocs(&self) -> Vec<&Allocation> {
        Vec::new()
    }
    fn alloc(&self, _: &str) -> Option<&Allocation> {
        None
    }
    fn allocs_by_eval(&self, _: &str) -> Vec<&Allocation> {
        Vec::new()
    }
    fn evals(&self) -> Vec<&Evaluation> {
        Vec::new()
    }
    fn eval(&self, _: &str) -> Option<&Evaluation> {
        None
    }
    fn evals_by_job(&self, _: &str, _: &str) -> Vec<&Evaluation> {
        Vec::new()
    }
    fn scheduler_config(&self) -> &SchedulerConfig {
        &self.0
    }
}

#[derive(Clone)]
struct FakeCluster(Arc<Mutex<World>>);

impl Cluster for FakeCluster {
    type View = NoView;

    fn view(&self) -> Rc<NoView> {
        Rc::new(NoView(SchedulerConfig::default()))
    }
    async fn set_scheduler_config(
        &self,
        _config: sched::SchedulerConfig,
        _cas: Option<u64>,
    ) -> Result<(bool, u64), EngineError> {
        Err(EngineError::NoLeader)
    }

    async fn wait_for_index(&self, _: u64, _: Duration) -> Rc<NoView> {
        self.view()
    }
    fn status(&self) -> ClusterStatus {
        // This fake is the leader: requests are answered here, not forwarded.
        ClusterStatus {
            is_leader: true,
            known_leader: true,
            ..ClusterStatus::default()
        }
    }
    async fn register_job(&self, _: RegisterJob) -> Result<RegisterJobReply, EngineError> {
        Err(EngineError::NoLeader)
    }
    async fn deregister_job(&self, _: &str, _: &str, _: bool) -> Result<EvalReply, EngineError> {
        Err(EngineError::NoLeader)
    }
    async fn evaluate_job(&self, _: &str, _: &str) -> Result<EvalReply, EngineError> {
        Err(EngineError::NoLeader)
    }
    async fn plan_job(&self, _: Job) -> Result<PlanReply, EngineError> {
        Err(EngineError::NoLeader)
    }

    async fn client_request(&self, request: ClientRequest) -> ClientResponse {
        match request {
            ClientRequest::Hello { .. } => ClientResponse::Hello {
                version: CLIENT_PROTOCOL_VERSION,
                region: "global".into(),
            },
            ClientRequest::Register { node } => {
                let mut world = self.0.lock().expect("world");
                world.index += 1;
                if !world.nodes.contains(&node.id) {
                    world.nodes.push(node.id);
                }
                ClientResponse::Registered {
                    heartbeat_ttl_ms: HEARTBEAT_TTL_MS,
                    index: world.index,
                    leader_rpc_addr: String::new(),
                }
            }
            ClientRequest::Heartbeat { .. } => ClientResponse::HeartbeatAck {
                heartbeat_ttl_ms: HEARTBEAT_TTL_MS,
                leader_rpc_addr: String::new(),
            },
            ClientRequest::GetAllocs {
                node_id,
                min_index,
                max_wait_ms,
                ..
            } => {
                let deadline = Instant::now() + Duration::from_millis(max_wait_ms);
                loop {
                    {
                        let world = self.0.lock().expect("world");
                        if world.index > min_index || Instant::now() >= deadline {
                            let allocs = world.allocs.get(&node_id).cloned().unwrap_or_default();
                            return ClientResponse::Allocs {
                                index: world.index,
                                allocs,
                            };
                        }
                    }
                    glommio::timer::sleep(Duration::from_millis(5)).await;
                }
            }
            ClientRequest::UpdateAllocs {
                node_id, updates, ..
            } => {
                let mut world = self.0.lock().expect("world");
                world.index += 1;
                let index = world.index;
                let held = world.allocs.entry(node_id).or_default();
                for update in updates {
                    if let Some(alloc) = held.iter_mut().find(|a| a.id == update.alloc_id) {
                        alloc.client_status = update.client_status;
                    }
                }
                ClientResponse::Updated { index }
            }
        }
    }
}

/// Starts the fake RPC port on its own executor thread (lives until the test process ends).
fn start_rpc(world: Arc<Mutex<World>>) -> SocketAddr {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    // Dropping the join handle leaves the executor thread running for the rest of the test.
    let _server = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(512 << 10)
        .spawn(move || async move {
            let listener = glommio::net::TcpListener::bind("127.0.0.1:0").expect("bind rpc");
            addr_tx
                .send(listener.local_addr().expect("addr"))
                .expect("send");
            net::rpc::serve_rpc(listener, FakeCluster(world), std::future::pending()).await;
        })
        .expect("rpc executor");
    addr_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("rpc address")
}

/// Starts a minimal HTTP/1.1 responder for the three endpoints the load generator uses.
fn start_http(world: Arc<Mutex<World>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind http");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let world = world.clone();
            std::thread::spawn(move || answer_http(stream, &world));
        }
    });
    addr
}

fn answer_http(mut stream: std::net::TcpStream, world: &Mutex<World>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut content_length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            content_length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; content_length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let reply: Value = if request_line.starts_with("GET /v1/status/leader") {
        json!("127.0.0.1:4647")
    } else if request_line.starts_with("GET /v1/nodes") {
        let world = world.lock().expect("world");
        Value::Array(
            world
                .nodes
                .iter()
                .map(|id| json!({"ID": id, "Status": "ready"}))
                .collect(),
        )
    } else if request_line.starts_with("PUT /v1/jobs") {
        let job: Value = serde_json::from_slice(&body).expect("job json");
        let job_id = job["Job"]["ID"].as_str().expect("job id").to_string();
        let count = job["Job"]["TaskGroups"][0]["Count"]
            .as_u64()
            .expect("count");
        world.lock().expect("world").place(&job_id, count);
        json!({"EvalID": "eval", "JobModifyIndex": 1})
    } else {
        json!({})
    };
    let text = reply.to_string();
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

fn args(http: SocketAddr, rpc: SocketAddr, scenario: Scenario) -> LoadgenArgs {
    LoadgenArgs {
        http: format!("http://{http}"),
        rpc: rpc.to_string(),
        nodes: 4,
        jobs: 3,
        count: 5,
        cpu: 50,
        memory: 32,
        node_cpu: 16000,
        node_memory: 32768,
        submitters: 2,
        seed: 9,
        conns: 2,
        duration_secs: 1,
        settle_secs: 1,
        timeout_secs: 30,
        trials: 1,
        queries: 1,
        datacenter: "dc1".into(),
        payloads: "256,4096".into(),
        etcd: false,
        servers: 1,
        out: None,
        scenario,
    }
}

#[test]
fn place_scenario_reports_every_allocation_placed_and_running() {
    let world = Arc::new(Mutex::new(World::default()));
    let rpc = start_rpc(world.clone());
    let http = start_http(world.clone());
    let out = tempfile::tempdir().expect("out dir");
    let report = run(LoadgenArgs {
        out: Some(out.path().join("series")),
        ..args(http, rpc, Scenario::Place)
    })
    .expect("run");
    let json = &report.json;
    assert!(report.completed, "place did not complete: {json}");
    let series: Vec<serde_json::Value> = serde_json::from_slice(
        &std::fs::read(out.path().join("series/series.json")).expect("series.json written"),
    )
    .expect("series is JSON");
    assert!(!series.is_empty(), "at least the closing sample");
    assert_eq!(
        series.last().unwrap()["allocs_running"],
        15,
        "the last sample saw every allocation running: {series:?}"
    );
    assert!(std::fs::read_to_string(out.path().join("series/chart.svg"))
        .expect("chart.svg written")
        .contains("<polyline"));
    assert_eq!(json["scenario"], "place");
    assert_eq!(json["nodes_registered"], 4);
    assert_eq!(json["jobs_submitted"], 3);
    assert_eq!(json["allocs_placed_seen"], 15);
    assert_eq!(json["allocs_running_reported"], 15);
    assert!(json["placements_per_second"]
        .as_f64()
        .is_some_and(|rate| rate > 0.0));
    let placed = json["seconds_to_all_placed"].as_f64().expect("placed time");
    let running = json["seconds_to_all_running"]
        .as_f64()
        .expect("running time");
    assert!(running >= placed);
    let world = world.lock().expect("world");
    let all_running = world
        .allocs
        .values()
        .flatten()
        .all(|a| a.client_status == ClientStatus::Running);
    assert!(
        all_running,
        "the fake server did not receive every running update"
    );
}

#[test]
fn heartbeats_scenario_reports_rate_latency_and_no_false_downs() {
    let world = Arc::new(Mutex::new(World::default()));
    let rpc = start_rpc(world.clone());
    let http = start_http(world);
    let report = run(args(http, rpc, Scenario::Heartbeats)).expect("run");
    let json = &report.json;
    assert!(report.completed, "heartbeats did not complete: {json}");
    assert!(
        json["heartbeats"].as_u64().is_some_and(|beats| beats >= 4),
        "{json}"
    );
    assert!(json["heartbeats_per_second"]
        .as_f64()
        .is_some_and(|rate| rate > 0.0));
    let p50 = json["heartbeat_p50_ms"].as_f64().expect("p50");
    let p99 = json["heartbeat_p99_ms"].as_f64().expect("p99");
    assert!(p99 >= p50);
    assert_eq!(json["false_node_downs"], 0);
    assert_eq!(
        json["seconds_settled"], 1,
        "the settle period is reported: {json}"
    );
}
