//! Applies parsed configuration items onto an `AgentConfig`, key by key, with typed checks.
//!
//! Knows every key of the agent file format; an unknown key, a block where a value belongs
//! (or the reverse) and a value of the wrong type each become one `ConfigError` with the
//! file, line and dotted path, and loading carries on so all problems surface together.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use engine::config::AgentConfig;
use sched::{SchedulerAlgorithm, SchedulerConfig};
use serde_json::Value;

use super::tree::{Item, ItemKind, Vars};
use super::{ConfigError, Origin};

/// Where each dotted key path was last set.
#[derive(Debug, Default)]
pub(crate) struct Origins {
    by_path: BTreeMap<String, Origin>,
}

impl Origins {
    /// Finds where `path` was set; an element path such as `server.enabled_schedulers[1]`
    /// resolves to its list.
    pub fn lookup_set(&self, path: &str) -> Option<Origin> {
        let base = match path.find('[') {
            Some(i) => &path[..i],
            None => path,
        };
        self.by_path.get(base).cloned()
    }
}

/// Sets a config field from an item when the value converts cleanly.
macro_rules! set {
    ($s:ident, $item:ident, $path:ident, $kind:ident, $($field:tt)+) => {
        if let Some(v) = $s.$kind($item, &$path) {
            $s.config.$($field)+ = v;
        }
    };
}

/// The running state of a load: the config so far plus collected problems.
pub(crate) struct Apply {
    config: AgentConfig,
    origins: Origins,
    errors: Vec<ConfigError>,
    file: PathBuf,
    /// Nomad appends `enabled_schedulers` and the deprecated join lists across files; the
    /// first file to set one replaces the built-in default instead of appending to it.
    schedulers_set: bool,
    start_join_set: bool,
    retry_join_set: bool,
}

impl Apply {
    pub fn new(base: AgentConfig) -> Self {
        Apply {
            config: base,
            origins: Origins::default(),
            errors: Vec::new(),
            file: PathBuf::new(),
            schedulers_set: false,
            start_join_set: false,
            retry_join_set: false,
        }
    }

    pub fn push_error(&mut self, error: ConfigError) {
        self.errors.push(error);
    }

    pub fn finish(self) -> (AgentConfig, Origins, Vec<ConfigError>) {
        (self.config, self.origins, self.errors)
    }

    /// Applies one file's top-level items.
    pub fn file(&mut self, file: &Path, items: &[Item]) {
        self.file = file.to_path_buf();
        for item in items {
            let path = item.key.clone();
            match item.key.as_str() {
                "name" => set!(self, item, path, string, name),
                "region" => set!(self, item, path, string, region),
                "datacenter" => set!(self, item, path, string, datacenter),
                "data_dir" => {
                    if let Some(v) = self.string(item, &path) {
                        self.config.data_dir = PathBuf::from(v);
                    }
                }
                "bind_addr" => set!(self, item, path, string, bind_addr),
                "log_level" => set!(self, item, path, string, log_level),
                "log_json" => set!(self, item, path, boolean, log_json),
                "leave_on_interrupt" => set!(self, item, path, boolean, leave_on_interrupt),
                "leave_on_terminate" => set!(self, item, path, boolean, leave_on_terminate),
                "enable_debug" => set!(self, item, path, boolean, enable_debug),
                "shards" => {
                    if let Some(v) = self.count(item, &path, usize::MAX as u64) {
                        self.config.shards = Some(v as usize);
                    }
                }
                "ports" => self.ports(item, &path),
                "advertise" => self.advertise(item, &path),
                "server" => self.server(item, &path),
                "autopilot" => self.autopilot(item, &path),
                _ => self.unknown(item, &path),
            }
        }
    }

    fn ports(&mut self, block: &Item, prefix: &str) {
        let Some(items) = self.block(block, prefix) else {
            return;
        };
        for item in items {
            let path = format!("{prefix}.{}", item.key);
            match item.key.as_str() {
                "http" => set!(self, item, path, port, ports.http),
                "rpc" => set!(self, item, path, port, ports.rpc),
                "serf" => set!(self, item, path, port, ports.serf),
                _ => self.unknown(item, &path),
            }
        }
    }

