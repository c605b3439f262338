//! End-to-end tests of the HTTP API: a real client against `serve_http` over a fake cluster.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

mod common;

use common::{send, Reply};
use net::http::testing::{sample_state, FakeCluster, TestServer};
use net::http::HttpLimits;
use serde_json::{json, Value};

const NODE_ID: &str = "f0c1a7d2-1111-4000-8000-000000000001";
const ALLOC_ID: &str = "a0000000-3333-4000-8000-000000000001";
const EVAL_ID: &str = "e0000000-2222-4000-8000-000000000001";

fn server() -> TestServer {
    server_with(HttpLimits::default())
}

fn server_with(limits: HttpLimits) -> TestServer {
    TestServer::start(|| FakeCluster::new(sample_state()), limits)
}

fn get(url: &str) -> Reply {
    send("GET", url, None)
}

#[test]
fn list_and_read_endpoints() {
    let s = server();
    let r = get(&s.url("/v1/jobs"));
    assert_eq!(r.status, 200);
    assert_eq!(r.index, Some(10));
    assert_eq!(r.known_leader.as_deref(), Some("true"));
    assert_eq!(r.content_type, "application/json");
    assert_eq!(r.json().as_array().map(Vec::len), Some(1));
    assert_eq!(get(&s.url("/v1/jobs?prefix=zzz")).json(), json!([]));
    assert_eq!(get(&s.url("/v1/jobs?namespace=other")).json(), json!([]));

    let nodes = get(&s.url("/v1/nodes")).json();
    assert_eq!(nodes[0]["Name"], "node-1");
    assert_eq!(nodes[0]["Address"], "10.0.0.5");
    assert_eq!(nodes[0]["Drain"], false);
    assert!(nodes[0].get("NodeResources").is_none());
    let nodes = get(&s.url("/v1/nodes?resources=true&os=true")).json();
    assert_eq!(nodes[0]["NodeResources"]["Cpu"]["CpuShares"], 4000);
    assert_eq!(nodes[0]["Attributes"]["os.name"], "ubuntu");

    let node = get(&s.url(&format!("/v1/node/{NODE_ID}"))).json();
    assert_eq!(node["ID"], NODE_ID);
    assert_eq!(node["SecretID"], "");
    assert_eq!(node["SchedulingEligibility"], "eligible");
    assert_eq!(node["Status"], "ready");
    // Nomad requires the full node ID.
    assert_eq!(get(&s.url("/v1/node/f0c1a7d2")).status, 404);
    let on_node = get(&s.url(&format!("/v1/node/{NODE_ID}/allocations"))).json();
    assert_eq!(on_node[0]["NodeID"], NODE_ID);

    let allocs = get(&s.url("/v1/allocations")).json();
    assert_eq!(allocs[0]["ID"], ALLOC_ID);
    assert_eq!(allocs[0]["JobType"], "service");
    assert_eq!(allocs[0]["CreateTime"], 1_700_000_000_000_000_000i64);
    let alloc = get(&s.url(&format!("/v1/allocation/{ALLOC_ID}"))).json();
    assert_eq!(alloc["ClientStatus"], "running");
    assert_eq!(
        alloc["AllocatedResources"]["Shared"]["Ports"][0]["Value"],
        23456
    );
    assert_eq!(
        alloc["AllocatedResources"]["Tasks"]["server"]["Cpu"]["CpuShares"],
        100
    );
    // Allocation is an omitempty struct: empty strings are left out.
    assert!(alloc.get("DesiredDescription").is_none());
    let missing = get(&s.url("/v1/allocation/nope"));
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (404, "alloc not found")
    );

    let evals = get(&s.url("/v1/evaluations")).json();
    assert_eq!(evals[0]["ID"], EVAL_ID);
    assert_eq!(evals[0]["TriggeredBy"], "job-register");
    assert_eq!(
        get(&s.url("/v1/evaluations?status=pending")).json(),
        json!([])
    );
    let eval = get(&s.url(&format!("/v1/evaluation/{EVAL_ID}"))).json();
    assert_eq!(eval["Status"], "complete");
    assert!(eval.get("NodeID").is_none());
    let eval_allocs = get(&s.url(&format!("/v1/evaluation/{EVAL_ID}/allocations"))).json();
    assert_eq!(eval_allocs[0]["ID"], ALLOC_ID);
    assert_eq!(get(&s.url("/v1/evaluation/nope")).body, "eval not found");

    let job_allocs = get(&s.url("/v1/job/web/allocations")).json();
    assert_eq!(job_allocs[0]["JobID"], "web");
    let job_evals = get(&s.url("/v1/job/web/evaluations")).json();
    assert_eq!(job_evals[0]["JobID"], "web");
    let summary = get(&s.url("/v1/job/web/summary")).json();
    assert_eq!(summary["JobID"], "web");
    assert_eq!(summary["Summary"]["web"]["Running"], 1);
    let versions = get(&s.url("/v1/job/web/versions")).json();
    assert_eq!(versions["Versions"].as_array().map(Vec::len), Some(1));
    assert_eq!(versions["Diffs"], Value::Null);
    assert_eq!(versions["Index"], 10);
    assert_eq!(get(&s.url("/v1/job/web")).status, 200);
}

