//! HCL2 job files to Nomad's API JSON job form (what `/v1/jobs/parse` returns).
//!
//! Driven by tables: each block kind lists its attributes (HCL key, JSON field, value kind)
//! and nested blocks. The few shapes the tables cannot express (constraint sugar, ports
//! split into reserved/dynamic, job-level tasks, identities, periodic specs) are handled
//! after the generic walk. `${...}` interpolations are left for the client to evaluate.

use serde_json::{Map, Value};

use super::{FieldError, JobspecError};
use crate::config::tree::{self, Item, ItemKind, Vars};

/// How an attribute's value is checked and converted.
#[derive(Clone, Copy)]
enum K {
    Str,
    Int,
    Bool,
    /// A Go duration string, converted to integer nanoseconds.
    Dur,
    StrList,
    /// A map of strings.
    StrMap,
    /// Anything: kept as written.
    Any,
}

/// How a nested block is placed into its parent.
#[derive(Clone, Copy)]
enum B {
    /// At most one, stored as an object.
    One(&'static Spec),
    /// Repeated, appended to an array.
    Many(&'static Spec),
    /// Repeated with one label, stored as an object keyed by the label.
    Keyed(&'static Spec),
    /// `meta {}` / `env {}`: a map of strings, also accepted as an attribute.
    StrMap,
    /// `config {}`: free-form, also accepted as an attribute.
    Free,
    /// Free-form and repeated.
    FreeMany,
}

struct Spec {
    /// JSON field that receives the block's label; `None` when the block takes no label.
    label: Option<&'static str>,
    attrs: &'static [(&'static str, &'static str, K)],
    blocks: &'static [(&'static str, &'static str, B)],
    /// Fields present (as null) in the output even when not written, like Nomad's nil pointers.
    nulls: &'static [&'static str],
}

const PLACEMENT: [(&str, &str, B); 3] = [
    ("constraint", "Constraints", B::Many(&CONSTRAINT)),
    ("affinity", "Affinities", B::Many(&AFFINITY)),
    ("spread", "Spreads", B::Many(&SPREAD)),
];

static JOB: Spec = Spec {
    label: Some("ID"),
    attrs: &[
        ("region", "Region", K::Str),
        ("namespace", "Namespace", K::Str),
        ("id", "ID", K::Str),
        ("name", "Name", K::Str),
        ("type", "Type", K::Str),
        ("priority", "Priority", K::Int),
        ("all_at_once", "AllAtOnce", K::Bool),
        ("datacenters", "Datacenters", K::StrList),
        ("node_pool", "NodePool", K::Str),
        ("vault_token", "VaultToken", K::Str),
        ("consul_token", "ConsulToken", K::Str),
        ("meta", "Meta", K::StrMap),
    ],
    blocks: &[
        PLACEMENT[0],
        PLACEMENT[1],
        PLACEMENT[2],
        ("group", "TaskGroups", B::Many(&GROUP)),
        ("task", "\u{0}JobTasks", B::Many(&TASK)),
        ("update", "Update", B::One(&UPDATE)),
        ("multiregion", "Multiregion", B::One(&MULTIREGION)),
        ("periodic", "Periodic", B::One(&PERIODIC)),
        ("parameterized", "ParameterizedJob", B::One(&PARAMETERIZED)),
        ("reschedule", "Reschedule", B::One(&RESCHEDULE)),
        ("migrate", "Migrate", B::One(&MIGRATE)),
        ("meta", "Meta", B::StrMap),
        ("ui", "UI", B::One(&UI)),
        ("vault", "Vault", B::Free),
    ],
    nulls: &[
        "Region",
        "Namespace",
        "ParentID",
        "Type",
        "Priority",
        "AllAtOnce",
        "Datacenters",
        "NodePool",
        "Constraints",
        "Affinities",
        "TaskGroups",
        "Update",
        "Multiregion",
        "Spreads",
        "Periodic",
        "ParameterizedJob",
        "Reschedule",
        "Migrate",
        "Meta",
        "ConsulToken",
        "VaultToken",
        "Stop",
        "StatusDescription",
        "Status",
        "Version",
        "SubmitTime",
        "CreateIndex",
        "ModifyIndex",
        "JobModifyIndex",
        "Dispatched",
        "Payload",
        "UI",
    ],
};

static GROUP: Spec = Spec {
    label: Some("Name"),
    attrs: &[
        ("count", "Count", K::Int),
        ("shutdown_delay", "ShutdownDelay", K::Dur),
        ("max_run_duration", "MaxRunDuration", K::Dur),
        (
            "stop_after_client_disconnect",
            "StopAfterClientDisconnect",
            K::Dur,
        ),
        ("max_client_disconnect", "MaxClientDisconnect", K::Dur),
        (
            "prevent_reschedule_on_lost",
            "PreventRescheduleOnLost",
            K::Bool,
        ),
        ("meta", "Meta", K::StrMap),
    ],
    blocks: &[
        PLACEMENT[0],
        PLACEMENT[1],
        PLACEMENT[2],
        ("task", "Tasks", B::Many(&TASK)),
        ("network", "Networks", B::Many(&NETWORK)),
        ("service", "Services", B::Many(&SERVICE)),
        ("volume", "Volumes", B::Keyed(&VOLUME)),
        ("restart", "RestartPolicy", B::One(&RESTART)),
        ("reschedule", "ReschedulePolicy", B::One(&RESCHEDULE)),
        ("ephemeral_disk", "EphemeralDisk", B::One(&EPHEMERAL_DISK)),
        ("update", "Update", B::One(&UPDATE)),
        ("migrate", "Migrate", B::One(&MIGRATE)),
        ("disconnect", "Disconnect", B::One(&DISCONNECT)),
        ("scaling", "Scaling", B::One(&SCALING)),
        ("consul", "Consul", B::Free),
        ("meta", "Meta", B::StrMap),
    ],
    nulls: &[
        "Count",
        "Constraints",
        "Affinities",
        "Tasks",
        "Spreads",
        "Volumes",
        "RestartPolicy",
        "ReschedulePolicy",
        "EphemeralDisk",
        "Update",
        "Migrate",
        "Networks",
        "Meta",
        "Services",
        "ShutdownDelay",
        "StopAfterClientDisconnect",
        "MaxClientDisconnect",
        "Scaling",
        "Consul",
        "Disconnect",
        "PreventRescheduleOnLost",
    ],
};

static TASK: Spec = Spec {
    label: Some("Name"),
    attrs: &[
        ("driver", "Driver", K::Str),
        ("user", "User", K::Str),
        ("kill_timeout", "KillTimeout", K::Dur),
        ("kill_signal", "KillSignal", K::Str),
        ("leader", "Leader", K::Bool),
        ("shutdown_delay", "ShutdownDelay", K::Dur),
        ("kind", "Kind", K::Str),
        ("config", "Config", K::Any),
        ("env", "Env", K::StrMap),
        ("meta", "Meta", K::StrMap),
    ],
    blocks: &[
        PLACEMENT[0],
        PLACEMENT[1],
        ("config", "Config", B::Free),
        ("env", "Env", B::StrMap),
        ("meta", "Meta", B::StrMap),
        ("resources", "Resources", B::One(&RESOURCES)),
        ("service", "Services", B::Many(&SERVICE)),
        ("template", "Templates", B::Many(&TEMPLATE)),
        ("artifact", "Artifacts", B::Many(&ARTIFACT)),
        ("logs", "LogConfig", B::One(&LOGS)),
        ("vault", "Vault", B::Free),
        ("consul", "Consul", B::Free),
        ("lifecycle", "Lifecycle", B::One(&LIFECYCLE)),
        (
            "dispatch_payload",
            "DispatchPayload",
            B::One(&DISPATCH_PAYLOAD),
        ),
        ("volume_mount", "VolumeMounts", B::Many(&VOLUME_MOUNT)),
        ("csi_plugin", "CSIPluginConfig", B::Free),
        ("restart", "RestartPolicy", B::One(&RESTART)),
        ("identity", "\u{0}Identities", B::Many(&IDENTITY)),
        ("secret", "Secrets", B::FreeMany),
        ("action", "Actions", B::FreeMany),
        ("schedule", "Schedule", B::Free),
        ("scaling", "ScalingPolicies", B::FreeMany),
    ],
    nulls: &[
        "Driver",
        "User",
        "Lifecycle",
        "Config",
        "Constraints",
        "Affinities",
        "Env",
        "Services",
        "Resources",
        "RestartPolicy",
        "Meta",
        "KillTimeout",
        "LogConfig",
        "Artifacts",
        "Vault",
        "Templates",
        "DispatchPayload",
        "VolumeMounts",
        "CSIPluginConfig",
        "Leader",
        "ShutdownDelay",
        "KillSignal",
        "Kind",
        "ScalingPolicies",
        "Identity",
        "Identities",
    ],
};

static CONSTRAINT: Spec = Spec {
    label: None,
    attrs: &[
        ("attribute", "LTarget", K::Str),
        ("operator", "Operand", K::Str),
        ("value", "RTarget", K::Str),
        // Sugar forms; rewritten into LTarget/Operand/RTarget after the walk.
        ("distinct_hosts", "\u{0}distinct_hosts", K::Bool),
        ("distinct_property", "\u{0}distinct_property", K::Str),
        ("regexp", "\u{0}regexp", K::Str),
        ("version", "\u{0}version", K::Str),
        ("semver", "\u{0}semver", K::Str),
        ("set_contains", "\u{0}set_contains", K::Str),
        ("set_contains_all", "\u{0}set_contains_all", K::Str),
        ("set_contains_any", "\u{0}set_contains_any", K::Str),
    ],
    blocks: &[],
    nulls: &[],
};

static AFFINITY: Spec = Spec {
    label: None,
    attrs: &[
        ("attribute", "LTarget", K::Str),
        ("operator", "Operand", K::Str),
        ("value", "RTarget", K::Str),
        ("weight", "Weight", K::Int),
        ("regexp", "\u{0}regexp", K::Str),
        ("version", "\u{0}version", K::Str),
        ("semver", "\u{0}semver", K::Str),
        ("set_contains", "\u{0}set_contains", K::Str),
        ("set_contains_all", "\u{0}set_contains_all", K::Str),
        ("set_contains_any", "\u{0}set_contains_any", K::Str),
    ],
    blocks: &[],
    nulls: &[],
};

static SPREAD: Spec = Spec {
    label: None,
    attrs: &[
        ("attribute", "Attribute", K::Str),
        ("weight", "Weight", K::Int),
    ],
    blocks: &[("target", "SpreadTarget", B::Many(&SPREAD_TARGET))],
    nulls: &[],
};

static SPREAD_TARGET: Spec = Spec {
    label: Some("Value"),
    attrs: &[("percent", "Percent", K::Int)],
    blocks: &[],
    nulls: &[],
};

static UPDATE: Spec = Spec {
    label: None,
    attrs: &[
        ("max_parallel", "MaxParallel", K::Int),
        ("health_check", "HealthCheck", K::Str),
        ("min_healthy_time", "MinHealthyTime", K::Dur),
        ("healthy_deadline", "HealthyDeadline", K::Dur),
        ("progress_deadline", "ProgressDeadline", K::Dur),
        ("auto_revert", "AutoRevert", K::Bool),
        ("auto_promote", "AutoPromote", K::Bool),
        ("canary", "Canary", K::Int),
        ("stagger", "Stagger", K::Dur),
    ],
    blocks: &[],
    nulls: &[],
};

static MULTIREGION: Spec = Spec {
    label: None,
    attrs: &[],
    blocks: &[
        ("strategy", "Strategy", B::One(&MULTIREGION_STRATEGY)),
        ("region", "Regions", B::Many(&MULTIREGION_REGION)),
    ],
    nulls: &[],
};

static MULTIREGION_STRATEGY: Spec = Spec {
    label: None,
    attrs: &[
        ("max_parallel", "MaxParallel", K::Int),
        ("on_failure", "OnFailure", K::Str),
    ],
    blocks: &[],
    nulls: &[],
};

static MULTIREGION_REGION: Spec = Spec {
    label: Some("Name"),
    attrs: &[
        ("count", "Count", K::Int),
        ("datacenters", "Datacenters", K::StrList),
        ("node_pool", "NodePool", K::Str),
        ("meta", "Meta", K::StrMap),
    ],
    blocks: &[("meta", "Meta", B::StrMap)],
    nulls: &[],
};

static PERIODIC: Spec = Spec {
    label: None,
    attrs: &[
        ("cron", "Spec", K::Str),
        ("crons", "Specs", K::StrList),
        ("prohibit_overlap", "ProhibitOverlap", K::Bool),
        ("time_zone", "TimeZone", K::Str),
        ("enabled", "Enabled", K::Bool),
    ],
    blocks: &[],
    nulls: &[],
};

static PARAMETERIZED: Spec = Spec {
    label: None,
    attrs: &[
        ("payload", "Payload", K::Str),
        ("meta_required", "MetaRequired", K::StrList),
        ("meta_optional", "MetaOptional", K::StrList),
    ],
    blocks: &[],
    nulls: &[],
};

static RESTART: Spec = Spec {
    label: None,
    attrs: &[
        ("attempts", "Attempts", K::Int),
        ("interval", "Interval", K::Dur),
        ("delay", "Delay", K::Dur),
        ("mode", "Mode", K::Str),
        ("render_templates", "RenderTemplates", K::Bool),
    ],
    blocks: &[],
    nulls: &[],
};

static RESCHEDULE: Spec = Spec {
    label: None,
    attrs: &[
        ("attempts", "Attempts", K::Int),
        ("interval", "Interval", K::Dur),
        ("delay", "Delay", K::Dur),
        ("delay_function", "DelayFunction", K::Str),
        ("max_delay", "MaxDelay", K::Dur),
        ("unlimited", "Unlimited", K::Bool),
    ],
    blocks: &[],
    nulls: &[],
};

static MIGRATE: Spec = Spec {
    label: None,
    attrs: &[
        ("max_parallel", "MaxParallel", K::Int),
        ("health_check", "HealthCheck", K::Str),
        ("min_healthy_time", "MinHealthyTime", K::Dur),
        ("healthy_deadline", "HealthyDeadline", K::Dur),
    ],
    blocks: &[],
    nulls: &[],
};

static EPHEMERAL_DISK: Spec = Spec {
    label: None,
    attrs: &[
        ("size", "SizeMB", K::Int),
        ("sticky", "Sticky", K::Bool),
        ("migrate", "Migrate", K::Bool),
    ],
    blocks: &[],
    nulls: &[],
};

static DISCONNECT: Spec = Spec {
    label: None,
    attrs: &[
        ("lost_after", "LostAfter", K::Dur),
        ("stop_on_client_after", "StopOnClientAfter", K::Dur),
        ("replace", "Replace", K::Bool),
        ("reconcile", "Reconcile", K::Str),
    ],
    blocks: &[],
    nulls: &[],
};

static SCALING: Spec = Spec {
    label: None,
    attrs: &[
        ("min", "Min", K::Int),
        ("max", "Max", K::Int),
        ("enabled", "Enabled", K::Bool),
        ("policy", "Policy", K::Any),
    ],
    blocks: &[("policy", "Policy", B::Free)],
    nulls: &[],
};

static UI: Spec = Spec {
    label: None,
    attrs: &[("description", "Description", K::Str)],
    blocks: &[("link", "Links", B::Many(&UI_LINK))],
    nulls: &[],
};

static UI_LINK: Spec = Spec {
    label: None,
    attrs: &[("label", "Label", K::Str), ("url", "URL", K::Str)],
    blocks: &[],
    nulls: &[],
};

static NETWORK: Spec = Spec {
    label: None,
    attrs: &[
        ("mode", "Mode", K::Str),
        ("hostname", "Hostname", K::Str),
        ("mbits", "MBits", K::Int),
    ],
    blocks: &[
        ("port", "\u{0}Ports", B::Many(&PORT)),
        ("dns", "DNS", B::One(&DNS)),
        ("cni", "CNI", B::Free),
    ],
    nulls: &[],
};

static PORT: Spec = Spec {
    label: Some("Label"),
    attrs: &[
        ("static", "Value", K::Int),
        ("to", "To", K::Int),
        ("host_network", "HostNetwork", K::Str),
        ("ignore_collision", "IgnoreCollision", K::Bool),
    ],
    blocks: &[],
    nulls: &[],
};

static DNS: Spec = Spec {
    label: None,
    attrs: &[
        ("servers", "Servers", K::StrList),
        ("searches", "Searches", K::StrList),
        ("options", "Options", K::StrList),
    ],
    blocks: &[],
    nulls: &[],
};

static RESOURCES: Spec = Spec {
    label: None,
    attrs: &[
        ("cpu", "CPU", K::Int),
        ("cores", "Cores", K::Int),
        ("memory", "MemoryMB", K::Int),
        ("memory_max", "MemoryMaxMB", K::Int),
        ("disk", "DiskMB", K::Int),
        ("iops", "IOPS", K::Int),
        ("secrets", "SecretsMB", K::Int),
    ],
    blocks: &[
        ("device", "Devices", B::Many(&DEVICE)),
        ("network", "Networks", B::Many(&NETWORK)),
        ("numa", "NUMA", B::Free),
    ],
    nulls: &[],
};

static DEVICE: Spec = Spec {
    label: Some("Name"),
    attrs: &[("count", "Count", K::Int)],
    blocks: &[PLACEMENT[0], PLACEMENT[1]],
    nulls: &[],
};

static SERVICE: Spec = Spec {
    label: None,
    attrs: &[
        ("name", "Name", K::Str),
        ("port", "PortLabel", K::Str),
        ("tags", "Tags", K::StrList),
        ("canary_tags", "CanaryTags", K::StrList),
        ("enable_tag_override", "EnableTagOverride", K::Bool),
        ("address_mode", "AddressMode", K::Str),
        ("address", "Address", K::Str),
        ("task", "TaskName", K::Str),
        ("on_update", "OnUpdate", K::Str),
        ("provider", "Provider", K::Str),
        ("cluster", "Cluster", K::Str),
        ("kind", "Kind", K::Str),
        ("meta", "Meta", K::StrMap),
        ("canary_meta", "CanaryMeta", K::StrMap),
        ("tagged_addresses", "TaggedAddresses", K::StrMap),
    ],
    blocks: &[
        ("check", "Checks", B::Many(&CHECK)),
        ("check_restart", "CheckRestart", B::One(&CHECK_RESTART)),
        ("connect", "Connect", B::Free),
        ("meta", "Meta", B::StrMap),
        ("canary_meta", "CanaryMeta", B::StrMap),
        ("identity", "Identity", B::Free),
        ("weights", "Weights", B::Free),
    ],
    nulls: &[],
};

static CHECK: Spec = Spec {
    label: None,
    attrs: &[
        ("name", "Name", K::Str),
        ("type", "Type", K::Str),
        ("command", "Command", K::Str),
        ("args", "Args", K::StrList),
        ("path", "Path", K::Str),
        ("protocol", "Protocol", K::Str),
        ("port", "PortLabel", K::Str),
        ("expose", "Expose", K::Bool),
        ("address_mode", "AddressMode", K::Str),
        ("interval", "Interval", K::Dur),
        ("timeout", "Timeout", K::Dur),
        ("initial_status", "InitialStatus", K::Str),
        ("method", "Method", K::Str),
        ("header", "Header", K::Any),
        ("body", "Body", K::Str),
        ("tls_skip_verify", "TLSSkipVerify", K::Bool),
        ("tls_server_name", "TLSServerName", K::Str),
        ("grpc_service", "GRPCService", K::Str),
        ("grpc_use_tls", "GRPCUseTLS", K::Bool),
        ("success_before_passing", "SuccessBeforePassing", K::Int),
        ("failures_before_critical", "FailuresBeforeCritical", K::Int),
        ("failures_before_warning", "FailuresBeforeWarning", K::Int),
        ("on_update", "OnUpdate", K::Str),
        ("task", "TaskName", K::Str),
    ],
    blocks: &[
        ("check_restart", "CheckRestart", B::One(&CHECK_RESTART)),
        ("header", "Header", B::Free),
    ],
    nulls: &[],
};

static CHECK_RESTART: Spec = Spec {
    label: None,
    attrs: &[
        ("limit", "Limit", K::Int),
        ("grace", "Grace", K::Dur),
        ("ignore_warnings", "IgnoreWarnings", K::Bool),
    ],
    blocks: &[],
    nulls: &[],
};

static TEMPLATE: Spec = Spec {
    label: None,
    attrs: &[
        ("source", "SourcePath", K::Str),
        ("destination", "DestPath", K::Str),
        ("data", "EmbeddedTmpl", K::Str),
        ("change_mode", "ChangeMode", K::Str),
        ("change_signal", "ChangeSignal", K::Str),
        ("splay", "Splay", K::Dur),
        ("perms", "Perms", K::Str),
        ("uid", "Uid", K::Int),
        ("gid", "Gid", K::Int),
        ("env", "Envvars", K::Bool),
        ("left_delimiter", "LeftDelim", K::Str),
        ("right_delimiter", "RightDelim", K::Str),
        ("error_on_missing_key", "ErrMissingKey", K::Bool),
        ("vault_grace", "VaultGrace", K::Dur),
        ("once", "Once", K::Bool),
    ],
    blocks: &[
        ("change_script", "ChangeScript", B::Free),
        ("wait", "Wait", B::Free),
    ],
    nulls: &[],
};

static ARTIFACT: Spec = Spec {
    label: None,
    attrs: &[
        ("source", "GetterSource", K::Str),
        ("destination", "RelativeDest", K::Str),
        ("mode", "GetterMode", K::Str),
        ("insecure", "GetterInsecure", K::Bool),
        ("chown", "Chown", K::Bool),
        ("options", "GetterOptions", K::StrMap),
        ("headers", "GetterHeaders", K::StrMap),
    ],
    blocks: &[
        ("options", "GetterOptions", B::StrMap),
        ("headers", "GetterHeaders", B::StrMap),
    ],
    nulls: &[],
};

static LOGS: Spec = Spec {
    label: None,
    attrs: &[
        ("max_files", "MaxFiles", K::Int),
        ("max_file_size", "MaxFileSizeMB", K::Int),
        ("disabled", "Disabled", K::Bool),
        ("enabled", "Enabled", K::Bool),
    ],
    blocks: &[],
    nulls: &[],
};

static LIFECYCLE: Spec = Spec {
    label: None,
    attrs: &[("hook", "Hook", K::Str), ("sidecar", "Sidecar", K::Bool)],
    blocks: &[],
    nulls: &[],
};

static DISPATCH_PAYLOAD: Spec = Spec {
    label: None,
    attrs: &[("file", "File", K::Str)],
    blocks: &[],
    nulls: &[],
};

static VOLUME: Spec = Spec {
    label: Some("Name"),
    attrs: &[
        ("type", "Type", K::Str),
        ("source", "Source", K::Str),
        ("read_only", "ReadOnly", K::Bool),
        ("sticky", "Sticky", K::Bool),
        ("access_mode", "AccessMode", K::Str),
        ("attachment_mode", "AttachmentMode", K::Str),
        ("per_alloc", "PerAlloc", K::Bool),
    ],
    blocks: &[("mount_options", "MountOptions", B::Free)],
    nulls: &[],
};

static VOLUME_MOUNT: Spec = Spec {
    label: None,
    attrs: &[
        ("volume", "Volume", K::Str),
        ("destination", "Destination", K::Str),
        ("read_only", "ReadOnly", K::Bool),
        ("propagation_mode", "PropagationMode", K::Str),
        ("selinux_label", "SELinuxLabel", K::Str),
    ],
    blocks: &[],
    nulls: &[],
};

static IDENTITY: Spec = Spec {
    label: Some("Name"),
    attrs: &[
        ("name", "Name", K::Str),
        ("aud", "Audience", K::StrList),
        ("env", "Env", K::Bool),
        ("file", "File", K::Bool),
        ("filepath", "Filepath", K::Str),
        ("change_mode", "ChangeMode", K::Str),
        ("change_signal", "ChangeSignal", K::Str),
        ("ttl", "TTL", K::Dur),
    ],
    blocks: &[],
    nulls: &[],
};

/// Collects errors while walking one file.
struct Walker<'v> {
    vars: &'v Vars,
    errors: Vec<FieldError>,
}

impl Walker<'_> {
    fn error(&mut self, path: &str, line: usize, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.to_string(),
            line: (line > 0).then_some(line),
            message: message.into(),
        });
    }

    fn object(
        &mut self,
        block: &Item,
        items: &[Item],
        path: &str,
        spec: &Spec,
    ) -> Map<String, Value> {
        let mut out = Map::new();
        for field in spec.nulls {
            out.insert((*field).to_string(), Value::Null);
        }
        match (spec.label, block.labels.as_slice()) {
            (Some(field), [label]) => {
                out.insert(field.to_string(), Value::String(label.clone()));
            }
            // An unnamed identity block is the task's default identity.
            (Some(_), []) if block.key == "identity" => {}
            (Some(_), []) => self.error(
                path,
                block.line,
                format!("{} block needs a label", block.key),
            ),
            (Some(_), _) => self.error(
                path,
                block.line,
                format!("{} block takes one label", block.key),
            ),
            (None, []) => {}
            (None, _) => self.error(
                path,
                block.line,
                format!("{} block takes no label", block.key),
            ),
        }
        for item in items {
            match &item.kind {
                ItemKind::Attr(value) => {
                    let item_path = format!("{path}.{}", item.key);
                    let Some(&(_, field, kind)) = spec.attrs.iter().find(|a| a.0 == item.key)
                    else {
                        let hint = if spec.blocks.iter().any(|b| b.0 == item.key) {
                            format!("{} must be written as a block", item.key)
                        } else {
                            format!("unknown key {:?}", item.key)
                        };
                        self.error(&item_path, item.line, hint);
                        continue;
                    };
                    let raw = match value.to_json(self.vars) {
                        Ok(v) => v,
                        Err(message) => {
                            self.error(&item_path, item.line, message);
                            continue;
                        }
                    };
                    match convert(&raw, kind) {
                        Ok(v) => {
                            out.insert(field.to_string(), v);
                        }
                        Err(message) => self.error(&item_path, item.line, message),
                    }
                }
                ItemKind::Block(inner) => {
                    let label_part = item
                        .labels
                        .first()
                        .map(|l| format!("[{l}]"))
                        .unwrap_or_default();
                    let item_path = format!("{path}.{}{label_part}", item.key);
                    let Some(&(_, field, kind)) = spec.blocks.iter().find(|b| b.0 == item.key)
                    else {
                        self.error(
                            &item_path,
                            item.line,
                            format!("unknown block {:?}", item.key),
                        );
                        continue;
                    };
                    self.block(&mut out, item, inner, &item_path, field, kind);
                }
            }
        }
        out
    }

    fn block(
        &mut self,
        out: &mut Map<String, Value>,
        item: &Item,
        inner: &[Item],
        path: &str,
        field: &str,
        kind: B,
    ) {
        match kind {
            B::One(spec) => {
                if out.get(field).is_some_and(|v| !v.is_null()) {
                    self.error(
                        path,
                        item.line,
                        format!("only one {} block is allowed", item.key),
                    );
                    return;
                }
                let obj = self.object(item, inner, path, spec);
                out.insert(field.to_string(), Value::Object(obj));
            }
            B::Many(spec) => {
                let obj = self.object(item, inner, path, spec);
                push(out, field, Value::Object(obj));
            }
            B::Keyed(spec) => {
                let obj = self.object(item, inner, path, spec);
                let key = item.labels.first().cloned().unwrap_or_default();
                let slot = out.entry(field.to_string()).or_insert(Value::Null);
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(map) = slot {
                    if map.contains_key(&key) {
                        self.error(path, item.line, format!("duplicate {} {key:?}", item.key));
                    }
                    map.insert(key, Value::Object(obj));
                }
            }
            B::StrMap | B::Free | B::FreeMany => {
                if !item.labels.is_empty() && !matches!(kind, B::FreeMany) {
                    self.error(
                        path,
                        item.line,
                        format!("{} block takes no label", item.key),
                    );
                }
                let value = self.free(inner, path);
                let value = if matches!(kind, B::StrMap) {
                    match convert(&value, K::StrMap) {
                        Ok(v) => v,
                        Err(message) => {
                            self.error(path, item.line, message);
                            return;
                        }
                    }
                } else {
                    value
                };
                if matches!(kind, B::FreeMany) {
                    let mut value = value;
                    if let (Value::Object(map), Some(label)) = (&mut value, item.labels.first()) {
                        map.insert("Name".to_string(), Value::String(label.clone()));
                    }
                    push(out, field, value);
                } else {
                    merge_into(out, field, value);
                }
            }
        }
    }

    /// Converts a free-form block (driver config and the like) to JSON as written:
    /// attributes keep their names, nested blocks become objects (repeated ones, lists).
    fn free(&mut self, items: &[Item], path: &str) -> Value {
        let mut out = Map::new();
        for item in items {
            let item_path = format!("{path}.{}", item.key);
            match &item.kind {
                ItemKind::Attr(v) => match v.to_json(self.vars) {
                    Ok(v) => {
                        out.insert(item.key.clone(), v);
                    }
                    Err(message) => self.error(&item_path, item.line, message),
                },
                ItemKind::Block(inner) => {
                    let mut value = self.free(inner, &item_path);
                    // Labels nest like HCL's JSON form: block "a" "b" {} → {"a": {"b": {...}}}.
                    for label in item.labels.iter().rev() {
                        let mut wrapper = Map::new();
                        wrapper.insert(label.clone(), value);
                        value = Value::Object(wrapper);
                    }
                    match out.get_mut(&item.key) {
                        Some(Value::Array(list)) => list.push(value),
                        Some(existing) => {
                            let first = existing.take();
                            *existing = Value::Array(vec![first, value]);
                        }
                        None => {
                            out.insert(item.key.clone(), value);
                        }
                    }
                }
            }
        }
        Value::Object(out)
    }
}