    fn advertise(&mut self, block: &Item, prefix: &str) {
        let Some(items) = self.block(block, prefix) else {
            return;
        };
        for item in items {
            let path = format!("{prefix}.{}", item.key);
            let Some(v) = (match item.key.as_str() {
                "http" | "rpc" | "serf" => self.string(item, &path),
                _ => {
                    self.unknown(item, &path);
                    None
                }
            }) else {
                continue;
            };
            match item.key.as_str() {
                "http" => self.config.advertise.http = Some(v),
                "rpc" => self.config.advertise.rpc = Some(v),
                _ => self.config.advertise.serf = Some(v),
            }
        }
    }

    fn autopilot(&mut self, block: &Item, prefix: &str) {
        let Some(items) = self.block(block, prefix) else {
            return;
        };
        for item in items {
            let path = format!("{prefix}.{}", item.key);
            match item.key.as_str() {
                "cleanup_dead_servers" => {
                    set!(self, item, path, boolean, autopilot.cleanup_dead_servers)
                }
                "last_contact_threshold" => {
                    set!(self, item, path, duration, autopilot.last_contact_threshold)
                }
                "max_trailing_logs" => set!(self, item, path, u64, autopilot.max_trailing_logs),
                "min_quorum" => set!(self, item, path, u32, autopilot.min_quorum),
                "server_stabilization_time" => {
                    set!(
                        self,
                        item,
                        path,
                        duration,
                        autopilot.server_stabilization_time
                    )
                }
                "enable_redundancy_zones" => {
                    set!(self, item, path, boolean, autopilot.enable_redundancy_zones)
                }
                "disable_upgrade_migration" => {
                    set!(
                        self,
                        item,
                        path,
                        boolean,
                        autopilot.disable_upgrade_migration
                    )
                }
                "enable_custom_upgrades" => {
                    set!(self, item, path, boolean, autopilot.enable_custom_upgrades)
                }
                _ => self.unknown(item, &path),
            }
        }
    }

