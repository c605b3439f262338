//! openraft's type configuration for drover and the log entry codec.

use std::fmt;
use std::io::Cursor;
use std::sync::{Arc, Mutex};

use openraft::{BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Membership};
use serde::{Deserialize, Serialize};

use crate::state::{CommandEnvelope, CommandResult};

use super::runtime::GlommioRuntime;

/// The application payload of a Raft entry: an rkyv-encoded `CommandEnvelope`. On the
/// server wire it is one length-prefixed byte string (the same bytes as a sequence of `u8`,
/// written and read in one copy instead of one call per byte).
#[derive(Clone, Serialize, Deserialize)]
pub struct RaftPayload {
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
    /// On the server that proposed the entry, the envelope the bytes encode, handed to the
    /// state machine so that it need not decode what it encoded. Never on the wire or disk.
    #[serde(skip)]
    pub decoded: Handoff,
}

impl RaftPayload {
    /// A payload read from the wire or the log: the state machine decodes it.
    pub fn new(bytes: Vec<u8>) -> RaftPayload {
        RaftPayload {
            bytes,
            decoded: Handoff::default(),
        }
    }

    /// A payload proposed here: `bytes` must be `envelope.encode()`.
    pub fn proposed(bytes: Vec<u8>, envelope: CommandEnvelope) -> RaftPayload {
        RaftPayload {
            bytes,
            decoded: Handoff(Some(Arc::new(Mutex::new(Some(envelope))))),
        }
    }
}

impl PartialEq for RaftPayload {
    fn eq(&self, other: &RaftPayload) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for RaftPayload {}

impl fmt::Debug for RaftPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RaftPayload({} bytes)", self.bytes.len())
    }
}

/// The decoded envelope of a payload proposed on this server, taken once by the state
/// machine. Clones of the entry (the log's recent entries, replication) share it.
#[derive(Clone, Default)]
pub struct Handoff(Option<Arc<Mutex<Option<CommandEnvelope>>>>);

impl Handoff {
    /// Takes the envelope if this server proposed the entry and nobody took it yet.
    pub fn take(&self) -> Option<CommandEnvelope> {
        let slot = self.0.as_ref()?;
        slot.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// What applying one entry produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ApplyResponse {
    pub index: u64,
    pub results: Vec<CommandResult>,
}

openraft::declare_raft_types!(
    /// drover's Raft types: u64 server ids, addresses as nodes, glommio as the runtime.
    pub TypeConfig:
        D = RaftPayload,
        R = ApplyResponse,
        NodeId = u64,
        Node = BasicNode,
        Entry = Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = GlommioRuntime,
);

/// The Raft handle type.
pub type Raft = openraft::Raft<TypeConfig>;
/// openraft's storage error for our node ids.
pub type StorageError = openraft::StorageError<u64>;

const KIND_BLANK: u8 = 0;
const KIND_NORMAL: u8 = 1;
const KIND_MEMBERSHIP: u8 = 2;
const HEADER_LEN: usize = 8 + 8 + 1;

/// Encodes an entry as `term | leader node id | kind | payload` for the log store.
/// The index is stored by the log store itself.
pub fn encode_entry(entry: &Entry<TypeConfig>) -> Vec<u8> {
    let membership;
    let (kind, payload): (u8, &[u8]) = match &entry.payload {
        EntryPayload::Blank => (KIND_BLANK, &[]),
        EntryPayload::Normal(p) => (KIND_NORMAL, &p.bytes),
        EntryPayload::Membership(m) => {
            membership = serde_json::to_vec(m).expect("membership always encodes");
            (KIND_MEMBERSHIP, &membership)
        }
    };
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&entry.log_id.leader_id.term.to_le_bytes());
    out.extend_from_slice(&entry.log_id.leader_id.node_id.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
    out
}

/// Decodes an entry stored at `index`; errors name what was wrong.
pub fn decode_entry(index: u64, bytes: &[u8]) -> Result<Entry<TypeConfig>, String> {
    if bytes.len() < HEADER_LEN {
        return Err(format!(
            "log entry {index} is {} bytes, shorter than its header",
            bytes.len()
        ));
    }
    let term = u64::from_le_bytes(bytes[0..8].try_into().expect("8 bytes"));
    let node_id = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let payload = &bytes[HEADER_LEN..];
    let payload = match bytes[16] {
        KIND_BLANK => EntryPayload::Blank,
        KIND_NORMAL => EntryPayload::Normal(RaftPayload::new(payload.to_vec())),
        KIND_MEMBERSHIP => {
            let m: Membership<u64, BasicNode> = serde_json::from_slice(payload)
                .map_err(|e| format!("log entry {index}: bad membership: {e}"))?;
            EntryPayload::Membership(m)
        }
        other => return Err(format!("log entry {index}: unknown kind {other}")),
    };
    Ok(Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, node_id), index),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_codec_round_trips_every_kind() {
        let log_id = LogId::new(CommittedLeaderId::new(3, 7), 42);
        let entries = [
            Entry::<TypeConfig> {
                log_id,
                payload: EntryPayload::Blank,
            },
            Entry {
                log_id,
                payload: EntryPayload::Normal(RaftPayload::new(vec![1, 2, 3])),
            },
            Entry {
                log_id,
                payload: EntryPayload::Membership(Membership::new(
                    vec![[1u64].into_iter().collect()],
                    None,
                )),
            },
        ];
        for entry in entries {
            let bytes = encode_entry(&entry);
            let back = decode_entry(42, &bytes).unwrap();
            assert_eq!(back, entry);
        }
    }

    #[test]
    fn short_or_unknown_entries_are_errors() {
        assert!(decode_entry(1, &[0; 3]).is_err());
        let mut bytes = vec![0u8; HEADER_LEN];
        bytes[16] = 99;
        assert!(decode_entry(1, &bytes)
            .unwrap_err()
            .contains("unknown kind"));
    }
}
