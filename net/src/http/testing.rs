//! A fake `Cluster` over in-memory vectors, and a test server that serves it on a loopback port.
//!
//! Built for tests (`cfg(test)` or the `testing` feature). Writes bump the index and publish a
//! fresh immutable state, like the engine's read views; blocking queries poll for the change.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use engine::api::{
    AutopilotHealth, AutopilotState, ClusterStatus, EvalReply, JobSummary, Member, PlanReply,
    ReadView, RegisterJob, RegisterJobReply, ServerHealth, TaskGroupSummary,
};
use engine::client_proto::{ClientRequest, ClientResponse};
use engine::config::AutopilotConfig;
use engine::{Cluster, EngineError};
use sched::structs::{
    Allocation, DesiredUpdates, EvalStatus, Evaluation, Job, Node, Plan, Resources, SchedOutcome,
};
use sched::{SchedulerConfig, StateView};

use super::{serve_http, HttpLimits};

/// An immutable snapshot of fake cluster state.
#[derive(Clone, Debug, Default)]
pub struct FakeState {
    pub index: u64,
    /// Every stored job version; the highest version of each (namespace, id) is current.
    pub jobs: Vec<Job>,
    pub nodes: Vec<Node>,
    pub allocs: Vec<Allocation>,
    pub evals: Vec<Evaluation>,
    pub config: SchedulerConfig,
}

impl FakeState {
    fn current_jobs(&self) -> Vec<&Job> {
        let mut current: Vec<&Job> = Vec::new();
        for job in &self.jobs {
            match current
                .iter_mut()
                .find(|j| j.namespace == job.namespace && j.id == job.id)
            {
                Some(slot) if slot.version < job.version => *slot = job,
                Some(_) => {}
                None => current.push(job),
            }
        }
        current.sort_by(|a, b| (&a.namespace, &a.id).cmp(&(&b.namespace, &b.id)));
        current
    }
}

impl StateView for FakeState {
    fn index(&self) -> u64 {
        self.index
    }
    fn job(&self, namespace: &str, job_id: &str) -> Option<&Job> {
        self.current_jobs()
            .into_iter()
            .find(|j| j.namespace == namespace && j.id == job_id)
    }
    fn node(&self, node_id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == node_id)
    }
    fn nodes(&self) -> Vec<&Node> {
        self.nodes.iter().collect()
    }
    fn allocs_by_job(&self, namespace: &str, job_id: &str) -> Vec<&Allocation> {
        self.allocs
            .iter()
            .filter(|a| a.namespace == namespace && *a.job_id == *job_id)
            .collect()
    }
    fn allocs_by_node(&self, node_id: &str) -> Vec<&Allocation> {
        self.allocs
            .iter()
            .filter(|a| *a.node_id == *node_id)
            .collect()
    }
    fn node_usage(&self, node_id: &str) -> Resources {
        self.allocs_by_node(node_id)
            .into_iter()
            .filter(|a| !a.is_terminal())
            .fold(Resources::default(), |acc, a| acc.add(&a.resources))
    }
}

