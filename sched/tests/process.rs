//! Scenario tests for `process()`: each builds a fixture and states what the plan must hold.

mod common;

use common::{check, run, Expect, Fixture};
use sched::reconcile::{
    ALLOC_JOB_STOPPED, ALLOC_LOST, ALLOC_MIGRATING, ALLOC_NODE_INFEASIBLE, ALLOC_NOT_NEEDED,
    ALLOC_UPDATING,
};
use sched::structs::{
    Affinity, Allocation, ClientStatus, Constraint, DrainStrategy, JobType, MetricCount,
    NetworkResource, Node, NodeStatus, Port, RescheduleEvent, ReschedulePolicy, Spread,
};
use sched::testing::{alloc_on, group, job, node};

const SECOND_NS: i64 = 1_000_000_000;

fn nodes(n: usize) -> Vec<Node> {
    (0..n).map(|i| node(&format!("n{i}"), 4000, 4000)).collect()
}

fn existing(id: &str, node: &Node, idx: u32) -> Allocation {
    let mut a = alloc_on(id, node, 100, 100);
    a.name = format!("job.web[{idx}]").into();
    a
}

fn constraint(l: &str, op: &str, r: &str) -> Constraint {
    Constraint {
        l_target: l.into(),
        operand: op.into(),
        r_target: r.into(),
    }
}

fn port(label: &str, value: u16) -> Port {
    Port {
        label: label.into(),
        value,
        to: 0,
        host_network: String::new(),
        is_static: value > 0,
    }
}

#[test]
fn places_missing_allocations_with_names_and_metrics() {
    let f = Fixture::new(
        nodes(5),
        job("job", JobType::Service, vec![group("web", 3, 100, 100)]),
    );
    let out = check(
        &f,
        &Expect {
            placed: Some(3),
            names: Some(vec!["job.web[0]", "job.web[1]", "job.web[2]"]),
            queued: Some(vec![("web", 0)]),
            blocked: Some(false),
            ..Expect::default()
        },
    );
    assert_eq!(out.plan.annotations["web"].place, 3);
    let a = out.plan.node_allocation.values().flatten().next().unwrap();
    assert_eq!(a.metrics.nodes_in_pool, 5);
    assert_eq!(a.metrics.count(MetricCount::NodesAvailable, "dc1"), Some(5));
    assert_eq!(a.metrics.counts_of(MetricCount::NodesAvailable).count(), 1);
}

#[test]
fn fills_lowest_free_index_first() {
    let ns = nodes(3);
    let mut f = Fixture::new(
        ns.clone(),
        job("job", JobType::Service, vec![group("web", 3, 100, 100)]),
    );
    f.allocs = vec![existing("a1", &ns[0], 1)];
    check(
        &f,
        &Expect {
            placed: Some(2),
            names: Some(vec!["job.web[0]", "job.web[2]"]),
            ..Expect::default()
        },
    );
}

#[test]
fn constraint_restricts_nodes_and_names_reason() {
    let mut ns = nodes(4);
    ns[2]
        .attributes
        .insert("kernel.name".into(), "windows".into());
    let mut j = job("job", JobType::Service, vec![group("web", 1, 100, 100)]);
    j.constraints
        .push(constraint("${attr.kernel.name}", "=", "windows"));
    check(
        &Fixture::new(ns.clone(), j.clone()),
        &Expect {
            placed: Some(1),
            only_on: Some(vec!["n2"]),
            ..Expect::default()
        },
    );

    j.task_groups[0].count = 2;
    j.task_groups[0].tasks[0].resources.cpu_mhz = 3000;
    check(
        &Fixture::new(ns, j),
        &Expect {
            placed: Some(1),
            queued: Some(vec![("web", 1)]),
            blocked: Some(true),
            failed_filtered: vec![("web", "${attr.kernel.name} = windows", 3)],
            ..Expect::default()
        },
    );
}

#[test]
fn task_level_constraints_and_drivers_apply() {
    let mut ns = nodes(3);
    ns[0].drivers = vec!["exec".into()];
    ns[1].meta.insert("tier".into(), "gold".into());
    ns[2].meta.insert("tier".into(), "silver".into());
    let mut tg = group("web", 1, 100, 100);
    tg.tasks[0]
        .constraints
        .push(constraint("${meta.tier}", "regexp", "^go"));
    check(
        &Fixture::new(ns.clone(), job("job", JobType::Service, vec![tg])),
        &Expect {
            placed: Some(1),
            only_on: Some(vec!["n1"]),
            ..Expect::default()
        },
    );
    let mut tg = group("web", 1, 100, 100);
    tg.tasks[0].driver = "java".into();
    check(
        &Fixture::new(ns, job("job", JobType::Batch, vec![tg])),
        &Expect {
            placed: Some(0),
            failed_filtered: vec![("web", "missing drivers", 3)],
            blocked: Some(true),
            ..Expect::default()
        },
    );
}

