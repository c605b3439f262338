//! The RPC port end to end: `serve_rpc` with a fake cluster, `ClientConn`, and simulated nodes.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::api::{
    ClusterStatus, EvalReply, JobSummary, PlanReply, ReadView, RegisterJob, RegisterJobReply,
};
use engine::client_proto::{
    ClientEnvelope, ClientRequest, ClientResponse, CLIENT_PROTOCOL_BYTE, CLIENT_PROTOCOL_VERSION,
    FRAME_BYTES_MAX,
};
use engine::{Cluster, EngineError};
use glommio::{LocalExecutorBuilder, Placement};
use net::client::sim::{run_sim_nodes, SimNodeSpec, SimStats};
use net::client::ClientConn;
use net::rpc::{frame_bytes, serve_rpc, CONNECTION_REQUESTS_IN_FLIGHT_MAX};
use sched::structs::{
    AllocMetric, Allocation, ClientStatus, DesiredStatus, Evaluation, Job, Node, Resources,
};
use sched::{SchedulerConfig, StateView};

const HEARTBEAT_TTL_MS: u64 = 400;
/// A node id whose `GetAllocs` just waits out its `max_wait_ms`, without registration.
const SLEEPY_NODE: &str = "sleepy";

/// A view with nothing in it: these tests only exercise the client protocol.
struct EmptyView {
    config: SchedulerConfig,
}

impl StateView for EmptyView {
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

impl ReadView for EmptyView {
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
        &self.config
    }
}

/// A fake cluster that answers the client protocol from in-memory maps. Every registered node
/// gets one pending allocation, so simulated nodes have something to start.
#[derive(Clone, Default)]
struct FakeCluster {
    inner: Rc<FakeState>,
}

#[derive(Default)]
struct FakeState {
    index: Cell<u64>,
    nodes: RefCell<HashMap<String, Node>>,
    allocs: RefCell<HashMap<String, Vec<Allocation>>>,
}

fn pending_alloc(node_id: &str) -> Allocation {
    Allocation {
        id: format!("alloc-{node_id}").into(),
        namespace: "default".into(),
        eval_id: "eval-1".into(),
        name: "web.web[0]".into(),
        node_id: node_id.into(),
        node_name: Default::default(),
        job_id: "web".into(),
        job_version: 0,
        task_group: "web".into(),
        resources: Resources {
            cpu_mhz: 100,
            memory_mb: 64,
            memory_max_mb: 0,
            disk_mb: 0,
        },
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
        create_index: 1,
        modify_index: 1,
        alloc_modify_index: 1,
        create_time_ns: 0,
        modify_time_ns: 0,
    }
}

impl FakeState {
    fn bump(&self) -> u64 {
        self.index.set(self.index.get() + 1);
        self.index.get()
    }

    fn known(&self, node_id: &str, secret_id: &str) -> bool {
        self.nodes
            .borrow()
            .get(node_id)
            .is_some_and(|node| node.secret_id == secret_id)
    }

    fn not_found() -> ClientResponse {
        ClientResponse::Error {
            code: "node_not_found".into(),
            message: "unknown node".into(),
        }
    }
}

impl Cluster for FakeCluster {
    type View = EmptyView;

    fn view(&self) -> Rc<EmptyView> {
        Rc::new(EmptyView {
            config: SchedulerConfig::default(),
        })
    }
    async fn set_scheduler_config(
        &self,
        _config: sched::SchedulerConfig,
        _cas: Option<u64>,
    ) -> Result<(bool, u64), EngineError> {
        Err(EngineError::NoLeader)
    }

