//! Allocations: one task group instance bound to one node.

use std::sync::Arc;

use rkyv::{Archive, Deserialize, Serialize};

use super::{AsPlainString, CompactString, IdString, RareString, RareVec, Resources};

/// What the servers want an allocation to do.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DesiredStatus {
    Run,
    Stop,
    Evict,
}

impl DesiredStatus {
    /// Returns Nomad's wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            DesiredStatus::Run => "run",
            DesiredStatus::Stop => "stop",
            DesiredStatus::Evict => "evict",
        }
    }
}

/// What the client reports an allocation is doing.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientStatus {
    Pending,
    Running,
    Complete,
    Failed,
    Lost,
    Unknown,
}

impl ClientStatus {
    /// Returns Nomad's wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ClientStatus::Pending => "pending",
            ClientStatus::Running => "running",
            ClientStatus::Complete => "complete",
            ClientStatus::Failed => "failed",
            ClientStatus::Lost => "lost",
            ClientStatus::Unknown => "unknown",
        }
    }

    /// Parses Nomad's wire name.
    pub fn parse(s: &str) -> Option<ClientStatus> {
        match s {
            "pending" => Some(ClientStatus::Pending),
            "running" => Some(ClientStatus::Running),
            "complete" => Some(ClientStatus::Complete),
            "failed" => Some(ClientStatus::Failed),
            "lost" => Some(ClientStatus::Lost),
            "unknown" => Some(ClientStatus::Unknown),
            _ => None,
        }
    }

    /// Reports whether the client will never run this allocation again.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            ClientStatus::Complete | ClientStatus::Failed | ClientStatus::Lost
        )
    }
}

/// The state of one task inside an allocation, as reported by the client.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TaskState {
    /// "pending", "running" or "dead".
    pub state: CompactString,
    pub failed: bool,
    pub restarts: u64,
    pub started_at_unix_ns: i64,
    pub finished_at_unix_ns: i64,
}

/// The states of an allocation's tasks, by task name, as its client last reported them.
///
/// A sorted list behind one pointer: none until the client first reports, then one block
/// for all of them. A `BTreeMap` costs 24 bytes in every record and a node of 11 slots (about
/// 900 bytes) for the first task alone.
#[derive(Archive, Serialize, Deserialize, Clone, Default, Debug, PartialEq)]
pub struct TaskStates(RareVec<(CompactString, TaskState)>);

impl TaskStates {
    /// The state of one task.
    pub fn get(&self, task: &str) -> Option<&TaskState> {
        let list = self.0.as_slice();
        list.binary_search_by(|(name, _)| name.as_str().cmp(task))
            .ok()
            .map(|i| &list[i].1)
    }

    /// Sets the state of one task, replacing what it had.
    pub fn insert(&mut self, task: &str, state: TaskState) {
        match self
            .0
            .as_slice()
            .binary_search_by(|(name, _)| name.as_str().cmp(task))
        {
            Ok(i) => self.0.as_mut_slice()[i].1 = state,
            Err(i) => self.0.insert(i, (task.into(), state)),
        }
    }

    /// The tasks and their states, by task name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &TaskState)> {
        self.0.iter().map(|(name, state)| (name.as_str(), state))
    }

    /// The states, by task name.
    pub fn values(&self) -> impl Iterator<Item = &TaskState> {
        self.iter().map(|(_, state)| state)
    }

    /// The task names, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(name, _)| name)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl<S: AsRef<str>> FromIterator<(S, TaskState)> for TaskStates {
    fn from_iter<I: IntoIterator<Item = (S, TaskState)>>(iter: I) -> TaskStates {
        let mut states = TaskStates::default();
        for (task, state) in iter {
            states.insert(task.as_ref(), state);
        }
        states
    }
}

