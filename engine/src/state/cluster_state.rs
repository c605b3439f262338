//! The replicated cluster state: jobs, nodes, allocations and evaluations, with indexes.
//!
//! Built on persistent maps (imbl), so a clone is O(1) and shares structure: the Raft core
//! applies entries to its own copy and publishes a clone as the read view after each batch.
//! Readers never wait for the Raft core and never see a half-applied entry; the one lock is
//! around the candidate-node facts that all versions with the same node map share (held for
//! a lookup, or for one pass over the nodes when they changed).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use imbl::{OrdMap, OrdSet};
use sched::feasible::{DatacenterChecker, PoolChecker};
use sched::structs::{
    Allocation, ClientStatus, DesiredStatus, EvalStatus, Evaluation, Job, JobStatus, Node,
    Resources, SharedTexts,
};
use sched::{Candidates, SchedulerConfig, StateView};

use super::{IdKey, SortedKeys};
use crate::api::{JobSummary, ReadView, Table, TaskGroupSummary};

/// (namespace, job id).
pub type JobKey = (String, String);

/// The whole replicated state at `index`.
#[derive(Clone, Default)]
pub struct ClusterState {
    /// The last Raft log index applied.
    pub index: u64,
    /// The index of the entry being applied; table indexes take it when a table changes.
    pub applying: u64,
    /// Newest change per table: jobs, nodes, allocations, evaluations.
    pub table_indexes: [u64; 4],
    pub jobs: OrdMap<JobKey, Arc<Job>>,
    /// Stored versions per job, oldest first.
    pub job_versions: OrdMap<JobKey, imbl::Vector<Arc<Job>>>,
    /// Nodes, and below every map keyed by node, are keyed by `IdKey` as allocations are.
    pub nodes: OrdMap<IdKey, Arc<Node>>,
    /// What the scheduler filters candidate nodes by, built from `nodes` on first use and
    /// shared by every version of the state until `nodes` changes.
    node_facts: Arc<Mutex<Option<Arc<NodeFacts>>>>,
    /// Allocations by id. Allocation and evaluation ids are keyed by `IdKey`: a UUID is two
    /// integers inline, so a lookup compares integers instead of chasing a string per node.
    pub allocs: OrdMap<IdKey, Arc<Allocation>>,
    /// Allocation keys per node and per job; the records are read from `allocs`. The sets
    /// hold keys only, so the copy of a shared leaf that a write makes after each published
    /// version is a copy of plain keys, not of reference counts in a million records, and a
    /// client report, which changes no key, leaves both indexes untouched. A node's
    /// allocations are ordered by the index at which the servers last changed them
    /// (`NodeAllocKey`), so a client's blocking `GetAllocs` reads only the ones changed
    /// since its index instead of all of them.
    pub allocs_by_node: OrdMap<IdKey, NodeAllocs>,
    /// There is no index by evaluation: an evaluation belongs to one job, so its
    /// allocations are found among the job's (`ReadView::allocs_by_eval`), and a million
    /// allocations do not pay ~70 bytes each for an index that only one API call reads.
    pub allocs_by_job: OrdMap<JobKey, SortedKeys<IdKey>>,
    /// Resources held on each node by its non-terminal allocations.
    pub node_usage: OrdMap<IdKey, Resources>,
    /// The newest index at which the servers changed any allocation of each node; a node's
    /// blocking `GetAllocs` compares against it instead of scanning the node's allocations.
    pub node_alloc_index: OrdMap<IdKey, u64>,
    pub evals: OrdMap<IdKey, Arc<Evaluation>>,
    pub evals_by_job: OrdMap<JobKey, OrdSet<IdKey>>,
    pub scheduler_config: SchedulerConfig,
    pub scheduler_config_index: u64,
    /// The autopilot configuration once an operator set it, with its (create, modify) indexes;
    /// `None` means the agent's `autopilot {}` block applies.
    pub autopilot: Option<(super::command::AutopilotRecord, u64, u64)>,
    /// The last launch of each periodic job, kept after the job changes so a new version
    /// does not repeat a launch; removed when the job is purged.
    pub periodic_launches: OrdMap<JobKey, super::command::PeriodicLaunch>,
    /// How many versions of a job to keep (`job_tracked_versions`).
    pub job_tracked_versions: usize,
    /// The evaluation id of the allocation stored last: the allocations of one plan, stored
    /// one after the other, share it (`share_ids`). Not state: only which copy is kept.
    last_eval_id: Option<Arc<str>>,
    /// The job id of the allocation stored last, shared as `last_eval_id` is.
    last_job_id: Option<Arc<str>>,
}

/// One node's entry in `allocs_by_node`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAllocs {
    /// The node's id: the one copy that every allocation record on the node holds.
    pub node_id: Arc<str>,
    /// The node's name as its first allocation recorded it: the copy that every record on
    /// the node with the same name holds (a node that re-registers under a new name leaves
    /// its older records their own copy).
    pub node_name: Arc<str>,
    /// The node's allocations, by `NodeAllocKey`.
    pub keys: SortedKeys<NodeAllocKey>,
}

impl NodeAllocs {
    fn new(alloc: &Allocation) -> NodeAllocs {
        NodeAllocs {
            node_id: alloc.node_id.clone(),
            node_name: alloc.node_name.clone(),
            keys: SortedKeys::default(),
        }
    }
}

/// Points `field` at `last` when both hold the same text, and otherwise makes `field` the
/// new `last`: records stored one after another (the allocations of one plan) then hold
/// one copy of a text they repeat.
fn share_with_last(last: &mut Option<Arc<str>>, field: &mut Arc<str>) {
    match last {
        Some(copy) if **copy == **field => {
            if !Arc::ptr_eq(copy, field) {
                *field = copy.clone();
            }
        }
        _ => *last = Some(field.clone()),
    }
}

/// A node's allocation as `allocs_by_node` orders it: the index at which the servers last
/// changed it (`changed_at`), then its id.
pub type NodeAllocKey = (u64, IdKey);