fn push(out: &mut Map<String, Value>, field: &str, value: Value) {
    let slot = out.entry(field.to_string()).or_insert(Value::Null);
    match slot {
        Value::Array(list) => list.push(value),
        other => *other = Value::Array(vec![value]),
    }
}

fn merge_into(out: &mut Map<String, Value>, field: &str, value: Value) {
    match (out.get_mut(field), value) {
        (Some(Value::Object(existing)), Value::Object(new)) => existing.extend(new),
        (_, value) => {
            out.insert(field.to_string(), value);
        }
    }
}

/// Checks and converts one attribute value.
fn convert(v: &Value, kind: K) -> Result<Value, String> {
    let describe = crate::config::values::describe;
    match kind {
        K::Any => Ok(v.clone()),
        K::Str => match v {
            Value::String(_) => Ok(v.clone()),
            // HCL turns numbers and bools into strings where a string is wanted.
            Value::Number(n) => Ok(Value::String(n.to_string())),
            Value::Bool(b) => Ok(Value::String(b.to_string())),
            other => Err(format!("expected a string, got {}", describe(other))),
        },
        K::Int => match v {
            Value::Number(n) if n.as_i64().is_some() => Ok(v.clone()),
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| format!("expected a whole number, got string {s:?}")),
            other => Err(format!("expected a whole number, got {}", describe(other))),
        },
        K::Bool => match v {
            Value::Bool(_) => Ok(v.clone()),
            Value::String(s) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
            other => Err(format!("expected a bool, got {}", describe(other))),
        },
        K::Dur => match v {
            Value::String(s) => crate::config::values::parse_duration(s)
                .map(|d| Value::from(d.as_nanos().min(i64::MAX as u128) as i64)),
            Value::Number(n) if n.as_i64().is_some() => Ok(v.clone()),
            other => Err(format!(
                "expected a duration like \"30s\", got {}",
                describe(other)
            )),
        },
        K::StrList => match v {
            Value::Array(elems) => elems
                .iter()
                .enumerate()
                .map(|(i, e)| convert(e, K::Str).map_err(|m| format!("element {i}: {m}")))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            other => Err(format!(
                "expected a list of strings, got {}",
                describe(other)
            )),
        },
        K::StrMap => match v {
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, e) in map {
                    out.insert(
                        k.clone(),
                        convert(e, K::Str).map_err(|m| format!("{k}: {m}"))?,
                    );
                }
                Ok(Value::Object(out))
            }
            other => Err(format!(
                "expected a map of strings, got {}",
                describe(other)
            )),
        },
    }
}

