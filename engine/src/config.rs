//! The agent's typed configuration: what the HCL/JSON files and flags resolve to.
//!
//! Holds plain Rust values only (durations as `Duration`, sizes as bytes). Parsing lives in
//! `net`; this module supplies the defaults (`Default`, `AgentConfig::dev`) and the range
//! checks (`validate`) that apply however the values were obtained.

use std::path::PathBuf;
use std::time::Duration;

use sched::SchedulerConfig;

/// Every scheduler name a server may be told to run.
pub const SCHEDULER_NAMES: [&str; 5] = ["service", "batch", "system", "sysbatch", "_core"];

/// Nomad's bounds for `server.job_max_priority`.
pub const JOB_MAX_PRIORITY_MIN: u32 = 100;
pub const JOB_MAX_PRIORITY_MAX: u32 = 32766;

/// The largest `server.raft_multiplier` Nomad accepts.
pub const RAFT_MULTIPLIER_MAX: u32 = 10;

/// Returns the number of cores, the default for `num_schedulers` and `shards`.
pub fn default_core_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The whole agent configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentConfig {
    pub name: String,
    pub region: String,
    pub datacenter: String,
    pub data_dir: PathBuf,
    pub bind_addr: String,
    pub ports: Ports,
    pub advertise: Advertise,
    pub log_level: String,
    pub log_json: bool,
    /// drover's own key: how many shard executors to run; `None` means one per core.
    pub shards: Option<usize>,
    pub server: ServerConfig,
    pub autopilot: AutopilotConfig,
    /// Leave the server pool gracefully on SIGINT (Nomad's default for servers: false).
    pub leave_on_interrupt: bool,
    /// Leave the server pool gracefully on SIGTERM (default false).
    pub leave_on_terminate: bool,
    /// Serves the debugging endpoints (Nomad's `enable_debug`); here that is the raw Raft
    /// write test, `PUT /v1/operator/raft/write-test`. On in `-dev` mode, as in Nomad.
    pub enable_debug: bool,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            name: String::new(),
            region: "global".to_string(),
            datacenter: "dc1".to_string(),
            data_dir: PathBuf::new(),
            bind_addr: "0.0.0.0".to_string(),
            ports: Ports::default(),
            advertise: Advertise::default(),
            log_level: "INFO".to_string(),
            log_json: false,
            shards: None,
            server: ServerConfig::default(),
            autopilot: AutopilotConfig::default(),
            leave_on_interrupt: false,
            leave_on_terminate: false,
            enable_debug: false,
        }
    }
}

impl AgentConfig {
    /// The `-dev` defaults: a single bootstrapping server on loopback with a local data dir.
    pub fn dev() -> Self {
        let mut config = AgentConfig {
            bind_addr: "127.0.0.1".to_string(),
            data_dir: PathBuf::from("./drover-data"),
            enable_debug: true,
            ..AgentConfig::default()
        };
        config.server.enabled = true;
        config.server.bootstrap_expect = 1;
        config
    }

    /// Returns the number of shard executors to start.
    pub fn shard_count(&self) -> usize {
        self.shards.unwrap_or_else(default_core_count)
    }

    /// Checks every range rule of the agent and its blocks; each problem is
    /// `(path, message)` with a dotted path such as `server.raft_multiplier`.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.region.is_empty() {
            problems.push(("region".to_string(), "must not be empty".to_string()));
        }
        if self.datacenter.is_empty() {
            problems.push(("datacenter".to_string(), "must not be empty".to_string()));
        }
        for (name, port) in [
            ("http", self.ports.http),
            ("rpc", self.ports.rpc),
            ("serf", self.ports.serf),
        ] {
            if port == 0 {
                problems.push((
                    format!("ports.{name}"),
                    "must be between 1 and 65535".into(),
                ));
            }
        }
        if self.shards == Some(0) {
            problems.push(("shards".to_string(), "must be at least 1".to_string()));
        }
        let level = self.log_level.to_ascii_uppercase();
        if !["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF"].contains(&level.as_str()) {
            problems.push((
                "log_level".to_string(),
                format!(
                    "unknown log level {:?}; expected TRACE, DEBUG, INFO, WARN, ERROR or OFF",
                    self.log_level
                ),
            ));
        }
        problems.extend(self.server.validate());
        problems.extend(self.autopilot.validate());
        problems
    }
}

/// The three listening ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ports {
    pub http: u16,
    pub rpc: u16,
    pub serf: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            http: 4646,
            rpc: 4647,
            serf: 4648,
        }
    }
}