/// The newest index at which the servers changed an allocation: its creation, or a later
/// server-side change (stop, migrate). Client reports do not move it.
pub fn changed_at(alloc: &Allocation) -> u64 {
    alloc.alloc_modify_index.max(alloc.create_index)
}

/// The first key of a node's allocations changed after `index`.
pub fn changed_after(index: u64) -> NodeAllocKey {
    (index.saturating_add(1), IdKey::Uuid(0, 0))
}

fn key(namespace: &str, job_id: &str) -> JobKey {
    (namespace.to_string(), job_id.to_string())
}

/// The facts a candidate walk filters nodes by, one entry per node in the order of the node
/// map they were built from, with pools and datacenters numbered: a walk over five thousand
/// nodes reads this array instead of each node's record and strings.
struct NodeFacts {
    /// The node map these facts describe; they are valid for a map that `ptr_eq`s it.
    nodes: OrdMap<IdKey, Arc<Node>>,
    pools: Vec<String>,
    datacenters: Vec<String>,
    entries: Vec<NodeFact>,
}

#[derive(Clone, Copy)]
struct NodeFact {
    pool: u32,
    datacenter: u32,
    ready: bool,
}

impl NodeFacts {
    fn build(nodes: &OrdMap<IdKey, Arc<Node>>) -> NodeFacts {
        fn number(names: &mut Vec<String>, name: &str) -> u32 {
            let at = names.iter().position(|n| n == name).unwrap_or_else(|| {
                names.push(name.to_string());
                names.len() - 1
            });
            u32::try_from(at).expect("fewer than 2^32 distinct names")
        }
        let mut facts = NodeFacts {
            nodes: nodes.clone(),
            pools: Vec::new(),
            datacenters: Vec::new(),
            entries: Vec::with_capacity(nodes.len()),
        };
        for node in nodes.values() {
            let entry = NodeFact {
                pool: number(&mut facts.pools, &node.node_pool),
                datacenter: number(&mut facts.datacenters, &node.datacenter),
                ready: node.ready_for_placement(),
            };
            facts.entries.push(entry);
        }
        facts
    }
}

/// Moves a walk over a per-job index up to `job_key` and returns that job's entry, if any.
fn advance_to<'a, I, V: 'a>(walk: &mut std::iter::Peekable<I>, job_key: &JobKey) -> Option<&'a V>
where
    I: Iterator<Item = (&'a JobKey, &'a V)>,
{
    while walk.next_if(|(k, _)| *k < job_key).is_some() {}
    walk.next_if(|(k, _)| *k == job_key).map(|(_, set)| set)
}

/// One node's allocation index, built by `load_allocs`: its key, the resources its live
/// allocations use, its newest server-side allocation change, and its allocations' keys.
type NodeIndex = (IdKey, Resources, u64, NodeAllocs);

/// An allocation as `load_allocs` holds it: its key and the record.
type Keyed = (IdKey, Arc<Allocation>);

/// Builds every node's allocation index from allocations sorted by id.
fn node_indexes(entries: &[(IdKey, Arc<Allocation>)]) -> Vec<NodeIndex> {
    use std::collections::HashMap;
    let mut by_node: HashMap<&Arc<str>, Vec<&Keyed>> = HashMap::new();
    for entry in entries {
        by_node.entry(&entry.1.node_id).or_default().push(entry);
    }
    by_node
        .into_iter()
        .map(|(node_id, group)| {
            let mut usage = Resources::default();
            let mut changed_at = 0;
            let mut keys = Vec::with_capacity(group.len());
            let first_name = &group[0].1.node_name;
            for (id, a) in group.iter().map(|e| (&e.0, &e.1)) {
                if !a.is_terminal() {
                    usage = usage.add(&a.resources);
                }
                let at = self::changed_at(a);
                changed_at = changed_at.max(at);
                keys.push((at, id.clone()));
            }
            let set = NodeAllocs {
                node_id: node_id.clone(),
                node_name: first_name.clone(),
                keys: keys.into_iter().collect(),
            };
            (IdKey::new(node_id), usage, changed_at, set)
        })
        .collect()
}

/// Builds every job's allocation index from allocations sorted by id.
fn job_index(entries: &[(IdKey, Arc<Allocation>)]) -> Vec<(JobKey, SortedKeys<IdKey>)> {
    use std::collections::HashMap;
    let mut by_job: HashMap<(&str, &str), Vec<&Keyed>> = HashMap::new();
    for entry in entries {
        let a = &entry.1;
        by_job
            .entry((a.namespace.as_str(), a.job_id.as_ref()))
            .or_default()
            .push(entry);
    }
    by_job
        .into_iter()
        .map(|((namespace, job_id), group)| {
            let set = group.into_iter().map(|e| e.0.clone()).collect();
            (key(namespace, job_id), set)
        })
        .collect()
}

impl ClusterState {
    /// Returns an empty state that keeps `job_tracked_versions` versions per job.
    pub fn new(job_tracked_versions: usize) -> ClusterState {
        ClusterState {
            job_tracked_versions: job_tracked_versions.max(1),
            ..Default::default()
        }
    }

    /// Returns an allocation by id.
    pub fn alloc_by_id(&self, alloc_id: &str) -> Option<&Arc<Allocation>> {
        self.allocs.get(&IdKey::new(alloc_id))
    }

    /// Returns a node by id.
    pub fn node_by_id(&self, node_id: &str) -> Option<&Arc<Node>> {
        self.nodes.get(&IdKey::new(node_id))
    }

    /// Returns an evaluation by id.
    pub fn eval_by_id(&self, eval_id: &str) -> Option<&Arc<Evaluation>> {
        self.evals.get(&IdKey::new(eval_id))
    }

    /// Records that `table` changed in the entry being applied.
    pub fn touch(&mut self, table: Table) {
        let slot = &mut self.table_indexes[table as usize];
        *slot = (*slot).max(self.applying);
    }

    /// Inserts or replaces a node.
    pub fn put_node(&mut self, node: Node) {
        self.touch(Table::Nodes);
        self.nodes.insert(IdKey::new(&node.id), Arc::new(node));
    }

