//! High availability: clusters of real servers form, forward to the leader, survive the loss of
//! a minority, fail cleanly without quorum, and come back from `peers.json`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ha_harness::{register_hcl, tiny_job, Servers};

fn follower_of(c: &Servers) -> usize {
    let leader = c.wait_for_leader(Duration::from_secs(30));
    (0..c.servers.len())
        .find(|i| *i != leader && c.servers[*i].child.is_some())
        .expect("a follower")
}

#[test]
fn three_servers_form_a_cluster_and_forward_to_the_leader() {
    let c = Servers::start(3, "", "");
    let leader = c.wait_for_leader(Duration::from_secs(30));
    for s in &c.servers {
        let peers = s.get("/v1/status/peers").unwrap();
        assert_eq!(peers.as_array().unwrap().len(), 3, "{}: {peers}", s.name);
        let members = c.wait_for("three alive members", Duration::from_secs(40), |_| {
            let m = s.get("/v1/agent/members").ok()?;
            let alive = m["Members"]
                .as_array()?
                .iter()
                .filter(|m| m["Status"] == "alive")
                .count();
            (alive == 3).then_some(m)
        });
        assert_eq!(members["Members"].as_array().unwrap().len(), 3);
        let raft = s.get("/v1/operator/raft/configuration").unwrap();
        let servers = raft["Servers"].as_array().unwrap();
        assert_eq!(servers.len(), 3, "{raft}");
        assert!(servers.iter().all(|v| v["Voter"] == true), "{raft}");
        let leaders: Vec<&Value> = servers.iter().filter(|v| v["Leader"] == true).collect();
        assert_eq!(leaders.len(), 1, "{raft}");
        assert_eq!(leaders[0]["Address"], c.servers[leader].rpc_addr());
    }

    // A write through a follower is forwarded and then visible on every server.
    let f = follower_of(&c);
    let (code, body) = register_hcl(&c.servers[f], &tiny_job("through-follower", 1)).unwrap();
    assert_eq!(code, 200, "{body}");
    for s in &c.servers {
        c.wait_for("the job on every server", Duration::from_secs(30), |_| {
            s.get("/v1/job/through-follower?stale=true").ok()
        });
        // A default read on any server answers with a known leader.
        let (code, headers, _) = s.get_full("/v1/job/through-follower").unwrap();
        assert_eq!(code, 200);
        let known = headers
            .iter()
            .find(|(n, _)| n == "x-nomad-knownleader")
            .map(|(_, v)| v.clone());
        assert_eq!(known.as_deref(), Some("true"), "{}", s.name);
    }
    // A stale read on a follower reports its last contact with the leader.
    let (code, headers, _) = c.servers[f].get_full("/v1/jobs?stale=true").unwrap();
    assert_eq!(code, 200);
    let contact: u64 = headers
        .iter()
        .find(|(n, _)| n == "x-nomad-lastcontact")
        .and_then(|(_, v)| v.parse().ok())
        .expect("X-Nomad-LastContact");
    assert!(contact < 5_000, "follower last contact {contact} ms");
}

/// Registers jobs round-robin through every running server until `until` returns true,
/// returning the names the API acknowledged.
fn write_jobs(c: &Servers, prefix: &str, n: usize, acked: &mut BTreeSet<String>) {
    for i in 0..n {
        let name = format!("{prefix}-{i}");
        let running: Vec<usize> = (0..c.servers.len())
            .filter(|j| c.servers[*j].child.is_some())
            .collect();
        let s = &c.servers[running[i % running.len()]];
        if let Ok((200, _)) = register_hcl(s, &tiny_job(&name, 1)) {
            acked.insert(name);
        }
    }
}

