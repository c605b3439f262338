//! End-to-end tests of the server-operation endpoints (join, force-leave, Raft peer removal,
//! autopilot) against the fake cluster.

mod common;

use common::send;
use engine::api::{AutopilotHealth, Member, ServerHealth};
use net::http::testing::{sample_state, FakeCluster, TestServer};
use net::http::HttpLimits;
use serde_json::json;

fn three_servers() -> FakeCluster {
    let cluster = FakeCluster::new(sample_state());
    cluster.update_status(|status| {
        let first = status.members[0].clone();
        for n in 2..=3 {
            status.members.push(Member {
                redundancy_zone: String::new(),
                upgrade_version: String::new(),
                name: format!("server-{n}.global"),
                addr: format!("127.0.0.{n}"),
                id: format!("6a1c8f2e-0000-4000-8000-00000000000{n}"),
                leader: false,
                ..first.clone()
            });
            status.peers.push(format!("127.0.0.{n}:4647"));
        }
    });
    cluster
}

fn server() -> TestServer {
    TestServer::start(three_servers, HttpLimits::default())
}

fn member_names(s: &TestServer) -> Vec<(String, String)> {
    let members = send("GET", &s.url("/v1/agent/members"), None).json();
    members["Members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["Name"].as_str().unwrap_or("").to_string(),
                m["Status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn join_counts_answers_and_reports_failures() {
    let s = server();
    let r = send(
        "PUT",
        &s.url("/v1/agent/join?address=10.0.0.7&address=10.0.0.8:4648"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"num_joined": 2, "error": ""}));
    let r = send(
        "POST",
        &s.url("/v1/agent/join?address=10.0.0.7&address=unreachable:1"),
        None,
    );
    assert_eq!(r.json()["num_joined"], 1);

    let r = send("PUT", &s.url("/v1/agent/join?address=unreachable"), None);
    assert_eq!(r.status, 500);
    assert!(
        r.body.contains("no server answered at unreachable"),
        "{}",
        r.body
    );

    for url in ["/v1/agent/join", "/v1/agent/join?address="] {
        let r = send("PUT", &s.url(url), None);
        assert_eq!(
            (r.status, r.body.as_str()),
            (400, "missing address to join")
        );
    }
    assert_eq!(
        send("GET", &s.url("/v1/agent/join?address=a"), None).status,
        405
    );
}

#[test]
fn force_leave_marks_left_or_prunes() {
    let s = server();
    let r = send("PUT", &s.url("/v1/agent/force-leave?node=server-2"), None);
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    let names = member_names(&s);
    assert!(
        names.contains(&("server-2.global".into(), "left".into())),
        "{names:?}"
    );

    let r = send(
        "POST",
        &s.url("/v1/agent/force-leave?node=server-3.global&prune=true"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let names = member_names(&s);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(!names.iter().any(|(n, _)| n == "server-3.global"));

    let r = send("PUT", &s.url("/v1/agent/force-leave"), None);
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, "missing node to force leave")
    );
    let r = send(
        "PUT",
        &s.url("/v1/agent/force-leave?node=x&prune=maybe"),
        None,
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("prune"), "{}", r.body);
    assert_eq!(
        send("PUT", &s.url("/v1/agent/force-leave?node=nobody"), None).status,
        404
    );
    assert_eq!(
        send(
            "DELETE",
            &s.url("/v1/agent/force-leave?node=server-2"),
            None
        )
        .status,
        405
    );
}

#[test]
fn raft_peer_removal_by_id_or_address() {
    let s = server();
    let peers = || {
        let config = send("GET", &s.url("/v1/operator/raft/configuration"), None).json();
        config["Servers"]
            .as_array()
            .expect("servers")
            .iter()
            .map(|p| p["Address"].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(peers().len(), 3);
    let r = send(
        "DELETE",
        &s.url("/v1/operator/raft/peer?id=6a1c8f2e-0000-4000-8000-000000000002"),
        None,
    );
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert_eq!(peers(), ["127.0.0.1:4647", "127.0.0.3:4647"]);
    let r = send(
        "DELETE",
        &s.url("/v1/operator/raft/peer?address=127.0.0.3:4647"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(peers(), ["127.0.0.1:4647"]);
    let status_peers = send("GET", &s.url("/v1/status/peers"), None).json();
    assert_eq!(status_peers, json!(["127.0.0.1:4647"]));

    for bad in [
        "/v1/operator/raft/peer",
        "/v1/operator/raft/peer?id=a&address=127.0.0.1:4647",
        "/v1/operator/raft/peer?id=&address=",
    ] {
        let r = send("DELETE", &s.url(bad), None);
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.body.starts_with("Must specify either ?id"), "{}", r.body);
    }
    let r = send(
        "DELETE",
        &s.url("/v1/operator/raft/peer?address=127.0.0.1"),
        None,
    );
    assert_eq!(r.status, 400);
    assert!(r.body.starts_with("address:"), "{}", r.body);
    assert_eq!(
        send("DELETE", &s.url("/v1/operator/raft/peer?id=nope"), None).status,
        404
    );
    assert_eq!(
        send("PUT", &s.url("/v1/operator/raft/peer?id=x"), None).status,
        405
    );
}

const AUTOPILOT: &str = "/v1/operator/autopilot/configuration";

#[test]
fn autopilot_configuration_reads_and_writes() {
    let s = server();
    let r = send("GET", &s.url(AUTOPILOT), None);
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/json");
    assert_eq!(
        r.json(),
        json!({
            "CleanupDeadServers": true,
            "LastContactThreshold": "200ms",
            "MaxTrailingLogs": 250,
            "MinQuorum": 0,
            "ServerStabilizationTime": "10s",
            "EnableRedundancyZones": false,
            "DisableUpgradeMigration": false,
            "EnableCustomUpgrades": false,
            "CreateIndex": 1,
            "ModifyIndex": 1,
        })
    );

    // Durations as strings or nanoseconds; absent fields take the defaults.
    let body = r#"{"CleanupDeadServers": false, "LastContactThreshold": "500ms",
        "ServerStabilizationTime": 5000000000, "MinQuorum": 3, "ModifyIndex": 1}"#;
    let r = send("PUT", &s.url(AUTOPILOT), Some(body));
    assert_eq!((r.status, r.body.as_str()), (200, "true"));
    let got = send("GET", &s.url(AUTOPILOT), None).json();
    assert_eq!(got["CleanupDeadServers"], false);
    assert_eq!(got["LastContactThreshold"], "500ms");
    assert_eq!(got["ServerStabilizationTime"], "5s");
    assert_eq!(got["MinQuorum"], 3);
    assert_eq!(got["MaxTrailingLogs"], 250);
    assert_eq!(got["ModifyIndex"], 2);

    // Check-and-set: a stale index is refused, the current one applies.
    let r = send(
        "POST",
        &s.url(&format!("{AUTOPILOT}?cas=1")),
        Some("{\"MinQuorum\": 5}"),
    );
    assert_eq!((r.status, r.body.as_str()), (200, "false"));
    assert_eq!(send("GET", &s.url(AUTOPILOT), None).json()["MinQuorum"], 3);
    let r = send(
        "PUT",
        &s.url(&format!("{AUTOPILOT}?cas=2")),
        Some("{\"MinQuorum\": 5}"),
    );
    assert_eq!(r.body, "true");
    let got = send("GET", &s.url(AUTOPILOT), None).json();
    assert_eq!(
        (got["MinQuorum"].as_u64(), got["ModifyIndex"].as_u64()),
        (Some(5), Some(3))
    );
}

#[test]
fn autopilot_configuration_rejects_bad_input() {
    let s = server();
    let cases = [
        (r#"{"Colour": "red"}"#, "unknown fields \"Colour\""),
        (
            r#"{"LastContactThreshold": "soon"}"#,
            "LastContactThreshold: invalid duration",
        ),
        (
            r#"{"LastContactThreshold": "0s"}"#,
            "LastContactThreshold: must be greater than zero",
        ),
        (
            r#"{"MaxTrailingLogs": 0}"#,
            "MaxTrailingLogs: must be at least 1",
        ),
        (
            r#"{"MinQuorum": -2}"#,
            "MinQuorum: expected a non-negative integer",
        ),
        (
            r#"{"CleanupDeadServers": "no"}"#,
            "CleanupDeadServers: expected a boolean",
        ),
        ("[1]", "expected a JSON object"),
        ("{", "Failed to decode request body"),
        ("", "Request body is empty"),
    ];
    for (body, want) in cases {
        let r = send("PUT", &s.url(AUTOPILOT), Some(body));
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.body.contains(want), "{body}: {}", r.body);
    }
    let r = send("PUT", &s.url(&format!("{AUTOPILOT}?cas=x")), Some("{}"));
    assert_eq!(r.status, 400);
    assert_eq!(send("DELETE", &s.url(AUTOPILOT), None).status, 405);
    // Nothing was applied by the rejected writes.
    assert_eq!(
        send("GET", &s.url(AUTOPILOT), None).json()["ModifyIndex"],
        1
    );
}

#[test]
fn autopilot_health_is_200_when_healthy_and_429_when_not() {
    let s = server();
    let r = send("GET", &s.url("/v1/operator/autopilot/health"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let health = r.json();
    assert_eq!(health["Healthy"], true);
    assert_eq!(health["FailureTolerance"], 1);
    assert_eq!(health["Servers"].as_array().map(Vec::len), Some(3));
    let first = &health["Servers"][0];
    assert_eq!(first["Name"], "server-1.global");
    assert_eq!(first["Address"], "127.0.0.1:4647");
    assert_eq!(first["SerfStatus"], "alive");
    assert_eq!(first["Leader"], true);
    assert_eq!(first["LastContact"], "0s");
    assert_eq!(first["StableSince"], "2023-11-14T22:13:20Z");
    assert_eq!(health["Leader"], first["ID"]);

    // A failed server makes the cluster unhealthy: 429 with the report as JSON.
    send("PUT", &s.url("/v1/agent/force-leave?node=server-3"), None);
    let r = send("GET", &s.url("/v1/operator/autopilot/health"), None);
    assert_eq!(r.status, 429);
    assert_eq!(r.content_type, "application/json");
    let health = r.json();
    assert_eq!(health["Healthy"], false);
    assert_eq!(health["FailureTolerance"], 0);
    assert_eq!(health["Servers"][2]["StableSince"], "0001-01-01T00:00:00Z");
    assert_eq!(
        send("PUT", &s.url("/v1/operator/autopilot/health"), None).status,
        405
    );
}

#[test]
fn autopilot_health_encodes_engine_report() {
    let s = TestServer::start(
        || {
            let cluster = FakeCluster::new(sample_state());
            cluster.set_autopilot_health(AutopilotHealth {
                healthy: true,
                failure_tolerance: 0,
                servers: vec![ServerHealth {
                    id: "abc".into(),
                    name: "s1.global".into(),
                    address: "10.0.0.1:4647".into(),
                    serf_status: "alive".into(),
                    version: "1.2.3".into(),
                    leader: false,
                    voter: true,
                    last_contact_ms: 12,
                    last_term: 4,
                    last_index: 99,
                    healthy: true,
                    stable_since_unix: 1_700_000_060,
                }],
            });
            cluster
        },
        HttpLimits::default(),
    );
    let health = send("GET", &s.url("/v1/operator/autopilot/health"), None).json();
    assert_eq!(
        health["Servers"][0],
        json!({
            "ID": "abc",
            "Name": "s1.global",
            "Address": "10.0.0.1:4647",
            "SerfStatus": "alive",
            "Version": "1.2.3",
            "Leader": false,
            "LastContact": "12ms",
            "LastTerm": 4,
            "LastIndex": 99,
            "Healthy": true,
            "Voter": true,
            "StableSince": "2023-11-14T22:14:20Z",
        })
    );
    assert_eq!(health["Leader"], "");
    assert_eq!(health["Voters"], json!(["abc"]));
}

#[test]
fn raft_configuration_prefers_the_raft_view_over_gossip() {
    let s = TestServer::start(
        || {
            let cluster = three_servers();
            cluster.update_status(|status| {
                // Raft knows server-1 and a non-voter gossip has not heard of yet.
                let mut learner = status.members[0].clone();
                learner.id = "7".into();
                learner.addr = "10.0.0.9".into();
                learner.leader = false;
                learner.voter = false;
                status.raft_servers = vec![status.members[0].clone(), learner];
            });
            cluster
        },
        HttpLimits::default(),
    );
    let config = send("GET", &s.url("/v1/operator/raft/configuration"), None).json();
    let servers = config["Servers"].as_array().expect("servers");
    assert_eq!(servers.len(), 2);
    assert_eq!(servers[1]["Address"], "10.0.0.9:4647");
    assert_eq!(servers[1]["Voter"], false);
    let r = send(
        "DELETE",
        &s.url("/v1/operator/raft/peer?id=6a1c8f2e-0000-4000-8000-000000000001"),
        None,
    );
    assert_eq!(r.status, 200);
    let config = send("GET", &s.url("/v1/operator/raft/configuration"), None).json();
    assert_eq!(config["Servers"].as_array().map(Vec::len), Some(1));
}
