//! Starting and stopping the cores.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};
use openraft::{BasicNode, Config, SnapshotPolicy};
use storage::{LogStore, SnapshotStore};
use tokio::sync::{mpsc, oneshot, watch};

use super::cluster::{
    bootstrap_when_expected, lease_loop, reconcile_loop, serve_admin, serve_raft_rpcs,
    LeaderContact,
};
use super::handle::Handle;
use super::leader::{
    snapshot_before_stop, snapshot_timer, watch_leadership, LeadershipInputs, Router,
    SnapshotTuning,
};
use super::messages::{ShardMsg, Shared, RAFT_INBOX_MAX, SHARD_INBOX_MAX};
use super::proposer::Proposer;
use super::rejections::RejectionTracker;
use super::shard::{inbox_loop, ShardCore};
use super::worker::worker_loop;
use crate::api::{ClusterStatus, MemberStatus, Membership, ServerInfo, SoloMembership};
use crate::config::AgentConfig;
use crate::error::EngineError;
use crate::raft::log_storage::LogStorage;
use crate::raft::network::{NetworkFactory, NoPeers, PeerTransport};
use crate::raft::state_machine::StateMachine;
use crate::raft::Raft;
use crate::state::ClusterState;

/// Called once on every shard core after it is ready, to start the transports there.
pub type ShardInit = Arc<dyn Fn(Handle) + Send + Sync>;

/// Called once on the Raft core after its state machine is open, with a reader of the index
/// the state machine has applied: what runs there (the agent's idle trim) sees the core's
/// own thread, where every apply and a snapshot restore allocate and free.
pub type RaftInit = Arc<dyn Fn(AppliedIndex) + Send + Sync>;

/// Reads the Raft index the state machine has applied. It lives on the Raft core and is
/// read there only.
#[derive(Clone)]
pub struct AppliedIndex(Rc<std::cell::RefCell<Arc<ClusterState>>>);

impl AppliedIndex {
    /// The index of the newest entry (or snapshot) applied to the published state.
    pub fn get(&self) -> u64 {
        self.0.borrow().index
    }
}

/// Locked memory each executor needs for its io_uring rings.
const EXECUTOR_IO_MEMORY: usize = 512 << 10;
const SERVER_ID_KEY: &str = "server.id";

/// A started server. Dropping it does not stop it; call `stop`.
pub struct RunningServer {
    pub shared: Arc<Shared>,
    executors: Vec<glommio::ExecutorJoinHandle<()>>,
    raft_stop: Option<oneshot::Sender<()>>,
    store: LogStore,
    pub server_id: u64,
    tuning: watch::Sender<SnapshotTuning>,
}

fn tuning_of(config: &AgentConfig) -> SnapshotTuning {
    SnapshotTuning {
        interval: config.server.raft_snapshot_interval,
        threshold: config.server.raft_snapshot_threshold,
        trailing_logs: config.server.raft_trailing_logs,
    }
}

/// How long a graceful stop waits for a snapshot being written.
const SNAPSHOT_STOP_WAIT: Duration = Duration::from_secs(30);

impl RunningServer {
    /// Applies the settings a reload (SIGHUP) may change: `raft_snapshot_threshold`,
    /// `raft_snapshot_interval` and `raft_trailing_logs`. Others need a restart.
    pub fn reload(&self, config: &AgentConfig) {
        let tuning = tuning_of(config);
        tracing::info!(?tuning, "snapshot settings reloaded");
        self.tuning.send_replace(tuning);
    }

    /// Stops the shards, then the Raft core, then the storage thread, and waits for all.
    pub fn stop(mut self) {
        for tx in &self.shared.shard_txs {
            let _ = tx.try_send(ShardMsg::Stop);
        }
        let raft = self.executors.pop();
        for ex in self.executors.drain(..) {
            let _ = ex.join();
        }
        if let Some(stop) = self.raft_stop.take() {
            let _ = stop.send(());
        }
        if let Some(raft) = raft {
            let _ = raft.join();
        }
        // A snapshot being written finishes (its file is complete and found on the next
        // start) unless it takes longer than this.
        if !crate::raft::state_machine::wait_for_snapshot_threads(SNAPSHOT_STOP_WAIT) {
            tracing::warn!(
                waited = ?SNAPSHOT_STOP_WAIT,
                "stopping with a snapshot still being written; the next start replays more log"
            );
        }
        let _ = self.store.close();
    }
}

