//! Raft commands: every change to the replicated state is one of these, rkyv-encoded.
//!
//! Tags are append-only: add new variants at the end, never reorder or remove, because old
//! log entries and snapshots must still decode after an upgrade.

use rkyv::{Archive, Deserialize, Serialize};
use sched::structs::{
    Allocation, DesiredTransition, DrainStrategy, Evaluation, Job, Node, NodeStatus,
};
use sched::SchedulerConfig;

use crate::client_proto::AllocUpdate;

/// A node status change decided by the leader (heartbeat missed, node back).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct NodeStatusUpdate {
    pub node_id: String,
    pub status: NodeStatus,
    pub description: String,
}

/// The accepted part of one scheduler plan.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct PlanApply {
    pub eval_id: String,
    /// Allocations whose desired or client status changes (stops, lost).
    pub updates: Vec<Allocation>,
    /// Allocations to create or update in place.
    pub placements: Vec<Allocation>,
}

/// One replicated state change.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Command {
    /// Registers a job version and its evaluation; `enforce_index` is checked at apply time.
    RegisterJob {
        job: Job,
        eval: Option<Evaluation>,
        enforce_index: Option<u64>,
    },
    /// Stops (or purges) a job and creates its deregistration evaluation.
    DeregisterJob {
        namespace: String,
        job_id: String,
        purge: bool,
        eval: Evaluation,
    },
    /// Creates or updates evaluations.
    UpsertEvals { evals: Vec<Evaluation> },
    /// Registers or re-registers a node, with the evaluations its arrival triggers.
    UpsertNode { node: Node, evals: Vec<Evaluation> },
    /// Batched node status changes, with the evaluations they trigger.
    UpdateNodeStatus {
        updates: Vec<NodeStatusUpdate>,
        evals: Vec<Evaluation>,
    },
    /// A batch of verified plans, committed together; evaluation updates ride along.
    ApplyPlans {
        plans: Vec<PlanApply>,
        evals: Vec<Evaluation>,
    },
    /// Batched client reports of allocation status, with follow-up evaluations.
    UpdateAllocsFromClient {
        updates: Vec<AllocUpdate>,
        evals: Vec<Evaluation>,
    },
    /// Replaces the scheduler configuration; with `cas`, only if the stored configuration was
    /// last changed at that index.
    SetSchedulerConfig {
        config: SchedulerConfig,
        cas: Option<u64>,
    },
    /// Sets whether a node takes new allocations.
    UpdateNodeEligibility { node_id: String, eligible: bool },
    /// Starts (`Some`) or cancels (`None`) a node drain, with the evaluations that move the
    /// node's allocations away.
    UpdateNodeDrain {
        node_id: String,
        drain: Option<DrainStrategy>,
        mark_eligible: bool,
        evals: Vec<Evaluation>,
    },
    /// Replaces the autopilot configuration; with `cas`, only if it was last changed at that
    /// index.
    SetAutopilotConfig {
        config: AutopilotRecord,
        cas: Option<u64>,
    },
    /// Sets the desired transition of allocations (the drainer marks them for migration),
    /// with the evaluations that act on the marks.
    UpdateAllocDesiredTransition {
        transitions: Vec<(String, DesiredTransition)>,
        evals: Vec<Evaluation>,
    },
    /// Records that a periodic job launched a child for `launch_unix_ns` (Nomad's
    /// `periodic_launch`). Proposed in the same entry as the child's registration, so a new
    /// leader never launches the same time again. An older time than the stored one is ignored.
    UpsertPeriodicLaunch {
        namespace: String,
        job_id: String,
        launch_unix_ns: i64,
    },
    /// Commits its payload and changes no state: the raw replicated write behind
    /// `PUT /v1/operator/raft/write-test` (agents with `enable_debug`), which measures the
    /// commit rate of the log itself.
    WriteTest { payload: Vec<u8> },
}

/// The last launch of a periodic job, as replicated and kept in snapshots.
#[derive(
    Archive,
    Serialize,
    Deserialize,
    Clone,
    Debug,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct PeriodicLaunch {
    pub namespace: String,
    pub job_id: String,
    pub launch_unix_ns: i64,
    pub create_index: u64,
    pub modify_index: u64,
}

/// The autopilot configuration as replicated (durations in milliseconds).
#[derive(
    Archive,
    Serialize,
    Deserialize,
    Clone,
    Debug,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct AutopilotRecord {
    pub cleanup_dead_servers: bool,
    pub last_contact_threshold_ms: u64,
    pub max_trailing_logs: u64,
    pub min_quorum: u32,
    pub server_stabilization_time_ms: u64,
    pub enable_redundancy_zones: bool,
    pub disable_upgrade_migration: bool,
    pub enable_custom_upgrades: bool,
}