    /// Inserts or replaces an allocation, keeping every index and the usage table right.
    pub fn put_alloc(&mut self, mut alloc: Allocation) {
        self.touch(Table::Allocs);
        let id = IdKey::new(&alloc.id);
        let changed_at = changed_at(&alloc);
        let node_key = IdKey::new(&alloc.node_id);
        self.share_ids(&mut alloc, &node_key);
        let live = !alloc.is_terminal();
        // Each index is written only where its entry changes: a client report (the most
        // common write) keeps the node, the job, the evaluation and the server-side index,
        // so it touches the map by id alone, and the usage table only when the allocation
        // stops holding its resources.
        let old = self.allocs.get(&id).cloned();
        let (same_usage, same_node_entry, same_job) = match &old {
            Some(old) => (
                old.node_id == alloc.node_id
                    && old.is_terminal() != live
                    && old.resources == alloc.resources,
                old.node_id == alloc.node_id && self::changed_at(old) == changed_at,
                old.namespace == alloc.namespace && old.job_id == alloc.job_id,
            ),
            None => (false, false, false),
        };
        if let Some(old) = &old {
            if !same_usage {
                self.release_usage(old);
            }
            if !same_node_entry {
                if let Some(entry) = self.allocs_by_node.get_mut(&IdKey::new(&old.node_id)) {
                    entry.keys.remove(&(self::changed_at(old), id.clone()));
                }
            }
            if !same_job {
                if let Some(set) = self
                    .allocs_by_job
                    .get_mut(&key(&old.namespace, &old.job_id))
                {
                    set.remove(&id);
                }
            }
        }
        if live && !same_usage {
            let usage = self.node_usage.entry(node_key.clone()).or_default();
            *usage = usage.add(&alloc.resources);
        }
        if self
            .node_alloc_index
            .get(&node_key)
            .is_none_or(|&at| at < changed_at)
        {
            self.node_alloc_index.insert(node_key.clone(), changed_at);
        }
        if !same_node_entry {
            self.allocs_by_node
                .entry(node_key)
                .or_insert_with(|| NodeAllocs::new(&alloc))
                .keys
                .insert((changed_at, id.clone()));
        }
        if !same_job {
            self.allocs_by_job
                .entry(key(&alloc.namespace, &alloc.job_id))
                .or_default()
                .insert(id.clone());
        }
        self.allocs.insert(id, Arc::new(alloc));
    }

    /// Points an allocation's node id and node name at the copies its node's entry holds,
    /// and its evaluation and job ids at the previous allocation's when they are the same
    /// text, so that a million allocations hold a few thousand texts instead of four
    /// million. Reads the indexes only: a client report, which keeps its record's copies,
    /// changes nothing.
    fn share_ids(&mut self, alloc: &mut Allocation, node_key: &IdKey) {
        if let Some(entry) = self.allocs_by_node.get(node_key) {
            if !Arc::ptr_eq(&entry.node_id, &alloc.node_id) {
                assert_eq!(
                    *entry.node_id, *alloc.node_id,
                    "node key {node_key} names two ids"
                );
                alloc.node_id = entry.node_id.clone();
            }
            if !Arc::ptr_eq(&entry.node_name, &alloc.node_name)
                && *entry.node_name == *alloc.node_name
            {
                alloc.node_name = entry.node_name.clone();
            }
        }
        share_with_last(&mut self.last_eval_id, &mut alloc.eval_id);
        share_with_last(&mut self.last_job_id, &mut alloc.job_id);
    }

    /// The record of an allocation an index names. Every index entry names an allocation in
    /// `allocs`: `put_alloc` and `remove_alloc` keep them together.
    fn indexed(&self, id: &IdKey) -> &Arc<Allocation> {
        self.allocs.get(id).unwrap_or_else(|| {
            panic!("an index names allocation {id}, which the state does not hold")
        })
    }

