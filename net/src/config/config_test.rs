//! Tests for the agent config loader: full files, defaults, errors and merging.

use std::path::{Path, PathBuf};
use std::time::Duration;

use engine::config::AgentConfig;
use sched::SchedulerAlgorithm;

use super::values::{parse_duration, parse_size};
use super::{load_agent_config, parse_agent_config, ConfigErrors};

const FULL: &str = r#"
name       = "srv-1"
region     = "eu"
datacenter = "dc2"
data_dir   = "/var/lib/drover"
bind_addr  = "10.0.0.5"
log_level  = "DEBUG"
log_json   = true
shards     = 3
leave_on_interrupt = true
leave_on_terminate = true

ports {
  http = 5646
  rpc  = 5647
  serf = 5648
}

advertise {
  http = "1.2.3.4:5646"
  rpc  = "1.2.3.4:5647"
  serf = "1.2.3.4:5648"
}

autopilot {
  cleanup_dead_servers      = false
  last_contact_threshold    = "300ms"
  max_trailing_logs         = 500
  min_quorum                = 3
  server_stabilization_time = "20s"
  enable_redundancy_zones   = true
  disable_upgrade_migration = true
  enable_custom_upgrades    = true
}

server {
  enabled                       = true
  authoritative_region          = "eu"
  bootstrap_expect              = 3
  data_dir                      = "/var/lib/drover/server"
  enabled_schedulers            = ["service", "batch"]
  enable_event_broker           = false
  encrypt                       = "HH6nFiW+bW1aXm5Zb7ZHGUzR0/2tXRrSM5bXjMKxyF4="
  event_buffer_size             = 200
  node_gc_threshold             = "48h"
  job_gc_interval               = "10m"
  job_gc_threshold              = "8h"
  eval_gc_threshold             = "2h"
  batch_eval_gc_threshold       = "12h"
  deployment_gc_threshold       = "3h"
  csi_volume_claim_gc_interval  = "6m"
  csi_volume_claim_gc_threshold = "2h"
  csi_plugin_gc_threshold       = "90m"
  acl_token_gc_threshold        = "4h"
  heartbeat_grace               = "1m30s"
  min_heartbeat_ttl             = "15s"
  failover_heartbeat_ttl        = "10m"
  max_heartbeats_per_second     = 75.5
  non_voting_server             = true
  num_schedulers                = 0
  license_path                  = "/etc/license"
  raft_protocol                 = 3
  raft_multiplier               = 5
  raft_snapshot_threshold       = 100
  raft_snapshot_interval        = "60s"
  raft_trailing_logs            = 200
  redundancy_zone               = "z1"
  rejoin_after_leave            = true
  root_key_gc_interval          = "20m"
  root_key_gc_threshold         = "2h"
  root_key_rotation_threshold   = "360h"
  start_timeout                 = "1m"
  upgrade_version               = "1.2.3"
  job_max_priority              = 200
  job_default_priority          = 70
  job_max_source_size           = "2MiB"
  job_tracked_versions          = 10
  oidc_issuer                   = "https://drover.example.com"

  server_join {
    retry_join     = ["1.1.1.1", "2.2.2.2"]
    start_join     = ["3.3.3.3"]
    retry_max      = 3
    retry_interval = "15s"
  }

  plan_rejection_tracker {
    enabled        = true
    node_threshold = 20
    node_window    = "10m"
  }

  raft_boltdb {
    no_freelist_sync = true
  }

  search {
    fuzzy_enabled   = false
    limit_query     = 5
    limit_results   = 50
    min_term_length = 3
  }

  default_scheduler_config {
    scheduler_algorithm             = "spread"
    memory_oversubscription_enabled = true
    reject_job_registration         = true
    pause_eval_broker               = true
    preemption_config {
      batch_scheduler_enabled    = true
      system_scheduler_enabled   = false
      service_scheduler_enabled  = true
      sysbatch_scheduler_enabled = true
    }
  }
}
"#;

