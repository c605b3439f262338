//! Tests of how foca's notifications and the pool's broadcasts change the member list.

use super::*;
use engine::api::ServerInfo;
use foca::BroadcastHandler;

fn id(name: &str, port: u16, bump: u64) -> ServerId {
    let info = ServerInfo {
        name: name.into(),
        region: "global".into(),
        datacenter: "dc1".into(),
        raft_id: bump,
        rpc_addr: String::new(),
        http_addr: String::new(),
        serf_addr: String::new(),
        status: MemberStatus::Alive,
        bootstrap_expect: 1,
        non_voter: false,
        redundancy_zone: String::new(),
        upgrade_version: String::new(),
        build: String::new(),
    };
    ServerId::new(&info, SocketAddr::from(([127, 0, 0, 1], port)), bump)
}

fn status(s: &Shared, name: &str) -> Option<MemberStatus> {
    s.members.get(name).map(|e| e.status)
}

fn with_alive(ids: &[ServerId]) -> Shared {
    let mut s = Shared::default();
    for i in ids {
        assert!(apply_notification(
            &mut s,
            "me",
            OwnedNotification::MemberUp(i.clone())
        ));
    }
    s
}

#[test]
fn down_without_leave_is_failed_and_leave_in_either_order_is_left() {
    let (b, c) = (id("b", 2, 10), id("c", 3, 10));
    let mut s = with_alive(&[b.clone(), c.clone()]);
    assert!(apply_notification(
        &mut s,
        "me",
        OwnedNotification::MemberDown(b.clone())
    ));
    assert_eq!(status(&s, "b"), Some(MemberStatus::Failed));
    // The leave announcement arriving after foca's down news still makes it a leave.
    let leaving = Bcast::Leaving {
        name: "b".into(),
        bump: 10,
    };
    assert!(apply_broadcast(&mut s, "me", leaving));
    assert_eq!(status(&s, "b"), Some(MemberStatus::Left));

    let leaving = Bcast::Leaving {
        name: "c".into(),
        bump: 10,
    };
    assert!(apply_broadcast(&mut s, "me", leaving));
    assert!(!apply_notification(
        &mut s,
        "me",
        OwnedNotification::MemberDown(c)
    ));
    assert_eq!(status(&s, "c"), Some(MemberStatus::Left));
}

#[test]
fn stale_generations_do_not_override_newer_ones() {
    let old = id("b", 2, 10);
    let new = id("b", 2, 11);
    let mut s = with_alive(std::slice::from_ref(&new));
    assert!(!apply_notification(
        &mut s,
        "me",
        OwnedNotification::MemberUp(old.clone())
    ));
    assert!(!apply_notification(
        &mut s,
        "me",
        OwnedNotification::MemberDown(old)
    ));
    let stale_leave = Bcast::Leaving {
        name: "b".into(),
        bump: 10,
    };
    assert!(!apply_broadcast(&mut s, "me", stale_leave));
    assert_eq!(s.members["b"].id, new);
    assert_eq!(status(&s, "b"), Some(MemberStatus::Alive));
}

#[test]
fn rename_replaces_the_entry_and_keeps_it_alive() {
    let old = id("b", 2, 10);
    let new = id("b", 2, 11);
    let mut s = with_alive(std::slice::from_ref(&old));
    assert!(apply_notification(
        &mut s,
        "me",
        OwnedNotification::Rename(old, new.clone())
    ));
    assert_eq!(s.members["b"].id, new);
    assert_eq!(status(&s, "b"), Some(MemberStatus::Alive));
}

#[test]
fn force_leave_touches_only_servers_that_are_gone() {
    let (b, c) = (id("b", 2, 10), id("c", 3, 10));
    let mut s = with_alive(&[b, c.clone()]);
    let force = |name: &str, prune: bool| Bcast::ForceLeave {
        name: name.into(),
        prune,
        nonce: 1,
    };
    assert!(!apply_broadcast(&mut s, "me", force("b", false)));
    assert!(!apply_broadcast(&mut s, "me", force("b", true)));
    assert_eq!(status(&s, "b"), Some(MemberStatus::Alive));

    apply_notification(&mut s, "me", OwnedNotification::MemberDown(c));
    assert!(apply_broadcast(&mut s, "me", force("c", false)));
    assert_eq!(status(&s, "c"), Some(MemberStatus::Left));
    assert!(apply_broadcast(&mut s, "me", force("c", true)));
    assert_eq!(status(&s, "c"), None);
    assert!(!apply_broadcast(&mut s, "me", force("nobody", true)));
}

#[test]
fn own_leave_announcement_marks_this_server_leaving() {
    let me = id("me", 1, 10);
    let mut s = with_alive(&[me]);
    let leaving = Bcast::Leaving {
        name: "me".into(),
        bump: 10,
    };
    assert!(apply_broadcast(&mut s, "me", leaving));
    assert_eq!(status(&s, "me"), Some(MemberStatus::Leaving));
}

#[test]
fn handler_passes_each_broadcast_on_once_and_rejects_garbage() {
    let received = Rc::new(RefCell::new(Vec::new()));
    let mut h = Handler::new(received.clone());
    let item = Bcast::Leaving {
        name: "b".into(),
        bump: 3,
    };
    let data = item.encode();
    assert_eq!(h.receive_item(&data, None).unwrap(), Some(item.clone()));
    assert_eq!(h.receive_item(&data, None).unwrap(), None);
    assert_eq!(*received.borrow(), vec![item]);
    assert!(h.receive_item(&[0xff, 0xff, 0xff], None).is_err());
}