/// Addresses advertised to other agents, when they differ from the bind address.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Advertise {
    pub http: Option<String>,
    pub rpc: Option<String>,
    pub serf: Option<String>,
}

/// The `server {}` block.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    pub enabled: bool,
    pub authoritative_region: String,
    /// 0 means "not set"; `validate` requires at least 1 when the server is enabled.
    pub bootstrap_expect: u32,
    /// Empty means `<data_dir>/server`.
    pub data_dir: Option<PathBuf>,
    pub enabled_schedulers: Vec<String>,
    pub enable_event_broker: bool,
    /// Base64 gossip key; empty when unset.
    pub encrypt: String,
    pub event_buffer_size: u64,
    pub node_gc_threshold: Duration,
    pub job_gc_interval: Duration,
    pub job_gc_threshold: Duration,
    pub eval_gc_threshold: Duration,
    pub batch_eval_gc_threshold: Duration,
    pub deployment_gc_threshold: Duration,
    pub csi_volume_claim_gc_interval: Duration,
    pub csi_volume_claim_gc_threshold: Duration,
    pub csi_plugin_gc_threshold: Duration,
    pub acl_token_gc_threshold: Duration,
    /// Scheduler configuration to seed a newly bootstrapped cluster with.
    pub default_scheduler_config: Option<SchedulerConfig>,
    pub heartbeat_grace: Duration,
    pub min_heartbeat_ttl: Duration,
    pub failover_heartbeat_ttl: Duration,
    pub max_heartbeats_per_second: f64,
    pub non_voting_server: bool,
    pub num_schedulers: usize,
    pub license_path: String,
    pub plan_rejection_tracker: PlanRejectionTracker,
    pub raft_boltdb: RaftBoltDb,
    pub raft_protocol: u32,
    pub raft_multiplier: u32,
    pub raft_snapshot_threshold: u64,
    pub raft_snapshot_interval: Duration,
    pub raft_trailing_logs: u64,
    pub redundancy_zone: String,
    pub rejoin_after_leave: bool,
    pub root_key_gc_interval: Duration,
    pub root_key_gc_threshold: Duration,
    pub root_key_rotation_threshold: Duration,
    pub server_join: ServerJoin,
    pub start_timeout: Duration,
    /// `X.Y.Z` used instead of the build version when custom upgrades are on; empty when unset.
    pub upgrade_version: String,
    pub search: SearchConfig,
    pub job_max_priority: u32,
    pub job_default_priority: u32,
    pub job_max_source_size_bytes: u64,
    pub job_tracked_versions: u32,
    pub oidc_issuer: String,
    /// Deprecated top-level form of `server_join.retry_join`.
    pub retry_join: Vec<String>,
    /// Deprecated top-level form of `server_join.retry_interval`.
    pub retry_interval: Duration,
    /// Deprecated top-level form of `server_join.retry_max`.
    pub retry_max: u32,
    /// Deprecated top-level form of `server_join.start_join`.
    pub start_join: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        let hours = |h: u64| Duration::from_secs(h * 3600);
        ServerConfig {
            enabled: false,
            authoritative_region: String::new(),
            bootstrap_expect: 0,
            data_dir: None,
            enabled_schedulers: SCHEDULER_NAMES.iter().map(|s| s.to_string()).collect(),
            enable_event_broker: true,
            encrypt: String::new(),
            event_buffer_size: 100,
            node_gc_threshold: hours(24),
            job_gc_interval: minutes(5),
            job_gc_threshold: hours(4),
            eval_gc_threshold: hours(1),
            batch_eval_gc_threshold: hours(24),
            deployment_gc_threshold: hours(1),
            csi_volume_claim_gc_interval: minutes(5),
            csi_volume_claim_gc_threshold: hours(1),
            csi_plugin_gc_threshold: hours(1),
            acl_token_gc_threshold: hours(1),
            default_scheduler_config: None,
            heartbeat_grace: Duration::from_secs(10),
            min_heartbeat_ttl: Duration::from_secs(10),
            failover_heartbeat_ttl: minutes(5),
            max_heartbeats_per_second: 50.0,
            non_voting_server: false,
            num_schedulers: default_core_count(),
            license_path: String::new(),
            plan_rejection_tracker: PlanRejectionTracker::default(),
            raft_boltdb: RaftBoltDb::default(),
            raft_protocol: 3,
            raft_multiplier: 1,
            raft_snapshot_threshold: 8192,
            raft_snapshot_interval: Duration::from_secs(120),
            raft_trailing_logs: 10240,
            redundancy_zone: String::new(),
            rejoin_after_leave: false,
            root_key_gc_interval: minutes(10),
            root_key_gc_threshold: hours(1),
            root_key_rotation_threshold: hours(720),
            server_join: ServerJoin::default(),
            start_timeout: Duration::from_secs(30),
            upgrade_version: String::new(),
            search: SearchConfig::default(),
            job_max_priority: 100,
            job_default_priority: 50,
            job_max_source_size_bytes: 1_000_000,
            job_tracked_versions: 6,
            oidc_issuer: String::new(),
            retry_join: Vec::new(),
            retry_interval: Duration::from_secs(30),
            retry_max: 0,
            start_join: Vec::new(),
        }
    }
}

