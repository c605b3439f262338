//! The placement chain for one task group: cached node feasibility, plan-aware checks
//! (distinct hosts/property, resources, ports), ranking, and the cyclic limit walk.
//!
//! `NodeTable` holds per-node state shared by every group of one evaluation, so capacity used
//! by one group's placements is seen by the next, and so is capacity freed by evictions.
//!
//! Preemption follows Nomad's two passes: a walk first looks for a node where the ask fits
//! as things are; only when no node does, and the job's type may preempt, a second walk
//! lets exhausted nodes evict lower-priority allocations (`preempt.rs`) and scores them with
//! the preemption scorer. So a node that needs no eviction is always preferred.

use std::collections::{BTreeMap, HashMap, HashSet};

use rand::Rng;

use crate::env::SchedulerAlgorithm;
use crate::error::SchedError;
use crate::feasible::{
    ConstraintChecker, DistinctHostsChecker, DistinctPropertyChecker, DriverChecker, Operator,
};
use crate::preempt::{select_preemptions, Candidate};
use crate::rank::{
    fit_score, job_anti_affinity, preemption_score, reschedule_penalty, AffinityScorer, ScoreSheet,
    SpreadScorer,
};
use crate::select::{limit_for, Selector};
use crate::structs::{AllocMetric, Allocation, Job, MetricCount, Node, Resources, TaskGroup};
use crate::view::{Candidates, StateView};

/// Dynamic ports are picked from this range, like Nomad's default.
pub const DYNAMIC_PORT_MIN: u16 = 20000;
pub const DYNAMIC_PORT_MAX: u16 = 32000;
/// Random probes before falling back to a scan of the dynamic range.
const PORT_PROBES_MAX: usize = 32;

pub const DIMENSION_CPU: &str = "cpu";
pub const DIMENSION_MEMORY: &str = "memory";
pub const DIMENSION_DISK: &str = "disk";
pub const DIMENSION_PORTS: &str = "network: port collision";

/// What the plan has done to one node so far.
pub struct NodeState {
    pub used: Resources,
    pub ports: HashSet<u16>,
    /// Proposed non-terminal allocations of the job being scheduled.
    pub job_allocs: u32,
}

/// The candidate nodes of one evaluation and their lazily built plan state.
pub struct NodeTable<'a> {
    pub nodes: Vec<&'a Node>,
    states: Vec<Option<NodeState>>,
    /// Proposed allocations of the job per (node position, task group index), flat so that
    /// first touching a node allocates nothing.
    group_counts: Vec<u32>,
    num_groups: usize,
    /// Resources released by allocations this plan stops, per node id.
    released: HashMap<&'a str, Resources>,
    /// Ids of the allocations this plan stops.
    stopped: HashSet<&'a str>,
    /// The job's live allocations per node position, read from the view's job index on the
    /// first `state` call: counting them there costs one pass over the job's allocations,
    /// where walking every touched node's allocations costs a pass over the cluster's.
    existing_job_allocs: Option<Vec<u32>>,
    /// Whether any group of the job asks for ports; only then does `state` read the ports
    /// the node's allocations hold.
    wants_ports: Option<bool>,
    /// Ids of the allocations this plan evicts to make room for its placements.
    preempted: HashSet<&'a str>,
    /// Ready candidate nodes per datacenter, for `MetricCount::NodesAvailable`.
    pub available_by_dc: BTreeMap<String, u64>,
    pub nodes_in_pool: u64,
}

impl<'a> NodeTable<'a> {
    /// `stopped` are the allocations this plan stops or replaces; they no longer count.
    pub fn new(
        candidates: Candidates<'a>,
        stopped: &[&'a Allocation],
        num_groups: usize,
    ) -> NodeTable<'a> {
        let Candidates {
            nodes,
            in_pool: nodes_in_pool,
            available_by_dc,
        } = candidates;
        let mut released: HashMap<&'a str, Resources> = HashMap::new();
        let mut stopped_ids = HashSet::new();
        for a in stopped {
            if stopped_ids.insert(a.id.as_str()) && !a.is_terminal() {
                let r = released.entry(a.node_id.as_ref()).or_default();
                *r = r.add(&a.resources);
            }
        }
        let states = nodes.iter().map(|_| None).collect();
        let group_counts = vec![0; nodes.len() * num_groups];
        NodeTable {
            nodes,
            states,
            group_counts,
            num_groups,
            released,
            stopped: stopped_ids,
            existing_job_allocs: None,
            wants_ports: None,
            preempted: HashSet::new(),
            available_by_dc,
            nodes_in_pool,
        }
    }

