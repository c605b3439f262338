//! Reschedule policy: whether and when a failed allocation is replaced (the `reschedule`
//! block), and the reschedule events its replacement carries.
//!
//! Pure: the clock comes in as `now_unix_ns`.

use crate::structs::{Allocation, JobType, RescheduleEvent, ReschedulePolicy, TaskGroup};

/// A failed allocation due within this much of now is replaced by the running evaluation
/// rather than by a follow-up (Nomad's reschedule window).
pub const RESCHEDULE_WINDOW_NS: i64 = 1_000_000_000;
/// Failed allocations due within this much of each other share one follow-up evaluation.
pub const FOLLOWUP_BATCH_WINDOW_NS: i64 = 5_000_000_000;
/// Events an unlimited policy keeps on the replacement.
const PAST_EVENTS_MAX: usize = 5;

/// What to do with one failed allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Replace it in this evaluation; `delay_ns` is recorded on the replacement.
    Now { delay_ns: i64 },
    /// Replace it at `at_unix_ns` through a follow-up evaluation created now.
    Later { at_unix_ns: i64, delay_ns: i64 },
    /// A follow-up evaluation is already waiting for it.
    Waiting,
    /// Out of attempts, or the policy does not reschedule: it stays failed.
    Never,
}

/// Nomad's defaults for a group without a `reschedule` block.
pub fn default_policy(job_type: JobType) -> Option<ReschedulePolicy> {
    const SECOND: i64 = 1_000_000_000;
    match job_type {
        JobType::Service => Some(ReschedulePolicy {
            attempts: 0,
            interval_ns: 0,
            delay_ns: 30 * SECOND,
            delay_function: "exponential".into(),
            max_delay_ns: 3600 * SECOND,
            unlimited: true,
        }),
        JobType::Batch => Some(ReschedulePolicy {
            attempts: 1,
            interval_ns: 24 * 3600 * SECOND,
            delay_ns: 5 * SECOND,
            delay_function: "constant".into(),
            max_delay_ns: 0,
            unlimited: false,
        }),
        // System and sysbatch allocations are never moved to another node.
        JobType::System | JobType::SysBatch => None,
    }
}

/// When the allocation failed: the last task finish the client reported, else its last change.
pub fn failed_at(alloc: &Allocation) -> i64 {
    alloc
        .task_states
        .values()
        .map(|t| t.finished_at_unix_ns)
        .max()
        .filter(|t| *t > 0)
        .unwrap_or(alloc.modify_time_ns)
}

/// Reports whether the policy allows one more reschedule of an allocation that failed at
/// `fail_unix_ns`, given the reschedules that led to it.
pub fn eligible(policy: &ReschedulePolicy, events: &[RescheduleEvent], fail_unix_ns: i64) -> bool {
    if policy.unlimited {
        return true;
    }
    if policy.attempts <= 0 {
        return false;
    }
    let since = fail_unix_ns.saturating_sub(policy.interval_ns);
    let recent = events
        .iter()
        .filter(|e| e.reschedule_time_unix_ns > since)
        .count();
    (recent as i64) < policy.attempts
}

/// The delay before the next reschedule: `delay`, doubled (`exponential`) or summed
/// (`fibonacci`) from the previous delays, capped at `max_delay`. A line that has been quiet
/// for longer than the cap starts again from `delay`.
pub fn next_delay(policy: &ReschedulePolicy, events: &[RescheduleEvent], fail_unix_ns: i64) -> i64 {
    let Some(last) = events.last() else {
        return policy.delay_ns;
    };
    let delay = match policy.delay_function.as_str() {
        "exponential" => last.delay_ns.saturating_mul(2),
        "fibonacci" if events.len() >= 2 => {
            let before = events[events.len() - 2].delay_ns;
            if before == policy.max_delay_ns && last.delay_ns == policy.delay_ns {
                // The previous series hit the cap and was reset: start a new one.
                last.delay_ns
            } else {
                last.delay_ns.saturating_add(before)
            }
        }
        "fibonacci" => policy.delay_ns,
        _ => return policy.delay_ns,
    };
    if policy.max_delay_ns > 0 && delay > policy.max_delay_ns {
        if fail_unix_ns.saturating_sub(last.reschedule_time_unix_ns) > policy.max_delay_ns {
            return policy.delay_ns;
        }
        return policy.max_delay_ns;
    }
    delay
}

/// Decides what happens to a failed allocation that has no replacement yet, in the evaluation
/// `eval_id` running at `now_unix_ns`.
pub fn decide(
    job_type: JobType,
    tg: &TaskGroup,
    alloc: &Allocation,
    eval_id: &str,
    now_unix_ns: i64,
) -> Decision {
    if alloc.desired_transition.force_reschedule {
        return Decision::Now { delay_ns: 0 };
    }
    let Some(policy) = tg.reschedule.clone().or_else(|| default_policy(job_type)) else {
        return Decision::Never;
    };
    let fail = failed_at(alloc);
    if !eligible(&policy, &alloc.reschedule_events, fail) {
        return Decision::Never;
    }
    let delay_ns = next_delay(&policy, &alloc.reschedule_events, fail);
    let at_unix_ns = fail.saturating_add(delay_ns);
    if alloc.followup_eval_id == eval_id || at_unix_ns - now_unix_ns <= RESCHEDULE_WINDOW_NS {
        Decision::Now { delay_ns }
    } else if alloc.followup_eval_id.is_empty() {
        Decision::Later {
            at_unix_ns,
            delay_ns,
        }
    } else {
        Decision::Waiting
    }
}