/// What one entry of `AllocMetric::counts` counts, by what key.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricCount {
    /// Ready nodes, by datacenter (Nomad's `NodesAvailable`).
    NodesAvailable,
    /// Nodes filtered, by node class (`ClassFiltered`).
    ClassFiltered,
    /// Nodes filtered, by constraint in Nomad's key format (`ConstraintFiltered`).
    ConstraintFiltered,
    /// Nodes exhausted, by node class (`ClassExhausted`).
    ClassExhausted,
    /// Nodes exhausted, by resource dimension: "cpu", "memory", ... (`DimensionExhausted`).
    DimensionExhausted,
}

/// Scheduler statistics for one placement attempt (Nomad's AllocMetric).
///
/// One is kept in every allocation, so it is laid out for size: Nomad's five maps of
/// counts are one list (`counts`), because a map's smallest node costs ten times a
/// one-entry list, and five empty lists cost 96 bytes more in every allocation than one.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct AllocMetric {
    // Node counts are `u32`: no cluster has four billion nodes, and the four counts fit in
    // the 16 bytes that keep the record within its allocator size class.
    pub nodes_evaluated: u32,
    pub nodes_filtered: u32,
    pub nodes_in_pool: u32,
    pub nodes_exhausted: u32,
    /// The keyed counts, at most one entry per (kind, key); read them with `counts_of`.
    pub counts: Vec<MetricEntry>,
    /// The final normalized score of the node the allocation was placed on; none for a
    /// failed placement. Nomad's `Scores` map is keyed by node id, and the only node scored
    /// here is the allocation's own, so its id is not stored a second time.
    pub score: Option<f64>,
    pub allocation_time_ns: i64,
    pub coalesced_failures: u64,
}

impl AllocMetric {
    /// The counts of one kind, as (key, count), in the order they were added.
    pub fn counts_of(&self, kind: MetricCount) -> impl Iterator<Item = (&str, u64)> {
        self.counts
            .iter()
            .filter(move |e| e.kind == kind)
            .map(|e| (e.key.as_str(), u64::from(e.count)))
    }

    /// The count of one kind under `key`, if any.
    pub fn count(&self, kind: MetricCount, key: &str) -> Option<u64> {
        self.counts_of(kind)
            .find(|(k, _)| *k == key)
            .map(|(_, n)| n)
    }

    /// Sets the count of one kind under `key` (at most `u32::MAX`, see `MetricEntry`).
    pub fn set_count(&mut self, kind: MetricCount, key: &str, n: u64) {
        let count = u32::try_from(n).unwrap_or(u32::MAX);
        match self
            .counts
            .iter_mut()
            .find(|e| e.kind == kind && e.key == key)
        {
            Some(entry) => entry.count = count,
            None => {
                // The list stays short and lives as long as its allocation: room for
                // exactly the entries it has, not the four a first push reserves.
                self.counts.reserve_exact(1);
                self.counts.push(MetricEntry {
                    key: key.into(),
                    count,
                    kind,
                });
            }
        }
    }
}

/// One keyed count of an `AllocMetric`, laid out in 32 bytes: its key (a datacenter, a
/// node class, a resource dimension or a constraint) is held inline up to 24 bytes, and
/// the count, a number of nodes, is a `u32` as the metric's other node counts are. As a
/// `(kind, String, u64)` an entry took 40 bytes and a heap block for its key.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct MetricEntry {
    pub key: CompactString,
    pub count: u32,
    pub kind: MetricCount,
}

/// What the servers want to happen to an allocation next (Nomad's DesiredTransition).
/// Set by the drainer and by `alloc stop`; read by the reconciler.
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DesiredTransition {
    /// Move the allocation off its draining node.
    pub migrate: bool,
    /// Replace the allocation even if its policy would not.
    pub force_reschedule: bool,
}

/// One earlier reschedule in an allocation's line (Nomad's RescheduleEvent).
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RescheduleEvent {
    pub reschedule_time_unix_ns: i64,
    pub prev_alloc_id: String,
    pub prev_node_id: String,
    pub delay_ns: i64,
}

