//! Tests for job specs: HCL parsing, canonicalisation and conversion both ways.

use serde_json::{json, Value};

use super::{
    canonicalize, job_from_api, job_list_stub, job_to_api, parse_hcl, parse_hcl_with_variables,
    JobspecError,
};

const WEB: &str = include_str!("../../../examples/web.hcl");
const BATCH: &str = include_str!("../../../examples/batch.hcl");

const BOUNDS: (u16, u16) = (50, 100);

fn paths(err: &JobspecError) -> Vec<String> {
    err.errors.iter().map(|e| e.path.clone()).collect()
}

#[test]
fn web_example_parses_into_api_json() {
    let job = parse_hcl(WEB).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(job["ID"], "web");
    assert_eq!(job["Name"], "web");
    assert_eq!(job["Type"], "service");
    assert_eq!(job["Datacenters"], json!(["dc1"]));
    // Not canonicalised: unset fields are null.
    assert_eq!(job["Priority"], Value::Null);
    assert_eq!(job["Region"], Value::Null);
    assert_eq!(
        job["Constraints"],
        json!([{"LTarget": "${attr.kernel.name}", "RTarget": "linux", "Operand": "="}])
    );
    assert_eq!(job["Update"]["MaxParallel"], 1);
    assert_eq!(job["Update"]["MinHealthyTime"], 10_000_000_000i64);
    assert_eq!(job["Update"]["HealthyDeadline"], 180_000_000_000i64);
    assert_eq!(job["Update"]["AutoRevert"], true);

    let group = &job["TaskGroups"][0];
    assert_eq!(group["Name"], "web");
    assert_eq!(group["Count"], 3);
    assert_eq!(group["RestartPolicy"]["Interval"], 600_000_000_000i64);
    assert_eq!(group["RestartPolicy"]["Mode"], "delay");
    let network = &group["Networks"][0];
    assert_eq!(network["DynamicPorts"][0]["Label"], "http");
    assert_eq!(network["ReservedPorts"][0]["Label"], "admin");
    assert_eq!(network["ReservedPorts"][0]["Value"], 9090);

    let task = &group["Tasks"][0];
    assert_eq!(task["Name"], "server");
    assert_eq!(task["Driver"], "raw_exec");
    assert_eq!(
        task["Config"],
        json!({"command": "/bin/sleep", "args": ["3600"]})
    );
    assert_eq!(task["Env"]["PORT"], "${NOMAD_PORT_http}");
    assert_eq!(task["Resources"]["CPU"], 100);
    assert_eq!(task["Resources"]["MemoryMB"], 64);
}

#[test]
fn batch_example_parses() {
    let job = parse_hcl(BATCH).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(job["Type"], "batch");
    assert_eq!(job["Priority"], 70);
    assert_eq!(job["Meta"], json!({"owner": "ops"}));
    let group = &job["TaskGroups"][0];
    assert_eq!(group["ReschedulePolicy"]["Attempts"], 2);
    assert_eq!(group["ReschedulePolicy"]["Interval"], 3_600_000_000_000i64);
    assert_eq!(group["Tasks"][0]["KillTimeout"], 20_000_000_000i64);
}

#[test]
fn round_trip_hcl_json_job_json_keeps_fields() {
    let mut api = parse_hcl(WEB).unwrap();
    canonicalize(&mut api, 50);
    let job = job_from_api(&api, BOUNDS).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(job.id, "web");
    assert_eq!(job.priority, 50);
    assert_eq!(job.task_groups[0].count, 3);
    assert_eq!(job.task_groups[0].tasks[0].resources.cpu_mhz, 100);
    assert_eq!(job.task_groups[0].tasks[0].resources.memory_mb, 64);
    assert_eq!(job.constraints[0].l_target, "${attr.kernel.name}");
    assert_eq!(job.task_groups[0].networks[0].ports.len(), 2);
    let out = job_to_api(&job);
    for key in [
        "ID",
        "Name",
        "Type",
        "Priority",
        "Datacenters",
        "Constraints",
        "Namespace",
        "Region",
    ] {
        assert_eq!(out[key], api[key], "field {key}");
    }
    assert_eq!(out["Update"]["MaxParallel"], api["Update"]["MaxParallel"]);
    let (g_out, g_in) = (&out["TaskGroups"][0], &api["TaskGroups"][0]);
    for key in [
        "Name",
        "Count",
        "RestartPolicy",
        "ReschedulePolicy",
        "Migrate",
        "EphemeralDisk",
        "Update",
    ] {
        assert_eq!(g_out[key], g_in[key], "group field {key}");
    }
    let (t_out, t_in) = (&g_out["Tasks"][0], &g_in["Tasks"][0]);
    for key in [
        "Name",
        "Driver",
        "Config",
        "Env",
        "KillTimeout",
        "LogConfig",
        "RestartPolicy",
    ] {
        assert_eq!(t_out[key], t_in[key], "task field {key}");
    }
    assert_eq!(t_out["Resources"]["CPU"], 100);
    assert_eq!(
        t_out["Resources"]["Cores"], 0,
        "unmodelled resource fields round-trip"
    );
    // A second trip is stable.
    let again = job_from_api(&out, BOUNDS).unwrap();
    assert_eq!(again, job);
}