impl ReadView for FakeState {
    fn jobs(&self) -> Vec<&Job> {
        self.current_jobs()
    }
    fn job_versions(&self, namespace: &str, job_id: &str) -> Vec<&Job> {
        let mut versions: Vec<&Job> = self
            .jobs
            .iter()
            .filter(|j| j.namespace == namespace && j.id == job_id)
            .collect();
        versions.sort_by_key(|j| std::cmp::Reverse(j.version));
        versions
    }
    fn job_summary(&self, namespace: &str, job_id: &str) -> Option<JobSummary> {
        let job = self.job(namespace, job_id)?;
        let mut summary = JobSummary {
            job_id: job.id.clone(),
            namespace: job.namespace.clone(),
            create_index: job.create_index,
            modify_index: job.modify_index,
            ..JobSummary::default()
        };
        for tg in &job.task_groups {
            summary
                .summary
                .insert(tg.name.clone(), TaskGroupSummary::default());
        }
        for a in self.allocs_by_job(namespace, job_id) {
            let entry = summary.summary.entry(a.task_group.to_string()).or_default();
            if a.client_status == sched::structs::ClientStatus::Running {
                entry.running += 1;
            } else if a.client_status == sched::structs::ClientStatus::Pending {
                entry.starting += 1;
            }
        }
        Some(summary)
    }
    fn allocs(&self) -> Vec<&Allocation> {
        let mut allocs: Vec<&Allocation> = self.allocs.iter().collect();
        allocs.sort_by(|a, b| a.id.cmp(&b.id));
        allocs
    }
    fn alloc(&self, alloc_id: &str) -> Option<&Allocation> {
        self.allocs.iter().find(|a| a.id == alloc_id)
    }
    fn allocs_by_eval(&self, eval_id: &str) -> Vec<&Allocation> {
        self.allocs
            .iter()
            .filter(|a| *a.eval_id == *eval_id)
            .collect()
    }
    fn evals(&self) -> Vec<&Evaluation> {
        let mut evals: Vec<&Evaluation> = self.evals.iter().collect();
        evals.sort_by(|a, b| a.id.cmp(&b.id));
        evals
    }
    fn eval(&self, eval_id: &str) -> Option<&Evaluation> {
        self.evals.iter().find(|e| e.id == eval_id)
    }
    fn evals_by_job(&self, namespace: &str, job_id: &str) -> Vec<&Evaluation> {
        self.evals
            .iter()
            .filter(|e| e.namespace == namespace && e.job_id == job_id)
            .collect()
    }
    fn scheduler_config(&self) -> &SchedulerConfig {
        &self.config
    }
}

struct FakeInner {
    state: RefCell<Rc<FakeState>>,
    status: RefCell<ClusterStatus>,
    /// Every registration received, for assertions.
    registrations: RefCell<Vec<RegisterJob>>,
    max_query_time: Duration,
    autopilot: RefCell<AutopilotState>,
    /// `None` derives the health report from the member list.
    autopilot_health: RefCell<Option<AutopilotHealth>>,
}

/// A `Cluster` over `FakeState`. Clones share state.
#[derive(Clone)]
pub struct FakeCluster {
    inner: Rc<FakeInner>,
}

impl FakeCluster {
    /// Returns a fake cluster holding `state`, with a single-server status in region "global".
    pub fn new(state: FakeState) -> FakeCluster {
        FakeCluster {
            inner: Rc::new(FakeInner {
                state: RefCell::new(Rc::new(state)),
                status: RefCell::new(sample_status()),
                registrations: RefCell::new(Vec::new()),
                max_query_time: Duration::from_secs(300),
                autopilot: RefCell::new(AutopilotState {
                    config: AutopilotConfig::default(),
                    create_index: 1,
                    modify_index: 1,
                }),
                autopilot_health: RefCell::new(None),
            }),
        }
    }

    /// Applies a change to the state and publishes it at the next index.
    pub fn update(&self, change: impl FnOnce(&mut FakeState)) -> u64 {
        let mut next = (**self.inner.state.borrow()).clone();
        next.index += 1;
        change(&mut next);
        let index = next.index;
        *self.inner.state.borrow_mut() = Rc::new(next);
        index
    }

    /// Returns the registrations received so far.
    pub fn registrations(&self) -> Vec<RegisterJob> {
        self.inner.registrations.borrow().clone()
    }

    /// Changes the cluster status (members, leadership) the fake reports.
    pub fn update_status(&self, change: impl FnOnce(&mut ClusterStatus)) {
        change(&mut self.inner.status.borrow_mut());
    }

    /// Replaces the autopilot health report; until called it is derived from the members.
    pub fn set_autopilot_health(&self, health: AutopilotHealth) {
        *self.inner.autopilot_health.borrow_mut() = Some(health);
    }

