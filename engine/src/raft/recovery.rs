//! Outage recovery: a `peers.json` file in the Raft directory replaces the Raft configuration
//! when a cluster has lost its quorum for good, and a reader of a stopped server's identity.
//!
//! The file uses Nomad's Raft protocol 3 format, a JSON array of
//! `{"id": "<server id>", "address": "ip:port", "non_voter": false}`; drover's server ids are
//! the decimal u64 stored under the meta key `server.id`.
//!
//! # What applying it does and why that is safe enough
//!
//! [`apply_peers_json`] runs before the Raft core starts. It appends ONE membership entry right
//! after the last entry of the local log (or after the last purged or snapshotted entry when the
//! log is empty) and raises the stored vote. openraft takes the newest membership entry in the
//! log as the configuration in force even before it is committed, so the server comes up in
//! the configuration from the file and elects a leader among the listed voters.
//!
//! The entry's log id is `(term = t + 1, leader node = 0, index = last + 1)`, where `t` is the
//! term of the last entry. Three properties follow:
//! - No entry written by a real leader can share that log id: node id 0 is never a server id
//!   (`peers.json` refuses it), so no leader ever wrote under leader id `(t + 1, 0)`. Two
//!   servers only hold the same recovery log id when their logs ended in the same term at the
//!   same index and they got the same file, so both entries are equal. Their logs before it
//!   are then equal too unless two leaders wrote in that same term (openraft allows that:
//!   leader ids are `(term, node)`); that rare case is not detected.
//! - Recovered logs compare as the original logs did: ties in the last term are broken by the
//!   index, so the most complete surviving log still wins the election and the others are
//!   repaired from it (their recovery entries conflict with its real entries and are
//!   truncated). Deriving the id from the vote or this server's id instead would let a lagging
//!   server win and truncate entries other survivors have committed.
//! - The stored vote becomes `(max(vote term, t + 1) + 1, this server, not committed)`: exactly
//!   what a server stores when it starts an election, which Raft allows at any time. So the
//!   entry's term never exceeds the vote's, and a server that led the old configuration does
//!   not resume as leader with a vote granted by the old voters; it must win an election among
//!   the new ones.
//!
//! The steps are ordered so that a crash part way leaves a state that is safe to start from:
//! the vote is raised first, then the entry is appended and fsynced, then `peers.info` is
//! written and only then `peers.json` removed. A crash before the removal applies the file again
//! at the next start, which appends a second, equal configuration after the first.
//!
//! Caveat (as in Nomad): entries at the tail of a surviving log that were never committed in
//! the old configuration become committed once the new leader commits its first entry, and
//! committed entries held only by servers missing from the file are lost. Every surviving
//! server must get the same file, and all of them must be stopped while it is written.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;

use openraft::{BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Membership, Vote};
use serde::Deserialize;
use serde_json::Value;
use storage::{LogRecord, LogStore, SnapshotStore, LOG_FILE_NAME};

use super::types::{decode_entry, encode_entry, TypeConfig};
use crate::error::EngineError;

/// Name of the file an operator places in the Raft directory to recover.
pub const PEERS_FILE: &str = "peers.json";
/// Name of the file written once `peers.json` was applied.
pub const PEERS_INFO_FILE: &str = "peers.info";

// The meta keys below are those `log_storage.rs` and `server/start.rs` write; they are part of
// the on-disk format, so they cannot drift apart silently without breaking the tests here.
const META_VOTE: &str = "raft.vote";
const META_LAST_PURGED: &str = "raft.last_purged";
const SERVER_ID_KEY: &str = "server.id";

/// Entries read per step while scanning the log backwards for a membership.
const SCAN_CHUNK: u64 = 256;

/// One server of a recovered configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredPeer {
    pub id: u64,
    pub address: String,
    pub non_voter: bool,
}

fn fatal(context: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Fatal {
        reason: format!("{context}: {e}"),
    }
}