#[test]
fn unmodelled_fields_round_trip_through_extra_json() {
    let src = r#"
job "cron" {
  type = "batch"
  periodic {
    crons            = ["*/5 * * * *"]
    prohibit_overlap = true
  }
  group "g" {
    service {
      name = "svc"
      port = "http"
      check {
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"
      }
    }
    task "t" {
      driver = "exec"
      template {
        data        = "hello"
        destination = "local/x"
      }
    }
  }
}
"#;
    let mut api = parse_hcl(src).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(api["Periodic"]["SpecType"], "cron");
    let check = &api["TaskGroups"][0]["Services"][0]["Checks"][0];
    assert_eq!(check["Interval"], 10_000_000_000i64);
    assert_eq!(
        api["TaskGroups"][0]["Tasks"][0]["Templates"][0]["ChangeMode"],
        "restart"
    );
    canonicalize(&mut api, 50);
    assert_eq!(api["Periodic"]["TimeZone"], "UTC");
    let job = job_from_api(&api, BOUNDS).unwrap_or_else(|e| panic!("{e}"));
    let out = job_to_api(&job);
    for key in [
        "Specs",
        "SpecType",
        "ProhibitOverlap",
        "TimeZone",
        "Enabled",
    ] {
        assert_eq!(out["Periodic"][key], api["Periodic"][key], "Periodic.{key}");
    }
    // A single expression is also shown as `Spec`, for clients that read only that.
    assert_eq!(out["Periodic"]["Spec"], "*/5 * * * *");
    assert_eq!(
        out["TaskGroups"][0]["Services"],
        api["TaskGroups"][0]["Services"]
    );
    assert_eq!(
        out["TaskGroups"][0]["Tasks"][0]["Templates"],
        api["TaskGroups"][0]["Tasks"][0]["Templates"]
    );
    let stub = job_list_stub(&job, json!({"JobID": "cron"}));
    assert_eq!(stub["Periodic"], true);
    assert_eq!(stub["ParameterizedJob"], false);
    assert_eq!(stub["JobSummary"]["JobID"], "cron");
    assert_eq!(stub["Type"], "batch");
}

#[test]
fn syntax_errors_name_the_line() {
    let err = parse_hcl("job \"x\" {\n  group \"g\" {\n    count = = 1\n  }\n}\n").unwrap_err();
    assert_eq!(err.errors[0].line, Some(3));
}

#[test]
fn unknown_keys_and_wrong_types_name_paths_and_lines() {
    let src = r#"job "web" {
  group "web" {
    task "api" {
      driver = "docker"
      resources {
        cpu    = "lots"
        colour = "red"
      }
    }
    bogus {}
  }
}
"#;
    let err = parse_hcl(src).unwrap_err();
    let ps = paths(&err);
    assert!(
        ps.contains(&"job.group[web].task[api].resources.cpu".to_string()),
        "{ps:?}"
    );
    assert!(
        ps.contains(&"job.group[web].task[api].resources.colour".to_string()),
        "{ps:?}"
    );
    assert!(ps.contains(&"job.group[web].bogus".to_string()), "{ps:?}");
    let cpu = err
        .errors
        .iter()
        .find(|e| e.path.ends_with("resources.cpu"))
        .unwrap();
    assert_eq!(cpu.line, Some(6));
    assert!(cpu.message.contains("whole number"), "{}", cpu.message);
    assert!(err
        .to_string()
        .contains("line 7: job.group[web].task[api].resources.colour: unknown key"));
}

