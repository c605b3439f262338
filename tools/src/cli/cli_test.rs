//! End-to-end tests of commands against a scripted HTTP server: argv in, requests and exit
//! codes out.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::test_server::TestServer;

const EVAL_ID: &str = "5ad6d5bf-0000-4000-8000-000000000001";
const EVAL_PATH: &str = "/v1/evaluation/5ad6d5bf-0000-4000-8000-000000000001";
const EVAL_ALLOCS_PATH: &str = "/v1/evaluation/5ad6d5bf-0000-4000-8000-000000000001/allocations";

/// A job file in the temp directory, removed when the test that wrote it ends.
struct JobFile(PathBuf);

impl std::ops::Deref for JobFile {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for JobFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Writes a job file into the temp directory.
fn job_file(name: &str, text: &str) -> JobFile {
    let path = std::env::temp_dir().join(format!("drover-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, text).expect("write job file");
    JobFile(path)
}

fn drover(server: &TestServer, args: &[&str]) -> i32 {
    let mut argv: Vec<OsString> = vec!["drover".into()];
    argv.extend(args.iter().map(OsString::from));
    argv.push(format!("-address={}", server.address).into());
    super::run(argv)
}

fn body_json(body: &str) -> Value {
    serde_json::from_str(body).expect("request body is JSON")
}

const JSON_JOB: &str = r#"{"Job":{"ID":"web","TaskGroups":[{"Name":"web","Count":2,
    "Tasks":[{"Name":"server","Driver":"exec"}]}]}}"#;

#[test]
fn job_run_registers_and_monitors_until_complete() {
    let pending = format!(r#"{{"ID":"{EVAL_ID}","Status":"pending","JobID":"web"}}"#);
    let complete = format!(r#"{{"ID":"{EVAL_ID}","Status":"complete","JobID":"web"}}"#);
    let allocs = r#"[{"ID":"8ba85cef-1","NodeID":"171a583b-2","TaskGroup":"web",
        "CreateIndex":7,"ModifyIndex":7}]"#;
    let register = format!(r#"{{"EvalID":"{EVAL_ID}","JobModifyIndex":7}}"#);
    let server = TestServer::start(vec![
        ("PUT", "/v1/jobs", vec![(200, &register)]),
        ("GET", EVAL_PATH, vec![(200, &pending), (200, &complete)]),
        ("GET", EVAL_ALLOCS_PATH, vec![(200, allocs)]),
    ]);
    let file = job_file("run.json", JSON_JOB);
    let code = drover(
        &server,
        &["job", "run", "-check-index", "0", file.to_str().unwrap()],
    );
    assert_eq!(code, 0);
    let requests = server.requests();
    let register = requests
        .iter()
        .find(|r| r.method == "PUT")
        .expect("register request");
    let body = body_json(&register.body);
    assert_eq!(body["Job"]["ID"], "web");
    assert_eq!(body["EnforceIndex"], true);
    assert_eq!(body["JobModifyIndex"], 0);
    let polls = requests.iter().filter(|r| r.target == EVAL_PATH).count();
    assert!(polls >= 2, "polled until complete: {requests:?}");
}

#[test]
fn job_run_exits_2_when_placements_fail() {
    let failed = format!(
        r#"{{"ID":"{EVAL_ID}","Status":"complete","JobID":"web",
        "FailedTGAllocs":{{"web":{{"NodesEvaluated":3,"DimensionExhausted":{{"memory":3}}}}}}}}"#
    );
    let register = format!(r#"{{"EvalID":"{EVAL_ID}"}}"#);
    let server = TestServer::start(vec![
        ("PUT", "/v1/jobs", vec![(200, &register)]),
        ("GET", EVAL_PATH, vec![(200, &failed)]),
        ("GET", EVAL_ALLOCS_PATH, vec![(200, "[]")]),
    ]);
    let file = job_file("fail.json", JSON_JOB);
    assert_eq!(drover(&server, &["job", "run", file.to_str().unwrap()]), 2);
}

