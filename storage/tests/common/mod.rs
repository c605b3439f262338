//! Sample state for the storage tests: small but complete jobs, nodes, allocations, evaluations.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use sched::structs::{
    AllocMetric, Allocation, ClientStatus, DesiredStatus, EvalStatus, Evaluation, Job, JobStatus,
    JobType, Node, NodeStatus, Resources, Task, TaskGroup,
};
use storage::{LogRecord, StateImage};

pub fn record(index: u64, term: u64) -> LogRecord {
    LogRecord {
        index,
        term,
        bytes: format!("entry {index} of term {term}").into_bytes(),
    }
}

pub fn records(from: u64, to_inclusive: u64, term: u64) -> Vec<LogRecord> {
    (from..=to_inclusive).map(|i| record(i, term)).collect()
}

fn resources(cpu_mhz: u64, memory_mb: u64) -> Resources {
    Resources {
        cpu_mhz,
        memory_mb,
        memory_max_mb: 0,
        disk_mb: 100,
    }
}

pub fn job(id: &str, version: u64) -> Job {
    let task = Task {
        name: "web".to_string(),
        driver: "docker".to_string(),
        user: String::new(),
        config_json: r#"{"image":"nginx"}"#.to_string(),
        env: BTreeMap::from([("PORT".to_string(), "8080".to_string())]),
        meta: BTreeMap::new(),
        constraints: Vec::new(),
        affinities: Vec::new(),
        resources: resources(500, 256),
        networks: Vec::new(),
        restart: None,
        kill_timeout_ns: 5_000_000_000,
        kill_signal: "SIGINT".to_string(),
        leader: false,
        shutdown_delay_ns: 0,
        extra_json: "{}".to_string(),
    };
    let group = TaskGroup {
        name: "web".to_string(),
        count: 3,
        constraints: Vec::new(),
        affinities: Vec::new(),
        spreads: Vec::new(),
        tasks: vec![task],
        networks: Vec::new(),
        meta: BTreeMap::new(),
        update: None,
        restart: None,
        reschedule: None,
        migrate: None,
        ephemeral_disk_mb: 300,
        ephemeral_disk_sticky: false,
        ephemeral_disk_migrate: false,
        shutdown_delay_ns: None,
        extra_json: "{}".to_string(),
    };
    Job {
        id: id.to_string(),
        name: id.to_string(),
        namespace: "default".to_string(),
        region: "global".to_string(),
        parent_id: String::new(),
        job_type: JobType::Service,
        priority: 50,
        all_at_once: false,
        datacenters: vec!["dc1".to_string()],
        node_pool: "default".to_string(),
        constraints: Vec::new(),
        affinities: Vec::new(),
        spreads: Vec::new(),
        task_groups: vec![group],
        update: None,
        meta: BTreeMap::new(),
        stop: false,
        status: JobStatus::Running,
        status_description: String::new(),
        stable: true,
        version,
        submit_time_ns: 1_700_000_000_000_000_000,
        create_index: 10,
        modify_index: 10 + version,
        job_modify_index: 10 + version,
        periodic: None,
        parameterized: None,
        dispatched: false,
        payload: Vec::new(),
        extra_json: "{}".to_string(),
    }
}

pub fn node(i: usize) -> Node {
    Node {
        id: format!("node-{i:06}"),
        secret_id: format!("secret-{i:06}"),
        name: format!("client-{i}"),
        datacenter: "dc1".to_string(),
        node_class: String::new(),
        node_pool: "default".to_string(),
        http_addr: format!("10.0.{}.{}:4646", i / 250, i % 250),
        attributes: BTreeMap::from([("kernel.name".to_string(), "linux".to_string())]),
        meta: BTreeMap::new(),
        resources: resources(8000, 16384),
        reserved: resources(100, 256),
        status: NodeStatus::Ready,
        status_description: String::new(),
        eligible: true,
        drain: None,
        drivers: vec!["docker".to_string(), "exec".to_string()],
        events: Vec::new(),
        status_updated_at_unix_s: 1_700_000_000,
        create_index: 5,
        modify_index: 5,
    }
}

pub fn alloc(i: usize, nodes: usize) -> Allocation {
    Allocation {
        id: format!("alloc-{i:08}").into(),
        namespace: "default".to_string().into(),
        eval_id: "eval-1".to_string().into(),
        name: format!("web.web[{i}]").into(),
        node_id: format!("node-{:06}", i % nodes.max(1)).into(),
        node_name: format!("client-{}", i % nodes.max(1)).into(),
        job_id: "web".to_string().into(),
        job_version: 1,
        task_group: "web".to_string().into(),
        resources: resources(500, 256),
        ports: vec![("http".to_string(), 20000 + (i % 10000) as u16)].into(),
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
        metrics: AllocMetric {
            nodes_evaluated: 3,
            ..AllocMetric::default()
        },
        create_index: 20,
        modify_index: 20,
        alloc_modify_index: 20,
        create_time_ns: 1_700_000_000_000_000_000,
        modify_time_ns: 1_700_000_000_000_000_000,
    }
}

pub fn eval(i: usize) -> Evaluation {
    Evaluation {
        id: format!("eval-{i}"),
        namespace: "default".to_string(),
        priority: 50,
        job_type: JobType::Service,
        triggered_by: "job-register".to_string(),
        job_id: "web".to_string(),
        job_modify_index: 11,
        node_id: String::new(),
        node_modify_index: 0,
        status: EvalStatus::Complete,
        status_description: String::new(),
        wait_until_unix_ns: 0,
        next_eval: String::new(),
        previous_eval: String::new(),
        blocked_eval: String::new(),
        failed_tg_allocs: BTreeMap::new(),
        class_eligibility: BTreeMap::new(),
        escaped_computed_class: false,
        queued_allocations: BTreeMap::from([("web".to_string(), 0)]),
        snapshot_index: 11,
        create_index: 11,
        modify_index: 12,
        create_time_ns: 1_700_000_000_000_000_000,
        modify_time_ns: 1_700_000_000_000_000_000,
    }
}

/// Returns a state image with `nodes` nodes, `allocs` allocations and a few jobs and evals.
pub fn image(last_applied_index: u64, nodes: usize, allocs: usize) -> StateImage {
    StateImage {
        last_applied_index,
        jobs: vec![Arc::new(job("web", 1)), Arc::new(job("api", 0))],
        job_versions: vec![Arc::new(job("web", 0))],
        nodes: (0..nodes).map(|i| Arc::new(node(i))).collect(),
        allocs: (0..allocs).map(|i| Arc::new(alloc(i, nodes))).collect(),
        evals: (0..3).map(|i| Arc::new(eval(i))).collect(),
        scheduler_config_index: 4,
        extra: vec![("acl".to_string(), vec![1, 2, 3])],
        ..StateImage::default()
    }
}