#[test]
fn constraint_sugar_and_job_level_task() {
    let src = r#"job "solo" {
  constraint {
    distinct_hosts = true
  }
  constraint {
    attribute = "${meta.rack}"
    regexp    = "^r[0-9]+$"
  }
  task "only" {
    driver = "exec"
  }
}
"#;
    let job = parse_hcl(src).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(job["Constraints"][0]["Operand"], "distinct_hosts");
    assert_eq!(job["Constraints"][1]["Operand"], "regexp");
    assert_eq!(job["Constraints"][1]["RTarget"], "^r[0-9]+$");
    assert_eq!(job["TaskGroups"][0]["Name"], "only");
    assert_eq!(job["TaskGroups"][0]["Tasks"][0]["Driver"], "exec");
}

#[test]
fn variables_resolve_and_runtime_interpolations_stay() {
    let src = r#"variable "image" {
  default = "redis:7"
}
job "cache" {
  group "c" {
    task "redis" {
      driver = "docker"
      config {
        image = var.image
        label = "${var.image}-${node.unique.name}"
      }
    }
  }
}
"#;
    let job = parse_hcl(src).unwrap_or_else(|e| panic!("{e}"));
    let config = &job["TaskGroups"][0]["Tasks"][0]["Config"];
    assert_eq!(config["image"], "redis:7");
    assert_eq!(config["label"], "redis:7-${node.unique.name}");
}

#[test]
fn canonicalize_fills_defaults() {
    let mut job = json!({"ID": "example", "Datacenters": ["dc1"], "TaskGroups": [
        {"Name": "cache", "Tasks": [{"Name": "redis", "Driver": "docker", "Config": {"image": "redis:7"}}]}
    ]});
    canonicalize(&mut job, 60);
    assert_eq!(job["Name"], "example");
    assert_eq!(job["Namespace"], "default");
    assert_eq!(job["Priority"], 60);
    assert_eq!(job["Type"], "service");
    assert_eq!(job["Region"], "global");
    assert_eq!(job["Update"]["Stagger"], 30_000_000_000i64);
    assert_eq!(job["Update"]["HealthCheck"], "checks");
    let group = &job["TaskGroups"][0];
    assert_eq!(group["Count"], 1);
    assert_eq!(group["EphemeralDisk"]["SizeMB"], 300);
    assert_eq!(group["RestartPolicy"]["Attempts"], 2);
    assert_eq!(group["ReschedulePolicy"]["DelayFunction"], "exponential");
    assert_eq!(group["ReschedulePolicy"]["Unlimited"], true);
    assert_eq!(group["Migrate"]["MaxParallel"], 1);
    assert_eq!(group["Update"]["ProgressDeadline"], 600_000_000_000i64);
    let task = &group["Tasks"][0];
    assert_eq!(
        task["Resources"],
        json!({"CPU": 100, "Cores": 0, "MemoryMB": 300})
    );
    assert_eq!(task["KillTimeout"], 5_000_000_000i64);
    assert_eq!(task["LogConfig"]["MaxFiles"], 10);
    assert_eq!(task["RestartPolicy"], group["RestartPolicy"]);
}

#[test]
fn canonicalize_batch_defaults_and_job_level_merges() {
    let mut job = json!({"ID": "b", "Type": "batch",
        "Reschedule": {"Attempts": 5},
        "TaskGroups": [{"Name": "g", "Scaling": {"Min": 2}, "Tasks": [{"Name": "t", "Driver": "exec",
            "Resources": {"Cores": 2}, "RestartPolicy": {"Attempts": 9}}]}]});
    canonicalize(&mut job, 50);
    assert_eq!(job["Update"], Value::Null);
    assert_eq!(job["Datacenters"], json!(["*"]));
    let group = &job["TaskGroups"][0];
    assert_eq!(group["Count"], 2, "count defaults to scaling min");
    assert_eq!(group["Update"], Value::Null);
    assert_eq!(group["Migrate"], Value::Null);
    assert_eq!(group["RestartPolicy"]["Attempts"], 3);
    assert_eq!(
        group["ReschedulePolicy"]["Attempts"], 5,
        "job-level reschedule merges into groups"
    );
    assert_eq!(group["ReschedulePolicy"]["DelayFunction"], "constant");
    let task = &group["Tasks"][0];
    assert_eq!(
        task["Resources"]["CPU"], 0,
        "cores make CPU default to zero"
    );
    assert_eq!(task["RestartPolicy"]["Attempts"], 9);
    assert_eq!(task["RestartPolicy"]["Interval"], 86_400_000_000_000i64);
}