    fn server(&mut self, block: &Item, prefix: &str) {
        let Some(items) = self.block(block, prefix) else {
            return;
        };
        for item in items {
            let path = format!("{prefix}.{}", item.key);
            match item.key.as_str() {
                "enabled" => set!(self, item, path, boolean, server.enabled),
                "authoritative_region" => {
                    set!(self, item, path, string, server.authoritative_region)
                }
                "bootstrap_expect" => set!(self, item, path, u32, server.bootstrap_expect),
                "data_dir" => {
                    if let Some(v) = self.string(item, &path) {
                        self.config.server.data_dir = if v.is_empty() {
                            None
                        } else {
                            Some(PathBuf::from(v))
                        };
                    }
                }
                "enabled_schedulers" => {
                    if let Some(v) = self.strings(item, &path) {
                        let list = &mut self.config.server.enabled_schedulers;
                        if self.schedulers_set {
                            list.extend(v);
                        } else {
                            *list = v;
                            self.schedulers_set = true;
                        }
                    }
                }
                "enable_event_broker" => {
                    set!(self, item, path, boolean, server.enable_event_broker)
                }
                "encrypt" => set!(self, item, path, string, server.encrypt),
                "event_buffer_size" => set!(self, item, path, u64, server.event_buffer_size),
                "node_gc_threshold" => set!(self, item, path, duration, server.node_gc_threshold),
                "job_gc_interval" => set!(self, item, path, duration, server.job_gc_interval),
                "job_gc_threshold" => set!(self, item, path, duration, server.job_gc_threshold),
                "eval_gc_threshold" => set!(self, item, path, duration, server.eval_gc_threshold),
                "batch_eval_gc_threshold" => {
                    set!(self, item, path, duration, server.batch_eval_gc_threshold)
                }
                "deployment_gc_threshold" => {
                    set!(self, item, path, duration, server.deployment_gc_threshold)
                }
                "csi_volume_claim_gc_interval" => {
                    set!(
                        self,
                        item,
                        path,
                        duration,
                        server.csi_volume_claim_gc_interval
                    )
                }
                "csi_volume_claim_gc_threshold" => {
                    set!(
                        self,
                        item,
                        path,
                        duration,
                        server.csi_volume_claim_gc_threshold
                    )
                }
                "csi_plugin_gc_threshold" => {
                    set!(self, item, path, duration, server.csi_plugin_gc_threshold)
                }
                "acl_token_gc_threshold" => {
                    set!(self, item, path, duration, server.acl_token_gc_threshold)
                }
                "default_scheduler_config" => self.scheduler_config(item, &path),
                "heartbeat_grace" => set!(self, item, path, duration, server.heartbeat_grace),
                "min_heartbeat_ttl" => set!(self, item, path, duration, server.min_heartbeat_ttl),
                "failover_heartbeat_ttl" => {
                    set!(self, item, path, duration, server.failover_heartbeat_ttl)
                }
                "max_heartbeats_per_second" => {
                    set!(self, item, path, float, server.max_heartbeats_per_second)
                }
                "non_voting_server" => set!(self, item, path, boolean, server.non_voting_server),
                "num_schedulers" => {
                    if let Some(v) = self.count(item, &path, u32::MAX as u64) {
                        self.config.server.num_schedulers = v as usize;
                    }
                }
                "license_path" => set!(self, item, path, string, server.license_path),
                "plan_rejection_tracker" => self.plan_rejection_tracker(item, &path),
                "raft_boltdb" => {
                    let Some(inner) = self.block(item, &path) else {
                        continue;
                    };
                    for sub in inner {
                        let sub_path = format!("{path}.{}", sub.key);
                        match sub.key.as_str() {
                            "no_freelist_sync" => {
                                set!(
                                    self,
                                    sub,
                                    sub_path,
                                    boolean,
                                    server.raft_boltdb.no_freelist_sync
                                )
                            }
                            _ => self.unknown(sub, &sub_path),
                        }
                    }
                }
                "raft_protocol" => set!(self, item, path, u32, server.raft_protocol),
                "raft_multiplier" => {
                    // Nomad documents 0 as "use the default timing", which is multiplier 1.
                    if let Some(v) = self.u32(item, &path) {
                        self.config.server.raft_multiplier = v.max(1);
                    }
                }
                "raft_snapshot_threshold" => {
                    set!(self, item, path, u64, server.raft_snapshot_threshold)
                }
                "raft_snapshot_interval" => {
                    set!(self, item, path, duration, server.raft_snapshot_interval)
                }
                "raft_trailing_logs" => set!(self, item, path, u64, server.raft_trailing_logs),
                "redundancy_zone" => set!(self, item, path, string, server.redundancy_zone),
                "rejoin_after_leave" => set!(self, item, path, boolean, server.rejoin_after_leave),
                "root_key_gc_interval" => {
                    set!(self, item, path, duration, server.root_key_gc_interval)
                }
                "root_key_gc_threshold" => {
                    set!(self, item, path, duration, server.root_key_gc_threshold)
                }
                "root_key_rotation_threshold" => {
                    set!(
                        self,
                        item,
                        path,
                        duration,
                        server.root_key_rotation_threshold
                    )
                }
                "server_join" => self.server_join(item, &path),
                "start_timeout" => set!(self, item, path, duration, server.start_timeout),
                "upgrade_version" => set!(self, item, path, string, server.upgrade_version),
                "search" => self.search(item, &path),
                "job_max_priority" => set!(self, item, path, u32, server.job_max_priority),
                "job_default_priority" => set!(self, item, path, u32, server.job_default_priority),
                "job_max_source_size" => {
                    set!(self, item, path, size, server.job_max_source_size_bytes)
                }
                "job_tracked_versions" => set!(self, item, path, u32, server.job_tracked_versions),
                "oidc_issuer" => set!(self, item, path, string, server.oidc_issuer),
                // Deprecated spellings of the server_join block, still accepted.
                "retry_join" => {
                    if let Some(v) = self.strings(item, &path) {
                        append_or_replace(
                            &mut self.config.server.retry_join,
                            v,
                            &mut self.retry_join_set,
                        );
                    }
                }
                "start_join" => {
                    if let Some(v) = self.strings(item, &path) {
                        append_or_replace(
                            &mut self.config.server.start_join,
                            v,
                            &mut self.start_join_set,
                        );
                    }
                }
                "retry_interval" => set!(self, item, path, duration, server.retry_interval),
                "retry_max" => set!(self, item, path, u32, server.retry_max),
                _ => self.unknown(item, &path),
            }
        }
    }