/// Parses a `peers.json` document. Errors name the element and field, e.g.
/// `peers.json[1].address`.
pub fn parse_peers_json(text: &str) -> Result<Vec<RecoveredPeer>, EngineError> {
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| EngineError::invalid("peers.json", format!("not valid JSON: {e}")))?;
    let Value::Array(items) = doc else {
        return Err(EngineError::invalid(
            "peers.json",
            "must be a JSON array of {\"id\", \"address\", \"non_voter\"} objects",
        ));
    };
    if items.is_empty() {
        return Err(EngineError::invalid(
            "peers.json",
            "the array is empty; list at least one voting server",
        ));
    }
    let mut peers = Vec::with_capacity(items.len());
    let mut ids = BTreeMap::new();
    let mut addresses = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("peers.json[{i}]");
        let Value::Object(fields) = item else {
            return Err(EngineError::invalid(at, "must be an object"));
        };
        if let Some(key) = fields
            .keys()
            .find(|k| !matches!(k.as_str(), "id" | "address" | "non_voter"))
        {
            return Err(EngineError::invalid(
                format!("{at}.{key}"),
                "unknown key; allowed keys are id, address and non_voter",
            ));
        }
        let id = parse_id(&at, fields.get("id"))?;
        let address = parse_address(&at, fields.get("address"))?;
        let non_voter = match fields.get("non_voter") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(EngineError::invalid(
                    format!("{at}.non_voter"),
                    "must be true or false",
                ))
            }
        };
        if let Some(first) = ids.insert(id, i) {
            return Err(EngineError::invalid(
                format!("{at}.id"),
                format!("server id {id} is listed twice (also peers.json[{first}])"),
            ));
        }
        if let Some(first) = addresses.insert(address.clone(), i) {
            return Err(EngineError::invalid(
                format!("{at}.address"),
                format!("address {address} is listed twice (also peers.json[{first}])"),
            ));
        }
        peers.push(RecoveredPeer {
            id,
            address,
            non_voter,
        });
    }
    if peers.iter().all(|p| p.non_voter) {
        return Err(EngineError::invalid(
            "peers.json",
            "every server is a non_voter; at least one voter is needed to elect a leader",
        ));
    }
    Ok(peers)
}

fn parse_id(at: &str, value: Option<&Value>) -> Result<u64, EngineError> {
    let field = format!("{at}.id");
    let hint = "must be a drover server id: the decimal number shown as ID by \
                `drover operator raft list-peers` or printed by `drover operator raft recover`";
    let text = match value {
        None => return Err(EngineError::invalid(field, format!("missing; {hint}"))),
        Some(Value::String(s)) => s.trim(),
        Some(_) => {
            return Err(EngineError::invalid(
                field,
                format!("must be a string; {hint}"),
            ))
        }
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EngineError::invalid(field, format!("{text:?} {hint}")));
    }
    match text.parse::<u64>() {
        Ok(0) => Err(EngineError::invalid(
            field,
            "0 is not a server id (drover never assigns it)",
        )),
        Ok(id) => Ok(id),
        Err(_) => Err(EngineError::invalid(
            field,
            format!("{text:?} is larger than a 64-bit server id; {hint}"),
        )),
    }
}

fn parse_address(at: &str, value: Option<&Value>) -> Result<String, EngineError> {
    let field = format!("{at}.address");
    let text = match value {
        None => return Err(EngineError::invalid(field, "missing; expected ip:port")),
        Some(Value::String(s)) => s.trim(),
        Some(_) => return Err(EngineError::invalid(field, "must be a string ip:port")),
    };
    let addr: SocketAddr = text.parse().map_err(|_| {
        EngineError::invalid(
            field.clone(),
            format!("{text:?} is not ip:port (the server's RPC address, e.g. 10.0.0.5:4647)"),
        )
    })?;
    if addr.port() == 0 {
        return Err(EngineError::invalid(
            field,
            "port 0 is not a listening port",
        ));
    }
    Ok(addr.to_string())
}

/// Builds openraft's membership for `peers`: voters in one config, non-voters as learners.
pub fn membership_of(peers: &[RecoveredPeer]) -> Membership<u64, BasicNode> {
    let voters: BTreeSet<u64> = peers
        .iter()
        .filter(|p| !p.non_voter)
        .map(|p| p.id)
        .collect();
    let nodes: BTreeMap<u64, BasicNode> = peers
        .iter()
        .map(|p| {
            (
                p.id,
                BasicNode {
                    addr: p.address.clone(),
                },
            )
        })
        .collect();
    Membership::new(vec![voters], nodes)
}