    /// Finds the member named `name` (with or without the `.region` suffix).
    fn member_position(&self, name: &str) -> Option<usize> {
        let status = self.inner.status.borrow();
        let full = format!("{name}.{}", status.region);
        status
            .members
            .iter()
            .position(|m| m.name == name || m.name == full)
    }
}

/// Autopilot's view of a member list: alive servers are healthy; the tolerance is how many
/// healthy voters exceed a quorum of all voters.
fn derived_health(status: &ClusterStatus) -> AutopilotHealth {
    let servers: Vec<ServerHealth> = status
        .members
        .iter()
        .map(|m| ServerHealth {
            id: m.id.clone(),
            name: m.name.clone(),
            address: format!("{}:{}", m.addr, m.rpc_port),
            serf_status: m.status.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            leader: m.leader,
            voter: m.voter,
            last_contact_ms: 0,
            last_term: status.raft_term,
            last_index: status.raft_commit_index,
            healthy: m.status == "alive",
            stable_since_unix: if m.status == "alive" {
                1_700_000_000
            } else {
                0
            },
        })
        .collect();
    let voters = servers.iter().filter(|s| s.voter).count();
    let healthy_voters = servers.iter().filter(|s| s.voter && s.healthy).count();
    let quorum = voters / 2 + 1;
    AutopilotHealth {
        healthy: servers.iter().all(|s| s.healthy),
        failure_tolerance: healthy_voters.saturating_sub(quorum) as u32,
        servers,
    }
}

/// A one-server cluster status: this server leads region "global".
pub fn sample_status() -> ClusterStatus {
    let member = Member {
        redundancy_zone: String::new(),
        upgrade_version: String::new(),
        name: "server-1.global".into(),
        addr: "127.0.0.1".into(),
        serf_port: 4648,
        rpc_port: 4647,
        region: "global".into(),
        datacenter: "dc1".into(),
        status: "alive".into(),
        id: "6a1c8f2e-0000-4000-8000-000000000001".into(),
        bootstrap_expect: 1,
        leader: true,
        voter: true,
    };
    ClusterStatus {
        region: "global".into(),
        datacenter: "dc1".into(),
        server_name: "server-1".into(),
        server_id: member.id.clone(),
        leader_rpc_addr: "127.0.0.1:4647".into(),
        known_leader: true,
        last_contact_ms: 0,
        peers: vec!["127.0.0.1:4647".into()],
        members: vec![member],
        raft_term: 2,
        raft_applied_index: 10,
        raft_commit_index: 10,
        shards: 1,
        http_addr: "127.0.0.1:4646".into(),
        rpc_addr: "127.0.0.1:4647".into(),
        is_leader: true,
        raft_servers: Vec::new(),
        peer_match_index: Vec::new(),
    }
}

fn fake_eval(job: &Job, id: String, index: u64, trigger: &str, priority: u16) -> Evaluation {
    Evaluation {
        id,
        namespace: job.namespace.clone(),
        priority,
        job_type: job.job_type,
        triggered_by: trigger.into(),
        job_id: job.id.clone(),
        job_modify_index: job.job_modify_index,
        node_id: String::new(),
        node_modify_index: 0,
        status: EvalStatus::Pending,
        status_description: String::new(),
        wait_until_unix_ns: 0,
        next_eval: String::new(),
        previous_eval: String::new(),
        blocked_eval: String::new(),
        failed_tg_allocs: Default::default(),
        class_eligibility: Default::default(),
        escaped_computed_class: false,
        queued_allocations: Default::default(),
        snapshot_index: 0,
        create_index: index,
        modify_index: index,
        create_time_ns: 1_700_000_000_000_000_000,
        modify_time_ns: 1_700_000_000_000_000_000,
    }
}

impl Cluster for FakeCluster {
    type View = FakeState;

