//! The periodic dispatcher: on the leader, launches a child job of every enabled periodic job
//! each time one of its cron expressions comes due.
//!
//! Follows Nomad's periodic dispatcher. A launch registers `<parent>/periodic-<unix seconds>`
//! (ParentID set, no `periodic` block, same groups) with its evaluation, and records the launch
//! time (`Command::UpsertPeriodicLaunch`) in the same Raft entry, so a new leader continues
//! from the last recorded launch: nothing is launched twice, and launches missed while no
//! leader ran are made up by one launch, not one per missed time. With `prohibit_overlap`, a
//! launch is skipped while an earlier child is still pending or running.
//!
//! `parse_cron`, `next_launch` and `launch_round` are pure; `periodic_loop` is the shell.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, TimeZone, Utc};
use chrono_tz::Tz;
use sched::structs::{Job, JobStatus};

use super::proposer::now_unix_ns;
use super::shard::{new_eval, ShardCore};
use crate::api::EvalReply;
use crate::error::EngineError;
use crate::state::{ClusterState, Command, CommandResult, JobKey};

/// The shard whose core runs the periodic dispatcher.
pub const PERIODIC_HOME_SHARD: usize = 0;
/// How often the dispatcher looks for due launches when no state change wakes it. Cron
/// expressions may name seconds, so this stays well under one second.
pub const PERIODIC_TICK: Duration = Duration::from_millis(200);
/// Launches proposed in one round at most; the rest follow in the next rounds.
pub const PERIODIC_LAUNCHES_PER_ROUND_MAX: usize = 256;
/// How many candidate times `next_launch` examines per expression before giving up (a year
/// field can rule out most of them).
pub const CRON_SEARCH_STEPS_MAX: usize = 64;
/// How long the dispatcher waits for its own launches to show in the published view.
const PERIODIC_APPLY_WAIT: Duration = Duration::from_secs(5);
/// The trigger of a periodic child's evaluation (Nomad's `EvalTriggerPeriodicJob`).
pub const TRIGGER_PERIODIC_JOB: &str = "periodic-job";
/// What separates a periodic child's ID from its parent's (Nomad's `PeriodicLaunchSuffix`).
pub const PERIODIC_LAUNCH_SUFFIX: &str = "/periodic-";

const NS_PER_SECOND: i64 = 1_000_000_000;

/// One parsed cron expression, with Nomad's (cronexpr's) field layout: five fields
/// (minute..weekday), six (a year field last) or seven (seconds first, year last).
#[derive(Clone, Debug)]
pub struct CronSchedule {
    cron: croner::Cron,
    /// Allowed years as inclusive ranges; empty allows every year.
    years: Vec<(i32, i32)>,
}

/// Parses a cron expression the way Nomad reads `periodic { cron = ... }`.
pub fn parse_cron(expr: &str) -> Result<CronSchedule, String> {
    let expr = expr.trim();
    if expr.is_empty() {
        return Err("cron expression is empty".into());
    }
    if expr.starts_with('@') {
        // croner knows @yearly/@annually/@monthly/@weekly/@daily/@hourly; cronexpr also
        // takes @midnight for @daily.
        let nick = if expr.eq_ignore_ascii_case("@midnight") {
            "@daily"
        } else {
            expr
        };
        let cron = croner::Cron::new(nick)
            .parse()
            .map_err(|e| format!("invalid cron expression {expr:?}: {e}"))?;
        return Ok(CronSchedule {
            cron,
            years: Vec::new(),
        });
    }
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let (pattern, year, with_seconds) = match fields.len() {
        5 => (fields.join(" "), None, false),
        6 => (fields[..5].join(" "), Some(fields[5]), false),
        7 => (fields[..6].join(" "), Some(fields[6]), true),
        n => {
            return Err(format!(
                "invalid cron expression {expr:?}: expected 5 to 7 fields, got {n}"
            ))
        }
    };
    let mut builder = croner::Cron::new(&pattern);
    if with_seconds {
        builder.with_seconds_required();
    }
    let cron = builder
        .parse()
        .map_err(|e| format!("invalid cron expression {expr:?}: {e}"))?;
    let years = match year {
        Some(y) => parse_years(y).map_err(|e| format!("invalid cron expression {expr:?}: {e}"))?,
        None => Vec::new(),
    };
    Ok(CronSchedule { cron, years })
}