/// A task group instance bound to a node.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Allocation {
    // Short texts are `CompactString`s: 24 bytes like a `String`, but up to 24 bytes of
    // text are held inline instead of in a heap block of their own (about 100 bytes per
    // allocation of the C1M shape). The id, 36 characters, is an `IdString`: held inline
    // in 40 bytes instead of a 48-byte block of its own.
    pub id: IdString,
    pub namespace: CompactString,
    /// Shared: the state keeps one copy per evaluation for all its allocations (an
    /// evaluation places up to thousands at once), instead of a 48-byte block in each.
    #[rkyv(with = AsPlainString)]
    pub eval_id: Arc<str>,
    /// `<job>.<group>[<index>]`.
    pub name: CompactString,
    /// Shared: the state keeps one copy per node for all the allocations on it.
    #[rkyv(with = AsPlainString)]
    pub node_id: Arc<str>,
    /// Shared with `node_id`'s entry, as `node_id` is.
    #[rkyv(with = AsPlainString)]
    pub node_name: Arc<str>,
    /// Shared: the allocations of one plan, stored one after the other, hold one copy.
    #[rkyv(with = AsPlainString)]
    pub job_id: Arc<str>,
    pub job_version: u64,
    pub task_group: CompactString,
    /// Total resources the allocation holds on its node.
    pub resources: Resources,
    /// Host ports assigned to the allocation (label, value).
    pub ports: RareVec<(String, u16)>,
    pub desired_status: DesiredStatus,
    // The fields that are almost always empty (ports of most jobs, the links below, task
    // states until the client reports) are `Rare*`: one pointer each instead of 24 bytes,
    // which keeps the record within 432 bytes (448 with its `Arc` counts, an allocator size
    // class of its own below 512).
    pub desired_description: RareString,
    pub client_status: ClientStatus,
    pub client_description: CompactString,
    pub task_states: TaskStates,
    pub previous_allocation: RareString,
    pub next_allocation: RareString,
    pub followup_eval_id: RareString,
    pub desired_transition: DesiredTransition,
    /// The reschedules that led to this allocation, oldest first.
    pub reschedule_events: RareVec<RescheduleEvent>,
    /// Allocations this one evicted to make room.
    pub preempted_allocations: RareVec<String>,
    /// The allocation that evicted this one.
    pub preempted_by_allocation: RareString,
    pub metrics: AllocMetric,
    pub create_index: u64,
    pub modify_index: u64,
    pub alloc_modify_index: u64,
    pub create_time_ns: i64,
    pub modify_time_ns: i64,
}

/// One copy of each text that many allocations repeat; see `Allocation::share_texts`.
pub type SharedTexts = std::collections::HashSet<Arc<str>>;

impl Allocation {
    /// Points the texts that many allocations repeat (node id and name, evaluation and job
    /// ids) at the copies in `texts`, and adds those it lacks. A record decoded on its own
    /// holds copies of its own; sharing them right after each decode frees each copy before
    /// the next record is decoded, so the copies leave no holes among the records' blocks.
    pub fn share_texts(&mut self, texts: &mut SharedTexts) {
        for field in [
            &mut self.node_id,
            &mut self.node_name,
            &mut self.eval_id,
            &mut self.job_id,
        ] {
            match texts.get(&**field) {
                Some(shared) => {
                    if !Arc::ptr_eq(shared, field) {
                        *field = shared.clone();
                    }
                }
                None => {
                    texts.insert(field.clone());
                }
            }
        }
    }

    /// Parses the index out of `<job>.<group>[<index>]`.
    pub fn index(&self) -> Option<u32> {
        let open = self.name.rfind('[')?;
        self.name[open + 1..self.name.len().checked_sub(1)?]
            .parse()
            .ok()
    }