#[test]
fn killing_the_leader_elects_another_and_loses_no_acknowledged_write() {
    let mut c = Servers::prepare(3, "", "");
    for s in &mut c.servers {
        s.args = vec!["-dev-nodes".into(), "2".into()];
    }
    c.spawn_all();
    c.wait_for_leader(Duration::from_secs(60));
    let mut acked = BTreeSet::new();
    write_jobs(&c, "before", 10, &mut acked);
    assert_eq!(
        acked.len(),
        10,
        "every write with a healthy cluster succeeds"
    );
    let old = c.wait_for_leader(Duration::from_secs(30));
    let old_addr = c.servers[old].rpc_addr();
    c.servers[old].kill9();
    let killed_at = Instant::now();
    // Writes during the election may fail; only acknowledged ones are promised.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut during = 0;
    while acked.len() < 20 && Instant::now() < deadline {
        write_jobs(&c, &format!("during{during}"), 2, &mut acked);
        during += 1;
    }
    let new = c.wait_for_leader(Duration::from_secs(30));
    assert_ne!(c.servers[new].rpc_addr(), old_addr);
    eprintln!("new leader after {:?}", killed_at.elapsed());
    write_jobs(&c, "after", 5, &mut acked);
    let listed: BTreeSet<String> = c.servers[new]
        .get("/v1/jobs")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["ID"].as_str().unwrap().to_string())
        .collect();
    let lost: Vec<&String> = acked.difference(&listed).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");

    // Scheduling resumes: a new job is placed on the nodes of the surviving servers.
    let (code, body) = register_hcl(&c.servers[new], &tiny_job("placed-after", 2)).unwrap();
    assert_eq!(code, 200, "{body}");
    let leader = &c.servers[new];
    c.wait_for("the new job's placements", Duration::from_secs(30), |_| {
        let allocs = leader.get("/v1/job/placed-after/allocations").ok()?;
        (allocs.as_array()?.len() == 2).then_some(())
    });

    // The killed server comes back and catches up.
    c.servers[old].spawn();
    let back = &c.servers[old];
    c.wait_for(
        "the restarted server to catch up",
        Duration::from_secs(30),
        |_| {
            let jobs = back.get("/v1/jobs?stale=true").ok()?;
            let ids: BTreeSet<String> = jobs
                .as_array()?
                .iter()
                .filter_map(|j| j["ID"].as_str().map(str::to_string))
                .collect();
            acked.is_subset(&ids).then_some(())
        },
    );
}

#[test]
fn without_quorum_writes_fail_cleanly_and_peers_json_brings_one_survivor_back() {
    let mut c = Servers::start(3, "", "");
    let f = follower_of(&c);
    let (code, body) = register_hcl(&c.servers[f], &tiny_job("kept", 1)).unwrap();
    assert_eq!(code, 200, "{body}");
    // Kill the two others: the survivor has no quorum.
    for i in 0..3 {
        if i != f {
            c.servers[i].kill9();
        }
    }
    let s = &c.servers[f];
    c.wait_for(
        "the survivor to lose its leader",
        Duration::from_secs(20),
        |_| s.leader().is_empty().then_some(()),
    );
    let (code, body) = register_hcl(s, &tiny_job("refused", 1)).unwrap();
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("No cluster leader"), "{body}");
    let stale = s.get("/v1/job/kept?stale=true").unwrap();
    assert_eq!(stale["ID"], "kept");
    let (code, _, _) = s.get_full("/v1/job/kept").unwrap();
    assert_eq!(code, 500, "a default read needs a leader");

    // Recover: stop the survivor, let the tool write peers.json from its own data, restart.
    let s = &mut c.servers[f];
    s.kill9();
    let out = std::process::Command::new(crate::harness::bin("drover"))
        .args(["operator", "raft", "recover", "-write", "-data-dir"])
        .arg(s.data_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "recover failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peers = s.raft_dir().join("peers.json");
    assert!(peers.exists(), "recover -write wrote {}", peers.display());
    s.spawn();
    let s = &c.servers[f];
    c.wait_for(
        "the survivor to lead alone",
        Duration::from_secs(30),
        |_| (s.leader() == s.rpc_addr()).then_some(()),
    );
    assert!(!peers.exists(), "peers.json is consumed once applied");
    assert_eq!(s.get("/v1/job/kept").unwrap()["ID"], "kept");
    let (code, body) = register_hcl(s, &tiny_job("after-recovery", 1)).unwrap();
    assert_eq!(code, 200, "{body}");
    let raft = s.get("/v1/operator/raft/configuration").unwrap();
    assert_eq!(raft["Servers"].as_array().unwrap().len(), 1, "{raft}");
}

