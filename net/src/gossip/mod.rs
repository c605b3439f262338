//! The server gossip pool: SWIM membership (foca) over UDP on the serf port.
//!
//! One std thread owns the socket and the foca instance. Callers talk to it through a
//! command channel and read the member list from a snapshot the thread keeps current, so
//! every `Membership` call works from any thread.

mod crypto;
mod identity;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use engine::api::{MemberStatus, Membership, ServerInfo};
use tokio::sync::watch;

use crate::error::NetError;
use crypto::Cipher;
use identity::ServerId;

/// The serf port a join address without a port points at.
pub const DEFAULT_SERF_PORT: u16 = 4648;

/// The largest encoded identity accepted (see `Gossip::start`).
const MAX_IDENTITY: usize = 400;

/// How long `leave` waits for its announcement to spread before returning anyway.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);

/// SWIM timings of the pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GossipTiming {
    /// How often a random member is probed.
    pub probe_period: Duration,
    /// How long a direct probe may take before others are asked to probe indirectly.
    pub probe_rtt: Duration,
    /// How long a suspected member has to refute the suspicion before it is failed.
    pub suspect_to_down: Duration,
    /// How long `join` waits for the contacted servers to answer.
    pub join_wait: Duration,
}

impl Default for GossipTiming {
    /// LAN timings, close to serf's LAN profile.
    fn default() -> GossipTiming {
        GossipTiming {
            probe_period: Duration::from_secs(1),
            probe_rtt: Duration::from_millis(500),
            suspect_to_down: Duration::from_secs(4),
            join_wait: Duration::from_secs(3),
        }
    }
}

/// What a pool member needs to start.
#[derive(Clone, Debug)]
pub struct GossipConfig {
    /// The UDP address to bind.
    pub bind: SocketAddr,
    /// The address other servers reach this one at (it becomes `ServerInfo.serf_addr`).
    /// Port 0 means "the port actually bound".
    pub advertise: SocketAddr,
    /// This server; its `status` and `serf_addr` are ignored.
    pub me: ServerInfo,
    /// The decoded `encrypt` key (16, 24 or 32 bytes); `None` sends datagrams in the clear.
    pub encrypt_key: Option<Vec<u8>>,
    pub timing: GossipTiming,
}

/// A member as the pool thread last saw it.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub id: ServerId,
    pub status: MemberStatus,
}

/// The state the pool thread publishes for callers.
#[derive(Default)]
pub(crate) struct Shared {
    /// Every known server by name; a name keeps only its newest generation.
    pub members: BTreeMap<String, Entry>,
    /// When a valid datagram last came from each address, so `join` can tell who answered.
    pub heard: HashMap<SocketAddr, Instant>,
    /// Force-leaves of servers that still looked alive here, by name: (generation, prune).
    /// Applied when the failure is noticed, as Serf keeps the intent.
    pub pending_force_leave: HashMap<String, (u64, bool)>,
}

pub(crate) enum Command {
    /// Announce to these addresses (a join attempt).
    Announce(Vec<SocketAddr>),
    /// Announce the leave, leave, then answer.
    Leave(mpsc::Sender<()>),
    /// Spread a force-leave of the named member, then answer.
    ForceLeave {
        name: String,
        prune: bool,
        done: mpsc::Sender<()>,
    },
    Stop,
}

/// A running gossip pool member. Cloning shares the same pool thread.
#[derive(Clone)]
pub struct Gossip {
    inner: Arc<Inner>,
}

struct Inner {
    commands: mpsc::Sender<Command>,
    shared: Arc<RwLock<Shared>>,
    changes: Arc<watch::Sender<u64>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// A socket that pokes the pool thread out of its read wait when a command is queued.
    waker: Option<(UdpSocket, SocketAddr)>,
    advertise: SocketAddr,
    join_wait: Duration,
}