    fn server_join(&mut self, block: &Item, prefix: &str) {
        let Some(items) = self.block(block, prefix) else {
            return;
        };
        for item in items {
            let path = format!("{prefix}.{}", item.key);
            match item.key.as_str() {
                // Nomad's server_join merge replaces lists rather than appending.
                "retry_join" => set!(self, item, path, strings, server.server_join.retry_join),
                "start_join" => set!(self, item, path, strings, server.server_join.start_join),
                "retry_max" => set!(self, item, path, u32, server.server_join.retry_max),
                "retry_interval" => {
                    set!(
                        self,
                        item,
                        path,
                        duration,
                        server.server_join.retry_interval
                    )
                }
                _ => self.unknown(item, &path),
            }
        }
    }

    fn plan_rejection_tracker(&mut self, block: &Item, prefix: &str) {
        let Some(items) = self.block(block, prefix) else {
            return;
        };
        for item in items {
            let path = format!("{prefix}.{}", item.key);
            match item.key.as_str() {
                "enabled" => set!(
                    self,
                    item,
                    path,
                    boolean,
                    server.plan_rejection_tracker.enabled
                ),
                "node_threshold" => {
                    set!(
                        self,
                        item,
                        path,
                        u32,
                        server.plan_rejection_tracker.node_threshold
                    )
                }
                "node_window" => {
                    set!(
                        self,
                        item,
                        path,
                        duration,
                        server.plan_rejection_tracker.node_window
                    )
                }
                _ => self.unknown(item, &path),
            }
        }
    }

    fn search(&mut self, block: &Item, prefix: &str) {
        let Some(items) = self.block(block, prefix) else {
            return;
        };
        for item in items {
            let path = format!("{prefix}.{}", item.key);
            match item.key.as_str() {
                "fuzzy_enabled" => set!(self, item, path, boolean, server.search.fuzzy_enabled),
                "limit_query" => set!(self, item, path, u32, server.search.limit_query),
                "limit_results" => set!(self, item, path, u32, server.search.limit_results),
                "min_term_length" => set!(self, item, path, u32, server.search.min_term_length),
                _ => self.unknown(item, &path),
            }
        }
    }

    fn scheduler_config(&mut self, block: &Item, prefix: &str) {
        let Some(items) = self.block(block, prefix) else {
            return;
        };
        let mut sc = self
            .config
            .server
            .default_scheduler_config
            .clone()
            .unwrap_or_default();
        for item in items {
            let path = format!("{prefix}.{}", item.key);
            match item.key.as_str() {
                "scheduler_algorithm" => {
                    if let Some(v) = self.string(item, &path) {
                        match v.as_str() {
                            "binpack" => sc.algorithm = SchedulerAlgorithm::Binpack,
                            "spread" => sc.algorithm = SchedulerAlgorithm::Spread,
                            other => self.error(
                                item,
                                &path,
                                format!("unknown algorithm {other:?}; expected binpack or spread"),
                            ),
                        }
                    }
                }
                "memory_oversubscription_enabled" => {
                    if let Some(v) = self.boolean(item, &path) {
                        sc.memory_oversubscription_enabled = v;
                    }
                }
                "reject_job_registration" => {
                    if let Some(v) = self.boolean(item, &path) {
                        sc.reject_job_registration = v;
                    }
                }
                "pause_eval_broker" => {
                    if let Some(v) = self.boolean(item, &path) {
                        sc.pause_eval_broker = v;
                    }
                }
                "preemption_config" => self.preemption(item, &path, &mut sc),
                _ => self.unknown(item, &path),
            }
        }
        self.config.server.default_scheduler_config = Some(sc);
    }

