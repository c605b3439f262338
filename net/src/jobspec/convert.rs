//! API JSON job ↔ internal `Job`: validation with Nomad's messages on the way in, the
//! server output form (`GET /v1/job/:id`, job list stubs) on the way out.
//!
//! Fields the internal types do not model are kept in `extra_json` so they round-trip.

use std::collections::BTreeMap;

use sched::structs::{
    Affinity, Constraint, Job, JobStatus, JobType, MigrateStrategy, NetworkResource, Port,
    ReschedulePolicy, Resources, RestartPolicy, Spread, SpreadTarget, Task, TaskGroup,
    UpdateStrategy,
};
use serde_json::{json, Map, Value};

use super::{FieldError, JobspecError};
use crate::config::values::describe;

/// Constraint operands Nomad accepts.
const CONSTRAINT_OPERANDS: [&str; 19] = [
    "=",
    "==",
    "is",
    "!=",
    "not",
    "<",
    "<=",
    ">",
    ">=",
    "regexp",
    "version",
    "semver",
    "set_contains",
    "set_contains_all",
    "set_contains_any",
    "distinct_hosts",
    "distinct_property",
    "is_set",
    "is_not_set",
];

/// Operands an affinity may use.
const AFFINITY_OPERANDS: [&str; 14] = [
    "=",
    "==",
    "is",
    "!=",
    "not",
    "<",
    "<=",
    ">",
    ">=",
    "regexp",
    "version",
    "semver",
    "set_contains_all",
    "set_contains_any",
];

const JOB_FIELDS: [&str; 31] = [
    "ID",
    "Name",
    "Namespace",
    "Region",
    "ParentID",
    "Type",
    "Priority",
    "AllAtOnce",
    "Datacenters",
    "NodePool",
    "Constraints",
    "Affinities",
    "Spreads",
    "TaskGroups",
    "Update",
    "Meta",
    "Stop",
    "Status",
    "StatusDescription",
    "Stable",
    "Version",
    "SubmitTime",
    "CreateIndex",
    "ModifyIndex",
    "JobModifyIndex",
    "Reschedule",
    "Migrate",
    "Periodic",
    "ParameterizedJob",
    "Dispatched",
    "Payload",
];

const GROUP_FIELDS: [&str; 14] = [
    "Name",
    "Count",
    "Constraints",
    "Affinities",
    "Spreads",
    "Tasks",
    "Networks",
    "Meta",
    "Update",
    "RestartPolicy",
    "ReschedulePolicy",
    "Migrate",
    "EphemeralDisk",
    "ShutdownDelay",
];

const TASK_FIELDS: [&str; 14] = [
    "Name",
    "Driver",
    "User",
    "Config",
    "Env",
    "Meta",
    "Constraints",
    "Affinities",
    "Resources",
    "RestartPolicy",
    "KillTimeout",
    "KillSignal",
    "Leader",
    "ShutdownDelay",
];

const RESOURCE_FIELDS: [&str; 5] = ["CPU", "MemoryMB", "MemoryMaxMB", "DiskMB", "Networks"];

/// Reads fields with type checks, collecting every problem with its path.
pub(super) struct Reader {
    pub(super) errors: Vec<FieldError>,
}