fn parse_years(field: &str) -> Result<Vec<(i32, i32)>, String> {
    if field == "*" {
        return Ok(Vec::new());
    }
    let year = |s: &str| -> Result<i32, String> {
        s.parse::<i32>()
            .ok()
            .filter(|y| (1970..=2099).contains(y))
            .ok_or_else(|| format!("invalid year {s:?} (1970-2099)"))
    };
    field
        .split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (year(a)?, year(b)?);
                if a > b {
                    return Err(format!("invalid year range {part:?}"));
                }
                Ok((a, b))
            }
            None => year(part).map(|y| (y, y)),
        })
        .collect()
}

/// Parses a periodic `time_zone`: an IANA name; empty, "UTC" and "Local" mean UTC (servers
/// run on UTC, and a leader change must not move launches between zones).
pub fn parse_time_zone(name: &str) -> Result<Tz, String> {
    match name {
        "" | "UTC" | "Local" => Ok(Tz::UTC),
        other => other
            .parse::<Tz>()
            .map_err(|_| format!("unknown time zone {other:?}")),
    }
}

impl CronSchedule {
    /// Returns the first time strictly after `after` that matches, if any within reach.
    fn next_after(&self, after: DateTime<Tz>) -> Option<DateTime<Tz>> {
        let tz = after.timezone();
        let mut candidate = self.cron.find_next_occurrence(&after, false).ok()?;
        for _ in 0..CRON_SEARCH_STEPS_MAX {
            let y = candidate.year();
            if self.years.is_empty() || self.years.iter().any(|(a, b)| (*a..=*b).contains(&y)) {
                return Some(candidate);
            }
            // Jump to the first allowed year after this one.
            let next_year = self
                .years
                .iter()
                .filter(|(_, b)| *b > y)
                .map(|(a, _)| (*a).max(y + 1))
                .min()?;
            let start = tz.with_ymd_and_hms(next_year, 1, 1, 0, 0, 0).earliest()?;
            candidate = self.cron.find_next_occurrence(&start, true).ok()?;
        }
        None
    }
}

/// Returns the earliest launch strictly after `after_unix_ns` among `crons`, evaluated in
/// `time_zone`, in whole seconds as unix nanoseconds; `None` when no expression matches again.
pub fn next_launch(
    crons: &[String],
    time_zone: &str,
    after_unix_ns: i64,
) -> Result<Option<i64>, EngineError> {
    let tz = parse_time_zone(time_zone)
        .map_err(|reason| EngineError::invalid("Periodic.TimeZone", reason))?;
    let after = Utc
        .timestamp_opt(after_unix_ns.div_euclid(NS_PER_SECOND), 0)
        .single()
        .ok_or_else(|| EngineError::invalid("Periodic", "launch time out of range"))?
        .with_timezone(&tz);
    let mut best: Option<i64> = None;
    for expr in crons {
        let schedule =
            parse_cron(expr).map_err(|reason| EngineError::invalid("Periodic.Spec", reason))?;
        if let Some(t) = schedule.next_after(after) {
            let ns = t.timestamp() * NS_PER_SECOND;
            best = Some(best.map_or(ns, |b| b.min(ns)));
        }
    }
    Ok(best)
}

/// Returns the child job a periodic job launches for `launch_unix_ns` (Nomad's `deriveJob`).
pub fn derive_child(parent: &Job, launch_unix_ns: i64) -> Job {
    let id = format!(
        "{}{PERIODIC_LAUNCH_SUFFIX}{}",
        parent.id,
        launch_unix_ns.div_euclid(NS_PER_SECOND)
    );
    let mut child = parent.clone();
    child.name = id.clone();
    child.id = id;
    child.parent_id = parent.id.clone();
    child.periodic = None;
    child.status = JobStatus::Pending;
    child.status_description = String::new();
    child.stable = false;
    child.version = 0;
    child.submit_time_ns = 0;
    child.create_index = 0;
    child.modify_index = 0;
    child.job_modify_index = 0;
    child
}

