//! The read-only window onto cluster state that every scheduler run uses.

use std::collections::BTreeMap;

use crate::feasible::{DatacenterChecker, PoolChecker, ReadyChecker};
use crate::structs::{Allocation, Job, Node, Resources};

/// The nodes a job may be placed on before any per-group check: in its node pool, in one of
/// its datacenters, and ready.
#[derive(Debug, Default)]
pub struct Candidates<'a> {
    /// Ready nodes of the pool in the job's datacenters, in the view's stable node order.
    pub nodes: Vec<&'a Node>,
    /// Nodes in the job's pool, ready or not (`AllocMetric::nodes_in_pool`).
    pub in_pool: u64,
    /// `nodes` counted by datacenter (`MetricCount::NodesAvailable`).
    pub available_by_dc: BTreeMap<String, u64>,
}

impl<'a> Candidates<'a> {
    /// Filters `nodes` (in order) by pool, readiness and datacenter.
    pub fn filter(
        nodes: impl IntoIterator<Item = &'a Node>,
        pool: &str,
        datacenters: &[String],
    ) -> Candidates<'a> {
        let pool = PoolChecker::new(pool);
        let dcs = DatacenterChecker::new(datacenters);
        let mut out = Candidates::default();
        for node in nodes {
            if !pool.feasible(node) {
                continue;
            }
            out.in_pool += 1;
            if ReadyChecker.feasible(node) && dcs.feasible(node) {
                out.nodes.push(node);
                // Clone the name only for a datacenter not seen yet: this runs for every node.
                match out.available_by_dc.get_mut(&node.datacenter) {
                    Some(count) => *count += 1,
                    None => {
                        out.available_by_dc.insert(node.datacenter.clone(), 1);
                    }
                }
            }
        }
        out
    }
}

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
    /// Returns the candidate nodes of a job in node pool `pool` (empty: the default pool;
    /// `all`: every pool) and `datacenters` (patterns with `*`; empty: every datacenter).
    /// Views may answer from a cache; the answer must equal `Candidates::filter` over `nodes()`.
    fn candidate_nodes(&self, pool: &str, datacenters: &[String]) -> Candidates<'_> {
        Candidates::filter(self.nodes(), pool, datacenters)
    }
}
