//! Server gossip pool over real UDP on loopback: joining, leaving, failing, force-leave,
//! restarts, encryption and garbage datagrams.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use engine::api::{MemberStatus, Membership, ServerInfo};
use net::gossip::{Gossip, GossipConfig, GossipTiming};

fn timing() -> GossipTiming {
    GossipTiming {
        probe_period: Duration::from_millis(200),
        probe_rtt: Duration::from_millis(80),
        suspect_to_down: Duration::from_millis(800),
        join_wait: Duration::from_secs(3),
    }
}

fn info(name: &str, raft_id: u64) -> ServerInfo {
    ServerInfo {
        name: name.to_string(),
        region: "global".into(),
        datacenter: "dc1".into(),
        raft_id,
        rpc_addr: format!("127.0.0.1:{}", 14000 + raft_id),
        http_addr: format!("127.0.0.1:{}", 15000 + raft_id),
        serf_addr: String::new(),
        status: MemberStatus::Alive,
        bootstrap_expect: 3,
        non_voter: raft_id == 3,
        redundancy_zone: format!("zone-{raft_id}"),
        upgrade_version: String::new(),
        build: "0.1.0".into(),
    }
}

fn start_at(name: &str, raft_id: u64, addr: SocketAddr, key: Option<&[u8]>) -> Gossip {
    Gossip::start(GossipConfig {
        bind: addr,
        advertise: addr,
        me: info(name, raft_id),
        encrypt_key: key.map(|k| k.to_vec()),
        timing: timing(),
    })
    .expect("gossip starts")
}

fn start(name: &str, raft_id: u64, key: Option<&[u8]>) -> Gossip {
    start_at(name, raft_id, "127.0.0.1:0".parse().unwrap(), key)
}

fn addr(g: &Gossip) -> String {
    g.advertise_addr().to_string()
}

fn status_of(g: &Gossip, name: &str) -> Option<MemberStatus> {
    g.members()
        .into_iter()
        .find(|m| m.name == name)
        .map(|m| m.status)
}

/// Polls `cond` until it holds or `within` passes; panics with `what` on timeout.
fn eventually(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn alive_count(g: &Gossip) -> usize {
    g.members()
        .iter()
        .filter(|m| m.status == MemberStatus::Alive)
        .count()
}

fn three() -> (Gossip, Gossip, Gossip) {
    let a = start("a", 1, None);
    let b = start("b", 2, None);
    let c = start("c", 3, None);
    assert_eq!(b.join(&[addr(&a)]).unwrap(), 1);
    assert_eq!(c.join(&[addr(&b)]).unwrap(), 1);
    for g in [&a, &b, &c] {
        eventually(Duration::from_secs(10), "three alive everywhere", || {
            alive_count(g) == 3
        });
    }
    (a, b, c)
}

#[test]
fn gossip_handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Gossip>();
}

#[test]
fn three_pools_join_and_share_metadata() {
    let (a, b, c) = three();
    let mut changes = a.changes();
    assert!(
        *changes.borrow_and_update() > 0,
        "joins bumped the change counter"
    );
    for g in [&a, &b, &c] {
        let members = g.members();
        assert_eq!(members.len(), 3);
        for (i, m) in members.iter().enumerate() {
            let raft_id = i as u64 + 1;
            let mut want = info(&m.name, raft_id);
            want.serf_addr = [&a, &b, &c][i].advertise_addr().to_string();
            assert_eq!(m, &want, "metadata of {} as seen by a pool member", m.name);
        }
    }
    for g in [&a, &b, &c] {
        g.stop();
    }
}

#[test]
fn leave_is_seen_as_left() {
    let (a, b, c) = three();
    tracing::info!("c leaves on purpose: everyone marks it left, not failed");
    let mut a_changes = a.changes();
    a_changes.borrow_and_update();
    c.leave().unwrap();
    assert_eq!(status_of(&c, "c"), Some(MemberStatus::Left));
    for g in [&a, &b] {
        eventually(Duration::from_secs(5), "c left", || {
            status_of(g, "c") == Some(MemberStatus::Left)
        });
    }
    assert!(
        a_changes.has_changed().unwrap(),
        "the leave bumped a's change counter"
    );
    tracing::info!("And it stays left (not failed) once foca has processed the departure.");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(status_of(&a, "c"), Some(MemberStatus::Left));
    assert_eq!(status_of(&b, "c"), Some(MemberStatus::Left));

    tracing::info!("A server that left and starts again at the same address is alive again.");
    let c_addr = c.advertise_addr();
    c.stop();
    let c2 = start_at("c", 3, c_addr, None);
    assert_eq!(c2.join(&[addr(&a)]).unwrap(), 1);
    for g in [&a, &b, &c2] {
        eventually(Duration::from_secs(10), "c back", || alive_count(g) == 3);
    }
    for g in [&a, &b, &c2] {
        g.stop();
    }
}