#[test]
fn datacenter_globs_and_node_pools() {
    let mut ns = nodes(4);
    ns[0].datacenter = "us-east-1".into();
    ns[1].datacenter = "us-west-1".into();
    ns[2].datacenter = "eu-west-1".into();
    ns[3].node_pool = "gpu".into();
    ns[3].datacenter = "us-east-2".into();
    // Each node fits one allocation only.
    let mut j = job("job", JobType::Service, vec![group("web", 4, 3000, 100)]);
    j.datacenters = vec!["us-*".into()];
    let out = check(
        &Fixture::new(ns.clone(), j.clone()),
        &Expect {
            placed: Some(2),
            only_on: Some(vec!["n0", "n1"]),
            ..Expect::default()
        },
    );
    assert_eq!(out.failed_tg_allocs["web"].nodes_in_pool, 3);
    j.node_pool = "gpu".into();
    check(
        &Fixture::new(ns.clone(), j.clone()),
        &Expect {
            placed: Some(1),
            only_on: Some(vec!["n3"]),
            ..Expect::default()
        },
    );
    j.node_pool = "all".into();
    check(
        &Fixture::new(ns, j),
        &Expect {
            placed: Some(3),
            ..Expect::default()
        },
    );
}

#[test]
fn skips_nodes_not_ready() {
    let mut ns = nodes(4);
    ns[0].status = NodeStatus::Down;
    ns[1].eligible = false;
    ns[2].drain = Some(DrainStrategy {
        deadline_ns: 0,
        ignore_system_jobs: false,
        force_deadline_unix_ns: 0,
        started_at_unix_ns: 0,
    });
    let f = Fixture::new(
        ns,
        job("job", JobType::Service, vec![group("web", 2, 3000, 100)]),
    );
    check(
        &f,
        &Expect {
            placed: Some(1),
            only_on: Some(vec!["n3"]),
            queued: Some(vec![("web", 1)]),
            ..Expect::default()
        },
    );
}

#[test]
fn exhausted_capacity_is_reported_per_dimension() {
    let ns = vec![node("a", 1000, 4000), node("b", 1000, 4000)];
    let f = Fixture::new(
        ns,
        job("job", JobType::Service, vec![group("web", 4, 600, 100)]),
    );
    let out = check(
        &f,
        &Expect {
            placed: Some(2),
            queued: Some(vec![("web", 2)]),
            blocked: Some(true),
            failed_exhausted: vec![("web", "cpu")],
            ..Expect::default()
        },
    );
    let failed = &out.failed_tg_allocs["web"];
    assert_eq!(failed.coalesced_failures, 1);
    assert_eq!(failed.nodes_exhausted, 2);
    assert_eq!(out.blocked_eval.unwrap().queued_allocations["web"], 2);
}

#[test]
fn existing_usage_counts_against_capacity() {
    let ns = vec![node("a", 1000, 1000), node("b", 1000, 1000)];
    let mut other = alloc_on("other", &ns[0], 900, 100);
    other.job_id = "other".into();
    let mut f = Fixture::new(
        ns,
        job("job", JobType::Service, vec![group("web", 1, 500, 100)]),
    );
    f.allocs = vec![other];
    check(
        &f,
        &Expect {
            placed: Some(1),
            only_on: Some(vec!["b"]),
            ..Expect::default()
        },
    );
}

#[test]
fn scale_down_stops_highest_indexes() {
    let ns = nodes(3);
    let mut f = Fixture::new(
        ns.clone(),
        job("job", JobType::Service, vec![group("web", 1, 100, 100)]),
    );
    f.allocs = vec![
        existing("a0", &ns[0], 0),
        existing("a1", &ns[1], 1),
        existing("a2", &ns[2], 2),
    ];
    let out = check(
        &f,
        &Expect {
            placed: Some(0),
            stopped: Some(vec![("a1", ALLOC_NOT_NEEDED), ("a2", ALLOC_NOT_NEEDED)]),
            ..Expect::default()
        },
    );
    assert_eq!(out.plan.annotations["web"].stop, 2);
    assert_eq!(out.plan.annotations["web"].ignore, 1);
}

#[test]
fn stopped_or_missing_job_stops_everything() {
    let ns = nodes(2);
    let mut j = job("job", JobType::Service, vec![group("web", 2, 100, 100)]);
    j.stop = true;
    let mut done = existing("done", &ns[1], 1);
    done.client_status = ClientStatus::Complete;
    let mut f = Fixture::new(ns.clone(), j);
    f.allocs = vec![existing("a0", &ns[0], 0), done];
    check(
        &f,
        &Expect {
            placed: Some(0),
            stopped: Some(vec![("a0", ALLOC_JOB_STOPPED)]),
            ..Expect::default()
        },
    );

    // A deregistered job: the view has allocations but no job.
    let view = sched::testing::MemView::new(ns.clone(), vec![], vec![existing("a0", &ns[0], 0)]);
    let eval = sched::testing::eval_for(&job("job", JobType::Service, vec![]), "e");
    let mut env = sched::SchedEnv::for_eval("e", 0, Default::default());
    let out = sched::process(&view, &eval, &mut env).unwrap();
    assert_eq!(
        out.plan.node_update["n0"][0].desired_description,
        ALLOC_JOB_STOPPED
    );
    assert!(out.blocked_eval.is_none());
}

