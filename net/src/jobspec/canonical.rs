//! Nomad's canonical defaults for a submitted API JSON job (`Canonicalize: true`, and always
//! on register): fills every unset field, merges job-level update/reschedule/migrate into the
//! groups and group restart policies into tasks.

use serde_json::{json, Map, Value};

const SECOND_NS: i64 = 1_000_000_000;
const MINUTE_NS: i64 = 60 * SECOND_NS;
const HOUR_NS: i64 = 60 * MINUTE_NS;

/// The update strategy service and system jobs get when they have none.
pub(crate) fn default_update() -> Value {
    json!({
        "Stagger": 30 * SECOND_NS,
        "MaxParallel": 1,
        "HealthCheck": "checks",
        "MinHealthyTime": 10 * SECOND_NS,
        "HealthyDeadline": 5 * MINUTE_NS,
        "ProgressDeadline": 10 * MINUTE_NS,
        "AutoRevert": false,
        "AutoPromote": false,
        "Canary": 0,
    })
}

fn default_restart(job_type: &str) -> Value {
    if job_type == "batch" || job_type == "sysbatch" {
        json!({"Attempts": 3, "Interval": 24 * HOUR_NS, "Delay": 15 * SECOND_NS,
            "Mode": "fail", "RenderTemplates": false})
    } else {
        json!({"Attempts": 2, "Interval": 30 * MINUTE_NS, "Delay": 15 * SECOND_NS,
            "Mode": "fail", "RenderTemplates": false})
    }
}

fn default_reschedule(job_type: &str) -> Value {
    match job_type {
        "service" => json!({"Attempts": 0, "Interval": 0, "Delay": 30 * SECOND_NS,
            "DelayFunction": "exponential", "MaxDelay": HOUR_NS, "Unlimited": true}),
        "batch" => json!({"Attempts": 1, "Interval": 24 * HOUR_NS, "Delay": 5 * SECOND_NS,
            "DelayFunction": "constant", "MaxDelay": 0, "Unlimited": false}),
        _ => Value::Null,
    }
}

fn default_migrate() -> Value {
    json!({"MaxParallel": 1, "HealthCheck": "checks", "MinHealthyTime": 10 * SECOND_NS,
        "HealthyDeadline": 5 * MINUTE_NS})
}

/// Returns `base` with every non-null field of each layer laid over it in order.
fn overlay(base: Value, layers: &[Option<&Value>]) -> Value {
    let mut out = base;
    for layer in layers.iter().flatten() {
        match (&mut out, layer) {
            (Value::Object(o), Value::Object(l)) => {
                for (k, v) in l {
                    if !v.is_null() {
                        o.insert(k.clone(), v.clone());
                    }
                }
            }
            (_, l) if !l.is_null() => out = (*l).clone(),
            _ => {}
        }
    }
    out
}

fn set_default(obj: &mut Map<String, Value>, key: &str, value: Value) {
    let slot = obj.entry(key.to_string()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = value;
    }
}