#[test]
fn stop_fails_then_force_leave_and_prune() {
    let (a, b, c) = three();
    tracing::info!("c stops without leaving: the others detect the failure");
    c.stop();
    for g in [&a, &b] {
        eventually(Duration::from_secs(8), "c failed", || {
            status_of(g, "c") == Some(MemberStatus::Failed)
        });
    }

    tracing::info!("force-leave: unknown names fail; a failed server becomes left everywhere");
    let err = a.force_leave("nobody", false).unwrap_err();
    assert!(err.contains("nobody"), "{err}");

    a.force_leave("c", false).unwrap();
    for g in [&a, &b] {
        eventually(Duration::from_secs(5), "c forced out", || {
            status_of(g, "c") == Some(MemberStatus::Left)
        });
    }
    tracing::info!("A force-leave does nothing to a server that is alive.");
    a.force_leave("b", false).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(status_of(&a, "b"), Some(MemberStatus::Alive));

    tracing::info!("The region-qualified member name works too.");
    b.force_leave("c.global", true).unwrap();
    for g in [&a, &b] {
        eventually(Duration::from_secs(5), "c pruned", || {
            status_of(g, "c").is_none()
        });
    }
    assert_eq!(a.members().len(), 2);

    tracing::info!("A pruned server that comes back is listed again, alive.");
    let c2 = start_at("c", 3, c.advertise_addr(), None);
    assert_eq!(c2.join(&[addr(&b)]).unwrap(), 1);
    for g in [&a, &b] {
        eventually(Duration::from_secs(10), "c back after prune", || {
            status_of(g, "c") == Some(MemberStatus::Alive)
        });
    }
    for g in [&a, &b, &c2] {
        g.stop();
    }
}

#[test]
fn restarted_member_comes_back_alive() {
    let a = start("a", 1, None);
    let b = start("b", 2, None);
    assert_eq!(b.join(&[addr(&a)]).unwrap(), 1);
    eventually(Duration::from_secs(10), "a sees b", || alive_count(&a) == 2);
    let b_addr = b.advertise_addr();
    b.stop();
    eventually(Duration::from_secs(8), "b failed", || {
        status_of(&a, "b") == Some(MemberStatus::Failed)
    });

    tracing::info!(
        "Same name and address, new Raft id: the newer generation replaces the old entry."
    );
    let b2 = start_at("b", 7, b_addr, None);
    assert_eq!(b2.join(&[addr(&a)]).unwrap(), 1);
    eventually(
        Duration::from_secs(10),
        "b alive again with its new metadata",
        || {
            a.members()
                .iter()
                .any(|m| m.name == "b" && m.status == MemberStatus::Alive && m.raft_id == 7)
        },
    );
    assert_eq!(a.members().len(), 2);
    eventually(Duration::from_secs(5), "b2 sees a", || {
        alive_count(&b2) == 2
    });

    tracing::info!("A quick restart, before anyone noticed the stop, also replaces the entry.");
    b2.stop();
    let b3 = start_at("b", 8, b_addr, None);
    assert_eq!(b3.join(&[addr(&a)]).unwrap(), 1);
    eventually(Duration::from_secs(10), "b alive in its third life", || {
        a.members()
            .iter()
            .any(|m| m.name == "b" && m.status == MemberStatus::Alive && m.raft_id == 8)
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(status_of(&a, "b"), Some(MemberStatus::Alive));
    a.stop();
    b3.stop();
}

#[test]
fn join_of_silent_address_fails_naming_it() {
    let a = Gossip::start(GossipConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        advertise: "127.0.0.1:0".parse().unwrap(),
        me: info("a", 1),
        encrypt_key: None,
        timing: GossipTiming {
            join_wait: Duration::from_millis(600),
            ..timing()
        },
    })
    .unwrap();
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = silent.local_addr().unwrap().to_string();
    drop(silent);
    let err = a.join(std::slice::from_ref(&target)).unwrap_err();
    assert!(err.contains(&target), "{err}");
    assert_eq!(a.members().len(), 1);

    tracing::info!("A server that answered an earlier join does not count once it is gone.");
    let b = start("b", 2, None);
    assert_eq!(a.join(&[addr(&b)]).unwrap(), 1);
    b.stop();
    assert!(a.join(&[addr(&b)]).is_err());
    tracing::info!(
        "One silent address among answering ones still joins, counting only who answered."
    );
    let c = start("c", 3, None);
    assert_eq!(a.join(&[addr(&c), target]).unwrap(), 1);
    tracing::info!(
        "Its own address counts as answered, as in a `retry_join` list naming every server."
    );
    assert_eq!(a.join(&[addr(&a), addr(&c)]).unwrap(), 2);
    a.stop();
    c.stop();
}

#[test]
fn bad_config_is_rejected() {
    let cfg = |key: Option<Vec<u8>>, timing: GossipTiming| GossipConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        advertise: "127.0.0.1:0".parse().unwrap(),
        me: info("a", 1),
        encrypt_key: key,
        timing,
    };
    let err = Gossip::start(cfg(Some(vec![1; 10]), timing()))
        .err()
        .unwrap();
    assert!(err.to_string().contains("encrypt"), "{err}");
    let mut huge = cfg(None, timing());
    huge.me.build = "x".repeat(1000);
    let err = Gossip::start(huge).err().unwrap();
    assert!(err.to_string().contains("metadata"), "{err}");
    let slow_rtt = GossipTiming {
        probe_rtt: Duration::from_secs(2),
        ..timing()
    };
    let err = Gossip::start(cfg(None, slow_rtt)).err().unwrap();
    assert!(err.to_string().contains("probe_rtt"), "{err}");
}