/// The reschedule events of the replacement of `prev`, rescheduled at `now_unix_ns` after
/// `delay_ns`: the ones the policy still counts, then this one.
pub fn replacement_events(
    policy: Option<&ReschedulePolicy>,
    prev: &Allocation,
    now_unix_ns: i64,
    delay_ns: i64,
) -> Vec<RescheduleEvent> {
    let mut events: Vec<RescheduleEvent> = match policy {
        Some(p) if !p.unlimited => {
            let since = now_unix_ns.saturating_sub(p.interval_ns);
            prev.reschedule_events
                .iter()
                .filter(|e| e.reschedule_time_unix_ns > since)
                .cloned()
                .collect()
        }
        _ => {
            let skip = prev
                .reschedule_events
                .len()
                .saturating_sub(PAST_EVENTS_MAX - 1);
            prev.reschedule_events[skip..].to_vec()
        }
    };
    events.push(RescheduleEvent {
        reschedule_time_unix_ns: now_unix_ns,
        prev_alloc_id: prev.id.to_string(),
        prev_node_id: prev.node_id.to_string(),
        delay_ns,
    });
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn policy(function: &str, delay: i64, max: i64) -> ReschedulePolicy {
        ReschedulePolicy {
            attempts: 3,
            interval_ns: 3600 * S,
            delay_ns: delay * S,
            delay_function: function.into(),
            max_delay_ns: max * S,
            unlimited: false,
        }
    }

    fn events(delays: &[i64], start: i64) -> Vec<RescheduleEvent> {
        delays
            .iter()
            .enumerate()
            .map(|(i, d)| RescheduleEvent {
                reschedule_time_unix_ns: start + i as i64 * S,
                prev_alloc_id: format!("a{i}"),
                prev_node_id: "n".into(),
                delay_ns: d * S,
            })
            .collect()
    }

    #[test]
    fn delay_functions() {
        let now = 1_000 * S;
        let c = policy("constant", 5, 0);
        assert_eq!(next_delay(&c, &events(&[5, 5], now), now), 5 * S);
        let e = policy("exponential", 5, 60);
        assert_eq!(next_delay(&e, &[], now), 5 * S);
        assert_eq!(next_delay(&e, &events(&[5], now), now), 10 * S);
        assert_eq!(
            next_delay(&e, &events(&[5, 10, 20, 40], now), now),
            60 * S,
            "capped"
        );
        let f = policy("fibonacci", 5, 60);
        assert_eq!(next_delay(&f, &events(&[5], now), now), 5 * S);
        assert_eq!(next_delay(&f, &events(&[5, 5], now), now), 10 * S);
        assert_eq!(next_delay(&f, &events(&[5, 5, 10], now), now), 15 * S);
    }

    #[test]
    fn a_quiet_line_starts_again_from_the_first_delay() {
        let e = policy("exponential", 5, 60);
        let past = events(&[40], 0);
        assert_eq!(next_delay(&e, &past, 30 * S), 60 * S);
        assert_eq!(next_delay(&e, &past, 1_000 * S), 5 * S);
    }

    #[test]
    fn attempts_count_within_the_interval() {
        let p = policy("constant", 5, 0);
        let now = 10_000 * S;
        assert!(eligible(&p, &events(&[5, 5], now - 10 * S), now));
        assert!(!eligible(&p, &events(&[5, 5, 5], now - 10 * S), now));
        assert!(
            eligible(&p, &events(&[5, 5, 5], now - 7200 * S), now),
            "old reschedules no longer count"
        );
        let none = ReschedulePolicy {
            attempts: 0,
            ..p.clone()
        };
        assert!(!eligible(&none, &[], now));
        let unlimited = ReschedulePolicy {
            unlimited: true,
            ..none
        };
        assert!(eligible(&unlimited, &events(&[5; 50], now), now));
    }

    #[test]
    fn replacement_events_keep_what_the_policy_counts() {
        let now = 10_000 * S;
        let mut prev = crate::testing::alloc_on("p", &crate::testing::node("n1", 100, 100), 1, 1);
        prev.reschedule_events = events(&[5, 5], now - 7200 * S).into();
        prev.reschedule_events.extend(events(&[5], now - 60 * S));
        let p = policy("constant", 5, 0);
        let out = replacement_events(Some(&p), &prev, now, 5 * S);
        assert_eq!(out.len(), 2, "the two old events fell out of the interval");
        assert_eq!(out[1].prev_alloc_id, "p");
        let unlimited = ReschedulePolicy {
            unlimited: true,
            ..p
        };
        prev.reschedule_events = events(&[5; 9], now - 60 * S).into();
        assert_eq!(
            replacement_events(Some(&unlimited), &prev, now, 5 * S).len(),
            PAST_EVENTS_MAX
        );
    }
}