/// Parses a job file; see `super::parse_hcl`.
pub(super) fn parse(src: &str, var_file: &str) -> Result<Value, JobspecError> {
    let syntax = |prefix: &str, e: tree::SyntaxError| JobspecError {
        errors: vec![FieldError {
            path: prefix.to_string(),
            line: Some(e.line),
            message: format!("column {}: {}", e.column, e.message),
        }],
    };
    let items = tree::parse_hcl(src).map_err(|e| syntax("", e))?;
    let var_items = tree::parse_hcl(var_file).map_err(|e| syntax("variables", e))?;
    let mut errors = Vec::new();
    let vars = collect_variables(&items, &var_items, &mut errors);
    let mut walker = Walker {
        vars: &vars,
        errors,
    };
    let mut job = None;
    for item in &items {
        match (&item.kind, item.key.as_str()) {
            (ItemKind::Block(inner), "job") => {
                if job.is_some() {
                    walker.error("job", item.line, "only one job block is allowed");
                    continue;
                }
                let mut obj = walker.object(item, inner, "job", &JOB);
                post_process_job(&mut obj, &mut walker);
                job = Some(obj);
            }
            (ItemKind::Block(_), "variable") | (ItemKind::Block(_), "locals") => {}
            _ => walker.error(
                &item.key,
                item.line,
                format!(
                    "unexpected {:?} at top level; expected a job block",
                    item.key
                ),
            ),
        }
    }
    let Some(job) = job else {
        walker.error("", 0, "no job block found");
        return Err(JobspecError {
            errors: walker.errors,
        });
    };
    if walker.errors.is_empty() {
        Ok(Value::Object(job))
    } else {
        Err(JobspecError {
            errors: walker.errors,
        })
    }
}