#[test]
fn a_non_voting_server_joins_as_a_learner_with_its_zone_shown() {
    let c = Servers::start(3, "", "");
    let serfs: Vec<String> = c
        .servers
        .iter()
        .map(|s| format!("\"{}\"", s.serf_addr()))
        .collect();
    let mut extra = crate::ha_harness::Server::new("reader");
    extra.hcl = format!(
        "server {{\n  enabled = true\n  bootstrap_expect = 3\n  non_voting_server = true\n  redundancy_zone = \"zone-b\"\n  upgrade_version = \"1.2.3\"\n  server_join {{\n    retry_join = [{}]\n    retry_interval = \"1s\"\n  }}\n}}\n",
        serfs.join(", ")
    );
    extra.spawn();
    let leader = c.wait_for_leader(Duration::from_secs(30));
    let raft = c.wait_for(
        "the non-voter in the raft configuration",
        Duration::from_secs(30),
        |c| {
            let raft = c.servers[leader]
                .get("/v1/operator/raft/configuration")
                .ok()?;
            (raft["Servers"].as_array()?.len() == 4).then_some(raft)
        },
    );
    let reader = raft["Servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Node"] == "reader.global")
        .cloned()
        .unwrap_or_else(|| panic!("reader missing: {raft}"));
    // Give the leader time to (wrongly) promote it, then check it stayed a learner.
    std::thread::sleep(Duration::from_secs(2));
    let raft = c.servers[leader]
        .get("/v1/operator/raft/configuration")
        .unwrap();
    let reader_now = raft["Servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Node"] == "reader.global")
        .cloned()
        .unwrap();
    assert_eq!(reader_now["Voter"], false, "{raft}");
    assert_eq!(reader["RedundancyZone"], "zone-b", "{raft}");
    assert_eq!(reader["UpgradeVersion"], "1.2.3", "{raft}");
    let voters = raft["Servers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Voter"] == true)
        .count();
    assert_eq!(voters, 3, "{raft}");
    assert_eq!(
        c.servers[leader]
            .get("/v1/status/peers")
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // The learner replicates: a write shows up there.
    let (code, body) = register_hcl(&c.servers[leader], &tiny_job("seen-by-reader", 1)).unwrap();
    assert_eq!(code, 200, "{body}");
    c.wait_for("the learner to replicate", Duration::from_secs(20), |_| {
        extra.get("/v1/job/seen-by-reader?stale=true").ok()
    });
}

