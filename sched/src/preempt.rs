//! Preemption: which lower-priority allocations to evict from one node so that an ask fits.
//!
//! Follows Nomad's rules: only allocations of other jobs whose priority is at least
//! `PRIORITY_DELTA_MIN` below the placing job's are candidates; the lowest priority is
//! evicted first; within one priority the allocation closest to what is still missing goes
//! first; a last pass drops every chosen allocation the ask does not need.
//!
//! Only cpu, memory and disk count. Static port collisions are not resolved by preemption:
//! a node whose ports do not fit stays rejected, and the ports of evicted allocations stay
//! reserved for the rest of the plan. Nomad's `max_parallel` penalty (it spreads evictions
//! across a job's migrate budget) is not applied either.

use crate::env::SchedulerConfig;
use crate::structs::{Allocation, Job, JobType, Resources};

/// How far below the placing job's priority a job must be for its allocations to be evicted.
pub const PRIORITY_DELTA_MIN: u16 = 10;

/// An allocation on the node, with the priority of its job.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    pub alloc: &'a Allocation,
    pub priority: u16,
}

/// Reports whether the scheduler configuration lets jobs of this type preempt.
pub fn preemption_enabled(config: &SchedulerConfig, job_type: JobType) -> bool {
    match job_type {
        JobType::Service => config.preempt_service,
        JobType::Batch => config.preempt_batch,
        JobType::System => config.preempt_system,
        JobType::SysBatch => config.preempt_sysbatch,
    }
}

/// Reports whether an allocation of `other_job_id` at `other_priority` may be evicted for
/// `job`: never one of the job's own, and only when the priority gap is wide enough.
pub fn may_preempt(
    job: &Job,
    other_namespace: &str,
    other_job_id: &str,
    other_priority: u16,
) -> bool {
    let same_job = job.id == other_job_id && job.namespace == other_namespace;
    !same_job && job.priority >= other_priority.saturating_add(PRIORITY_DELTA_MIN)
}

/// Chooses allocations among `allocs` (the node's live allocations that the plan does not
/// already stop or evict) whose eviction makes `ask` fit into `free` (the node's capacity
/// left after the plan so far). Returns an empty set when `ask` fits already, and `None`
/// when even evicting every candidate would not make room.
pub fn select_preemptions<'a>(
    job: &Job,
    ask: &Resources,
    free: &Resources,
    allocs: &[Candidate<'a>],
) -> Option<Vec<Candidate<'a>>> {
    if ask.exceeds(free).is_none() {
        return Some(Vec::new());
    }
    let mut eligible: Vec<Candidate<'a>> = allocs
        .iter()
        .filter(|c| may_preempt(job, &c.alloc.namespace, &c.alloc.job_id, c.priority))
        .copied()
        .collect();
    let everything = eligible
        .iter()
        .fold(*free, |sum, c| sum.add(&c.alloc.resources));
    if ask.exceeds(&everything).is_some() {
        return None;
    }
    // Lowest priority first; the id only makes the order independent of the input order.
    eligible
        .sort_by(|a, b| (a.priority, a.alloc.id.as_str()).cmp(&(b.priority, b.alloc.id.as_str())));
    let mut available = *free;
    let mut chosen = Vec::new();
    for group in eligible.chunk_by(|a, b| a.priority == b.priority) {
        let mut rest: Vec<Candidate<'a>> = group.to_vec();
        while !rest.is_empty() && ask.exceeds(&available).is_some() {
            let missing = ask.sub(&available);
            let mut best = 0;
            let mut best_distance = f64::INFINITY;
            for (i, c) in rest.iter().enumerate() {
                let d = resource_distance(&missing, &c.alloc.resources);
                if d < best_distance {
                    best = i;
                    best_distance = d;
                }
            }
            let c = rest.remove(best);
            available = available.add(&c.alloc.resources);
            chosen.push(c);
        }
        if ask.exceeds(&available).is_none() {
            break;
        }
    }
    assert!(
        ask.exceeds(&available).is_none(),
        "evicting every candidate was checked to make room for {ask:?}"
    );
    Some(drop_unneeded(ask, free, chosen))
}

