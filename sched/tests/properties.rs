//! Property tests: whatever the cluster and job look like, a plan never overfills a node,
//! never breaks a constraint, never double-books a port, never exceeds a group's count, and
//! replays identically.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use sched::structs::{Constraint, JobType, NetworkResource, NodeStatus, Port};
use sched::testing::{alloc_on, eval_for, group, job, node, MemView};
use sched::{process, SchedEnv, SchedulerAlgorithm, SchedulerConfig, StateView};

#[derive(Debug, Clone)]
struct Scenario {
    nodes: Vec<(u64, u64, bool, u8)>,
    job_type: JobType,
    groups: Vec<(u32, u64, u64)>,
    linux_only: bool,
    distinct_hosts: bool,
    static_port: bool,
    dynamic_port: bool,
    /// Pre-existing allocations of another job: (node index, cpu, port).
    others: Vec<(usize, u64, u16)>,
    spread: bool,
    down_after_first: Option<usize>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec((500u64..4000, 500u64..4000, any::<bool>(), 0u8..4), 1..16),
        prop_oneof![
            Just(JobType::Service),
            Just(JobType::Batch),
            Just(JobType::System)
        ],
        prop::collection::vec((0u32..12, 50u64..1500, 50u64..1500), 1..3),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(
            (
                0usize..16,
                50u64..400,
                prop_oneof![Just(8080u16), 20000u16..20010],
            ),
            0..6,
        ),
        any::<bool>(),
        prop::option::of(0usize..16),
    )
        .prop_map(
            |(
                nodes,
                job_type,
                groups,
                linux_only,
                distinct_hosts,
                static_port,
                dynamic_port,
                others,
                spread,
                down,
            )| {
                Scenario {
                    nodes,
                    job_type,
                    groups,
                    linux_only,
                    distinct_hosts,
                    static_port,
                    dynamic_port,
                    others,
                    spread,
                    down_after_first: down,
                }
            },
        )
}

fn build(s: &Scenario) -> MemView {
    let nodes: Vec<_> = s
        .nodes
        .iter()
        .enumerate()
        .map(|(i, (cpu, mem, linux, rack))| {
            let mut n = node(&format!("n{i}"), *cpu, *mem);
            if !linux {
                n.attributes.insert("kernel.name".into(), "windows".into());
            }
            n.meta.insert("rack".into(), format!("r{rack}"));
            n
        })
        .collect();
    let mut groups = Vec::new();
    for (i, (count, cpu, mem)) in s.groups.iter().enumerate() {
        let mut tg = group(&format!("g{i}"), *count, *cpu, *mem);
        let mut ports = Vec::new();
        if s.static_port {
            ports.push(Port {
                label: "http".into(),
                value: 8080,
                to: 0,
                host_network: String::new(),
                is_static: true,
            });
        }
        if s.dynamic_port {
            ports.push(Port {
                label: "dyn".into(),
                value: 0,
                to: 0,
                host_network: String::new(),
                is_static: false,
            });
        }
        if !ports.is_empty() {
            tg.networks.push(NetworkResource {
                mode: "host".into(),
                mbits: 0,
                ports,
            });
        }
        if s.distinct_hosts {
            tg.constraints.push(Constraint {
                l_target: String::new(),
                operand: "distinct_hosts".into(),
                r_target: String::new(),
            });
        }
        if s.spread {
            tg.spreads.push(sched::structs::Spread {
                attribute: "${meta.rack}".into(),
                weight: 50,
                targets: vec![],
            });
        }
        groups.push(tg);
    }
    let mut j = job("job", s.job_type, groups);
    if s.linux_only {
        j.constraints.push(Constraint {
            l_target: "${attr.kernel.name}".into(),
            operand: "=".into(),
            r_target: "linux".into(),
        });
    }
    let mut allocs = Vec::new();
    for (k, (ni, cpu, port)) in s.others.iter().enumerate() {
        let Some(n) = nodes.get(*ni) else { continue };
        let mut a = alloc_on(&format!("other{k}"), n, *cpu, 10);
        a.job_id = "other".into();
        a.ports = vec![("p".into(), *port)].into();
        allocs.push(a);
    }
    // Keep the starting state itself within capacity and free of port clashes.
    let mut seen: HashMap<String, (u64, HashSet<u16>)> = HashMap::new();
    allocs.retain(|a| {
        let n = &nodes[a.node_id[1..].parse::<usize>().unwrap()];
        let entry = seen.entry(a.node_id.to_string()).or_default();
        let fits = entry.0 + a.resources.cpu_mhz <= n.resources.cpu_mhz
            && !entry.1.contains(&a.ports[0].1);
        if fits {
            entry.0 += a.resources.cpu_mhz;
            entry.1.insert(a.ports[0].1);
        }
        fits
    });
    MemView::new(nodes, vec![j], allocs)
}