fn non_null(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

/// Fills Nomad's defaults; see `super::canonicalize`.
pub(super) fn canonicalize(job: &mut Value, job_default_priority: u16) {
    let Value::Object(job) = job else { return };
    set_default(job, "ID", Value::from(""));
    let id = job.get("ID").cloned().unwrap_or(Value::from(""));
    set_default(job, "Name", id);
    for (key, value) in [
        ("Namespace", Value::from("default")),
        ("Priority", Value::from(job_default_priority)),
        ("Type", Value::from("service")),
        ("Region", Value::from("global")),
        ("NodePool", Value::from("")),
        ("ParentID", Value::from("")),
        ("AllAtOnce", Value::Bool(false)),
        ("Stop", Value::Bool(false)),
        ("Stable", Value::Bool(false)),
        ("Dispatched", Value::Bool(false)),
        ("Status", Value::from("")),
        ("StatusDescription", Value::from("")),
        ("ConsulToken", Value::from("")),
        ("VaultToken", Value::from("")),
        ("ConsulNamespace", Value::from("")),
        ("VaultNamespace", Value::from("")),
        ("NomadTokenID", Value::from("")),
        ("DispatchIdempotencyToken", Value::from("")),
        ("Version", Value::from(0)),
        ("SubmitTime", Value::from(0)),
        ("CreateIndex", Value::from(0)),
        ("ModifyIndex", Value::from(0)),
        ("JobModifyIndex", Value::from(0)),
    ] {
        set_default(job, key, value);
    }
    // Nomad 1.5+ treats an empty datacenter list as "every datacenter".
    if job
        .get("Datacenters")
        .and_then(Value::as_array)
        .is_none_or(|d| d.is_empty())
    {
        job.insert("Datacenters".to_string(), json!(["*"]));
    }
    let job_type = job
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or("service")
        .to_string();
    let wants_update = job_type == "service" || job_type == "system";

    let job_update = non_null(job.get("Update")).cloned();
    let update = match (&job_update, wants_update) {
        (Some(u), _) => overlay(default_update(), &[Some(u)]),
        (None, true) => default_update(),
        (None, false) => Value::Null,
    };
    job.insert("Update".to_string(), update);
    let job_reschedule = non_null(job.get("Reschedule")).cloned();
    let job_migrate = non_null(job.get("Migrate")).cloned();
    canonicalize_placement(job);

    if let Some(Value::Object(periodic)) = job.get_mut("Periodic") {
        set_default(periodic, "Enabled", Value::Bool(true));
        set_default(periodic, "SpecType", Value::from("cron"));
        set_default(periodic, "ProhibitOverlap", Value::Bool(false));
        set_default(periodic, "TimeZone", Value::from("UTC"));
    }
    if let Some(Value::Object(parameterized)) = job.get_mut("ParameterizedJob") {
        set_default(parameterized, "Payload", Value::from("optional"));
    }
    if let Some(Value::Object(multiregion)) = job.get_mut("Multiregion") {
        set_default(
            multiregion,
            "Strategy",
            json!({"MaxParallel": 0, "OnFailure": ""}),
        );
        if let Some(Value::Array(regions)) = multiregion.get_mut("Regions") {
            for region in regions.iter_mut().filter_map(Value::as_object_mut) {
                set_default(region, "Count", Value::from(1));
            }
        }
    }

    let Some(Value::Array(groups)) = job.get_mut("TaskGroups") else {
        return;
    };
    for group in groups.iter_mut().filter_map(Value::as_object_mut) {
        let scaling_min = group
            .get("Scaling")
            .and_then(|s| s.get("Min"))
            .and_then(Value::as_i64);
        set_default(group, "Count", Value::from(scaling_min.unwrap_or(1)));
        let disk = overlay(
            json!({"SizeMB": 300, "Sticky": false, "Migrate": false}),
            &[non_null(group.get("EphemeralDisk"))],
        );
        group.insert("EphemeralDisk".to_string(), disk);

        let group_update = non_null(group.get("Update")).cloned();
        let update = if wants_update || group_update.is_some() {
            overlay(
                default_update(),
                &[job_update.as_ref(), group_update.as_ref()],
            )
        } else {
            Value::Null
        };
        group.insert("Update".to_string(), update);

        let restart = overlay(
            default_restart(&job_type),
            &[non_null(group.get("RestartPolicy"))],
        );
        group.insert("RestartPolicy".to_string(), restart.clone());

        let given_reschedule = non_null(group.get("ReschedulePolicy")).cloned();
        let reschedule_default = default_reschedule(&job_type);
        let reschedule = if reschedule_default.is_null() && given_reschedule.is_none() {
            Value::Null
        } else {
            overlay(
                reschedule_default,
                &[job_reschedule.as_ref(), given_reschedule.as_ref()],
            )
        };
        group.insert("ReschedulePolicy".to_string(), reschedule);

        let given_migrate = non_null(group.get("Migrate")).cloned();
        let migrate = if job_type == "service" || given_migrate.is_some() {
            overlay(
                default_migrate(),
                &[job_migrate.as_ref(), given_migrate.as_ref()],
            )
        } else {
            Value::Null
        };
        group.insert("Migrate".to_string(), migrate);
        canonicalize_placement(group);

        if let Some(Value::Array(tasks)) = group.get_mut("Tasks") {
            for task in tasks.iter_mut().filter_map(Value::as_object_mut) {
                canonicalize_task(task, &restart);
            }
        }
    }
    job.remove("Reschedule");
    job.remove("Migrate");
}

fn canonicalize_task(task: &mut Map<String, Value>, group_restart: &Value) {
    let given = non_null(task.get("Resources")).cloned();
    let cores = given
        .as_ref()
        .and_then(|r| r.get("Cores"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    // With reserved cores the CPU share is derived from them, so CPU defaults to zero.
    let cpu_default = if cores > 0 { 0 } else { 100 };
    let resources = overlay(
        json!({"CPU": cpu_default, "Cores": 0, "MemoryMB": 300}),
        &[given.as_ref()],
    );
    task.insert("Resources".to_string(), resources);
    set_default(task, "KillTimeout", Value::from(5 * SECOND_NS));
    let logs = overlay(
        json!({"MaxFiles": 10, "MaxFileSizeMB": 10, "Disabled": false}),
        &[non_null(task.get("LogConfig"))],
    );
    task.insert("LogConfig".to_string(), logs);
    let restart = overlay(
        group_restart.clone(),
        &[non_null(task.get("RestartPolicy"))],
    );
    task.insert("RestartPolicy".to_string(), restart);
    for (key, value) in [
        ("User", Value::from("")),
        ("Leader", Value::Bool(false)),
        ("KillSignal", Value::from("")),
        ("ShutdownDelay", Value::from(0)),
        ("Kind", Value::from("")),
    ] {
        set_default(task, key, value);
    }
    canonicalize_placement(task);
}

/// Affinities and spreads default to weight 50.
fn canonicalize_placement(obj: &mut Map<String, Value>) {
    for field in ["Affinities", "Spreads"] {
        if let Some(Value::Array(list)) = obj.get_mut(field) {
            for entry in list.iter_mut().filter_map(Value::as_object_mut) {
                set_default(entry, "Weight", Value::from(50));
            }
        }
    }
}
