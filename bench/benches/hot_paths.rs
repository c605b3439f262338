//! Hot-path benchmarks on the server: heartbeat bookkeeping, plan verification, FSM apply of
//! a plan batch and of a batch of client status updates, client-protocol frame encode/decode,
//! and `GET /v1/jobs` serialization.
//!
//! States are built through `ClusterState::apply`, the same path Raft entries take.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use engine::api::ReadView;
use engine::client_proto::{AllocUpdate, ClientEnvelope, ClientRequest, ClientResponse};
use engine::server::heartbeat::HeartbeatTable;
use engine::server::plan_apply::{verify_plan, PendingUsage};
use engine::state::{ApplyEffects, ClusterState, Command, CommandEnvelope, PlanApply};
use net::rpc::{decode_body, frame_bytes};
use sched::structs::{Allocation, ClientStatus, Plan, Resources};

#[path = "../../storage/tests/common/mod.rs"]
mod common;

const NOW_UNIX_NS: i64 = 1_700_000_000_000_000_000;

fn resources(cpu_mhz: u64, memory_mb: u64) -> Resources {
    Resources {
        cpu_mhz,
        memory_mb,
        memory_max_mb: 0,
        disk_mb: 0,
    }
}

/// Applies `commands` as one entry at the next index.
fn apply(state: &mut ClusterState, commands: Vec<Command>) {
    let index = state.index + 1;
    let envelope = CommandEnvelope {
        now_unix_ns: NOW_UNIX_NS,
        commands,
    };
    state.apply(index, envelope, &mut ApplyEffects::default());
}

/// The id of allocation `i`: a version 7 UUID, as the scheduler makes, ordered by `i` as
/// allocations made one after another are.
fn alloc_id(i: usize) -> String {
    format!("{:08x}-{:04x}-7000-8000-{:012x}", i >> 16, i & 0xffff, i)
}

/// The id of node `n`: a UUID, as clients register with.
fn node_id(n: usize) -> String {
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        n.wrapping_mul(2_654_435_761) as u32,
        n
    )
}

/// An allocation of job `job-<j>` on node `n`, with no ports (so any number fit a node).
fn alloc(i: usize, job: usize, node: usize) -> Allocation {
    let mut a = common::alloc(i, 1);
    a.id = alloc_id(i).into();
    // The version `cluster` registers each job at.
    a.job_version = 0;
    a.job_id = format!("job-{job}").into();
    a.name = format!("job-{job}.web[{i}]").into();
    a.node_id = node_id(node).into();
    a.resources = resources(50, 32);
    a.ports.clear();
    a
}

/// `nodes` nodes, `jobs` jobs and `allocs` running allocations spread over both.
fn cluster(nodes: usize, jobs: usize, allocs: usize) -> ClusterState {
    let mut state = ClusterState::new(6);
    let mut commands: Vec<Command> = (0..nodes)
        .map(|i| {
            let mut node = common::node(i);
            node.id = node_id(i);
            node.resources = resources(16_000, 32_768);
            Command::UpsertNode {
                node,
                evals: Vec::new(),
            }
        })
        .collect();
    commands.extend((0..jobs).map(|j| Command::RegisterJob {
        job: common::job(&format!("job-{j}"), 0),
        eval: None,
        enforce_index: None,
    }));
    apply(&mut state, commands);
    for chunk in (0..allocs).collect::<Vec<_>>().chunks(10_000) {
        let placements = chunk
            .iter()
            .map(|&i| alloc(i, i % jobs.max(1), i % nodes.max(1)))
            .collect();
        apply(
            &mut state,
            vec![Command::ApplyPlans {
                plans: vec![PlanApply {
                    eval_id: "eval-setup".into(),
                    updates: Vec::new(),
                    placements,
                }],
                evals: Vec::new(),
            }],
        );
    }
    state
}

/// A plan placing `count` new allocations of job-0, one per node round-robin.
fn plan(nodes: usize, count: usize, first_id: usize) -> Plan {
    let mut plan = Plan {
        eval_id: "eval-bench".into(),
        job_id: "job-0".into(),
        namespace: "default".into(),
        ..Plan::default()
    };
    for k in 0..count {
        let a = alloc(first_id + k, 0, k % nodes);
        plan.node_allocation
            .entry(a.node_id.to_string())
            .or_default()
            .push(a);
    }
    plan
}

fn heartbeat(c: &mut Criterion) {
    let mut group = c.benchmark_group("heartbeat");
    for nodes in [10_000usize, 50_000] {
        let ids: Vec<String> = (0..nodes).map(|i| format!("node-{i:06}")).collect();
        let mut table = HeartbeatTable::default();
        let start = Instant::now();
        for (i, id) in ids.iter().enumerate() {
            table.reset(id, start + Duration::from_millis(10_000 + i as u64));
        }
        let mut k = 0usize;
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("reset deadline", nodes), |b| {
            b.iter(|| {
                k = (k + 7919) % nodes;
                table.reset(&ids[k], start + Duration::from_millis(20_000 + k as u64));
            })
        });
        group.bench_function(BenchmarkId::new("expire scan, none due", nodes), |b| {
            b.iter(|| table.expire(start))
        });
    }
    group.finish();
}