    fn view(&self) -> Rc<FakeState> {
        self.inner.state.borrow().clone()
    }

    async fn wait_for_index(&self, min_index: u64, timeout: Duration) -> Rc<FakeState> {
        let deadline = Instant::now() + timeout;
        loop {
            let view = self.view();
            if view.index > min_index || Instant::now() >= deadline {
                return view;
            }
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
    }

    fn status(&self) -> ClusterStatus {
        self.inner.status.borrow().clone()
    }

    async fn set_scheduler_config(
        &self,
        config: SchedulerConfig,
        cas: Option<u64>,
    ) -> Result<(bool, u64), EngineError> {
        let mut state = (*self.view()).clone();
        // The fake keeps no separate configuration index: `cas` is checked against the
        // state's index.
        if cas.is_some_and(|c| c != state.index) {
            return Ok((false, state.index));
        }
        state.index += 1;
        state.config = config;
        let index = state.index;
        *self.inner.state.borrow_mut() = Rc::new(state);
        Ok((true, index))
    }

    /// Every address answers except those containing "unreachable".
    async fn join_servers(&self, addrs: Vec<String>) -> Result<usize, EngineError> {
        let joined = addrs.iter().filter(|a| !a.contains("unreachable")).count();
        if joined == 0 {
            return Err(EngineError::invalid(
                "address",
                format!("no server answered at {}", addrs.join(", ")),
            ));
        }
        Ok(joined)
    }

    /// Marks the member left, or forgets it with `prune`.
    async fn force_leave(&self, name: &str, prune: bool) -> Result<(), EngineError> {
        let position = self
            .member_position(name)
            .ok_or_else(|| EngineError::NotFound {
                kind: "server",
                id: name.into(),
            })?;
        let mut status = self.inner.status.borrow_mut();
        if prune {
            status.members.remove(position);
        } else {
            status.members[position].status = "left".into();
        }
        Ok(())
    }

    async fn remove_raft_peer(
        &self,
        id: Option<&str>,
        address: Option<&str>,
    ) -> Result<(), EngineError> {
        let mut status = self.inner.status.borrow_mut();
        let position = status.members.iter().position(|m| {
            id.is_some_and(|id| m.id == id)
                || address.is_some_and(|a| format!("{}:{}", m.addr, m.rpc_port) == a)
        });
        let Some(position) = position else {
            return Err(EngineError::NotFound {
                kind: "peer",
                id: id.or(address).unwrap_or("").into(),
            });
        };
        let member = status.members.remove(position);
        let rpc = format!("{}:{}", member.addr, member.rpc_port);
        status.peers.retain(|p| *p != rpc);
        status.raft_servers.retain(|r| r.id != member.id);
        Ok(())
    }

    fn autopilot_config(&self) -> AutopilotState {
        self.inner.autopilot.borrow().clone()
    }

    /// With `cas`, updates only when it equals the stored modify index.
    async fn set_autopilot_config(
        &self,
        config: AutopilotConfig,
        cas: Option<u64>,
    ) -> Result<bool, EngineError> {
        let mut stored = self.inner.autopilot.borrow_mut();
        if cas.is_some_and(|c| c != stored.modify_index) {
            return Ok(false);
        }
        stored.config = config;
        stored.modify_index += 1;
        Ok(true)
    }

    fn autopilot_health(&self) -> AutopilotHealth {
        match &*self.inner.autopilot_health.borrow() {
            Some(health) => health.clone(),
            None => derived_health(&self.inner.status.borrow()),
        }
    }

    async fn register_job(&self, req: RegisterJob) -> Result<RegisterJobReply, EngineError> {
        self.inner.registrations.borrow_mut().push(req.clone());
        let view = self.view();
        let existing = view.job(&req.job.namespace, &req.job.id).cloned();
        if let Some(expected) = req.enforce_index {
            let found = existing.as_ref().map(|j| j.job_modify_index);
            let message = match found {
                Some(0) | None if expected == 0 => None,
                Some(_) if expected == 0 => {
                    Some(format!("Enforcing job modify index {expected}: job already exists"))
                }
                Some(m) if m != expected => Some(format!(
                    "Enforcing job modify index {expected}: job exists with conflicting job modify index: {m}"
                )),
                Some(_) => None,
                None => {
                    Some(format!("Enforcing job modify index {expected}: job does not exist"))
                }
            };
            if let Some(message) = message {
                return Err(EngineError::Conflict { message });
            }
        }
        let eval_id = format!("eval-{:04}", view.index + 1);
        let priority = req.eval_priority.unwrap_or(req.job.priority);
        let index = self.update(|state| {
            let mut job = req.job.clone();
            job.version = existing.as_ref().map_or(0, |j| j.version + 1);
            job.create_index = existing.as_ref().map_or(state.index, |j| j.create_index);
            job.modify_index = state.index;
            job.job_modify_index = state.index;
            let eval = fake_eval(&job, eval_id.clone(), state.index, "job-register", priority);
            state.jobs.push(job);
            state.evals.push(eval);
        });
        Ok(RegisterJobReply {
            eval_id,
            eval_create_index: index,
            job_modify_index: index,
            index,
            warnings: String::new(),
        })
    }

    async fn deregister_job(
        &self,
        namespace: &str,
        job_id: &str,
        purge: bool,
    ) -> Result<EvalReply, EngineError> {
        let view = self.view();
        let job = view
            .job(namespace, job_id)
            .cloned()
            .ok_or_else(|| EngineError::NotFound {
                kind: "job",
                id: job_id.into(),
            })?;
        let eval_id = format!("eval-{:04}", view.index + 1);
        let index = self.update(|state| {
            let eval = fake_eval(
                &job,
                eval_id.clone(),
                state.index,
                "job-deregister",
                job.priority,
            );
            if purge {
                state
                    .jobs
                    .retain(|j| !(j.namespace == namespace && j.id == job_id));
            } else {
                for j in state
                    .jobs
                    .iter_mut()
                    .filter(|j| j.namespace == namespace && j.id == job_id)
                {
                    j.stop = true;
                }
            }
            state.evals.push(eval);
        });
        Ok(EvalReply {
            eval_id,
            eval_create_index: index,
            index,
        })
    }

    async fn evaluate_job(&self, namespace: &str, job_id: &str) -> Result<EvalReply, EngineError> {
        let view = self.view();
        let job = view
            .job(namespace, job_id)
            .cloned()
            .ok_or_else(|| EngineError::NotFound {
                kind: "job",
                id: job_id.into(),
            })?;
        let eval_id = format!("eval-{:04}", view.index + 1);
        let index = self.update(|state| {
            state.evals.push(fake_eval(
                &job,
                eval_id.clone(),
                state.index,
                "job-register",
                job.priority,
            ));
        });
        Ok(EvalReply {
            eval_id,
            eval_create_index: index,
            index,
        })
    }

    async fn plan_job(&self, job: Job) -> Result<PlanReply, EngineError> {
        let view = self.view();
        let existing = view.job(&job.namespace, &job.id);
        let diff_type = match existing {
            None => "Added",
            Some(old) if old.spec_changed(&job) => "Edited",
            Some(_) => "None",
        };
        let mut plan = Plan {
            job_id: job.id.clone(),
            namespace: job.namespace.clone(),
            ..Plan::default()
        };
        for tg in &job.task_groups {
            let updates = DesiredUpdates {
                place: u64::from(tg.count),
                ..DesiredUpdates::default()
            };
            plan.annotations.insert(tg.name.clone(), updates);
        }
        Ok(PlanReply {
            job_modify_index: existing.map_or(0, |j| j.job_modify_index),
            plan,
            outcome: SchedOutcome::default(),
            diff_type: diff_type.into(),
            index: view.index,
        })
    }

    async fn client_request(&self, _req: ClientRequest) -> ClientResponse {
        ClientResponse::Error {
            code: "unsupported".into(),
            message: "fake cluster".into(),
        }
    }

    fn max_query_time(&self) -> Duration {
        self.inner.max_query_time
    }
}

/// An HTTP server on a loopback port, on its own glommio executor thread.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<glommio::ExecutorJoinHandle<()>>,
}

