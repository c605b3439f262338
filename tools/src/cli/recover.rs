//! `drover operator raft recover`: builds the `peers.json` that lists a set of stopped servers,
//! read from their data directories, and optionally writes it into each of them.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use clap::Args;
use engine::raft::recovery::{describe_local_server, parse_peers_json, RecoveredPeer, PEERS_FILE};
use serde_json::{json, Value};

/// Flags of `operator raft recover`.
#[derive(Args, Debug)]
pub struct RecoverArgs {
    /// Agent data_dir of a stopped server; give it once per surviving server.
    #[arg(long = "data-dir", value_name = "DIR", required = true)]
    pub data_dirs: Vec<PathBuf>,
    /// Writes the peers.json into every given server's Raft directory.
    #[arg(long)]
    pub write: bool,
}

/// Returns the Raft directory inside an agent data directory.
pub fn raft_dir_of(data_dir: &Path) -> PathBuf {
    data_dir.join("server").join("raft")
}

/// Reads every data directory and returns its server, in the order given.
pub fn collect_peers(data_dirs: &[PathBuf]) -> Result<Vec<RecoveredPeer>> {
    let mut peers: Vec<RecoveredPeer> = Vec::with_capacity(data_dirs.len());
    for dir in data_dirs {
        let raft_dir = raft_dir_of(dir);
        if !raft_dir.join(storage::LOG_FILE_NAME).is_file() {
            return Err(anyhow!(
                "{}: no Raft data (expected {}); pass the agent's data_dir of a server",
                dir.display(),
                raft_dir.join(storage::LOG_FILE_NAME).display()
            ));
        }
        let peer =
            describe_local_server(&raft_dir).map_err(|e| anyhow!("{}: {e}", dir.display()))?;
        if let Some(i) = peers.iter().position(|p| p.id == peer.id) {
            return Err(anyhow!(
                "{}: server {} was already read from {}; each server must be given once",
                dir.display(),
                peer.id,
                data_dirs[i].display()
            ));
        }
        peers.push(peer);
    }
    Ok(peers)
}

/// Renders `peers` in Nomad's peers.json format (Raft protocol 3), pretty-printed.
pub fn peers_json(peers: &[RecoveredPeer]) -> String {
    let items: Vec<Value> = peers
        .iter()
        .map(|p| json!({"id": p.id.to_string(), "address": p.address, "non_voter": p.non_voter}))
        .collect();
    let mut text = serde_json::to_string_pretty(&Value::Array(items)).expect("JSON values encode");
    text.push('\n');
    text
}

/// Writes `text` as `<raft_dir>/peers.json` through a temporary file, so a server never sees
/// half a file.
fn write_peers_file(raft_dir: &Path, text: &str) -> Result<PathBuf> {
    let path = raft_dir.join(PEERS_FILE);
    let tmp = raft_dir.join(format!("{PEERS_FILE}.tmp"));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(path)
}

