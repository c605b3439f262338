//! Outage recovery end to end: a server that cannot elect (it waits for two peers that never
//! come) is stopped, given a `peers.json` that lists only itself, and on the next start becomes
//! the leader of that one-server configuration and commits writes.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::api::Cluster;
use engine::config::AgentConfig;
use engine::raft::recovery::{describe_local_server, PEERS_FILE, PEERS_INFO_FILE};
use engine::server::{start, Handle, ShardInit};
use sched::env::SchedulerConfig;

const RPC_ADDR: &str = "127.0.0.1:14647";
const HTTP_ADDR: &str = "127.0.0.1:14646";

fn config(data_dir: &std::path::Path) -> AgentConfig {
    let mut config = AgentConfig {
        data_dir: data_dir.to_path_buf(),
        shards: Some(1),
        ..AgentConfig::default()
    };
    config.server.enabled = true;
    config.server.num_schedulers = 1;
    // Three expected servers and no peers: this server never bootstraps or elects by itself.
    config.server.bootstrap_expect = 3;
    config.server.start_timeout = Duration::from_secs(20);
    config
}

fn no_transports() -> ShardInit {
    Arc::new(|_handle: Handle| {})
}

/// Retries a scheduler-config write until this server accepts it as leader, then reports the
/// write's index (or why it never succeeded).
fn write_when_leader(done: mpsc::Sender<Result<u64, String>>) -> ShardInit {
    let done = std::sync::Mutex::new(Some(done));
    Arc::new(move |handle: Handle| {
        let Some(done) = done.lock().unwrap().take() else {
            return;
        };
        glommio::spawn_local(async move {
            let deadline = Instant::now() + Duration::from_secs(15);
            let config = SchedulerConfig {
                memory_oversubscription_enabled: true,
                ..SchedulerConfig::default()
            };
            loop {
                match handle.set_scheduler_config(config.clone(), None).await {
                    Ok((_, index)) => {
                        let _ = done.send(Ok(index));
                        return;
                    }
                    Err(e) if Instant::now() > deadline => {
                        let _ = done.send(Err(format!("no write accepted; last error: {e}")));
                        return;
                    }
                    Err(_) => glommio::timer::sleep(Duration::from_millis(20)).await,
                }
            }
        })
        .detach();
    })
}

#[test]
fn peers_json_lets_a_lone_survivor_lead_again() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("warn")
        .try_init();
    let data = tempfile::tempdir().unwrap();
    let raft_dir = data.path().join("server").join("raft");

    let server = start(
        config(data.path()),
        RPC_ADDR.into(),
        HTTP_ADDR.into(),
        no_transports(),
        Arc::new(|_| {}),
    )
    .expect("first start");
    let id = server.server_id;
    // Well past the largest election timeout: without a configuration nobody elects.
    std::thread::sleep(Duration::from_millis(1500));
    let status = server.shared.status.read().unwrap().clone();
    assert!(
        !status.known_leader,
        "nobody may lead while waiting for peers"
    );
    server.stop();

    // A server that never joined has no address to describe yet.
    let err = describe_local_server(&raft_dir).unwrap_err();
    assert!(err.to_string().contains("no Raft membership"), "{err}");

    // A file that does not list this server is refused and kept; the server does not start.
    let foreign = r#"[{"id": "12345", "address": "127.0.0.1:1"}]"#;
    std::fs::write(raft_dir.join(PEERS_FILE), foreign).unwrap();
    let refused = start(
        config(data.path()),
        RPC_ADDR.into(),
        HTTP_ADDR.into(),
        no_transports(),
        Arc::new(|_| {}),
    );
    let err = refused
        .err()
        .expect("start must refuse a peers.json without this server");
    assert!(err.to_string().contains("is not listed"), "{err}");
    assert!(raft_dir.join(PEERS_FILE).exists());

    let peers = format!(r#"[{{"id": "{id}", "address": "{RPC_ADDR}", "non_voter": false}}]"#);
    std::fs::write(raft_dir.join(PEERS_FILE), peers).unwrap();
    let (tx, rx) = mpsc::channel();
    let server = start(
        config(data.path()),
        RPC_ADDR.into(),
        HTTP_ADDR.into(),
        write_when_leader(tx),
        Arc::new(|_| {}),
    )
    .expect("start with peers.json");
    assert!(!raft_dir.join(PEERS_FILE).exists(), "peers.json consumed");
    assert!(
        raft_dir.join(PEERS_INFO_FILE).exists(),
        "peers.info written"
    );
    let index = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the write task reports")
        .expect("leader commits a write");
    assert!(index > 0);
    let status = server.shared.status.read().unwrap().clone();
    assert_eq!(status.leader_rpc_addr, RPC_ADDR, "this server leads");
    assert_eq!(status.peers, vec![RPC_ADDR.to_string()]);
    assert_eq!(status.server_id, id.to_string());
    server.stop();

    // The stopped server now describes itself from the recovered configuration.
    let me = describe_local_server(&raft_dir).unwrap();
    assert_eq!(me.id, id);
    assert_eq!(me.address, RPC_ADDR);
    assert!(!me.non_voter);

    // And it still leads after a plain restart, with the write preserved.
    let (tx, rx) = mpsc::channel();
    let server = start(
        config(data.path()),
        RPC_ADDR.into(),
        HTTP_ADDR.into(),
        write_when_leader(tx),
        Arc::new(|_| {}),
    )
    .expect("restart");
    let second = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the write task reports")
        .expect("leader commits a second write");
    assert!(second > index, "{second} after {index}");
    server.stop();
}