impl TestServer {
    /// Starts `serve_http` over the fake cluster `make_cluster` builds (on the server thread,
    /// since the cluster is `!Send`).
    pub fn start(
        make_cluster: impl FnOnce() -> FakeCluster + Send + 'static,
        limits: HttpLimits,
    ) -> TestServer {
        let stop = Arc::new(AtomicBool::new(false));
        let (addr_tx, addr_rx) = mpsc::channel();
        let thread_stop = stop.clone();
        let thread = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(512 << 10)
            .name("http-test")
            .spawn(move || async move {
                let cluster = make_cluster();
                let listener = super::bind("127.0.0.1:0".parse().expect("loopback address"))
                    .expect("bind loopback");
                addr_tx
                    .send(listener.local_addr().expect("local addr"))
                    .expect("send addr");
                let stopped = async move {
                    while !thread_stop.load(Ordering::Relaxed) {
                        glommio::timer::sleep(Duration::from_millis(10)).await;
                    }
                };
                serve_http(listener, cluster, limits, stopped)
                    .await
                    .expect("serve");
            })
            .expect("spawn executor");
        let addr = addr_rx.recv().expect("server address");
        TestServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Returns `http://<addr>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Detached connection tasks may keep the executor alive for up to the idle timeout,
        // so the thread is not joined; it ends with the test process at the latest.
        drop(self.thread.take());
    }
}

/// Returns a small service job `id` in the default namespace with one group "web" of `count`.
pub fn sample_job(id: &str, count: u32) -> Job {
    use sched::structs::{JobStatus, JobType, Task, TaskGroup};
    let task = Task {
        name: "server".into(),
        driver: "docker".into(),
        user: String::new(),
        config_json: r#"{"image":"nginx"}"#.into(),
        env: Default::default(),
        meta: Default::default(),
        constraints: Vec::new(),
        affinities: Vec::new(),
        resources: Resources {
            cpu_mhz: 100,
            memory_mb: 300,
            memory_max_mb: 0,
            disk_mb: 0,
        },
        networks: Vec::new(),
        restart: None,
        kill_timeout_ns: 5_000_000_000,
        kill_signal: String::new(),
        leader: false,
        shutdown_delay_ns: 0,
        extra_json: "{}".into(),
    };
    let group = TaskGroup {
        name: "web".into(),
        count,
        constraints: Vec::new(),
        affinities: Vec::new(),
        spreads: Vec::new(),
        tasks: vec![task],
        networks: Vec::new(),
        meta: Default::default(),
        update: None,
        restart: None,
        reschedule: None,
        migrate: None,
        ephemeral_disk_mb: 300,
        ephemeral_disk_sticky: false,
        ephemeral_disk_migrate: false,
        shutdown_delay_ns: None,
        extra_json: "{}".into(),
    };
    Job {
        id: id.into(),
        name: id.into(),
        namespace: "default".into(),
        region: "global".into(),
        parent_id: String::new(),
        job_type: JobType::Service,
        priority: 50,
        all_at_once: false,
        datacenters: vec!["dc1".into()],
        node_pool: "default".into(),
        constraints: Vec::new(),
        affinities: Vec::new(),
        spreads: Vec::new(),
        task_groups: vec![group],
        update: None,
        meta: Default::default(),
        stop: false,
        status: JobStatus::Running,
        status_description: String::new(),
        stable: false,
        version: 0,
        submit_time_ns: 1_700_000_000_000_000_000,
        create_index: 5,
        modify_index: 5,
        job_modify_index: 5,
        periodic: None,
        parameterized: None,
        dispatched: false,
        payload: Vec::new(),
        extra_json: "{}".into(),
    }
}

/// Returns a ready node `id` named `name` in dc1 with 4000 MHz and 8 GiB.
pub fn sample_node(id: &str, name: &str) -> Node {
    use sched::structs::NodeStatus;
    let mut attributes = std::collections::BTreeMap::new();
    attributes.insert("os.name".to_string(), "ubuntu".to_string());
    attributes.insert("nomad.version".to_string(), "1.9.0".to_string());
    Node {
        id: id.into(),
        secret_id: "secret".into(),
        name: name.into(),
        datacenter: "dc1".into(),
        node_class: String::new(),
        node_pool: "default".into(),
        http_addr: "10.0.0.5:4646".into(),
        attributes,
        meta: Default::default(),
        resources: Resources {
            cpu_mhz: 4000,
            memory_mb: 8192,
            memory_max_mb: 0,
            disk_mb: 50_000,
        },
        reserved: Resources::default(),
        status: NodeStatus::Ready,
        status_description: String::new(),
        eligible: true,
        drain: None,
        drivers: vec!["docker".into()],
        events: Vec::new(),
        status_updated_at_unix_s: 1_700_000_000,
        create_index: 3,
        modify_index: 3,
    }
}

/// Returns a running allocation `id` of `job`'s first group on `node_id`, from `eval_id`.
pub fn sample_alloc(id: &str, job: &Job, node_id: &str, eval_id: &str) -> Allocation {
    use sched::structs::{ClientStatus, DesiredStatus};
    let tg = &job.task_groups[0];
    Allocation {
        id: id.into(),
        namespace: job.namespace.clone().into(),
        eval_id: eval_id.into(),
        name: format!("{}.{}[0]", job.id, tg.name).into(),
        node_id: node_id.into(),
        node_name: "node-1".into(),
        job_id: job.id.clone().into(),
        job_version: job.version,
        task_group: tg.name.clone().into(),
        resources: tg.total_resources(),
        ports: vec![("http".into(), 23456)].into(),
        desired_status: DesiredStatus::Run,
        desired_description: Default::default(),
        client_status: ClientStatus::Running,
        client_description: Default::default(),
        task_states: Default::default(),
        previous_allocation: Default::default(),
        next_allocation: Default::default(),
        followup_eval_id: Default::default(),
        desired_transition: Default::default(),
        reschedule_events: Default::default(),
        preempted_allocations: Default::default(),
        preempted_by_allocation: Default::default(),
        metrics: Default::default(),
        create_index: 7,
        modify_index: 7,
        alloc_modify_index: 7,
        create_time_ns: 1_700_000_000_000_000_000,
        modify_time_ns: 1_700_000_000_000_000_000,
    }
}

/// Returns a complete evaluation `id` of `job`.
pub fn sample_eval(id: &str, job: &Job) -> Evaluation {
    let mut eval = fake_eval(job, id.into(), 6, "job-register", job.priority);
    eval.status = EvalStatus::Complete;
    eval
}

/// Returns a state with one node, one job, one evaluation and one allocation, at index 10.
pub fn sample_state() -> FakeState {
    let job = sample_job("web", 1);
    let node = sample_node("f0c1a7d2-1111-4000-8000-000000000001", "node-1");
    let eval = sample_eval("e0000000-2222-4000-8000-000000000001", &job);
    let alloc = sample_alloc(
        "a0000000-3333-4000-8000-000000000001",
        &job,
        &node.id,
        &eval.id,
    );
    FakeState {
        index: 10,
        jobs: vec![job],
        nodes: vec![node],
        allocs: vec![alloc],
        evals: vec![eval],
        config: SchedulerConfig::default(),
    }
}