    /// Reports whether this plan stops the allocation.
    pub fn is_stopped(&self, alloc_id: &str) -> bool {
        self.stopped.contains(alloc_id)
    }

    /// Reports whether this plan already evicts the allocation.
    pub fn is_preempted(&self, alloc_id: &str) -> bool {
        self.preempted.contains(alloc_id)
    }

    /// Records that the plan evicts `evictions` from the node at `pos`, so later placements
    /// see their resources as free and no later placement evicts them again. Their ports stay
    /// taken: evictions are chosen for cpu, memory and disk only.
    pub fn evict(
        &mut self,
        pos: u32,
        evictions: &[Candidate<'a>],
        view: &dyn StateView,
        job: &Job,
    ) {
        if evictions.is_empty() {
            return;
        }
        let node: &'a Node = self.nodes[pos as usize];
        for c in evictions {
            assert_eq!(
                *c.alloc.node_id, *node.id,
                "alloc {} evicted from another node",
                c.alloc.id
            );
            assert!(
                !self.stopped.contains(c.alloc.id.as_str()),
                "alloc {} both stopped and evicted",
                c.alloc.id
            );
            assert!(
                self.preempted.insert(c.alloc.id.as_str()),
                "alloc {} evicted twice",
                c.alloc.id
            );
        }
        let state = self.state(pos, view, job);
        for c in evictions {
            state.used = state.used.sub(&c.alloc.resources);
        }
    }

    /// Counts the job's live allocations per node position and per (position, group).
    fn load_job_allocs(&mut self, view: &dyn StateView, job: &Job) -> Vec<u32> {
        let mut counts = vec![0u32; self.nodes.len()];
        let live: Vec<_> = view
            .allocs_by_job(&job.namespace, &job.id)
            .into_iter()
            .filter(|a| !a.is_terminal() && !self.stopped.contains(a.id.as_str()))
            .collect();
        if live.is_empty() {
            return counts;
        }
        let pos_of: HashMap<&str, usize> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.as_str(), i))
            .collect();
        for a in live {
            let Some(&pos) = pos_of.get(a.node_id.as_ref()) else {
                continue;
            };
            counts[pos] += 1;
            if let Some(i) = job
                .task_groups
                .iter()
                .position(|tg| tg.name == a.task_group)
            {
                self.group_counts[pos * self.num_groups + i] += 1;
            }
        }
        counts
    }

    /// Returns the node's plan state, reading it from the view on first use.
    pub fn state(&mut self, pos: u32, view: &dyn StateView, job: &Job) -> &mut NodeState {
        let pos = pos as usize;
        if self.states[pos].is_none() {
            assert_eq!(
                job.task_groups.len(),
                self.num_groups,
                "table built for this job"
            );
            if self.existing_job_allocs.is_none() {
                self.existing_job_allocs = Some(self.load_job_allocs(view, job));
            }
            let wants_ports = *self.wants_ports.get_or_insert_with(|| {
                job.task_groups.iter().any(|tg| {
                    tg.networks
                        .iter()
                        .chain(tg.tasks.iter().flat_map(|t| &t.networks))
                        .any(|n| !n.ports.is_empty())
                })
            });
            let node = self.nodes[pos];
            let mut used = view.node_usage(&node.id);
            if let Some(r) = self.released.get(node.id.as_str()) {
                used = used.sub(r);
            }
            let mut ports = HashSet::new();
            if wants_ports {
                for a in view.allocs_by_node(&node.id) {
                    if a.is_terminal() || self.stopped.contains(a.id.as_str()) {
                        continue;
                    }
                    ports.extend(a.ports.iter().map(|(_, p)| *p));
                }
            }
            let job_allocs = self.existing_job_allocs.as_ref().map_or(0, |c| c[pos]);
            self.states[pos] = Some(NodeState {
                used,
                ports,
                job_allocs,
            });
        }
        match &mut self.states[pos] {
            Some(state) => state,
            None => unreachable!("state was just filled"),
        }
    }
}

