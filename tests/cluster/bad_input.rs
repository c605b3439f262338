//! Every bad input gets a clear error and the server carries on.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::harness::{bin, free_port, service_job, Agent};

#[test]
fn bad_http_input_gets_clear_errors() {
    let agent = Agent::start(0, "");

    let body =
        serde_json::json!({ "JobHCL": "job \"x\" {\n  group \"g\" {\n    count = \n  }\n}\n" })
            .to_string();
    let (code, text) = agent.send("POST", "/v1/jobs/parse", &body);
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("line 3"), "no line in: {text}");

    let (code, text) = agent.send("POST", "/v1/jobs/parse", r#"{"JobHCL": ""}"#);
    assert_eq!(code, 400);
    assert!(text.contains("Job spec is empty"), "{text}");

    let (code, text) = agent.send(
        "PUT",
        "/v1/jobs",
        "{\"Job\": {\"ID\": \"x\",\n \"TaskGroups\": [}",
    );
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("line 2"), "no position in: {text}");

    let (code, text) = agent.send(
        "PUT",
        "/v1/jobs",
        r#"{"Job": {"ID": "x", "Priority": "high"}}"#,
    );
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("Priority"), "field not named: {text}");

    let (code, text) = agent.send(
        "PUT",
        "/v1/jobs",
        r#"{"Job": {"ID": "x", "Type": "service", "TaskGroups": []}}"#,
    );
    assert!(code == 400 || code == 500, "{code} {text}");
    assert!(text.to_lowercase().contains("task group"), "{text}");

    // An oversized body is refused from its Content-Length, before it is read.
    let mut conn = TcpStream::connect(("127.0.0.1", agent.http)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(
        b"PUT /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 41943040\r\n\r\n{\"Job\":",
    )
    .unwrap();
    let mut head = [0u8; 12];
    conn.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 413", "{}", String::from_utf8_lossy(&head));

    let (code, text) = agent.send("GET", "/v1/job/does-not-exist", "");
    assert_eq!(code, 404, "{text}");
    let (code, _) = agent.send("GET", "/v1/evaluation/does-not-exist", "");
    assert_eq!(code, 404);

    // The server still works after all of that.
    agent.run_hcl(&service_job("after", 1, 10, 10));
    assert!(agent.get("/v1/job/after").is_ok());
}

#[test]
fn garbage_on_the_rpc_port_drops_only_that_connection() {
    let agent = Agent::start(1, "");
    for garbage in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        &[0x21, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3][..],
        &[0x21, 8, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9][..],
    ] {
        let mut conn = TcpStream::connect(("127.0.0.1", agent.rpc)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        conn.write_all(garbage).unwrap();
        let mut buf = [0u8; 64];
        // The server closes the connection (read returns 0 or an error), it does not hang.
        let n = conn.read(&mut buf).unwrap_or(0);
        assert_eq!(n, 0, "server answered garbage");
    }
    // The simulated node, on its own connection, keeps heartbeating and gets placements.
    agent.run_hcl(&service_job("still-fine", 1, 10, 10));
    agent.wait_for("placement after garbage", Duration::from_secs(20), |a| {
        (crate::harness::count_running(&a.job_allocs("still-fine")) == 1).then_some(())
    });
}

#[test]
fn bad_agent_config_lists_every_error_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.hcl");
    std::fs::write(
        &path,
        format!(
            "data_dir = \"{}\"\nports {{\n  http = {}\n}}\nserver {{\n  enabled = true\n  raft_multiplier = 11\n  heartbeat_grace = \"soon\"\n  no_such_key = 1\n}}\n",
            dir.path().display(),
            free_port()
        ),
    )
    .unwrap();
    let out = Command::new(bin("drover"))
        .args(["agent", "-config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("server.raft_multiplier"), "{text}");
    assert!(text.contains("server.heartbeat_grace"), "{text}");
    assert!(text.contains("server.no_such_key"), "{text}");
}
