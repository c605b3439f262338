//! What a scheduler run receives from outside: time, randomness and settings.

use rand::rngs::StdRng;
use rand::SeedableRng;

/// How candidate nodes are ranked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum SchedulerAlgorithm {
    /// Fill nodes before using new ones (Nomad's default).
    Binpack,
    /// Prefer the least used nodes.
    Spread,
}

/// Scheduler settings that come from the cluster's scheduler configuration.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct SchedulerConfig {
    pub algorithm: SchedulerAlgorithm,
    pub memory_oversubscription_enabled: bool,
    pub reject_job_registration: bool,
    pub pause_eval_broker: bool,
    pub preempt_system: bool,
    pub preempt_sysbatch: bool,
    pub preempt_batch: bool,
    pub preempt_service: bool,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            algorithm: SchedulerAlgorithm::Binpack,
            memory_oversubscription_enabled: false,
            reject_job_registration: false,
            pause_eval_broker: false,
            preempt_system: true,
            preempt_sysbatch: false,
            preempt_batch: false,
            preempt_service: false,
        }
    }
}

/// The environment of one scheduler run. The engine fills it; tests fill it by hand.
pub struct SchedEnv {
    /// Wall-clock time in Unix nanoseconds, read once by the caller.
    pub now_unix_ns: i64,
    /// Randomness for node shuffling and identifiers; seeded from the evaluation id so a run
    /// can be replayed from (snapshot, evaluation).
    pub rng: StdRng,
    pub config: SchedulerConfig,
}

impl SchedEnv {
    /// Returns an environment whose randomness is derived from the evaluation id.
    pub fn for_eval(eval_id: &str, now_unix_ns: i64, config: SchedulerConfig) -> SchedEnv {
        SchedEnv::for_run(eval_id, 0, now_unix_ns, config)
    }

    /// Returns an environment for one run of an evaluation on the view at `snapshot_index`:
    /// its randomness is derived from both, so a run replays from (view, evaluation), while
    /// a later run of the same evaluation (a retry after a partly rejected plan, a blocked
    /// evaluation run again) draws new allocation ids instead of reusing those the earlier
    /// run already committed.
    pub fn for_run(
        eval_id: &str,
        snapshot_index: u64,
        now_unix_ns: i64,
        config: SchedulerConfig,
    ) -> SchedEnv {
        // FNV-1a: stable across platforms and releases, unlike std's hasher.
        let mut seed: u64 = 0xcbf2_9ce4_8422_2325;
        for b in eval_id
            .as_bytes()
            .iter()
            .chain(snapshot_index.to_le_bytes().iter())
        {
            seed ^= u64::from(*b);
            seed = seed.wrapping_mul(0x0100_0000_01b3);
        }
        SchedEnv {
            now_unix_ns,
            rng: StdRng::seed_from_u64(seed),
            config,
        }
    }
}