#[test]
fn not_found_and_method_errors() {
    let s = server();
    let r = get(&s.url("/v1/job/nope"));
    assert_eq!((r.status, r.body.as_str()), (404, "job not found"));
    assert!(r.content_type.starts_with("text/plain"));
    assert_eq!(get(&s.url("/v1/job/nope/summary")).status, 404);
    assert_eq!(
        get(&s.url("/v1/job/nope/versions")).body,
        "job versions not found"
    );
    assert_eq!(get(&s.url("/v1/no/such/route")).status, 404);
    assert_eq!(get(&s.url("/v2/jobs")).status, 404);
    let r = send("DELETE", &s.url("/v1/jobs"), None);
    assert_eq!((r.status, r.body.as_str()), (405, "Invalid method"));
    assert_eq!(send("POST", &s.url("/v1/nodes"), Some("{}")).status, 405);
    assert_eq!(send("GET", &s.url("/v1/job/web/plan"), None).status, 405);
    assert_eq!(get(&s.url("/v1/jobs?index=abc")).body, "Invalid index");
    assert_eq!(get(&s.url("/v1/jobs?region=global")).status, 200);
    let r = get(&s.url("/v1/jobs?region=mars"));
    assert_eq!((r.status, r.body.as_str()), (500, "No path to region"));
    assert_eq!(
        get(&s.url("/v1/jobs?wait=forever")).body,
        "Invalid wait time"
    );
}