/// Raises the soft locked-memory limit to the hard limit; glommio needs it for io_uring.
fn raise_memlock(executors: usize) -> Result<(), EngineError> {
    let needed = (executors * EXECUTOR_IO_MEMORY * 2) as u64;
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) != 0 {
            return Ok(());
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim);
            libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim);
        }
        if lim.rlim_cur != libc::RLIM_INFINITY && lim.rlim_cur < needed {
            return Err(EngineError::Fatal {
                reason: format!(
                    "locked memory limit is {} bytes but {executors} executors need {needed}; raise it with `ulimit -l`",
                    lim.rlim_cur
                ),
            });
        }
    }
    Ok(())
}

/// Returns the directory the server keeps its Raft data in.
pub fn raft_dir(config: &AgentConfig) -> PathBuf {
    let base = config
        .server
        .data_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.join("server"));
    base.join("raft")
}

fn server_id(store: &LogStore) -> Result<u64, EngineError> {
    let fatal = |e: storage::StorageError| EngineError::Fatal {
        reason: e.to_string(),
    };
    if let Some(bytes) = store.get_meta_sync(SERVER_ID_KEY).map_err(fatal)? {
        if let Ok(arr) = <[u8; 8]>::try_from(bytes.as_slice()) {
            return Ok(u64::from_le_bytes(arr));
        }
    }
    // Ids are random so servers never collide; 0 is avoided to keep it distinct from "unset".
    let id = rand::random::<u64>().max(1) >> 1;
    store
        .put_meta_sync(SERVER_ID_KEY, id.to_le_bytes().to_vec())
        .map_err(fatal)?;
    Ok(id)
}

fn raft_config(config: &AgentConfig) -> Result<Config, EngineError> {
    let s = &config.server;
    let m = u64::from(s.raft_multiplier.max(1));
    let cfg = Config {
        cluster_name: config.region.clone(),
        // A follower stands for election after the leader lease (openraft: election_timeout_max)
        // plus a random election timeout, i.e. 1.1-1.4 s x raft_multiplier after the last
        // heartbeat; the seed's multiplier 1 is the fastest timing.
        heartbeat_interval: 75 * m,
        election_timeout_min: 400 * m,
        election_timeout_max: 700 * m,
        max_payload_entries: 256,
        snapshot_policy: SnapshotPolicy::Never,
        // The snapshot timer purges behind each snapshot itself, keeping `raft_trailing_logs`
        // (which a reload may change); openraft must not purge on its own.
        max_in_snapshot_log_to_keep: u64::MAX,
        purge_batch_size: 256,
        ..Config::default()
    };
    cfg.validate()
        .map_err(|e| EngineError::invalid("server.raft_multiplier", e.to_string()))
}

/// Starts a server that gossips with nobody and talks to no peers: a single-server cluster.
pub fn start(
    config: AgentConfig,
    rpc_addr: String,
    http_addr: String,
    shard_init: ShardInit,
    raft_init: RaftInit,
) -> Result<RunningServer, EngineError> {
    start_clustered(
        config,
        rpc_addr,
        http_addr,
        shard_init,
        raft_init,
        None,
        || NoPeers,
    )
}