/// Looks a field up like Go's JSON decoder: exact name first, then case-insensitively.
pub(super) fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key)
        .or_else(|| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

impl Reader {
    pub(super) fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.to_string(),
            line: None,
            message: message.into(),
        });
    }

    pub(super) fn string(&mut self, obj: &Map<String, Value>, key: &str, path: &str) -> String {
        match field(obj, key) {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                self.error(
                    &format!("{path}.{key}"),
                    format!("expected a string, got {}", describe(other)),
                );
                String::new()
            }
        }
    }

    fn int(&mut self, obj: &Map<String, Value>, key: &str, path: &str) -> i64 {
        match field(obj, key) {
            None => 0,
            Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64().unwrap_or(0),
            Some(Value::Number(n)) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => {
                n.as_f64().unwrap_or(0.0) as i64
            }
            Some(other) => {
                self.error(
                    &format!("{path}.{key}"),
                    format!("expected a whole number, got {}", describe(other)),
                );
                0
            }
        }
    }

    pub(super) fn boolean(&mut self, obj: &Map<String, Value>, key: &str, path: &str) -> bool {
        match field(obj, key) {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.error(
                    &format!("{path}.{key}"),
                    format!("expected a bool, got {}", describe(other)),
                );
                false
            }
        }
    }

    pub(super) fn strings(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Vec<String> {
        match field(obj, key) {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        other => self.error(
                            &format!("{path}.{key}[{i}]"),
                            format!("expected a string, got {}", describe(other)),
                        ),
                    }
                }
                out
            }
            Some(other) => {
                self.error(
                    &format!("{path}.{key}"),
                    format!("expected a list of strings, got {}", describe(other)),
                );
                Vec::new()
            }
        }
    }

    fn string_map(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> BTreeMap<String, String> {
        match field(obj, key) {
            None => BTreeMap::new(),
            Some(Value::Object(map)) => {
                let mut out = BTreeMap::new();
                for (k, v) in map {
                    match v {
                        Value::String(s) => {
                            out.insert(k.clone(), s.clone());
                        }
                        other => self.error(
                            &format!("{path}.{key}.{k}"),
                            format!("expected a string, got {}", describe(other)),
                        ),
                    }
                }
                out
            }
            Some(other) => {
                self.error(
                    &format!("{path}.{key}"),
                    format!("expected a map of strings, got {}", describe(other)),
                );
                BTreeMap::new()
            }
        }
    }

    /// Iterates an array of objects, reporting non-objects.
    fn objects<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Vec<&'a Map<String, Value>> {
        match field(obj, key) {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::Object(o) => out.push(o),
                        other => self.error(
                            &format!("{path}.{key}[{i}]"),
                            format!("expected an object, got {}", describe(other)),
                        ),
                    }
                }
                out
            }
            Some(other) => {
                self.error(
                    &format!("{path}.{key}"),
                    format!("expected a list, got {}", describe(other)),
                );
                Vec::new()
            }
        }
    }

    pub(super) fn object<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Option<&'a Map<String, Value>> {
        match field(obj, key) {
            None => None,
            Some(Value::Object(o)) => Some(o),
            Some(other) => {
                self.error(
                    &format!("{path}.{key}"),
                    format!("expected an object, got {}", describe(other)),
                );
                None
            }
        }
    }

    fn constraints(&mut self, obj: &Map<String, Value>, path: &str) -> Vec<Constraint> {
        let mut out = Vec::new();
        for (i, c) in self
            .objects(obj, "Constraints", path)
            .into_iter()
            .enumerate()
        {
            let p = format!("{path}.Constraints[{i}]");
            let mut operand = self.string(c, "Operand", &p);
            if operand.is_empty() {
                operand = "=".to_string();
            }
            if !CONSTRAINT_OPERANDS.contains(&operand.as_str()) {
                self.error(
                    &format!("{p}.Operand"),
                    format!("Unknown constraint type {operand:?}"),
                );
            }
            let l_target = self.string(c, "LTarget", &p);
            let r_target = self.string(c, "RTarget", &p);
            let needs_l = !matches!(operand.as_str(), "distinct_hosts");
            if needs_l && l_target.is_empty() {
                self.error(&p, "No LTarget provided but is required by constraint");
            }
            let needs_r = !matches!(
                operand.as_str(),
                "distinct_hosts" | "distinct_property" | "is_set" | "is_not_set"
            );
            if needs_r && r_target.is_empty() {
                self.error(&p, "No RTarget provided but is required by constraint");
            }
            if operand == "regexp" {
                if let Err(e) = regex::Regex::new(&r_target) {
                    self.error(
                        &format!("{p}.RTarget"),
                        format!("Regular expression failed to compile: {e}"),
                    );
                }
            }
            out.push(Constraint {
                l_target,
                r_target,
                operand,
            });
        }
        out
    }

    fn affinities(&mut self, obj: &Map<String, Value>, path: &str) -> Vec<Affinity> {
        let mut out = Vec::new();
        for (i, a) in self
            .objects(obj, "Affinities", path)
            .into_iter()
            .enumerate()
        {
            let p = format!("{path}.Affinities[{i}]");
            let mut operand = self.string(a, "Operand", &p);
            if operand.is_empty() {
                operand = "=".to_string();
            }
            if !AFFINITY_OPERANDS.contains(&operand.as_str()) {
                self.error(
                    &format!("{p}.Operand"),
                    format!("Unknown affinity operator {operand:?}"),
                );
            }
            let l_target = self.string(a, "LTarget", &p);
            if l_target.is_empty() {
                self.error(&p, "No LTarget provided but is required");
            }
            let r_target = self.string(a, "RTarget", &p);
            let weight = if field(a, "Weight").is_some() {
                self.int(a, "Weight", &p)
            } else {
                50
            };
            if weight == 0 {
                self.error(&format!("{p}.Weight"), "Affinity weight cannot be zero");
            } else if !(-100..=100).contains(&weight) {
                self.error(
                    &format!("{p}.Weight"),
                    "Affinity weight must be within the range [-100,100]",
                );
            }
            out.push(Affinity {
                l_target,
                r_target,
                operand,
                weight: weight.clamp(-100, 100) as i8,
            });
        }
        out
    }

    fn spreads(&mut self, obj: &Map<String, Value>, path: &str) -> Vec<Spread> {
        let mut out = Vec::new();
        for (i, s) in self.objects(obj, "Spreads", path).into_iter().enumerate() {
            let p = format!("{path}.Spreads[{i}]");
            let attribute = self.string(s, "Attribute", &p);
            if attribute.is_empty() {
                self.error(&p, "Missing spread attribute");
            }
            let weight = if field(s, "Weight").is_some() {
                self.int(s, "Weight", &p)
            } else {
                50
            };
            if !(0..=100).contains(&weight) {
                self.error(
                    &format!("{p}.Weight"),
                    "Spread block must have a positive weight from 0 to 100",
                );
            }
            let mut targets = Vec::new();
            let mut total = 0;
            for (j, t) in self.objects(s, "SpreadTarget", &p).into_iter().enumerate() {
                let tp = format!("{p}.SpreadTarget[{j}]");
                let value = self.string(t, "Value", &tp);
                let percent = self.int(t, "Percent", &tp);
                if !(0..=100).contains(&percent) {
                    self.error(
                        &format!("{tp}.Percent"),
                        format!(
                            "Spread target percentage for value {value:?} must be between 0 and 100"
                        ),
                    );
                }
                total += percent;
                targets.push(SpreadTarget {
                    value,
                    percent: percent.clamp(0, 100) as u8,
                });
            }
            if total > 100 {
                self.error(
                    &p,
                    format!("Sum of spread target percentages must be at most 100%; got {total}%"),
                );
            }
            out.push(Spread {
                attribute,
                weight: weight.clamp(0, 100) as i8,
                targets,
            });
        }
        out
    }

    fn update(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Option<UpdateStrategy> {
        let u = self.object(obj, key, path)?;
        let p = format!("{path}.{key}");
        let s = UpdateStrategy {
            stagger_ns: self.int(u, "Stagger", &p),
            max_parallel: self.int(u, "MaxParallel", &p),
            health_check: self.string(u, "HealthCheck", &p),
            min_healthy_time_ns: self.int(u, "MinHealthyTime", &p),
            healthy_deadline_ns: self.int(u, "HealthyDeadline", &p),
            progress_deadline_ns: self.int(u, "ProgressDeadline", &p),
            auto_revert: self.boolean(u, "AutoRevert", &p),
            auto_promote: self.boolean(u, "AutoPromote", &p),
            canary: self.int(u, "Canary", &p),
        };
        if s.max_parallel < 0 {
            self.error(
                &format!("{p}.MaxParallel"),
                format!(
                    "Update max parallel count is less than zero ({} < 0)",
                    s.max_parallel
                ),
            );
        }
        if s.canary < 0 {
            self.error(
                &format!("{p}.Canary"),
                format!("Update canary count is less than zero ({} < 0)", s.canary),
            );
        }
        if !["", "checks", "task_states", "manual"].contains(&s.health_check.as_str()) {
            self.error(
                &format!("{p}.HealthCheck"),
                format!("Invalid health check given: {:?}", s.health_check),
            );
        }
        for (name, v) in [
            ("Stagger", s.stagger_ns),
            ("MinHealthyTime", s.min_healthy_time_ns),
            ("HealthyDeadline", s.healthy_deadline_ns),
            ("ProgressDeadline", s.progress_deadline_ns),
        ] {
            if v < 0 {
                self.error(
                    &format!("{p}.{name}"),
                    format!("{name} must not be negative"),
                );
            }
        }
        if s.healthy_deadline_ns > 0 && s.min_healthy_time_ns >= s.healthy_deadline_ns {
            self.error(
                &format!("{p}.MinHealthyTime"),
                "Minimum healthy time must be less than healthy deadline",
            );
        }
        if s.progress_deadline_ns != 0 && s.healthy_deadline_ns > s.progress_deadline_ns {
            self.error(
                &format!("{p}.HealthyDeadline"),
                "Healthy deadline must be less than progress deadline",
            );
        }
        // Nomad treats an update block with MaxParallel 0 as no rolling update at all; storing
        // it as `None` keeps a job re-submitted from its own output unchanged.
        if s.max_parallel == 0 {
            return None;
        }
        Some(s)
    }

    fn restart(&mut self, obj: &Map<String, Value>, path: &str) -> Option<RestartPolicy> {
        let r = self.object(obj, "RestartPolicy", path)?;
        let p = format!("{path}.RestartPolicy");
        let policy = RestartPolicy {
            attempts: self.int(r, "Attempts", &p),
            interval_ns: self.int(r, "Interval", &p),
            delay_ns: self.int(r, "Delay", &p),
            mode: self.string(r, "Mode", &p),
            render_templates: self.boolean(r, "RenderTemplates", &p),
        };
        if !["", "fail", "delay"].contains(&policy.mode.as_str()) {
            self.error(
                &format!("{p}.Mode"),
                format!("Unsupported restart mode: {:?}", policy.mode),
            );
        }
        if policy.attempts < 0 {
            self.error(&format!("{p}.Attempts"), "Attempts must not be negative");
        }
        Some(policy)
    }

    fn reschedule(&mut self, obj: &Map<String, Value>, path: &str) -> Option<ReschedulePolicy> {
        let r = self.object(obj, "ReschedulePolicy", path)?;
        let p = format!("{path}.ReschedulePolicy");
        let policy = ReschedulePolicy {
            attempts: self.int(r, "Attempts", &p),
            interval_ns: self.int(r, "Interval", &p),
            delay_ns: self.int(r, "Delay", &p),
            delay_function: self.string(r, "DelayFunction", &p),
            max_delay_ns: self.int(r, "MaxDelay", &p),
            unlimited: self.boolean(r, "Unlimited", &p),
        };
        if !["", "constant", "exponential", "fibonacci"].contains(&policy.delay_function.as_str()) {
            self.error(
                &format!("{p}.DelayFunction"),
                format!(
                    "Invalid delay function {:?}, must be one of [constant exponential fibonacci]",
                    policy.delay_function
                ),
            );
        }
        Some(policy)
    }

    fn migrate(&mut self, obj: &Map<String, Value>, path: &str) -> Option<MigrateStrategy> {
        let m = self.object(obj, "Migrate", path)?;
        let p = format!("{path}.Migrate");
        let s = MigrateStrategy {
            max_parallel: self.int(m, "MaxParallel", &p),
            health_check: self.string(m, "HealthCheck", &p),
            min_healthy_time_ns: self.int(m, "MinHealthyTime", &p),
            healthy_deadline_ns: self.int(m, "HealthyDeadline", &p),
        };
        if s.max_parallel < 0 {
            self.error(&format!("{p}.MaxParallel"), "MaxParallel must be >= 0");
        }
        Some(s)
    }

    fn networks(&mut self, obj: &Map<String, Value>, path: &str) -> Vec<NetworkResource> {
        let mut out = Vec::new();
        for (i, n) in self.objects(obj, "Networks", path).into_iter().enumerate() {
            let p = format!("{path}.Networks[{i}]");
            let mut ports = Vec::new();
            for (key, is_static) in [("ReservedPorts", true), ("DynamicPorts", false)] {
                for (j, port) in self.objects(n, key, &p).into_iter().enumerate() {
                    let pp = format!("{p}.{key}[{j}]");
                    let label = self.string(port, "Label", &pp);
                    if label.is_empty() {
                        self.error(&pp, "Port label is required");
                    }
                    let value = self.int(port, "Value", &pp);
                    if !(0..=65535).contains(&value) {
                        self.error(
                            &format!("{pp}.Value"),
                            format!("Port {label:?} has invalid value {value}"),
                        );
                    }
                    if is_static && value == 0 {
                        self.error(
                            &format!("{pp}.Value"),
                            format!("Static port {label:?} must be greater than zero"),
                        );
                    }
                    let to = self.int(port, "To", &pp);
                    ports.push(Port {
                        label,
                        value: value.clamp(0, 65535) as u16,
                        to: to.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
                        host_network: self.string(port, "HostNetwork", &pp),
                        is_static,
                    });
                }
            }
            let mut seen = std::collections::BTreeSet::new();
            for port in &ports {
                if !seen.insert(port.label.clone()) {
                    self.error(&p, format!("Port label {:?} already in use", port.label));
                }
            }
            out.push(NetworkResource {
                mode: self.string(n, "Mode", &p),
                mbits: self.int(n, "MBits", &p),
                ports,
            });
        }
        out
    }

    fn task(&mut self, t: &Map<String, Value>, path: &str) -> Task {
        let name = self.string(t, "Name", path);
        if name.is_empty() {
            self.error(path, "Missing task name");
        }
        let driver = self.string(t, "Driver", path);
        if driver.is_empty() {
            self.error(&format!("{path}.Driver"), "Missing task driver");
        }
        let config_json = match field(t, "Config") {
            None => "{}".to_string(),
            Some(v @ Value::Object(_)) => v.to_string(),
            Some(other) => {
                self.error(
                    &format!("{path}.Config"),
                    format!("expected an object, got {}", describe(other)),
                );
                "{}".to_string()
            }
        };
        let mut resources = Resources::default();
        let mut networks = Vec::new();
        let mut extra = extras(t, &TASK_FIELDS);
        if let Some(r) = self.object(t, "Resources", path) {
            let p = format!("{path}.Resources");
            let read = |key: &str, reader: &mut Reader| -> u64 {
                let v = reader.int(r, key, &p);
                if v < 0 {
                    reader.error(&format!("{p}.{key}"), format!("{key} must not be negative"));
                }
                v.max(0) as u64
            };
            resources.cpu_mhz = read("CPU", self);
            resources.memory_mb = read("MemoryMB", self);
            resources.memory_max_mb = read("MemoryMaxMB", self);
            resources.disk_mb = read("DiskMB", self);
            if field(r, "MemoryMB").is_some() && resources.memory_mb < 10 {
                self.error(
                    &format!("{p}.MemoryMB"),
                    format!("minimum MemoryMB value is 10; got {}", resources.memory_mb),
                );
            }
            if resources.memory_max_mb != 0 && resources.memory_max_mb < resources.memory_mb {
                self.error(
                    &format!("{p}.MemoryMaxMB"),
                    format!(
                        "MemoryMaxMB value ({}) should be larger than MemoryMB value ({})",
                        resources.memory_max_mb, resources.memory_mb
                    ),
                );
            }
            networks = self.networks(r, &p);
            let rest = extras(r, &RESOURCE_FIELDS);
            if !rest.is_empty() {
                extra.insert("Resources".to_string(), Value::Object(rest));
            }
        }
        let kill_timeout_ns = self.int(t, "KillTimeout", path);
        if kill_timeout_ns < 0 {
            self.error(
                &format!("{path}.KillTimeout"),
                "KillTimeout must be a positive value",
            );
        }
        Task {
            name,
            driver,
            user: self.string(t, "User", path),
            config_json,
            env: self.string_map(t, "Env", path),
            meta: self.string_map(t, "Meta", path),
            constraints: self.constraints(t, path),
            affinities: self.affinities(t, path),
            resources,
            networks,
            restart: self.restart(t, path),
            kill_timeout_ns,
            kill_signal: self.string(t, "KillSignal", path),
            leader: self.boolean(t, "Leader", path),
            shutdown_delay_ns: self.int(t, "ShutdownDelay", path),
            extra_json: Value::Object(extra).to_string(),
        }
    }

    fn group(&mut self, g: &Map<String, Value>, path: &str, job_type: JobType) -> TaskGroup {
        let name = self.string(g, "Name", path);
        let count = self.int(g, "Count", path);
        if count < 0 {
            self.error(
                &format!("{path}.Count"),
                "Task group count can't be negative",
            );
        }
        if count > i64::from(u32::MAX) {
            self.error(&format!("{path}.Count"), "Task group count is too large");
        }
        if matches!(job_type, JobType::System | JobType::SysBatch) && field(g, "Scaling").is_some()
        {
            self.error(
                &format!("{path}.Scaling"),
                "Task groups of system jobs cannot have a scaling block",
            );
        }
        let tasks_raw = self.objects(g, "Tasks", path);
        if tasks_raw.is_empty() {
            self.error(
                path,
                format!("Task group {name} should have at least one task"),
            );
        }
        let mut tasks = Vec::new();
        let mut leaders = 0;
        for (i, t) in tasks_raw.into_iter().enumerate() {
            let tname = field(t, "Name").and_then(Value::as_str).unwrap_or("");
            let p = if tname.is_empty() {
                format!("{path}.Tasks[{i}]")
            } else {
                format!("{path}.Tasks[{tname}]")
            };
            let task = self.task(t, &p);
            if let Some(prev) = tasks
                .iter()
                .position(|x: &Task| x.name == task.name && !task.name.is_empty())
            {
                self.error(
                    &p,
                    format!(
                        "Task {} redefines '{}' from task {}",
                        i + 1,
                        task.name,
                        prev + 1
                    ),
                );
            }
            leaders += usize::from(task.leader);
            tasks.push(task);
        }
        if leaders > 1 {
            self.error(path, "Only one task may be marked as leader");
        }
        let (disk_mb, sticky, migrate) = match self.object(g, "EphemeralDisk", path) {
            Some(d) => {
                let p = format!("{path}.EphemeralDisk");
                let size = self.int(d, "SizeMB", &p);
                if size < 0 {
                    self.error(&format!("{p}.SizeMB"), "SizeMB must not be negative");
                }
                (
                    size.max(0) as u64,
                    self.boolean(d, "Sticky", &p),
                    self.boolean(d, "Migrate", &p),
                )
            }
            None => (300, false, false),
        };
        TaskGroup {
            name,
            count: count.clamp(0, i64::from(u32::MAX)) as u32,
            constraints: self.constraints(g, path),
            affinities: self.affinities(g, path),
            spreads: self.spreads(g, path),
            tasks,
            networks: self.networks(g, path),
            meta: self.string_map(g, "Meta", path),
            update: self.update(g, "Update", path),
            restart: self.restart(g, path),
            reschedule: self.reschedule(g, path),
            migrate: self.migrate(g, path),
            ephemeral_disk_mb: disk_mb,
            ephemeral_disk_sticky: sticky,
            ephemeral_disk_migrate: migrate,
            shutdown_delay_ns: field(g, "ShutdownDelay")
                .map(|_| self.int(g, "ShutdownDelay", path)),
            extra_json: Value::Object(extras(g, &GROUP_FIELDS)).to_string(),
        }
    }
}

