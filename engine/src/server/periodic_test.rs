//! Tests of the periodic dispatcher's pure parts: cron parsing, next-launch times in time
//! zones and across DST changes, launch rounds, and the launch record in the state.

use chrono::{TimeZone, Utc};
use sched::structs::{JobType, PeriodicConfig};
use sched::testing::{group, job};

use super::*;
use crate::state::{ApplyEffects, CommandEnvelope};

const SECOND_NS: i64 = 1_000_000_000;

/// Unix nanoseconds of a UTC wall-clock time.
fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .unwrap()
        .timestamp()
        * SECOND_NS
}

fn next(crons: &[&str], tz: &str, after: i64) -> Option<i64> {
    let crons: Vec<String> = crons.iter().map(|c| c.to_string()).collect();
    next_launch(&crons, tz, after).unwrap()
}

#[test]
fn five_fields_are_minute_to_weekday() {
    let after = utc(2024, 5, 6, 10, 7, 30);
    assert_eq!(
        next(&["*/15 * * * *"], "UTC", after),
        Some(utc(2024, 5, 6, 10, 15, 0))
    );
    // Weekdays count from Sunday = 0, as in cron: 2024-05-06 is a Monday.
    assert_eq!(
        next(&["0 9 * * 0"], "UTC", after),
        Some(utc(2024, 5, 12, 9, 0, 0))
    );
}

#[test]
fn the_earliest_of_several_crons_wins() {
    let after = utc(2024, 5, 6, 10, 7, 0);
    assert_eq!(
        next(&["0 12 * * *", "30 10 * * *", "0 11 * * *"], "UTC", after),
        Some(utc(2024, 5, 6, 10, 30, 0))
    );
}

#[test]
fn launches_are_strictly_after_the_given_time() {
    let at = utc(2024, 5, 6, 10, 15, 0);
    assert_eq!(
        next(&["*/15 * * * *"], "UTC", at),
        Some(utc(2024, 5, 6, 10, 30, 0))
    );
    // Sub-second parts of `after` do not make the same second due again.
    assert_eq!(
        next(&["* * * * * * *"], "UTC", at + 999_999_999),
        Some(at + SECOND_NS)
    );
}

#[test]
fn six_fields_end_with_a_year_and_seven_start_with_seconds() {
    let after = utc(2024, 5, 6, 10, 7, 0);
    assert_eq!(
        next(&["0 0 1 1 * 2030"], "UTC", after),
        Some(utc(2030, 1, 1, 0, 0, 0))
    );
    assert_eq!(next(&["0 0 1 1 * 2020-2023"], "UTC", after), None);
    assert_eq!(
        next(&["*/10 * * * * * *"], "UTC", after),
        Some(utc(2024, 5, 6, 10, 7, 10))
    );
}

#[test]
fn time_zones_move_launches_with_daylight_saving() {
    // 09:00 in New York is 13:00 UTC in summer (EDT) and 14:00 UTC in winter (EST).
    assert_eq!(
        next(&["0 9 * * *"], "America/New_York", utc(2024, 7, 1, 0, 0, 0)),
        Some(utc(2024, 7, 1, 13, 0, 0))
    );
    assert_eq!(
        next(
            &["0 9 * * *"],
            "America/New_York",
            utc(2024, 1, 15, 0, 0, 0)
        ),
        Some(utc(2024, 1, 15, 14, 0, 0))
    );
}

#[test]
fn launches_keep_moving_forward_across_dst_changes() {
    // 02:30 does not exist on 2024-03-10 in New York and 01:30 happens twice on 2024-11-03:
    // whatever the launch then, each comes after the previous one and none is stuck.
    for (cron, start) in [
        ("30 2 * * *", utc(2024, 3, 8, 0, 0, 0)),
        ("30 1 * * *", utc(2024, 11, 1, 0, 0, 0)),
        ("*/30 * * * *", utc(2024, 11, 3, 4, 0, 0)),
    ] {
        let mut t = start;
        for _ in 0..6 {
            let n = next(&[cron], "America/New_York", t).expect("a next launch");
            assert!(n > t, "{cron}: launch {n} not after {t}");
            assert!(n - t <= 2 * 86_400 * SECOND_NS, "{cron}: gap too long");
            t = n;
        }
    }
}

