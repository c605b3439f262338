//! Jobs, task groups and tasks: the desired state a user submits.

use std::collections::BTreeMap;

use rkyv::{Archive, Deserialize, Serialize};

use super::Resources;

/// The scheduler a job is handled by.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobType {
    Service,
    Batch,
    System,
    SysBatch,
}

impl JobType {
    /// Returns Nomad's wire name for the type.
    pub fn as_str(&self) -> &'static str {
        match self {
            JobType::Service => "service",
            JobType::Batch => "batch",
            JobType::System => "system",
            JobType::SysBatch => "sysbatch",
        }
    }

    /// Parses Nomad's wire name.
    pub fn parse(s: &str) -> Option<JobType> {
        match s {
            "service" => Some(JobType::Service),
            "batch" => Some(JobType::Batch),
            "system" => Some(JobType::System),
            "sysbatch" => Some(JobType::SysBatch),
            _ => None,
        }
    }
}

/// The lifecycle status of a job, derived from its allocations and evaluations.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobStatus {
    Pending,
    Running,
    Dead,
}

impl JobStatus {
    /// Returns Nomad's wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Dead => "dead",
        }
    }
}

/// A placement rule: `LTarget Operand RTarget`, Nomad's Constraint.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Constraint {
    pub l_target: String,
    pub r_target: String,
    pub operand: String,
}

/// A soft placement preference with a weight in -100..=100.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Affinity {
    pub l_target: String,
    pub r_target: String,
    pub operand: String,
    pub weight: i8,
}

/// One target of a spread block.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SpreadTarget {
    pub value: String,
    pub percent: u8,
}

/// Spreads allocations over the values of a node attribute.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Spread {
    pub attribute: String,
    pub weight: i8,
    pub targets: Vec<SpreadTarget>,
}

/// The `update` block: how a changed job rolls out. Durations are in nanoseconds like Nomad's JSON.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct UpdateStrategy {
    pub stagger_ns: i64,
    pub max_parallel: i64,
    pub health_check: String,
    pub min_healthy_time_ns: i64,
    pub healthy_deadline_ns: i64,
    pub progress_deadline_ns: i64,
    pub auto_revert: bool,
    pub auto_promote: bool,
    pub canary: i64,
}

/// The `restart` block, applied by clients.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    pub attempts: i64,
    pub interval_ns: i64,
    pub delay_ns: i64,
    pub mode: String,
    pub render_templates: bool,
}

/// The `reschedule` block, applied by the scheduler to failed allocations.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ReschedulePolicy {
    pub attempts: i64,
    pub interval_ns: i64,
    pub delay_ns: i64,
    pub delay_function: String,
    pub max_delay_ns: i64,
    pub unlimited: bool,
}

/// The `migrate` block, applied when draining nodes.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MigrateStrategy {
    pub max_parallel: i64,
    pub health_check: String,
    pub min_healthy_time_ns: i64,
    pub healthy_deadline_ns: i64,
}

/// A port a task group asks for. `value == 0` with `is_static == false` asks for a dynamic port.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub label: String,
    pub value: u16,
    pub to: i32,
    pub host_network: String,
    pub is_static: bool,
}

/// A group-level or task-level `network` block.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct NetworkResource {
    pub mode: String,
    pub mbits: i64,
    pub ports: Vec<Port>,
}

/// A unit of work run by a driver on a client.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Task {
    pub name: String,
    pub driver: String,
    pub user: String,
    /// The driver's `config` block as JSON text; opaque to the scheduler.
    pub config_json: String,
    pub env: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    pub constraints: Vec<Constraint>,
    pub affinities: Vec<Affinity>,
    pub resources: Resources,
    pub networks: Vec<NetworkResource>,
    pub restart: Option<RestartPolicy>,
    pub kill_timeout_ns: i64,
    pub kill_signal: String,
    pub leader: bool,
    pub shutdown_delay_ns: i64,
    /// Fields of the submitted task that drover stores but does not interpret
    /// (services, templates, artifacts, ...), as a JSON object text, so they round-trip.
    pub extra_json: String,
}