fn read_json_meta<T: serde::de::DeserializeOwned>(
    store: &LogStore,
    key: &'static str,
) -> Result<Option<T>, EngineError> {
    match store
        .get_meta_sync(key)
        .map_err(|e| fatal(&format!("reading {key}"), e))?
    {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| fatal(&format!("decoding {key}"), e)),
    }
}

/// The engine's snapshot header, stored in `storage::SnapshotMeta::membership` by the state
/// machine: openraft's snapshot meta as JSON.
#[derive(Deserialize)]
struct SnapshotHeader {
    meta: openraft::SnapshotMeta<u64, BasicNode>,
}

fn snapshot_meta(
    raft_dir: &Path,
) -> Result<Option<openraft::SnapshotMeta<u64, BasicNode>>, EngineError> {
    let snapshots = SnapshotStore::open(raft_dir).map_err(|e| fatal("opening snapshots", e))?;
    let Some(meta) = snapshots
        .latest_meta()
        .map_err(|e| fatal("reading the newest snapshot", e))?
    else {
        return Ok(None);
    };
    let header: SnapshotHeader = serde_json::from_slice(&meta.membership)
        .map_err(|e| fatal("decoding the snapshot header", e))?;
    Ok(Some(header.meta))
}

/// Returns the log id of the last entry this server holds: stored, purged or in a snapshot.
fn last_log_id(raft_dir: &Path, store: &LogStore) -> Result<Option<LogId<u64>>, EngineError> {
    let bounds = store
        .bounds_sync()
        .map_err(|e| fatal("reading the raft log bounds", e))?;
    let stored = match bounds.last_stored {
        None => None,
        Some((index, _)) => {
            let records = store
                .read_range_sync(index, index + 1)
                .map_err(|e| fatal("reading the last raft entry", e))?;
            let record = records
                .first()
                .ok_or_else(|| fatal("reading the last raft entry", format!("{index} vanished")))?;
            Some(
                decode_entry(index, &record.bytes)
                    .map_err(|e| fatal("raft log", e))?
                    .log_id,
            )
        }
    };
    let purged: Option<LogId<u64>> =
        read_json_meta::<Option<LogId<u64>>>(store, META_LAST_PURGED)?.flatten();
    let snapshot = snapshot_meta(raft_dir)?.and_then(|m| m.last_log_id);
    Ok(stored.max(purged).max(snapshot))
}