#[test]
fn sighup_reloads_the_snapshot_settings() {
    let mut s = crate::ha_harness::Server::new("solo");
    let block = |threshold: u64| {
        format!(
            "server {{\n  enabled = true\n  bootstrap_expect = 1\n  raft_snapshot_threshold = {threshold}\n  raft_snapshot_interval = \"1s\"\n}}\n"
        )
    };
    s.hcl = block(1_000_000);
    s.spawn();
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.leader() != s.rpc_addr() {
        assert!(Instant::now() < deadline, "no leader:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    for i in 0..5 {
        let (code, body) = register_hcl(&s, &tiny_job(&format!("j{i}"), 1)).unwrap();
        assert_eq!(code, 200, "{body}");
    }
    let snapshots = s.raft_dir().join("snapshots");
    let count = || {
        std::fs::read_dir(&snapshots)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".snap"))
                    .count()
            })
            .unwrap_or(0)
    };
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(count(), 0, "no snapshot under a threshold of 1,000,000");
    // Rewrite the config with a threshold of 1 and reload it.
    s.hcl = block(1);
    let config = std::fs::read_to_string(s.dir.path().join("agent.hcl")).unwrap();
    let config = config.replace(
        "raft_snapshot_threshold = 1000000",
        "raft_snapshot_threshold = 1",
    );
    std::fs::write(s.dir.path().join("agent.hcl"), config).unwrap();
    s.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(20);
    while count() == 0 {
        assert!(
            Instant::now() < deadline,
            "no snapshot after the reload:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(s.log().contains("configuration reloaded"));
}

fn raft_size(s: &crate::ha_harness::Server) -> Option<usize> {
    let raft = s.get("/v1/operator/raft/configuration").ok()?;
    Some(raft["Servers"].as_array()?.len())
}

fn alive_members(s: &crate::ha_harness::Server) -> usize {
    s.get("/v1/agent/members")
        .ok()
        .and_then(|m| {
            Some(
                m["Members"]
                    .as_array()?
                    .iter()
                    .filter(|m| m["Status"] == "alive")
                    .count(),
            )
        })
        .unwrap_or(0)
}

#[test]
fn a_joined_server_rejoins_after_a_crash_but_not_after_leaving() {
    let c = Servers::start(3, "", "");
    let leader = c.wait_for_leader(Duration::from_secs(30));
    let mut late = crate::ha_harness::Server::new("late");
    late.hcl = "leave_on_terminate = true\nserver {\n  enabled = true\n  bootstrap_expect = 3\n}\n"
        .to_string();
    // Give the late server the lowest Raft id there can be: with `bootstrap_expect = 3` and
    // three servers in sight it would be the one to bootstrap, and must not, since they
    // already form a cluster.
    std::fs::create_dir_all(late.raft_dir()).unwrap();
    let store = storage::LogStore::open(&late.raft_dir()).unwrap();
    store
        .put_meta_sync("server.id", 1u64.to_le_bytes().to_vec())
        .unwrap();
    store.close().unwrap();
    late.spawn();
    // Joined by hand, through the CLI.
    let joined = c.wait_for("the CLI join", Duration::from_secs(20), |c| {
        let out = std::process::Command::new(crate::harness::bin("drover"))
            .args(["server", "join", "-address"])
            .arg(late.url(""))
            .arg(c.servers[0].serf_addr())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).to_string())
    });
    assert!(joined.contains("Joined 1"), "{joined}");
    c.wait_for("four voters", Duration::from_secs(30), |c| {
        (raft_size(&c.servers[leader])? == 4).then_some(())
    });
    // One cluster, the same leader, and the late server (the lowest id) follows it.
    assert_eq!(c.agreed_leader(), Some(leader), "{}", c.logs());
    c.wait_for(
        "the late server to follow the leader",
        Duration::from_secs(30),
        |c| (late.leader() == c.servers[leader].rpc_addr()).then_some(()),
    );

    // A crash: on restart it rejoins the servers it knew without being told.
    late.kill9();
    std::thread::sleep(Duration::from_secs(2));
    late.spawn();
    c.wait_for(
        "the crashed server to rejoin by itself",
        Duration::from_secs(30),
        |_| (alive_members(&late) == 4).then_some(()),
    );
    c.wait_for("it to follow the leader", Duration::from_secs(30), |c| {
        (late.leader() == c.servers[leader].rpc_addr()).then_some(())
    });

    // A graceful leave (SIGTERM with leave_on_terminate): the leader removes it from Raft
    // and, restarted without rejoin_after_leave, it stays on its own.
    late.signal(libc::SIGTERM);
    assert!(
        late.wait_exit(Duration::from_secs(20)).is_some(),
        "{}",
        late.log()
    );
    c.wait_for("the leaver out of raft", Duration::from_secs(30), |c| {
        (raft_size(&c.servers[leader])? == 3).then_some(())
    });
    late.spawn();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(alive_members(&late), 1, "{}", late.log());
    assert!(late.log().contains("not rejoining"), "{}", late.log());
}