#[test]
fn status_agent_and_operator() {
    let s = server();
    assert_eq!(
        get(&s.url("/v1/status/leader")).json(),
        json!("127.0.0.1:4647")
    );
    assert_eq!(
        get(&s.url("/v1/status/peers")).json(),
        json!(["127.0.0.1:4647"])
    );
    assert_eq!(get(&s.url("/v1/regions")).json(), json!(["global"]));
    let me = get(&s.url("/v1/agent/self")).json();
    assert_eq!(me["config"]["Region"], "global");
    assert_eq!(me["config"]["Datacenter"], "dc1");
    assert_eq!(me["config"]["NodeName"], "server-1");
    assert_eq!(me["config"]["Server"]["Enabled"], true);
    assert_eq!(me["member"]["Name"], "server-1.global");
    assert_eq!(me["stats"]["nomad"]["leader"], "true");
    let rss: u64 = me["stats"]["runtime"]["rss_bytes"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("stats.runtime.rss_bytes is a number as a string");
    assert!(
        rss > 1 << 20,
        "a running server holds more than 1 MiB: {rss}"
    );
    let members = get(&s.url("/v1/agent/members")).json();
    assert_eq!(members["ServerName"], "server-1");
    assert_eq!(members["ServerRegion"], "global");
    assert_eq!(members["Members"][0]["Tags"]["port"], "4647");
    assert_eq!(members["Members"][0]["Status"], "alive");
    let raft = get(&s.url("/v1/operator/raft/configuration?stale=False")).json();
    assert_eq!(raft["Servers"][0]["Address"], "127.0.0.1:4647");
    assert_eq!(raft["Servers"][0]["Leader"], true);
    assert_eq!(raft["Servers"][0]["RaftProtocol"], "3");
    assert_eq!(
        get(&s.url("/v1/agent/health")).json(),
        json!({"server": {"ok": true, "message": "ok"}})
    );
    assert_eq!(get(&s.url("/v1/agent/health?type=client")).status, 500);
    let pretty = get(&s.url("/v1/regions?pretty"));
    assert!(
        pretty.body.ends_with('\n') && pretty.body.contains("\n  \"global\""),
        "{}",
        pretty.body
    );
}

#[test]
fn filter_and_pagination() {
    let s = server();
    let q = |f: &str| {
        format!(
            "/v1/nodes?filter={}",
            f.replace(' ', "%20").replace('"', "%22")
        )
    };
    assert_eq!(
        get(&s.url(&q("Name == \"node-1\"")))
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(get(&s.url(&q("Name == \"node-2\""))).json(), json!([]));
    let bad = get(&s.url(&q("Name ==")));
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("failed to parse filter"), "{}", bad.body);
    let r = get(&s.url("/v1/evaluations?filter=x&status=pending"));
    assert_eq!(r.status, 400);
    assert_eq!(
        get(&s.url("/v1/allocations?per_page=1"))
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[test]
fn writes_that_need_no_job_conversion() {
    let s = server();
    // Evaluate creates an evaluation and bumps the index.
    let r = send("POST", &s.url("/v1/job/web/evaluate"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert!(v["EvalID"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(r.index, Some(11));
    assert_eq!(v["Index"], 11);
    assert_eq!(
        send("PUT", &s.url("/v1/job/nope/evaluate"), Some("")).status,
        404
    );

    // Registering under a path ID that differs from the body's job ID fails before conversion.
    let body = json!({"Job": {"ID": "other"}}).to_string();
    let r = send("POST", &s.url("/v1/job/web"), Some(&body));
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, "Job ID does not match name")
    );
    let r = send("PUT", &s.url("/v1/jobs"), Some(r#"{"Job": {"Name": "x"}}"#));
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, "Job ID hasn't been provided")
    );
    let r = send("PUT", &s.url("/v1/jobs"), Some(r#"{"EvalPriority": 5}"#));
    assert_eq!((r.status, r.body.as_str()), (400, "Job must be specified"));
    let body = json!({"Job": {"ID": "web"}, "EvalPriority": 101}).to_string();
    let r = send("PUT", &s.url("/v1/jobs"), Some(&body));
    assert_eq!(
        r.body,
        "Eval priority must be between 1 and 100 inclusively"
    );
    let r = send("PUT", &s.url("/v1/jobs/parse"), Some(r#"{"JobHCL": "  "}"#));
    assert_eq!((r.status, r.body.as_str()), (400, "Job spec is empty"));
    let r = send("PUT", &s.url("/v1/jobs"), Some(""));
    assert_eq!((r.status, r.body.as_str()), (400, "Request body is empty"));

    // Deregister, then purge; an unknown job deregisters as an empty success.
    let r = send("DELETE", &s.url("/v1/job/web"), None);
    assert_eq!(r.status, 200);
    assert!(r.json()["EvalID"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(get(&s.url("/v1/job/web")).status, 200);
    let r = send("DELETE", &s.url("/v1/job/web?purge=true"), None);
    assert_eq!(r.status, 200);
    assert_eq!(get(&s.url("/v1/job/web")).status, 404);
    let r = send("DELETE", &s.url("/v1/job/web?purge=True"), None);
    assert_eq!((r.status, r.json()["EvalID"].clone()), (200, json!("")));
    assert_eq!(
        send("DELETE", &s.url("/v1/job/web?purge=maybe"), None).status,
        400
    );
}

#[test]
fn malformed_json_names_the_position_and_field() {
    let s = server();
    let r = send(
        "PUT",
        &s.url("/v1/jobs"),
        Some("{\"Job\": {\"ID\": \"x\",\n  oops}"),
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("line 2 column"), "{}", r.body);
    let r = send(
        "PUT",
        &s.url("/v1/jobs"),
        Some(r#"{"EnforceIndex": "yes"}"#),
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("EnforceIndex"), "{}", r.body);
    assert!(r.body.contains("line 1 column"), "{}", r.body);
}

#[test]
fn oversized_body_is_413() {
    let limits = HttpLimits {
        body_bytes_max: 1024,
        ..HttpLimits::default()
    };
    let s = server_with(limits);
    let big = format!("{{\"Job\": {{\"ID\": \"{}\"}}}}", "x".repeat(4096));
    let r = send("PUT", &s.url("/v1/jobs"), Some(&big));
    assert_eq!((r.status, r.body.as_str()), (413, "Request body too large"));
    // Chunked bodies without a declared length are cut off at the limit too.
    let mut conn = TcpStream::connect(s.addr).expect("connect");
    let head = "PUT /v1/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    conn.write_all(head.as_bytes()).expect("write");
    let chunk = "y".repeat(2000);
    conn.write_all(format!("{:x}\r\n{chunk}\r\n0\r\n\r\n", chunk.len()).as_bytes())
        .expect("write");
    let text = read_response(&mut conn);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert_eq!(get(&s.url("/v1/regions")).status, 200);
}

fn read_response(conn: &mut TcpStream) -> String {
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = vec![0u8; 8192];
    let n = conn.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn garbage_request_gets_400_and_server_keeps_serving() {
    let s = server();
    let mut conn = TcpStream::connect(s.addr).expect("connect");
    conn.write_all(b"\x01\x02 NOT HTTP AT ALL\r\n\r\n")
        .expect("write");
    let text = read_response(&mut conn);
    assert!(text.starts_with("HTTP/1.1 400"), "{text:?}");
    assert_eq!(get(&s.url("/v1/status/leader")).status, 200);
}

#[test]
fn blocking_query_returns_after_a_change() {
    let s = server();
    let url = s.url("/v1/evaluations?index=10&wait=10s");
    let started = Instant::now();
    let waiter = std::thread::spawn(move || get(&url));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        send("POST", &s.url("/v1/job/web/evaluate"), None).status,
        200
    );
    let r = waiter.join().expect("waiter");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.index, Some(11));
    assert_eq!(r.json().as_array().map(Vec::len), Some(2));

    // Without a change, the wait time bounds the query.
    let started = Instant::now();
    let r = get(&s.url("/v1/jobs?index=11&wait=300ms"));
    let elapsed = started.elapsed();
    assert_eq!(r.index, Some(11));
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
}

#[test]
fn idle_and_stalled_connections_are_closed() {
    let limits = HttpLimits {
        request_timeout: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(300),
        ..HttpLimits::default()
    };
    let s = server_with(limits);
    // A request head that never completes.
    let mut stalled = TcpStream::connect(s.addr).expect("connect");
    stalled
        .write_all(b"GET /v1/regions HTTP/1.1\r\nHost:")
        .expect("write");
    // An idle keep-alive connection.
    let mut idle = TcpStream::connect(s.addr).expect("connect");
    let started = Instant::now();
    assert_eq!(read_response(&mut stalled), "");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(read_response(&mut idle), "");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn stop_closes_the_listener() {
    let s = server();
    let addr = s.addr;
    assert_eq!(get(&s.url("/v1/regions")).status, 200);
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(3);
    while TcpStream::connect(addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "listener still accepting after stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
