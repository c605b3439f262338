//! An in-memory `StateView` and builders for jobs, nodes and allocations, for tests and
//! benchmarks of this crate and its users (enable the `testing` feature).

use std::collections::{BTreeMap, HashMap};

use crate::structs::{
    Allocation, ClientStatus, DesiredStatus, EvalStatus, Evaluation, IdString, Job, JobStatus,
    JobType, Node, NodeStatus, Plan, Resources, Task, TaskGroup,
};
use crate::view::StateView;

/// Cluster state held in plain vectors with id indexes.
#[derive(Default, Clone)]
pub struct MemView {
    pub index: u64,
    jobs: Vec<Job>,
    old_jobs: Vec<Job>,
    nodes: Vec<Node>,
    allocs: Vec<Allocation>,
    node_pos: HashMap<String, usize>,
    alloc_pos: HashMap<IdString, usize>,
}

impl MemView {
    pub fn new(nodes: Vec<Node>, jobs: Vec<Job>, allocs: Vec<Allocation>) -> MemView {
        let mut view = MemView {
            index: 1,
            ..MemView::default()
        };
        for n in nodes {
            view.upsert_node(n);
        }
        for j in jobs {
            view.upsert_job(j);
        }
        for a in allocs {
            view.upsert_alloc(a);
        }
        view
    }

    pub fn upsert_node(&mut self, node: Node) {
        match self.node_pos.get(&node.id) {
            Some(&i) => self.nodes[i] = node,
            None => {
                self.node_pos.insert(node.id.clone(), self.nodes.len());
                self.nodes.push(node);
            }
        }
    }

    /// Stores a job version; the previous version stays reachable through `job_version`.
    pub fn upsert_job(&mut self, job: Job) {
        if let Some(i) = self
            .jobs
            .iter()
            .position(|j| j.id == job.id && j.namespace == job.namespace)
        {
            let old = std::mem::replace(&mut self.jobs[i], job);
            self.old_jobs.push(old);
        } else {
            self.jobs.push(job);
        }
    }

    pub fn upsert_alloc(&mut self, alloc: Allocation) {
        match self.alloc_pos.get(&alloc.id) {
            Some(&i) => self.allocs[i] = alloc,
            None => {
                self.alloc_pos.insert(alloc.id.clone(), self.allocs.len());
                self.allocs.push(alloc);
            }
        }
    }

    pub fn node_mut(&mut self, id: &str) -> Option<&mut Node> {
        self.node_pos.get(id).map(|&i| &mut self.nodes[i])
    }

    pub fn alloc_mut(&mut self, id: &str) -> Option<&mut Allocation> {
        self.alloc_pos.get(id).map(|&i| &mut self.allocs[i])
    }

    pub fn allocs(&self) -> &[Allocation] {
        &self.allocs
    }

    /// Commits a whole plan, as an applier that accepts everything would.
    pub fn apply(&mut self, plan: &Plan) {
        self.index += 1;
        for a in plan
            .node_update
            .values()
            .flatten()
            .chain(plan.node_preemptions.values().flatten())
            .chain(plan.node_allocation.values().flatten())
        {
            self.upsert_alloc(a.clone());
        }
    }
}

impl StateView for MemView {
    fn index(&self) -> u64 {
        self.index
    }

    fn job(&self, namespace: &str, job_id: &str) -> Option<&Job> {
        self.jobs
            .iter()
            .find(|j| j.id == job_id && j.namespace == namespace)
    }

    fn job_version(&self, namespace: &str, job_id: &str, version: u64) -> Option<&Job> {
        self.jobs
            .iter()
            .chain(&self.old_jobs)
            .find(|j| j.id == job_id && j.namespace == namespace && j.version == version)
    }

    fn node(&self, node_id: &str) -> Option<&Node> {
        self.node_pos.get(node_id).map(|&i| &self.nodes[i])
    }

    fn nodes(&self) -> Vec<&Node> {
        self.nodes.iter().collect()
    }

    fn allocs_by_job(&self, namespace: &str, job_id: &str) -> Vec<&Allocation> {
        self.allocs
            .iter()
            .filter(|a| *a.job_id == *job_id && a.namespace == namespace)
            .collect()
    }

    fn allocs_by_node(&self, node_id: &str) -> Vec<&Allocation> {
        self.allocs
            .iter()
            .filter(|a| *a.node_id == *node_id)
            .collect()
    }

    fn node_usage(&self, node_id: &str) -> Resources {
        self.allocs
            .iter()
            .filter(|a| *a.node_id == *node_id && !a.is_terminal())
            .fold(Resources::default(), |sum, a| sum.add(&a.resources))
    }
}

