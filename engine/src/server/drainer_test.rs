//! Tests of the drainer's decision: batches of `max_parallel`, batch jobs at the deadline,
//! system jobs last, forced drains and drains that ignore system jobs.

use sched::structs::{
    Allocation, ClientStatus, DesiredStatus, DrainStrategy, EvalStatus, Job, JobType,
    MigrateStrategy, Node,
};
use sched::testing::{alloc_on, group, job, node};

use super::*;

const NOW: i64 = 1_000_000_000_000;
const SECOND_NS: i64 = 1_000_000_000;

fn drain(deadline_ns: i64, ignore_system_jobs: bool) -> Option<DrainStrategy> {
    Some(DrainStrategy {
        deadline_ns,
        ignore_system_jobs,
        force_deadline_unix_ns: if deadline_ns > 0 {
            NOW + deadline_ns
        } else {
            0
        },
        started_at_unix_ns: NOW,
    })
}

/// Two nodes; `n0` drains with `strategy`.
fn nodes(strategy: Option<DrainStrategy>) -> Vec<Node> {
    let mut drained = node("n0", 10_000, 10_000);
    drained.eligible = false;
    drained.drain = strategy;
    vec![drained, node("n1", 10_000, 10_000)]
}

fn service(id: &str, count: u32, max_parallel: Option<i64>) -> Job {
    let mut tg = group("web", count, 100, 100);
    tg.migrate = max_parallel.map(|max_parallel| MigrateStrategy {
        max_parallel,
        health_check: "checks".into(),
        min_healthy_time_ns: 0,
        healthy_deadline_ns: 0,
    });
    job(id, JobType::Service, vec![tg])
}

fn alloc(id: &str, job: &Job, node: &Node, index: u32) -> Allocation {
    let mut a = alloc_on(id, node, 100, 100);
    a.job_id = job.id.clone().into();
    a.name = format!("{}.web[{index}]", job.id).into();
    a
}

fn state(nodes: &[Node], jobs: &[Job], allocs: &[Allocation]) -> ClusterState {
    let mut s = ClusterState::new(6);
    s.applying = 1;
    for n in nodes {
        s.put_node(n.clone());
    }
    for j in jobs {
        s.put_job(j.clone());
    }
    for a in allocs {
        s.put_alloc(a.clone());
    }
    s.index = 1;
    s
}

fn marked(s: &ClusterState, now: i64) -> Vec<String> {
    drain_round(s, now).migrate
}

/// Four running allocations of `j` on the draining node.
fn four_on_drained(ns: &[Node], j: &Job) -> Vec<Allocation> {
    (0..4)
        .map(|i| alloc(&format!("a{i}"), j, &ns[0], i))
        .collect()
}

#[test]
fn service_groups_move_max_parallel_at_a_time() {
    let ns = nodes(drain(3600 * SECOND_NS, false));
    let j = service("web", 4, None);
    let mut allocs = four_on_drained(&ns, &j);
    let s = state(&ns, std::slice::from_ref(&j), &allocs);
    assert_eq!(marked(&s, NOW), vec!["a0"], "the default max_parallel is 1");

    // Marked but not yet replaced: nothing more moves.
    allocs[0].desired_transition.migrate = true;
    assert!(marked(&state(&ns, std::slice::from_ref(&j), &allocs), NOW).is_empty());

    // The scheduler stopped it and placed a replacement that is still pending.
    allocs[0].desired_status = DesiredStatus::Stop;
    let mut replacement = alloc("b0", &j, &ns[1], 0);
    replacement.client_status = ClientStatus::Pending;
    allocs.push(replacement);
    assert!(marked(&state(&ns, std::slice::from_ref(&j), &allocs), NOW).is_empty());

    // Once the replacement runs, the next one goes.
    allocs[4].client_status = ClientStatus::Running;
    assert_eq!(
        marked(&state(&ns, std::slice::from_ref(&j), &allocs), NOW),
        vec!["a1"]
    );

    // With max_parallel 2, two go at once.
    let j2 = service("wide", 4, Some(2));
    let allocs2 = four_on_drained(&ns, &j2);
    assert_eq!(marked(&state(&ns, &[j2], &allocs2), NOW), vec!["a0", "a1"]);
}