#[test]
fn lost_allocations_are_marked_and_replaced() {
    let mut ns = nodes(3);
    ns[0].status = NodeStatus::Down;
    let mut f = Fixture::new(
        ns.clone(),
        job("job", JobType::Service, vec![group("web", 2, 100, 100)]),
    );
    let mut gone = existing("gone", &ns[0], 1);
    gone.node_id = "deregistered".into();
    f.allocs = vec![existing("a0", &ns[0], 0), gone, existing("ok", &ns[1], 1)];
    // Index 1 is held twice (by the lost one and a healthy one); over count, one slot goes.
    let out = check(
        &f,
        &Expect {
            lost: Some(vec!["a0", "gone"]),
            names: Some(vec!["job.web[0]"]),
            replaces: vec!["a0"],
            only_on: Some(vec!["n1", "n2"]),
            ..Expect::default()
        },
    );
    let lost = out.plan.node_update["n0"]
        .iter()
        .find(|a| a.id == "a0")
        .unwrap();
    assert_eq!(lost.desired_description, ALLOC_LOST);
}

#[test]
fn failed_service_allocations_are_rescheduled_away_from_their_node() {
    let ns = nodes(2);
    let mut f = Fixture::new(
        ns.clone(),
        job("job", JobType::Service, vec![group("web", 1, 100, 100)]),
    );
    let mut failed = existing("f0", &ns[0], 0);
    failed.client_status = ClientStatus::Failed;
    // Failed long enough ago that the default 30 s delay has passed.
    failed.modify_time_ns = -SECOND_NS * 100;
    f.allocs = vec![failed];
    check(
        &f,
        &Expect {
            placed: Some(1),
            replaces: vec!["f0"],
            only_on: Some(vec!["n1"]),
            names: Some(vec!["job.web[0]"]),
            ..Expect::default()
        },
    );
}

#[test]
fn batch_reschedules_once_and_never_reruns_completed_work() {
    let ns = nodes(2);
    let mut f = Fixture::new(
        ns.clone(),
        job("job", JobType::Batch, vec![group("web", 2, 100, 100)]),
    );
    let mut first = existing("f0", &ns[0], 0);
    first.client_status = ClientStatus::Failed;
    first.modify_time_ns = -SECOND_NS * 100;
    let mut done = existing("d1", &ns[1], 1);
    done.client_status = ClientStatus::Complete;
    f.allocs = vec![first.clone(), done.clone()];
    check(
        &f,
        &Expect {
            placed: Some(1),
            replaces: vec!["f0"],
            ..Expect::default()
        },
    );

    // The replacement failed too: default batch policy allows one reschedule only.
    let mut second = existing("f1", &ns[1], 0);
    second.client_status = ClientStatus::Failed;
    second.previous_allocation = "f0".into();
    second.modify_time_ns = -SECOND_NS * 10;
    second.reschedule_events = vec![RescheduleEvent {
        reschedule_time_unix_ns: -SECOND_NS * 50,
        prev_alloc_id: "f0".into(),
        prev_node_id: "n0".into(),
        delay_ns: SECOND_NS * 5,
    }]
    .into();
    f.allocs = vec![first.clone(), done.clone(), second.clone()];
    check(
        &f,
        &Expect {
            placed: Some(0),
            stopped: Some(vec![]),
            ..Expect::default()
        },
    );

    // An explicit policy allows more.
    f.jobs[0].task_groups[0].reschedule = Some(ReschedulePolicy {
        attempts: 3,
        interval_ns: 0,
        delay_ns: 0,
        delay_function: String::new(),
        max_delay_ns: 0,
        unlimited: false,
    });
    check(
        &f,
        &Expect {
            placed: Some(1),
            replaces: vec!["f1"],
            ..Expect::default()
        },
    );
}

#[test]
fn failed_allocations_wait_for_their_reschedule_delay_in_a_follow_up_evaluation() {
    let ns = nodes(2);
    let mut f = Fixture::new(
        ns.clone(),
        job("job", JobType::Service, vec![group("web", 2, 100, 100)]),
    );
    f.jobs[0].task_groups[0].reschedule = Some(ReschedulePolicy {
        attempts: 0,
        interval_ns: 0,
        delay_ns: SECOND_NS * 10,
        delay_function: "exponential".into(),
        max_delay_ns: SECOND_NS * 600,
        unlimited: true,
    });
    // Both failed just now (the clock of `run` is 1,000 ns): due in 10 s, 1 ms apart.
    let mut a = existing("f0", &ns[0], 0);
    a.client_status = ClientStatus::Failed;
    let mut b = existing("f1", &ns[1], 1);
    b.client_status = ClientStatus::Failed;
    b.modify_time_ns = 1_000_000;
    f.allocs = vec![a, b];
    let (_, out) = run(&f, "e1");
    assert_eq!(
        out.plan.placement_count(),
        0,
        "nothing is replaced before the delay"
    );
    assert_eq!(
        out.followup_evals.len(),
        1,
        "one evaluation for failures 1 ms apart"
    );
    let followup = &out.followup_evals[0];
    assert_eq!(followup.wait_until_unix_ns, SECOND_NS * 10);
    assert_eq!(followup.triggered_by, "alloc-failure");
    assert!(out.blocked_eval.is_none());
    let marked: Vec<&Allocation> = out.plan.node_update.values().flatten().collect();
    assert_eq!(marked.len(), 2);
    assert!(marked.iter().all(|m| m.followup_eval_id == followup.id
        && m.desired_status == sched::structs::DesiredStatus::Run));

    // A later evaluation that is not the follow-up leaves them waiting.
    let mut waiting = f.allocs.clone();
    for w in &mut waiting {
        w.followup_eval_id = followup.id.clone().into();
    }
    f.allocs = waiting;
    let (_, out) = run(&f, "e2");
    assert_eq!(out.plan.placement_count(), 0);
    assert!(out.followup_evals.is_empty(), "no second follow-up");

    // The follow-up places both replacements and records the reschedule on them.
    let (_, out) = run(&f, &followup.id.clone());
    let placed: Vec<&Allocation> = out.plan.node_allocation.values().flatten().collect();
    assert_eq!(placed.len(), 2);
    for p in placed {
        assert_eq!(p.reschedule_events.len(), 1);
        assert_eq!(p.reschedule_events[0].delay_ns, SECOND_NS * 10);
        assert_eq!(p.reschedule_events[0].prev_alloc_id, p.previous_allocation);
    }
}