#[test]
fn validation_reports_every_error_with_paths() {
    let job = json!({"ID": "", "Type": "nope", "Priority": 500, "TaskGroups": [
        {"Name": "web", "Count": -1, "Tasks": []},
        {"Name": "db", "Tasks": [{"Name": "pg", "Driver": "", "Resources": {"CPU": 10, "MemoryMB": 5}}]},
        {"Name": "db", "Tasks": [{"Name": "x", "Driver": "exec"}],
         "Affinities": [{"LTarget": "${node.class}", "RTarget": "a", "Operand": "=", "Weight": 0}]}
    ]});
    let err = job_from_api(&job, BOUNDS).unwrap_err();
    let text = err.to_string();
    for want in [
        "Job.ID: Missing job ID",
        "Job.Type: Invalid job type: \"nope\"",
        "Job.Priority: Job priority must be between [1, 100]",
        "Job.TaskGroups[web].Count: Task group count can't be negative",
        "Job.TaskGroups[web]: Task group web should have at least one task",
        "Job.TaskGroups[db].Tasks[pg].Driver: Missing task driver",
        "Job.TaskGroups[db].Tasks[pg].Resources.MemoryMB: minimum MemoryMB value is 10; got 5",
        "Job task group 3 redefines 'db' from group 2",
        "Affinity weight cannot be zero",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn missing_task_groups_and_priority_bounds_are_parameters() {
    let err = job_from_api(&json!({"ID": "a"}), BOUNDS).unwrap_err();
    assert!(err
        .to_string()
        .contains("Job must have at least one task group"));
    let job = json!({"ID": "a", "Priority": 500, "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "exec"}]}]});
    assert!(job_from_api(&job, BOUNDS).is_err());
    let ok = job_from_api(&job, (50, 1000)).unwrap();
    assert_eq!(ok.priority, 500);
}

#[test]
fn job_to_api_always_has_update_and_every_field() {
    let mut api = parse_hcl(BATCH).unwrap();
    canonicalize(&mut api, 50);
    let job = job_from_api(&api, BOUNDS).unwrap();
    assert!(job.update.is_none());
    let out = job_to_api(&job);
    assert!(out["Update"].is_object(), "Update is never null");
    assert_eq!(out["Update"]["MaxParallel"], 0);
    for key in [
        "Stop",
        "Region",
        "Namespace",
        "ID",
        "ParentID",
        "Name",
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
        "Multiregion",
        "Periodic",
        "ParameterizedJob",
        "Dispatched",
        "DispatchIdempotencyToken",
        "Payload",
        "Meta",
        "ConsulNamespace",
        "VaultNamespace",
        "NomadTokenID",
        "Status",
        "StatusDescription",
        "Stable",
        "Version",
        "SubmitTime",
        "CreateIndex",
        "ModifyIndex",
        "JobModifyIndex",
        "UI",
        "VersionTag",
    ] {
        assert!(out.get(key).is_some(), "missing {key}");
    }
    assert_eq!(out["Meta"], json!({"owner": "ops"}));
    assert_eq!(
        out["TaskGroups"][0]["Tasks"][0]["KillTimeout"],
        20_000_000_000i64
    );
}

#[test]
fn case_insensitive_fields_are_accepted() {
    let job = json!({"id": "lower", "taskgroups": [{"name": "g", "tasks": [{"name": "t", "driver": "exec"}]}]});
    let j = job_from_api(&job, BOUNDS).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(j.id, "lower");
    assert_eq!(j.task_groups[0].tasks[0].driver, "exec");
}

#[test]
fn placement_blocks_disk_and_volumes_convert() {
    let src = r#"job "placed" {
  type = "system"
  affinity {
    attribute = "${node.datacenter}"
    value     = "dc1"
    weight    = -30
  }
  spread {
    attribute = "${meta.rack}"
    weight    = 80
    target "r1" {
      percent = 60
    }
    target "r2" {
      percent = 40
    }
  }
  group "g" {
    ephemeral_disk {
      size   = 500
      sticky = true
    }
    volume "data" {
      type      = "host"
      source    = "data"
      read_only = true
    }
    task "t" {
      driver = "exec"
      volume_mount {
        volume      = "data"
        destination = "/srv"
      }
      resources {
        cpu        = 250
        memory     = 128
        memory_max = 256
        network {
          port "db" {
            static = 5432
          }
        }
        device "nvidia/gpu" {
          count = 1
          constraint {
            attribute = "${device.attr.memory}"
            operator  = ">="
            value     = "2 GiB"
          }
        }
      }
    }
  }
}
"#;
    let mut api = parse_hcl(src).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(api["TaskGroups"][0]["Volumes"]["data"]["Name"], "data");
    let device = &api["TaskGroups"][0]["Tasks"][0]["Resources"]["Devices"][0];
    assert_eq!(device["Name"], "nvidia/gpu");
    assert_eq!(
        device["Constraints"],
        json!([{"LTarget": "${device.attr.memory}", "Operand": ">=", "RTarget": "2 GiB"}])
    );
    canonicalize(&mut api, 50);
    assert_eq!(
        api["TaskGroups"][0]["ReschedulePolicy"],
        Value::Null,
        "system jobs never reschedule"
    );
    let job = job_from_api(&api, BOUNDS).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(job.affinities[0].weight, -30);
    assert_eq!(job.spreads[0].weight, 80);
    assert_eq!(job.spreads[0].targets.len(), 2);
    assert_eq!(job.spreads[0].targets[1].percent, 40);
    let group = &job.task_groups[0];
    assert_eq!(group.ephemeral_disk_mb, 500);
    assert!(group.ephemeral_disk_sticky);
    assert_eq!(group.tasks[0].resources.memory_max_mb, 256);
    let port = &group.tasks[0].networks[0].ports[0];
    assert_eq!(
        (port.label.as_str(), port.value, port.is_static),
        ("db", 5432, true)
    );
    let out = job_to_api(&job);
    assert_eq!(
        out["TaskGroups"][0]["Volumes"],
        api["TaskGroups"][0]["Volumes"]
    );
    assert_eq!(
        out["TaskGroups"][0]["Tasks"][0]["VolumeMounts"],
        api["TaskGroups"][0]["Tasks"][0]["VolumeMounts"]
    );
    assert_eq!(out["Spreads"], api["Spreads"]);
}

#[test]
fn system_jobs_reject_scaling_and_bad_spreads() {
    let job = json!({"ID": "s", "Type": "system",
        "Spreads": [{"Attribute": "${node.datacenter}", "Weight": 50,
            "SpreadTarget": [{"Value": "a", "Percent": 70}, {"Value": "b", "Percent": 70}]}],
        "TaskGroups": [{"Name": "g", "Scaling": {"Min": 1, "Max": 3},
            "Tasks": [{"Name": "t", "Driver": "exec"}]}]});
    let err = job_from_api(&job, BOUNDS).unwrap_err();
    let ps = paths(&err);
    assert!(
        ps.contains(&"Job.TaskGroups[g].Scaling".to_string()),
        "{ps:?}"
    );
    assert!(ps.contains(&"Job.Spreads[0]".to_string()), "{ps:?}");
}

#[test]
fn variable_files_and_locals() {
    let src = r#"variable "image" {}
variable "count" {
  default = 1
}
locals {
  tag = "${var.image}-v2"
}
job "app" {
  group "g" {
    count = var.count
    task "t" {
      driver = "docker"
      config {
        image = local.tag
      }
    }
  }
}
"#;
    let err = parse_hcl(src).unwrap_err();
    assert!(
        err.to_string()
            .contains("no value for required variable \"image\""),
        "{err}"
    );
    let job = parse_hcl_with_variables(src, "image = \"nginx\"\ncount = 4\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(job["TaskGroups"][0]["Count"], 4);
    assert_eq!(
        job["TaskGroups"][0]["Tasks"][0]["Config"]["image"],
        "nginx-v2"
    );
    let undeclared = parse_hcl_with_variables(src, "image = \"x\"\nnope = 1\n").unwrap_err();
    assert_eq!(undeclared.errors[0].path, "variables.nope");
}

fn batch_job_with(extra: &str) -> serde_json::Value {
    let src = format!(
        r#"
job "tmpl" {{
  type = "batch"
  {extra}
  group "g" {{
    task "t" {{
      driver = "exec"
    }}
  }}
}}
"#
    );
    let mut api = parse_hcl(&src).unwrap_or_else(|e| panic!("{e}"));
    canonicalize(&mut api, 50);
    api
}

fn error_paths(api: &serde_json::Value) -> Vec<(String, String)> {
    match job_from_api(api, BOUNDS) {
        Ok(_) => Vec::new(),
        Err(e) => e.errors.into_iter().map(|f| (f.path, f.message)).collect(),
    }
}

#[test]
fn periodic_blocks_are_modelled() {
    let api = batch_job_with(
        r#"periodic {
    crons            = ["0 3 * * *", "30 4 * * 1"]
    time_zone        = "Europe/Berlin"
    prohibit_overlap = true
  }"#,
    );
    let job = job_from_api(&api, BOUNDS).unwrap_or_else(|e| panic!("{e}"));
    let p = job.periodic.as_ref().expect("periodic");
    assert!(p.enabled);
    assert_eq!(p.spec_type, "cron");
    assert_eq!(p.crons, vec!["0 3 * * *", "30 4 * * 1"]);
    assert_eq!(p.time_zone, "Europe/Berlin");
    assert!(p.prohibit_overlap);
    assert!(
        job.extra_json.find("Periodic").is_none(),
        "{}",
        job.extra_json
    );
    let single = batch_job_with(r#"periodic { cron = "*/5 * * * *" }"#);
    let job = job_from_api(&single, BOUNDS).unwrap();
    assert_eq!(job.periodic.unwrap().crons, vec!["*/5 * * * *"]);
}

#[test]
fn periodic_errors_name_the_field() {
    let bad_cron = batch_job_with(r#"periodic { cron = "61 * * * *" }"#);
    let errors = error_paths(&bad_cron);
    assert!(
        errors
            .iter()
            .any(|(p, m)| p == "Job.Periodic.Specs[0]" && m.contains("Invalid cron spec")),
        "{errors:?}"
    );
    let bad_zone = batch_job_with(
        r#"periodic {
    cron      = "0 * * * *"
    time_zone = "Mars/Olympus_Mons"
  }"#,
    );
    let errors = error_paths(&bad_zone);
    assert!(
        errors
            .iter()
            .any(|(p, m)| p == "Job.Periodic.TimeZone" && m.contains("Mars/Olympus_Mons")),
        "{errors:?}"
    );
    let mut service = batch_job_with(r#"periodic { cron = "0 * * * *" }"#);
    service["Type"] = json!("service");
    let errors = error_paths(&service);
    assert!(
        errors
            .iter()
            .any(|(p, m)| p == "Job.Periodic" && m.contains("batch")),
        "{errors:?}"
    );
    // A disabled block is not validated, as in Nomad.
    let disabled = batch_job_with(
        r#"periodic {
    cron    = "not a cron"
    enabled = false
  }"#,
    );
    assert!(error_paths(&disabled).is_empty());
}

#[test]
fn parameterized_blocks_are_modelled_and_checked() {
    let api = batch_job_with(
        r#"parameterized {
    payload       = "required"
    meta_required = ["owner"]
    meta_optional = ["note"]
  }"#,
    );
    let job = job_from_api(&api, BOUNDS).unwrap_or_else(|e| panic!("{e}"));
    let p = job.parameterized.as_ref().expect("parameterized");
    assert_eq!(p.payload, "required");
    assert_eq!(p.meta_required, vec!["owner"]);
    assert_eq!(p.meta_optional, vec!["note"]);
    let out = job_to_api(&job);
    assert_eq!(out["ParameterizedJob"]["Payload"], "required");
    assert_eq!(out["ParameterizedJob"]["MetaRequired"], json!(["owner"]));
    let stub = job_list_stub(&job, json!({}));
    assert_eq!(stub["ParameterizedJob"], true);
    assert_eq!(stub["Periodic"], false);
    // Payload defaults to optional.
    let plain = batch_job_with("parameterized {}");
    assert_eq!(
        job_from_api(&plain, BOUNDS)
            .unwrap()
            .parameterized
            .unwrap()
            .payload,
        "optional"
    );
    let bad = batch_job_with(r#"parameterized { payload = "sometimes" }"#);
    let errors = error_paths(&bad);
    assert!(
        errors
            .iter()
            .any(|(p, m)| p == "Job.ParameterizedJob.Payload" && m.contains("sometimes")),
        "{errors:?}"
    );
}

#[test]
fn dispatched_children_round_trip_with_their_payload() {
    let api = batch_job_with(r#"parameterized { meta_required = ["owner"] }"#);
    let parent = job_from_api(&api, BOUNDS).unwrap();
    let req = crate::jobspec::DispatchRequest {
        payload: b"hello".to_vec(),
        meta: [("owner".to_string(), "ops".to_string())].into(),
        idempotency_token: String::new(),
    };
    let child =
        crate::jobspec::dispatch_child(&parent, &req, 1_700_000_000_500_000_000, "0a1b2c3d")
            .unwrap();
    assert_eq!(child.id, "tmpl/dispatch-1700000000-0a1b2c3d");
    assert_eq!(child.name, child.id);
    assert_eq!(child.parent_id, "tmpl");
    assert!(child.dispatched);
    assert_eq!(child.meta["owner"], "ops");
    let out = job_to_api(&child);
    assert_eq!(out["Payload"], "aGVsbG8=");
    assert_eq!(out["Dispatched"], true);
    let again = job_from_api(&out, BOUNDS).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again, child);
}

#[test]
fn dispatch_requests_are_checked_against_the_parameterized_job() {
    use crate::jobspec::{dispatch_child, DispatchRequest, DISPATCH_PAYLOAD_BYTES_MAX};
    let api = batch_job_with(
        r#"parameterized {
    payload       = "forbidden"
    meta_required = ["owner"]
    meta_optional = ["note"]
  }"#,
    );
    let parent = job_from_api(&api, BOUNDS).unwrap();
    let meta = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let message = |req: DispatchRequest| {
        dispatch_child(&parent, &req, 0, "00000000")
            .unwrap_err()
            .errors[0]
            .message
            .clone()
    };
    let missing = message(DispatchRequest::default());
    assert!(
        missing.contains("required meta keys") && missing.contains("owner"),
        "{missing}"
    );
    let extra = message(DispatchRequest {
        meta: meta(&[("owner", "a"), ("colour", "red")]),
        ..Default::default()
    });
    assert!(
        extra.contains("unpermitted") && extra.contains("colour"),
        "{extra}"
    );
    let payload = message(DispatchRequest {
        meta: meta(&[("owner", "a")]),
        payload: b"x".to_vec(),
        ..Default::default()
    });
    assert!(payload.contains("Payload is not allowed"), "{payload}");
    let big = message(DispatchRequest {
        meta: meta(&[("owner", "a")]),
        payload: vec![0; DISPATCH_PAYLOAD_BYTES_MAX + 1],
        ..Default::default()
    });
    assert!(big.contains("exceeds maximum size"), "{big}");
    assert!(dispatch_child(
        &parent,
        &DispatchRequest {
            meta: meta(&[("owner", "a"), ("note", "n")]),
            ..Default::default()
        },
        0,
        "00000000"
    )
    .is_ok());
    let mut required = parent.clone();
    required.parameterized.as_mut().unwrap().payload = "required".into();
    let err = dispatch_child(
        &required,
        &DispatchRequest {
            meta: meta(&[("owner", "a")]),
            ..Default::default()
        },
        0,
        "00000000",
    )
    .unwrap_err();
    assert!(err.errors[0]
        .message
        .contains("required by parameterized job"));
    let mut plain = parent.clone();
    plain.parameterized = None;
    let err = dispatch_child(&plain, &DispatchRequest::default(), 0, "00000000").unwrap_err();
    assert_eq!(
        err.errors[0].message,
        "Specified job \"tmpl\" is not a parameterized job"
    );
}

#[test]
fn the_list_stub_carries_a_kept_multiregion_block_and_null_otherwise() {
    let mut api = parse_hcl(WEB).unwrap();
    canonicalize(&mut api, 50);
    let plain = job_from_api(&api, BOUNDS).unwrap();
    assert_eq!(
        job_list_stub(&plain, Value::Null)["Multiregion"],
        Value::Null
    );
    api["Multiregion"] = json!({"Strategy": {"MaxParallel": 1}, "Regions": [{"Name": "east"}]});
    let multi = job_from_api(&api, BOUNDS).unwrap();
    assert_eq!(
        job_list_stub(&multi, Value::Null)["Multiregion"]["Regions"][0]["Name"],
        "east"
    );
}