/// The commands of one launch: the child's registration with its evaluation, and the launch
/// record, committed together.
pub fn launch_commands(parent: &Job, launch_unix_ns: i64) -> (Vec<Command>, String) {
    let child = derive_child(parent, launch_unix_ns);
    let eval = new_eval(
        &child.namespace,
        &child.id,
        child.job_type,
        child.priority,
        TRIGGER_PERIODIC_JOB,
    );
    let eval_id = eval.id.clone();
    let commands = vec![
        Command::RegisterJob {
            job: child,
            eval: Some(eval),
            enforce_index: None,
        },
        Command::UpsertPeriodicLaunch {
            namespace: parent.namespace.clone(),
            job_id: parent.id.clone(),
            launch_unix_ns,
        },
    ];
    (commands, eval_id)
}

/// What one dispatcher round decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LaunchRound {
    /// Jobs to launch now, with the launch time each child is named after.
    pub launches: Vec<(JobKey, i64)>,
    /// Launches skipped because an earlier child still runs (`prohibit_overlap`), with the
    /// time skipped: the next launch is computed after it.
    pub skipped: Vec<(JobKey, i64)>,
}

/// Parents with a child that is not dead yet.
fn parents_with_live_children(state: &ClusterState) -> BTreeSet<JobKey> {
    state
        .jobs
        .values()
        .filter(|j| !j.parent_id.is_empty() && j.status != JobStatus::Dead)
        .map(|j| (j.namespace.clone(), j.parent_id.clone()))
        .collect()
}

/// Decides which periodic jobs launch at `now_unix_ns`. `cursors` holds times this leader
/// already skipped per job; launches come strictly after both them and the recorded launch.
///
/// When several launch times passed unseen (no leader, a long pause), only one launch is made
/// and it is recorded at `now`, so the missed times are not replayed one by one.
pub fn launch_round(
    state: &ClusterState,
    cursors: &BTreeMap<JobKey, i64>,
    now_unix_ns: i64,
) -> LaunchRound {
    let mut round = LaunchRound::default();
    let mut busy: Option<BTreeSet<JobKey>> = None;
    for (k, job) in state.jobs.iter() {
        if job.stop || !job.is_periodic_parent() || job.is_parameterized_parent() {
            continue;
        }
        let Some(periodic) = &job.periodic else {
            continue;
        };
        let recorded = state
            .periodic_launches
            .get(k)
            .map_or(i64::MIN, |l| l.launch_unix_ns);
        // A new version starts counting from its submission, as Nomad re-adds an updated job.
        let after = recorded
            .max(job.submit_time_ns)
            .max(cursors.get(k).copied().unwrap_or(i64::MIN));
        let Ok(Some(due)) = next_launch(&periodic.crons, &periodic.time_zone, after) else {
            continue;
        };
        if due > now_unix_ns {
            continue;
        }
        let launch = match next_launch(&periodic.crons, &periodic.time_zone, due) {
            Ok(Some(following)) if following <= now_unix_ns => {
                now_unix_ns.div_euclid(NS_PER_SECOND) * NS_PER_SECOND
            }
            _ => due,
        };
        if periodic.prohibit_overlap {
            let busy = busy.get_or_insert_with(|| parents_with_live_children(state));
            if busy.contains(k) {
                round.skipped.push((k.clone(), launch));
                continue;
            }
        }
        if round.launches.len() < PERIODIC_LAUNCHES_PER_ROUND_MAX {
            round.launches.push((k.clone(), launch));
        }
    }
    round
}