    async fn wait_for_index(&self, _: u64, _: Duration) -> Rc<EmptyView> {
        self.view()
    }
    fn status(&self) -> ClusterStatus {
        // This fake is the leader: client requests are answered here, not forwarded.
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
        let state = &self.inner;
        match request {
            ClientRequest::Hello { .. } => ClientResponse::Hello {
                version: CLIENT_PROTOCOL_VERSION,
                region: "global".into(),
            },
            ClientRequest::Register { node } => {
                let index = state.bump();
                state
                    .allocs
                    .borrow_mut()
                    .insert(node.id.clone(), vec![pending_alloc(&node.id)]);
                state.nodes.borrow_mut().insert(node.id.clone(), node);
                ClientResponse::Registered {
                    heartbeat_ttl_ms: HEARTBEAT_TTL_MS,
                    index,
                    leader_rpc_addr: String::new(),
                }
            }
            ClientRequest::Heartbeat { node_id, secret_id } => {
                if !state.known(&node_id, &secret_id) {
                    return FakeState::not_found();
                }
                ClientResponse::HeartbeatAck {
                    heartbeat_ttl_ms: HEARTBEAT_TTL_MS,
                    leader_rpc_addr: String::new(),
                }
            }
            ClientRequest::GetAllocs {
                node_id,
                max_wait_ms,
                ..
            } if node_id == SLEEPY_NODE => {
                // One timer per request: cheap enough to hold thousands in flight.
                glommio::timer::sleep(Duration::from_millis(max_wait_ms)).await;
                ClientResponse::Allocs {
                    index: state.index.get(),
                    allocs: Vec::new(),
                }
            }
            ClientRequest::GetAllocs {
                node_id,
                secret_id,
                min_index,
                max_wait_ms,
            } => {
                if !state.known(&node_id, &secret_id) {
                    return FakeState::not_found();
                }
                // Polling is good enough for a fake; the real engine wakes on commit.
                let deadline = Instant::now() + Duration::from_millis(max_wait_ms);
                while state.index.get() <= min_index && Instant::now() < deadline {
                    glommio::timer::sleep(Duration::from_millis(5)).await;
                }
                let allocs = state
                    .allocs
                    .borrow()
                    .get(&node_id)
                    .cloned()
                    .unwrap_or_default();
                ClientResponse::Allocs {
                    index: state.index.get(),
                    allocs,
                }
            }
            ClientRequest::UpdateAllocs {
                node_id,
                secret_id,
                updates,
            } => {
                if !state.known(&node_id, &secret_id) {
                    return FakeState::not_found();
                }
                let mut allocs = state.allocs.borrow_mut();
                for update in updates {
                    let held = allocs.entry(update.node_id.clone()).or_default();
                    if let Some(alloc) = held.iter_mut().find(|a| a.id == update.alloc_id) {
                        alloc.client_status = update.client_status;
                    }
                }
                ClientResponse::Updated {
                    index: state.bump(),
                }
            }
        }
    }
}

/// A server on its own executor thread; stops when dropped.
struct TestServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<glommio::ExecutorJoinHandle<()>>,
}