    /// A node's allocations, in the order the servers last changed them.
    pub fn node_allocs<'a>(&'a self, node_id: &str) -> impl Iterator<Item = &'a Arc<Allocation>> {
        self.allocs_by_node
            .get(&IdKey::new(node_id))
            .into_iter()
            .flat_map(move |entry| entry.keys.iter().map(move |(_, id)| self.indexed(id)))
    }

    /// A node's allocations the servers changed after `index` (a client's `GetAllocs`):
    /// the ones changed earlier are not read.
    pub fn node_allocs_changed_after<'a>(
        &'a self,
        node_id: &str,
        index: u64,
    ) -> impl Iterator<Item = &'a Arc<Allocation>> {
        self.allocs_by_node
            .get(&IdKey::new(node_id))
            .into_iter()
            .flat_map(move |entry| {
                entry
                    .keys
                    .range_from(&changed_after(index))
                    .map(move |(_, id)| self.indexed(id))
            })
    }

    /// Returns the candidate-walk facts of `nodes`, building them if this version's node
    /// map is not the one the shared facts were built from.
    fn node_facts(&self) -> Arc<NodeFacts> {
        let mut slot = self
            .node_facts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(facts) = slot.as_ref() {
            if facts.nodes.ptr_eq(&self.nodes) {
                return facts.clone();
            }
        }
        let built = Arc::new(NodeFacts::build(&self.nodes));
        *slot = Some(built.clone());
        built
    }

    /// Counts a job's allocations by task group and client status (Nomad's job summary),
    /// from its entries in the per-job indexes; `queued` comes from its blocked evaluations.
    fn summarize(
        &self,
        job: &Job,
        alloc_ids: Option<&SortedKeys<IdKey>>,
        eval_ids: Option<&OrdSet<IdKey>>,
    ) -> JobSummary {
        let mut summary: BTreeMap<String, TaskGroupSummary> = job
            .task_groups
            .iter()
            .map(|tg| (tg.name.clone(), TaskGroupSummary::default()))
            .collect();
        for alloc in alloc_ids
            .into_iter()
            .flat_map(SortedKeys::iter)
            .map(|id| self.indexed(id))
        {
            let entry = match summary.get_mut(alloc.task_group.as_str()) {
                Some(entry) => entry,
                None => summary.entry(alloc.task_group.to_string()).or_default(),
            };
            match alloc.client_status {
                ClientStatus::Pending => {
                    if alloc.desired_status == DesiredStatus::Run {
                        entry.starting += 1
                    }
                }
                ClientStatus::Running => entry.running += 1,
                ClientStatus::Complete => entry.complete += 1,
                ClientStatus::Failed => entry.failed += 1,
                ClientStatus::Lost => entry.lost += 1,
                ClientStatus::Unknown => entry.unknown += 1,
            }
        }
        for eval in eval_ids
            .into_iter()
            .flatten()
            .filter_map(|id| self.evals.get(id))
        {
            if matches!(eval.status, EvalStatus::Blocked) {
                for (tg, queued) in &eval.queued_allocations {
                    if let Some(entry) = summary.get_mut(tg) {
                        entry.queued = entry.queued.max(*queued);
                    }
                }
            }
        }
        JobSummary {
            job_id: job.id.clone(),
            namespace: job.namespace.clone(),
            summary,
            create_index: job.create_index,
            modify_index: job.modify_index,
        }
    }

    /// A job's allocations, in id order.
    pub fn job_allocs<'a>(
        &'a self,
        namespace: &str,
        job_id: &str,
    ) -> impl Iterator<Item = &'a Arc<Allocation>> {
        self.allocs_by_job
            .get(&key(namespace, job_id))
            .into_iter()
            .flat_map(move |set| set.iter().map(move |id| self.indexed(id)))
    }

    /// Loads allocations into a state that holds none yet (a snapshot restore), building each
    /// index in one pass: allocations are grouped by node and by job first, so each outer map
    /// is touched once per group instead of once per allocation, and each inner map is filled
    /// in id order. The per-node and per-job indexes are built on threads of their own while
    /// this one builds the map by id: each reads every allocation once, and at a million
    /// allocations the reads are cache misses that cores overlap.
    pub fn load_allocs(&mut self, allocs: Vec<Arc<Allocation>>) {
        assert!(
            self.allocs.is_empty(),
            "load_allocs: the state already holds allocations"
        );
        self.touch(Table::Allocs);
        // Records decoded one by one hold their own copies of the node ids and names and of
        // the evaluation and job ids (a decode on several threads shares them within each
        // thread's part); each record is pointed at one shared copy of each before the
        // indexes are built.
        let mut texts = SharedTexts::default();
        let mut keyed: Vec<(IdKey, Arc<Allocation>)> = allocs
            .into_iter()
            .map(|mut a| {
                if let Some(record) = Arc::get_mut(&mut a) {
                    record.share_texts(&mut texts);
                }
                (IdKey::new(&a.id), a)
            })
            .collect();
        if !keyed.windows(2).all(|w| w[0].0 < w[1].0) {
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
        }
        assert!(
            keyed.windows(2).all(|w| w[0].0 != w[1].0),
            "load_allocs: an allocation id appears twice"
        );
        let entries = keyed.as_slice();
        let (by_node, by_job, allocs) = std::thread::scope(|scope| {
            let spawn = |name: &str| std::thread::Builder::new().name(format!("drover-{name}"));
            let nodes = spawn("index-nodes")
                .spawn_scoped(scope, || node_indexes(entries))
                .expect("spawning an index thread");
            let jobs = spawn("index-jobs")
                .spawn_scoped(scope, || job_index(entries))
                .expect("spawning an index thread");
            let allocs: OrdMap<IdKey, Arc<Allocation>> = entries.iter().cloned().collect();
            let by_node = nodes.join().expect("the node index thread panicked");
            let by_job = jobs.join().expect("the job index thread panicked");
            (by_node, by_job, allocs)
        });
        for (node_key, usage, changed_at, map) in by_node {
            if usage != Resources::default() {
                self.node_usage.insert(node_key.clone(), usage);
            }
            self.node_alloc_index.insert(node_key.clone(), changed_at);
            self.allocs_by_node.insert(node_key, map);
        }
        self.allocs_by_job.extend(by_job);
        self.allocs = allocs;
    }

    fn release_usage(&mut self, alloc: &Allocation) {
        if alloc.is_terminal() {
            return;
        }
        if let Some(usage) = self.node_usage.get_mut(&IdKey::new(&alloc.node_id)) {
            *usage = usage.sub(&alloc.resources);
        }
    }

    /// Removes an allocation and its index entries.
    pub fn remove_alloc(&mut self, alloc_id: &str) {
        self.touch(Table::Allocs);
        let id = IdKey::new(alloc_id);
        let Some(alloc) = self.allocs.remove(&id) else {
            return;
        };
        self.release_usage(&alloc);
        if let Some(entry) = self.allocs_by_node.get_mut(&IdKey::new(&alloc.node_id)) {
            entry.keys.remove(&(changed_at(&alloc), id.clone()));
        }
        if let Some(set) = self
            .allocs_by_job
            .get_mut(&key(&alloc.namespace, &alloc.job_id))
        {
            set.remove(&id);
        }
    }

    /// Inserts or replaces an evaluation.
    pub fn put_eval(&mut self, eval: Evaluation) {
        self.touch(Table::Evals);
        let id = IdKey::new(&eval.id);
        self.evals_by_job
            .entry(key(&eval.namespace, &eval.job_id))
            .or_default()
            .insert(id.clone());
        self.evals.insert(id, Arc::new(eval));
    }

    /// Removes an evaluation.
    pub fn remove_eval(&mut self, eval_id: &str) {
        self.touch(Table::Evals);
        let id = IdKey::new(eval_id);
        if let Some(eval) = self.evals.remove(&id) {
            if let Some(set) = self
                .evals_by_job
                .get_mut(&key(&eval.namespace, &eval.job_id))
            {
                set.remove(&id);
            }
        }
    }

    /// Stores a job version as the current one and trims history to `job_tracked_versions`.
    pub fn put_job(&mut self, job: Job) {
        self.touch(Table::Jobs);
        let k = key(&job.namespace, &job.id);
        let job = Arc::new(job);
        let versions = self.job_versions.entry(k.clone()).or_default();
        if versions.last().map(|v| v.version) == Some(job.version) {
            versions.pop_back();
        }
        versions.push_back(job.clone());
        while versions.len() > self.job_tracked_versions {
            versions.pop_front();
        }
        self.jobs.insert(k, job);
    }

    /// Recomputes a job's status from its allocations and evaluations (Nomad's rules:
    /// dead when stopped, or batch with nothing left to run; running when any allocation
    /// is non-terminal; pending otherwise).
    pub fn refresh_job_status(&mut self, namespace: &str, job_id: &str, index: u64) {
        let k = key(namespace, job_id);
        let Some(job) = self.jobs.get(&k).cloned() else {
            return;
        };
        let mut any_live = false;
        let mut any_alloc = false;
        for a in self.job_allocs(namespace, job_id) {
            if a.job_version > job.version {
                continue;
            }
            any_alloc = true;
            if !a.is_terminal() {
                any_live = true;
                break;
            }
        }
        let pending_eval = self.evals_by_job.get(&k).is_some_and(|ids| {
            ids.iter().any(|id| {
                self.evals
                    .get(id)
                    .is_some_and(|e| matches!(e.status, EvalStatus::Pending))
            })
        });
        // A periodic or parameterized template runs nothing itself; Nomad shows it as
        // running while it can launch children.
        let template = !job.stop && (job.is_periodic_parent() || job.is_parameterized_parent());
        let status = if any_live || template {
            JobStatus::Running
        } else if job.stop || (any_alloc && !pending_eval) {
            JobStatus::Dead
        } else {
            JobStatus::Pending
        };
        if status != job.status {
            let mut updated = (*job).clone();
            updated.status = status;
            updated.modify_index = index;
            let updated = Arc::new(updated);
            if let Some(versions) = self.job_versions.get_mut(&k) {
                if let Some(last) = versions.back().cloned() {
                    if last.version == updated.version {
                        versions.pop_back();
                        versions.push_back(updated.clone());
                    }
                }
            }
            self.jobs.insert(k, updated);
            self.touch(Table::Jobs);
        }
    }

    /// Checks the invariants that every apply must keep. O(allocations): debug builds and
    /// tests call it after applies; release builds rely on the cheaper asserts in apply.
    pub fn check_invariants(&self) {
        for entry in self.allocs_by_node.values() {
            entry.keys.assert_sorted();
        }
        for keys in self.allocs_by_job.values() {
            keys.assert_sorted();
        }
        let mut usage: BTreeMap<&str, Resources> = BTreeMap::new();
        for (id, alloc) in self.allocs.iter() {
            assert_eq!(
                id,
                &IdKey::new(&alloc.id),
                "alloc map key mismatch: key={id} alloc={}",
                alloc.id
            );
            let entry = self.allocs_by_node.get(&IdKey::new(&alloc.node_id));
            assert!(
                entry.is_some_and(|e| e.keys.contains(&(changed_at(alloc), id.clone()))),
                "alloc {id} missing from node index of {}",
                alloc.node_id
            );
            assert!(
                entry.is_some_and(|e| Arc::ptr_eq(&e.node_id, &alloc.node_id)),
                "alloc {id} holds a copy of node id {} of its own",
                alloc.node_id
            );
            assert!(
                entry.is_some_and(|e| *e.node_name != *alloc.node_name
                    || Arc::ptr_eq(&e.node_name, &alloc.node_name)),
                "alloc {id} holds a copy of node name {} of its own",
                alloc.node_name
            );
            if !alloc.is_terminal() {
                let u = usage.entry(alloc.node_id.as_ref()).or_default();
                *u = u.add(&alloc.resources);
            }
        }
        for (node_id, expected) in usage {
            let got = self
                .node_usage
                .get(&IdKey::new(node_id))
                .copied()
                .unwrap_or_default();
            assert_eq!(got, expected, "usage table wrong for node {node_id}");
            if let Some(node) = self.node_by_id(node_id) {
                let cap = node.schedulable();
                assert!(
                    expected.cpu_mhz <= cap.cpu_mhz && expected.memory_mb <= cap.memory_mb,
                    "node {node_id} over capacity: used={expected:?} capacity={cap:?}"
                );
            }
        }
    }
}