/// A set of tasks placed together on one node, `count` times.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TaskGroup {
    pub name: String,
    pub count: u32,
    pub constraints: Vec<Constraint>,
    pub affinities: Vec<Affinity>,
    pub spreads: Vec<Spread>,
    pub tasks: Vec<Task>,
    pub networks: Vec<NetworkResource>,
    pub meta: BTreeMap<String, String>,
    pub update: Option<UpdateStrategy>,
    pub restart: Option<RestartPolicy>,
    pub reschedule: Option<ReschedulePolicy>,
    pub migrate: Option<MigrateStrategy>,
    pub ephemeral_disk_mb: u64,
    pub ephemeral_disk_sticky: bool,
    pub ephemeral_disk_migrate: bool,
    pub shutdown_delay_ns: Option<i64>,
    /// Unmodelled group fields (services, volumes, scaling, ...) as JSON object text.
    pub extra_json: String,
}

impl TaskGroup {
    /// Returns the resources one allocation of this group consumes on a node:
    /// the sum of its tasks plus the group's ephemeral disk.
    pub fn total_resources(&self) -> Resources {
        let mut total = Resources {
            disk_mb: self.ephemeral_disk_mb,
            ..Resources::default()
        };
        for task in &self.tasks {
            total = total.add(&Resources {
                disk_mb: 0,
                ..task.resources
            });
        }
        total
    }
}

/// The `periodic` block: the job is a template launched as a child job on a cron schedule.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PeriodicConfig {
    pub enabled: bool,
    /// Only "cron" is supported, as in Nomad.
    pub spec_type: String,
    /// Cron expressions; a launch is due when any of them matches (Nomad's `crons`; a single
    /// `cron` is one entry).
    pub crons: Vec<String>,
    /// Skips a launch while a previous child is still pending or running.
    pub prohibit_overlap: bool,
    /// IANA time zone the expressions are evaluated in ("UTC" by default).
    pub time_zone: String,
}

/// The `parameterized` block: the job is a template instantiated by dispatch requests.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ParameterizedConfig {
    /// "optional", "required" or "forbidden".
    pub payload: String,
    pub meta_required: Vec<String>,
    pub meta_optional: Vec<String>,
}

/// A job: the unit users submit. Versions are immutable once stored; a change makes a new version.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    pub name: String,
    pub namespace: String,
    pub region: String,
    pub parent_id: String,
    pub job_type: JobType,
    pub priority: u16,
    pub all_at_once: bool,
    pub datacenters: Vec<String>,
    pub node_pool: String,
    pub constraints: Vec<Constraint>,
    pub affinities: Vec<Affinity>,
    pub spreads: Vec<Spread>,
    pub task_groups: Vec<TaskGroup>,
    pub update: Option<UpdateStrategy>,
    pub meta: BTreeMap<String, String>,
    pub stop: bool,
    pub status: JobStatus,
    pub status_description: String,
    pub stable: bool,
    pub version: u64,
    pub submit_time_ns: i64,
    pub create_index: u64,
    pub modify_index: u64,
    pub job_modify_index: u64,
    /// Set on periodic templates; children launched from them have `None`.
    pub periodic: Option<PeriodicConfig>,
    /// Set on parameterized templates and kept on the children dispatched from them.
    pub parameterized: Option<ParameterizedConfig>,
    /// Whether this job was dispatched from a parameterized job.
    pub dispatched: bool,
    /// The input given at dispatch, made available to the tasks.
    pub payload: Vec<u8>,
    /// Unmodelled job fields (multiregion, ui, ...) as JSON object text.
    pub extra_json: String,
}

impl Job {
    /// Reports whether this is an enabled periodic template, which is never placed itself.
    pub fn is_periodic_parent(&self) -> bool {
        self.periodic.as_ref().is_some_and(|p| p.enabled)
    }

    /// Reports whether this is a parameterized template (not a dispatched child), which is
    /// never placed itself.
    pub fn is_parameterized_parent(&self) -> bool {
        self.parameterized.is_some() && !self.dispatched
    }

    /// Returns the task group with the given name.
    pub fn group(&self, name: &str) -> Option<&TaskGroup> {
        self.task_groups.iter().find(|tg| tg.name == name)
    }

    /// Reports whether two versions differ in anything a user specified, ignoring the fields
    /// the server maintains (indexes, status, version, submit time, stability).
    pub fn spec_changed(&self, other: &Job) -> bool {
        let strip = |j: &Job| Job {
            status: JobStatus::Pending,
            status_description: String::new(),
            stable: false,
            version: 0,
            submit_time_ns: 0,
            create_index: 0,
            modify_index: 0,
            job_modify_index: 0,
            ..j.clone()
        };
        strip(self) != strip(other)
    }
}