#[test]
fn an_unhealthy_group_waits_below_its_threshold() {
    let ns = nodes(drain(0, false));
    let j = service("web", 4, None);
    let mut allocs = four_on_drained(&ns, &j);
    // One allocation is still starting: 3 healthy, threshold 3, so nothing moves.
    allocs[3].client_status = ClientStatus::Pending;
    assert!(marked(&state(&ns, &[j], &allocs), NOW).is_empty());
}

#[test]
fn batch_allocations_move_only_at_the_deadline() {
    let ns = nodes(drain(10 * SECOND_NS, false));
    let j = job("batch", JobType::Batch, vec![group("web", 1, 100, 100)]);
    let allocs = vec![alloc("b", &j, &ns[0], 0)];
    let s = state(&ns, std::slice::from_ref(&j), &allocs);
    assert!(marked(&s, NOW).is_empty());
    assert!(marked(&s, NOW + 10 * SECOND_NS - 1).is_empty());
    assert_eq!(marked(&s, NOW + 10 * SECOND_NS), vec!["b"]);

    // Without a deadline it is left to finish, however long that takes.
    let ns = nodes(drain(0, false));
    let s = state(&ns, &[j], &allocs);
    assert!(marked(&s, NOW + 1_000_000 * SECOND_NS).is_empty());
}

#[test]
fn system_allocations_move_after_everything_else_on_the_node() {
    let ns = nodes(drain(0, false));
    let web = service("web", 1, None);
    let sys = job("sys", JobType::System, vec![group("web", 1, 100, 100)]);
    let batch = job("batch", JobType::SysBatch, vec![group("web", 1, 100, 100)]);
    let mut allocs = vec![
        alloc("w", &web, &ns[0], 0),
        alloc("s", &sys, &ns[0], 0),
        alloc("sb", &batch, &ns[0], 0),
        alloc("s1", &sys, &ns[1], 0),
    ];
    let jobs = [web.clone(), sys.clone(), batch];
    assert_eq!(marked(&state(&ns, &jobs, &allocs), NOW), vec!["w"]);

    // Marked but still running: the system allocations keep waiting.
    allocs[0].desired_transition.migrate = true;
    assert!(marked(&state(&ns, &jobs, &allocs), NOW).is_empty());

    // Once it stopped, the system and sysbatch allocations of the node go; never the one
    // on the other node.
    allocs[0].desired_status = DesiredStatus::Stop;
    let round = drain_round(&state(&ns, &jobs, &allocs), NOW);
    assert_eq!(round.migrate, vec!["s", "sb"]);
    assert_eq!(round.jobs.len(), 2);
}

#[test]
fn a_forced_drain_marks_everything_at_once() {
    let ns = nodes(drain(-1, false));
    let web = service("web", 4, None);
    let sys = job("sys", JobType::System, vec![group("web", 1, 100, 100)]);
    let batch = job("batch", JobType::Batch, vec![group("web", 1, 100, 100)]);
    let mut allocs = four_on_drained(&ns, &web);
    allocs[1].desired_transition.migrate = true;
    allocs[2].client_status = ClientStatus::Complete;
    allocs.push(alloc("s", &sys, &ns[0], 0));
    allocs.push(alloc("b", &batch, &ns[0], 0));
    let s = state(&ns, &[web, sys, batch], &allocs);
    let mut got = marked(&s, NOW);
    got.sort();
    // Already marked (a1) and finished (a2) allocations are not marked again.
    assert_eq!(got, vec!["a0", "a3", "b", "s"]);

    // A deadline that passed forces the drain the same way, whatever max_parallel says.
    let ns = nodes(drain(SECOND_NS, false));
    let web = service("web", 4, None);
    let s = state(&ns, std::slice::from_ref(&web), &four_on_drained(&ns, &web));
    assert_eq!(marked(&s, NOW), vec!["a0"]);
    assert_eq!(marked(&s, NOW + SECOND_NS), vec!["a0", "a1", "a2", "a3"]);
}