impl StateView for ClusterState {
    fn index(&self) -> u64 {
        self.index
    }
    fn job(&self, namespace: &str, job_id: &str) -> Option<&Job> {
        self.jobs.get(&key(namespace, job_id)).map(|j| &**j)
    }
    fn job_version(&self, namespace: &str, job_id: &str, version: u64) -> Option<&Job> {
        self.job_versions
            .get(&key(namespace, job_id))?
            .iter()
            .rev()
            .find(|j| j.version == version)
            .map(|j| &**j)
    }
    fn node(&self, node_id: &str) -> Option<&Node> {
        self.node_by_id(node_id).map(|n| &**n)
    }
    fn nodes(&self) -> Vec<&Node> {
        self.nodes.values().map(|n| &**n).collect()
    }
    fn allocs_by_job(&self, namespace: &str, job_id: &str) -> Vec<&Allocation> {
        self.job_allocs(namespace, job_id).map(|a| &**a).collect()
    }
    fn allocs_by_node(&self, node_id: &str) -> Vec<&Allocation> {
        self.node_allocs(node_id).map(|a| &**a).collect()
    }
    fn node_usage(&self, node_id: &str) -> Resources {
        self.node_usage
            .get(&IdKey::new(node_id))
            .copied()
            .unwrap_or_default()
    }
    fn candidate_nodes(&self, pool: &str, datacenters: &[String]) -> Candidates<'_> {
        let facts = self.node_facts();
        let pools = PoolChecker::new(pool);
        let pool_ok: Vec<bool> = facts.pools.iter().map(|p| pools.accepts(p)).collect();
        let dcs = DatacenterChecker::new(datacenters);
        let dc_ok: Vec<bool> = facts.datacenters.iter().map(|d| dcs.accepts(d)).collect();
        let mut available = vec![0u64; facts.datacenters.len()];
        let mut out = Candidates::default();
        // `facts` was built from this very map, so its entries are in the map's order.
        for (node, fact) in self.nodes.values().zip(&facts.entries) {
            if !pool_ok[fact.pool as usize] {
                continue;
            }
            out.in_pool += 1;
            if fact.ready && dc_ok[fact.datacenter as usize] {
                out.nodes.push(&**node);
                available[fact.datacenter as usize] += 1;
            }
        }
        out.available_by_dc = facts
            .datacenters
            .iter()
            .zip(available)
            .filter(|(_, count)| *count > 0)
            .map(|(dc, count)| (dc.clone(), count))
            .collect();
        out
    }
}

