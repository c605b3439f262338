//! openraft's storage conformance suite against drover's redb log storage and state machine.

use std::rc::Rc;
use std::sync::Arc;

use engine::raft::log_storage::LogStorage;
use engine::raft::state_machine::{ApplyListener, StateMachine};
use engine::raft::TypeConfig;
use engine::state::{ApplyEffects, ClusterState};
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;

struct NoListener;

impl ApplyListener for NoListener {
    fn applied(&self, _state: &Arc<ClusterState>, _effects: ApplyEffects) {}
}

struct Builder;

impl StoreBuilder<TypeConfig, LogStorage, StateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStorage, StateMachine), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = storage::LogStore::open(dir.path()).expect("open log store");
        let snapshots = Arc::new(storage::SnapshotStore::open(dir.path()).expect("open snapshots"));
        let sm = StateMachine::open(snapshots, 6, Rc::new(NoListener)).expect("open state machine");
        Ok((dir, LogStorage::new(store), sm))
    }
}

#[test]
fn redb_log_storage_passes_openraft_suite() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("info")
        .try_init();
    Suite::test_all(Builder).expect("openraft storage suite");
}
