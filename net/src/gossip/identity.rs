//! What travels on the gossip wire: a server's identity and the pool's custom broadcasts.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;

use engine::api::{MemberStatus, ServerInfo};
use foca::{BroadcastHandler, Identity, Invalidates};
use serde::{Deserialize, Serialize};

/// A server's gossip identity: its serf address, a generation number and every piece of
/// metadata other servers need (Raft id, RPC and HTTP addresses, ...).
///
/// The generation (`bump`) starts at the wall-clock milliseconds of the process start, so a
/// restarted server at the same address always outranks its previous life, and grows by one
/// each time the pool declares this server down and it rejoins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ServerId {
    pub addr: SocketAddr,
    pub bump: u64,
    pub name: String,
    pub region: String,
    pub datacenter: String,
    pub raft_id: u64,
    pub rpc_addr: String,
    pub http_addr: String,
    pub bootstrap_expect: u32,
    pub non_voter: bool,
    pub redundancy_zone: String,
    pub upgrade_version: String,
    pub build: String,
}

impl ServerId {
    pub fn new(info: &ServerInfo, addr: SocketAddr, bump: u64) -> ServerId {
        ServerId {
            addr,
            bump,
            name: info.name.clone(),
            region: info.region.clone(),
            datacenter: info.datacenter.clone(),
            raft_id: info.raft_id,
            rpc_addr: info.rpc_addr.clone(),
            http_addr: info.http_addr.clone(),
            bootstrap_expect: info.bootstrap_expect,
            non_voter: info.non_voter,
            redundancy_zone: info.redundancy_zone.clone(),
            upgrade_version: info.upgrade_version.clone(),
            build: info.build.clone(),
        }
    }

    /// An identity that only names an address: what a join announces to, since the real
    /// identity of the server there is not known yet (foca accepts announces addressed to
    /// any identity with its address).
    pub fn placeholder(addr: SocketAddr) -> ServerId {
        ServerId {
            addr,
            bump: 0,
            name: String::new(),
            region: String::new(),
            datacenter: String::new(),
            raft_id: 0,
            rpc_addr: String::new(),
            http_addr: String::new(),
            bootstrap_expect: 0,
            non_voter: false,
            redundancy_zone: String::new(),
            upgrade_version: String::new(),
            build: String::new(),
        }
    }

    pub fn to_info(&self, status: MemberStatus) -> ServerInfo {
        ServerInfo {
            name: self.name.clone(),
            region: self.region.clone(),
            datacenter: self.datacenter.clone(),
            raft_id: self.raft_id,
            rpc_addr: self.rpc_addr.clone(),
            http_addr: self.http_addr.clone(),
            serf_addr: self.addr.to_string(),
            status,
            bootstrap_expect: self.bootstrap_expect,
            non_voter: self.non_voter,
            redundancy_zone: self.redundancy_zone.clone(),
            upgrade_version: self.upgrade_version.clone(),
            build: self.build.clone(),
        }
    }
}

impl Identity for ServerId {
    type Addr = SocketAddr;

    // Renewing lets a server that was wrongly declared down (a pause, a partition) come back
    // at once under a newer generation instead of staying out of the pool.
    fn renew(&self) -> Option<Self> {
        let mut next = self.clone();
        next.bump = self.bump.wrapping_add(1);
        Some(next)
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.bump > adversary.bump
    }
}

/// A pool-wide announcement carried by foca's custom broadcasts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) enum Bcast {
    /// The server `name` in generation `bump` is leaving on purpose: mark it left, not failed.
    Leaving { name: String, bump: u64 },
    /// An operator forced `name` out (`server force-leave`); `nonce` tells repeated requests
    /// apart so a second one spreads too.
    ForceLeave {
        name: String,
        prune: bool,
        nonce: u64,
    },
}

impl Bcast {
    pub fn encode(&self) -> Vec<u8> {
        // Serializing a plain enum of strings and integers into a growable buffer cannot fail.
        postcard::to_allocvec(self).unwrap_or_default()
    }
}

impl Invalidates for Bcast {
    fn invalidates(&self, other: &Self) -> bool {
        self == other
    }
}

/// A custom broadcast that could not be decoded.
#[derive(Debug)]
pub(crate) struct BadBroadcast;

impl fmt::Display for BadBroadcast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("undecodable gossip broadcast")
    }
}

impl std::error::Error for BadBroadcast {}

/// Decides which broadcasts are news (and so are passed on) and queues them for the worker,
/// which applies them to the member list after each foca call.
pub(crate) struct Handler {
    seen: HashSet<Bcast>,
    pub received: Rc<RefCell<Vec<Bcast>>>,
}

impl Handler {
    pub fn new(received: Rc<RefCell<Vec<Bcast>>>) -> Handler {
        Handler {
            seen: HashSet::new(),
            received,
        }
    }
}

impl BroadcastHandler<ServerId> for Handler {
    type Key = Bcast;
    type Error = BadBroadcast;

    fn receive_item(
        &mut self,
        data: &[u8],
        _sender: Option<&ServerId>,
    ) -> Result<Option<Bcast>, BadBroadcast> {
        let item: Bcast = postcard::from_bytes(data).map_err(|_| BadBroadcast)?;
        if !self.seen.insert(item.clone()) {
            return Ok(None);
        }
        self.received.borrow_mut().push(item.clone());
        Ok(Some(item))
    }
}