impl NodeTable<'_> {
    /// Proposed allocations of task group `tg_idx` on the node, once `state` has read it.
    pub fn group_allocs(&self, pos: u32, tg_idx: usize) -> u32 {
        self.group_counts[pos as usize * self.num_groups + tg_idx]
    }

    fn add_group_alloc(&mut self, pos: u32, tg_idx: usize) {
        self.group_counts[pos as usize * self.num_groups + tg_idx] += 1;
    }
}

/// Per-placement counters, turned into an `AllocMetric` once per placement.
#[derive(Default)]
pub struct Counters {
    pub evaluated: u64,
    pub filtered: u64,
    pub exhausted: u64,
    filtered_by: Vec<u64>,
    dimensions: [u64; 4],
}

/// Ports one allocation of the group asks for.
struct PortAsk {
    fixed: Vec<(String, u16)>,
    dynamic: Vec<String>,
}

/// Reason slots: 0 is the driver check, then one per static constraint, then distinct_hosts,
/// then one per distinct_property.
const REASON_DRIVER: usize = 0;
const CACHE_UNKNOWN: u16 = 0;
const CACHE_FEASIBLE: u16 = 1;

/// Everything precomputed for placing one task group.
pub struct GroupStack<'a> {
    pub tg_idx: usize,
    pub tg: &'a TaskGroup,
    pub ask: Resources,
    algorithm: SchedulerAlgorithm,
    desired_count: u32,
    driver: DriverChecker,
    constraints: Vec<ConstraintChecker>,
    hosts: Option<DistinctHostsChecker>,
    properties: Vec<DistinctPropertyChecker>,
    affinity: Option<AffinityScorer>,
    spread: Option<SpreadScorer>,
    ports: PortAsk,
    reasons: Vec<String>,
    /// Per candidate position: unknown, feasible, or `reason index + 2`.
    cache: Vec<u16>,
    selector: Selector,
    /// Whether the job's type may evict lower-priority allocations (scheduler configuration).
    preempt: bool,
    /// Evictions that make the ask fit, per node scored since the last `select`.
    evictions: HashMap<u32, Vec<Candidate<'a>>>,
}

/// What `GroupStack::commit` recorded for one placement.
pub struct Committed<'a> {
    /// The ports the placement was given.
    pub ports: Vec<(String, u16)>,
    /// The allocations evicted to make room, with their jobs' priorities.
    pub preempted: Vec<Candidate<'a>>,
}