/// Describes this server as the gossip pool would.
pub fn own_server_info(
    config: &AgentConfig,
    raft_id: u64,
    rpc_addr: &str,
    http_addr: &str,
) -> ServerInfo {
    ServerInfo {
        name: config.name.clone(),
        region: config.region.clone(),
        datacenter: config.datacenter.clone(),
        raft_id,
        rpc_addr: rpc_addr.to_string(),
        http_addr: http_addr.to_string(),
        serf_addr: String::new(),
        status: MemberStatus::Alive,
        bootstrap_expect: config.server.bootstrap_expect,
        non_voter: config.server.non_voting_server,
        redundancy_zone: config.server.redundancy_zone.clone(),
        upgrade_version: config.server.upgrade_version.clone(),
        build: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// Reads (or creates) the Raft id of the server whose data lives under `config`'s data dir.
/// The gossip pool needs it before the server starts.
pub fn load_server_id(config: &AgentConfig) -> Result<u64, EngineError> {
    let dir = raft_dir(config);
    std::fs::create_dir_all(&dir).map_err(|e| EngineError::Fatal {
        reason: format!("creating {}: {e}", dir.display()),
    })?;
    let store = LogStore::open(&dir).map_err(|e| EngineError::Fatal {
        reason: e.to_string(),
    })?;
    let id = server_id(&store);
    let _ = store.close();
    id
}

/// Starts a server with `config`. Blocks until the Raft core is up (bounded by
/// `server.start_timeout`), then returns while the cores keep running.
///
/// `membership` is the server gossip pool (`None`: this server knows only itself);
/// `make_transport` builds the peer transport on the Raft core.
pub fn start_clustered<T: PeerTransport>(
    config: AgentConfig,
    rpc_addr: String,
    http_addr: String,
    shard_init: ShardInit,
    raft_init: RaftInit,
    membership: Option<Arc<dyn Membership>>,
    make_transport: impl FnOnce() -> T + Send + 'static,
) -> Result<RunningServer, EngineError> {
    let shards = config
        .shards
        .unwrap_or_else(crate::config::default_core_count)
        .max(1);
    raise_memlock(shards + 1)?;
    let dir = raft_dir(&config);
    std::fs::create_dir_all(&dir).map_err(|e| EngineError::Fatal {
        reason: format!("creating {}: {e}", dir.display()),
    })?;
    let fatal = |e: storage::StorageError| EngineError::Fatal {
        reason: e.to_string(),
    };
    let opening = Instant::now();
    let store = LogStore::open(&dir).map_err(fatal)?;
    tracing::info!(
        elapsed_ms = opening.elapsed().as_millis() as u64,
        "raft log opened"
    );
    let snapshots = Arc::new(SnapshotStore::open(&dir).map_err(fatal)?);
    let id = server_id(&store)?;
    crate::raft::recovery::apply_peers_json(&dir, &store, id)?;
    let raft_cfg = Arc::new(raft_config(&config)?);

    let (raft_tx, raft_rx) = mpsc::channel(RAFT_INBOX_MAX);
    let mut shard_txs = Vec::new();
    let mut shard_rxs = Vec::new();
    for _ in 0..shards {
        let (tx, rx) = mpsc::channel(SHARD_INBOX_MAX);
        shard_txs.push(tx);
        shard_rxs.push(rx);
    }
    let gossiping = membership.is_some();
    let membership: Arc<dyn Membership> = membership.unwrap_or_else(|| {
        Arc::new(SoloMembership(own_server_info(
            &config, id, &rpc_addr, &http_addr,
        )))
    });
    let (raft_rpc_tx, raft_rpc_rx) = mpsc::channel(RAFT_INBOX_MAX);
    let (admin_tx, admin_rx) = mpsc::channel(64);
    let tracked = config.server.job_tracked_versions.max(1) as usize;
    let (view_tx, view_rx) = watch::channel(Arc::new(ClusterState::new(tracked)));
    let shared = Arc::new(Shared {
        config: Arc::new(config),
        shards,
        view: view_rx,
        raft_tx,
        shard_txs: shard_txs.clone(),
        status: RwLock::new(ClusterStatus::default()),
        leading: std::sync::atomic::AtomicBool::new(false),
        http_addr: http_addr.clone(),
        rpc_addr: rpc_addr.clone(),
        raft_rpc_tx,
        admin_tx,
        membership,
    });
    {
        let mut st = shared.status.write().expect("fresh lock");
        st.region = shared.config.region.clone();
        st.datacenter = shared.config.datacenter.clone();
        st.server_name = shared.config.name.clone();
        st.server_id = id.to_string();
        st.shards = shards;
        st.http_addr = http_addr;
        st.rpc_addr = rpc_addr.clone();
    }

    let (tuning_tx, tuning_rx) = watch::channel(tuning_of(&shared.config));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    // Sent once the state machine holds the latest snapshot; dropped if that fails.
    let (restored_tx, restored_rx) = std::sync::mpsc::channel::<()>();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let raft_shared = shared.clone();
    let raft_store = store.clone();
    let timer_store = store.clone();
    let stop_snapshots = snapshots.clone();
    let raft_executor = LocalExecutorBuilder::new(Placement::Unbound)
        .name("drover-raft")
        .io_memory(EXECUTOR_IO_MEMORY)
        .spawn(move || async move {
            let s = &raft_shared.config.server;
            let is_leader = Rc::new(Cell::new(false));
            let router = Rc::new(Router {
                view_tx,
                shard_txs,
                is_leader: is_leader.clone(),
                shards,
            });
            let sm = match StateMachine::open(snapshots, tracked, router) {
                Ok(sm) => sm,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("opening the state machine: {e}")));
                    return;
                }
            };
            let _ = restored_tx.send(());
            let view = sm.view_cell();
            raft_init(AppliedIndex(view.clone()));
            let transport = make_transport();
            let network = NetworkFactory {
                transport: transport.clone(),
            };
            let heartbeat = Duration::from_millis(raft_cfg.heartbeat_interval);
            let lease = Duration::from_millis(raft_cfg.election_timeout_max) * 2;
            let raft_started = Instant::now();
            let raft = match Raft::new(id, raft_cfg, network, LogStorage::new(raft_store), sm).await
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("starting raft: {e}")));
                    return;
                }
            };
            tracing::info!(
                elapsed_ms = raft_started.elapsed().as_millis() as u64,
                "raft started (log read after the snapshot)"
            );
            let initialized = raft.is_initialized().await.unwrap_or(false);
            if initialized {
                // A restarted server that is its cluster's only voter has no one to wait
                // for: it stands for election now instead of after an election timeout.
                let voters: Vec<u64> = raft
                    .metrics()
                    .borrow()
                    .membership_config
                    .membership()
                    .voter_ids()
                    .collect();
                if voters == [id] {
                    if let Err(e) = raft.trigger().elect().await {
                        tracing::warn!(error = %e, "standing for election at start");
                    }
                }
            }
            if !initialized && s.bootstrap_expect <= 1 && !s.non_voting_server {
                let members = BTreeMap::from([(
                    id,
                    BasicNode {
                        addr: rpc_addr.clone(),
                    },
                )]);
                if let Err(e) = raft.initialize(members).await {
                    let _ = ready_tx.send(Err(format!("bootstrapping raft: {e}")));
                    return;
                }
                tracing::info!(server_id = id, "bootstrapped a single-server cluster");
            }
            if !initialized && s.bootstrap_expect > 1 {
                glommio::spawn_local(bootstrap_when_expected(
                    raft.clone(),
                    raft_shared.clone(),
                    raft_shared.membership.clone(),
                    id,
                    transport,
                ))
                .detach();
            }
            let contact = LeaderContact::new();
            glommio::spawn_local(serve_raft_rpcs(raft.clone(), raft_rpc_rx, contact.clone()))
                .detach();
            let lease_ok_at = Rc::new(Cell::new(None));
            glommio::spawn_local(lease_loop(raft.clone(), lease_ok_at.clone(), heartbeat * 2))
                .detach();
            glommio::spawn_local(watch_leadership(
                raft.clone(),
                LeadershipInputs {
                    shared: raft_shared.clone(),
                    is_leader,
                    server_id: id,
                    lease_ok_at,
                    contact,
                    lease,
                },
            ))
            .detach();
            glommio::spawn_local(reconcile_loop(
                raft.clone(),
                raft_shared.clone(),
                raft_shared.membership.clone(),
                id,
                gossiping,
            ))
            .detach();
            glommio::spawn_local(serve_admin(raft.clone(), admin_rx)).detach();
            let bytes_at_snapshot = Rc::new(Cell::new(0u64));
            glommio::spawn_local(snapshot_timer(
                raft.clone(),
                tuning_rx,
                timer_store.clone(),
                bytes_at_snapshot.clone(),
            ))
            .detach();
            let _ = ready_tx.send(Ok(()));
            let proposer = Proposer::new(
                raft.clone(),
                view,
                RejectionTracker::new(raft_shared.config.server.plan_rejection_tracker.clone()),
            );
            futures_lite::future::or(proposer.run(raft_rx), async {
                let _ = stop_rx.await;
            })
            .await;
            snapshot_before_stop(
                &raft,
                &timer_store,
                &stop_snapshots,
                &bytes_at_snapshot,
                SNAPSHOT_STOP_WAIT,
            )
            .await;
            if let Err(e) = raft.shutdown().await {
                tracing::error!(error = %e, "raft shutdown");
            }
        })
        .map_err(|e| EngineError::Fatal {
            reason: format!("starting the raft core: {e}"),
        })?;

    // Restoring the snapshot is work proportional to the state (seconds at a million
    // allocations), not a hang, so `start_timeout` does not count it: a large cluster's
    // server must not exit on start because its state is large.
    let restoring = Instant::now();
    let _ = restored_rx.recv();
    tracing::info!(
        elapsed_ms = restoring.elapsed().as_millis() as u64,
        "state restored from the latest snapshot"
    );
    let start_timeout = shared.config.server.start_timeout;
    let started = Instant::now();
    match ready_rx.recv_timeout(start_timeout.max(Duration::from_millis(1))) {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => return Err(EngineError::Fatal { reason }),
        Err(_) => {
            return Err(EngineError::Fatal {
                reason: format!(
                    "server setup did not finish within start_timeout ({start_timeout:?}); still pending: raft core start-up"
                ),
            })
        }
    }
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "raft core ready"
    );

    let workers_per_shard = shared.config.server.num_schedulers.div_ceil(shards);
    let mut executors = Vec::new();
    for (i, rx) in shard_rxs.into_iter().enumerate() {
        let shared = shared.clone();
        let init = shard_init.clone();
        let ex = LocalExecutorBuilder::new(Placement::Unbound)
            .name(&format!("drover-shard-{i}"))
            .io_memory(EXECUTOR_IO_MEMORY)
            .spawn(move || async move {
                let core = ShardCore::new(i, shared);
                glommio::spawn_local(core.clone().tick_loop()).detach();
                glommio::spawn_local(super::alloc_watch::watch_loop(core.clone())).detach();
                if i == super::drainer::DRAINER_HOME_SHARD {
                    glommio::spawn_local(super::drainer::drain_loop(core.clone())).detach();
                }
                if i == super::periodic::PERIODIC_HOME_SHARD {
                    glommio::spawn_local(super::periodic::periodic_loop(core.clone())).detach();
                }
                for _ in 0..workers_per_shard {
                    glommio::spawn_local(worker_loop(core.clone())).detach();
                }
                init(Handle::new(core.clone()));
                inbox_loop(core, rx).await;
            })
            .map_err(|e| EngineError::Fatal {
                reason: format!("starting shard {i}: {e}"),
            })?;
        executors.push(ex);
    }
    executors.push(raft_executor);
    Ok(RunningServer {
        shared,
        executors,
        raft_stop: Some(stop_tx),
        store,
        server_id: id,
        tuning: tuning_tx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raft_multiplier_scales_heartbeat_and_election_timing() {
        let mut config = AgentConfig::default();
        config.server.raft_multiplier = 1;
        let one = raft_config(&config).unwrap();
        config.server.raft_multiplier = 5;
        let five = raft_config(&config).unwrap();
        assert_eq!(five.heartbeat_interval, one.heartbeat_interval * 5);
        assert_eq!(five.election_timeout_min, one.election_timeout_min * 5);
        assert_eq!(five.election_timeout_max, one.election_timeout_max * 5);
        // 0 means the default timing, which is multiplier 1.
        config.server.raft_multiplier = 0;
        assert_eq!(
            raft_config(&config).unwrap().heartbeat_interval,
            one.heartbeat_interval
        );
        assert!(one.heartbeat_interval < one.election_timeout_min);
    }
}