fn schedule(
    view: &MemView,
    eval_id: &str,
    algorithm: SchedulerAlgorithm,
) -> sched::structs::SchedOutcome {
    let job = view.job("default", "job").unwrap().clone();
    let eval = eval_for(&job, eval_id);
    let config = SchedulerConfig {
        algorithm,
        ..SchedulerConfig::default()
    };
    let mut env = SchedEnv::for_eval(eval_id, 7, config);
    process(view, &eval, &mut env).unwrap()
}

/// Asserts every invariant on the state after a plan was applied.
fn assert_invariants(view: &MemView, s: &Scenario) {
    let job = view.job("default", "job").unwrap();
    let mut per_group: HashMap<&str, u32> = HashMap::new();
    let mut per_node_group: HashSet<(&str, &str)> = HashSet::new();
    for n in view.nodes() {
        let live: Vec<_> = view
            .allocs_by_node(&n.id)
            .into_iter()
            .filter(|a| !a.is_terminal())
            .collect();
        let usage = view.node_usage(&n.id);
        assert!(
            usage.exceeds(&n.schedulable()).is_none(),
            "node {} over capacity: {usage:?}",
            n.id
        );
        let mut ports = HashSet::new();
        for a in &live {
            for (_, p) in &a.ports {
                assert!(ports.insert(*p), "port {p} used twice on {}", n.id);
            }
            if *a.job_id != *"job" {
                continue;
            }
            *per_group.entry(a.task_group.as_str()).or_default() += 1;
            if a.create_index == 0 {
                // Placed by the scheduler in this test: must satisfy the constraints.
                if s.linux_only {
                    assert_eq!(n.attributes["kernel.name"], "linux");
                }
            }
            if s.distinct_hosts {
                assert!(
                    per_node_group.insert((n.id.as_str(), a.task_group.as_str())),
                    "distinct_hosts broken on {}",
                    n.id
                );
            }
        }
    }
    if job.job_type != JobType::System {
        for tg in &job.task_groups {
            let n = per_group.get(tg.name.as_str()).copied().unwrap_or(0);
            assert!(n <= tg.count, "group {} has {n} > {}", tg.name, tg.count);
        }
    } else {
        for tg in &job.task_groups {
            let nodes: HashSet<&str> = view
                .allocs()
                .iter()
                .filter(|a| !a.is_terminal() && a.task_group == tg.name && *a.job_id == *"job")
                .map(|a| a.node_id.as_ref())
                .collect();
            let live = view
                .allocs()
                .iter()
                .filter(|a| !a.is_terminal() && a.task_group == tg.name && *a.job_id == *"job")
                .count();
            assert_eq!(
                nodes.len(),
                live,
                "system group {} has two allocs on one node",
                tg.name
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn plans_respect_capacity_constraints_ports_and_counts(s in scenario(), spread_algo in any::<bool>()) {
        let algorithm = if spread_algo { SchedulerAlgorithm::Spread } else { SchedulerAlgorithm::Binpack };
        let mut view = build(&s);
        let first = schedule(&view, "e1", algorithm);
        // Replay: same view and eval give the same outcome.
        let again = schedule(&view, "e1", algorithm);
        prop_assert_eq!(&first.plan, &again.plan);
        prop_assert_eq!(&first.failed_tg_allocs, &again.failed_tg_allocs);
        view.apply(&first.plan);
        assert_invariants(&view, &s);

        // Second round: a node may go down; rescheduling must keep every invariant.
        if let Some(i) = s.down_after_first {
            if let Some(n) = view.node_mut(&format!("n{i}")) {
                n.status = NodeStatus::Down;
            }
        }
        let second = schedule(&view, "e2", algorithm);
        view.apply(&second.plan);
        assert_invariants(&view, &s);
        // Nothing may remain on the down node.
        if let Some(i) = s.down_after_first {
            let id = format!("n{i}");
            prop_assert!(view.allocs_by_node(&id).iter().all(|a| *a.job_id != *"job" || a.is_terminal()));
        }

        // A third round on unchanged state changes nothing but what could not be placed.
        let third = schedule(&view, "e3", algorithm);
        prop_assert!(third.plan.node_update.values().all(Vec::is_empty), "{:?}", third.plan.node_update);
    }
}

/// A cluster partly filled by three other jobs of random priorities, and a job of random
/// type and priority to place, with preemption enabled for every type.
#[derive(Debug, Clone)]
struct PreemptScenario {
    nodes: Vec<(u64, u64)>,
    other_priorities: [u16; 3],
    /// (node index, job index, cpu, memory).
    others: Vec<(usize, usize, u64, u64)>,
    job_type: JobType,
    priority: u16,
    count: u32,
    ask: (u64, u64),
}

fn preempt_scenario() -> impl Strategy<Value = PreemptScenario> {
    (
        prop::collection::vec((500u64..3000, 500u64..3000), 1..8),
        [1u16..100, 1u16..100, 1u16..100],
        prop::collection::vec((0usize..8, 0usize..3, 50u64..1500, 50u64..1500), 0..24),
        prop_oneof![
            Just(JobType::Service),
            Just(JobType::Batch),
            Just(JobType::System),
            Just(JobType::SysBatch)
        ],
        1u16..100,
        0u32..8,
        (50u64..1500, 50u64..1500),
    )
        .prop_map(
            |(nodes, other_priorities, others, job_type, priority, count, ask)| PreemptScenario {
                nodes,
                other_priorities,
                others,
                job_type,
                priority,
                count,
                ask,
            },
        )
}

fn build_preempt(s: &PreemptScenario) -> MemView {
    let nodes: Vec<_> = s
        .nodes
        .iter()
        .enumerate()
        .map(|(i, (cpu, mem))| node(&format!("n{i}"), *cpu, *mem))
        .collect();
    let mut jobs = Vec::new();
    for (k, p) in s.other_priorities.iter().enumerate() {
        let mut o = job(
            &format!("o{k}"),
            JobType::Service,
            vec![group("web", 1, 1, 1)],
        );
        o.priority = *p;
        jobs.push(o);
    }
    let mut j = job(
        "job",
        s.job_type,
        vec![group("web", s.count, s.ask.0, s.ask.1)],
    );
    j.priority = s.priority;
    jobs.push(j);
    let mut used: HashMap<usize, (u64, u64)> = HashMap::new();
    let mut allocs = Vec::new();
    for (i, (ni, ji, cpu, mem)) in s.others.iter().enumerate() {
        let Some(n) = nodes.get(*ni) else { continue };
        let u = used.entry(*ni).or_default();
        if u.0 + cpu > n.resources.cpu_mhz || u.1 + mem > n.resources.memory_mb {
            continue;
        }
        *u = (u.0 + cpu, u.1 + mem);
        let mut a = alloc_on(&format!("o{i}"), n, *cpu, *mem);
        a.job_id = format!("o{ji}").into();
        allocs.push(a);
    }
    MemView::new(nodes, jobs, allocs)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn preemption_frees_enough_and_only_evicts_much_lower_priorities(s in preempt_scenario()) {
        let mut view = build_preempt(&s);
        let placing = view.job("default", "job").unwrap().clone();
        let eval = eval_for(&placing, "ep");
        let config = SchedulerConfig {
            preempt_service: true,
            preempt_batch: true,
            preempt_system: true,
            preempt_sysbatch: true,
            ..SchedulerConfig::default()
        };
        let mut env = SchedEnv::for_eval("ep", 7, config);
        let out = process(&view, &eval, &mut env).unwrap();
        let placed: HashMap<&str, &sched::structs::Allocation> = out
            .plan
            .node_allocation
            .values()
            .flatten()
            .map(|a| (a.id.as_str(), a))
            .collect();
        let mut evicted = HashSet::new();
        for (node_id, list) in &out.plan.node_preemptions {
            for a in list {
                prop_assert!(evicted.insert(a.id.clone()), "{} evicted twice", a.id);
                prop_assert_eq!(&*a.node_id, node_id.as_str());
                prop_assert_ne!(&*a.job_id, "job");
                let priority = view.job("default", &a.job_id).unwrap().priority;
                prop_assert!(
                    priority + 10 <= s.priority,
                    "priority {} evicted for {}", priority, s.priority
                );
                let before = view.allocs().iter().find(|b| b.id == a.id).unwrap();
                prop_assert!(!before.is_terminal());
                let by = placed.get(a.preempted_by_allocation.as_str()).copied();
                prop_assert!(by.is_some_and(|p| p.node_id == a.node_id
                    && p.preempted_allocations.contains(&a.id.to_string())));
            }
        }
        let lowest = *s.other_priorities.iter().min().unwrap();
        if s.priority < lowest + 10 {
            prop_assert!(out.plan.node_preemptions.is_empty(), "below the delta, nothing is evicted");
        }
        view.apply(&out.plan);
        for n in view.nodes() {
            let usage = view.node_usage(&n.id);
            prop_assert!(
                usage.exceeds(&n.schedulable()).is_none(),
                "node {} over capacity with evictions freed: {:?}", n.id, usage
            );
        }
    }
}