fn plan_verification(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan verify");
    group.sample_size(20);
    for (nodes, allocs) in [(1_000usize, 10_000usize), (5_000, 100_000)] {
        let state = cluster(nodes, 100, allocs);
        for count in [1usize, 1_000] {
            let p = plan(nodes, count, allocs + 1);
            group.throughput(Throughput::Elements(count as u64));
            group.bench_function(
                BenchmarkId::new(format!("{count} placements"), format!("{nodes} nodes")),
                |b| {
                    b.iter_batched(
                        || p.clone(),
                        |p| verify_plan(&state, p, &PendingUsage::default()),
                        BatchSize::LargeInput,
                    )
                },
            );
        }
    }
    group.finish();
}

/// Times applying `command` (`count` items) as one entry to a fresh clone of `state`: the
/// clone shares every map with `state`, as the state being applied to shares them with the
/// shards' read view, so the apply pays for the copies it makes.
fn bench_apply(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    count: usize,
    state: &ClusterState,
    command: &Command,
) {
    group.throughput(Throughput::Elements(count as u64));
    group.bench_function(BenchmarkId::new(name, count), |b| {
        b.iter_batched(
            || (state.clone(), command.clone()),
            |(mut s, command)| {
                apply(&mut s, vec![command]);
                s
            },
            BatchSize::LargeInput,
        )
    });
}

fn fsm_apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("fsm apply plan batch");
    group.sample_size(20);
    let nodes = 5_000;
    let allocs = 100_000;
    let state = cluster(nodes, 100, allocs);
    for count in [100usize, 1_000, 10_000] {
        let p = plan(nodes, count, allocs + 1);
        let verdict = verify_plan(&state, p, &PendingUsage::default());
        assert!(verdict.rejected_nodes.is_empty(), "the bench plan fits");
        let command = Command::ApplyPlans {
            plans: vec![verdict.accepted],
            evals: Vec::new(),
        };
        bench_apply(
            &mut group,
            "placements on 100k allocations",
            count,
            &state,
            &command,
        );
    }
    group.finish();
}

fn fsm_client_updates(c: &mut Criterion) {
    let mut group = c.benchmark_group("fsm apply client updates");
    group.sample_size(20);
    let nodes = 5_000;
    let allocs = 100_000;
    let state = cluster(nodes, 100, allocs);
    for count in [1_000usize, 10_000] {
        // Clients report the newest allocations running, as after a burst of placements.
        let updates = (allocs - count..allocs)
            .map(|i| {
                let a = alloc(i, i % 100, i % nodes);
                AllocUpdate {
                    alloc_id: a.id.to_string(),
                    node_id: a.node_id.to_string(),
                    client_status: ClientStatus::Running,
                    client_description: "Tasks are running".into(),
                    task_states: Vec::new(),
                }
            })
            .collect();
        let command = Command::UpdateAllocsFromClient {
            updates,
            evals: Vec::new(),
        };
        bench_apply(
            &mut group,
            "running on 100k allocations",
            count,
            &state,
            &command,
        );
    }
    group.finish();
}

fn frames(c: &mut Criterion) {
    let mut group = c.benchmark_group("client frame");
    let beat = ClientEnvelope::Request {
        seq: 7,
        body: ClientRequest::Heartbeat {
            node_id: "0b6f5c1e-3d0a-4c55-9a57-5b7c4e2f9d11".into(),
            secret_id: "9f4d3b2a-1c0e-4f8d-a7b6-c5d4e3f2a1b0".into(),
        },
    };
    for (name, envelope) in [
        ("heartbeat request", beat),
        (
            "allocs response, 100 allocations",
            ClientEnvelope::Response {
                seq: 8,
                body: ClientResponse::Allocs {
                    index: 42,
                    allocs: (0..100).map(|i| alloc(i, 0, 0)).collect(),
                },
            },
        ),
    ] {
        let bytes = frame_bytes(&envelope).expect("encode");
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(BenchmarkId::new("encode", name), |b| {
            b.iter(|| frame_bytes(&envelope).expect("encode"))
        });
        // The frame is a 4-byte length prefix and the body.
        let body = &bytes[4..];
        group.bench_function(BenchmarkId::new("decode", name), |b| {
            b.iter(|| decode_body(body).expect("decode"))
        });
    }
    group.finish();
}

fn job_list(c: &mut Criterion) {
    let mut group = c.benchmark_group("GET /v1/jobs serialization");
    group.sample_size(20);
    for jobs in [1_000usize, 10_000] {
        let state = cluster(100, jobs, jobs * 3);
        group.throughput(Throughput::Elements(jobs as u64));
        group.bench_function(BenchmarkId::new("stubs with summaries", jobs), |b| {
            b.iter(|| {
                let list = state.job_summaries(&|_| true);
                let stubs: Vec<_> = list
                    .iter()
                    .map(|(j, s)| net::http::encode::job_list_stub_typed(j, Some(s), false))
                    .collect();
                serde_json::to_vec(&stubs).expect("serialize")
            })
        });
    }
    group.finish();
}

fn unique_ids_are_unique() {
    // The builders above must not collide, or the benches would measure updates, not inserts.
    let ids: HashSet<String> = (0..1_000).map(|i| alloc(i, 0, 0).id.to_string()).collect();
    assert_eq!(ids.len(), 1_000);
}

fn all(c: &mut Criterion) {
    unique_ids_are_unique();
    heartbeat(c);
    plan_verification(c);
    fsm_apply(c);
    fsm_client_updates(c);
    frames(c);
    job_list(c);
}

criterion_group!(benches, all);
criterion_main!(benches);