impl ServerConfig {
    /// `server_join.start_join`, or the deprecated top-level `start_join`.
    pub fn effective_start_join(&self) -> &[String] {
        if self.server_join.start_join.is_empty() {
            &self.start_join
        } else {
            &self.server_join.start_join
        }
    }

    /// `server_join.retry_interval`, or the deprecated top-level form when only that was set.
    pub fn effective_retry_interval(&self) -> Duration {
        let default = ServerJoin::default().retry_interval;
        if self.server_join.retry_interval == default {
            self.retry_interval
        } else {
            self.server_join.retry_interval
        }
    }

    /// `server_join.retry_max`, or the deprecated top-level form when only that was set
    /// (0 means retry forever).
    pub fn effective_retry_max(&self) -> u32 {
        if self.server_join.retry_max == 0 {
            self.retry_max
        } else {
            self.server_join.retry_max
        }
    }

    /// The decoded gossip key, when `encrypt` is set and valid.
    pub fn encrypt_key(&self) -> Option<Vec<u8>> {
        if self.encrypt.is_empty() {
            None
        } else {
            decode_base64(&self.encrypt)
        }
    }

    /// Returns the addresses to retry joining: the `server_join` block wins over the
    /// deprecated top-level `retry_join`.
    pub fn effective_retry_join(&self) -> &[String] {
        if self.server_join.retry_join.is_empty() {
            &self.retry_join
        } else {
            &self.server_join.retry_join
        }
    }

    /// Checks the documented ranges. Each problem is `(path, message)`, the path starting
    /// with `server.`.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems: Vec<(String, String)> = Vec::new();
        let mut bad = |field: &str, message: String| {
            problems.push((format!("server.{field}"), message));
        };
        if self.raft_protocol != 3 {
            bad(
                "raft_protocol",
                format!("must be 3, got {}", self.raft_protocol),
            );
        }
        if !(1..=RAFT_MULTIPLIER_MAX).contains(&self.raft_multiplier) {
            bad(
                "raft_multiplier",
                format!(
                    "must be between 1 and {RAFT_MULTIPLIER_MAX}, got {}",
                    self.raft_multiplier
                ),
            );
        }
        if self.enabled && self.bootstrap_expect < 1 {
            bad(
                "bootstrap_expect",
                "must be at least 1 when the server is enabled".into(),
            );
        }
        for (i, name) in self.enabled_schedulers.iter().enumerate() {
            if !SCHEDULER_NAMES.contains(&name.as_str()) {
                bad(
                    &format!("enabled_schedulers[{i}]"),
                    format!(
                        "unknown scheduler {name:?}; expected one of {}",
                        SCHEDULER_NAMES.join(", ")
                    ),
                );
            }
        }
        if self.min_heartbeat_ttl.is_zero() {
            bad("min_heartbeat_ttl", "must be greater than zero".into());
        }
        if !(self.max_heartbeats_per_second > 0.0 && self.max_heartbeats_per_second.is_finite()) {
            bad(
                "max_heartbeats_per_second",
                format!(
                    "must be greater than zero, got {}",
                    self.max_heartbeats_per_second
                ),
            );
        }
        if !(JOB_MAX_PRIORITY_MIN..=JOB_MAX_PRIORITY_MAX).contains(&self.job_max_priority) {
            bad(
                "job_max_priority",
                format!(
                    "must be between {JOB_MAX_PRIORITY_MIN} and {JOB_MAX_PRIORITY_MAX}, got {}",
                    self.job_max_priority
                ),
            );
        }
        if !(1..=self.job_max_priority).contains(&self.job_default_priority) {
            bad(
                "job_default_priority",
                format!(
                    "must be between 1 and job_max_priority ({}), got {}",
                    self.job_max_priority, self.job_default_priority
                ),
            );
        }
        if self.job_tracked_versions < 1 {
            bad("job_tracked_versions", "must be at least 1".into());
        }
        if !self.encrypt.is_empty() {
            match decode_base64(&self.encrypt) {
                Some(key) if [16, 24, 32].contains(&key.len()) => {}
                Some(key) => bad(
                    "encrypt",
                    format!("key must be 16, 24 or 32 bytes, got {} bytes", key.len()),
                ),
                None => bad("encrypt", "key is not valid base64".into()),
            }
        }
        if !self.upgrade_version.is_empty() && !is_semver_triple(&self.upgrade_version) {
            bad(
                "upgrade_version",
                format!("must have the form X.Y.Z, got {:?}", self.upgrade_version),
            );
        }
        if self.raft_snapshot_threshold < 1 {
            bad("raft_snapshot_threshold", "must be at least 1".into());
        }
        if self.raft_trailing_logs < 1 {
            bad("raft_trailing_logs", "must be at least 1".into());
        }
        if self.plan_rejection_tracker.node_threshold < 1 {
            bad(
                "plan_rejection_tracker.node_threshold",
                "must be at least 1".into(),
            );
        }
        if self.plan_rejection_tracker.enabled && self.plan_rejection_tracker.node_window.is_zero()
        {
            bad(
                "plan_rejection_tracker.node_window",
                "must be greater than zero".into(),
            );
        }
        if self.event_buffer_size < 1 && self.enable_event_broker {
            bad(
                "event_buffer_size",
                "must be at least 1 when the event broker is enabled".into(),
            );
        }
        if let Some(dir) = &self.data_dir {
            if !dir.as_os_str().is_empty() && !dir.is_absolute() {
                bad(
                    "data_dir",
                    format!("must be an absolute path, got {}", dir.display()),
                );
            }
        }
        if self.search.limit_query < 1 {
            bad("search.limit_query", "must be at least 1".into());
        }
        if self.search.limit_results < 1 {
            bad("search.limit_results", "must be at least 1".into());
        }
        if self.search.min_term_length < 1 {
            bad("search.min_term_length", "must be at least 1".into());
        }
        for (field, interval) in [
            ("job_gc_interval", self.job_gc_interval),
            (
                "csi_volume_claim_gc_interval",
                self.csi_volume_claim_gc_interval,
            ),
            ("root_key_gc_interval", self.root_key_gc_interval),
            ("raft_snapshot_interval", self.raft_snapshot_interval),
        ] {
            // A zero interval would make the periodic task spin.
            if interval.is_zero() {
                bad(field, "must be greater than zero".into());
            }
        }
        problems
    }
}