#[test]
fn failures_far_apart_get_their_own_follow_ups_and_limits_hold() {
    let ns = nodes(2);
    let mut f = Fixture::new(
        ns.clone(),
        job("job", JobType::Batch, vec![group("web", 2, 100, 100)]),
    );
    f.jobs[0].task_groups[0].reschedule = Some(ReschedulePolicy {
        attempts: 2,
        interval_ns: SECOND_NS * 3600,
        delay_ns: SECOND_NS * 5,
        delay_function: "constant".into(),
        max_delay_ns: 0,
        unlimited: false,
    });
    let mut a = existing("f0", &ns[0], 0);
    a.client_status = ClientStatus::Failed;
    let mut b = existing("f1", &ns[1], 1);
    b.client_status = ClientStatus::Failed;
    b.modify_time_ns = SECOND_NS * 60;
    // `b` already used both attempts within the hour.
    b.reschedule_events = (0..2)
        .map(|i| RescheduleEvent {
            reschedule_time_unix_ns: SECOND_NS * (10 + i),
            prev_alloc_id: format!("old{i}"),
            prev_node_id: "n0".into(),
            delay_ns: SECOND_NS * 5,
        })
        .collect();
    f.allocs = vec![a.clone(), b.clone()];
    let (_, out) = run(&f, "e1");
    assert_eq!(
        out.followup_evals.len(),
        1,
        "only the allocation with attempts left"
    );
    assert_eq!(out.followup_evals[0].wait_until_unix_ns, SECOND_NS * 5);

    let mut c = b.clone();
    c.id = "f2".into();
    c.reschedule_events.clear();
    f.allocs = vec![a, c];
    let (_, out) = run(&f, "e2");
    let mut due: Vec<i64> = out
        .followup_evals
        .iter()
        .map(|e| e.wait_until_unix_ns)
        .collect();
    due.sort();
    assert_eq!(
        due,
        vec![SECOND_NS * 5, SECOND_NS * 65],
        "55 s apart: two evaluations"
    );
}

#[test]
fn version_changes_update_in_place_or_destructively() {
    let ns = nodes(2);
    let v0 = job("job", JobType::Service, vec![group("web", 1, 100, 100)]);
    let mut v1 = v0.clone();
    v1.version = 1;
    v1.meta.clear();
    v1.priority = 70;
    let mut f = Fixture::new(ns.clone(), v0.clone());
    f.jobs.push(v1);
    f.allocs = vec![existing("a0", &ns[0], 0)];
    let out = check(
        &f,
        &Expect {
            placed: Some(0),
            in_place: Some(vec!["a0"]),
            stopped: Some(vec![]),
            ..Expect::default()
        },
    );
    assert_eq!(out.plan.annotations["web"].in_place_update, 1);

    let mut v2 = v0.clone();
    v2.version = 2;
    v2.task_groups[0].tasks[0].config_json = r#"{"image":"new"}"#.into();
    f.jobs = vec![v0.clone(), v2];
    let out = check(
        &f,
        &Expect {
            placed: Some(1),
            stopped: Some(vec![("a0", ALLOC_UPDATING)]),
            replaces: vec!["a0"],
            ..Expect::default()
        },
    );
    assert_eq!(out.plan.annotations["web"].destructive_update, 1);
}

fn draining(ignore_system_jobs: bool) -> Option<DrainStrategy> {
    Some(DrainStrategy {
        deadline_ns: 0,
        ignore_system_jobs,
        force_deadline_unix_ns: 0,
        started_at_unix_ns: 0,
    })
}

#[test]
fn draining_node_moves_only_allocations_marked_for_migration() {
    let mut ns = nodes(2);
    ns[0].drain = draining(false);
    let mut f = Fixture::new(
        ns.clone(),
        job("job", JobType::Service, vec![group("web", 2, 100, 100)]),
    );
    let mut marked = existing("a0", &ns[0], 0);
    marked.desired_transition.migrate = true;
    f.allocs = vec![marked, existing("a1", &ns[0], 1)];
    let out = check(
        &f,
        &Expect {
            placed: Some(1),
            stopped: Some(vec![("a0", ALLOC_MIGRATING)]),
            only_on: Some(vec!["n1"]),
            replaces: vec!["a0"],
            ..Expect::default()
        },
    );
    assert_eq!(out.plan.annotations["web"].migrate, 1);
    assert_eq!(out.plan.annotations["web"].ignore, 1);

    // A mark left over from a cancelled drain moves nothing.
    f.nodes = nodes(2);
    check(
        &f,
        &Expect {
            placed: Some(0),
            stopped: Some(vec![]),
            ..Expect::default()
        },
    );
}