    fn preemption(&mut self, block: &Item, prefix: &str, sc: &mut SchedulerConfig) {
        let Some(items) = self.block(block, prefix) else {
            return;
        };
        for item in items {
            let path = format!("{prefix}.{}", item.key);
            let slot = match item.key.as_str() {
                "system_scheduler_enabled" => &mut sc.preempt_system,
                "sysbatch_scheduler_enabled" => &mut sc.preempt_sysbatch,
                "batch_scheduler_enabled" => &mut sc.preempt_batch,
                "service_scheduler_enabled" => &mut sc.preempt_service,
                _ => {
                    self.unknown(item, &path);
                    continue;
                }
            };
            if let Some(v) = self.boolean(item, &path) {
                *slot = v;
            }
        }
    }

    // ---- item access and typed conversion --------------------------------------------------

    fn error(&mut self, item: &Item, path: &str, message: String) {
        self.errors.push(ConfigError {
            file: Some(self.file.clone()),
            line: (item.line > 0).then_some(item.line),
            column: None,
            path: path.to_string(),
            message,
        });
    }

    fn unknown(&mut self, item: &Item, path: &str) {
        let what = if matches!(item.kind, ItemKind::Block(_)) {
            "block"
        } else {
            "key"
        };
        self.error(item, path, format!("unknown {what} {:?}", item.key));
    }

    fn remember(&mut self, item: &Item, path: &str) {
        let origin = Origin {
            file: self.file.clone(),
            line: item.line,
        };
        self.origins.by_path.insert(path.to_string(), origin);
    }

    fn block<'a>(&mut self, item: &'a Item, path: &str) -> Option<&'a [Item]> {
        match &item.kind {
            ItemKind::Block(items) if item.labels.is_empty() => {
                self.remember(item, path);
                Some(items)
            }
            ItemKind::Block(_) => {
                self.error(
                    item,
                    path,
                    format!("unexpected block label {:?}", item.labels[0]),
                );
                None
            }
            ItemKind::Attr(_) => {
                self.error(
                    item,
                    path,
                    "expected a block, found an attribute".to_string(),
                );
                None
            }
        }
    }

    fn value(&mut self, item: &Item, path: &str) -> Option<Value> {
        match &item.kind {
            ItemKind::Block(_) => {
                self.error(
                    item,
                    path,
                    "expected an attribute, found a block".to_string(),
                );
                None
            }
            ItemKind::Attr(v) => match v.to_json(&Vars::new()) {
                Ok(v) => {
                    self.remember(item, path);
                    Some(v)
                }
                Err(message) => {
                    self.error(item, path, message);
                    None
                }
            },
        }
    }

    fn typed<T>(
        &mut self,
        item: &Item,
        path: &str,
        convert: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Option<T> {
        let v = self.value(item, path)?;
        match convert(&v) {
            Ok(t) => Some(t),
            Err(message) => {
                self.error(item, path, message);
                None
            }
        }
    }

    fn string(&mut self, item: &Item, path: &str) -> Option<String> {
        self.typed(item, path, |v| match v {
            Value::String(s) => Ok(s.clone()),
            other => Err(format!("expected a string, got {}", describe(other))),
        })
    }

    fn boolean(&mut self, item: &Item, path: &str) -> Option<bool> {
        self.typed(item, path, |v| match v {
            Value::Bool(b) => Ok(*b),
            other => Err(format!("expected a bool, got {}", describe(other))),
        })
    }

    fn count(&mut self, item: &Item, path: &str, max: u64) -> Option<u64> {
        self.typed(item, path, |v| integer(v, max))
    }

    fn u64(&mut self, item: &Item, path: &str) -> Option<u64> {
        self.count(item, path, u64::MAX)
    }

    fn u32(&mut self, item: &Item, path: &str) -> Option<u32> {
        self.count(item, path, u64::from(u32::MAX))
            .map(|v| v as u32)
    }

    fn port(&mut self, item: &Item, path: &str) -> Option<u16> {
        self.count(item, path, u64::from(u16::MAX))
            .map(|v| v as u16)
    }

    fn float(&mut self, item: &Item, path: &str) -> Option<f64> {
        self.typed(item, path, |v| match v {
            Value::Number(n) => n.as_f64().ok_or_else(|| "expected a number".to_string()),
            other => Err(format!("expected a number, got {}", describe(other))),
        })
    }

    fn duration(&mut self, item: &Item, path: &str) -> Option<Duration> {
        self.typed(item, path, |v| match v {
            Value::String(s) => parse_duration(s),
            other => Err(format!(
                "expected a duration string like \"30s\", got {}",
                describe(other)
            )),
        })
    }

    fn size(&mut self, item: &Item, path: &str) -> Option<u64> {
        self.typed(item, path, |v| match v {
            Value::String(s) => parse_size(s),
            Value::Number(_) => integer(v, u64::MAX),
            other => Err(format!(
                "expected a size like \"1MiB\", got {}",
                describe(other)
            )),
        })
    }

    fn strings(&mut self, item: &Item, path: &str) -> Option<Vec<String>> {
        self.typed(item, path, |v| match v {
            Value::Array(elems) => elems
                .iter()
                .enumerate()
                .map(|(i, e)| match e {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(format!(
                        "element {i}: expected a string, got {}",
                        describe(other)
                    )),
                })
                .collect(),
            other => Err(format!(
                "expected a list of strings, got {}",
                describe(other)
            )),
        })
    }
}