impl ReadView for ClusterState {
    fn table_index(&self, table: Table) -> u64 {
        self.table_indexes[table as usize]
    }
    fn jobs(&self) -> Vec<&Job> {
        self.jobs.values().map(|j| &**j).collect()
    }
    fn job_versions(&self, namespace: &str, job_id: &str) -> Vec<&Job> {
        self.job_versions
            .get(&key(namespace, job_id))
            .map(|v| v.iter().rev().map(|j| &**j).collect())
            .unwrap_or_default()
    }
    fn job_summary(&self, namespace: &str, job_id: &str) -> Option<JobSummary> {
        let key = key(namespace, job_id);
        let job = self.jobs.get(&key)?;
        Some(self.summarize(
            job,
            self.allocs_by_job.get(&key),
            self.evals_by_job.get(&key),
        ))
    }
    fn job_summaries(&self, keep: &dyn Fn(&Job) -> bool) -> Vec<(&Job, JobSummary)> {
        // The job map and both per-job indexes are ordered by the same key: one merged walk
        // finds each job's entries without a lookup (and without building a key) per job.
        let mut allocs = self.allocs_by_job.iter().peekable();
        let mut evals = self.evals_by_job.iter().peekable();
        self.jobs
            .iter()
            .filter(|(_, job)| keep(job))
            .map(|(job_key, job)| {
                let job_allocs = advance_to(&mut allocs, job_key);
                let job_evals = advance_to(&mut evals, job_key);
                (&**job, self.summarize(job, job_allocs, job_evals))
            })
            .collect()
    }
    fn allocs(&self) -> Vec<&Allocation> {
        self.allocs.values().map(|a| &**a).collect()
    }
    fn alloc(&self, alloc_id: &str) -> Option<&Allocation> {
        self.allocs.get(&IdKey::new(alloc_id)).map(|a| &**a)
    }
    /// The evaluation's allocations, read from its job's: none if the evaluation is gone.
    fn allocs_by_eval(&self, eval_id: &str) -> Vec<&Allocation> {
        let Some(eval) = self.evals.get(&IdKey::new(eval_id)) else {
            return Vec::new();
        };
        self.job_allocs(&eval.namespace, &eval.job_id)
            .filter(|a| *a.eval_id == *eval_id)
            .map(|a| &**a)
            .collect()
    }
    fn evals(&self) -> Vec<&Evaluation> {
        self.evals.values().map(|e| &**e).collect()
    }
    fn eval(&self, eval_id: &str) -> Option<&Evaluation> {
        self.evals.get(&IdKey::new(eval_id)).map(|e| &**e)
    }
    fn evals_by_job(&self, namespace: &str, job_id: &str) -> Vec<&Evaluation> {
        self.evals_by_job
            .get(&key(namespace, job_id))
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| self.evals.get(id).map(|e| &**e))
                    .collect()
            })
            .unwrap_or_default()
    }
    fn scheduler_config(&self) -> &SchedulerConfig {
        &self.scheduler_config
    }
    fn scheduler_config_index(&self) -> u64 {
        self.scheduler_config_index
    }
}

#[cfg(test)]
mod tests {
    use sched::structs::{ClientStatus, DesiredStatus};
    use sched::testing::{alloc_on, node};

    use super::*;

    /// Allocations over three nodes, two jobs and two evaluations; UUID and other ids;
    /// some terminal, so usage must skip them.
    fn sample() -> Vec<Arc<Allocation>> {
        let nodes = [
            node("n1", 4000, 4096),
            node("n2", 4000, 4096),
            node("n3", 4000, 4096),
        ];
        (0..40u64)
            .map(|i| {
                let id = if i % 3 == 0 {
                    format!("alloc-{i:03}")
                } else {
                    format!("{:08x}-0000-4000-8000-{:012x}", i * 7919, i)
                };
                let mut a = alloc_on(&id, &nodes[(i % 3) as usize], 10 + i, 16);
                a.job_id = if i % 2 == 0 { "web" } else { "db" }.into();
                a.eval_id = if i % 4 == 0 { "eval-a" } else { "eval-b" }.into();
                a.create_index = i + 1;
                a.alloc_modify_index = i + 2;
                if i % 5 == 0 {
                    a.client_status = ClientStatus::Complete;
                }
                if i % 7 == 0 {
                    a.desired_status = DesiredStatus::Stop;
                }
                Arc::new(a)
            })
            .collect()
    }

