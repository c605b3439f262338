//! The pool thread: owns the UDP socket and foca, runs foca's timers and keeps the shared
//! member list current.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::num::{NonZeroU8, NonZeroUsize};
use std::rc::Rc;
use std::sync::{mpsc, Arc, RwLock};
use std::time::{Duration, Instant};

use engine::api::MemberStatus;
use foca::{AccumulatingRuntime, Codec, Config, Foca, OwnedNotification, PostcardCodec, Timer};
use rand10::rngs::StdRng;
use tokio::sync::watch;
use tracing::debug;

use super::crypto::{Cipher, OVERHEAD};
use super::identity::{Bcast, Handler, ServerId};
use super::{Command, Entry, GossipTiming, Shared, LEAVE_TIMEOUT};

/// Largest datagram on the wire, sealed or not: under a common 1500-byte MTU with room for
/// IP and UDP headers.
const MAX_DATAGRAM: usize = 1400;
/// The longest the thread sleeps in a read, so a lost wake-up costs little.
const MAX_WAIT: Duration = Duration::from_millis(200);
/// How often a pending leave pushes its announcement.
const LEAVE_PUSH: Duration = Duration::from_millis(50);

type Swim = Foca<ServerId, PostcardCodec, StdRng, Handler>;

/// A foca timer due at `at`; `seq` keeps timers due at the same instant in order.
struct Due {
    at: Instant,
    seq: u64,
    timer: Timer<ServerId>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// A leave in progress: the announcement spreads, then foca leaves.
struct Leaving {
    started: Instant,
    next_push: Instant,
    done: mpsc::Sender<()>,
}

pub(crate) struct Worker {
    socket: UdpSocket,
    cipher: Option<Cipher>,
    me: ServerId,
    timing: GossipTiming,
    commands: mpsc::Receiver<Command>,
    shared: Arc<RwLock<Shared>>,
    changes: Arc<watch::Sender<u64>>,
}

/// What the thread owns once running (foca is not `Send`, so it is built on the thread).
struct Run {
    w: Worker,
    foca: Swim,
    rt: AccumulatingRuntime<ServerId>,
    received: Rc<RefCell<Vec<Bcast>>>,
    timers: BinaryHeap<Reverse<Due>>,
    seq: u64,
    leaving: Option<Leaving>,
    left: bool,
}

impl Worker {
    pub fn new(
        socket: UdpSocket,
        cipher: Option<Cipher>,
        me: ServerId,
        timing: GossipTiming,
        commands: mpsc::Receiver<Command>,
        shared: Arc<RwLock<Shared>>,
        changes: Arc<watch::Sender<u64>>,
    ) -> Worker {
        Worker {
            socket,
            cipher,
            me,
            timing,
            commands,
            shared,
            changes,
        }
    }

    pub fn run(self) {
        let config = foca_config(&self.timing);
        let received = Rc::new(RefCell::new(Vec::new()));
        let foca = Foca::with_custom_broadcast(
            self.me.clone(),
            config,
            rand10::make_rng::<StdRng>(),
            PostcardCodec,
            Handler::new(received.clone()),
        );
        let mut run = Run {
            w: self,
            foca,
            rt: AccumulatingRuntime::new(),
            received,
            timers: BinaryHeap::new(),
            seq: 0,
            leaving: None,
            left: false,
        };
        run.main_loop();
    }
}

/// Maps the pool's timings onto foca's configuration.
fn foca_config(t: &GossipTiming) -> Config {
    let mut c = Config::simple();
    c.probe_period = t.probe_period;
    c.probe_rtt = t.probe_rtt;
    c.suspect_to_down_after = t.suspect_to_down;
    c.num_indirect_probes = NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN);
    // Server pools are small; a few more transmissions than foca's formula buys reliability
    // for next to nothing.
    c.max_transmissions = NonZeroU8::new(6).unwrap_or(NonZeroU8::MIN);
    c.max_packet_size = NonZeroUsize::new(MAX_DATAGRAM - OVERHEAD).unwrap_or(NonZeroUsize::MIN);
    c.notify_down_members = true;
    let gossip_every = (t.probe_period / 5).max(Duration::from_millis(20));
    c.periodic_gossip = Some(foca::PeriodicParams {
        frequency: gossip_every,
        num_members: NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN),
    });
    c.periodic_announce = Some(foca::PeriodicParams {
        frequency: t.probe_period * 10,
        num_members: NonZeroUsize::MIN,
    });
    // Lets a pool heal after a partition: both sides keep knocking on the members they lost.
    c.periodic_announce_to_down_members = Some(foca::PeriodicParams {
        frequency: t.probe_period * 10,
        num_members: NonZeroUsize::new(2).unwrap_or(NonZeroUsize::MIN),
    });
    c
}

