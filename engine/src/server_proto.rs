//! The server-to-server protocol on the RPC port (selector byte `SERVER_PROTOCOL_BYTE`): Raft
//! messages, HTTP requests forwarded to the leader, and client-protocol requests forwarded to
//! the leader.
//!
//! Each frame is a little-endian `u32` length, then the bincode encoding of one
//! `ServerRequest` or `ServerResponse`. A connection carries one request at a time; callers
//! keep a pool of connections per peer, so a blocking query forwarded to the leader holds one
//! connection and Raft traffic never waits behind it.

use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::raft::network::{RaftRpc, RaftRpcReply};

/// Version of this protocol; a peer that speaks another one is refused at the first frame.
pub const SERVER_PROTOCOL_VERSION: u32 = 1;
/// Bytes of the length prefix.
pub const SERVER_FRAME_HEADER_BYTES: usize = 4;
/// Largest frame either side accepts. Snapshot chunks and large job registrations fit.
pub const SERVER_FRAME_BYTES_MAX: usize = 64 << 20;

/// An HTTP request a follower hands to the leader.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ForwardedHttp {
    pub method: String,
    /// Path and query string, as received.
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// The leader's answer to a forwarded HTTP request.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ForwardedHttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// A request from one server to another.
#[derive(Serialize, Deserialize, Debug)]
pub enum ServerRequest {
    /// First frame on every connection.
    Hello {
        version: u32,
        region: String,
    },
    Raft(RaftRpc),
    Http(ForwardedHttp),
    /// An rkyv-encoded `ClientRequest` from a node connected to a follower.
    Client(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Whether the server already belongs to a Raft cluster (asked before bootstrapping).
    Status,
}

/// The answer to a `ServerRequest`.
#[derive(Serialize, Deserialize, Debug)]
pub enum ServerResponse {
    Hello {
        version: u32,
        region: String,
    },
    Raft(RaftRpcReply),
    Http(ForwardedHttpReply),
    /// An rkyv-encoded `ClientResponse`.
    Client(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The request could not be served; the text says why.
    Error(String),
    /// The answer to `Status`.
    Status {
        initialized: bool,
    },
}

/// Appends one framed message to `out`.
pub fn encode_frame<T: Serialize>(message: &T, out: &mut Vec<u8>) -> Result<(), EngineError> {
    let start = out.len();
    out.extend_from_slice(&[0u8; SERVER_FRAME_HEADER_BYTES]);
    bincode::serialize_into(&mut *out, message).map_err(|e| EngineError::Fatal {
        reason: format!("encoding a server message: {e}"),
    })?;
    let len = out.len() - start - SERVER_FRAME_HEADER_BYTES;
    if len > SERVER_FRAME_BYTES_MAX {
        out.truncate(start);
        return Err(EngineError::invalid(
            "frame",
            format!("server message of {len} bytes exceeds {SERVER_FRAME_BYTES_MAX}"),
        ));
    }
    out[start..start + SERVER_FRAME_HEADER_BYTES].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

/// Reads the body length from a frame header, refusing frames over the limit.
pub fn frame_len(header: [u8; SERVER_FRAME_HEADER_BYTES]) -> Result<usize, EngineError> {
    let len = u32::from_le_bytes(header) as usize;
    if len > SERVER_FRAME_BYTES_MAX {
        return Err(EngineError::invalid(
            "frame",
            format!("server frame of {len} bytes exceeds {SERVER_FRAME_BYTES_MAX}"),
        ));
    }
    Ok(len)
}

/// Decodes one frame body (without its length prefix).
pub fn decode_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, EngineError> {
    bincode::deserialize(body)
        .map_err(|e| EngineError::invalid("frame", format!("undecodable server message: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::{RaftPayload, TypeConfig};
    use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, VoteRequest};
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};

    fn round_trip_request(req: ServerRequest) -> ServerRequest {
        let mut out = Vec::new();
        encode_frame(&req, &mut out).unwrap();
        let len = frame_len(out[..4].try_into().unwrap()).unwrap();
        assert_eq!(len, out.len() - 4);
        decode_body(&out[4..]).unwrap()
    }

    #[test]
    fn raft_messages_survive_the_codec() {
        let entry = Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(3, 7), 42),
            payload: EntryPayload::Normal(RaftPayload::new(vec![1, 2, 3, 255])),
        };
        let req = AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(3, 7),
            prev_log_id: Some(LogId::new(CommittedLeaderId::new(2, 1), 41)),
            entries: vec![entry.clone()],
            leader_commit: Some(LogId::new(CommittedLeaderId::new(2, 1), 40)),
        };
        match round_trip_request(ServerRequest::Raft(RaftRpc::AppendEntries(req))) {
            ServerRequest::Raft(RaftRpc::AppendEntries(got)) => {
                assert_eq!(got.entries, vec![entry]);
                assert_eq!(got.vote, Vote::new_committed(3, 7));
            }
            other => panic!("wrong message {other:?}"),
        }
        let vote = VoteRequest::new(Vote::new(4, 9), None);
        assert!(matches!(
            round_trip_request(ServerRequest::Raft(RaftRpc::Vote(vote))),
            ServerRequest::Raft(RaftRpc::Vote(_))
        ));
        let reply = ServerResponse::Raft(RaftRpcReply::AppendEntries(Ok(
            AppendEntriesResponse::Conflict,
        )));
        let mut out = Vec::new();
        encode_frame(&reply, &mut out).unwrap();
        let back: ServerResponse = decode_body(&out[4..]).unwrap();
        assert!(matches!(
            back,
            ServerResponse::Raft(RaftRpcReply::AppendEntries(Ok(
                AppendEntriesResponse::Conflict
            )))
        ));
    }

    #[test]
    fn byte_payloads_keep_the_wire_form_of_a_byte_sequence() {
        // Written as one byte string, read back by a peer that reads a sequence of bytes, and
        // the other way round: servers of either form agree on every frame.
        let bytes: Vec<u8> = (0..=255).collect();
        let as_string = bincode::serialize(&RaftPayload::new(bytes.clone())).unwrap();
        let as_sequence = bincode::serialize(&bytes).unwrap();
        assert_eq!(as_string, as_sequence);
        let back: RaftPayload = bincode::deserialize(&as_sequence).unwrap();
        assert_eq!(back.bytes, bytes);
        let client = bincode::serialize(&ServerRequest::Client(bytes.clone())).unwrap();
        match bincode::deserialize::<ServerRequest>(&client).unwrap() {
            ServerRequest::Client(got) => assert_eq!(got, bytes),
            other => panic!("wrong message {other:?}"),
        }
    }

    #[test]
    fn oversized_and_garbage_frames_are_refused() {
        assert!(frame_len(((SERVER_FRAME_BYTES_MAX + 1) as u32).to_le_bytes()).is_err());
        assert!(decode_body::<ServerRequest>(&[0xff, 0xff, 0xff, 0xff, 1, 2]).is_err());
    }
}