/// The fields of `obj` not listed in `known`. Nulls, `false` and `""` are left out: the
/// output form prints those by default, and leaving them out keeps a second conversion of
/// the output identical to the first.
fn extras(obj: &Map<String, Value>, known: &[&str]) -> Map<String, Value> {
    let is_default = |v: &Value| v.is_null() || *v == Value::Bool(false) || v.as_str() == Some("");
    obj.iter()
        .filter(|(k, v)| !is_default(v) && !known.iter().any(|f| f.eq_ignore_ascii_case(k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Converts and validates; see `super::job_from_api`.
pub(super) fn job_from_api(job: &Value, priority_bounds: (u16, u16)) -> Result<Job, JobspecError> {
    let mut r = Reader { errors: Vec::new() };
    let Value::Object(j) = job else {
        return Err(JobspecError {
            errors: vec![FieldError {
                path: "Job".into(),
                line: None,
                message: format!("expected an object, got {}", describe(job)),
            }],
        });
    };
    let path = "Job";
    let id = r.string(j, "ID", path);
    if id.is_empty() {
        r.error("Job.ID", "Missing job ID");
    } else if id.contains(' ') {
        r.error("Job.ID", "Job ID contains a space");
    } else if id.contains('\0') {
        r.error("Job.ID", "Job ID contains a null character");
    }
    let mut name = r.string(j, "Name", path);
    if name.is_empty() {
        name = id.clone();
    }
    if name.is_empty() {
        r.error("Job.Name", "Missing job name");
    } else if name.contains('\0') {
        r.error("Job.Name", "Job Name contains a null character");
    }
    let type_name = r.string(j, "Type", path);
    let job_type = if type_name.is_empty() {
        JobType::Service
    } else {
        JobType::parse(&type_name).unwrap_or_else(|| {
            r.error("Job.Type", format!("Invalid job type: {type_name:?}"));
            JobType::Service
        })
    };
    let (default_priority, max_priority) = priority_bounds;
    let priority = if field(j, "Priority").is_some() {
        r.int(j, "Priority", path)
    } else {
        i64::from(default_priority)
    };
    if !(1..=i64::from(max_priority)).contains(&priority) {
        r.error(
            "Job.Priority",
            format!("Job priority must be between [1, {max_priority}]"),
        );
    }
    let mut namespace = r.string(j, "Namespace", path);
    if namespace.is_empty() {
        namespace = "default".to_string();
    }
    let mut region = r.string(j, "Region", path);
    if region.is_empty() {
        region = "global".to_string();
    }
    let mut datacenters = r.strings(j, "Datacenters", path);
    if datacenters.is_empty() {
        datacenters.push("*".to_string());
    }
    for (i, dc) in datacenters.iter().enumerate() {
        if dc.is_empty() {
            r.error(
                &format!("Job.Datacenters[{i}]"),
                "datacenter must be non-empty string",
            );
        }
    }
    let groups_raw = r.objects(j, "TaskGroups", path);
    if groups_raw.is_empty() {
        r.error("Job.TaskGroups", "Job must have at least one task group");
    }
    let mut task_groups: Vec<TaskGroup> = Vec::new();
    for (i, g) in groups_raw.into_iter().enumerate() {
        let gname = field(g, "Name").and_then(Value::as_str).unwrap_or("");
        let p = if gname.is_empty() {
            format!("Job.TaskGroups[{i}]")
        } else {
            format!("Job.TaskGroups[{gname}]")
        };
        if gname.is_empty() {
            r.error(&p, format!("Job task group {} missing name", i + 1));
        }
        let group = r.group(g, &p, job_type);
        if let Some(prev) = task_groups
            .iter()
            .position(|x| x.name == group.name && !group.name.is_empty())
        {
            r.error(
                &p,
                format!(
                    "Job task group {} redefines '{}' from group {}",
                    i + 1,
                    group.name,
                    prev + 1
                ),
            );
        }
        task_groups.push(group);
    }
    let periodic = r.periodic(j, path, job_type);
    let parameterized = r.parameterized(j, path, job_type);
    let status = match r.string(j, "Status", path).as_str() {
        "running" => JobStatus::Running,
        "dead" => JobStatus::Dead,
        _ => JobStatus::Pending,
    };
    let out = Job {
        id,
        name,
        namespace,
        region,
        parent_id: r.string(j, "ParentID", path),
        job_type,
        priority: priority.clamp(1, i64::from(u16::MAX)) as u16,
        all_at_once: r.boolean(j, "AllAtOnce", path),
        datacenters,
        node_pool: r.string(j, "NodePool", path),
        constraints: r.constraints(j, path),
        affinities: r.affinities(j, path),
        spreads: r.spreads(j, path),
        task_groups,
        update: r.update(j, "Update", path),
        meta: r.string_map(j, "Meta", path),
        stop: r.boolean(j, "Stop", path),
        status,
        status_description: r.string(j, "StatusDescription", path),
        stable: r.boolean(j, "Stable", path),
        version: r.int(j, "Version", path).max(0) as u64,
        submit_time_ns: r.int(j, "SubmitTime", path),
        create_index: r.int(j, "CreateIndex", path).max(0) as u64,
        modify_index: r.int(j, "ModifyIndex", path).max(0) as u64,
        job_modify_index: r.int(j, "JobModifyIndex", path).max(0) as u64,
        periodic,
        parameterized,
        dispatched: r.boolean(j, "Dispatched", path),
        payload: r.payload(j, path),
        extra_json: Value::Object(extras(j, &JOB_FIELDS)).to_string(),
    };
    if r.errors.is_empty() {
        Ok(out)
    } else {
        Err(JobspecError { errors: r.errors })
    }
}

fn parse_extra(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn constraints_json(list: &[Constraint]) -> Value {
    if list.is_empty() {
        return Value::Null;
    }
    list.iter()
        .map(|c| json!({"LTarget": c.l_target, "RTarget": c.r_target, "Operand": c.operand}))
        .collect()
}

fn affinities_json(list: &[Affinity]) -> Value {
    if list.is_empty() {
        return Value::Null;
    }
    list.iter()
        .map(|a| {
            json!({
                "LTarget": a.l_target, "RTarget": a.r_target,
                "Operand": a.operand, "Weight": a.weight,
            })
        })
        .collect()
}

fn spreads_json(list: &[Spread]) -> Value {
    if list.is_empty() {
        return Value::Null;
    }
    list.iter()
        .map(|s| {
            let targets: Vec<Value> = s
                .targets
                .iter()
                .map(|t| json!({"Value": t.value, "Percent": t.percent}))
                .collect();
            let targets = if targets.is_empty() {
                Value::Null
            } else {
                Value::Array(targets)
            };
            json!({"Attribute": s.attribute, "Weight": s.weight, "SpreadTarget": targets})
        })
        .collect()
}

fn update_json(u: &UpdateStrategy) -> Value {
    json!({
        "Stagger": u.stagger_ns, "MaxParallel": u.max_parallel, "HealthCheck": u.health_check,
        "MinHealthyTime": u.min_healthy_time_ns, "HealthyDeadline": u.healthy_deadline_ns,
        "ProgressDeadline": u.progress_deadline_ns, "AutoRevert": u.auto_revert,
        "AutoPromote": u.auto_promote, "Canary": u.canary,
    })
}

fn map_json(m: &BTreeMap<String, String>) -> Value {
    if m.is_empty() {
        Value::Null
    } else {
        m.iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect::<Map<_, _>>()
            .into()
    }
}

/// Networks print omit-empty like Nomad's NetworkResource and Port.
fn networks_json(list: &[NetworkResource]) -> Value {
    if list.is_empty() {
        return Value::Null;
    }
    list.iter()
        .map(|n| {
            let mut out = Map::new();
            if !n.mode.is_empty() {
                out.insert("Mode".into(), Value::from(n.mode.clone()));
            }
            if n.mbits != 0 {
                out.insert("MBits".into(), Value::from(n.mbits));
            }
            for (key, is_static) in [("ReservedPorts", true), ("DynamicPorts", false)] {
                let ports: Vec<Value> = n
                    .ports
                    .iter()
                    .filter(|p| p.is_static == is_static)
                    .map(|p| {
                        let mut port = Map::new();
                        port.insert("Label".into(), Value::from(p.label.clone()));
                        if p.value != 0 {
                            port.insert("Value".into(), Value::from(p.value));
                        }
                        if p.to != 0 {
                            port.insert("To".into(), Value::from(p.to));
                        }
                        if !p.host_network.is_empty() {
                            port.insert("HostNetwork".into(), Value::from(p.host_network.clone()));
                        }
                        Value::Object(port)
                    })
                    .collect();
                if !ports.is_empty() {
                    out.insert(key.into(), Value::Array(ports));
                }
            }
            Value::Object(out)
        })
        .collect()
}

fn task_json(t: &Task) -> Value {
    let mut extra = parse_extra(&t.extra_json);
    let mut resources = match extra.remove("Resources") {
        Some(Value::Object(r)) => r,
        _ => Map::new(),
    };
    resources.insert("CPU".into(), Value::from(t.resources.cpu_mhz));
    resources.insert("MemoryMB".into(), Value::from(t.resources.memory_mb));
    resources.insert("MemoryMaxMB".into(), Value::from(t.resources.memory_max_mb));
    resources.insert("DiskMB".into(), Value::from(t.resources.disk_mb));
    resources.insert("Networks".into(), networks_json(&t.networks));
    let config: Value = serde_json::from_str(&t.config_json).unwrap_or(Value::Null);
    let mut out = json!({
        "Name": t.name, "Driver": t.driver, "User": t.user, "Config": config,
        "Env": map_json(&t.env), "Meta": map_json(&t.meta),
        "Constraints": constraints_json(&t.constraints),
        "Affinities": affinities_json(&t.affinities),
        "Resources": resources, "RestartPolicy": t.restart.as_ref().map(restart_json),
        "KillTimeout": t.kill_timeout_ns, "KillSignal": t.kill_signal, "Leader": t.leader,
        "ShutdownDelay": t.shutdown_delay_ns,
    });
    for key in [
        "Services",
        "Vault",
        "Secrets",
        "Consul",
        "Templates",
        "DispatchPayload",
        "Lifecycle",
        "LogConfig",
        "Artifacts",
        "VolumeMounts",
        "ScalingPolicies",
        "Kind",
        "CSIPluginConfig",
        "Identity",
        "Identities",
        "Actions",
        "Schedule",
    ] {
        out[key] = Value::Null;
    }
    merge_extra(&mut out, extra);
    out
}

fn restart_json(r: &RestartPolicy) -> Value {
    json!({
        "Attempts": r.attempts, "Interval": r.interval_ns, "Delay": r.delay_ns,
        "Mode": r.mode, "RenderTemplates": r.render_templates,
    })
}

fn merge_extra(out: &mut Value, extra: Map<String, Value>) {
    if let Value::Object(o) = out {
        for (k, v) in extra {
            o.insert(k, v);
        }
    }
}

fn group_json(g: &TaskGroup) -> Value {
    let mut out = json!({
        "Name": g.name, "Count": g.count,
        "Update": g.update.as_ref().map(update_json),
        "Migrate": g.migrate.as_ref().map(|m| json!({
            "MaxParallel": m.max_parallel, "HealthCheck": m.health_check,
            "MinHealthyTime": m.min_healthy_time_ns, "HealthyDeadline": m.healthy_deadline_ns,
        })),
        "Constraints": constraints_json(&g.constraints),
        "RestartPolicy": g.restart.as_ref().map(restart_json),
        "Tasks": g.tasks.iter().map(task_json).collect::<Vec<_>>(),
        "EphemeralDisk": {
            "Sticky": g.ephemeral_disk_sticky, "SizeMB": g.ephemeral_disk_mb,
            "Migrate": g.ephemeral_disk_migrate,
        },
        "Meta": map_json(&g.meta),
        "ReschedulePolicy": g.reschedule.as_ref().map(|r| json!({
            "Attempts": r.attempts, "Interval": r.interval_ns, "Delay": r.delay_ns,
            "DelayFunction": r.delay_function, "MaxDelay": r.max_delay_ns,
            "Unlimited": r.unlimited,
        })),
        "Affinities": affinities_json(&g.affinities),
        "Spreads": spreads_json(&g.spreads),
        "Networks": networks_json(&g.networks),
        "ShutdownDelay": g.shutdown_delay_ns,
    });
    for key in [
        "Scaling",
        "Disconnect",
        "Consul",
        "Services",
        "Volumes",
        "MaxRunDuration",
        "StopAfterClientDisconnect",
        "MaxClientDisconnect",
    ] {
        out[key] = Value::Null;
    }
    out["PreventRescheduleOnLost"] = Value::Bool(false);
    merge_extra(&mut out, parse_extra(&g.extra_json));
    out
}

/// The server output form; see `super::job_to_api`.
pub(super) fn job_to_api(job: &Job) -> Value {
    let zero_update = UpdateStrategy {
        stagger_ns: 0,
        max_parallel: 0,
        health_check: String::new(),
        min_healthy_time_ns: 0,
        healthy_deadline_ns: 0,
        progress_deadline_ns: 0,
        auto_revert: false,
        auto_promote: false,
        canary: 0,
    };
    let mut out = json!({
        "Stop": job.stop, "Region": job.region, "Namespace": job.namespace, "ID": job.id,
        "ParentID": job.parent_id, "Name": job.name, "Type": job.job_type.as_str(),
        "Priority": job.priority, "AllAtOnce": job.all_at_once, "Datacenters": job.datacenters,
        "NodePool": job.node_pool, "Constraints": constraints_json(&job.constraints),
        "Affinities": affinities_json(&job.affinities), "Spreads": spreads_json(&job.spreads),
        "TaskGroups": job.task_groups.iter().map(group_json).collect::<Vec<_>>(),
        "Update": update_json(job.update.as_ref().unwrap_or(&zero_update)),
        "Multiregion": null, "Periodic": super::templates::periodic_json(job.periodic.as_ref()),
        "ParameterizedJob": super::templates::parameterized_json(job.parameterized.as_ref()),
        "Dispatched": job.dispatched, "DispatchIdempotencyToken": "",
        "Payload": super::templates::payload_json(&job.payload), "Meta": map_json(&job.meta),
        "ConsulNamespace": "", "VaultNamespace": "", "NomadTokenID": "",
        "Status": job.status.as_str(), "StatusDescription": job.status_description,
        "Stable": job.stable, "Version": job.version, "SubmitTime": job.submit_time_ns,
        "CreateIndex": job.create_index, "ModifyIndex": job.modify_index,
        "JobModifyIndex": job.job_modify_index, "UI": null, "VersionTag": null,
    });
    merge_extra(&mut out, parse_extra(&job.extra_json));
    out
}

/// The list stub's fields that are not plain job fields: `Multiregion` (as given) and
/// whether `Periodic` and `ParameterizedJob` are set.
pub(super) fn list_stub_extras(job: &Job) -> (Value, bool, bool) {
    // A list reads this for every job: parse the kept fields only when they can hold it.
    let multiregion = if job.extra_json.contains("\"Multiregion\"") {
        parse_extra(&job.extra_json)
            .remove("Multiregion")
            .unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    (
        multiregion,
        job.periodic.is_some(),
        job.parameterized.is_some(),
    )
}

/// The list stub; see `super::job_list_stub`.
pub(super) fn job_list_stub(job: &Job, summary_json: Value) -> Value {
    let (multiregion, periodic, parameterized) = list_stub_extras(job);
    json!({
        "ID": job.id, "ParentID": job.parent_id, "Name": job.name, "Namespace": job.namespace,
        "Datacenters": job.datacenters, "NodePool": job.node_pool,
        "Multiregion": multiregion,
        "Type": job.job_type.as_str(), "Priority": job.priority,
        "Periodic": periodic, "ParameterizedJob": parameterized,
        "Stop": job.stop, "Status": job.status.as_str(),
        "StatusDescription": job.status_description,
        "JobSummary": summary_json, "CreateIndex": job.create_index,
        "ModifyIndex": job.modify_index,
        "JobModifyIndex": job.job_modify_index, "SubmitTime": job.submit_time_ns,
    })
}