fn parse(src: &str) -> Result<AgentConfig, ConfigErrors> {
    parse_agent_config(Path::new("agent.hcl"), src, false, AgentConfig::default())
}

fn messages(err: &ConfigErrors) -> Vec<String> {
    err.errors.iter().map(|e| e.to_string()).collect()
}

#[test]
fn full_config_sets_every_key() {
    let c = parse(FULL).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.name, "srv-1");
    assert_eq!(c.region, "eu");
    assert_eq!(c.datacenter, "dc2");
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/drover"));
    assert_eq!(c.bind_addr, "10.0.0.5");
    assert_eq!(c.log_level, "DEBUG");
    assert!(c.log_json);
    assert_eq!(c.shards, Some(3));
    assert!(c.leave_on_interrupt && c.leave_on_terminate);
    assert_eq!(
        (c.ports.http, c.ports.rpc, c.ports.serf),
        (5646, 5647, 5648)
    );
    assert_eq!(c.advertise.rpc.as_deref(), Some("1.2.3.4:5647"));
    assert_eq!(c.advertise.serf.as_deref(), Some("1.2.3.4:5648"));

    let a = &c.autopilot;
    assert!(!a.cleanup_dead_servers);
    assert_eq!(a.last_contact_threshold, Duration::from_millis(300));
    assert_eq!(a.max_trailing_logs, 500);
    assert_eq!(a.min_quorum, 3);
    assert_eq!(a.server_stabilization_time, Duration::from_secs(20));
    assert!(a.enable_redundancy_zones && a.disable_upgrade_migration && a.enable_custom_upgrades);

    let s = &c.server;
    assert!(s.enabled);
    assert_eq!(s.authoritative_region, "eu");
    assert_eq!(s.bootstrap_expect, 3);
    assert_eq!(s.data_dir, Some(PathBuf::from("/var/lib/drover/server")));
    assert_eq!(s.enabled_schedulers, vec!["service", "batch"]);
    assert!(!s.enable_event_broker);
    assert_eq!(s.event_buffer_size, 200);
    assert_eq!(s.node_gc_threshold, Duration::from_secs(48 * 3600));
    assert_eq!(s.job_gc_interval, Duration::from_secs(600));
    assert_eq!(s.job_gc_threshold, Duration::from_secs(8 * 3600));
    assert_eq!(s.eval_gc_threshold, Duration::from_secs(7200));
    assert_eq!(s.batch_eval_gc_threshold, Duration::from_secs(12 * 3600));
    assert_eq!(s.deployment_gc_threshold, Duration::from_secs(3 * 3600));
    assert_eq!(s.csi_volume_claim_gc_interval, Duration::from_secs(360));
    assert_eq!(s.csi_volume_claim_gc_threshold, Duration::from_secs(7200));
    assert_eq!(s.csi_plugin_gc_threshold, Duration::from_secs(5400));
    assert_eq!(s.acl_token_gc_threshold, Duration::from_secs(4 * 3600));
    assert_eq!(s.heartbeat_grace, Duration::from_secs(90));
    assert_eq!(s.min_heartbeat_ttl, Duration::from_secs(15));
    assert_eq!(s.failover_heartbeat_ttl, Duration::from_secs(600));
    assert_eq!(s.max_heartbeats_per_second, 75.5);
    assert!(s.non_voting_server);
    assert_eq!(s.num_schedulers, 0);
    assert_eq!(s.license_path, "/etc/license");
    assert_eq!(s.raft_multiplier, 5);
    assert_eq!(s.raft_snapshot_threshold, 100);
    assert_eq!(s.raft_snapshot_interval, Duration::from_secs(60));
    assert_eq!(s.raft_trailing_logs, 200);
    assert_eq!(s.redundancy_zone, "z1");
    assert!(s.rejoin_after_leave);
    assert_eq!(s.root_key_gc_interval, Duration::from_secs(1200));
    assert_eq!(s.root_key_gc_threshold, Duration::from_secs(7200));
    assert_eq!(
        s.root_key_rotation_threshold,
        Duration::from_secs(360 * 3600)
    );
    assert_eq!(s.start_timeout, Duration::from_secs(60));
    assert_eq!(s.upgrade_version, "1.2.3");
    assert_eq!(s.job_max_priority, 200);
    assert_eq!(s.job_default_priority, 70);
    assert_eq!(s.job_max_source_size_bytes, 2 * 1024 * 1024);
    assert_eq!(s.job_tracked_versions, 10);
    assert_eq!(s.oidc_issuer, "https://drover.example.com");
    assert_eq!(s.server_join.retry_join, vec!["1.1.1.1", "2.2.2.2"]);
    assert_eq!(s.server_join.start_join, vec!["3.3.3.3"]);
    assert_eq!(s.server_join.retry_max, 3);
    assert_eq!(s.server_join.retry_interval, Duration::from_secs(15));
    assert!(s.plan_rejection_tracker.enabled);
    assert_eq!(s.plan_rejection_tracker.node_threshold, 20);
    assert_eq!(
        s.plan_rejection_tracker.node_window,
        Duration::from_secs(600)
    );
    assert!(s.raft_boltdb.no_freelist_sync);
    assert!(!s.search.fuzzy_enabled);
    assert_eq!(
        (
            s.search.limit_query,
            s.search.limit_results,
            s.search.min_term_length
        ),
        (5, 50, 3)
    );
    let sc = s
        .default_scheduler_config
        .as_ref()
        .expect("scheduler config");
    assert_eq!(sc.algorithm, SchedulerAlgorithm::Spread);
    assert!(sc.memory_oversubscription_enabled && sc.reject_job_registration);
    assert!(sc.pause_eval_broker);
    assert!(sc.preempt_batch && sc.preempt_service && sc.preempt_sysbatch);
    assert!(!sc.preempt_system);
}

