//! The read-only window onto cluster state that every scheduler run uses.

use crate::structs::{Allocation, Job, Node, Resources};

/// An immutable view of the cluster at one Raft index. The engine implements it over its
/// published snapshot; tests implement it over plain vectors. Nothing here may block.
pub trait StateView {
    /// Returns the Raft index this view reflects.
    fn index(&self) -> u64;
    /// Returns the current version of a job.
    fn job(&self, namespace: &str, job_id: &str) -> Option<&Job>;
    /// Returns an older version of a job, if the state still holds it. The scheduler compares
    /// it with the current version to tell in-place from destructive updates; without it, a
    /// change of the allocation's resources is the only evidence.
    fn job_version(&self, namespace: &str, job_id: &str, version: u64) -> Option<&Job> {
        let _ = (namespace, job_id, version);
        None
    }
    /// Returns one node.
    fn node(&self, node_id: &str) -> Option<&Node>;
    /// Returns every node, in a stable order (the scheduler shuffles with its own seed).
    fn nodes(&self) -> Vec<&Node>;
    /// Returns every allocation of a job, terminal ones included.
    fn allocs_by_job(&self, namespace: &str, job_id: &str) -> Vec<&Allocation>;
    /// Returns every allocation on a node, terminal ones included.
    fn allocs_by_node(&self, node_id: &str) -> Vec<&Allocation>;
    /// Returns the resources held on a node by its non-terminal allocations.
    fn node_usage(&self, node_id: &str) -> Resources;
}