/// `server.server_join {}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerJoin {
    pub start_join: Vec<String>,
    pub retry_join: Vec<String>,
    /// 0 means retry forever.
    pub retry_max: u32,
    pub retry_interval: Duration,
}

impl Default for ServerJoin {
    fn default() -> Self {
        ServerJoin {
            start_join: Vec::new(),
            retry_join: Vec::new(),
            retry_max: 0,
            retry_interval: Duration::from_secs(30),
        }
    }
}

/// `server.plan_rejection_tracker {}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanRejectionTracker {
    pub enabled: bool,
    pub node_threshold: u32,
    pub node_window: Duration,
}

impl Default for PlanRejectionTracker {
    fn default() -> Self {
        PlanRejectionTracker {
            enabled: false,
            node_threshold: 100,
            node_window: Duration::from_secs(300),
        }
    }
}

/// `server.raft_boltdb {}`: kept for compatibility; drover's log store has no freelist.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RaftBoltDb {
    pub no_freelist_sync: bool,
}

/// `server.search {}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchConfig {
    pub fuzzy_enabled: bool,
    pub limit_query: u32,
    pub limit_results: u32,
    pub min_term_length: u32,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            fuzzy_enabled: true,
            limit_query: 20,
            limit_results: 100,
            min_term_length: 2,
        }
    }
}

/// The top-level `autopilot {}` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutopilotConfig {
    pub cleanup_dead_servers: bool,
    pub last_contact_threshold: Duration,
    pub max_trailing_logs: u64,
    pub min_quorum: u32,
    pub server_stabilization_time: Duration,
    pub enable_redundancy_zones: bool,
    pub disable_upgrade_migration: bool,
    pub enable_custom_upgrades: bool,
}

impl Default for AutopilotConfig {
    fn default() -> Self {
        AutopilotConfig {
            cleanup_dead_servers: true,
            last_contact_threshold: Duration::from_millis(200),
            max_trailing_logs: 250,
            min_quorum: 0,
            server_stabilization_time: Duration::from_secs(10),
            enable_redundancy_zones: false,
            disable_upgrade_migration: false,
            enable_custom_upgrades: false,
        }
    }
}