/// Applies `<raft_dir>/peers.json` if present; see the module documentation for what is
/// written and why it is safe. Returns `Ok(None)` when there is no file. A file that does not
/// parse or does not list `own_id` is an error and stays in place, so the server refuses to
/// start until an operator fixes or removes it. On success the file is deleted and
/// `peers.info` explains what happened.
pub fn apply_peers_json(
    raft_dir: &Path,
    store: &LogStore,
    own_id: u64,
) -> Result<Option<Vec<RecoveredPeer>>, EngineError> {
    let path = raft_dir.join(PEERS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fatal(&format!("reading {}", path.display()), e)),
    };
    let peers = parse_peers_json(&text)?;
    if own_id == 0 {
        return Err(fatal(
            "peers.json recovery",
            "this server's id is 0, which recovery reserves; it cannot be recovered this way",
        ));
    }
    if !peers.iter().any(|p| p.id == own_id) {
        let listed: Vec<String> = peers.iter().map(|p| p.id.to_string()).collect();
        return Err(EngineError::invalid(
            "peers.json",
            format!(
                "this server's id {own_id} is not listed (listed: {}); every recovering server \
                 must be in the file",
                listed.join(", ")
            ),
        ));
    }

    let last = last_log_id(raft_dir, store)?;
    let bounds = store
        .bounds_sync()
        .map_err(|e| fatal("reading the raft log bounds", e))?;
    if let Some(last) = last {
        // A snapshot newer than the log (installed, log not yet purged) is where the log
        // continues; openraft would purge up to it at start-up anyway, and the new entry must
        // directly follow what the store holds.
        let held = bounds.last_log_id().map(|(index, _)| index);
        if held != Some(last.index) {
            let purged = Some(last);
            let bytes = serde_json::to_vec(&purged).expect("log ids always encode");
            store
                .put_meta_sync(META_LAST_PURGED, bytes)
                .map_err(|e| fatal("recording the purge point", e))?;
            store
                .purge_upto_log_id_sync(last.index, last.leader_id.term)
                .map_err(|e| fatal("purging the log up to the snapshot", e))?;
        }
    }
    let last_term = last.map_or(0, |l| l.leader_id.term);
    let index = last.map_or(0, |l| l.index + 1);
    let entry_term = last_term + 1;
    let membership = membership_of(&peers);
    let entry = Entry::<TypeConfig> {
        log_id: LogId::new(CommittedLeaderId::new(entry_term, 0), index),
        payload: EntryPayload::Membership(membership),
    };

    let old_vote: Vote<u64> = read_json_meta(store, META_VOTE)?.unwrap_or_default();
    let vote = Vote::new(old_vote.leader_id.term.max(entry_term) + 1, own_id);
    assert!(
        vote > old_vote,
        "a recovery vote must be newer than {old_vote}"
    );
    let vote_bytes = serde_json::to_vec(&vote).expect("votes always encode");
    store
        .put_meta_sync(META_VOTE, vote_bytes)
        .map_err(|e| fatal("saving the recovery vote", e))?;
    // Resolves after the storage thread's commit and fsync.
    store
        .append_sync(vec![LogRecord {
            index,
            term: entry_term,
            bytes: encode_entry(&entry),
        }])
        .map_err(|e| fatal("appending the recovery membership", e))?;

    let info = peers_info(&peers, entry.log_id, vote);
    let info_path = raft_dir.join(PEERS_INFO_FILE);
    std::fs::write(&info_path, info)
        .map_err(|e| fatal(&format!("writing {}", info_path.display()), e))?;
    std::fs::remove_file(&path).map_err(|e| fatal(&format!("removing {}", path.display()), e))?;
    tracing::warn!(
        server_id = own_id,
        index,
        term = entry_term,
        vote_term = vote.leader_id.term,
        peers = ?peers,
        "applied peers.json: the Raft configuration was replaced by the listed servers; \
         uncommitted entries at the log tail may become committed"
    );
    Ok(Some(peers))
}

fn peers_info(peers: &[RecoveredPeer], log_id: LogId<u64>, vote: Vote<u64>) -> String {
    let mut out = String::from(
        "This server applied a peers.json file at start-up and then removed it.\n\
         \n\
         The Raft configuration was replaced by the servers below through a membership entry\n\
         appended to the local log, and the stored vote was raised so that a new leader is\n\
         elected among them. Entries at the end of the log that were not committed before may\n\
         now become committed.\n\
         \n\
         To recover again, write a new peers.json next to this file while the server is\n\
         stopped; `drover operator raft recover` prints one for a set of stopped servers.\n\
         \n",
    );
    out.push_str(&format!(
        "membership entry: index {} term {}\nvote term: {}\nservers:\n",
        log_id.index, log_id.leader_id.term, vote.leader_id.term
    ));
    for p in peers {
        let role = if p.non_voter { "non-voter" } else { "voter" };
        out.push_str(&format!("  {} {} {role}\n", p.id, p.address));
    }
    out
}

/// Returns the newest membership this store knows and the log id it came with: the last
/// membership entry in the log, else the snapshot's.
fn newest_membership(
    raft_dir: &Path,
    store: &LogStore,
) -> Result<Option<Membership<u64, BasicNode>>, EngineError> {
    let bounds = store
        .bounds_sync()
        .map_err(|e| fatal("reading the raft log bounds", e))?;
    if let (Some(first), Some((last, _))) = (bounds.first_index, bounds.last_stored) {
        let mut end = last + 1;
        while end > first {
            let start = end.saturating_sub(SCAN_CHUNK).max(first);
            let records = store
                .read_range_sync(start, end)
                .map_err(|e| fatal("reading the raft log", e))?;
            for record in records.iter().rev() {
                let entry =
                    decode_entry(record.index, &record.bytes).map_err(|e| fatal("raft log", e))?;
                if let EntryPayload::Membership(m) = entry.payload {
                    return Ok(Some(m));
                }
            }
            end = start;
        }
    }
    Ok(snapshot_meta(raft_dir)?.map(|m| m.last_membership.membership().clone()))
}