/// Resolves `variable "name" {}` blocks (default, overridden by `var_file`) and then
/// `locals {}` (which may use variables and earlier locals) into the reference map.
fn collect_variables(items: &[Item], var_file: &[Item], errors: &mut Vec<FieldError>) -> Vars {
    let mut vars = Vars::new();
    let mut declared = Vec::new();
    let empty = Vars::new();
    let error = |errors: &mut Vec<FieldError>, path: String, line: usize, message: String| {
        errors.push(FieldError {
            path,
            line: (line > 0).then_some(line),
            message,
        });
    };
    for item in items {
        let ItemKind::Block(inner) = &item.kind else {
            continue;
        };
        if item.key != "variable" {
            continue;
        }
        let name = item.labels.first().cloned().unwrap_or_default();
        let path = format!("variable[{name}]");
        declared.push((name.clone(), item.line));
        for sub in inner {
            match (&sub.kind, sub.key.as_str()) {
                (ItemKind::Attr(v), "default") => match v.to_json(&empty) {
                    Ok(v) => {
                        vars.insert(format!("var.{name}"), v);
                    }
                    Err(m) => error(errors, format!("{path}.default"), sub.line, m),
                },
                (ItemKind::Attr(_), "type" | "description" | "sensitive" | "nullable") => {}
                (ItemKind::Block(_), "validation") => {}
                _ => error(
                    errors,
                    format!("{path}.{}", sub.key),
                    sub.line,
                    format!("unknown key {:?}", sub.key),
                ),
            }
        }
    }
    for item in var_file {
        let path = format!("variables.{}", item.key);
        match &item.kind {
            ItemKind::Attr(_) if !declared.iter().any(|(n, _)| *n == item.key) => error(
                errors,
                path,
                item.line,
                format!("value given for undeclared variable {:?}", item.key),
            ),
            ItemKind::Attr(v) => match v.to_json(&empty) {
                Ok(v) => {
                    vars.insert(format!("var.{}", item.key), v);
                }
                Err(m) => error(errors, path, item.line, m),
            },
            ItemKind::Block(_) => {
                error(errors, path, item.line, "expected name = value".to_string())
            }
        }
    }
    for (name, line) in declared {
        if !vars.contains_key(&format!("var.{name}")) {
            error(
                errors,
                format!("variable[{name}]"),
                line,
                format!("no value for required variable {name:?}"),
            );
        }
    }
    for item in items {
        let ItemKind::Block(inner) = &item.kind else {
            continue;
        };
        if item.key != "locals" {
            continue;
        }
        for sub in inner {
            let path = format!("locals.{}", sub.key);
            match &sub.kind {
                ItemKind::Attr(v) => match v.to_json(&vars) {
                    Ok(v) => {
                        vars.insert(format!("local.{}", sub.key), v);
                    }
                    Err(m) => error(errors, path, sub.line, m),
                },
                ItemKind::Block(_) => {
                    error(errors, path, sub.line, "expected name = value".to_string())
                }
            }
        }
    }
    vars
}