#[test]
fn draining_node_keeps_system_allocations_until_marked_or_ignored() {
    let mut ns = nodes(2);
    ns[0].drain = draining(false);
    let mut f = Fixture::new(
        ns.clone(),
        job("job", JobType::System, vec![group("web", 1, 100, 100)]),
    );
    let mut a0 = existing("a0", &ns[0], 0);
    f.allocs = vec![a0.clone(), existing("a1", &ns[1], 0)];
    check(
        &f,
        &Expect {
            placed: Some(0),
            stopped: Some(vec![]),
            ..Expect::default()
        },
    );

    // Marked: it stops, and nothing replaces it on the draining node.
    a0.desired_transition.migrate = true;
    f.allocs = vec![a0.clone(), existing("a1", &ns[1], 0)];
    let out = check(
        &f,
        &Expect {
            placed: Some(0),
            stopped: Some(vec![("a0", ALLOC_MIGRATING)]),
            ..Expect::default()
        },
    );
    assert_eq!(out.plan.annotations["web"].migrate, 1);

    // A drain that ignores system jobs keeps it even when marked.
    ns[0].drain = draining(true);
    f.nodes = ns;
    check(
        &f,
        &Expect {
            placed: Some(0),
            stopped: Some(vec![]),
            ..Expect::default()
        },
    );
}

#[test]
fn static_and_dynamic_ports() {
    let ns = nodes(2);
    let mut holder = existing("holder", &ns[0], 0);
    holder.job_id = "other".into();
    holder.ports = vec![("http".into(), 8080)].into();
    let mut tg = group("web", 1, 100, 100);
    tg.networks.push(NetworkResource {
        mode: "host".into(),
        mbits: 0,
        ports: vec![port("http", 8080), port("admin", 0)],
    });
    let mut f = Fixture::new(ns.clone(), job("job", JobType::Service, vec![tg.clone()]));
    f.allocs = vec![holder.clone()];
    let out = check(
        &f,
        &Expect {
            placed: Some(1),
            only_on: Some(vec!["n1"]),
            ..Expect::default()
        },
    );
    let a = out.plan.node_allocation["n1"][0].clone();
    assert_eq!(a.ports[0], ("http".to_string(), 8080));
    assert!((20000..=32000).contains(&a.ports[1].1));

    tg.count = 2;
    f.jobs = vec![job("job", JobType::Service, vec![tg])];
    check(
        &f,
        &Expect {
            placed: Some(1),
            failed_exhausted: vec![("web", "network: port collision")],
            ..Expect::default()
        },
    );
}

#[test]
fn distinct_hosts_and_distinct_property() {
    let ns = nodes(2);
    let mut j = job("job", JobType::Service, vec![group("web", 3, 100, 100)]);
    j.task_groups[0]
        .constraints
        .push(constraint("", "distinct_hosts", ""));
    check(
        &Fixture::new(ns, j),
        &Expect {
            placed: Some(2),
            failed_filtered: vec![("web", "distinct_hosts", 2)],
            ..Expect::default()
        },
    );

    let mut ns = nodes(4);
    for (i, n) in ns.iter_mut().enumerate() {
        n.meta.insert("rack".into(), format!("r{}", i % 2));
    }
    let mut j = job("job", JobType::Service, vec![group("web", 3, 100, 100)]);
    j.constraints
        .push(constraint("${meta.rack}", "distinct_property", ""));
    let out = check(
        &Fixture::new(ns.clone(), j.clone()),
        &Expect {
            placed: Some(2),
            ..Expect::default()
        },
    );
    let racks: Vec<&String> = out.plan.node_allocation.keys().collect();
    assert_eq!(racks.len(), 2);
    j.constraints[0].r_target = "2".into();
    check(
        &Fixture::new(ns, j),
        &Expect {
            placed: Some(3),
            ..Expect::default()
        },
    );
}

#[test]
fn spread_balances_across_datacenters() {
    let mut ns = nodes(6);
    for (i, n) in ns.iter_mut().enumerate() {
        n.datacenter = if i < 3 { "dc1".into() } else { "dc2".into() };
    }
    let mut j = job("job", JobType::Service, vec![group("web", 4, 100, 100)]);
    j.datacenters = vec!["*".into()];
    j.spreads.push(Spread {
        attribute: "${node.datacenter}".into(),
        weight: 100,
        targets: vec![],
    });
    let (view, out) = run(&Fixture::new(ns, j), "eval-1");
    let mut per_dc = std::collections::BTreeMap::new();
    for a in out.plan.node_allocation.values().flatten() {
        let dc = sched::StateView::node(&view, &a.node_id)
            .unwrap()
            .datacenter
            .clone();
        *per_dc.entry(dc).or_insert(0) += 1;
    }
    assert_eq!(per_dc.get("dc1"), Some(&2));
    assert_eq!(per_dc.get("dc2"), Some(&2));
}

