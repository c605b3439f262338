//! Memory per allocation in the replicated state, at the C1M shape.
//!
//! Places `-jobs` jobs of 1,000 allocations each (50 MHz / 32 MiB) on 5,000 nodes of
//! 16,000 MHz / 32 GiB with the real scheduler, inserts every placement into a
//! `ClusterState` as plan application does, marks each running as a client update does, and
//! prints the heap bytes and RSS per allocation the state holds, and the scheduler's time per
//! placement over the run (the state grows as it goes, as in the C1M scenario). No server, no Raft: this is
//! the part of a server's memory that grows with allocations.
//!
//!     cargo run --release -p bench --example state_memory -- 200
//!
//! `TASK_STATES=1` has each client update also report one task's state, as a client that
//! runs tasks does (the load generator's simulated clients report none).
//!
//! `BREAKDOWN=1` also prints where the bytes go, per allocation: the record's own block and
//! its strings and lists, then each index, measured by dropping it.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

use std::sync::Arc;

use engine::state::ClusterState;
use sched::structs::{Allocation, ClientStatus, CompactString, IdString, JobType, TaskState};
use sched::testing::{eval_for, group, job, node};
use sched::{process, SchedEnv, SchedulerConfig, StateView};

/// Counts live heap bytes as the allocator rounds them (its usable size).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static INNER: tools::allocator::Mimalloc = tools::allocator::Mimalloc;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = INNER.alloc(layout);
        if !p.is_null() {
            LIVE.fetch_add(libmimalloc_sys::mi_usable_size(p.cast()), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(
            libmimalloc_sys::mi_usable_size(ptr.cast()),
            Ordering::Relaxed,
        );
        INNER.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The allocator's size of the block at `p`.
fn usable(p: *const u8) -> usize {
    // SAFETY: every caller passes the start of a live block from the global allocator.
    unsafe { libmimalloc_sys::mi_usable_size(p.cast()) }
}

/// Prints the heap bytes per allocation of each part of the records, then of each index
/// (the live heap it frees when dropped). Leaves the state empty.
fn breakdown(state: &mut ClusterState) {
    let n = state.allocs.len().max(1) as f64;
    // A `CompactString` holds up to 24 bytes inside the record: no block of its own.
    let short = |s: &CompactString| {
        if s.is_heap_allocated() {
            usable(s.as_ptr())
        } else {
            0
        }
    };
    let mut parts: Vec<(&str, usize)> = Vec::new();
    let mut add =
        |part: &'static str, bytes: usize| match parts.iter_mut().find(|(p, _)| *p == part) {
            Some(entry) => entry.1 += bytes,
            None => parts.push((part, bytes)),
        };
    let mut seen = std::collections::HashSet::new();
    for a in state.allocs.values() {
        // An `Arc`'s block starts with its two counts, 16 bytes before the record.
        add(
            "record and its Arc counts",
            usable(Arc::as_ptr(a).cast::<u8>().wrapping_sub(16)),
        );
        // An `IdString` of at most 38 bytes (every UUID) is held inside the record.
        let id = match &a.id {
            IdString::Boxed(b) => usable(b.as_ptr()),
            IdString::Inline { .. } => 0,
        };
        add("id", id);
        // Node, evaluation and job ids and node names are shared between records: each
        // copy counts once.
        for (part, shared) in [
            ("eval_id (shared)", &a.eval_id),
            ("node_id (shared)", &a.node_id),
            ("job_id (shared)", &a.job_id),
            ("node_name (shared)", &a.node_name),
        ] {
            let block = Arc::as_ptr(shared).cast::<u8>().wrapping_sub(16);
            add(part, if seen.insert(block) { usable(block) } else { 0 });
        }
        add("name", short(&a.name));
        add("client_description", short(&a.client_description));
        add(
            "namespace, task_group",
            short(&a.namespace) + short(&a.task_group),
        );
        let counts = &a.metrics.counts;
        let list = if counts.capacity() > 0 {
            usable(counts.as_ptr().cast())
        } else {
            0
        };
        add(
            "metrics.counts",
            list + counts.iter().map(|e| short(&e.key)).sum::<usize>(),
        );
    }
    eprintln!("heap bytes per allocation:");
    for (part, bytes) in &parts {
        eprintln!("  {part}: {:.1}", *bytes as f64 / n);
    }
    fn dropped(state: &mut ClusterState, n: f64, what: &str, drop_it: fn(&mut ClusterState)) {
        let before = LIVE.load(Ordering::Relaxed) as f64;
        drop_it(state);
        eprintln!(
            "  {what}: {:.1}",
            (before - LIVE.load(Ordering::Relaxed) as f64) / n
        );
    }
    dropped(state, n, "index by job", |s| {
        s.allocs_by_job = Default::default()
    });
    dropped(state, n, "index by node", |s| {
        s.allocs_by_node = Default::default()
    });
    // The records are held apart while the map is dropped, to tell the two apart.
    let records: Vec<Arc<Allocation>> = state.allocs.values().cloned().collect();
    dropped(state, n, "map by id (keys and tree nodes)", |s| {
        s.allocs = Default::default()
    });
    let before = LIVE.load(Ordering::Relaxed) as f64;
    drop(records);
    eprintln!(
        "  records, all parts: {:.1}",
        (before - LIVE.load(Ordering::Relaxed) as f64) / n
    );
}

fn uuid_like(i: u64) -> String {
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5bd1_e995;
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        (h >> 32) as u32,
        (h >> 16) as u16,
        (h >> 4) as u16 & 0xfff,
        i as u16 & 0xfff,
        i & 0xffff_ffff_ffff
    )
}