/// Returns Nomad's basic resource distance between what is missing and what an allocation
/// holds: the Euclidean length of the per-dimension gaps, each relative to the missing
/// amount. Dimensions where nothing is missing do not count.
pub fn resource_distance(missing: &Resources, held: &Resources) -> f64 {
    let coordinate = |missing: u64, held: u64| {
        if missing == 0 {
            0.0
        } else {
            (missing as f64 - held as f64) / missing as f64
        }
    };
    let cpu = coordinate(missing.cpu_mhz, held.cpu_mhz);
    let memory = coordinate(missing.memory_mb, held.memory_mb);
    let disk = coordinate(missing.disk_mb, held.disk_mb);
    (cpu * cpu + memory * memory + disk * disk).sqrt()
}

/// Removes every chosen allocation whose eviction the ask does not need once the others are
/// evicted. Higher priorities are tried first so that, of two allocations that each would
/// do, the less important one is the one evicted; within a priority the latest choice is
/// tried first, since it was chosen against the smallest remaining gap.
fn drop_unneeded<'a>(
    ask: &Resources,
    free: &Resources,
    mut chosen: Vec<Candidate<'a>>,
) -> Vec<Candidate<'a>> {
    let mut order: Vec<usize> = (0..chosen.len()).collect();
    order.sort_by(|a, b| chosen[*b].priority.cmp(&chosen[*a].priority).then(b.cmp(a)));
    let mut keep = vec![true; chosen.len()];
    for i in order {
        keep[i] = false;
        let available = chosen
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .fold(*free, |sum, (c, _)| sum.add(&c.alloc.resources));
        if ask.exceeds(&available).is_some() {
            keep[i] = true;
        }
    }
    let mut keep = keep.into_iter();
    chosen.retain(|_| keep.next().unwrap_or(true));
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{alloc_on, group, job, node};

    fn ask(cpu: u64, memory: u64) -> Resources {
        Resources {
            cpu_mhz: cpu,
            memory_mb: memory,
            ..Resources::default()
        }
    }

    fn other(id: &str, job_id: &str, cpu: u64, memory: u64) -> Allocation {
        let mut a = alloc_on(id, &node("n1", 1000, 1000), cpu, memory);
        a.job_id = job_id.to_string().into();
        a
    }

    fn placing(priority: u16) -> Job {
        let mut j = job("high", JobType::Service, vec![group("web", 1, 500, 500)]);
        j.priority = priority;
        j
    }

    fn ids(chosen: &[Candidate<'_>]) -> Vec<String> {
        let mut ids: Vec<String> = chosen.iter().map(|c| c.alloc.id.to_string()).collect();
        ids.sort();
        ids
    }

    #[test]
    fn only_jobs_at_least_the_delta_below_are_candidates() {
        let near = other("near", "low", 600, 600);
        let far = other("far", "lower", 600, 600);
        let high = placing(60);
        let allocs = [
            Candidate {
                alloc: &near,
                priority: 51,
            },
            Candidate {
                alloc: &far,
                priority: 50,
            },
        ];
        let chosen = select_preemptions(&high, &ask(500, 500), &ask(0, 0), &allocs).unwrap();
        assert_eq!(ids(&chosen), vec!["far"]);
        // One below the delta on its own is not enough.
        let chosen = select_preemptions(&high, &ask(500, 500), &ask(0, 0), &allocs[..1]);
        assert!(chosen.is_none());
    }

    #[test]
    fn never_the_placing_jobs_own_allocations() {
        let own = other("own", "high", 600, 600);
        let high = placing(90);
        let allocs = [Candidate {
            alloc: &own,
            priority: 10,
        }];
        assert!(select_preemptions(&high, &ask(500, 500), &ask(0, 0), &allocs).is_none());
        // The same id in another namespace is another job.
        let mut elsewhere = own.clone();
        elsewhere.namespace = "other".to_string().into();
        let allocs = [Candidate {
            alloc: &elsewhere,
            priority: 10,
        }];
        let chosen = select_preemptions(&high, &ask(500, 500), &ask(0, 0), &allocs).unwrap();
        assert_eq!(ids(&chosen), vec!["own"]);
    }

    #[test]
    fn lowest_priority_goes_first() {
        let a = other("a", "j20", 600, 600);
        let b = other("b", "j10", 600, 600);
        let c = other("c", "j30", 600, 600);
        let high = placing(80);
        let allocs = [
            Candidate {
                alloc: &a,
                priority: 20,
            },
            Candidate {
                alloc: &b,
                priority: 10,
            },
            Candidate {
                alloc: &c,
                priority: 30,
            },
        ];
        let chosen = select_preemptions(&high, &ask(500, 500), &ask(0, 0), &allocs).unwrap();
        assert_eq!(ids(&chosen), vec!["b"]);
    }

    #[test]
    fn closest_to_the_missing_amount_goes_first_within_a_priority() {
        let small = other("small", "j1", 100, 100);
        let close = other("close", "j2", 450, 450);
        let huge = other("huge", "j3", 2000, 2000);
        let high = placing(80);
        let allocs = [
            Candidate {
                alloc: &small,
                priority: 10,
            },
            Candidate {
                alloc: &huge,
                priority: 10,
            },
            Candidate {
                alloc: &close,
                priority: 10,
            },
        ];
        // 100 free, 400 missing: `close` covers it alone.
        let chosen = select_preemptions(&high, &ask(500, 500), &ask(100, 100), &allocs).unwrap();
        assert_eq!(ids(&chosen), vec!["close"]);
        assert!(
            resource_distance(&ask(400, 400), &ask(450, 450))
                < resource_distance(&ask(400, 400), &ask(100, 100))
        );
    }

    #[test]
    fn allocations_another_choice_covers_are_dropped() {
        // The priority-10 allocation is taken first but is too small; the priority-20 one
        // that then completes the ask is big enough alone, so the first is not needed.
        let small = other("small", "j10", 100, 100);
        let big = other("big", "j20", 600, 600);
        let high = placing(80);
        let allocs = [
            Candidate {
                alloc: &small,
                priority: 10,
            },
            Candidate {
                alloc: &big,
                priority: 20,
            },
        ];
        let chosen = select_preemptions(&high, &ask(500, 500), &ask(0, 0), &allocs).unwrap();
        assert_eq!(ids(&chosen), vec!["big"]);
    }

    #[test]
    fn needs_every_chosen_allocation_when_none_suffices_alone() {
        let a = other("a", "j1", 300, 300);
        let b = other("b", "j2", 300, 300);
        let high = placing(80);
        let allocs = [
            Candidate {
                alloc: &a,
                priority: 10,
            },
            Candidate {
                alloc: &b,
                priority: 10,
            },
        ];
        let chosen = select_preemptions(&high, &ask(500, 500), &ask(0, 0), &allocs).unwrap();
        assert_eq!(ids(&chosen), vec!["a", "b"]);
    }

    #[test]
    fn none_when_evicting_everything_is_not_enough() {
        let a = other("a", "j1", 200, 200);
        let b = other("b", "j2", 200, 200);
        let high = placing(80);
        let allocs = [
            Candidate {
                alloc: &a,
                priority: 10,
            },
            Candidate {
                alloc: &b,
                priority: 10,
            },
        ];
        assert!(select_preemptions(&high, &ask(500, 500), &ask(50, 50), &allocs).is_none());
        // With a little more free capacity it fits.
        let chosen = select_preemptions(&high, &ask(500, 500), &ask(100, 100), &allocs).unwrap();
        assert_eq!(chosen.len(), 2);
    }

    #[test]
    fn an_ask_that_fits_evicts_nothing() {
        let a = other("a", "j1", 200, 200);
        let high = placing(80);
        let allocs = [Candidate {
            alloc: &a,
            priority: 10,
        }];
        let chosen = select_preemptions(&high, &ask(100, 100), &ask(100, 100), &allocs).unwrap();
        assert!(chosen.is_empty());
    }

    #[test]
    fn flags_follow_the_job_type() {
        let config = SchedulerConfig::default();
        assert!(preemption_enabled(&config, JobType::System));
        assert!(!preemption_enabled(&config, JobType::Service));
        assert!(!preemption_enabled(&config, JobType::Batch));
        assert!(!preemption_enabled(&config, JobType::SysBatch));
    }
}