#[test]
fn ignore_system_jobs_never_marks_system_allocations() {
    let web = service("web", 1, None);
    let sys = job("sys", JobType::System, vec![group("web", 1, 100, 100)]);
    for strategy in [drain(0, true), drain(-1, true)] {
        let ns = nodes(strategy);
        let allocs = vec![alloc("s", &sys, &ns[0], 0)];
        let s = state(&ns, &[web.clone(), sys.clone()], &allocs);
        assert!(marked(&s, NOW).is_empty());
    }
}

#[test]
fn round_command_marks_and_creates_one_eval_per_job() {
    let ns = nodes(drain(-1, false));
    let web = service("web", 2, None);
    let allocs = vec![alloc("a0", &web, &ns[0], 0), alloc("a1", &web, &ns[0], 1)];
    let s = state(&ns, &[web], &allocs);
    let round = drain_round(&s, NOW);
    let Command::UpdateAllocDesiredTransition { transitions, evals } = round_command(&s, &round)
    else {
        panic!("wrong command");
    };
    assert_eq!(transitions.len(), 2);
    assert!(transitions.iter().all(|(_, t)| t.migrate));
    assert_eq!(evals.len(), 1);
    assert_eq!(evals[0].triggered_by, triggers::NODE_DRAIN);
    assert_eq!(evals[0].status, EvalStatus::Pending);
    assert_eq!(evals[0].job_id, "web");
}

#[test]
fn applied_marks_are_not_chosen_again() {
    let ns = nodes(drain(-1, false));
    let web = service("web", 2, None);
    let allocs = vec![alloc("a0", &web, &ns[0], 0), alloc("a1", &web, &ns[0], 1)];
    let mut s = state(&ns, &[web], &allocs);
    let round = drain_round(&s, NOW);
    let mut command = round_command(&s, &round);
    // An allocation collected after the leader looked is skipped.
    if let Command::UpdateAllocDesiredTransition { transitions, .. } = &mut command {
        transitions.push(("gone".into(), Default::default()));
    }
    let envelope = crate::state::CommandEnvelope {
        now_unix_ns: NOW,
        commands: vec![command],
    };
    let mut effects = crate::state::ApplyEffects::default();
    s.apply(2, envelope, &mut effects);
    assert_eq!(effects.pending_evals.len(), 1);
    for id in ["a0", "a1"] {
        let a = s.alloc_by_id(id).expect("allocation");
        assert!(a.desired_transition.migrate, "{id} marked");
        assert_eq!(a.alloc_modify_index, 2);
        assert_eq!(a.modify_index, 2);
        assert_eq!(
            a.desired_status,
            DesiredStatus::Run,
            "marking stops nothing"
        );
    }
    assert!(drain_round(&s, NOW).is_empty());
}

#[test]
fn a_drain_ends_when_its_last_batch_allocation_finishes_by_itself() {
    let ns = nodes(drain(0, false));
    let j = job("batch", JobType::Batch, vec![group("web", 1, 100, 100)]);
    let mut s = state(&ns, std::slice::from_ref(&j), &[alloc("b", &j, &ns[0], 0)]);
    assert!(
        drain_round(&s, NOW).is_empty(),
        "batch work is left to finish"
    );
    let envelope = crate::state::CommandEnvelope {
        now_unix_ns: NOW,
        commands: vec![Command::UpdateAllocsFromClient {
            updates: vec![crate::client_proto::AllocUpdate {
                alloc_id: "b".into(),
                node_id: "n0".into(),
                client_status: ClientStatus::Complete,
                client_description: String::new(),
                task_states: Default::default(),
            }],
            evals: Vec::new(),
        }],
    };
    s.apply(2, envelope, &mut crate::state::ApplyEffects::default());
    let node = s.node_by_id("n0").expect("node");
    assert!(node.drain.is_none(), "the drain did not end");
    assert!(!node.eligible, "a drained node stays ineligible");
    assert_eq!(node.events.last().unwrap().message, "Node drain complete");
}
