//! Evaluations: the unit of scheduler work.

use std::collections::BTreeMap;

use rkyv::{Archive, Deserialize, Serialize};

use super::{AllocMetric, JobType};

/// Lifecycle of an evaluation.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalStatus {
    Blocked,
    Pending,
    Complete,
    Failed,
    Canceled,
}

impl EvalStatus {
    /// Returns Nomad's wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            EvalStatus::Blocked => "blocked",
            EvalStatus::Pending => "pending",
            EvalStatus::Complete => "complete",
            EvalStatus::Failed => "failed",
            EvalStatus::Canceled => "canceled",
        }
    }

    /// Reports whether the evaluation will never be processed again.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            EvalStatus::Complete | EvalStatus::Failed | EvalStatus::Canceled
        )
    }
}

/// Why an evaluation was created; Nomad's `TriggeredBy` values.
pub mod triggers {
    pub const JOB_REGISTER: &str = "job-register";
    pub const JOB_DEREGISTER: &str = "job-deregister";
    pub const NODE_UPDATE: &str = "node-update";
    pub const NODE_DRAIN: &str = "node-drain";
    pub const ALLOC_FAILURE: &str = "alloc-failure";
    pub const QUEUED_ALLOCS: &str = "queued-allocs";
    pub const MAX_PLAN_ATTEMPTS: &str = "max-plan-attempts";
    pub const FAILED_FOLLOW_UP: &str = "failed-follow-up";
    pub const ALLOC_STOP: &str = "alloc-stop";
    pub const PREEMPTION: &str = "preemption";
}

/// An evaluation of one job's desired state against the cluster.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Evaluation {
    pub id: String,
    pub namespace: String,
    pub priority: u16,
    pub job_type: JobType,
    pub triggered_by: String,
    pub job_id: String,
    pub job_modify_index: u64,
    pub node_id: String,
    pub node_modify_index: u64,
    pub status: EvalStatus,
    pub status_description: String,
    pub wait_until_unix_ns: i64,
    pub next_eval: String,
    pub previous_eval: String,
    pub blocked_eval: String,
    pub failed_tg_allocs: BTreeMap<String, AllocMetric>,
    pub class_eligibility: BTreeMap<String, bool>,
    pub escaped_computed_class: bool,
    pub queued_allocations: BTreeMap<String, u64>,
    pub snapshot_index: u64,
    pub create_index: u64,
    pub modify_index: u64,
    pub create_time_ns: i64,
    pub modify_time_ns: i64,
}

impl Evaluation {
    /// An evaluation of a job with every optional field empty; callers set what differs
    /// (`wait_until_unix_ns`, `previous_eval`, `node_id`...).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        namespace: &str,
        job_id: &str,
        job_type: JobType,
        priority: u16,
        triggered_by: &str,
        status: EvalStatus,
        now_unix_ns: i64,
    ) -> Evaluation {
        Evaluation {
            id,
            namespace: namespace.to_string(),
            priority,
            job_type,
            triggered_by: triggered_by.to_string(),
            job_id: job_id.to_string(),
            job_modify_index: 0,
            node_id: String::new(),
            node_modify_index: 0,
            status,
            status_description: String::new(),
            wait_until_unix_ns: 0,
            next_eval: String::new(),
            previous_eval: String::new(),
            blocked_eval: String::new(),
            failed_tg_allocs: BTreeMap::new(),
            class_eligibility: BTreeMap::new(),
            escaped_computed_class: false,
            queued_allocations: BTreeMap::new(),
            snapshot_index: 0,
            create_index: 0,
            modify_index: 0,
            create_time_ns: now_unix_ns,
            modify_time_ns: now_unix_ns,
        }
    }
}