#[test]
fn hcl_job_goes_through_parse_with_canonicalize() {
    let parsed =
        r#"{"ID":"web","TaskGroups":[{"Name":"web","Tasks":[{"Name":"s","Driver":"exec"}]}]}"#;
    let server = TestServer::start(vec![
        ("PUT", "/v1/jobs/parse", vec![(200, parsed)]),
        ("PUT", "/v1/jobs", vec![(200, r#"{"EvalID":"e1"}"#)]),
    ]);
    let file = job_file("web.nomad", "job \"web\" {\n}\n");
    assert_eq!(
        drover(&server, &["job", "run", "-detach", file.to_str().unwrap()]),
        0
    );
    let requests = server.requests();
    assert_eq!(requests[0].target, "/v1/jobs/parse");
    let parse = body_json(&requests[0].body);
    assert_eq!(parse["Canonicalize"], true);
    assert_eq!(parse["JobHCL"], "job \"web\" {\n}\n");
    assert_eq!(body_json(&requests[1].body)["Job"]["ID"], "web");
}

#[test]
fn server_errors_exit_1_and_plan_errors_exit_255() {
    let server = TestServer::start(vec![
        (
            "PUT",
            "/v1/jobs",
            vec![(500, "Enforcing job modify index 3: job does not exist")],
        ),
        ("PUT", "/v1/job/web/plan", vec![(500, "No cluster leader")]),
    ]);
    let file = job_file("err.json", JSON_JOB);
    let path = file.to_str().unwrap();
    assert_eq!(
        drover(&server, &["job", "run", "-check-index", "3", path]),
        1
    );
    assert_eq!(drover(&server, &["job", "plan", path]), 255);
    assert_eq!(
        drover(&server, &["job", "plan", "/nonexistent/job.nomad"]),
        255
    );
}

#[test]
fn plan_exit_code_reflects_changes() {
    let plan = r#"{"Annotations":{"DesiredTGUpdates":{"web":{"Place":2}}},"JobModifyIndex":0,
        "Diff":{"Type":"Added","ID":"web","TaskGroups":[{"Type":"Added","Name":"web"}]}}"#;
    let server = TestServer::start(vec![("PUT", "/v1/job/web/plan", vec![(200, plan)])]);
    let file = job_file("plan.json", JSON_JOB);
    assert_eq!(drover(&server, &["job", "plan", file.to_str().unwrap()]), 1);
    let body = body_json(&server.requests()[0].body);
    assert_eq!(body["Diff"], true);
}

#[test]
fn validate_falls_back_to_local_checks_and_reports_errors() {
    let server = TestServer::start(vec![]);
    let good = job_file("valid.json", JSON_JOB);
    assert_eq!(
        drover(&server, &["job", "validate", good.to_str().unwrap()]),
        0
    );
    let bad = job_file("invalid.json", r#"{"Job":{"ID":"web","TaskGroups":[]}}"#);
    assert_eq!(
        drover(&server, &["job", "validate", bad.to_str().unwrap()]),
        1
    );
}

#[test]
fn status_resolves_prefix_and_sends_token_region_namespace() {
    let job = r#"{"ID":"web","Name":"web","Type":"service","Status":"running"}"#;
    let server = TestServer::start(vec![
        ("GET", "/v1/jobs", vec![(200, r#"[{"ID":"web"}]"#)]),
        ("GET", "/v1/job/web", vec![(200, job)]),
        (
            "GET",
            "/v1/job/web/summary",
            vec![(200, r#"{"Summary":{}}"#)],
        ),
        ("GET", "/v1/job/web/allocations", vec![(200, "[]")]),
    ]);
    let code = drover(
        &server,
        &["status", "we", "-region=eu", "-namespace", "prod"],
    );
    assert_eq!(code, 0);
    let requests = server.requests();
    assert_eq!(
        requests[0].target,
        "/v1/jobs?prefix=we&region=eu&namespace=prod"
    );
    assert!(requests
        .iter()
        .any(|r| r.target.starts_with("/v1/job/web/allocations?all=false")));
}

#[test]
fn missing_objects_exit_1() {
    let server = TestServer::start(vec![("GET", "/v1/allocations", vec![(200, "[]")])]);
    assert_eq!(drover(&server, &["alloc", "status", "8ba8"]), 1);
    assert_eq!(drover(&server, &["eval", "status", "-json", EVAL_ID]), 1);
}

#[test]
fn server_join_and_force_leave_send_nomad_queries() {
    let server = TestServer::start(vec![
        (
            "PUT",
            "/v1/agent/join",
            vec![
                (200, r#"{"num_joined":2,"error":""}"#),
                (500, "address: no server answered at 10.0.0.9"),
            ],
        ),
        ("PUT", "/v1/agent/force-leave", vec![(200, "")]),
    ]);
    assert_eq!(
        drover(&server, &["server", "join", "10.0.0.7", "10.0.0.8:4648"]),
        0
    );
    assert_eq!(drover(&server, &["server", "join", "10.0.0.9"]), 1);
    assert_eq!(
        drover(&server, &["server", "force-leave", "-prune", "s2.global"]),
        0
    );
    let requests = server.requests();
    assert_eq!(
        requests[0].target,
        "/v1/agent/join?address=10.0.0.7&address=10.0.0.8%3A4648"
    );
    assert_eq!(
        requests[2].target,
        "/v1/agent/force-leave?node=s2.global&prune=true"
    );
    // `server join` needs at least one address; nothing is sent without one.
    assert_eq!(drover(&server, &["server", "join"]), 1);
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn raft_remove_peer_by_address_or_id() {
    let server = TestServer::start(vec![("DELETE", "/v1/operator/raft/peer", vec![(200, "")])]);
    assert_eq!(
        drover(
            &server,
            &[
                "operator",
                "raft",
                "remove-peer",
                "-peer-address=10.0.0.2:4647"
            ]
        ),
        0
    );
    assert_eq!(
        drover(
            &server,
            &["operator", "raft", "remove-peer", "-peer-id", "b2"]
        ),
        0
    );
    assert_eq!(drover(&server, &["operator", "raft", "remove-peer"]), 1);
    assert_eq!(
        drover(
            &server,
            &[
                "operator",
                "raft",
                "remove-peer",
                "-peer-id=b2",
                "-peer-address=10.0.0.2:4647"
            ]
        ),
        1
    );
    let targets: Vec<String> = server.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        [
            "/v1/operator/raft/peer?address=10.0.0.2%3A4647",
            "/v1/operator/raft/peer?id=b2"
        ]
    );
}

const AUTOPILOT_CONFIG: &str = r#"{"CleanupDeadServers":true,"LastContactThreshold":"200ms",
    "MaxTrailingLogs":250,"MinQuorum":0,"ServerStabilizationTime":"10s",
    "EnableRedundancyZones":false,"DisableUpgradeMigration":false,"EnableCustomUpgrades":false,
    "CreateIndex":4,"ModifyIndex":4}"#;

#[test]
fn autopilot_set_config_reads_changes_and_writes_with_cas() {
    let server = TestServer::start(vec![
        (
            "GET",
            "/v1/operator/autopilot/configuration",
            vec![(200, AUTOPILOT_CONFIG)],
        ),
        (
            "PUT",
            "/v1/operator/autopilot/configuration",
            vec![(200, "true"), (200, "false")],
        ),
    ]);
    let args = [
        "operator",
        "autopilot",
        "set-config",
        "-cleanup-dead-servers=false",
        "-last-contact-threshold=500ms",
        "-min-quorum=3",
    ];
    assert_eq!(drover(&server, &args), 0);
    let requests = server.requests();
    let put = &requests[1];
    assert_eq!(put.target, "/v1/operator/autopilot/configuration?cas=4");
    let body = body_json(&put.body);
    assert_eq!(body["CleanupDeadServers"], false);
    assert_eq!(body["LastContactThreshold"], 500_000_000);
    assert_eq!(body["MinQuorum"], 3);
    assert_eq!(body["MaxTrailingLogs"], 250);
    assert_eq!(body["ServerStabilizationTime"], "10s");
    // A lost check-and-set race exits 1.
    assert_eq!(drover(&server, &args), 1);
    assert_eq!(
        drover(&server, &["operator", "autopilot", "get-config", "-json"]),
        0
    );
}

#[test]
fn autopilot_health_prints_unhealthy_report() {
    let report = r#"{"Healthy":false,"FailureTolerance":0,"Leader":"a1","Voters":["a1"],
        "Servers":[{"ID":"a1","Name":"s1.global","Healthy":false}]}"#;
    let server = TestServer::start(vec![(
        "GET",
        "/v1/operator/autopilot/health",
        vec![(429, report), (500, "No cluster leader")],
    )]);
    assert_eq!(drover(&server, &["operator", "autopilot", "health"]), 0);
    assert_eq!(drover(&server, &["operator", "autopilot", "health"]), 1);
}