/// A ready, eligible node in `dc1`, pool `default`, running linux with docker and exec.
pub fn node(id: &str, cpu_mhz: u64, memory_mb: u64) -> Node {
    Node {
        id: id.to_string(),
        secret_id: String::new(),
        name: format!("{id}-name"),
        datacenter: "dc1".to_string(),
        node_class: String::new(),
        node_pool: "default".to_string(),
        http_addr: String::new(),
        attributes: BTreeMap::from([("kernel.name".to_string(), "linux".to_string())]),
        meta: BTreeMap::new(),
        resources: Resources {
            cpu_mhz,
            memory_mb,
            memory_max_mb: 0,
            disk_mb: 100_000,
        },
        reserved: Resources::default(),
        status: NodeStatus::Ready,
        status_description: String::new(),
        eligible: true,
        drain: None,
        drivers: vec!["docker".to_string(), "exec".to_string()],
        events: Vec::new(),
        status_updated_at_unix_s: 0,
        create_index: 1,
        modify_index: 1,
    }
}

/// A group of `count` with one docker task asking for `cpu_mhz` and `memory_mb`.
pub fn group(name: &str, count: u32, cpu_mhz: u64, memory_mb: u64) -> TaskGroup {
    TaskGroup {
        name: name.to_string(),
        count,
        constraints: Vec::new(),
        affinities: Vec::new(),
        spreads: Vec::new(),
        tasks: vec![Task {
            name: "main".to_string(),
            driver: "docker".to_string(),
            user: String::new(),
            config_json: "{}".to_string(),
            env: BTreeMap::new(),
            meta: BTreeMap::new(),
            constraints: Vec::new(),
            affinities: Vec::new(),
            resources: Resources {
                cpu_mhz,
                memory_mb,
                memory_max_mb: 0,
                disk_mb: 0,
            },
            networks: Vec::new(),
            restart: None,
            kill_timeout_ns: 0,
            kill_signal: String::new(),
            leader: false,
            shutdown_delay_ns: 0,
            extra_json: "{}".to_string(),
        }],
        networks: Vec::new(),
        meta: BTreeMap::new(),
        update: None,
        restart: None,
        reschedule: None,
        migrate: None,
        ephemeral_disk_mb: 0,
        ephemeral_disk_sticky: false,
        ephemeral_disk_migrate: false,
        shutdown_delay_ns: None,
        extra_json: "{}".to_string(),
    }
}

/// A job in the default namespace, datacenter `dc1`, version 0.
pub fn job(id: &str, job_type: JobType, groups: Vec<TaskGroup>) -> Job {
    Job {
        id: id.to_string(),
        name: id.to_string(),
        namespace: "default".to_string(),
        region: "global".to_string(),
        parent_id: String::new(),
        job_type,
        priority: 50,
        all_at_once: false,
        datacenters: vec!["dc1".to_string()],
        node_pool: String::new(),
        constraints: Vec::new(),
        affinities: Vec::new(),
        spreads: Vec::new(),
        task_groups: groups,
        update: None,
        meta: BTreeMap::new(),
        stop: false,
        status: JobStatus::Pending,
        status_description: String::new(),
        stable: false,
        version: 0,
        submit_time_ns: 0,
        create_index: 1,
        modify_index: 1,
        job_modify_index: 1,
        periodic: None,
        parameterized: None,
        dispatched: false,
        payload: Vec::new(),
        extra_json: "{}".to_string(),
    }
}

/// A pending evaluation for a job.
pub fn eval_for(job: &Job, id: &str) -> Evaluation {
    let mut eval = Evaluation::new(
        id.to_string(),
        &job.namespace,
        &job.id,
        job.job_type,
        job.priority,
        "job-register",
        EvalStatus::Pending,
        0,
    );
    eval.job_modify_index = job.job_modify_index;
    eval.create_index = 1;
    eval.modify_index = 1;
    eval
}

/// A running allocation `<job>.web[0]` of job `job` on `node` holding the given resources.
pub fn alloc_on(id: &str, node: &Node, cpu_mhz: u64, memory_mb: u64) -> Allocation {
    Allocation {
        id: id.to_string().into(),
        namespace: "default".into(),
        eval_id: String::new().into(),
        name: "job.web[0]".into(),
        node_id: node.id.clone().into(),
        node_name: node.name.as_str().into(),
        job_id: "job".into(),
        job_version: 0,
        task_group: "web".into(),
        resources: Resources {
            cpu_mhz,
            memory_mb,
            memory_max_mb: 0,
            disk_mb: 0,
        },
        ports: Default::default(),
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
        create_index: 1,
        modify_index: 1,
        alloc_modify_index: 1,
        create_time_ns: 0,
        modify_time_ns: 0,
    }
}
