//! The evaluation broker of one shard: pending evaluations of the jobs this shard owns, in
//! priority order, with per-job serialization, acknowledgement and a delivery limit.
//!
//! Only the leader's brokers are enabled. A new leader restores them from the state, so
//! nothing here needs to survive a crash.

use std::cell::RefCell;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};
use std::rc::Rc;

use sched::structs::{EvalStatus, Evaluation};
use tokio::sync::Notify;

use crate::state::JobKey;

/// Deliveries of one evaluation before it is marked failed (Nomad's delivery limit).
pub const EVAL_DELIVERY_LIMIT: u32 = 3;
/// Pending evaluations one shard's broker holds at most.
pub const BROKER_EVALS_MAX: usize = 1_000_000;

#[derive(PartialEq, Eq)]
struct Ready {
    priority: u16,
    seq: u64,
    eval_id: String,
}

impl Ord for Ready {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Higher priority first, then first come first served.
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Ready {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// What `nack` decided.
#[derive(Debug, PartialEq, Eq)]
pub enum NackOutcome {
    /// The evaluation was queued again.
    Requeued,
    /// The delivery limit was reached: the caller marks the evaluation failed.
    DeliveryLimitReached,
}

#[derive(Default)]
struct BrokerState {
    enabled: bool,
    seq: u64,
    ready: BinaryHeap<Ready>,
    /// Every evaluation the broker knows, ready, waiting or unacked.
    evals: HashMap<String, Evaluation>,
    inflight_jobs: HashSet<JobKey>,
    waiting_by_job: HashMap<JobKey, VecDeque<String>>,
    unacked: HashSet<String>,
    deliveries: HashMap<String, u32>,
    blocked: HashMap<String, Evaluation>,
    /// Evaluations whose `wait_until_unix_ns` is still ahead (Nomad's delay heap), by due time.
    delayed: BTreeSet<(i64, String)>,
}

fn job_key(eval: &Evaluation) -> JobKey {
    (eval.namespace.clone(), eval.job_id.clone())
}

/// One shard's broker. Cheap to clone (shared within the shard only).
#[derive(Clone, Default)]
pub struct EvalBroker {
    state: Rc<RefCell<BrokerState>>,
    notify: Rc<Notify>,
}

impl EvalBroker {
    /// Enables or disables the broker. Disabling drops everything it holds.
    pub fn set_enabled(&self, enabled: bool) {
        let mut s = self.state.borrow_mut();
        s.enabled = enabled;
        if !enabled {
            *s = BrokerState::default();
        }
        drop(s);
        self.notify.notify_waiters();
    }

    /// Reports whether the broker accepts work.
    pub fn enabled(&self) -> bool {
        self.state.borrow().enabled
    }

    /// Adds a pending evaluation. Duplicates (same id) are ignored. An evaluation that must
    /// wait (`wait_until_unix_ns` ahead of the clock) is held until `promote_due` releases it.
    pub fn enqueue(&self, eval: Evaluation) {
        self.enqueue_at(eval, super::proposer::now_unix_ns());
    }

    /// `enqueue` with the clock passed in.
    pub fn enqueue_at(&self, eval: Evaluation, now_unix_ns: i64) {
        let mut s = self.state.borrow_mut();
        if !s.enabled || s.evals.contains_key(&eval.id) || s.evals.len() >= BROKER_EVALS_MAX {
            if s.evals.len() >= BROKER_EVALS_MAX {
                tracing::error!(eval_id = %eval.id, limit = BROKER_EVALS_MAX, "broker full; evaluation left for the next restore");
            }
            return;
        }
        s.blocked.remove(&eval.id);
        if eval.wait_until_unix_ns > now_unix_ns {
            // A delayed evaluation does not hold its job's turn while it waits.
            s.delayed.insert((eval.wait_until_unix_ns, eval.id.clone()));
            s.evals.insert(eval.id.clone(), eval);
            return;
        }
        let key = job_key(&eval);
        let id = eval.id.clone();
        let priority = eval.priority;
        s.evals.insert(id.clone(), eval);
        Self::make_ready(&mut s, key, id, priority);
        drop(s);
        self.notify.notify_one();
    }

    /// Moves every delayed evaluation whose time has come to the ready queue (or behind its
    /// job's running evaluation). Returns how many moved.
    pub fn promote_due(&self, now_unix_ns: i64) -> usize {
        let mut s = self.state.borrow_mut();
        let mut moved = 0;
        while let Some((due, _)) = s.delayed.first() {
            if *due > now_unix_ns {
                break;
            }
            let (_, id) = s.delayed.pop_first().expect("checked non-empty");
            let Some(eval) = s.evals.get(&id) else {
                continue;
            };
            let key = job_key(eval);
            let priority = eval.priority;
            Self::make_ready(&mut s, key, id, priority);
            moved += 1;
        }
        drop(s);
        if moved > 0 {
            self.notify.notify_waiters();
        }
        moved
    }

    /// Queues a known evaluation: ready when its job has none running, else behind it.
    fn make_ready(s: &mut BrokerState, key: JobKey, id: String, priority: u16) {
        if s.inflight_jobs.contains(&key)
            || s.waiting_by_job.get(&key).is_some_and(|q| !q.is_empty())
        {
            s.waiting_by_job.entry(key).or_default().push_back(id);
        } else {
            s.inflight_jobs.insert(key);
            s.seq += 1;
            let seq = s.seq;
            s.ready.push(Ready {
                priority,
                seq,
                eval_id: id,
            });
        }
    }

    /// Parks a blocked evaluation until capacity appears.
    pub fn block(&self, eval: Evaluation) {
        let mut s = self.state.borrow_mut();
        if s.enabled && !s.evals.contains_key(&eval.id) {
            // One blocked evaluation per job is enough: a newer one supersedes the older.
            let key = job_key(&eval);
            s.blocked.retain(|_, e| job_key(e) != key);
            s.blocked.insert(eval.id.clone(), eval);
        }
    }

    /// Moves every blocked evaluation to the ready queue. Returns how many moved.
    pub fn unblock_all(&self) -> usize {
        let blocked: Vec<Evaluation> = self
            .state
            .borrow_mut()
            .blocked
            .drain()
            .map(|(_, e)| e)
            .collect();
        let n = blocked.len();
        for eval in blocked {
            self.enqueue(eval);
        }
        n
    }

    /// Waits for the next evaluation to process. Returns `None` when the broker is disabled.
    pub async fn dequeue(&self) -> Option<Evaluation> {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.state.borrow_mut();
                if !s.enabled {
                    return None;
                }
                if let Some(ready) = s.ready.pop() {
                    let eval = s
                        .evals
                        .get(&ready.eval_id)
                        .cloned()
                        .expect("ready eval is known");
                    s.unacked.insert(ready.eval_id.clone());
                    *s.deliveries.entry(ready.eval_id).or_default() += 1;
                    return Some(eval);
                }
            }
            notified.await;
        }
    }