#[test]
fn affinity_steers_placements() {
    let mut ns = nodes(6);
    ns[4].meta.insert("ssd".into(), "true".into());
    ns[5].meta.insert("ssd".into(), "true".into());
    let mut j = job("job", JobType::Service, vec![group("web", 2, 100, 100)]);
    j.affinities.push(Affinity {
        l_target: "${meta.ssd}".into(),
        operand: "=".into(),
        r_target: "true".into(),
        weight: 100,
    });
    check(
        &Fixture::new(ns, j),
        &Expect {
            placed: Some(2),
            only_on: Some(vec!["n4", "n5"]),
            ..Expect::default()
        },
    );
}

#[test]
fn system_jobs_run_once_per_feasible_node() {
    let mut ns = nodes(5);
    ns[1]
        .attributes
        .insert("kernel.name".into(), "windows".into());
    ns[2].status = NodeStatus::Initializing;
    let mut j = job("job", JobType::System, vec![group("web", 1, 100, 100)]);
    j.constraints
        .push(constraint("${attr.kernel.name}", "=", "linux"));
    let mut f = Fixture::new(ns.clone(), j.clone());
    let mut a0 = existing("a0", &ns[0], 0);
    a0.name = "job.web[0]".into();
    let mut wrong = existing("w1", &ns[1], 0);
    wrong.name = "job.web[0]".into();
    f.allocs = vec![a0, wrong];
    let out = check(
        &f,
        &Expect {
            placed_on: Some(vec![("n3", 1), ("n4", 1)]),
            stopped: Some(vec![("w1", ALLOC_NODE_INFEASIBLE)]),
            blocked: Some(false),
            ..Expect::default()
        },
    );
    assert_eq!(out.plan.annotations["web"].place, 2);
    assert_eq!(out.plan.annotations["web"].ignore, 1);

    // A system allocation on a node that went down is lost and not replaced elsewhere.
    let mut ns2 = ns.clone();
    ns2[3].status = NodeStatus::Down;
    f.nodes = ns2;
    f.allocs = vec![existing("d3", &ns[3], 0)];
    check(
        &f,
        &Expect {
            placed_on: Some(vec![("n0", 1), ("n4", 1)]),
            lost: Some(vec!["d3"]),
            ..Expect::default()
        },
    );
}

#[test]
fn sysbatch_does_not_rerun_finished_nodes() {
    let ns = nodes(3);
    let mut f = Fixture::new(
        ns.clone(),
        job("job", JobType::SysBatch, vec![group("web", 1, 100, 100)]),
    );
    let mut done = existing("d0", &ns[0], 0);
    done.client_status = ClientStatus::Complete;
    f.allocs = vec![done];
    check(
        &f,
        &Expect {
            placed_on: Some(vec![("n1", 1), ("n2", 1)]),
            ..Expect::default()
        },
    );
}

#[test]
fn system_failures_are_queued_without_a_blocked_eval() {
    let ns = vec![node("a", 1000, 1000), node("b", 50, 1000)];
    let f = Fixture::new(
        ns,
        job("job", JobType::System, vec![group("web", 1, 100, 100)]),
    );
    check(
        &f,
        &Expect {
            placed_on: Some(vec![("a", 1)]),
            queued: Some(vec![("web", 1)]),
            blocked: Some(false),
            failed_exhausted: vec![("web", "cpu")],
            ..Expect::default()
        },
    );
}

#[test]
fn same_view_and_eval_replay_to_the_same_plan() {
    let f = Fixture::new(
        nodes(50),
        job("job", JobType::Service, vec![group("web", 20, 100, 100)]),
    );
    let (_, a) = run(&f, "eval-x");
    let (_, b) = run(&f, "eval-x");
    assert_eq!(a.plan, b.plan);
    let (_, c) = run(&f, "eval-y");
    assert_ne!(a.plan, c.plan, "a different eval id reshuffles");
}

#[test]
fn binpack_prefers_the_fuller_node_and_spread_the_emptier() {
    let ns = vec![node("busy", 4000, 4000), node("idle", 4000, 4000)];
    let mut other = alloc_on("other", &ns[0], 3000, 3000);
    other.job_id = "other".into();
    let mut f = Fixture::new(
        ns,
        job("job", JobType::Service, vec![group("web", 1, 100, 100)]),
    );
    f.allocs = vec![other];
    check(
        &f,
        &Expect {
            placed: Some(1),
            only_on: Some(vec!["busy"]),
            ..Expect::default()
        },
    );
    f.algorithm = sched::SchedulerAlgorithm::Spread;
    check(
        &f,
        &Expect {
            placed: Some(1),
            only_on: Some(vec!["idle"]),
            ..Expect::default()
        },
    );
}

#[test]
fn invalid_constraint_is_an_error() {
    let mut j = job("job", JobType::Service, vec![group("web", 1, 100, 100)]);
    j.constraints.push(constraint("${attr.x}", "regexp", "(["));
    let f = Fixture::new(nodes(1), j);
    let view = f.view();
    let eval = sched::testing::eval_for(&f.jobs[0], "e");
    let mut env = sched::SchedEnv::for_eval("e", 0, Default::default());
    let err = sched::process(&view, &eval, &mut env).unwrap_err();
    assert!(err.to_string().contains("${attr.x} regexp (["), "{err}");
}