    /// Reports whether the allocation no longer holds resources on its node:
    /// either the servers stopped it or the client finished with it.
    pub fn is_terminal(&self) -> bool {
        self.desired_status != DesiredStatus::Run || self.client_status.is_terminal()
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn an_allocation_record_fits_the_448_byte_size_class_with_its_arc_counts() {
        // A million of them are the bulk of a large server's memory: 16 bytes of `Arc`
        // counts plus the record must stay within the allocator's 448-byte class.
        assert!(
            std::mem::size_of::<Allocation>() <= 432,
            "{}",
            std::mem::size_of::<Allocation>()
        );
    }

    #[test]
    fn metric_counts_are_32_bytes_each_with_room_for_exactly_their_entries() {
        assert_eq!(std::mem::size_of::<MetricEntry>(), 32);
        let mut m = AllocMetric::default();
        m.set_count(MetricCount::NodesAvailable, "dc1", 5_000);
        assert_eq!(m.counts.capacity(), 1);
        m.set_count(MetricCount::DimensionExhausted, "cpu", 3);
        m.set_count(MetricCount::NodesAvailable, "dc1", 4_999);
        assert_eq!(m.counts.capacity(), 2);
        assert!(m.counts.iter().all(|e| !e.key.is_heap_allocated()));
        assert_eq!(m.count(MetricCount::NodesAvailable, "dc1"), Some(4_999));
        assert_eq!(m.count(MetricCount::DimensionExhausted, "cpu"), Some(3));
        assert_eq!(m.count(MetricCount::DimensionExhausted, "memory"), None);
        m.set_count(MetricCount::ClassFiltered, "gpu", u64::MAX);
        assert_eq!(
            m.counts_of(MetricCount::ClassFiltered).collect::<Vec<_>>(),
            [("gpu", u64::from(u32::MAX))],
            "saturates"
        );
    }

    #[test]
    fn task_states_stay_sorted_by_task_replace_by_name_and_cost_one_pointer_unset() {
        assert_eq!(std::mem::size_of::<TaskStates>(), 8);
        let state = |s: &str, restarts| TaskState {
            state: s.into(),
            failed: false,
            restarts,
            started_at_unix_ns: 0,
            finished_at_unix_ns: 0,
        };
        let mut states = TaskStates::default();
        assert!(states.is_empty());
        states.insert("web", state("pending", 0));
        states.insert("api", state("running", 0));
        states.insert("web", state("running", 1));
        assert_eq!(states.keys().collect::<Vec<_>>(), ["api", "web"]);
        assert_eq!(states.len(), 2);
        assert_eq!(states.get("web").map(|s| s.restarts), Some(1));
        assert_eq!(states.get("web").map(|s| s.state.as_str()), Some("running"));
        assert!(states.get("db").is_none());
        let collected: TaskStates = [("web", state("running", 1)), ("api", state("running", 0))]
            .into_iter()
            .collect();
        assert_eq!(collected, states);
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&states).unwrap();
        let back = rkyv::from_bytes::<TaskStates, rkyv::rancor::Error>(&bytes).unwrap();
        assert_eq!(back, states);
    }

    #[test]
    fn short_texts_are_held_inline_however_they_were_made() {
        let from_string = CompactString::from(String::from("Tasks are running"));
        assert!(
            !from_string.is_heap_allocated(),
            "a String's buffer was kept"
        );
        let from_str = CompactString::from("c1m-0001.web[999]");
        assert!(!from_str.is_heap_allocated());
        let archived = rkyv::to_bytes::<rkyv::rancor::Error>(&from_string).unwrap();
        let back = rkyv::from_bytes::<CompactString, rkyv::rancor::Error>(&archived).unwrap();
        assert_eq!(back, "Tasks are running");
        assert!(!back.is_heap_allocated(), "a decoded text is inline too");
        let long = CompactString::from("x".repeat(25));
        assert!(
            long.is_heap_allocated(),
            "more than 24 bytes go to the heap"
        );
    }
}