/// Prints the peers.json for the given stopped servers and, with `-write`, writes it into each.
pub fn run(args: &RecoverArgs) -> Result<i32> {
    let peers = collect_peers(&args.data_dirs)?;
    let text = peers_json(&peers);
    // The server parses the file with the same rules at start; refuse here what it would.
    parse_peers_json(&text)
        .map_err(|e| anyhow!("the servers do not form a valid peers.json: {e}"))?;
    print!("{text}");
    if args.write {
        for dir in &args.data_dirs {
            let path = write_peers_file(&raft_dir_of(dir), &text)?;
            eprintln!("Wrote {}", path.display());
        }
        eprintln!(
            "Start every listed server; each applies the file once, removes it and leaves \
             peers.info."
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use engine::raft::recovery::apply_peers_json;
    use storage::LogStore;

    use super::*;

    /// A scratch directory removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Scratch {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .subsec_nanos();
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("drover-recover-{}-{n}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The old configuration: 101 and 202 vote, 303 is a non-voter.
    const OLD: &str = r#"[{"id": "101", "address": "10.0.0.1:4647"},
                          {"id": "202", "address": "10.0.0.2:4647"},
                          {"id": "303", "address": "10.0.0.3:4647", "non_voter": true}]"#;

    /// Creates the data dir of server `id` whose log holds the old configuration. Returns the
    /// open store when `keep_open` (a server that still runs).
    fn server_dir(root: &Path, id: u64, keep_open: bool) -> (PathBuf, Option<LogStore>) {
        let data = root.join(format!("s{id}"));
        let raft_dir = raft_dir_of(&data);
        let store = LogStore::open(&raft_dir).unwrap();
        store
            .put_meta_sync("server.id", id.to_le_bytes().to_vec())
            .unwrap();
        std::fs::write(raft_dir.join(PEERS_FILE), OLD).unwrap();
        apply_peers_json(&raft_dir, &store, id).unwrap().unwrap();
        if keep_open {
            return (data, Some(store));
        }
        store.close().unwrap();
        (data, None)
    }

    #[test]
    fn lists_every_stopped_server_and_writes_the_file_into_each() {
        let root = Scratch::new();
        let dirs: Vec<PathBuf> = [101, 303]
            .into_iter()
            .map(|id| server_dir(&root.0, id, false).0)
            .collect();
        let peers = collect_peers(&dirs).unwrap();
        let text = peers_json(&peers);
        let parsed = parse_peers_json(&text).unwrap();
        assert_eq!(parsed, peers);
        assert_eq!(
            parsed,
            vec![
                RecoveredPeer {
                    id: 101,
                    address: "10.0.0.1:4647".into(),
                    non_voter: false
                },
                RecoveredPeer {
                    id: 303,
                    address: "10.0.0.3:4647".into(),
                    non_voter: true
                },
            ]
        );
        assert!(text.contains("\"id\": \"101\""), "{text}");

        let args = RecoverArgs {
            data_dirs: dirs.clone(),
            write: true,
        };
        assert_eq!(run(&args).unwrap(), 0);
        for dir in &dirs {
            let written = std::fs::read_to_string(raft_dir_of(dir).join(PEERS_FILE)).unwrap();
            assert_eq!(written, text);
            assert!(!raft_dir_of(dir).join("peers.json.tmp").exists());
        }
    }

    #[test]
    fn without_write_nothing_is_written() {
        let root = Scratch::new();
        let (dir, _) = server_dir(&root.0, 202, false);
        let args = RecoverArgs {
            data_dirs: vec![dir.clone()],
            write: false,
        };
        run(&args).unwrap();
        assert!(!raft_dir_of(&dir).join(PEERS_FILE).exists());
    }

    #[test]
    fn refuses_missing_data_running_servers_and_repeats() {
        let root = Scratch::new();
        let err = collect_peers(&[root.0.join("nothing")]).unwrap_err();
        assert!(err.to_string().contains("no Raft data"), "{err}");

        let (running, store) = server_dir(&root.0, 101, true);
        let err = collect_peers(std::slice::from_ref(&running)).unwrap_err();
        assert!(err.to_string().contains("still running"), "{err}");
        drop(store);

        let err = collect_peers(&[running.clone(), running]).unwrap_err();
        assert!(err.to_string().contains("already read"), "{err}");
    }

    #[test]
    fn command_tree_runs_recover_with_nomad_flags() {
        let root = Scratch::new();
        let (dir, _) = server_dir(&root.0, 202, false);
        let argv = ["drover", "operator", "raft", "recover", "-data-dir"]
            .into_iter()
            .map(std::ffi::OsString::from)
            .chain([dir.clone().into_os_string(), "-write".into()])
            .collect();
        assert_eq!(crate::cli::run(argv), 0);
        let written = std::fs::read_to_string(raft_dir_of(&dir).join(PEERS_FILE)).unwrap();
        assert_eq!(
            parse_peers_json(&written).unwrap(),
            vec![RecoveredPeer {
                id: 202,
                address: "10.0.0.2:4647".into(),
                non_voter: false
            }]
        );
        let missing = root.0.join("missing").into_os_string();
        let argv = vec![
            "drover".into(),
            "operator".into(),
            "raft".into(),
            "recover".into(),
            "-data-dir".into(),
            missing,
        ];
        assert_ne!(crate::cli::run(argv), 0);
    }

    #[test]
    fn flags_parse_in_nomad_style() {
        use clap::Parser;

        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: RecoverArgs,
        }
        let known = ["data-dir".to_string(), "write".to_string()]
            .into_iter()
            .collect();
        let argv = ["recover", "-data-dir", "/a", "-data-dir=/b", "-write"]
            .into_iter()
            .map(std::ffi::OsString::from)
            .collect();
        let argv = crate::cli::normalize_args(argv, &known);
        let parsed = Wrapper::try_parse_from(argv).unwrap().args;
        assert_eq!(
            parsed.data_dirs,
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert!(parsed.write);
    }
}
