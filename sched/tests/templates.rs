//! Periodic and parameterized templates: their evaluations place nothing and stop nothing,
//! while the children launched from them are placed like any batch job.

mod common;

use common::{check, Expect, Fixture};
use sched::structs::{JobType, Node, ParameterizedConfig, PeriodicConfig};
use sched::testing::{alloc_on, group, job, node};

fn nodes(n: usize) -> Vec<Node> {
    (0..n).map(|i| node(&format!("n{i}"), 4000, 4000)).collect()
}

fn periodic(enabled: bool) -> PeriodicConfig {
    PeriodicConfig {
        enabled,
        spec_type: "cron".into(),
        crons: vec!["*/5 * * * *".into()],
        prohibit_overlap: false,
        time_zone: "UTC".into(),
    }
}

fn parameterized() -> ParameterizedConfig {
    ParameterizedConfig {
        payload: "optional".into(),
        meta_required: vec![],
        meta_optional: vec![],
    }
}

#[test]
fn periodic_parent_places_nothing() {
    let mut j = job("job", JobType::Batch, vec![group("web", 3, 100, 100)]);
    j.periodic = Some(periodic(true));
    let f = Fixture::new(nodes(3), j);
    check(
        &f,
        &Expect {
            placed: Some(0),
            blocked: Some(false),
            ..Expect::default()
        },
    );
}

#[test]
fn disabled_periodic_job_is_placed_like_a_batch_job() {
    let mut j = job("job", JobType::Batch, vec![group("web", 2, 100, 100)]);
    j.periodic = Some(periodic(false));
    let f = Fixture::new(nodes(3), j);
    check(
        &f,
        &Expect {
            placed: Some(2),
            ..Expect::default()
        },
    );
}

#[test]
fn parameterized_parent_places_nothing_and_stops_nothing() {
    let ns = nodes(2);
    let mut j = job("job", JobType::Batch, vec![group("web", 1, 100, 100)]);
    j.parameterized = Some(parameterized());
    let mut f = Fixture::new(ns.clone(), j);
    // An allocation left from a version that was not parameterized keeps running.
    let mut a = alloc_on("a1", &ns[0], 100, 100);
    a.name = "job.web[0]".into();
    f.allocs.push(a);
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
fn dispatched_child_is_placed() {
    let mut j = job(
        "job/dispatch-1-abcdef01",
        JobType::Batch,
        vec![group("web", 1, 100, 100)],
    );
    j.parameterized = Some(parameterized());
    j.dispatched = true;
    j.parent_id = "job".into();
    let f = Fixture::new(nodes(2), j);
    check(
        &f,
        &Expect {
            placed: Some(1),
            ..Expect::default()
        },
    );
}
