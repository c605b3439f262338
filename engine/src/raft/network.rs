//! openraft's network over a pluggable server-to-server transport.
//!
//! The engine does not open sockets itself: the agent plugs in a `PeerTransport` from `net`,
//! which carries these messages in `server_proto` frames.

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::{Deserialize, Serialize};

use super::types::TypeConfig;

/// One Raft message between servers.
#[derive(Serialize, Deserialize, Debug)]
pub enum RaftRpc {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<u64>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
}

/// The answer to a `RaftRpc`.
#[derive(Serialize, Deserialize, Debug)]
pub enum RaftRpcReply {
    AppendEntries(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    InstallSnapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
}

/// The least time a snapshot chunk may take to reach a peer.
const SNAPSHOT_CHUNK_TIMEOUT_MIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Carries Raft messages to another server's RPC address.
#[allow(async_fn_in_trait)]
pub trait PeerTransport: Clone + 'static {
    /// Sends one message and waits up to `timeout` for its reply. `Err` means the peer was
    /// unreachable or too slow.
    async fn call(
        &self,
        addr: &str,
        rpc: RaftRpc,
        timeout: std::time::Duration,
    ) -> Result<RaftRpcReply, String>;

    /// Asks the server at `addr` whether it already belongs to a Raft cluster. `Err` means it
    /// could not be asked.
    async fn is_initialized(&self, addr: &str) -> Result<bool, String> {
        Err(format!("cannot ask {addr}: no server-to-server transport"))
    }
}

/// The transport of a single-server cluster: there is never anyone to talk to.
#[derive(Clone, Default)]
pub struct NoPeers;

impl PeerTransport for NoPeers {
    async fn call(
        &self,
        addr: &str,
        _rpc: RaftRpc,
        _timeout: std::time::Duration,
    ) -> Result<RaftRpcReply, String> {
        Err(format!(
            "no server-to-server transport configured; cannot reach {addr}"
        ))
    }
}

/// Creates one `Network` per peer.
#[derive(Clone)]
pub struct NetworkFactory<T: PeerTransport> {
    pub transport: T,
}

/// The connection to one peer.
pub struct Network<T: PeerTransport> {
    transport: T,
    addr: String,
}

impl<T: PeerTransport> RaftNetworkFactory<TypeConfig> for NetworkFactory<T> {
    type Network = Network<T>;

    async fn new_client(&mut self, _target: u64, node: &BasicNode) -> Self::Network {
        Network {
            transport: self.transport.clone(),
            addr: node.addr.clone(),
        }
    }
}

fn unreachable<E: std::error::Error>(reason: String) -> RPCError<u64, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other(reason)))
}

fn mismatch<E: std::error::Error>(addr: &str) -> RPCError<u64, BasicNode, E> {
    RPCError::Network(NetworkError::new(&std::io::Error::other(format!(
        "peer {addr} answered with the wrong reply kind"
    ))))
}

impl<T: PeerTransport> RaftNetwork<TypeConfig> for Network<T> {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        match self
            .transport
            .call(&self.addr, RaftRpc::AppendEntries(rpc), option.hard_ttl())
            .await
        {
            Ok(RaftRpcReply::AppendEntries(r)) => {
                r.map_err(|e| RPCError::RemoteError(openraft::error::RemoteError::new(0, e)))
            }
            Ok(_) => Err(mismatch(&self.addr)),
            Err(e) => Err(unreachable(e)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        // A chunk may be megabytes; give it more than a heartbeat's time.
        let timeout = option.hard_ttl().max(SNAPSHOT_CHUNK_TIMEOUT_MIN);
        match self
            .transport
            .call(&self.addr, RaftRpc::InstallSnapshot(rpc), timeout)
            .await
        {
            Ok(RaftRpcReply::InstallSnapshot(r)) => {
                r.map_err(|e| RPCError::RemoteError(openraft::error::RemoteError::new(0, e)))
            }
            Ok(_) => Err(mismatch(&self.addr)),
            Err(e) => Err(unreachable(e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        match self
            .transport
            .call(&self.addr, RaftRpc::Vote(rpc), option.hard_ttl())
            .await
        {
            Ok(RaftRpcReply::Vote(r)) => {
                r.map_err(|e| RPCError::RemoteError(openraft::error::RemoteError::new(0, e)))
            }
            Ok(_) => Err(mismatch(&self.addr)),
            Err(e) => Err(unreachable(e)),
        }
    }
}
