//! The client protocol: messages between client nodes and servers on the RPC port.
//!
//! Framing (done by `net`): a connection opens with one selector byte (`CLIENT_PROTOCOL_BYTE`),
//! then carries frames of `u32 little-endian length` + rkyv bytes of `ClientEnvelope`. Requests
//! carry a sequence number; responses echo it and may come back out of order (a blocking
//! `GetAllocs` does not hold up a heartbeat). One connection may carry many nodes' requests.
//! New messages are added as new enum variants at the end; `CLIENT_PROTOCOL_VERSION` is bumped
//! when a change is not backward compatible, and `Hello` lets both sides check it.

use rkyv::{Archive, Deserialize, Serialize};
use sched::structs::{Allocation, ClientStatus, Node, TaskState};

/// The first byte a client sends on a new RPC connection.
pub const CLIENT_PROTOCOL_BYTE: u8 = 0x21;
/// The first byte a server sends on a new server-to-server (Raft, forwarding) connection.
pub const SERVER_PROTOCOL_BYTE: u8 = 0x22;
/// Version of the messages below.
pub const CLIENT_PROTOCOL_VERSION: u32 = 7;
/// Largest frame either side accepts; larger frames drop the connection.
pub const FRAME_BYTES_MAX: usize = 64 * 1024 * 1024;

/// One client-side status change of an allocation, batched by the client.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AllocUpdate {
    pub alloc_id: String,
    pub node_id: String,
    pub client_status: ClientStatus,
    pub client_description: String,
    pub task_states: Vec<(String, TaskState)>,
}

/// A request from a client node.
// A registration carries the whole node while the other requests are small; boxing it would
// add an allocation to every registration for no gain, since frames are dispatched at once.
#[allow(clippy::large_enum_variant)]
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum ClientRequest {
    /// Version check; the server answers `Hello` with its own version.
    Hello { version: u32 },
    /// Registers (or re-registers) a node. Status should be `Ready` or `Initializing`.
    Register { node: Node },
    /// Keeps the node alive; answered with the next TTL.
    Heartbeat { node_id: String, secret_id: String },
    /// Blocks until the node's allocations change past `min_index` or `max_wait_ms` passes.
    GetAllocs {
        node_id: String,
        secret_id: String,
        min_index: u64,
        max_wait_ms: u64,
    },
    /// Reports allocation status changes, batched.
    UpdateAllocs {
        node_id: String,
        secret_id: String,
        updates: Vec<AllocUpdate>,
    },
}

/// A response from a server.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum ClientResponse {
    Hello {
        version: u32,
        region: String,
    },
    Registered {
        heartbeat_ttl_ms: u64,
        index: u64,
        leader_rpc_addr: String,
    },
    HeartbeatAck {
        heartbeat_ttl_ms: u64,
        leader_rpc_addr: String,
    },
    /// The node's allocations that the servers changed after the request's `min_index`
    /// (all of them when it was 0), leaving out those the client already finished. A client
    /// keeps what it was sent before; an allocation that is not listed did not change.
    Allocs {
        index: u64,
        allocs: Vec<Allocation>,
    },
    Updated {
        index: u64,
    },
    /// The request failed; `code` is a stable machine-readable name (e.g. "node_not_found").
    Error {
        code: String,
        message: String,
    },
}

/// A framed message with its sequence number.
#[allow(clippy::large_enum_variant)]
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum ClientEnvelope {
    Request { seq: u64, body: ClientRequest },
    Response { seq: u64, body: ClientResponse },
}