#[test]
fn absent_keys_keep_defaults() {
    let c = parse("server {\n  enabled = true\n  bootstrap_expect = 1\n}\n").unwrap();
    let d = AgentConfig::default();
    assert_eq!(c.region, "global");
    assert_eq!(c.ports, d.ports);
    assert_eq!(c.server.heartbeat_grace, Duration::from_secs(10));
    assert_eq!(c.server.job_gc_interval, Duration::from_secs(300));
    assert_eq!(c.server.raft_snapshot_threshold, 8192);
    assert_eq!(c.server.enabled_schedulers, d.server.enabled_schedulers);
    assert_eq!(c.server.default_scheduler_config, None);
    assert_eq!(c.autopilot, d.autopilot);
}

#[test]
fn unknown_key_names_path_and_line() {
    let err = parse("server {\n  enabled = true\n  bootstrap_expect = 1\n  colour = \"red\"\n}\n")
        .unwrap_err();
    assert_eq!(err.errors.len(), 1, "{err}");
    assert_eq!(err.errors[0].path, "server.colour");
    assert_eq!(err.errors[0].line, Some(4));
    assert_eq!(
        err.to_string(),
        "agent.hcl:4: server.colour: unknown key \"colour\""
    );
}

#[test]
fn wrong_type_is_an_error() {
    let err = parse("server {\n  heartbeat_grace = 10\n  enabled = \"yes\"\n}\n").unwrap_err();
    let msgs = messages(&err);
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("agent.hcl:2: server.heartbeat_grace: expected a duration")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("agent.hcl:3: server.enabled: expected a bool")),
        "{msgs:?}"
    );
}