fn append_or_replace(list: &mut Vec<String>, values: Vec<String>, set: &mut bool) {
    if *set {
        list.extend(values);
    } else {
        *list = values;
        *set = true;
    }
}

/// Names a JSON value's type for error messages.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("bool {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

fn integer(v: &Value, max: u64) -> Result<u64, String> {
    match v {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                if u <= max {
                    Ok(u)
                } else {
                    Err(format!("must be at most {max}, got {u}"))
                }
            } else if n.as_i64().is_some() {
                Err(format!("must not be negative, got {n}"))
            } else {
                Err(format!("expected a whole number, got {n}"))
            }
        }
        other => Err(format!("expected a whole number, got {}", describe(other))),
    }
}

/// Parses Go's duration syntax: a sequence of decimal numbers with units
/// (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), e.g. `"1h30m"`, `"1.5s"`, `"500ms"`; `"0"` alone
/// needs no unit. Negative durations are rejected since no drover setting takes one.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.starts_with('-') {
        return Err(format!("duration must not be negative, got {text:?}"));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".to_string());
    }
    let mut total_ns: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..digits_end];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(format!("invalid duration {text:?}"));
        }
        rest = &rest[digits_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let unit_ns: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("missing unit in duration {text:?}")),
            other => return Err(format!("unknown unit {other:?} in duration {text:?}")),
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole
                .parse()
                .map_err(|_| format!("invalid duration {text:?}"))?
        };
        let mut part = whole
            .checked_mul(unit_ns)
            .ok_or_else(|| format!("duration {text:?} overflows"))?;
        if !frac.is_empty() {
            // Only as many fraction digits as can matter at nanosecond resolution.
            let frac = &frac[..frac.len().min(18)];
            let f: u128 = frac
                .parse()
                .map_err(|_| format!("invalid duration {text:?}"))?;
            part += f * unit_ns / 10u128.pow(frac.len() as u32);
        }
        total_ns = total_ns
            .checked_add(part)
            .ok_or_else(|| format!("duration {text:?} overflows"))?;
    }
    let secs = u64::try_from(total_ns / 1_000_000_000)
        .map_err(|_| format!("duration {text:?} overflows"))?;
    Ok(Duration::new(secs, (total_ns % 1_000_000_000) as u32))
}

/// Parses a byte size: a number with an optional unit. SI units (`K`/`KB`, `M`/`MB`, ...)
/// are powers of 1000 and IEC units (`Ki`/`KiB`, `Mi`/`MiB`, ...) powers of 1024, as in
/// Nomad; case does not matter.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let multiplier: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mi" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "ti" | "tib" => 1024.0f64.powi(4),
        _ => return Err(format!("unknown size unit in {text:?}")),
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("invalid size {text:?}"))?;
    let bytes = n * multiplier;
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err(format!("size {text:?} is too large"));
    }
    Ok(bytes.round() as u64)
}
