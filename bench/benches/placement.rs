//! Placement cost: one evaluation placing N allocations on clusters of 1k, 5k and 10k nodes,
//! with binpack and spread, with and without a constraint. Reported per placement.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sched::structs::{Constraint, JobType};
use sched::testing::{eval_for, group, job, node, MemView};
use sched::{process, SchedEnv, SchedulerAlgorithm, SchedulerConfig};

/// Allocations placed by the one evaluation each iteration runs.
const PLACEMENTS: u32 = 1000;

fn cluster(num_nodes: usize, constrained: bool) -> MemView {
    // The C1M shape: 16 GHz / 32 GiB nodes, 50 MHz / 32 MiB allocations.
    let nodes = (0..num_nodes)
        .map(|i| {
            let mut n = node(&format!("node-{i:05}"), 16_000, 32_768);
            if i % 2 == 1 {
                n.attributes.insert("kernel.name".into(), "windows".into());
            }
            n
        })
        .collect();
    let mut j = job(
        "bench",
        JobType::Service,
        vec![group("web", PLACEMENTS, 50, 32)],
    );
    if constrained {
        j.constraints.push(Constraint {
            l_target: "${attr.kernel.name}".into(),
            operand: "=".into(),
            r_target: "linux".into(),
        });
    }
    MemView::new(nodes, vec![j], Vec::new())
}

fn placement(c: &mut Criterion) {
    let mut g = c.benchmark_group("placement");
    g.throughput(Throughput::Elements(u64::from(PLACEMENTS)));
    for num_nodes in [1_000usize, 5_000, 10_000] {
        for (algo_name, algorithm) in [
            ("binpack", SchedulerAlgorithm::Binpack),
            ("spread", SchedulerAlgorithm::Spread),
        ] {
            for constrained in [false, true] {
                let view = cluster(num_nodes, constrained);
                let eval = eval_for(
                    sched::StateView::job(&view, "default", "bench").unwrap(),
                    "bench-eval",
                );
                let config = SchedulerConfig {
                    algorithm,
                    ..SchedulerConfig::default()
                };
                let run = || {
                    let mut env = SchedEnv::for_eval(&eval.id, 0, config.clone());
                    process(&view, &eval, &mut env).expect("bench job schedules")
                };
                let out = run();
                assert_eq!(
                    out.plan.placement_count(),
                    PLACEMENTS as usize,
                    "everything placed"
                );
                assert!(out.failed_tg_allocs.is_empty());
                let label = format!(
                    "{algo_name}/{}",
                    if constrained { "constraint" } else { "plain" }
                );
                g.bench_with_input(BenchmarkId::new(label, num_nodes), &num_nodes, |b, _| {
                    b.iter(|| black_box(run()))
                });
            }
        }
    }
    g.finish();
}

criterion_group!(benches, placement);
criterion_main!(benches);