fn main() {
    let jobs: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("jobs is a number"))
        .unwrap_or(100);
    let with_task_states = std::env::var_os("TASK_STATES").is_some();
    let nodes: Vec<_> = (0..5_000u64)
        .map(|i| {
            let mut n = node(&uuid_like(i), 16_000, 32_768);
            n.name = format!("sim-{i:05}");
            n
        })
        .collect();
    let mut state = ClusterState::new(6);
    for n in nodes {
        state.put_node(n);
    }
    state.index = 1;
    let (heap0, rss0) = (LIVE.load(Ordering::Relaxed), rss_bytes());
    let mut placed = 0u64;
    let mut sched_time = std::time::Duration::ZERO;
    let mut index = 10u64;
    for j in 0..jobs {
        let id = format!("c1m-{j:04}");
        index += 1;
        state.applying = index;
        state.put_job(job(&id, JobType::Service, vec![group("web", 1000, 50, 32)]));
        let eval = eval_for(
            state.job("default", &id).expect("job"),
            &uuid_like(1 << 40 | j),
        );
        let mut env = SchedEnv::for_eval(&eval.id, 0, SchedulerConfig::default());
        let t = std::time::Instant::now();
        let out = process(&state, &eval, &mut env).expect("schedules");
        sched_time += t.elapsed();
        index += 1;
        state.applying = index;
        for allocs in out.plan.node_allocation.values() {
            for a in allocs {
                let mut a = a.clone();
                a.create_index = index;
                a.modify_index = index;
                a.alloc_modify_index = index;
                state.put_alloc(a);
                placed += 1;
            }
        }
        // The client's update: running, as the simulated nodes report it.
        index += 1;
        state.applying = index;
        for allocs in out.plan.node_allocation.values() {
            for a in allocs {
                let mut a = (**state.alloc_by_id(&a.id).expect("placed")).clone();
                a.client_status = ClientStatus::Running;
                if with_task_states {
                    a.task_states.insert(
                        "web",
                        TaskState {
                            state: "running".into(),
                            failed: false,
                            restarts: 0,
                            started_at_unix_ns: index as i64,
                            finished_at_unix_ns: 0,
                        },
                    );
                }
                a.client_description = "Tasks are running".into();
                a.modify_index = index;
                state.put_alloc(a);
            }
        }
    }
    let (heap1, rss1) = (LIVE.load(Ordering::Relaxed), rss_bytes());
    let size = std::mem::size_of::<sched::structs::Allocation>();
    if std::env::var_os("BREAKDOWN").is_some() {
        breakdown(&mut state);
    }
    if std::env::var_os("RESTORE").is_some() {
        eprintln!("placed {placed}; snapshot path:");
        // The whole snapshot path as a server runs it: image, encode, write (with fsync) to
        // a directory under the system's temporary directory, read back, decode, rebuild.
        let dir = std::env::temp_dir().join(format!("drover-state-memory-{}", std::process::id()));
        let store = storage::SnapshotStore::open(&dir).expect("snapshot dir");
        let t = std::time::Instant::now();
        let image = engine::raft::state_machine::image_from_state(&state);
        let imaged = t.elapsed();
        let meta = storage::SnapshotMeta {
            last_index: index,
            last_term: 1,
            snapshot_id: "state-memory".into(),
            membership: Vec::new(),
        };
        let t = std::time::Instant::now();
        store.write(&meta, &image).expect("snapshot written");
        let written = t.elapsed();
        drop(image);
        let t = std::time::Instant::now();
        let (_, image) = store.latest().expect("snapshot read").expect("a snapshot");
        let read = t.elapsed();
        let t = std::time::Instant::now();
        let back = engine::raft::state_machine::state_from_image(image, 6);
        eprintln!(
            "image {imaged:?} encode+write {written:?} read+decode {read:?} rebuild {:?} ({} allocs)",
            t.elapsed(),
            back.allocs.len()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!(
        "{{\"allocations\":{placed},\"heap_bytes_per_alloc\":{},\"rss_bytes_per_alloc\":{},\"size_of_allocation\":{size},\"scheduler_us_per_placement\":{:.2}}}",
        (heap1 - heap0) as u64 / placed.max(1),
        (rss1.saturating_sub(rss0)) as u64 / placed.max(1),
        sched_time.as_secs_f64() * 1e6 / placed.max(1) as f64,
    );
}