    #[test]
    fn allocations_hold_one_shared_copy_of_each_node_id_and_name_and_of_a_plans_eval_and_job_ids() {
        // Every record of `sample` holds copies of its own, as decoded records do.
        fn distinct(s: &ClusterState, field: fn(&Allocation) -> &Arc<str>) -> usize {
            let mut seen: Vec<*const u8> = s.allocs.values().map(|a| field(a).as_ptr()).collect();
            seen.sort();
            seen.dedup();
            seen.len()
        }
        let mut one_by_one = ClusterState::new(6);
        for a in sample() {
            one_by_one.put_alloc(Arc::unwrap_or_clone(a));
        }
        let mut bulk = ClusterState::new(6);
        bulk.load_allocs(sample());
        for s in [&one_by_one, &bulk] {
            s.check_invariants();
            assert_eq!(distinct(s, |a| &a.node_id), 3, "one copy per node");
            assert_eq!(distinct(s, |a| &a.node_name), 3, "one name per node");
            // `sample` gives eval-a to every fourth record, eval-b to the rest: each run of
            // one text shares a copy, so 40 records hold at most 20 (40 without sharing).
            let evals = distinct(s, |a| &a.eval_id);
            assert!(evals <= 20, "eval ids were not shared: {evals} copies");
        }
        // A bulk load (a restore) shares every repeated text, neighbours or not: `sample`
        // alternates its two jobs and interleaves its two evaluations.
        assert_eq!(distinct(&bulk, |a| &a.eval_id), 2);
        assert_eq!(distinct(&bulk, |a| &a.job_id), 2);
        // A plan's allocations, stored one after the other, share their evaluation's id.
        let mut s = ClusterState::new(6);
        let n = node("n9", 4000, 4096);
        for i in 0..10 {
            let mut a = alloc_on(&format!("plan-{i}"), &n, 10, 16);
            a.eval_id = "eval-plan".into();
            s.put_alloc(a);
        }
        let all: [fn(&Allocation) -> &Arc<str>; 4] = [
            |a| &a.eval_id,
            |a| &a.job_id,
            |a| &a.node_id,
            |a| &a.node_name,
        ];
        for field in all {
            assert_eq!(distinct(&s, field), 1);
        }
        // A client report keeps the shared copies.
        let mut report = (**s.alloc_by_id("plan-3").unwrap()).clone();
        report.client_status = ClientStatus::Running;
        s.put_alloc(report);
        for field in all {
            assert_eq!(distinct(&s, field), 1);
        }
        // A record of a node that re-registered under another name keeps its own copy.
        let mut renamed = alloc_on("plan-10", &n, 10, 16);
        renamed.node_name = "n9-renamed".into();
        s.put_alloc(renamed);
        assert_eq!(distinct(&s, |a| &a.node_name), 2);
        s.check_invariants();
    }

    #[test]
    fn a_bulk_load_builds_the_indexes_that_one_by_one_puts_build() {
        let mut one_by_one = ClusterState::new(6);
        for a in sample() {
            one_by_one.put_alloc(Arc::unwrap_or_clone(a));
        }
        let mut reversed = sample();
        reversed.reverse();
        let mut bulk = ClusterState::new(6);
        bulk.load_allocs(reversed);
        bulk.check_invariants();
        fn ids<K: Ord + Clone>(m: &OrdMap<K, Arc<Allocation>>) -> Vec<K> {
            m.keys().cloned().collect()
        }
        assert_eq!(ids(&bulk.allocs), ids(&one_by_one.allocs));
        assert_eq!(bulk.allocs_by_node, one_by_one.allocs_by_node);
        assert_eq!(bulk.allocs_by_job, one_by_one.allocs_by_job);
        assert_eq!(bulk.node_usage, one_by_one.node_usage);
        assert_eq!(bulk.node_alloc_index, one_by_one.node_alloc_index);
        assert_eq!(bulk.allocs_by_node.len(), 3);
        assert_eq!(bulk.allocs_by_job.len(), 2);
        assert_eq!(
            ReadView::alloc(&bulk, "alloc-003").map(|a| a.id.as_str()),
            Some("alloc-003")
        );
    }

    #[test]
    fn a_nodes_allocations_changed_after_an_index_are_read_without_the_others() {
        let n1 = node("n1", 4000, 4096);
        let n2 = node("n2", 4000, 4096);
        let mut s = ClusterState::new(6);
        {
            use sched::structs::JobType;
            use sched::testing::{eval_for, group, job};
            let j = job("job", JobType::Service, vec![group("web", 1, 10, 16)]);
            s.put_eval(eval_for(&j, "eval-1"));
            s.put_eval(eval_for(&j, "eval-2"));
        }
        for i in 1..=5u64 {
            let mut a = alloc_on(&format!("a{i}"), &n1, 10, 16);
            a.eval_id = "eval-1".into();
            a.create_index = i;
            a.alloc_modify_index = i;
            s.put_alloc(a);
        }
        let changed = |s: &ClusterState, node: &str, after: u64| -> Vec<String> {
            s.node_allocs_changed_after(node, after)
                .map(|a| a.id.to_string())
                .collect()
        };
        assert_eq!(changed(&s, "n1", 3), ["a4", "a5"]);
        assert_eq!(changed(&s, "n1", 0).len(), 5);

        // A server-side change (a stop at index 9) moves the allocation after the others.
        let mut stopped = (*s.allocs[&IdKey::new("a2")]).clone();
        stopped.desired_status = DesiredStatus::Stop;
        stopped.alloc_modify_index = 9;
        s.put_alloc(stopped);
        assert_eq!(changed(&s, "n1", 5), ["a2"]);
        // A client report leaves the server-side index alone, so nothing moves, and an
        // index whose entry did not change is not written at all (still the same tree).
        let before = s.clone();
        let mut running = (*s.allocs[&IdKey::new("a4")]).clone();
        running.client_status = ClientStatus::Running;
        running.modify_index = 10;
        s.put_alloc(running.clone());
        assert_eq!(changed(&s, "n1", 5), ["a2"]);
        assert!(s.allocs_by_node.ptr_eq(&before.allocs_by_node));
        assert!(s.allocs_by_job.ptr_eq(&before.allocs_by_job));
        assert!(s.node_usage.ptr_eq(&before.node_usage));
        assert!(s.node_alloc_index.ptr_eq(&before.node_alloc_index));
        // Finishing releases the allocation's resources on its node.
        running.client_status = ClientStatus::Complete;
        running.modify_index = 11;
        s.put_alloc(running);
        assert_eq!(s.node_usage[&IdKey::new("n1")].cpu_mhz, 30);
        // An in-place update under a new evaluation moves the id between evaluations.
        let mut updated = (*s.allocs[&IdKey::new("a5")]).clone();
        let first_eval = updated.eval_id.clone();
        updated.eval_id = "eval-2".into();
        s.put_alloc(updated);
        assert_eq!(first_eval, "eval-1".into());
        assert_eq!(ReadView::allocs_by_eval(&s, "eval-2").len(), 1);
        assert_eq!(ReadView::allocs_by_eval(&s, &first_eval).len(), 4);
        assert!(ReadView::allocs_by_eval(&s, "no-such-eval").is_empty());
        assert_eq!(s.allocs_by_node[&IdKey::new("n1")].keys.len(), 5);
        // Moving to another node takes the entry off the first node.
        let mut moved = (*s.allocs[&IdKey::new("a1")]).clone();
        moved.node_id = n2.id.clone().into();
        moved.alloc_modify_index = 11;
        s.put_alloc(moved);
        assert_eq!(changed(&s, "n1", 0), ["a3", "a4", "a5", "a2"]);
        assert_eq!(changed(&s, "n2", 10), ["a1"]);
        s.remove_alloc("a3");
        assert_eq!(changed(&s, "n1", 0), ["a4", "a5", "a2"]);
        s.check_invariants();
    }