/// Two 1000/1000 nodes, each full with two allocations of the priority-20 job `low`, and the
/// job `high` (priority 80) asking for two 500/500 allocations.
fn full_cluster_with_low_priority_work(job_type: JobType) -> (Fixture, Vec<String>) {
    let ns = vec![node("n0", 1000, 1000), node("n1", 1000, 1000)];
    let mut low = job("low", job_type, vec![group("web", 4, 500, 500)]);
    low.priority = 20;
    let mut high = job("high", job_type, vec![group("web", 2, 500, 500)]);
    high.priority = 80;
    let mut allocs = Vec::new();
    for (i, n) in ns.iter().chain(&ns).enumerate() {
        let mut a = alloc_on(&format!("low{i}"), n, 500, 500);
        a.job_id = "low".into();
        a.name = format!("low.web[{i}]").into();
        allocs.push(a);
    }
    let ids = allocs.iter().map(|a| a.id.to_string()).collect();
    let mut f = Fixture::new(ns, low);
    f.jobs.push(high);
    f.allocs = allocs;
    (f, ids)
}

fn run_with(f: &Fixture, config: sched::SchedulerConfig) -> sched::structs::SchedOutcome {
    let view = f.view();
    let eval = sched::testing::eval_for(f.jobs.last().unwrap(), "eval-p");
    let mut env = sched::SchedEnv::for_eval(&eval.id, 1_000, config);
    sched::process(&view, &eval, &mut env).expect("process succeeds")
}

/// Asserts the plan evicts `n` of the `low` job's allocations, each linked both ways to a
/// placement on its node, and asks for one follow-up evaluation of `low`.
fn assert_preempted(out: &sched::structs::SchedOutcome, low_ids: &[String], n: usize) {
    let evicted: Vec<&Allocation> = out.plan.node_preemptions.values().flatten().collect();
    assert_eq!(evicted.len(), n, "{:?}", out.plan.node_preemptions);
    let placed: Vec<&Allocation> = out.plan.node_allocation.values().flatten().collect();
    for a in &evicted {
        assert!(low_ids.contains(&a.id.to_string()));
        assert_eq!(a.desired_status, sched::structs::DesiredStatus::Evict);
        let by = placed
            .iter()
            .find(|p| *p.id == *a.preempted_by_allocation)
            .expect("the evicting placement is in the plan");
        assert_eq!(by.node_id, a.node_id);
        assert!(by.preempted_allocations.contains(&a.id.to_string()));
        assert_eq!(
            a.desired_description,
            format!("Preempted by alloc ID {}", by.id)
        );
    }
    let ids: std::collections::HashSet<&str> = evicted.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids.len(), evicted.len(), "an allocation evicted twice");
    assert_eq!(out.plan.annotations["web"].preemptions, n as u64);
    let followups: Vec<_> = out
        .followup_evals
        .iter()
        .filter(|e| e.triggered_by == "preemption")
        .collect();
    assert_eq!(followups.len(), 1, "{followups:?}");
    assert_eq!(followups[0].job_id, "low");
    assert_eq!(followups[0].priority, 20);
    assert_eq!(followups[0].status, sched::structs::EvalStatus::Pending);
}

#[test]
fn high_priority_service_preempts_low_priority_allocations_when_enabled() {
    let (f, low_ids) = full_cluster_with_low_priority_work(JobType::Service);
    let config = sched::SchedulerConfig {
        preempt_service: true,
        ..Default::default()
    };
    let out = run_with(&f, config);
    assert_eq!(out.plan.placement_count(), 2);
    assert!(out.failed_tg_allocs.is_empty());
    assert!(out.blocked_eval.is_none());
    // Each 500/500 placement needs exactly one 500/500 eviction.
    assert_preempted(&out, &low_ids, 2);
    assert_eq!(out.followup_evals[0].job_type, JobType::Service);
}

#[test]
fn high_priority_service_blocks_when_preemption_is_disabled() {
    let (f, _) = full_cluster_with_low_priority_work(JobType::Service);
    let out = run_with(&f, sched::SchedulerConfig::default());
    assert_eq!(out.plan.placement_count(), 0);
    assert!(out.plan.node_preemptions.is_empty());
    assert!(out.followup_evals.is_empty());
    assert!(out.blocked_eval.is_some());
    let metric = &out.failed_tg_allocs["web"];
    assert_eq!(metric.nodes_exhausted, 2);
    assert!(
        metric
            .count(MetricCount::DimensionExhausted, "cpu")
            .is_some(),
        "{metric:?}"
    );
}

#[test]
fn preemption_prefers_nodes_that_need_no_eviction() {
    let (mut f, _) = full_cluster_with_low_priority_work(JobType::Service);
    f.nodes.push(node("free", 1000, 1000));
    let config = sched::SchedulerConfig {
        preempt_service: true,
        ..Default::default()
    };
    let out = run_with(&f, config);
    // Two 500/500 placements fit on the free node: nothing is evicted.
    assert_eq!(out.plan.placement_count(), 2);
    assert!(out.plan.node_preemptions.is_empty());
    assert!(out.plan.node_allocation.contains_key("free"));
}