impl From<&crate::config::AutopilotConfig> for AutopilotRecord {
    fn from(c: &crate::config::AutopilotConfig) -> Self {
        AutopilotRecord {
            cleanup_dead_servers: c.cleanup_dead_servers,
            last_contact_threshold_ms: c.last_contact_threshold.as_millis() as u64,
            max_trailing_logs: c.max_trailing_logs,
            min_quorum: c.min_quorum,
            server_stabilization_time_ms: c.server_stabilization_time.as_millis() as u64,
            enable_redundancy_zones: c.enable_redundancy_zones,
            disable_upgrade_migration: c.disable_upgrade_migration,
            enable_custom_upgrades: c.enable_custom_upgrades,
        }
    }
}

impl From<&AutopilotRecord> for crate::config::AutopilotConfig {
    fn from(r: &AutopilotRecord) -> Self {
        crate::config::AutopilotConfig {
            cleanup_dead_servers: r.cleanup_dead_servers,
            last_contact_threshold: std::time::Duration::from_millis(r.last_contact_threshold_ms),
            max_trailing_logs: r.max_trailing_logs,
            min_quorum: r.min_quorum,
            server_stabilization_time: std::time::Duration::from_millis(
                r.server_stabilization_time_ms,
            ),
            enable_redundancy_zones: r.enable_redundancy_zones,
            disable_upgrade_migration: r.disable_upgrade_migration,
            enable_custom_upgrades: r.enable_custom_upgrades,
        }
    }
}

/// The wall-clock time the leader stamped on an entry, so every server applies it the same.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CommandEnvelope {
    pub now_unix_ns: i64,
    pub commands: Vec<Command>,
}

/// Version of the command layout in Raft entries (`Command` and the `sched` types it carries).
/// Bump it with `storage::STATE_IMAGE_FORMAT_VERSION` whenever those types change: an entry of
/// another version is refused by name instead of failing to validate as garbage.
pub const COMMAND_FORMAT_VERSION: u32 = 7;

impl CommandEnvelope {
    /// Encodes the envelope for the Raft log: the format version (u32, little endian), then
    /// the rkyv archive.
    pub fn encode(&self) -> Vec<u8> {
        let archive =
            rkyv::to_bytes::<rkyv::rancor::Error>(self).expect("encoding a command cannot fail");
        let mut out = Vec::with_capacity(4 + archive.len());
        out.extend_from_slice(&COMMAND_FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&archive);
        out
    }

    /// Decodes and validates an envelope read from the log or the network.
    pub fn decode(bytes: &[u8]) -> Result<CommandEnvelope, String> {
        let Some((version, archive)) = bytes.split_first_chunk::<4>() else {
            return Err(format!(
                "command payload is {} bytes, shorter than its format version",
                bytes.len()
            ));
        };
        let version = u32::from_le_bytes(*version);
        if version != COMMAND_FORMAT_VERSION {
            return Err(format!(
                "command format version {version} is not {COMMAND_FORMAT_VERSION}: the entry was written by another drover version"
            ));
        }
        let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(archive.len());
        aligned.extend_from_slice(archive);
        rkyv::from_bytes::<CommandEnvelope, rkyv::rancor::Error>(&aligned)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod envelope_test {
    use super::{Command, CommandEnvelope, COMMAND_FORMAT_VERSION};

    fn envelope() -> CommandEnvelope {
        CommandEnvelope {
            now_unix_ns: 42,
            commands: vec![Command::WriteTest {
                payload: b"abc".to_vec(),
            }],
        }
    }

    #[test]
    fn round_trips_and_leads_with_its_version() {
        let bytes = envelope().encode();
        assert_eq!(bytes[..4], COMMAND_FORMAT_VERSION.to_le_bytes());
        let back = CommandEnvelope::decode(&bytes).unwrap();
        assert_eq!(back.now_unix_ns, 42);
        assert!(
            matches!(&back.commands[..], [Command::WriteTest { payload }] if payload == b"abc")
        );
    }

    #[test]
    fn another_version_or_a_short_payload_is_refused_by_name() {
        let mut bytes = envelope().encode();
        bytes[..4].copy_from_slice(&(COMMAND_FORMAT_VERSION + 1).to_le_bytes());
        let err = CommandEnvelope::decode(&bytes).unwrap_err();
        assert!(err.contains("command format version"), "{err}");
        let err = CommandEnvelope::decode(&[1, 0]).unwrap_err();
        assert!(err.contains("shorter than its format version"), "{err}");
        let mut garbage = COMMAND_FORMAT_VERSION.to_le_bytes().to_vec();
        garbage.extend_from_slice(&[0xff; 7]);
        assert!(CommandEnvelope::decode(&garbage).is_err());
    }
}