#[test]
fn out_of_range_values_are_errors_with_lines() {
    let err =
        parse("server {\n  raft_multiplier = 20\n  job_max_priority = 40000\n}\n").unwrap_err();
    let msgs = messages(&err);
    assert!(msgs.iter().any(|m| m.starts_with("agent.hcl:2: server.raft_multiplier: must be between 1 and 10")), "{msgs:?}");
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("agent.hcl:3: server.job_max_priority:")),
        "{msgs:?}"
    );
    let neg = parse("server {\n  num_schedulers = -1\n}\n").unwrap_err();
    assert!(
        neg.errors[0].message.contains("must not be negative"),
        "{neg}"
    );
    let neg_duration = parse("server {\n  heartbeat_grace = \"-5s\"\n}\n").unwrap_err();
    assert_eq!(neg_duration.errors[0].path, "server.heartbeat_grace");
}

#[test]
fn every_error_is_reported_at_once() {
    let src = "bogus = 1\nserver {\n  enabled = 3\n  raft_protocol = 2\n  nope {}\n}\nports {\n  http = 70000\n}\n";
    let err = parse(src).unwrap_err();
    let paths: Vec<&str> = err.errors.iter().map(|e| e.path.as_str()).collect();
    for want in [
        "bogus",
        "server.enabled",
        "server.raft_protocol",
        "server.nope",
        "ports.http",
    ] {
        assert!(paths.contains(&want), "missing {want} in {paths:?}");
    }
    assert_eq!(err.to_string().lines().count(), err.errors.len());
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let err = parse("server {\n  enabled = = true\n}\n").unwrap_err();
    let e = &err.errors[0];
    assert_eq!(e.line, Some(2));
    assert!(e.column.is_some());
    assert!(e.to_string().starts_with("agent.hcl:2:"), "{e}");
}

#[test]
fn checks_on_unset_keys_are_left_to_the_caller() {
    // bootstrap_expect may still come from a flag, so a file enabling the server without it
    // loads; the caller's validate() after flags reports it.
    let c = parse("server {\n  enabled = true\n}\n").unwrap();
    assert_eq!(c.validate()[0].0, "server.bootstrap_expect");
    let err = parse("server {\n  enabled = true\n  bootstrap_expect = 0\n}\n").unwrap_err();
    assert_eq!(err.errors[0].line, Some(3));
}

#[test]
fn deprecated_join_keys_are_accepted() {
    let c = parse(
        "server {\n  retry_join = [\"a:4648\"]\n  start_join = [\"b\"]\n  retry_max = 4\n  retry_interval = \"5s\"\n}\n",
    )
    .unwrap();
    assert_eq!(c.server.retry_join, vec!["a:4648"]);
    assert_eq!(c.server.start_join, vec!["b"]);
    assert_eq!(c.server.retry_max, 4);
    assert_eq!(c.server.retry_interval, Duration::from_secs(5));
    assert_eq!(c.server.effective_retry_join(), ["a:4648".to_string()]);
}

#[test]
fn files_merge_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("a.hcl");
    let second = dir.path().join("b.json");
    std::fs::write(
        &first,
        "region = \"one\"\nserver {\n  enabled = true\n  bootstrap_expect = 3\n  enabled_schedulers = [\"service\"]\n  server_join {\n    retry_join = [\"x\"]\n  }\n}\n",
    )
    .unwrap();
    std::fs::write(
        &second,
        r#"{"region": "two", "server": {"heartbeat_grace": "20s", "enabled_schedulers": ["batch"], "server_join": {"retry_join": ["y"]}}}"#,
    )
    .unwrap();
    let c = load_agent_config(&[first.clone(), second.clone()], AgentConfig::default()).unwrap();
    assert_eq!(c.region, "two");
    // Nested blocks merge field by field: the second file keeps the first one's settings.
    assert!(c.server.enabled);
    assert_eq!(c.server.bootstrap_expect, 3);
    assert_eq!(c.server.heartbeat_grace, Duration::from_secs(20));
    // enabled_schedulers appends across files; server_join lists replace.
    assert_eq!(c.server.enabled_schedulers, vec!["service", "batch"]);
    assert_eq!(c.server.server_join.retry_join, vec!["y"]);

    let reversed = load_agent_config(&[second, first], AgentConfig::default()).unwrap();
    assert_eq!(reversed.region, "one");
    assert_eq!(reversed.server.server_join.retry_join, vec!["x"]);
}