#[test]
fn jobs_within_the_priority_delta_do_not_preempt() {
    let (mut f, _) = full_cluster_with_low_priority_work(JobType::Service);
    f.jobs.last_mut().unwrap().priority = 29;
    let config = sched::SchedulerConfig {
        preempt_service: true,
        ..Default::default()
    };
    let out = run_with(&f, config);
    assert_eq!(out.plan.placement_count(), 0);
    assert!(out.plan.node_preemptions.is_empty());
    assert!(out.blocked_eval.is_some());
}

#[test]
fn batch_preempts_only_with_its_own_flag() {
    let (f, low_ids) = full_cluster_with_low_priority_work(JobType::Batch);
    let service_only = sched::SchedulerConfig {
        preempt_service: true,
        ..Default::default()
    };
    assert!(run_with(&f, service_only).plan.node_preemptions.is_empty());
    let batch = sched::SchedulerConfig {
        preempt_batch: true,
        ..Default::default()
    };
    let out = run_with(&f, batch);
    assert_eq!(out.plan.placement_count(), 2);
    assert_preempted(&out, &low_ids, 2);
}

#[test]
fn system_jobs_preempt_by_default_and_sysbatch_only_when_enabled() {
    let (f, low_ids) = full_cluster_with_low_priority_work(JobType::System);
    let mut f = f;
    f.jobs.last_mut().unwrap().task_groups[0].count = 1;
    let out = run_with(&f, sched::SchedulerConfig::default());
    // One allocation per node, each evicting one low-priority allocation there.
    assert_eq!(out.plan.placement_count(), 2);
    assert_preempted(&out, &low_ids, 2);
    let nodes: std::collections::BTreeSet<&str> = out
        .plan
        .node_preemptions
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(nodes.len(), 2);

    let (mut f, low_ids) = full_cluster_with_low_priority_work(JobType::SysBatch);
    f.jobs.last_mut().unwrap().task_groups[0].count = 1;
    let out = run_with(&f, sched::SchedulerConfig::default());
    assert!(out.plan.node_preemptions.is_empty());
    let config = sched::SchedulerConfig {
        preempt_sysbatch: true,
        ..Default::default()
    };
    let out = run_with(&f, config);
    assert_preempted(&out, &low_ids, 2);
}

#[test]
fn evictions_of_one_placement_are_not_repeated_by_the_next() {
    // One node with three 300/300 low allocations and 100/100 free; two 400/400
    // placements. The first evicts one (400 free); the second finds the node full again
    // and must evict the two that are left, never the one already evicted.
    let n = node("n0", 1000, 1000);
    let mut low = job("low", JobType::Service, vec![group("web", 3, 300, 300)]);
    low.priority = 10;
    let mut high = job("high", JobType::Service, vec![group("web", 2, 400, 400)]);
    high.priority = 70;
    let mut allocs = Vec::new();
    for i in 0..3 {
        let mut a = alloc_on(&format!("low{i}"), &n, 300, 300);
        a.job_id = "low".into();
        allocs.push(a);
    }
    let mut f = Fixture::new(vec![n], low);
    f.jobs.push(high);
    f.allocs = allocs;
    let config = sched::SchedulerConfig {
        preempt_service: true,
        ..Default::default()
    };
    let out = run_with(&f, config);
    assert_eq!(out.plan.placement_count(), 2);
    let evicted: Vec<&Allocation> = out.plan.node_preemptions.values().flatten().collect();
    assert_eq!(evicted.len(), 3);
    let ids: std::collections::HashSet<&str> = evicted.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids.len(), 3);
}

#[test]
fn a_later_run_of_the_same_eval_draws_new_allocation_ids() {
    // The first run's plan is half committed (the other half was rejected); the retry runs
    // on the newer view and must not hand out the ids the committed half already holds.
    let mut f = Fixture::new(
        nodes(50),
        job("job", JobType::Service, vec![group("web", 20, 100, 100)]),
    );
    let eval = sched::testing::eval_for(&f.jobs[0], "eval-r");
    let first = {
        let view = f.view();
        let mut env = sched::SchedEnv::for_run(&eval.id, 10, 1_000, Default::default());
        sched::process(&view, &eval, &mut env).expect("first run")
    };
    let placed: Vec<_> = first
        .plan
        .node_allocation
        .values()
        .flatten()
        .cloned()
        .collect();
    assert_eq!(placed.len(), 20);
    f.allocs = placed[..10].to_vec();
    let committed: std::collections::BTreeSet<String> =
        f.allocs.iter().map(|a| a.id.to_string()).collect();

    let view = f.view();
    let mut env = sched::SchedEnv::for_run(&eval.id, 11, 1_000, Default::default());
    let retry = sched::process(&view, &eval, &mut env).expect("retry");
    let new: Vec<_> = retry.plan.node_allocation.values().flatten().collect();
    assert_eq!(new.len(), 10, "the retry places the rejected half");
    for a in new {
        assert!(
            !committed.contains(a.id.as_str()),
            "{} reuses a committed id",
            a.name
        );
    }
    // The same run on the same view still replays exactly.
    let mut again = sched::SchedEnv::for_run(&eval.id, 11, 1_000, Default::default());
    let replay = sched::process(&view, &eval, &mut again).expect("replay");
    assert_eq!(replay.plan, retry.plan);
}