#[test]
fn bad_expressions_and_zones_are_rejected_with_the_field() {
    for bad in [
        "",
        "bogus",
        "61 * * * *",
        "* * * *",
        "0 0 1 1 * 1800",
        "* * * * * * * *",
    ] {
        assert!(parse_cron(bad).is_err(), "{bad:?} accepted");
    }
    assert!(parse_cron("@daily").is_ok());
    assert!(parse_cron("@midnight").is_ok());
    assert!(parse_time_zone("Mars/Olympus_Mons").is_err());
    assert!(parse_time_zone("Europe/Berlin").is_ok());
    match next_launch(&["0 * * * *".into()], "Nowhere/Land", 0) {
        Err(EngineError::Invalid { field, .. }) => assert_eq!(field, "Periodic.TimeZone"),
        other => panic!("expected an invalid time zone, got {other:?}"),
    }
}

fn periodic_job(
    id: &str,
    cron: &str,
    prohibit_overlap: bool,
    submit_ns: i64,
) -> sched::structs::Job {
    let mut j = job(id, JobType::Batch, vec![group("web", 1, 100, 100)]);
    j.periodic = Some(PeriodicConfig {
        enabled: true,
        spec_type: "cron".into(),
        crons: vec![cron.into()],
        prohibit_overlap,
        time_zone: "UTC".into(),
    });
    j.submit_time_ns = submit_ns;
    j
}

fn apply(s: &mut ClusterState, now: i64, commands: Vec<Command>) -> Vec<CommandResult> {
    let index = s.index + 1;
    let envelope = CommandEnvelope {
        now_unix_ns: now,
        commands,
    };
    s.apply(index, envelope, &mut ApplyEffects::default())
}

fn register(s: &mut ClusterState, j: sched::structs::Job, now: i64) {
    apply(
        s,
        now,
        vec![Command::RegisterJob {
            job: j,
            eval: None,
            enforce_index: None,
        }],
    );
}

#[test]
fn a_periodic_parent_is_running_and_launches_once_per_due_time() {
    let t0 = utc(2024, 5, 6, 10, 0, 30);
    let mut s = ClusterState::new(6);
    register(&mut s, periodic_job("cleanup", "* * * * *", false, t0), t0);
    let key = ("default".to_string(), "cleanup".to_string());
    assert_eq!(s.jobs[&key].status, JobStatus::Running);
    // `register` stamps the submit time from the entry.
    let cursors = BTreeMap::new();
    assert!(launch_round(&s, &cursors, t0 + SECOND_NS)
        .launches
        .is_empty());
    let due = utc(2024, 5, 6, 10, 1, 0);
    let round = launch_round(&s, &cursors, due + SECOND_NS / 5);
    assert_eq!(round.launches, vec![(key.clone(), due)]);
    let (commands, _) = launch_commands(&s.jobs[&key], due);
    let results = apply(&mut s, due, commands);
    assert!(matches!(results[1], CommandResult::Applied), "{results:?}");
    let child = &s.jobs[&(
        "default".to_string(),
        format!("cleanup/periodic-{}", due / SECOND_NS),
    )];
    assert_eq!(child.parent_id, "cleanup");
    assert!(child.periodic.is_none());
    assert_eq!(child.task_groups.len(), 1);
    assert_eq!(s.periodic_launches[&key].launch_unix_ns, due);
    // The record stops the same time from launching again.
    assert!(launch_round(&s, &cursors, due + SECOND_NS)
        .launches
        .is_empty());
    // Recording an older launch is refused.
    let results = apply(
        &mut s,
        due,
        vec![Command::UpsertPeriodicLaunch {
            namespace: "default".into(),
            job_id: "cleanup".into(),
            launch_unix_ns: due - 60 * SECOND_NS,
        }],
    );
    assert!(matches!(results[0], CommandResult::Refused { .. }));
    assert_eq!(s.periodic_launches[&key].launch_unix_ns, due);
}