#[test]
fn directory_loads_hcl_and_json_in_lexical_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("20-b.hcl"), "name = \"second\"\n").unwrap();
    std::fs::write(
        dir.path().join("10-a.json"),
        "{\"name\": \"first\", \"datacenter\": \"dcx\"}",
    )
    .unwrap();
    std::fs::write(dir.path().join("30-ignored.txt"), "not config").unwrap();
    let c = load_agent_config(&[dir.path().to_path_buf()], AgentConfig::dev()).unwrap();
    assert_eq!(c.name, "second");
    assert_eq!(c.datacenter, "dcx");
    assert_eq!(c.bind_addr, "127.0.0.1");
}

#[test]
fn errors_across_files_name_each_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.hcl"), "nope = 1\n").unwrap();
    std::fs::write(
        dir.path().join("b.json"),
        "{\n  \"server\": {\n    \"enabled\": 1\n  }\n}",
    )
    .unwrap();
    let err = load_agent_config(&[dir.path().to_path_buf()], AgentConfig::default()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("a.hcl:1: nope: unknown key"), "{text}");
    assert!(
        text.contains("b.json:3: server.enabled: expected a bool"),
        "{text}"
    );
}

#[test]
fn missing_file_is_an_error() {
    let err = load_agent_config(
        &[PathBuf::from("/nonexistent/drover.hcl")],
        AgentConfig::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("cannot read"), "{err}");
}

#[test]
fn go_durations_parse() {
    assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
    assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
    assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
    assert_eq!(parse_duration("2us").unwrap(), Duration::from_micros(2));
    assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    assert!(parse_duration("10").is_err());
    assert!(parse_duration("5d").is_err());
    assert!(parse_duration("-1s").is_err());
    assert!(parse_duration("").is_err());
}

#[test]
fn sizes_parse() {
    assert_eq!(parse_size("1M").unwrap(), 1_000_000);
    assert_eq!(parse_size("512KB").unwrap(), 512_000);
    assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
    assert_eq!(parse_size("4kib").unwrap(), 4096);
    assert_eq!(parse_size("100").unwrap(), 100);
    assert!(parse_size("3 parsecs").is_err());
}

#[test]
fn leave_on_signal_keys() {
    let d = AgentConfig::default();
    assert!(!d.leave_on_interrupt && !d.leave_on_terminate);
    let c = parse("leave_on_interrupt = true\nleave_on_terminate = true\n").unwrap();
    assert!(c.leave_on_interrupt);
    assert!(c.leave_on_terminate);
    let c = parse("leave_on_terminate = true\n").unwrap();
    assert!(!c.leave_on_interrupt);
    assert!(c.leave_on_terminate);
    let json = parse_agent_config(
        Path::new("agent.json"),
        r#"{"leave_on_interrupt": true}"#,
        true,
        AgentConfig::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(json.leave_on_interrupt);
    let err = parse("leave_on_interrupt = \"sometimes\"\n").unwrap_err();
    assert_eq!(err.errors.len(), 1, "{err}");
    assert_eq!(err.errors[0].path, "leave_on_interrupt");
    assert!(
        err.to_string()
            .starts_with("agent.hcl:1: leave_on_interrupt: expected a bool"),
        "{err}"
    );
}

#[test]
fn enable_debug_is_off_by_default_on_in_dev_and_must_be_a_bool() {
    assert!(!AgentConfig::default().enable_debug);
    assert!(AgentConfig::dev().enable_debug);
    assert!(parse("enable_debug = true\n").unwrap().enable_debug);
    let err = parse("enable_debug = 1\n").unwrap_err();
    assert_eq!(err.errors.len(), 1, "{err}");
    assert_eq!(err.errors[0].path, "enable_debug");
}