#[test]
fn encrypted_pools_merge_only_with_the_same_key() {
    let k1 = [1u8; 32];
    let k2 = [2u8; 32];
    let a = start("a", 1, Some(&k1));
    let b = start("b", 2, Some(&k2));
    let c = start("c", 3, Some(&k1[..]));
    let plain = start("p", 4, None);

    let err = b.join(&[addr(&a)]).unwrap_err();
    assert!(err.contains(&addr(&a)), "{err}");
    assert!(plain.join(&[addr(&a)]).is_err());
    assert_eq!(c.join(&[addr(&a)]).unwrap(), 1);
    eventually(Duration::from_secs(10), "a and c merge", || {
        alive_count(&a) == 2 && alive_count(&c) == 2
    });
    std::thread::sleep(Duration::from_millis(500));
    let names: Vec<String> = a.members().into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["a", "c"]);
    assert_eq!(b.members().len(), 1);
    assert_eq!(plain.members().len(), 1);
    for g in [&a, &b, &c, &plain] {
        g.stop();
    }
}

#[test]
fn garbage_datagrams_do_not_break_the_pool() {
    let key = [9u8; 16];
    let a = start("a", 1, None);
    let e = start("e", 5, Some(&key));
    let junk = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut payloads: Vec<Vec<u8>> = vec![
        vec![0],
        vec![0xff; 3],
        vec![0xaa; 1399],
        vec![0x55; 4000],
        b"not a gossip message at all".to_vec(),
    ];
    // Bytes that look like the start of a header with absurd lengths.
    payloads.push([&[0x7fu8, 0xff, 0xff, 0xff, 0x0f][..], &[1u8; 60][..]].concat());
    for seed in 0u32..200 {
        let len = (seed as usize * 37) % 300 + 1;
        payloads.push(
            (0..len)
                .map(|i| (seed.wrapping_mul(31).wrapping_add(i as u32 * 7)) as u8)
                .collect(),
        );
    }
    for p in &payloads {
        junk.send_to(p, a.advertise_addr()).unwrap();
        junk.send_to(p, e.advertise_addr()).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(a.members().len(), 1);
    assert_eq!(e.members().len(), 1);

    let b = start("b", 2, None);
    assert_eq!(b.join(&[addr(&a)]).unwrap(), 1);
    let f = start("f", 6, Some(&key));
    assert_eq!(f.join(&[addr(&e)]).unwrap(), 1);
    eventually(Duration::from_secs(10), "pools still work", || {
        alive_count(&a) == 2 && alive_count(&e) == 2
    });
    for g in [&a, &b, &e, &f] {
        g.stop();
    }
}
