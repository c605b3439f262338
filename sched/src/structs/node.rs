//! Client nodes as the servers see them.

use std::collections::BTreeMap;

use rkyv::{Archive, Deserialize, Serialize};

use super::Resources;

/// A node's status, Nomad's `Status` field.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeStatus {
    Initializing,
    Ready,
    Down,
    Disconnected,
}

impl NodeStatus {
    /// Returns Nomad's wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            NodeStatus::Initializing => "initializing",
            NodeStatus::Ready => "ready",
            NodeStatus::Down => "down",
            NodeStatus::Disconnected => "disconnected",
        }
    }

    /// Parses Nomad's wire name.
    pub fn parse(s: &str) -> Option<NodeStatus> {
        match s {
            "initializing" => Some(NodeStatus::Initializing),
            "ready" => Some(NodeStatus::Ready),
            "down" => Some(NodeStatus::Down),
            "disconnected" => Some(NodeStatus::Disconnected),
            _ => None,
        }
    }
}

/// A drain in progress on a node.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DrainStrategy {
    pub deadline_ns: i64,
    pub ignore_system_jobs: bool,
    pub force_deadline_unix_ns: i64,
    pub started_at_unix_ns: i64,
}

/// One event in a node's history (registration, status change, drain, ...).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct NodeEvent {
    pub message: String,
    pub subsystem: String,
    pub timestamp_unix_ns: i64,
    pub create_index: u64,
}

/// A client node.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    /// Secret the node proves itself with on the client protocol; never shown over HTTP.
    pub secret_id: String,
    pub name: String,
    pub datacenter: String,
    pub node_class: String,
    pub node_pool: String,
    pub http_addr: String,
    pub attributes: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    /// Total capacity the node offers.
    pub resources: Resources,
    /// Capacity the node keeps for itself; schedulable = resources - reserved.
    pub reserved: Resources,
    pub status: NodeStatus,
    pub status_description: String,
    pub eligible: bool,
    pub drain: Option<DrainStrategy>,
    pub drivers: Vec<String>,
    pub events: Vec<NodeEvent>,
    pub status_updated_at_unix_s: i64,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Node {
    /// Returns the capacity the scheduler may hand out on this node.
    pub fn schedulable(&self) -> Resources {
        self.resources.sub(&self.reserved)
    }

    /// Reports whether new allocations may be placed on this node.
    pub fn ready_for_placement(&self) -> bool {
        self.status == NodeStatus::Ready && self.eligible && self.drain.is_none()
    }

    /// Reports whether the node is in a terminal state for the allocations it holds.
    pub fn is_down(&self) -> bool {
        matches!(self.status, NodeStatus::Down | NodeStatus::Disconnected)
    }
}