    #[test]
    fn the_summaries_of_every_job_match_each_jobs_own_summary() {
        use sched::structs::{EvalStatus, JobType};
        use sched::testing::{eval_for, group, job};
        let mut s = ClusterState::new(6);
        // Namespaces whose names sort differently as text and as part of a key, jobs with
        // and without allocations or evaluations, and index entries of jobs that are gone.
        let mut jobs = Vec::new();
        for (ns, id) in [
            ("default", "a"),
            ("default", "b"),
            ("default", "c"),
            ("dev", "a"),
            ("dev-2", "z"),
        ] {
            let mut j = job(
                id,
                JobType::Service,
                vec![group("g", 3, 10, 16), group("h", 1, 10, 16)],
            );
            j.namespace = ns.into();
            s.put_job(j.clone());
            jobs.push(j);
        }
        let n1 = node("n1", 4000, 4096);
        for (i, j) in jobs.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
            for k in 0..=i {
                let mut a = alloc_on(&format!("a-{i}-{k}"), &n1, 10, 16);
                a.namespace = j.namespace.clone().into();
                a.job_id = j.id.clone().into();
                a.task_group = if k % 2 == 0 { "g" } else { "h" }.into();
                a.client_status = match k % 3 {
                    0 => ClientStatus::Running,
                    1 => ClientStatus::Pending,
                    _ => ClientStatus::Failed,
                };
                s.put_alloc(a);
            }
        }
        for (i, j) in jobs.iter().enumerate().filter(|(i, _)| i % 2 == 1) {
            let mut e = eval_for(j, &format!("e-{i}"));
            e.status = EvalStatus::Blocked;
            e.queued_allocations.insert("g".into(), 2 + i as u64);
            s.put_eval(e);
        }
        let mut orphan = alloc_on("a-orphan", &n1, 10, 16);
        orphan.namespace = "default".into();
        orphan.job_id = "bb".into();
        s.put_alloc(orphan);

        let all = ReadView::job_summaries(&s, &|_| true);
        assert_eq!(all.len(), jobs.len());
        for (j, summary) in &all {
            assert_eq!(
                Some(summary),
                ReadView::job_summary(&s, &j.namespace, &j.id).as_ref(),
                "{}/{}",
                j.namespace,
                j.id
            );
        }
        let c = &all.iter().find(|(j, _)| j.id == "c").unwrap().1.summary;
        assert_eq!((c["g"].running, c["g"].failed, c["h"].starting), (1, 1, 1));
        let b = &all.iter().find(|(j, _)| j.id == "b").unwrap().1.summary;
        assert_eq!((b["g"].queued, b["g"].running), (3, 0));
        let dev: Vec<_> = ReadView::job_summaries(&s, &|j| j.namespace == "dev")
            .into_iter()
            .map(|(j, summary)| (j.id.clone(), summary.summary["g"].queued))
            .collect();
        assert_eq!(dev, [("a".to_string(), 5)]);
    }

    #[test]
    fn candidate_nodes_from_the_shared_facts_match_a_walk_over_every_node() {
        use sched::structs::NodeStatus;
        let mut s = ClusterState::new(6);
        for i in 0..30u32 {
            let mut n = node(&format!("n{i:02}"), 4000, 4096);
            n.node_pool = ["", "default", "gpu"][(i % 3) as usize].into();
            n.datacenter = ["dc1", "dc2", "eu-west"][(i % 5 % 3) as usize].into();
            if i % 7 == 0 {
                n.status = NodeStatus::Down;
            }
            if i % 11 == 0 {
                n.eligible = false;
            }
            s.put_node(n);
        }
        let dcs = |list: &[&str]| list.iter().map(|d| d.to_string()).collect::<Vec<_>>();
        let asks = [
            ("", dcs(&[])),
            ("default", dcs(&["dc1"])),
            ("gpu", dcs(&["dc*"])),
            ("all", dcs(&["eu-*", "dc2"])),
            ("none", dcs(&[])),
            ("all", dcs(&["nowhere"])),
        ];
        let check = |s: &ClusterState| {
            for (pool, datacenters) in &asks {
                let cached = s.candidate_nodes(pool, datacenters);
                let walked = Candidates::filter(StateView::nodes(s), pool, datacenters);
                let ids = |c: &Candidates| c.nodes.iter().map(|n| n.id.clone()).collect::<Vec<_>>();
                assert_eq!(ids(&cached), ids(&walked), "{pool} {datacenters:?}");
                assert_eq!(cached.in_pool, walked.in_pool, "{pool} {datacenters:?}");
                assert_eq!(cached.available_by_dc, walked.available_by_dc);
            }
        };
        check(&s);
        let all = s.candidate_nodes("all", &[]);
        assert_eq!(all.in_pool, 30);
        assert!(all.nodes.len() < 30 && !all.nodes.is_empty());
        // A newer version with a node changed answers from new facts; the older version,
        // whose node map differs, still answers from its own nodes.
        let before = s.clone();
        let mut down = (*s.nodes[&IdKey::new("n01")]).clone();
        down.status = NodeStatus::Down;
        s.put_node(down);
        check(&s);
        check(&before);
        check(&s);
        let was = |s: &ClusterState| {
            s.candidate_nodes("all", &[])
                .nodes
                .iter()
                .any(|n| n.id == "n01")
        };
        assert!(was(&before) && !was(&s));
    }

    #[test]
    #[should_panic(expected = "appears twice")]
    fn a_bulk_load_refuses_a_repeated_id() {
        let mut allocs = sample();
        allocs.push(allocs[1].clone());
        ClusterState::new(6).load_allocs(allocs);
    }
}