impl Gossip {
    /// Binds the UDP socket and starts the pool thread (`drover-gossip`).
    pub fn start(config: GossipConfig) -> Result<Gossip, NetError> {
        let invalid = |field: &'static str, reason: &str| NetError::Invalid {
            field,
            reason: reason.to_string(),
        };
        let t = &config.timing;
        if t.probe_period.is_zero() || t.probe_rtt.is_zero() || t.suspect_to_down.is_zero() {
            return Err(invalid("gossip timing", "durations must not be zero"));
        }
        if t.probe_rtt >= t.probe_period {
            return Err(invalid("probe_rtt", "must be shorter than probe_period"));
        }
        let cipher = match &config.encrypt_key {
            Some(key) => Some(Cipher::new(key).map_err(|e| invalid("encrypt", &e))?),
            None => None,
        };
        let socket = UdpSocket::bind(config.bind)?;
        let local = socket.local_addr()?;
        let mut advertise = config.advertise;
        if advertise.port() == 0 {
            advertise.set_port(local.port());
        }
        let waker = make_waker(local);
        let bump = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(1);
        let me = ServerId::new(&config.me, advertise, bump);
        // Two identities travel in every datagram header; a huge one would leave no room for
        // member updates (or not fit at all) and silently break the pool.
        let id_len = postcard::to_allocvec(&me)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if id_len > MAX_IDENTITY {
            let reason = format!(
                "name, region, addresses and build take {id_len} bytes encoded, more than \
                 {MAX_IDENTITY}"
            );
            return Err(invalid("server metadata", &reason));
        }

        let mut shared = Shared::default();
        shared.members.insert(
            me.name.clone(),
            Entry {
                id: me.clone(),
                status: MemberStatus::Alive,
            },
        );
        let shared = Arc::new(RwLock::new(shared));
        let (changes, _) = watch::channel(0u64);
        let changes = Arc::new(changes);
        let (tx, rx) = mpsc::channel();
        let worker = worker::Worker::new(
            socket,
            cipher,
            me,
            config.timing.clone(),
            rx,
            shared.clone(),
            changes.clone(),
        );
        let thread = std::thread::Builder::new()
            .name("drover-gossip".into())
            .spawn(move || worker.run())?;
        Ok(Gossip {
            inner: Arc::new(Inner {
                commands: tx,
                shared,
                changes,
                thread: Mutex::new(Some(thread)),
                waker,
                advertise,
                join_wait: config.timing.join_wait,
            }),
        })
    }

    /// Returns a receiver whose value grows whenever the member list changes.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Returns the address other servers reach this one at.
    pub fn advertise_addr(&self) -> SocketAddr {
        self.inner.advertise
    }

    /// Stops the pool thread without announcing a leave (others will see this server fail)
    /// and waits for it to end. Later calls do nothing.
    pub fn stop(&self) {
        let _ = self.inner.commands.send(Command::Stop);
        self.wake();
        let handle = self
            .inner
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    fn send(&self, cmd: Command) -> Result<(), String> {
        self.inner
            .commands
            .send(cmd)
            .map_err(|_| "the gossip pool is stopped".to_string())?;
        self.wake();
        Ok(())
    }

    fn wake(&self) {
        if let Some((socket, to)) = &self.inner.waker {
            // An empty datagram: the pool thread ignores it, but it ends the read wait.
            let _ = socket.send_to(&[], to);
        }
    }

    /// Whether the server at `addr` spoke since `since`: a member that is still listed alive
    /// but has stopped does not count as answering.
    fn answered(&self, addr: SocketAddr, since: Instant) -> bool {
        if addr == self.inner.advertise {
            // Joining oneself (a `retry_join` list naming every server) trivially succeeds.
            return true;
        }
        let shared = self.inner.shared.read().unwrap_or_else(|e| e.into_inner());
        shared.heard.get(&addr).is_some_and(|t| *t >= since)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: end the thread rather than leave it gossiping forever.
        let _ = self.commands.send(Command::Stop);
        if let Some((socket, to)) = &self.waker {
            let _ = socket.send_to(&[], to);
        }
    }
}

impl Membership for Gossip {
    fn members(&self) -> Vec<ServerInfo> {
        let shared = self.inner.shared.read().unwrap_or_else(|e| e.into_inner());
        shared
            .members
            .values()
            .map(|e| e.id.to_info(e.status))
            .collect()
    }