/// Describes the stopped server whose Raft directory is `raft_dir`: its id, its address in the
/// newest known membership and whether it is a learner there. Fails when the directory holds
/// no Raft data or the server still runs (its log is locked).
pub fn describe_local_server(raft_dir: &Path) -> Result<RecoveredPeer, EngineError> {
    let log_path = raft_dir.join(LOG_FILE_NAME);
    if !log_path.is_file() {
        return Err(EngineError::invalid(
            "data-dir",
            format!("no Raft data: {} does not exist", log_path.display()),
        ));
    }
    let store = LogStore::open(raft_dir).map_err(|e| {
        EngineError::invalid(
            "data-dir",
            format!(
                "cannot open {} ({e}); is the server still running? Stop it first",
                log_path.display()
            ),
        )
    })?;
    let result = describe_open(raft_dir, &store);
    let closed = store.close().map_err(|e| fatal("closing the raft log", e));
    let peer = result?;
    closed?;
    Ok(peer)
}

fn describe_open(raft_dir: &Path, store: &LogStore) -> Result<RecoveredPeer, EngineError> {
    let id = match store
        .get_meta_sync(SERVER_ID_KEY)
        .map_err(|e| fatal("reading server.id", e))?
    {
        Some(bytes) => match <[u8; 8]>::try_from(bytes.as_slice()) {
            Ok(arr) => u64::from_le_bytes(arr),
            Err(_) => return Err(fatal("reading server.id", "stored value is not 8 bytes")),
        },
        None => {
            return Err(EngineError::invalid(
                "data-dir",
                format!("no server id stored in {}", raft_dir.display()),
            ))
        }
    };
    let membership = newest_membership(raft_dir, store)?.ok_or_else(|| {
        EngineError::invalid(
            "data-dir",
            format!(
                "server {id} has no Raft membership yet (it never joined a cluster), so its \
                 address is unknown"
            ),
        )
    })?;
    let node = membership.get_node(&id).ok_or_else(|| {
        EngineError::invalid(
            "data-dir",
            format!("server {id} is not in its newest Raft membership; it was removed"),
        )
    })?;
    let non_voter = !membership.voter_ids().any(|v| v == id);
    Ok(RecoveredPeer {
        id,
        address: node.addr.clone(),
        non_voter,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_field(text: &str) -> String {
        match parse_peers_json(text) {
            Err(EngineError::Invalid { field, reason }) => format!("{field}: {reason}"),
            other => panic!("expected an Invalid error for {text}, got {other:?}"),
        }
    }

    const TWO: &str = r#"[{"id": "11", "address": "10.0.0.1:4647", "non_voter": false},
                          {"id": "22", "address": "10.0.0.2:4647"}]"#;

    #[test]
    fn parses_nomad_format_with_default_voter() {
        let peers = parse_peers_json(TWO).unwrap();
        assert_eq!(
            peers,
            vec![
                RecoveredPeer {
                    id: 11,
                    address: "10.0.0.1:4647".into(),
                    non_voter: false
                },
                RecoveredPeer {
                    id: 22,
                    address: "10.0.0.2:4647".into(),
                    non_voter: false
                },
            ]
        );
        let text = r#"[{"id":"1","address":"10.0.0.1:1"},
                       {"id":"2","address":"10.0.0.2:1","non_voter":true}]"#;
        let m = membership_of(&parse_peers_json(text).unwrap());
        assert_eq!(m.voter_ids().collect::<Vec<_>>(), vec![1]);
        assert_eq!(m.learner_ids().collect::<Vec<_>>(), vec![2]);
        assert_eq!(m.get_node(&2).unwrap().addr, "10.0.0.2:1");
    }

    #[test]
    fn parse_errors_name_the_field() {
        let cases = [
            ("{}", "peers.json: must be a JSON array"),
            ("[]", "peers.json: the array is empty"),
            ("[1", "peers.json: not valid JSON"),
            (
                r#"[{"id":"1","address":"10.0.0.1:1"}, 5]"#,
                "peers.json[1]: must be an object",
            ),
            (
                r#"[{"id":"1","address":"10.0.0.1:1","voter":true}]"#,
                "peers.json[0].voter: unknown key",
            ),
            (r#"[{"address":"10.0.0.1:1"}]"#, "peers.json[0].id: missing"),
            (
                r#"[{"id":"adf8-11","address":"10.0.0.1:1"}]"#,
                "peers.json[0].id: \"adf8-11\" must be a drover server id",
            ),
            (
                r#"[{"id":7,"address":"10.0.0.1:1"}]"#,
                "peers.json[0].id: must be a string",
            ),
            (
                r#"[{"id":"0","address":"10.0.0.1:1"}]"#,
                "peers.json[0].id: 0 is not a server id",
            ),
            (
                r#"[{"id":"99999999999999999999","address":"10.0.0.1:1"}]"#,
                "larger than a 64-bit",
            ),
            (
                r#"[{"id":"1","address":"10.0.0.1:1"},{"id":"2","address":"host:1"}]"#,
                "peers.json[1].address: \"host:1\" is not ip:port",
            ),
            (r#"[{"id":"1"}]"#, "peers.json[0].address: missing"),
            (
                r#"[{"id":"1","address":"10.0.0.1:0"}]"#,
                "peers.json[0].address: port 0",
            ),
            (
                r#"[{"id":"1","address":"10.0.0.1:1","non_voter":"no"}]"#,
                "peers.json[0].non_voter: must be true or false",
            ),
            (
                r#"[{"id":"1","address":"10.0.0.1:1"},{"id":"1","address":"10.0.0.2:1"}]"#,
                "peers.json[1].id: server id 1 is listed twice (also peers.json[0])",
            ),
            (
                r#"[{"id":"1","address":"10.0.0.1:1"},{"id":"2","address":"10.0.0.1:1"}]"#,
                "peers.json[1].address: address 10.0.0.1:1 is listed twice",
            ),
            (
                r#"[{"id":"1","address":"10.0.0.1:1","non_voter":true}]"#,
                "peers.json: every server is a non_voter",
            ),
        ];
        for (text, want) in cases {
            let got = err_field(text);
            assert!(got.contains(want), "{text}: got {got:?}, want {want:?}");
        }
    }

    fn entry_bytes(
        term: u64,
        leader: u64,
        index: u64,
        payload: EntryPayload<TypeConfig>,
    ) -> LogRecord {
        let entry = Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(term, leader), index),
            payload,
        };
        LogRecord {
            index,
            term,
            bytes: encode_entry(&entry),
        }
    }

    fn old_membership() -> Membership<u64, BasicNode> {
        membership_of(&[
            RecoveredPeer {
                id: 5,
                address: "10.0.0.5:4647".into(),
                non_voter: false,
            },
            RecoveredPeer {
                id: 6,
                address: "10.0.0.6:4647".into(),
                non_voter: false,
            },
            RecoveredPeer {
                id: 7,
                address: "10.0.0.7:4647".into(),
                non_voter: true,
            },
        ])
    }

    /// A log as a three-server cluster leaves it: membership at 0, then entries of term 3.
    fn seeded_store(dir: &Path, last_index: u64) -> LogStore {
        let store = LogStore::open(dir).unwrap();
        let mut records = vec![entry_bytes(
            1,
            5,
            0,
            EntryPayload::Membership(old_membership()),
        )];
        for i in 1..=last_index {
            records.push(entry_bytes(3, 6, i, EntryPayload::Blank));
        }
        store.append_sync(records).unwrap();
        store
            .put_meta_sync(SERVER_ID_KEY, 5u64.to_le_bytes().to_vec())
            .unwrap();
        let vote = serde_json::to_vec(&Vote::new_committed(4, 6u64)).unwrap();
        store.put_meta_sync(META_VOTE, vote).unwrap();
        store
    }

    /// Describes through an already open store (the server's own view).
    fn describe_local_server_open(dir: &Path, store: &LogStore) -> String {
        describe_open(dir, store).unwrap().address
    }

    fn write_peers(dir: &Path, text: &str) {
        std::fs::write(dir.join(PEERS_FILE), text).unwrap();
    }

    const RECOVER_5: &str = r#"[{"id":"5","address":"10.0.1.5:4647"},
                                {"id":"8","address":"10.0.1.8:4647","non_voter":true}]"#;

    #[test]
    fn absent_file_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = seeded_store(dir.path(), 4);
        assert_eq!(apply_peers_json(dir.path(), &store, 5).unwrap(), None);
        assert_eq!(store.last_sync().unwrap(), Some((4, 3)));
    }

    #[test]
    fn applies_after_the_last_entry_and_consumes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = seeded_store(dir.path(), 4);
        write_peers(dir.path(), RECOVER_5);
        let peers = apply_peers_json(dir.path(), &store, 5).unwrap().unwrap();
        assert_eq!(peers.len(), 2);

        let records = store.read_range_sync(5, 6).unwrap();
        assert_eq!(records.len(), 1, "exactly one entry appended at last + 1");
        let entry = decode_entry(5, &records[0].bytes).unwrap();
        // Term one past the last entry's, under the reserved leader node 0.
        assert_eq!(entry.log_id, LogId::new(CommittedLeaderId::new(4, 0), 5));
        let EntryPayload::Membership(m) = entry.payload else {
            panic!("not a membership")
        };
        assert_eq!(m.voter_ids().collect::<Vec<_>>(), vec![5]);
        assert_eq!(m.learner_ids().collect::<Vec<_>>(), vec![8]);
        assert_eq!(m.get_node(&5).unwrap().addr, "10.0.1.5:4647");

        // The vote was 4 (committed, leader 6): now an uncommitted vote for itself in term 5.
        let vote: Vote<u64> = read_json_meta(&store, META_VOTE).unwrap().unwrap();
        assert_eq!(vote, Vote::new(5, 5));
        assert!(!vote.is_committed());
        assert!(entry.log_id.leader_id.term <= vote.leader_id.term);

        assert!(!dir.path().join(PEERS_FILE).exists(), "peers.json consumed");
        let info = std::fs::read_to_string(dir.path().join(PEERS_INFO_FILE)).unwrap();
        assert!(info.contains("5 10.0.1.5:4647 voter"), "{info}");
        assert!(info.contains("8 10.0.1.8:4647 non-voter"), "{info}");

        // A second start finds no file and appends nothing more.
        assert_eq!(apply_peers_json(dir.path(), &store, 5).unwrap(), None);
        assert_eq!(store.last_sync().unwrap(), Some((5, 4)));
    }

    #[test]
    fn applies_on_an_empty_log_after_a_purge() {
        let dir = tempfile::tempdir().unwrap();
        let store = seeded_store(dir.path(), 9);
        let purged = Some(LogId::new(CommittedLeaderId::new(3, 6), 9u64));
        store
            .put_meta_sync(META_LAST_PURGED, serde_json::to_vec(&purged).unwrap())
            .unwrap();
        store.purge_upto_sync(9).unwrap();
        assert_eq!(store.last_sync().unwrap(), None);
        write_peers(dir.path(), RECOVER_5);
        apply_peers_json(dir.path(), &store, 5).unwrap().unwrap();
        let records = store.read_range_sync(0, 100).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].index, 10);
        let entry = decode_entry(10, &records[0].bytes).unwrap();
        assert_eq!(entry.log_id, LogId::new(CommittedLeaderId::new(4, 0), 10));
    }

    #[test]
    fn applies_after_a_snapshot_newer_than_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = seeded_store(dir.path(), 4);
        let snap_id = LogId::new(CommittedLeaderId::new(3, 6), 9u64);
        let header = serde_json::json!({"meta": openraft::SnapshotMeta::<u64, BasicNode> {
            last_log_id: Some(snap_id),
            last_membership: openraft::StoredMembership::new(
                Some(LogId::new(CommittedLeaderId::new(1, 5), 0)),
                old_membership(),
            ),
            snapshot_id: "3-9-0".into(),
        }});
        let meta = storage::SnapshotMeta {
            last_index: 9,
            last_term: 3,
            snapshot_id: "3-9-0".into(),
            membership: serde_json::to_vec(&header).unwrap(),
        };
        let image =
            crate::raft::state_machine::image_from_state(&crate::state::ClusterState::new(6));
        SnapshotStore::open(dir.path())
            .unwrap()
            .write(&meta, &image)
            .unwrap();
        // With the log still behind the snapshot, the snapshot's membership is the newest.
        store.close().unwrap();
        drop(store);
        let me = describe_local_server(dir.path()).unwrap();
        assert_eq!(me.address, "10.0.0.5:4647");
        let store = LogStore::open(dir.path()).unwrap();
        store.truncate_from_sync(0).unwrap();
        assert_eq!(
            describe_local_server_open(dir.path(), &store),
            "10.0.0.5:4647"
        );
        write_peers(dir.path(), RECOVER_5);
        apply_peers_json(dir.path(), &store, 5).unwrap().unwrap();
        // The log continues after the snapshot: the stale entries 0..=4 are purged.
        let records = store.read_range_sync(0, 100).unwrap();
        assert_eq!(
            records.iter().map(|r| r.index).collect::<Vec<_>>(),
            vec![10]
        );
        let entry = decode_entry(10, &records[0].bytes).unwrap();
        assert_eq!(entry.log_id, LogId::new(CommittedLeaderId::new(4, 0), 10));
        let purged: Option<LogId<u64>> = read_json_meta(&store, META_LAST_PURGED).unwrap().unwrap();
        assert_eq!(purged, Some(snap_id));
    }

    #[test]
    fn applies_on_a_log_that_never_started() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        write_peers(dir.path(), r#"[{"id":"42","address":"127.0.0.1:4647"}]"#);
        apply_peers_json(dir.path(), &store, 42).unwrap().unwrap();
        let records = store.read_range_sync(0, 10).unwrap();
        assert_eq!(records.len(), 1);
        let entry = decode_entry(0, &records[0].bytes).unwrap();
        assert_eq!(entry.log_id, LogId::new(CommittedLeaderId::new(1, 0), 0));
        let vote: Vote<u64> = read_json_meta(&store, META_VOTE).unwrap().unwrap();
        assert_eq!(vote, Vote::new(2, 42));
    }

    #[test]
    fn bad_or_foreign_file_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = seeded_store(dir.path(), 4);
        write_peers(dir.path(), r#"[{"id":"5","address":"nowhere"}]"#);
        let err = apply_peers_json(dir.path(), &store, 5).unwrap_err();
        assert!(err.to_string().contains("peers.json[0].address"), "{err}");
        assert!(dir.path().join(PEERS_FILE).exists());

        write_peers(dir.path(), r#"[{"id":"6","address":"10.0.0.6:4647"}]"#);
        let err = apply_peers_json(dir.path(), &store, 5).unwrap_err();
        assert!(
            err.to_string().contains("this server's id 5 is not listed"),
            "{err}"
        );
        assert!(dir.path().join(PEERS_FILE).exists());
        assert!(!dir.path().join(PEERS_INFO_FILE).exists());
        assert_eq!(store.last_sync().unwrap(), Some((4, 3)), "log untouched");
    }

    #[test]
    fn describes_a_stopped_server_from_its_newest_membership() {
        let dir = tempfile::tempdir().unwrap();
        let store = seeded_store(dir.path(), 600);
        store.close().unwrap();
        drop(store);
        let me = describe_local_server(dir.path()).unwrap();
        assert_eq!(
            me,
            RecoveredPeer {
                id: 5,
                address: "10.0.0.5:4647".into(),
                non_voter: false
            }
        );

        // After recovery the newest membership is the recovered one.
        let store = LogStore::open(dir.path()).unwrap();
        write_peers(dir.path(), RECOVER_5);
        apply_peers_json(dir.path(), &store, 5).unwrap();
        // While open (server running), describing is refused.
        let err = describe_local_server(dir.path()).unwrap_err();
        assert!(err.to_string().contains("still running"), "{err}");
        store.close().unwrap();
        drop(store);
        let me = describe_local_server(dir.path()).unwrap();
        assert_eq!(me.address, "10.0.1.5:4647");

        let empty = tempfile::tempdir().unwrap();
        let err = describe_local_server(empty.path()).unwrap_err();
        assert!(err.to_string().contains("no Raft data"), "{err}");
    }

    #[test]
    fn learner_is_described_as_non_voter() {
        let dir = tempfile::tempdir().unwrap();
        let store = seeded_store(dir.path(), 2);
        store
            .put_meta_sync(SERVER_ID_KEY, 7u64.to_le_bytes().to_vec())
            .unwrap();
        store.close().unwrap();
        drop(store);
        let me = describe_local_server(dir.path()).unwrap();
        assert_eq!(
            me,
            RecoveredPeer {
                id: 7,
                address: "10.0.0.7:4647".into(),
                non_voter: true
            }
        );
    }
}