    /// Waits until the broker is enabled.
    pub async fn wait_enabled(&self) {
        loop {
            let notified = self.notify.notified();
            if self.enabled() {
                return;
            }
            notified.await;
        }
    }

    /// Finishes an evaluation and releases the next one of its job.
    pub fn ack(&self, eval_id: &str) {
        let mut s = self.state.borrow_mut();
        if !s.unacked.remove(eval_id) {
            return;
        }
        s.deliveries.remove(eval_id);
        let Some(eval) = s.evals.remove(eval_id) else {
            return;
        };
        let key = job_key(&eval);
        s.inflight_jobs.remove(&key);
        let next = s.waiting_by_job.get_mut(&key).and_then(|q| q.pop_front());
        if let Some(next) = next {
            if s.waiting_by_job.get(&key).is_some_and(|q| q.is_empty()) {
                s.waiting_by_job.remove(&key);
            }
            let priority = s.evals.get(&next).map_or(0, |e| e.priority);
            s.inflight_jobs.insert(key);
            s.seq += 1;
            let seq = s.seq;
            s.ready.push(Ready {
                priority,
                seq,
                eval_id: next,
            });
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Returns an evaluation that could not be processed.
    pub fn nack(&self, eval_id: &str) -> NackOutcome {
        let mut s = self.state.borrow_mut();
        if !s.unacked.remove(eval_id) {
            return NackOutcome::Requeued;
        }
        let deliveries = s.deliveries.get(eval_id).copied().unwrap_or(0);
        if deliveries >= EVAL_DELIVERY_LIMIT {
            s.unacked.insert(eval_id.to_string());
            drop(s);
            return NackOutcome::DeliveryLimitReached;
        }
        let priority = s.evals.get(eval_id).map_or(0, |e| e.priority);
        s.seq += 1;
        let seq = s.seq;
        s.ready.push(Ready {
            priority,
            seq,
            eval_id: eval_id.to_string(),
        });
        drop(s);
        self.notify.notify_one();
        NackOutcome::Requeued
    }

    /// Returns a dequeued evaluation to the ready queue without counting the delivery
    /// (the broker was paused between dequeue and processing).
    pub fn nack_undelivered(&self, eval_id: &str) {
        if let Some(d) = self.state.borrow_mut().deliveries.get_mut(eval_id) {
            *d = d.saturating_sub(1);
        }
        let _ = self.nack(eval_id);
    }

    /// Replaces the broker's content with the pending and blocked evaluations of a state.
    pub fn restore<'a>(&self, evals: impl Iterator<Item = &'a Evaluation>) {
        {
            let mut s = self.state.borrow_mut();
            *s = BrokerState {
                enabled: true,
                ..BrokerState::default()
            };
        }
        let mut pending: Vec<&Evaluation> = Vec::new();
        for eval in evals {
            match eval.status {
                EvalStatus::Pending => pending.push(eval),
                EvalStatus::Blocked => self.block(eval.clone()),
                _ => {}
            }
        }
        pending.sort_by_key(|e| e.create_index);
        for eval in pending {
            self.enqueue(eval.clone());
        }
        self.notify.notify_waiters();
    }

    /// Returns (ready, unacked, blocked) counts.
    pub fn stats(&self) -> (usize, usize, usize) {
        let s = self.state.borrow();
        (s.ready.len(), s.unacked.len(), s.blocked.len())
    }

    /// Returns how many evaluations wait for their `wait_until` time.
    pub fn delayed_count(&self) -> usize {
        self.state.borrow().delayed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sched::structs::JobType;

    fn eval(id: &str, job: &str, priority: u16) -> Evaluation {
        let mut e = crate::server::shard::new_eval(
            "default",
            job,
            JobType::Service,
            priority,
            "job-register",
        );
        e.id = id.into();
        e
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        futures_lite::future::block_on(f)
    }

    #[test]
    fn priority_order_and_per_job_serialization() {
        let b = EvalBroker::default();
        b.set_enabled(true);
        b.enqueue(eval("a1", "a", 50));
        b.enqueue(eval("a2", "a", 90));
        b.enqueue(eval("b1", "b", 70));
        let first = run(b.dequeue()).unwrap();
        assert_eq!(
            first.id, "b1",
            "a2 waits behind a1 although its priority is higher"
        );
        let second = run(b.dequeue()).unwrap();
        assert_eq!(second.id, "a1");
        assert_eq!(b.stats().0, 0, "a2 must wait until a1 is acked");
        b.ack("a1");
        assert_eq!(run(b.dequeue()).unwrap().id, "a2");
    }

    #[test]
    fn nack_requeues_until_the_delivery_limit() {
        let b = EvalBroker::default();
        b.set_enabled(true);
        b.enqueue(eval("e", "j", 50));
        for _ in 1..EVAL_DELIVERY_LIMIT {
            run(b.dequeue()).unwrap();
            assert_eq!(b.nack("e"), NackOutcome::Requeued);
        }
        run(b.dequeue()).unwrap();
        assert_eq!(b.nack("e"), NackOutcome::DeliveryLimitReached);
    }

    #[test]
    fn blocked_evals_wait_for_capacity_and_duplicates_are_ignored() {
        let b = EvalBroker::default();
        b.set_enabled(true);
        let mut blocked = eval("x", "j", 50);
        blocked.status = EvalStatus::Blocked;
        b.block(blocked);
        b.enqueue(eval("y", "k", 50));
        b.enqueue(eval("y", "k", 50));
        assert_eq!(b.stats(), (1, 0, 1));
        assert_eq!(b.unblock_all(), 1);
        assert_eq!(b.stats(), (2, 0, 0));
    }

    #[test]
    fn delayed_evals_wait_for_their_time_without_holding_the_job() {
        let b = EvalBroker::default();
        b.set_enabled(true);
        let mut later = eval("later", "j", 50);
        later.wait_until_unix_ns = 1_000;
        b.enqueue_at(later, 500);
        b.enqueue_at(eval("now", "j", 50), 500);
        assert_eq!(b.delayed_count(), 1);
        assert_eq!(
            run(b.dequeue()).unwrap().id,
            "now",
            "the delayed one does not block its job"
        );
        assert_eq!(b.promote_due(999), 0);
        assert_eq!(b.promote_due(1_000), 1);
        assert_eq!(b.delayed_count(), 0);
        assert_eq!(
            b.stats().0,
            0,
            "it waits behind the job's running evaluation"
        );
        b.ack("now");
        assert_eq!(run(b.dequeue()).unwrap().id, "later");
        let mut again = eval("later", "j", 50);
        again.wait_until_unix_ns = 5_000;
        b.enqueue_at(again, 500);
        assert_eq!(
            b.delayed_count(),
            0,
            "a known evaluation is not queued twice"
        );
    }

    #[test]
    fn disabled_broker_holds_nothing() {
        let b = EvalBroker::default();
        b.enqueue(eval("a", "a", 50));
        assert_eq!(b.stats(), (0, 0, 0));
        assert!(run(b.dequeue()).is_none());
    }
}