    fn join(&self, addrs: &[String]) -> Result<usize, String> {
        if addrs.is_empty() {
            return Err("no address to join".into());
        }
        let mut targets = Vec::new();
        let mut unresolved = Vec::new();
        for a in addrs {
            match resolve(a) {
                Ok(sa) => targets.push(sa),
                Err(e) => unresolved.push(e),
            }
        }
        if targets.is_empty() {
            return Err(format!(
                "could not join {}: {}",
                addrs.join(", "),
                unresolved.join("; ")
            ));
        }
        let since = Instant::now();
        let deadline = since + self.inner.join_wait;
        loop {
            let pending: Vec<SocketAddr> = targets
                .iter()
                .copied()
                .filter(|a| !self.answered(*a, since))
                .collect();
            if pending.is_empty() || Instant::now() >= deadline {
                break;
            }
            self.send(Command::Announce(pending))?;
            // Announce again now and then: a lost datagram must not fail the join.
            let resend = (Instant::now() + Duration::from_millis(300)).min(deadline);
            while Instant::now() < resend && !targets.iter().all(|a| self.answered(*a, since)) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let n = targets.iter().filter(|a| self.answered(**a, since)).count();
        if n == 0 {
            let mut msg = format!("no server answered at {}", addrs.join(", "));
            if !unresolved.is_empty() {
                msg.push_str(&format!(" ({})", unresolved.join("; ")));
            }
            return Err(msg);
        }
        Ok(n)
    }

    fn force_leave(&self, name: &str, prune: bool) -> Result<(), String> {
        let target = {
            let shared = self.inner.shared.read().unwrap_or_else(|e| e.into_inner());
            // Accept the bare name and Nomad's `<name>.<region>` member name.
            shared
                .members
                .values()
                .find(|e| e.id.name == name || format!("{}.{}", e.id.name, e.id.region) == name)
                .map(|e| e.id.name.clone())
        };
        let Some(target) = target else {
            return Err(format!("unknown server {name:?}"));
        };
        let (done, wait) = mpsc::channel();
        self.send(Command::ForceLeave {
            name: target,
            prune,
            done,
        })?;
        wait.recv_timeout(LEAVE_TIMEOUT)
            .map_err(|_| format!("force-leave of {name:?} got no answer from the gossip pool"))
    }

    fn leave(&self) -> Result<(), String> {
        let (done, wait) = mpsc::channel();
        self.send(Command::Leave(done))?;
        wait.recv_timeout(LEAVE_TIMEOUT + Duration::from_secs(1))
            .map_err(|_| "leaving the gossip pool got no answer".to_string())
    }
}

/// Resolves `host` or `host:port` (the serf port by default) to one socket address.
fn resolve(addr: &str) -> Result<SocketAddr, String> {
    let addr = addr.trim();
    if addr.is_empty() {
        return Err("empty join address".into());
    }
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return Ok(sa);
    }
    let bare = addr.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_SERF_PORT));
    }
    let found = if addr.contains(':') {
        addr.to_socket_addrs()
    } else {
        (addr, DEFAULT_SERF_PORT).to_socket_addrs()
    };
    found
        .map_err(|e| format!("{addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr}: no address found"))
}

/// Builds the socket that wakes the pool thread: it sends to the bound port on loopback
/// when the pool listens on every interface.
fn make_waker(local: SocketAddr) -> Option<(UdpSocket, SocketAddr)> {
    let mut to = local;
    if to.ip().is_unspecified() {
        to.set_ip(match to {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let from: SocketAddr = match to {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    UdpSocket::bind(from).ok().map(|s| (s, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_defaults_the_serf_port() {
        assert_eq!(
            resolve("127.0.0.1").unwrap(),
            "127.0.0.1:4648".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            resolve("127.0.0.1:5000").unwrap(),
            "127.0.0.1:5000".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            resolve("[::1]").unwrap(),
            "[::1]:4648".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(resolve("localhost").unwrap().port(), 4648);
        assert!(resolve("").is_err());
        assert!(resolve("127.0.0.1:notaport").is_err());
    }
}