impl AutopilotConfig {
    /// Checks the autopilot ranges; paths start with `autopilot.`.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.last_contact_threshold.is_zero() {
            problems.push((
                "autopilot.last_contact_threshold".to_string(),
                "must be greater than zero".to_string(),
            ));
        }
        if self.max_trailing_logs < 1 {
            problems.push((
                "autopilot.max_trailing_logs".to_string(),
                "must be at least 1".to_string(),
            ));
        }
        problems
    }
}

/// Reports whether `s` is `X.Y.Z` with decimal numbers.
fn is_semver_triple(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Decodes standard or URL-safe base64 (padding optional); `None` if malformed.
/// Written here because the key check is the engine's only use of base64.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let trimmed = s.trim_end_matches('=');
    if s.len() - trimmed.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in trimmed.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A lone trailing sextet cannot encode a whole byte.
    if trimmed.len() % 4 == 1 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_documentation() {
        let c = AgentConfig::default();
        assert_eq!(c.region, "global");
        assert_eq!(c.ports.http, 4646);
        assert_eq!(c.server.heartbeat_grace, Duration::from_secs(10));
        assert_eq!(
            c.server.root_key_rotation_threshold,
            Duration::from_secs(720 * 3600)
        );
        assert_eq!(c.server.job_max_source_size_bytes, 1_000_000);
        assert_eq!(c.server.bootstrap_expect, 0);
        assert_eq!(c.server.num_schedulers, default_core_count());
        assert_eq!(
            c.autopilot.last_contact_threshold,
            Duration::from_millis(200)
        );
        // A disabled server with defaults is valid.
        assert!(c.validate().is_empty(), "{:?}", c.validate());
    }

    #[test]
    fn dev_is_a_valid_single_server() {
        let c = AgentConfig::dev();
        assert!(c.server.enabled);
        assert_eq!(c.server.bootstrap_expect, 1);
        assert_eq!(c.bind_addr, "127.0.0.1");
        assert!(c.validate().is_empty(), "{:?}", c.validate());
    }

    #[test]
    fn validate_reports_every_range_error() {
        let mut s = ServerConfig {
            enabled: true,
            raft_protocol: 2,
            raft_multiplier: 11,
            enabled_schedulers: vec!["service".into(), "cron".into()],
            min_heartbeat_ttl: Duration::ZERO,
            max_heartbeats_per_second: 0.0,
            job_max_priority: 50,
            job_default_priority: 0,
            job_tracked_versions: 0,
            encrypt: "c2hvcnQ=".into(),
            upgrade_version: "1.2".into(),
            raft_snapshot_threshold: 0,
            raft_trailing_logs: 0,
            ..ServerConfig::default()
        };
        s.plan_rejection_tracker.node_threshold = 0;
        let paths: Vec<String> = s.validate().into_iter().map(|(p, _)| p).collect();
        for want in [
            "server.raft_protocol",
            "server.raft_multiplier",
            "server.bootstrap_expect",
            "server.enabled_schedulers[1]",
            "server.min_heartbeat_ttl",
            "server.max_heartbeats_per_second",
            "server.job_max_priority",
            "server.job_default_priority",
            "server.job_tracked_versions",
            "server.encrypt",
            "server.upgrade_version",
            "server.raft_snapshot_threshold",
            "server.raft_trailing_logs",
            "server.plan_rejection_tracker.node_threshold",
        ] {
            assert!(
                paths.iter().any(|p| p == want),
                "missing {want} in {paths:?}"
            );
        }
    }

    #[test]
    fn encrypt_accepts_32_byte_keys_in_both_alphabets() {
        let ok = ServerConfig {
            encrypt: "HH6nFiW+bW1aXm5Zb7ZHGUzR0/2tXRrSM5bXjMKxyF4=".into(),
            ..ServerConfig::default()
        };
        assert!(ok.validate().is_empty(), "{:?}", ok.validate());
        let url_safe = ServerConfig {
            encrypt: "HH6nFiW-bW1aXm5Zb7ZHGUzR0_2tXRrSM5bXjMKxyF4".into(),
            ..ServerConfig::default()
        };
        assert!(url_safe.validate().is_empty());
        let garbage = ServerConfig {
            encrypt: "not base64!".into(),
            ..ServerConfig::default()
        };
        assert_eq!(garbage.validate()[0].0, "server.encrypt");
    }

    #[test]
    fn retry_join_prefers_the_server_join_block() {
        let mut s = ServerConfig {
            retry_join: vec!["a".into()],
            ..ServerConfig::default()
        };
        assert_eq!(s.effective_retry_join(), ["a".to_string()]);
        s.server_join.retry_join = vec!["b".into()];
        assert_eq!(s.effective_retry_join(), ["b".to_string()]);
    }
}