/// The shapes the tables cannot express.
fn post_process_job(job: &mut Map<String, Value>, walker: &mut Walker<'_>) {
    if let Some(Value::String(id)) = job.get("ID") {
        if job.get("Name").is_none_or(Value::is_null) {
            let id = id.clone();
            job.insert("Name".to_string(), Value::String(id));
        }
    }
    // A job-level task is shorthand for a group holding just that task.
    if let Some(Value::Array(tasks)) = job.remove("\u{0}JobTasks") {
        for task in tasks {
            let name = task.get("Name").cloned().unwrap_or(Value::Null);
            let mut group = Map::new();
            for field in GROUP.nulls {
                group.insert((*field).to_string(), Value::Null);
            }
            group.insert("Name".to_string(), name);
            group.insert("Tasks".to_string(), Value::Array(vec![task]));
            push(job, "TaskGroups", Value::Object(group));
        }
    }
    fix_placement(job, walker);
    if let Some(Value::Object(periodic)) = job.get_mut("Periodic") {
        if periodic.contains_key("Spec") || periodic.contains_key("Specs") {
            periodic.insert("SpecType".to_string(), Value::from("cron"));
        }
    }
    if let Some(Value::Array(groups)) = job.get_mut("TaskGroups") {
        for group in groups.iter_mut() {
            let Value::Object(group) = group else {
                continue;
            };
            fix_placement(group, walker);
            fix_networks(group);
            if let Some(Value::Array(tasks)) = group.get_mut("Tasks") {
                for task in tasks.iter_mut() {
                    let Value::Object(task) = task else { continue };
                    fix_placement(task, walker);
                    fix_task(task);
                    // The deprecated task-level `resources { network {} }` splits ports too.
                    if let Some(Value::Object(resources)) = task.get_mut("Resources") {
                        fix_networks(resources);
                        if let Some(Value::Array(devices)) = resources.get_mut("Devices") {
                            for device in devices.iter_mut().filter_map(Value::as_object_mut) {
                                fix_placement(device, walker);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Rewrites constraint/affinity sugar (`distinct_hosts = true`, `regexp = "..."`, ...) into
/// LTarget/Operand/RTarget and gives plain constraints Nomad's default operand `=`.
fn fix_placement(obj: &mut Map<String, Value>, _walker: &mut Walker<'_>) {
    for field in ["Constraints", "Affinities"] {
        let Some(Value::Array(list)) = obj.get_mut(field) else {
            continue;
        };
        for entry in list.iter_mut() {
            let Value::Object(c) = entry else { continue };
            let sugar: Vec<String> = c
                .keys()
                .filter(|k| k.starts_with('\u{0}'))
                .cloned()
                .collect();
            for key in sugar {
                let value = c.remove(&key).unwrap_or(Value::Null);
                let operand = key.trim_start_matches('\u{0}').to_string();
                match operand.as_str() {
                    "distinct_hosts" => {
                        if value == Value::Bool(true) {
                            c.insert("Operand".to_string(), Value::from(operand));
                        }
                    }
                    "distinct_property" => {
                        c.insert("Operand".to_string(), Value::from(operand));
                        c.insert("LTarget".to_string(), value);
                    }
                    _ => {
                        c.insert("Operand".to_string(), Value::from(operand));
                        c.insert("RTarget".to_string(), value);
                    }
                }
            }
            for f in ["LTarget", "RTarget"] {
                c.entry(f.to_string()).or_insert(Value::from(""));
            }
            c.entry("Operand".to_string()).or_insert(Value::from("="));
            if field == "Affinities" {
                c.entry("Weight".to_string()).or_insert(Value::Null);
            }
        }
    }
}

/// Splits each network's `port` blocks into ReservedPorts (static) and DynamicPorts.
fn fix_networks(owner: &mut Map<String, Value>) {
    if let Some(Value::Array(networks)) = owner.get_mut("Networks") {
        for network in networks.iter_mut() {
            let Value::Object(net) = network else {
                continue;
            };
            let ports = net.remove("\u{0}Ports");
            let mut reserved = Vec::new();
            let mut dynamic = Vec::new();
            if let Some(Value::Array(ports)) = ports {
                for port in ports {
                    let Value::Object(mut p) = port else { continue };
                    let is_static = p.get("Value").and_then(Value::as_i64).unwrap_or(0) > 0;
                    p.entry("Value".to_string()).or_insert(Value::from(0));
                    p.entry("To".to_string()).or_insert(Value::from(0));
                    p.entry("HostNetwork".to_string())
                        .or_insert(Value::from(""));
                    if is_static {
                        reserved.push(Value::Object(p));
                    } else {
                        dynamic.push(Value::Object(p));
                    }
                }
            }
            let list = |v: Vec<Value>| {
                if v.is_empty() {
                    Value::Null
                } else {
                    Value::Array(v)
                }
            };
            net.insert("ReservedPorts".to_string(), list(reserved));
            net.insert("DynamicPorts".to_string(), list(dynamic));
        }
    }
}

/// Template defaults and the default identity, as Nomad's parser applies them.
fn fix_task(task: &mut Map<String, Value>) {
    if let Some(Value::Array(templates)) = task.get_mut("Templates") {
        for t in templates.iter_mut() {
            let Value::Object(t) = t else { continue };
            t.entry("ChangeMode".to_string())
                .or_insert(Value::from("restart"));
            t.entry("Perms".to_string()).or_insert(Value::from("0644"));
            t.entry("Splay".to_string())
                .or_insert(Value::from(5_000_000_000i64));
            t.entry("ErrMissingKey".to_string())
                .or_insert(Value::Bool(false));
        }
    }
    if let Some(Value::Array(identities)) = task.remove("\u{0}Identities") {
        let mut named = Vec::new();
        for identity in identities {
            let name = identity.get("Name").and_then(Value::as_str).unwrap_or("");
            if name.is_empty() || name == "default" {
                task.insert("Identity".to_string(), identity);
            } else {
                named.push(identity);
            }
        }
        if !named.is_empty() {
            task.insert("Identities".to_string(), Value::Array(named));
        }
    }
}