#[test]
fn missed_launches_are_made_up_by_one_launch() {
    let t0 = utc(2024, 5, 6, 10, 0, 30);
    let mut s = ClusterState::new(6);
    register(&mut s, periodic_job("p", "* * * * *", false, t0), t0);
    let key = ("default".to_string(), "p".to_string());
    // Ten launch times pass unseen.
    let now = utc(2024, 5, 6, 10, 10, 20) + 123;
    let round = launch_round(&s, &BTreeMap::new(), now);
    let launch_at_now = utc(2024, 5, 6, 10, 10, 20);
    assert_eq!(round.launches, vec![(key.clone(), launch_at_now)]);
    let commands = launch_commands(&s.jobs[&key].clone(), launch_at_now).0;
    apply(&mut s, now, commands);
    assert!(launch_round(&s, &BTreeMap::new(), now + SECOND_NS)
        .launches
        .is_empty());
    let next_due = utc(2024, 5, 6, 10, 11, 0);
    assert_eq!(
        launch_round(&s, &BTreeMap::new(), next_due).launches,
        vec![(key, next_due)]
    );
}

#[test]
fn prohibit_overlap_skips_while_a_child_is_live() {
    let t0 = utc(2024, 5, 6, 10, 0, 30);
    let mut s = ClusterState::new(6);
    register(&mut s, periodic_job("p", "* * * * *", true, t0), t0);
    let key = ("default".to_string(), "p".to_string());
    let first = utc(2024, 5, 6, 10, 1, 0);
    let commands = launch_commands(&s.jobs[&key].clone(), first).0;
    apply(&mut s, first, commands);
    let child_key = (
        "default".to_string(),
        format!("p/periodic-{}", first / SECOND_NS),
    );
    assert_eq!(s.jobs[&child_key].status, JobStatus::Pending);
    let second = utc(2024, 5, 6, 10, 2, 0);
    let round = launch_round(&s, &BTreeMap::new(), second);
    assert!(round.launches.is_empty(), "launched over a live child");
    assert_eq!(round.skipped, vec![(key.clone(), second)]);
    // Once the child is dead the next due time launches, not the skipped one.
    let mut dead = (*s.jobs[&child_key]).clone();
    dead.stop = true;
    register(&mut s, dead, second);
    assert_eq!(s.jobs[&child_key].status, JobStatus::Dead);
    let cursors: BTreeMap<_, _> = round.skipped.into_iter().collect();
    assert!(launch_round(&s, &cursors, second + SECOND_NS)
        .launches
        .is_empty());
    let third = utc(2024, 5, 6, 10, 3, 0);
    assert_eq!(
        launch_round(&s, &cursors, third).launches,
        vec![(key, third)]
    );
}

#[test]
fn disabled_stopped_and_parameterized_jobs_do_not_launch() {
    let t0 = utc(2024, 5, 6, 10, 0, 30);
    let mut s = ClusterState::new(6);
    let mut disabled = periodic_job("off", "* * * * *", false, t0);
    disabled.periodic.as_mut().unwrap().enabled = false;
    let mut stopped = periodic_job("stopped", "* * * * *", false, t0);
    stopped.stop = true;
    let mut param = periodic_job("param", "* * * * *", false, t0);
    param.parameterized = Some(sched::structs::ParameterizedConfig {
        payload: "optional".into(),
        meta_required: vec![],
        meta_optional: vec![],
    });
    for j in [disabled, stopped, param] {
        register(&mut s, j, t0);
    }
    let round = launch_round(&s, &BTreeMap::new(), utc(2024, 5, 6, 10, 5, 0));
    assert!(round.launches.is_empty(), "{round:?}");
    assert_eq!(
        s.jobs[&("default".to_string(), "off".to_string())].status,
        JobStatus::Pending,
        "a disabled periodic job is not a running template"
    );
}

#[test]
fn launch_records_survive_a_snapshot() {
    let t0 = utc(2024, 5, 6, 10, 0, 30);
    let mut s = ClusterState::new(6);
    register(&mut s, periodic_job("p", "* * * * *", false, t0), t0);
    let due = utc(2024, 5, 6, 10, 1, 0);
    let commands = launch_commands(&s.jobs[&("default".to_string(), "p".to_string())], due).0;
    apply(&mut s, due, commands);
    let image = crate::raft::state_machine::image_from_state(&s);
    let restored = crate::raft::state_machine::state_from_image(image, 6);
    let key = ("default".to_string(), "p".to_string());
    assert_eq!(restored.periodic_launches[&key], s.periodic_launches[&key]);
    assert!(launch_round(&restored, &BTreeMap::new(), due + SECOND_NS)
        .launches
        .is_empty());
}