impl TestServer {
    fn start() -> TestServer {
        let stop = Arc::new(AtomicBool::new(false));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let server_stop = stop.clone();
        let thread = LocalExecutorBuilder::new(Placement::Unbound)
            .io_memory(512 << 10)
            .name("rpc-test-server")
            .spawn(move || async move {
                let listener = glommio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("local addr"))
                    .expect("send addr");
                let stop = async move {
                    while !server_stop.load(Ordering::Relaxed) {
                        glommio::timer::sleep(Duration::from_millis(10)).await;
                    }
                };
                serve_rpc(listener, FakeCluster::default(), stop).await;
            })
            .expect("spawn server executor");
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server address");
        TestServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs `body` on a fresh client executor on this thread.
fn on_client_executor<F, Fut>(body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(512 << 10)
        .name("rpc-test-client")
        .spawn(body)
        .expect("spawn client executor")
        .join()
        .expect("client executor panicked");
}

fn test_node(id: &str) -> Node {
    let mut node = SimNodeSpec::default().node(0);
    node.id = id.to_string();
    node.secret_id = format!("secret-{id}");
    node
}

#[test]
fn heartbeats_are_answered_while_get_allocs_blocks() {
    let server = TestServer::start();
    let addr = server.addr;
    on_client_executor(move || async move {
        tracing::info!("register a node so that its requests are accepted");
        let conn = ClientConn::connect(addr).await.expect("connect");
        assert_eq!(conn.region(), "global");
        let node = test_node("node-a");
        let registered = conn
            .call(ClientRequest::Register { node: node.clone() })
            .await;
        let index = match registered.expect("register") {
            ClientResponse::Registered { index, .. } => index,
            other => panic!("unexpected {other:?}"),
        };

        tracing::info!("park a blocking GetAllocs past the current index on the same connection");
        let done = Rc::new(Cell::new(false));
        let blocking = {
            let conn = conn.clone();
            let node = node.clone();
            let done = done.clone();
            glommio::spawn_local(async move {
                let response = conn
                    .call(ClientRequest::GetAllocs {
                        node_id: node.id.clone(),
                        secret_id: node.secret_id.clone(),
                        min_index: index,
                        max_wait_ms: 3_000,
                    })
                    .await;
                done.set(true);
                response
            })
        };

        tracing::info!("many concurrent heartbeats complete while it is still parked");
        let beats = (0..64).map(|_| {
            conn.call(ClientRequest::Heartbeat {
                node_id: node.id.clone(),
                secret_id: node.secret_id.clone(),
            })
        });
        for answer in futures::future::join_all(beats).await {
            assert!(
                matches!(answer, Ok(ClientResponse::HeartbeatAck { heartbeat_ttl_ms, .. }) if heartbeat_ttl_ms == HEARTBEAT_TTL_MS),
                "unexpected heartbeat answer {answer:?}"
            );
        }
        assert!(
            !done.get(),
            "GetAllocs returned before its index moved or its wait ended"
        );

        tracing::info!("an update moves the index, which releases the GetAllocs");
        let updated = conn
            .call(ClientRequest::UpdateAllocs {
                node_id: node.id.clone(),
                secret_id: node.secret_id.clone(),
                updates: Vec::new(),
            })
            .await
            .expect("update");
        assert!(matches!(updated, ClientResponse::Updated { .. }));
        match blocking.await.expect("get allocs") {
            ClientResponse::Allocs { index: got, allocs } => {
                assert!(got > index);
                assert_eq!(allocs.len(), 1);
            }
            other => panic!("unexpected {other:?}"),
        }

        tracing::info!("unknown nodes get a stable error code");
        let unknown = conn
            .call(ClientRequest::Heartbeat {
                node_id: "nope".into(),
                secret_id: "x".into(),
            })
            .await
            .expect("call");
        assert!(
            matches!(unknown, ClientResponse::Error { ref code, .. } if code == "node_not_found")
        );
    });
}

/// Sends `bytes` on a raw connection and reports whether the server closed it.
fn server_closes_after(addr: SocketAddr, bytes: &[u8]) -> bool {
    let mut raw = std::net::TcpStream::connect(addr).expect("raw connect");
    raw.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    raw.write_all(bytes).expect("write");
    let mut sink = [0u8; 256];
    loop {
        match raw.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn bad_input_drops_only_that_connection() {
    let server = TestServer::start();
    let addr = server.addr;

    tracing::info!("keep a healthy connection open across the bad ones");
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let healthy = std::thread::spawn(move || {
        on_client_executor(move || async move {
            let conn = ClientConn::connect(addr).await.expect("connect");
            let node = test_node("node-b");
            conn.call(ClientRequest::Register { node: node.clone() })
                .await
                .expect("register");
            ready_tx.send(()).expect("ready");
            while go_rx.try_recv().is_err() {
                glommio::timer::sleep(Duration::from_millis(5)).await;
            }
            let beat = conn
                .call(ClientRequest::Heartbeat {
                    node_id: node.id.clone(),
                    secret_id: node.secret_id.clone(),
                })
                .await
                .expect("heartbeat on the healthy connection after the bad ones");
            assert!(matches!(beat, ClientResponse::HeartbeatAck { .. }));
            assert!(conn.is_connected());
        });
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("healthy connection ready");

    tracing::info!("garbage frame body");
    let mut garbage = vec![CLIENT_PROTOCOL_BYTE];
    garbage.extend_from_slice(&32u32.to_le_bytes());
    garbage.extend((0..32u8).map(|b| b.wrapping_mul(91)));
    assert!(server_closes_after(addr, &garbage));

    tracing::info!("length over the frame maximum");
    let mut too_long = vec![CLIENT_PROTOCOL_BYTE];
    too_long.extend_from_slice(&((FRAME_BYTES_MAX as u32) + 1).to_le_bytes());
    assert!(server_closes_after(addr, &too_long));

    tracing::info!("a response envelope sent by a client");
    let mut response = vec![CLIENT_PROTOCOL_BYTE];
    let envelope = ClientEnvelope::Response {
        seq: 1,
        body: ClientResponse::Updated { index: 1 },
    };
    response.extend(frame_bytes(&envelope).expect("frame"));
    assert!(server_closes_after(addr, &response));

    tracing::info!("unknown selector byte");
    assert!(server_closes_after(addr, &[0x7f, 1, 2, 3]));

    go_tx.send(()).expect("go");
    healthy.join().expect("healthy connection survived");
}

#[test]
fn client_reconnects_after_the_server_restarts() {
    let first = TestServer::start();
    let addr = first.addr;
    let (restarted_tx, restarted_rx) = std::sync::mpsc::channel::<SocketAddr>();
    let (stopped_tx, stopped_rx) = std::sync::mpsc::channel::<()>();
    let client = std::thread::spawn(move || {
        on_client_executor(move || async move {
            let conn = ClientConn::connect(addr).await.expect("connect");
            stopped_tx.send(()).expect("signal");
            // Wait for the server swap, then call on the same handle.
            let new_addr = loop {
                if let Ok(new_addr) = restarted_rx.try_recv() {
                    break new_addr;
                }
                glommio::timer::sleep(Duration::from_millis(5)).await;
            };
            assert_eq!(new_addr, addr);
            let hello = loop {
                match conn
                    .call(ClientRequest::Hello {
                        version: CLIENT_PROTOCOL_VERSION,
                    })
                    .await
                {
                    Ok(answer) => break answer,
                    Err(_) => glommio::timer::sleep(Duration::from_millis(20)).await,
                }
            };
            assert!(matches!(hello, ClientResponse::Hello { .. }));
        });
    });
    stopped_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("client connected");
    drop(first);
    // SO_REUSEPORT lets the new listener take the same port at once.
    let second = start_on(addr);
    restarted_tx.send(addr).expect("send");
    client.join().expect("client reconnected");
    drop(second);
}

fn start_on(addr: SocketAddr) -> TestServer {
    let stop = Arc::new(AtomicBool::new(false));
    let server_stop = stop.clone();
    let thread = LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(512 << 10)
        .spawn(move || async move {
            let listener = glommio::net::TcpListener::bind(addr).expect("rebind");
            let stop = async move {
                while !server_stop.load(Ordering::Relaxed) {
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                }
            };
            serve_rpc(listener, FakeCluster::default(), stop).await;
        })
        .expect("spawn server executor");
    TestServer {
        addr,
        stop,
        thread: Some(thread),
    }
}

#[test]
fn simulated_nodes_register_heartbeat_and_report_running() {
    let server = TestServer::start();
    let addr = server.addr;
    on_client_executor(move || async move {
        let spec = SimNodeSpec {
            count: 5,
            seed: 42,
            ..SimNodeSpec::default()
        };
        let stats = Rc::new(SimStats::new());
        let stop = Rc::new(Cell::new(false));
        let fleet = {
            let stats = stats.clone();
            let stop = stop.clone();
            glommio::spawn_local(run_sim_nodes(addr, spec, 2, stats, async move {
                while !stop.get() {
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                }
            }))
        };

        tracing::info!("every node's allocation is reported running and seen back as running");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let seen = stats.snapshot();
            if seen.allocs_running_seen == 5 && seen.heartbeats_sent >= 5 {
                break;
            }
            assert!(Instant::now() < deadline, "fleet did not settle: {seen:?}");
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
        let seen = stats.snapshot();
        assert_eq!(seen.nodes_registered, 5);
        assert_eq!(seen.allocs_placed_seen, 5);
        assert_eq!(seen.allocs_running_reported, 5);
        assert!(seen.heartbeat_p99_us >= seen.heartbeat_p50_us);
        stop.set(true);
        fleet.await;
    });
}

#[test]
fn node_ids_are_stable_per_seed_and_index() {
    let spec = SimNodeSpec {
        seed: 7,
        ..SimNodeSpec::default()
    };
    let again = SimNodeSpec {
        seed: 7,
        ..SimNodeSpec::default()
    };
    let other = SimNodeSpec {
        seed: 8,
        ..SimNodeSpec::default()
    };
    assert_eq!(spec.node(3).id, again.node(3).id);
    assert_ne!(spec.node(3).id, spec.node(4).id);
    assert_ne!(spec.node(3).id, other.node(3).id);
    assert_ne!(spec.node(3).id, spec.node(3).secret_id);
    let node = spec.node(2);
    assert_eq!(node.name, "sim-2");
    assert_eq!(
        node.attributes.get("driver.raw_exec").map(String::as_str),
        Some("1")
    );
    assert_eq!(
        node.attributes.get("unique.hostname").map(String::as_str),
        Some("sim-2")
    );
}

#[test]
fn requests_past_the_in_flight_limit_are_answered_overloaded() {
    let server = TestServer::start();
    let addr = server.addr;
    on_client_executor(move || async move {
        tracing::info!("fill one connection with parked requests up to the limit");
        let conn = ClientConn::connect(addr).await.expect("connect");
        let sent = Rc::new(Cell::new(0usize));
        let mut parked = Vec::with_capacity(CONNECTION_REQUESTS_IN_FLIGHT_MAX);
        for _ in 0..CONNECTION_REQUESTS_IN_FLIGHT_MAX {
            let conn = conn.clone();
            let sent = sent.clone();
            parked.push(glommio::spawn_local(async move {
                sent.set(sent.get() + 1);
                conn.call(ClientRequest::GetAllocs {
                    node_id: SLEEPY_NODE.into(),
                    secret_id: String::new(),
                    min_index: 0,
                    max_wait_ms: 20_000,
                })
                .await
            }));
        }
        // Each task queues its frame in the same poll that counts it, so once every task has
        // counted, all parked frames precede the next one on the wire.
        while sent.get() < CONNECTION_REQUESTS_IN_FLIGHT_MAX {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }

        tracing::info!("one more request on the same connection is refused, not queued");
        let extra = conn
            .call(ClientRequest::Heartbeat {
                node_id: "n".into(),
                secret_id: "s".into(),
            })
            .await
            .expect("answer");
        assert!(
            matches!(extra, ClientResponse::Error { ref code, .. } if code == "overloaded"),
            "unexpected {extra:?}"
        );

        tracing::info!("closing the connection releases the parked calls with an error");
        conn.close();
        for task in parked {
            assert!(task.await.is_err());
        }

        tracing::info!("a new connection is served normally");
        let fresh = ClientConn::connect(addr).await.expect("reconnect");
        let hello = fresh
            .call(ClientRequest::Hello {
                version: CLIENT_PROTOCOL_VERSION,
            })
            .await;
        assert!(matches!(hello, Ok(ClientResponse::Hello { .. })));
    });
}