/// Launches a periodic job now (`POST /v1/job/:id/periodic/force`). Returns the child's
/// evaluation.
pub async fn force_launch(
    core: &ShardCore,
    namespace: &str,
    job_id: &str,
) -> Result<EvalReply, EngineError> {
    let state = core.state();
    let Some(job) = state.jobs.get(&(namespace.to_string(), job_id.to_string())) else {
        return Err(EngineError::NotFound {
            kind: "job",
            id: job_id.to_string(),
        });
    };
    if job.periodic.is_none() {
        return Err(EngineError::invalid(
            "job",
            "can't force launch non-periodic job",
        ));
    }
    if !job.is_periodic_parent() || job.stop {
        return Err(EngineError::invalid(
            "job",
            format!("can't force launch non-tracked job {job_id:?}: periodic is disabled or the job is stopped"),
        ));
    }
    let recorded = state
        .periodic_launches
        .get(&(namespace.to_string(), job_id.to_string()))
        .map_or(i64::MIN, |l| l.launch_unix_ns);
    // Children are named by the second; a forced launch in the second of the last launch
    // takes the next second so it gets a child of its own.
    let now = now_unix_ns().div_euclid(NS_PER_SECOND) * NS_PER_SECOND;
    let launch = now.max(recorded.saturating_add(NS_PER_SECOND));
    let (commands, eval_id) = launch_commands(job, launch);
    let resp = core.propose(commands).await?;
    match resp.results.as_slice() {
        [CommandResult::JobRegistered { .. }, CommandResult::Applied] => Ok(EvalReply {
            eval_id,
            eval_create_index: resp.index,
            index: resp.index,
        }),
        [_, CommandResult::Refused { message }] | [CommandResult::Refused { message }, ..] => {
            Err(EngineError::Conflict {
                message: message.clone(),
            })
        }
        other => Err(EngineError::Fatal {
            reason: format!("unexpected periodic launch result {other:?}"),
        }),
    }
}

/// Runs the dispatcher on its home shard until the shard stops. It wakes every
/// `PERIODIC_TICK` (launches are due by time, so a new view alone changes nothing), and acts
/// only while this server leads, so it starts and stops with leadership. A round waits until
/// its launches are visible before the next one, or the next round would see no record and
/// launch the same time again.
pub async fn periodic_loop(core: Rc<ShardCore>) {
    assert_eq!(
        core.id, PERIODIC_HOME_SHARD,
        "periodic dispatcher started off its home shard"
    );
    // Skipped launch times are this leader's own: a new leader may launch once more for a
    // time skipped here, which is what Nomad does too.
    let mut cursors: BTreeMap<JobKey, i64> = BTreeMap::new();
    let mut was_leader = false;
    while !core.stopped.get() {
        glommio::timer::sleep(PERIODIC_TICK).await;
        let leading = core.is_leader.get();
        if leading != was_leader {
            cursors.clear();
            was_leader = leading;
        }
        if !leading {
            continue;
        }
        let state: Arc<ClusterState> = core.state();
        let round = launch_round(&state, &cursors, now_unix_ns());
        for (k, skipped) in &round.skipped {
            tracing::info!(job = %k.1, launch_unix_ns = skipped, "periodic: skipping launch, a previous child still runs");
            cursors.insert(k.clone(), *skipped);
        }
        cursors.retain(|k, _| state.jobs.contains_key(k));
        if !round.launches.is_empty() {
            propose_launches(&core, &state, &round.launches).await;
        }
    }
}

async fn propose_launches(core: &Rc<ShardCore>, state: &ClusterState, launches: &[(JobKey, i64)]) {
    let mut commands = Vec::with_capacity(launches.len() * 2);
    for (k, launch) in launches {
        if let Some(job) = state.jobs.get(k) {
            tracing::info!(job = %k.1, launch_unix_ns = launch, "periodic: launching child job");
            commands.extend(launch_commands(job, *launch).0);
        }
    }
    match core.propose(commands).await {
        Ok(resp) => {
            let deadline = Instant::now() + PERIODIC_APPLY_WAIT;
            core.shared
                .wait_for_state(|s| s.index >= resp.index, deadline)
                .await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "periodic: could not launch; retrying");
            glommio::timer::sleep(PERIODIC_TICK).await;
        }
    }
}

#[cfg(test)]
#[path = "periodic_test.rs"]
mod tests;