impl Run {
    fn main_loop(&mut self) {
        let mut buf = vec![0u8; 65536];
        loop {
            loop {
                match self.w.commands.try_recv() {
                    Ok(Command::Stop) | Err(mpsc::TryRecvError::Disconnected) => return,
                    Ok(cmd) => self.command(cmd),
                    Err(mpsc::TryRecvError::Empty) => break,
                }
            }
            let now = Instant::now();
            while self.timers.peek().is_some_and(|d| d.0.at <= now) {
                if let Some(Reverse(due)) = self.timers.pop() {
                    let r = self.foca.handle_timer(due.timer, &mut self.rt);
                    self.after("timer", r);
                }
            }
            self.step_leave(now);

            let mut wait = MAX_WAIT;
            if let Some(d) = self.timers.peek() {
                wait = wait.min(d.0.at.saturating_duration_since(now));
            }
            if let Some(l) = &self.leaving {
                wait = wait.min(l.next_push.saturating_duration_since(now));
            }
            let wait = wait.max(Duration::from_millis(1));
            if self.w.socket.set_read_timeout(Some(wait)).is_err() {
                std::thread::sleep(wait);
                continue;
            }
            match self.w.socket.recv_from(&mut buf) {
                Ok((n, from)) => self.datagram(&buf[..n], from),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => {
                    // ICMP "port unreachable" surfaces here on some systems; not fatal.
                    debug!(error = %e, "gossip socket read failed");
                }
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Announce(addrs) => {
                if self.left {
                    return;
                }
                for a in addrs {
                    let r = self.foca.announce(ServerId::placeholder(a), &mut self.rt);
                    self.after("announce", r);
                }
            }
            Command::ForceLeave { name, prune, done } => {
                let item = Bcast::ForceLeave {
                    name,
                    prune,
                    nonce: rand::random(),
                };
                let r = self.foca.add_broadcast(&item.encode()).map(|_| ());
                self.after("force-leave", r);
                let r = self.foca.broadcast(&mut self.rt);
                self.after("force-leave", r);
                let _ = done.send(());
            }
            Command::Leave(done) => {
                if self.left || self.leaving.is_some() {
                    let _ = done.send(());
                    return;
                }
                let item = Bcast::Leaving {
                    name: self.w.me.name.clone(),
                    bump: self.me_bump(),
                };
                let r = self.foca.add_broadcast(&item.encode()).map(|_| ());
                self.after("leave", r);
                let r = self.foca.broadcast(&mut self.rt);
                self.after("leave", r);
                let now = Instant::now();
                self.leaving = Some(Leaving {
                    started: now,
                    next_push: now + LEAVE_PUSH,
                    done,
                });
            }
            Command::Stop => {}
        }
    }

    /// Pushes a pending leave announcement until it has been sent often enough (or time is
    /// up), then leaves foca's cluster and answers the caller.
    fn step_leave(&mut self, now: Instant) {
        let Some(l) = &mut self.leaving else { return };
        if now < l.next_push {
            return;
        }
        // Keep the final leave within the caller's bound, with room for the last gossip.
        let budget = LEAVE_TIMEOUT.saturating_sub(Duration::from_millis(500));
        let spreading = self.foca.custom_broadcast_backlog() > 0
            && self.foca.num_members() > 0
            && now.duration_since(l.started) < budget;
        if spreading {
            l.next_push = now + LEAVE_PUSH;
            let r = self.foca.broadcast(&mut self.rt);
            self.after("leave", r);
            return;
        }
        let Some(l) = self.leaving.take() else { return };
        let r = self.foca.leave_cluster(&mut self.rt);
        self.after("leave", r);
        self.left = true;
        let name = self.w.me.name.clone();
        self.update(|s| {
            if let Some(e) = s.members.get_mut(&name) {
                e.status = MemberStatus::Left;
            }
            true
        });
        let _ = l.done.send(());
    }

    fn me_bump(&self) -> u64 {
        self.foca.identity().bump
    }

    fn datagram(&mut self, data: &[u8], from: SocketAddr) {
        if data.is_empty() {
            return; // a wake-up
        }
        let opened;
        let plain = match &self.w.cipher {
            Some(c) => match c.open(data) {
                Some(p) => {
                    opened = p;
                    &opened[..]
                }
                None => {
                    debug!(%from, len = data.len(), "dropped gossip datagram that does not open");
                    return;
                }
            },
            None => data,
        };
        let r = self.foca.handle_data(plain, &mut self.rt);
        if r.is_ok() {
            // The sender's advertised address may differ from the datagram's source (NAT, a
            // wildcard bind); `join` may have been given either, so record both.
            let mut header_bytes = plain;
            let header: Option<foca::Header<ServerId>> =
                PostcardCodec.decode_header(&mut header_bytes).ok();
            let src = header.map(|h| h.src.addr);
            let now = Instant::now();
            // Not a member-list change (no counter bump): only `join` looks at this.
            self.update(|s| {
                s.heard.insert(from, now);
                if let Some(src) = src {
                    s.heard.insert(src, now);
                }
                false
            });
        }
        self.after("datagram", r);
    }

    /// Logs a foca error, then sends what foca queued, schedules its timers and applies its
    /// notifications and the broadcasts it accepted.
    fn after(&mut self, what: &str, result: Result<(), foca::Error>) {
        if let Err(e) = result {
            debug!(error = %e, "gossip {what} failed");
        }
        while let Some((to, data)) = self.rt.to_send() {
            self.send(to.addr, &data);
        }
        while let Some((after, timer)) = self.rt.to_schedule() {
            self.seq += 1;
            self.timers.push(Reverse(Due {
                at: Instant::now() + after,
                seq: self.seq,
                timer,
            }));
        }
        let mut notes = Vec::new();
        while let Some(n) = self.rt.to_notify() {
            notes.push(n);
        }
        let items: Vec<Bcast> = std::mem::take(&mut *self.received.borrow_mut());
        if notes.is_empty() && items.is_empty() {
            return;
        }
        let me = self.w.me.name.clone();
        self.update(|s| {
            let mut changed = false;
            for n in notes {
                changed |= apply_notification(s, &me, n);
            }
            for item in items {
                changed |= apply_broadcast(s, &me, item);
            }
            changed
        });
    }

    fn send(&self, to: SocketAddr, data: &[u8]) {
        let sealed;
        let out = match &self.w.cipher {
            Some(c) => match c.seal(data) {
                Some(s) => {
                    sealed = s;
                    &sealed[..]
                }
                None => return,
            },
            None => data,
        };
        if let Err(e) = self.w.socket.send_to(out, to) {
            debug!(%to, error = %e, "gossip send failed");
        }
    }

    /// Changes the shared state; bumps the change counter when `f` says it changed.
    fn update(&self, f: impl FnOnce(&mut Shared) -> bool) {
        let changed = {
            let mut s = self.w.shared.write().unwrap_or_else(|e| e.into_inner());
            f(&mut s)
        };
        if changed {
            self.w.changes.send_modify(|v| *v += 1);
        }
    }
}

/// Applies one foca notification to the member list; returns whether it changed.
fn apply_notification(s: &mut Shared, me: &str, n: OwnedNotification<ServerId>) -> bool {
    match n {
        OwnedNotification::MemberUp(id) => {
            if id.name.is_empty() {
                return false;
            }
            match s.members.get_mut(&id.name) {
                Some(e) if e.id.bump > id.bump => false,
                Some(e) if e.id == id && e.status == MemberStatus::Alive => false,
                Some(e) => {
                    e.id = id;
                    e.status = MemberStatus::Alive;
                    true
                }
                None => {
                    s.members.insert(
                        id.name.clone(),
                        Entry {
                            id,
                            status: MemberStatus::Alive,
                        },
                    );
                    true
                }
            }
        }
        OwnedNotification::MemberDown(id) => {
            let pending = s.pending_force_leave.remove(&id.name);
            match s.members.get_mut(&id.name) {
                Some(e) if e.id.bump == id.bump && id.name != me => {
                    let forced = pending.filter(|(bump, _)| *bump == e.id.bump);
                    let next = match e.status {
                        MemberStatus::Leaving | MemberStatus::Left => MemberStatus::Left,
                        _ if forced.is_some() => MemberStatus::Left,
                        _ => MemberStatus::Failed,
                    };
                    let changed = e.status != next;
                    e.status = next;
                    if forced.is_some_and(|(_, prune)| prune) {
                        s.members.remove(&id.name);
                        return true;
                    }
                    changed
                }
                _ => false,
            }
        }
        OwnedNotification::Rename(old, new) => apply_rename(s, old, new),
        OwnedNotification::Rejoin(id) => {
            debug!(bump = id.bump, "declared down by the gossip pool; rejoined");
            match s.members.get_mut(&id.name) {
                Some(e) => {
                    e.id = id;
                    true
                }
                None => false,
            }
        }
        OwnedNotification::Defunct => {
            debug!("declared down by the gossip pool");
            false
        }
        _ => false,
    }
}

/// Applies foca's `Rename`: a newer identity took over an address.
fn apply_rename(s: &mut Shared, old: ServerId, new: ServerId) -> bool {
    // Foca reports a rename alone (no MemberUp/MemberDown) when liveness did not change.
    let old_alive = s
        .members
        .get(&old.name)
        .is_some_and(|e| e.id.bump == old.bump && e.status == MemberStatus::Alive);
    let mut changed = false;
    if old.name != new.name {
        // Another server took over the address; the old one is gone from it.
        if let Some(e) = s.members.get_mut(&old.name) {
            if e.id.bump == old.bump && e.status == MemberStatus::Alive {
                e.status = MemberStatus::Failed;
                changed = true;
            }
        }
    }
    if new.name.is_empty() {
        return changed;
    }
    match s.members.get_mut(&new.name) {
        Some(e) if e.id.bump >= new.bump => changed,
        Some(e) => {
            // A restart: the newest generation replaces the entry. Its liveness
            // arrives as MemberUp/MemberDown unless it is unchanged (still alive).
            e.id = new;
            true
        }
        // Only an alive predecessor tells that the newcomer is alive; otherwise its MemberUp
        // (if it is up) lists it.
        None if old_alive => {
            s.members.insert(
                new.name.clone(),
                Entry {
                    id: new,
                    status: MemberStatus::Alive,
                },
            );
            true
        }
        None => changed,
    }
}

/// Applies one pool broadcast to the member list; returns whether it changed.
fn apply_broadcast(s: &mut Shared, me: &str, item: Bcast) -> bool {
    match item {
        Bcast::Leaving { name, bump } => {
            // Others mark the server left at once; this server is leaving until foca has
            // left too.
            let next = if name == me {
                MemberStatus::Leaving
            } else {
                MemberStatus::Left
            };
            match s.members.get_mut(&name) {
                Some(e) if e.id.bump == bump && e.status != next => {
                    e.status = next;
                    true
                }
                _ => false,
            }
        }
        Bcast::ForceLeave { name, prune, .. } => {
            // Forcing out a server that still answers would only hide it: foca keeps it up
            // and would never announce it again. Only servers already gone are affected; for
            // one that still looks alive here, the intent is kept and applied once its
            // failure is noticed.
            let gone = match s.members.get(&name) {
                Some(e) if name != me && e.status == MemberStatus::Alive => {
                    let bump = e.id.bump;
                    s.pending_force_leave.insert(name.clone(), (bump, prune));
                    false
                }
                Some(_) => name != me,
                None => false,
            };
            if !gone {
                return false;
            }
            if prune {
                s.members.remove(&name);
            } else if let Some(e) = s.members.get_mut(&name) {
                if e.status == MemberStatus::Left {
                    return false;
                }
                e.status = MemberStatus::Left;
            }
            true
        }
    }
}

#[cfg(test)]
#[path = "worker_test.rs"]
mod worker_test;