impl<'a> GroupStack<'a> {
    /// Precomputes the group's ask, checkers and scorers. `live` are the job's allocations
    /// that stay (non-terminal and not stopped by this plan), with their nodes, so spread and
    /// distinct_property start from the current distribution.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        job: &'a Job,
        tg_idx: usize,
        table: &NodeTable<'a>,
        live: &[(&'a Node, &'a str)],
        algorithm: SchedulerAlgorithm,
        rng: &mut impl Rng,
    ) -> Result<GroupStack<'a>, SchedError> {
        let tg = &job.task_groups[tg_idx];
        let mut constraints = Vec::new();
        let mut hosts = None;
        let mut properties = Vec::new();
        let mut seen = HashSet::new();
        let job_level = job.constraints.iter().map(|c| (c, true));
        let group_level = tg
            .constraints
            .iter()
            .chain(tg.tasks.iter().flat_map(|t| &t.constraints));
        for (c, job_wide) in job_level.chain(group_level.map(|c| (c, false))) {
            if !seen.insert((&c.l_target, &c.operand, &c.r_target, job_wide)) {
                continue;
            }
            let checker = ConstraintChecker::new(c, &job.id, "constraint")?;
            match checker.operator() {
                Operator::DistinctHosts => {
                    hosts = Some(hosts.unwrap_or(false) || job_wide);
                }
                Operator::DistinctProperty => {
                    let group = (!job_wide).then_some(tg.name.as_str());
                    properties.push(DistinctPropertyChecker::new(
                        &c.l_target,
                        &c.r_target,
                        group,
                        &job.id,
                    )?);
                }
                _ => constraints.push(checker),
            }
        }
        let hosts = hosts.map(DistinctHostsChecker::new);
        let affinity = AffinityScorer::new(
            job.affinities
                .iter()
                .chain(&tg.affinities)
                .chain(tg.tasks.iter().flat_map(|t| &t.affinities)),
            &job.id,
        )?;
        let mut spread = SpreadScorer::new(job.spreads.iter().chain(&tg.spreads), tg.count);
        for (node, tg_name) in live {
            for p in &mut properties {
                p.observe(node, tg_name, true);
            }
            if let Some(s) = &mut spread {
                if *tg_name == tg.name {
                    s.observe(node, true);
                }
            }
        }

        let mut reasons = vec![DriverChecker::REASON.to_string()];
        reasons.extend(constraints.iter().map(|c| c.reason().to_string()));
        reasons.push(DistinctHostsChecker::REASON.to_string());
        reasons.extend(properties.iter().map(|p| p.reason().to_string()));

        let mut ports = PortAsk {
            fixed: Vec::new(),
            dynamic: Vec::new(),
        };
        for net in tg
            .networks
            .iter()
            .chain(tg.tasks.iter().flat_map(|t| &t.networks))
        {
            for p in &net.ports {
                if p.is_static && p.value > 0 {
                    ports.fixed.push((p.label.clone(), p.value));
                } else {
                    ports.dynamic.push(p.label.clone());
                }
            }
        }

        let wide = affinity.is_some() || spread.is_some();
        let limit = limit_for(job.job_type, table.nodes.len(), wide);
        Ok(GroupStack {
            tg_idx,
            tg,
            ask: tg.total_resources(),
            algorithm,
            desired_count: tg.count,
            driver: DriverChecker::new(tg),
            constraints,
            hosts,
            properties,
            affinity,
            spread,
            ports,
            reasons,
            cache: vec![CACHE_UNKNOWN; table.nodes.len()],
            selector: Selector::new(table.nodes.len(), limit, rng),
            preempt: false,
            evictions: HashMap::new(),
        })
    }

    /// Lets placements evict lower-priority allocations when nothing fits otherwise.
    pub fn set_preemption(&mut self, enabled: bool) {
        self.preempt = enabled;
    }

    /// Returns fresh counters sized for this group's reasons.
    pub fn counters(&self) -> Counters {
        Counters {
            filtered_by: vec![0; self.reasons.len()],
            ..Counters::default()
        }
    }

    /// Checks the node-only constraints (drivers and attribute constraints), cached per node.
    /// Returns the index of the failing reason.
    pub fn static_check(&mut self, pos: u32, node: &Node) -> Result<(), usize> {
        let slot = &mut self.cache[pos as usize];
        if *slot == CACHE_UNKNOWN {
            let failed = if !self.driver.feasible(node) {
                Some(REASON_DRIVER)
            } else {
                self.constraints
                    .iter()
                    .position(|c| !c.feasible(node))
                    .map(|i| i + 1)
            };
            *slot = match failed {
                Some(reason) => reason as u16 + 2,
                None => CACHE_FEASIBLE,
            };
        }
        match *slot {
            CACHE_FEASIBLE => Ok(()),
            reason => Err(usize::from(reason - 2)),
        }
    }

    /// Runs the whole chain on one node: feasibility, plan-aware checks, resources, ports,
    /// then ranking. Records why a node was rejected. Returns the normalised score.
    ///
    /// With preemption enabled, a node short of resources may still be chosen by evicting
    /// lower-priority allocations; `commit` then records those evictions.
    pub fn evaluate(
        &mut self,
        pos: u32,
        table: &mut NodeTable<'a>,
        view: &'a dyn StateView,
        job: &Job,
        penalty_node: Option<&str>,
        counters: &mut Counters,
    ) -> Option<f64> {
        self.evaluate_with(pos, table, view, job, penalty_node, counters, self.preempt)
    }

    #[allow(clippy::too_many_arguments)]
    fn evaluate_with(
        &mut self,
        pos: u32,
        table: &mut NodeTable<'a>,
        view: &'a dyn StateView,
        job: &Job,
        penalty_node: Option<&str>,
        counters: &mut Counters,
        preempt: bool,
    ) -> Option<f64> {
        self.evictions.remove(&pos);
        counters.evaluated += 1;
        let node = table.nodes[pos as usize];
        if let Err(reason) = self.static_check(pos, node) {
            counters.filtered += 1;
            counters.filtered_by[reason] += 1;
            return None;
        }
        table.state(pos, view, job);
        let group_allocs = table.group_allocs(pos, self.tg_idx);
        let state = table.state(pos, view, job);
        if let Some(hosts) = &self.hosts {
            if !hosts.feasible(state.job_allocs, group_allocs) {
                counters.filtered += 1;
                counters.filtered_by[self.constraints.len() + 1] += 1;
                return None;
            }
        }
        let base = self.constraints.len() + 2;
        if let Some(i) = self.properties.iter().position(|p| !p.feasible(node)) {
            counters.filtered += 1;
            counters.filtered_by[base + i] += 1;
            return None;
        }
        let capacity = node.schedulable();
        let used = state.used;
        let ports_fit = self.ports_fit(&state.ports);
        let mut evictions = Vec::new();
        let dimension = match self.ask.exceeds(&capacity.sub(&used)) {
            None if !ports_fit => Some(3),
            None => None,
            Some(exhausted) => {
                let found = if preempt && ports_fit {
                    self.find_evictions(pos, table, view, job, &capacity.sub(&used))
                } else {
                    None
                };
                match (found, exhausted) {
                    (Some(set), _) => {
                        evictions = set;
                        None
                    }
                    (None, DIMENSION_CPU) => Some(0),
                    (None, DIMENSION_MEMORY) => Some(1),
                    (None, _) => Some(2),
                }
            }
        };
        if let Some(d) = dimension {
            counters.exhausted += 1;
            counters.dimensions[d] += 1;
            return None;
        }
        let freed = evictions
            .iter()
            .fold(Resources::default(), |sum, c| sum.add(&c.alloc.resources));
        let used_after = used.sub(&freed).add(&self.ask);
        let mut sheet = ScoreSheet::default();
        sheet.add(fit_score(self.algorithm, &capacity, &used_after));
        sheet.add_opt(preemption_score(evictions.iter().map(|c| c.priority)));
        sheet.add_opt(job_anti_affinity(group_allocs, self.desired_count));
        sheet.add_opt(reschedule_penalty(&node.id, penalty_node));
        if let Some(a) = &self.affinity {
            sheet.add_opt(a.score(node));
        }
        if let Some(s) = &self.spread {
            sheet.add(s.score(node));
        }
        if !evictions.is_empty() {
            self.evictions.insert(pos, evictions);
        }
        Some(sheet.normalized())
    }

    /// Looks for lower-priority allocations on the node whose eviction makes the ask fit
    /// into `free`. Allocations the plan already stops or evicts are not candidates, nor are
    /// allocations whose job the view no longer has (their priority is unknown).
    fn find_evictions(
        &self,
        pos: u32,
        table: &NodeTable<'a>,
        view: &'a dyn StateView,
        job: &Job,
        free: &Resources,
    ) -> Option<Vec<Candidate<'a>>> {
        let node = table.nodes[pos as usize];
        let candidates: Vec<Candidate<'a>> = view
            .allocs_by_node(&node.id)
            .into_iter()
            .filter(|a| !a.is_terminal() && !table.is_stopped(&a.id) && !table.is_preempted(&a.id))
            .filter_map(|a| {
                let other = view.job(&a.namespace, &a.job_id)?;
                Some(Candidate {
                    alloc: a,
                    priority: other.priority,
                })
            })
            .collect();
        select_preemptions(job, &self.ask, free, &candidates).filter(|set| !set.is_empty())
    }

    fn ports_fit(&self, used: &HashSet<u16>) -> bool {
        let mut fixed = HashSet::new();
        for (_, p) in &self.ports.fixed {
            if used.contains(p) || !fixed.insert(*p) {
                return false;
            }
        }
        let range = usize::from(DYNAMIC_PORT_MAX - DYNAMIC_PORT_MIN) + 1;
        let taken = used
            .iter()
            .filter(|p| (DYNAMIC_PORT_MIN..=DYNAMIC_PORT_MAX).contains(p));
        // Counting is only needed when the node is nearly full of ports; skip it otherwise.
        self.ports.dynamic.is_empty()
            || used.len() + self.ports.dynamic.len() < range
            || taken.count() + self.ports.dynamic.len() <= range
    }

    /// Picks the best node with the cyclic limit walk. Returns its position and score.
    ///
    /// When no node fits and preemption is enabled, walks again letting nodes evict
    /// lower-priority allocations; the counters then describe that second walk, so nodes
    /// that could not be used even with evictions are the ones counted as exhausted.
    pub fn select(
        &mut self,
        table: &mut NodeTable<'a>,
        view: &'a dyn StateView,
        job: &Job,
        penalty_node: Option<&str>,
        counters: &mut Counters,
    ) -> Option<(u32, f64)> {
        self.evictions.clear();
        let best = self.walk(table, view, job, penalty_node, counters, false);
        if best.is_some() || !self.preempt {
            return best;
        }
        *counters = self.counters();
        self.walk(table, view, job, penalty_node, counters, true)
    }

    fn walk(
        &mut self,
        table: &mut NodeTable<'a>,
        view: &'a dyn StateView,
        job: &Job,
        penalty_node: Option<&str>,
        counters: &mut Counters,
        preempt: bool,
    ) -> Option<(u32, f64)> {
        // The walk calls back into `self`; take the selector out for its duration.
        let mut selector = std::mem::take(&mut self.selector);
        let (best, _) = selector.select(|pos| {
            self.evaluate_with(pos, table, view, job, penalty_node, counters, preempt)
        });
        self.selector = selector;
        best
    }

    /// Records a placement on the node at `pos`, chosen by the last `select` or `evaluate`,
    /// and returns the ports it was given and the allocations it evicts.
    pub fn commit(
        &mut self,
        pos: u32,
        table: &mut NodeTable<'a>,
        view: &dyn StateView,
        job: &Job,
        rng: &mut impl Rng,
    ) -> Committed<'a> {
        let node = table.nodes[pos as usize];
        let preempted = self.evictions.remove(&pos).unwrap_or_default();
        self.evictions.clear();
        table.evict(pos, &preempted, view, job);
        table.add_group_alloc(pos, self.tg_idx);
        let state = table.state(pos, view, job);
        debug_assert!(
            self.ask
                .exceeds(&node.schedulable().sub(&state.used))
                .is_none(),
            "placement on node {} does not fit",
            node.id
        );
        state.used = state.used.add(&self.ask);
        state.job_allocs += 1;

        let mut assigned = Vec::with_capacity(self.ports.fixed.len() + self.ports.dynamic.len());
        for (label, p) in &self.ports.fixed {
            state.ports.insert(*p);
            assigned.push((label.clone(), *p));
        }
        for label in &self.ports.dynamic {
            let port = pick_dynamic_port(&state.ports, rng);
            state.ports.insert(port);
            assigned.push((label.clone(), port));
        }
        for p in &mut self.properties {
            p.observe(node, &self.tg.name, true);
        }
        if let Some(s) = &mut self.spread {
            s.observe(node, true);
        }
        Committed {
            ports: assigned,
            preempted,
        }
    }

    /// Tells this group about a placement made by another group of the same job.
    pub fn observe_other(&mut self, node: &Node, tg_name: &str) {
        for p in &mut self.properties {
            p.observe(node, tg_name, true);
        }
    }

    /// Turns counters into an `AllocMetric`.
    pub fn metric(&self, counters: &Counters, table: &NodeTable<'a>) -> AllocMetric {
        let mut metric = AllocMetric {
            nodes_evaluated: saturate(counters.evaluated),
            nodes_filtered: saturate(counters.filtered),
            nodes_in_pool: saturate(table.nodes_in_pool),
            nodes_exhausted: saturate(counters.exhausted),
            ..AllocMetric::default()
        };
        for (dc, n) in &table.available_by_dc {
            metric.set_count(MetricCount::NodesAvailable, dc, *n);
        }
        for (i, n) in counters.filtered_by.iter().enumerate() {
            if *n > 0 {
                metric.set_count(MetricCount::ConstraintFiltered, &self.reasons[i], *n);
            }
        }
        let names = [
            DIMENSION_CPU,
            DIMENSION_MEMORY,
            DIMENSION_DISK,
            DIMENSION_PORTS,
        ];
        for (name, n) in names.iter().zip(counters.dimensions) {
            if n > 0 {
                metric.set_count(MetricCount::DimensionExhausted, name, n);
            }
        }
        metric
    }
}

/// Picks a free port from the dynamic range: random probes first, then a scan. The caller has
/// checked (`ports_fit`) that one is free; the range start is the fallback if none is.
fn pick_dynamic_port(used: &HashSet<u16>, rng: &mut impl Rng) -> u16 {
    for _ in 0..PORT_PROBES_MAX {
        let p = rng.gen_range(DYNAMIC_PORT_MIN..=DYNAMIC_PORT_MAX);
        if !used.contains(&p) {
            return p;
        }
    }
    (DYNAMIC_PORT_MIN..=DYNAMIC_PORT_MAX)
        .find(|p| !used.contains(p))
        .unwrap_or(DYNAMIC_PORT_MIN)
}

/// A node count as the allocation's metrics keep it.
fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
